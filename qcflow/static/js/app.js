// Small progressive enhancements; every page works without them.
document.addEventListener("DOMContentLoaded", function () {
  // Copy the receipt code.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = document.getElementById(button.dataset.copy).textContent.trim();
      var done = function () { button.textContent = button.dataset.copied; };
      if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done); }
      else {
        var area = document.createElement("textarea"); area.value = text; document.body.appendChild(area);
        area.select(); document.execCommand("copy"); area.remove(); done();
      }
    });
  });
  // Report form: NCC MERP only for medication events; subcategories of the chosen category.
  var category = document.getElementById("category_code");
  if (category) {
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
});
