// Small progressive enhancements; every page works without them. No framework, no external requests.
(function () {
  "use strict";
  var PENDING = "qcflow.pendingForm";

  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  // Typed values of a form (not hidden fields, passwords or files): kept in this tab only, so a
  // post refused because the session ended can be put back after logging in again.
  function typedValues(form) {
    var values = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled) { return; }
      var type = (el.type || "").toLowerCase();
      if (["hidden", "password", "file", "submit", "button", "reset"].indexOf(type) !== -1) { return; }
      if ((type === "radio" || type === "checkbox")) {
        if (el.checked) { values.push([el.name, el.value, true]); }
        return;
      }
      if (el.value) { values.push([el.name, el.value, false]); }
    });
    return values;
  }

  // Several forms may post to one address (the steps of a case): the hidden "action" tells them apart.
  function formKey(form) {
    var step = form.querySelector("input[type=hidden][name=action]");
    return (form.getAttribute("action") || "") + (step ? "#" + step.value : "");
  }

  function rememberSubmission(form) {
    var store = storage();
    // Only for logged-in pages (a session can end there); never on the anonymous report or receipt pages.
    if (!store || !document.querySelector("form[action$='/logout']")) { return; }
    if (form.hasAttribute("data-no-restore") || form.querySelector("input[type=password]")) { return; }
    var values = typedValues(form);
    if (!values.length) { return; }
    store.setItem(PENDING, JSON.stringify({
      path: location.pathname + location.search, action: formKey(form), values: values
    }));
  }

  function restoreSubmission() {
    var store = storage();
    if (!store) { return; }
    var pending = null;
    try { pending = JSON.parse(store.getItem(PENDING) || "null"); } catch (e) { pending = null; }
    if (!pending) { return; }
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
    if (!pending.restore || pending.path !== here) { return; }
    var form = Array.prototype.find.call(document.forms, function (f) { return formKey(f) === pending.action; });
    if (!form) { return; }
    pending.values.forEach(function (item) {
      var name = item[0], value = item[1], checked = item[2];
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name !== name) { return; }
        if (checked) { if (el.value === value) { el.checked = true; } }
        else if (!el.value) { el.value = value; }
      });
    });
    var details = form.closest("details");
    if (details) { details.open = true; }
    var notice = document.getElementById("restored-notice");
    if (notice) { notice.hidden = false; }
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
