/* Riskiturva: Dash's dropdowns (dcc.Dropdown, Dash 4) take keyboard focus on a hidden,
   aria-hidden input and leave their real button out of the tab order, so a screen reader
   lands on nothing (axe: aria-hidden-focus) and the button's name is only its value. Put
   the button in the tab order, named by the page's <label for> and its value, and take
   the hidden input out: Tab reaches each dropdown, Enter or Space opens it, its focus is
   drawn. Served from /assets/ (script-src 'self'); no data, no inline code. */
(function () {
  "use strict";
  function fix(root) {
    var wrappers = root.querySelectorAll ? root.querySelectorAll(".dash-dropdown-wrapper") : [];
    for (var i = 0; i < wrappers.length; i++) {
      var hidden = wrappers[i].querySelector(".dash-dropdown-focus-target");
      var button = wrappers[i].querySelector("button.dash-dropdown");
      if (!hidden || !button || button.getAttribute("data-riskiturva") === "1") {
        continue;
      }
      hidden.setAttribute("tabindex", "-1");
      button.setAttribute("tabindex", "0");
      var label = document.querySelector('label[for="' + button.id + '"]');
      if (label) {
        if (!label.id) {
          label.id = button.id + "-label";
        }
        var value = button.getAttribute("aria-labelledby") || "";
        button.setAttribute("aria-labelledby", (label.id + " " + value).trim());
      }
      button.setAttribute("data-riskiturva", "1");
    }
  }
  new MutationObserver(function (changes) {
    for (var i = 0; i < changes.length; i++) {
      if (changes[i].addedNodes.length) {
        fix(document);
        return;
      }
    }
  }).observe(document.documentElement, { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", function () { fix(document); });
})();
