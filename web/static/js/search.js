/* Search by name or code, or by part of a standard address (#gm-search, answers in
 * #gm-results): a click or Enter on an answer zooms to it and outlines it; an address is
 * also looked up (who is responsible there, the nearest facilities: locate(lat, lon)).
 */
import {el, getJSON} from "./dom.js";

var OUTLINE = {color: "#ffd400", weight: 5, opacity: 0.95, fill: false};

export function installSearch(map, cfg, fitTo, showNotice, locate) {
  var S = cfg.strings;
  var outline = L.geoJSON(null, {style: function () { return OUTLINE; }}).addTo(map);
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
            outline.clearLayers();
            if (b[0] === b[2] && b[1] === b[3]) map.setView([b[1], b[0]], 18);
            else fitTo([[b[1], b[0]], [b[3], b[2]]], 18);
            if (r.layer === "address") { locate(b[1], b[0]); return; }
            if (r.layer === "facility") return;  // its symbol is there
            getJSON(cfg.api.items.replace("LAYER", r.layer) + "?code=" + encodeURIComponent(r.code))
              .then(function (fc) { outline.clearLayers().addData(fc); }).catch(function () {});
          };
          li.addEventListener("click", go);
          li.addEventListener("keydown", function (ev) { if (ev.key === "Enter") go(); });
          results.appendChild(li);
        });
      }).catch(function (err) { showNotice(err.message); });
    }, 250);
  });
}
