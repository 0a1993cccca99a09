// Keeps an open eligibility table current without a reload: every few seconds it
// asks the portal for the table's rows (a small HTML fragment the portal renders
// from the rules service's answer) and replaces the rows whose result changed.
(function () {
  "use strict";
  function refresh(table) {
    var url = table.getAttribute("data-refresh-url");
    var every = Number(table.getAttribute("data-refresh-seconds") || "3") * 1000;
    var live = document.getElementById("row-updates");
    function tick() {
      fetch(url, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          var holder = document.createElement("template");
          holder.innerHTML = html;
          var changed = 0;
          holder.content.querySelectorAll("tr[data-row-id]").forEach(function (fresh) {
            var old = table.querySelector('tr[data-row-id="' + fresh.getAttribute("data-row-id") + '"]');
            if (!old) { table.tBodies[0].appendChild(fresh); changed++; return; }
            if (old.getAttribute("data-fingerprint") !== fresh.getAttribute("data-fingerprint")) {
              fresh.classList.add("changed");
              old.replaceWith(fresh);
              changed++;
            }
          });
          if (changed && live) { live.textContent = live.getAttribute("data-message"); }
        })
        .catch(function () { /* the next tick tries again */ })
        .then(function () { window.setTimeout(tick, every); });
    }
    window.setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table[data-refresh-url]").forEach(refresh);
  });
})();
