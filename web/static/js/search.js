/* Search by name or code (#gm-search, answers in #gm-results): a click or Enter on an
 * answer zooms to it.
 */
import {el, getJSON} from "./dom.js";

export function installSearch(map, cfg, fitTo, showNotice) {
  var S = cfg.strings;
  var results = document.getElementById("gm-results");
  var searchTimer = null;
  document.getElementById("gm-search").addEventListener("input", function (e) {
    clearTimeout(searchTimer);
    var q = e.target.value;
    searchTimer = setTimeout(function () {
      results.textContent = "";
      if (!q.trim()) return;
      getJSON(cfg.api.search + "?q=" + encodeURIComponent(q)).then(function (body) {
        results.textContent = "";
        body.results.forEach(function (r) {
          var li = el("li", {"class": "gm-link", tabindex: "0"},
                      [el("span", {text: r.name}), el("span", {"class": "gm-muted", text: " " + (S[r.layer] || r.layer) + " " + r.code})]);
          var go = function () {
            var b = r.bbox;
            if (b[0] === b[2] && b[1] === b[3]) map.setView([b[1], b[0]], 18);
            else fitTo([[b[1], b[0]], [b[3], b[2]]], 18);
          };
          li.addEventListener("click", go);
          li.addEventListener("keydown", function (ev) { if (ev.key === "Enter") go(); });
          results.appendChild(li);
        });
      }).catch(function (err) { showNotice(err.message); });
    }, 250);
  });
}
