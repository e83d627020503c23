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

  function start() {
    var receipt = document.getElementById("receipt");
    if (!receipt) { return; }
    var reference = receipt.dataset.reference, code = receipt.dataset.code;
    if (reference) {  // the answer to the form: keep the receipt in the address, and drop the POST from history
      history.replaceState(null, "", receipt.dataset.address + "#" + reference + (code ? "/" + code : ""));
      return;
    }
    var found = PATTERN.exec(decodeURIComponent(location.hash || ""));
    if (!found) { return; }
    document.getElementById("receipt-reference").textContent = found[1];
    document.getElementById("receipt-reference-line").hidden = false;
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
