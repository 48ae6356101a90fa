// tiergate demo web app: small progressive enhancements; every page works
// without it.
(function () {
  "use strict";

  // Remaining characters under a textarea with data-counter="<id of span>".
  document.querySelectorAll("textarea[data-counter]").forEach(function (ta) {
    var out = document.getElementById(ta.dataset.counter);
    var max = parseInt(ta.getAttribute("maxlength"), 10);
    if (!out || !max) return;
    function update() {
      var left = max - Array.from(ta.value).length;
      out.textContent = left + " characters left";
    }
    ta.addEventListener("input", update);
    update();
  });

  // Relative times ("5 min ago"); the server renders absolute UTC times so
  // the cached HTML is the same for everyone.
  var units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  var fmt = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;
  if (!fmt) return;
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var t = Date.parse(el.getAttribute("datetime"));
    if (isNaN(t)) return;
    var secs = Math.round((t - Date.now()) / 1000);
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(secs) >= units[i][1] || i === units.length - 1) {
        el.title = el.textContent;
        el.textContent = fmt.format(Math.round(secs / units[i][1]), units[i][0]);
        return;
      }
    }
  });
})();
