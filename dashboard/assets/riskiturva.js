/* Riskiturva: the dashboard's clientside callbacks (served from /assets/ under the
   Content-Security-Policy's script-src 'self'; no inline code). */
(function () {
  "use strict";
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.riskiturva = {
    // The findings page's filters, as the server wrote them ("?severity=high…" or ""),
    // into the address bar: the view can be shared and reloaded. replaceState adds no
    // history entry per click, and Dash's own location does not re-render the page.
    replaceQuery: function (search) {
      if (typeof search !== "string" || (search !== "" && search.charAt(0) !== "?")) {
        return window.dash_clientside.no_update;
      }
      if (window.location.search !== search) {
        window.history.replaceState(window.history.state, "",
          window.location.pathname + search + window.location.hash);
      }
      return search;
    }
  };
})();
