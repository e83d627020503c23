/* The patient's follow-up page: progressive enhancement only (the form works without it).
   - The family member's questions are hidden while "the patient" answers; the date of death is asked only when
     the family member answers that the patient has passed away, and then the questions about how the patient is
     are hidden (and not sent), with a line of condolence.
   - What is written is kept as a draft a moment after each change (the same form, posted with action=draft). */
(function () {
  "use strict";
  var form = document.getElementById("answers");
  if (!form || !window.fetch || !window.FormData) { return; }
  var family = document.getElementById("family-questions");
  var diedOn = document.getElementById("field-died_on");
  var health = document.getElementById("health-questions");
  var condolence = document.getElementById("condolence");
  var notNeeded = document.getElementById("not-if-passed-away");
  var status = document.getElementById("autosave-status");
  /* The form's own address: `form.action` would be the buttons named "action". */
  var address = form.getAttribute("action");

  function chosen(name) {
    var checked = form.querySelector("input[name=" + name + "]:checked");
    return checked ? checked.value : "";
  }
  function hide(element, hidden) {
    if (element) { element.classList.toggle("js-hidden", hidden); }
  }
  function show() {
    var byFamily = chosen("respondent") === "family";
    var passedAway = byFamily && chosen("vital_status") === "dead";
    hide(family, chosen("respondent") === "patient");
    hide(diedOn, chosen("vital_status") !== "dead");
    hide(condolence, !passedAway);
    hide(notNeeded, true);
    hide(health, passedAway);
    if (health) {  /* hidden answers are not sent (they come back if the answer changes again) */
      Array.prototype.forEach.call(health.querySelectorAll("input, textarea"), function (input) {
        input.disabled = passedAway;
      });
    }
  }

  var timer = null;
  function saveSoon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      var data = new FormData(form);
      data.set("action", "draft");
      data.set("autosave", "1");
      fetch(address, { method: "POST", body: data, credentials: "same-origin", redirect: "manual" })
        .then(function (response) {
          if (status && response.status === 204) { status.textContent = form.getAttribute("data-saved") || ""; }
        })
        .catch(function () { /* the buttons still work */ });
    }, 800);
  }

  form.addEventListener("change", function () { show(); saveSoon(); });
  form.addEventListener("input", saveSoon);
  show();
}());
