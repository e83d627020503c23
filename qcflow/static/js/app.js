// Small progressive enhancements; every page works without them. No framework, no external requests.
(function () {
  "use strict";
  var PENDING = "qcflow.pendingForm";

  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  var SKIPPED = ["hidden", "password", "file", "submit", "button", "reset", "image"];

  // Every field of a form as the user left it (not hidden fields, passwords or files): text, dates
  // and numbers by value, selects by their chosen options, radio buttons and checkboxes by whether
  // each is ticked. Kept in this tab only, so a post refused because the session ended can be put
  // back after logging in again.
  function fieldStates(form) {
    var fields = [], typed = false;
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled) { return; }
      var type = (el.type || "").toLowerCase();
      if (SKIPPED.indexOf(type) !== -1 || el.tagName === "BUTTON" || el.tagName === "FIELDSET") { return; }
      if (type === "radio" || type === "checkbox") {
        fields.push({ name: el.name, kind: "check", value: el.value, checked: el.checked });
        typed = typed || el.checked;
      } else if (el.tagName === "SELECT") {
        var chosen = Array.prototype.filter.call(el.options, function (o) { return o.selected; })
          .map(function (o) { return o.value; });
        fields.push({ name: el.name, kind: "select", values: chosen });
        typed = typed || chosen.some(function (v) { return v !== ""; });
      } else {
        fields.push({ name: el.name, kind: "value", value: el.value });
        typed = typed || el.value !== "";
      }
    });
    return typed ? fields : [];
  }

  // The element each saved field goes back into, or null: the n-th field of that name and kind
  // (a checkbox or radio button by its value).
  function target(form, field, seen) {
    var key = field.name + "\u0000" + field.kind + (field.kind === "check" ? "\u0000" + field.value : "");
    var index = seen[key] || 0;
    seen[key] = index + 1;
    var matches = Array.prototype.filter.call(form.elements, function (el) {
      if (el.name !== field.name || el.disabled) { return false; }
      var type = (el.type || "").toLowerCase();
      if (field.kind === "check") { return (type === "radio" || type === "checkbox") && el.value === field.value; }
      if (field.kind === "select") { return el.tagName === "SELECT"; }
      return el.tagName !== "SELECT" && type !== "radio" && type !== "checkbox" && SKIPPED.indexOf(type) === -1;
    });
    var el = matches[index] || null;
    if (el && field.kind === "select") {
      var values = Array.prototype.map.call(el.options, function (o) { return o.value; });
      if (!field.values.every(function (v) { return values.indexOf(v) !== -1; })) { return null; }
    }
    return el;
  }

  // Put every saved field back, or none: a form half put back (a select left at its default) would
  // be submitted with a value the user never chose.
  function putBack(form, fields) {
    var seen = {}, targets = fields.map(function (field) { return target(form, field, seen); });
    if (targets.some(function (el) { return el === null; })) { return false; }
    fields.forEach(function (field, i) {
      var el = targets[i];
      if (field.kind === "check") { el.checked = field.checked; }
      else if (field.kind === "select") {
        Array.prototype.forEach.call(el.options, function (o) { o.selected = field.values.indexOf(o.value) !== -1; });
      } else { el.value = field.value; }
      el.dispatchEvent(new Event("change", { bubbles: true }));
    });
    return true;
  }

  // Several forms may post to one address (the steps of a case): the hidden "action" tells them apart.
  function formKey(form) {
    var step = form.querySelector("input[type=hidden][name=action]");
    return (form.getAttribute("action") || "") + (step ? "#" + step.value : "");
  }

  // Who is logged in on this page (a keyed hash of the user, see base.html); "" on anonymous pages
  // and on the login pages.
  function formOwner() {
    return document.body.getAttribute("data-form-owner") || "";
  }

  function rememberSubmission(form) {
    var store = storage();
    // Logging out of this tab: what was typed before must not reach whoever logs in next.
    if (/\/logout$/.test(form.getAttribute("action") || "")) {
      if (store) { store.removeItem(PENDING); }
      return;
    }
    // Only for logged-in pages (a session can end there); never on the anonymous report or receipt pages.
    var owner = formOwner();
    if (!store || !owner) { return; }
    if (form.hasAttribute("data-no-restore") || form.querySelector("input[type=password]")) { return; }
    var fields = fieldStates(form);
    if (!fields.length) { return; }
    store.setItem(PENDING, JSON.stringify({
      path: location.pathname + location.search, action: formKey(form), fields: fields, owner: owner
    }));
  }

  function restoreSubmission() {
    var store = storage();
    if (!store) { return; }
    var pending = null;
    try { pending = JSON.parse(store.getItem(PENDING) || "null"); } catch (e) { pending = null; }
    if (!pending) { return; }
    var owner = formOwner();
    // Another user logged in on this tab (or the saved form names nobody): it is not theirs to see.
    if (!pending.owner || (owner && owner !== pending.owner)) { store.removeItem(PENDING); return; }
    var params = new URLSearchParams(location.search);
    var here = location.pathname + location.search;
    var loginAfterExpiry = document.body.classList.contains("page-login") && params.get("expired") &&
      params.get("next") === pending.path;
    var refused = document.body.classList.contains("page-error") && document.referrer &&
      new URL(document.referrer).pathname + new URL(document.referrer).search === pending.path;
    if (loginAfterExpiry || refused) {
      pending.restore = true;  // keep it across the login or error page, for the way back to the form
      store.setItem(PENDING, JSON.stringify(pending));
      return;
    }
    store.removeItem(PENDING);
    if (!pending.restore || pending.path !== here || owner !== pending.owner) { return; }
    var form = Array.prototype.find.call(document.forms, function (f) { return formKey(f) === pending.action; });
    if (!form || !Array.isArray(pending.fields)) { return; }
    var restored = putBack(form, pending.fields);
    var details = form.closest("details");
    if (details) { details.open = true; }
    var notice = document.getElementById(restored ? "restored-notice" : "not-restored-notice");
    if (notice) { notice.hidden = false; }
    if (!restored) { return; }
    var first = form.querySelector("textarea, input:not([type=hidden]), select");
    if (first) { first.focus(); }
  }

  // One submission per form: a double click or a second Enter must not file two reports.
  function guardSubmissions() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if ((form.method || "").toLowerCase() !== "post" || form.hasAttribute("data-inline")) { return; }
      if (form.dataset.submitting) { event.preventDefault(); return; }
      form.dataset.submitting = "1";
      rememberSubmission(form);
      // aria-disabled, not disabled: a disabled submit button would drop its own name/value.
      Array.prototype.forEach.call(form.querySelectorAll("button[type=submit], button:not([type])"), function (b) {
        b.setAttribute("aria-disabled", "true");
      });
    });
    // Back/forward cache: a page shown again may be submitted again.
    window.addEventListener("pageshow", function () {
      Array.prototype.forEach.call(document.forms, function (f) {
        delete f.dataset.submitting;
        Array.prototype.forEach.call(f.querySelectorAll("[aria-disabled]"), function (b) { b.removeAttribute("aria-disabled"); });
      });
    });
  }

  // Live regions ([data-live] with an id): refreshed from the same page's HTML without a reload,
  // every data-refresh seconds, when the tab becomes visible again, and after an inline form.
  function refreshLive() {
    var regions = document.querySelectorAll("[data-live][id]");
    if (!regions.length || !window.fetch) { return Promise.resolve(false); }
    Array.prototype.forEach.call(regions, function (r) { r.classList.add("refreshing"); });
    return fetch(location.href, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok || response.redirected) { throw new Error("refresh failed"); }
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        Array.prototype.forEach.call(regions, function (region) {
          var fresh = doc.getElementById(region.id);
          if (fresh) { region.innerHTML = fresh.innerHTML; }
          region.classList.remove("refreshing");
        });
        document.dispatchEvent(new CustomEvent("qcflow:refreshed"));
        return true;
      })
      .catch(function () {
        Array.prototype.forEach.call(regions, function (r) { r.classList.remove("refreshing"); });
        return false;
      });
  }

  function inlineForms() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!form.hasAttribute("data-inline") || !window.fetch) { return; }
      event.preventDefault();
      if (form.dataset.submitting) { return; }
      form.dataset.submitting = "1";
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok || /\/login/.test(response.url)) { throw new Error("inline post failed"); }
          return refreshLive();
        })
        .catch(function () { delete form.dataset.submitting; form.submit(); });
    });
    var live = document.querySelector("[data-live][data-refresh]");
    if (live) {
      var seconds = Math.max(15, parseInt(live.dataset.refresh, 10) || 60);
      window.setInterval(function () { if (!document.hidden) { refreshLive(); } }, seconds * 1000);
      document.addEventListener("visibilitychange", function () { if (!document.hidden) { refreshLive(); } });
    }
  }

  function printButtons() {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  }

  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var text = document.getElementById(button.dataset.copy).textContent.trim();
        var done = function () { button.textContent = button.dataset.copied; };
        if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done, function () {}); }
        else {
          var area = document.createElement("textarea"); area.value = text; document.body.appendChild(area);
          area.select(); document.execCommand("copy"); area.remove(); done();
        }
      });
    });
  }

  // Report form: NCC MERP only for medication events; subcategories of the chosen category.
  function reportForm() {
    var category = document.getElementById("category_code");
    if (!category) { return; }
    var update = function () {
      var merp = document.getElementById("field-ncc_merp");
      if (merp) { merp.hidden = category.value !== "medication"; }
      document.querySelectorAll("#subcategory_code option[data-parent]").forEach(function (o) {
        o.hidden = o.dataset.parent !== category.value;
        if (o.hidden && o.selected) { o.selected = false; }
      });
    };
    category.addEventListener("change", update);
    update();
  }

  // After a refused form, put the keyboard on the first field in error.
  function focusFirstError() {
    var invalid = document.querySelector("[aria-invalid=true]");
    if (invalid && !document.querySelector("[autofocus]")) { invalid.focus(); }
  }

  window.qcflow = { refreshLive: refreshLive };
  document.addEventListener("DOMContentLoaded", function () {
    copyButtons();
    printButtons();
    reportForm();
    guardSubmissions();
    inlineForms();
    restoreSubmission();
    focusFirstError();
  });
})();
