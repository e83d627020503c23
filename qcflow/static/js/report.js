// The report form and the receipt of an anonymous report.
//
// The form's one-time key (form_key) tells the server that a form was sent before. Going Back, the
// browser shows the filled form again but renders a new key; so the key of a form being sent is kept
// in the state of the form's own entry in the tab's history (no cookie, no storage), and a form the
// browser has restored from history (fields that differ from the page as served) takes that key back:
// sent again, it is answered with the first report's receipt instead of a second report.
//
// The receipt of an anonymous report. Right after sending, the page carries the code and this script
// moves it into the address's fragment (#reference/code): a reload or a bookmark then opens the
// session-free /report/received page, which reads the code back from the fragment. The fragment never
// leaves the browser, so the server keeps no code, no cookie and no session (decisions.md).
(function () {
  "use strict";
  var PATTERN = /^#(AE-\d{4}-\d{1,10})(?:\/([A-Z2-9]{4}(?:-[A-Z2-9]{1,4}){1,8}))?$/;

  function showCode(box, code) {
    while (box.firstChild) { box.removeChild(box.firstChild); }
    code.split("-").forEach(function (group, index) {
      if (index) { box.appendChild(document.createTextNode("-")); box.appendChild(document.createElement("wbr")); }
      var span = document.createElement("span");
      span.className = "code-group";
      span.textContent = group;
      box.appendChild(span);
    });
  }

  function restoredFromHistory(form) {
    return Array.prototype.some.call(form.elements, function (field) {
      if (field.type === "hidden" || field.type === "submit" || field.type === "button") { return false; }
      if (field.type === "checkbox" || field.type === "radio") { return field.checked !== field.defaultChecked; }
      if (field.tagName === "SELECT") {
        var served = Array.prototype.findIndex.call(field.options, function (o) { return o.defaultSelected; });
        return field.selectedIndex !== Math.max(served, 0);
      }
      return field.value !== field.defaultValue;
    });
  }

  function keepFormKey() {
    var key = document.querySelector("form input[name=form_key]");
    if (!key) { return; }
    key.form.addEventListener("submit", function () {
      history.replaceState({formKey: key.value}, "");  // kept with this page's place in the tab's history
    });
    // The browser puts the fields back after the page has loaded, just before "pageshow".
    window.addEventListener("pageshow", function () {
      var sent = history.state && history.state.formKey;
      if (sent && restoredFromHistory(key.form)) { key.value = sent; } else if (sent) { history.replaceState(null, ""); }
    });
  }

  function start() {
    keepFormKey();
    var receipt = document.getElementById("receipt");
    if (!receipt) { return; }
    var reference = receipt.dataset.reference, code = receipt.dataset.code;
    if (reference) {  // the answer to the form: keep the receipt in the address, and drop the POST from history
      history.replaceState(null, "", receipt.dataset.address + "#" + reference + (code ? "/" + code : ""));
      return;
    }
    var found = PATTERN.exec(decodeURIComponent(location.hash || ""));
    if (!found) { return; }
    if (!receipt.dataset.public) {  // a patient or a family is shown the code only
      document.getElementById("receipt-reference").textContent = found[1];
      document.getElementById("receipt-reference-line").hidden = false;
    }
    document.getElementById("receipt-found").hidden = false;
    var missing = document.getElementById("receipt-missing");
    if (missing) { missing.hidden = true; }
    if (found[2]) {
      showCode(document.getElementById("receipt-code"), found[2]);
      document.getElementById("receipt-with-code").hidden = false;
    } else {
      document.getElementById("receipt-without-code").hidden = false;
    }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
}());
