/* Live countdowns to a ticket's due time and to its lock's end.
 *
 * Any element with data-countdown="<ISO time>" shows the time left, updated
 * every second; data-label="due" or "lock" picks the wording. Elements that
 * htmx swaps in are picked up on the next tick. Without JavaScript the
 * server-rendered text ("12 minutes") stays. */
(function () {
  "use strict";

  function parts(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h ? h + "h " + pad(m) + "m " : m + "m ") + pad(sec) + "s";
  }

  function tick() {
    var now = Date.now();
    var nodes = document.querySelectorAll("[data-countdown]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      var end = Date.parse(el.getAttribute("data-countdown"));
      if (isNaN(end)) { continue; }
      var left = end - now;
      var label = el.getAttribute("data-label") || "due";
      var text;
      if (label === "lock") {
        text = left > 0 ? "lock ends in " + parts(left) : "lock ended";
      } else {
        text = left > 0 ? "due in " + parts(left) : "overdue by " + parts(left);
      }
      el.textContent = text;
      el.classList.toggle("is-overdue", left <= 0);
      el.classList.toggle("is-soon", left > 0 && left < 5 * 60 * 1000);
    }
  }

  tick();
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSwap", tick);
})();
