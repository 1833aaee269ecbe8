/* Riskiturva: when the session has ended on the server (signed out elsewhere, a new
   password, idle or past its lifetime), the next callback answers 401. Go to the sign-in
   page then, instead of leaving a page that no longer answers. No data, no inline code:
   served from /assets/ under the Content-Security-Policy's script-src 'self'. */
(function () {
  "use strict";
  var original = window.fetch;
  window.fetch = function () {
    return original.apply(this, arguments).then(function (response) {
      if (response.status !== 401) {
        return response;
      }
      var next = window.location.pathname + window.location.search;
      window.location.assign("/login?next=" + encodeURIComponent(next));
      return new Promise(function () {}); // the page is leaving: nothing more to show
    });
  };
})();
