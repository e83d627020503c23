/* The patient's follow-up page: progressive enhancement only (the form works without it).
   - The family member's questions are hidden while "the patient" answers.
   - What is written is kept as a draft a moment after each change (the same form, posted with action=draft). */
(function () {
  "use strict";
  var form = document.getElementById("answers");
  if (!form || !window.fetch || !window.FormData) { return; }
  var family = document.getElementById("family-questions");
  var status = document.getElementById("autosave-status");

  function respondent() {
    var checked = form.querySelector("input[name=respondent]:checked");
    return checked ? checked.value : "";
  }
  function showFamily() {
    if (family) { family.classList.toggle("js-hidden", respondent() === "patient"); }
  }

  var timer = null;
  function saveSoon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      var data = new FormData(form);
      data.set("action", "draft");
      data.set("autosave", "1");
      fetch(form.action, { method: "POST", body: data, credentials: "same-origin", redirect: "manual" })
        .then(function (response) {
          if (status && response.status === 204) { status.textContent = form.getAttribute("data-saved") || ""; }
        })
        .catch(function () { /* the buttons still work */ });
    }, 800);
  }

  form.addEventListener("change", function () { showFamily(); saveSoon(); });
  showFamily();
}());
