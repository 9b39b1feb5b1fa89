/* Point lookup: for a clicked or entered place (#gm-coord), which areas it lies in
 * (cfg.lookupLayers, in that order) and the nearest facilities, with their paths drawn in
 * the kind's colour (cfg.facilityKinds); the answer goes to #gm-lookup.
 *
 * Responsibility is never hidden: where two or more areas of a layer hold the place, all
 * are listed and the row says 交叉管; where none does but one should (the API's status
 * "gap"), the row says 三不管.
 */
import {el, fmt, getJSON} from "./dom.js";
import {kindLabel} from "./facilities.js";
import {currentTab, showTab} from "./view.js";

// lookup(lat, lon): ask and show the answer, marking the place on the map
export function createLookup(map, cfg) {
  var S = cfg.strings;
  var box = document.getElementById("gm-lookup");
  var marker = null;
  var pathLayer = L.geoJSON(null, {style: function (f) {
    return {color: (cfg.facilityKinds[f.properties.kind] || {}).color || "#333333", weight: 4,
            opacity: 0.85, dashArray: "6 4"}; }}).addTo(map);

  // one row's answer: every holder, name before code, and the status when it is not plain
  function areaCell(a) {
    var td = el("td", {});
    a.holders.forEach(function (h) { td.appendChild(el("div", {text: h.name + " " + h.code})); });
    if (a.status === "overlap" || a.status === "gap") {  // in the colour of its rule
      var text = a.status === "overlap" ? S.status_overlap.replace("{n}", a.holders.length) : S.status_gap;
      var note = el("div", {"class": "gm-status", text: text});
      note.style.borderLeftColor = (cfg.rules[a.status] || {}).color || "#333333";
      td.appendChild(note);
    } else if (!a.holders.length) {
      td.appendChild(el("span", {"class": "gm-muted", text: S.none}));
    }
    return td;
  }

  function lookup(lat, lon) {
    box.textContent = S.loading;
    getJSON(cfg.api.lookup + "?lon=" + lon.toFixed(7) + "&lat=" + lat.toFixed(7)).then(function (body) {
      box.textContent = "";
      var table = el("table", {"class": "gm-attrs"});
      cfg.lookupLayers.forEach(function (k) {
        if (!(k in body.areas)) return;
        table.appendChild(el("tr", {}, [el("th", {text: S[k]}), areaCell(body.areas[k])]));
      });
      box.appendChild(el("div", {"class": "gm-muted", text: lon.toFixed(6) + ", " + lat.toFixed(6)}));
      box.appendChild(table);
      if (body.nearest.length) {
        box.appendChild(el("div", {"class": "gm-popup-title", text: S.nearest}));
        var near = el("table", {"class": "gm-attrs"});
        body.nearest.forEach(function (n) {
          near.appendChild(el("tr", {}, [el("th", {text: kindLabel(cfg, n.kind)}),
            el("td", {text: n.name + " · " + fmt(n.distance_m, 0) + " m (" + (S[n.method] || n.method) + ")"})]));
        });
        box.appendChild(near);
      }
      pathLayer.clearLayers();
      body.nearest.forEach(function (n) {
        if (n.path) pathLayer.addData({type: "Feature", properties: {kind: n.kind}, geometry: n.path});
      });
      if (marker) map.removeLayer(marker);
      marker = L.circleMarker([lat, lon], {radius: 6, color: "#000000", weight: 2, fillColor: "#ffff00", fillOpacity: 1}).addTo(map);
      // the answer to a click, at the top of its tab (a planner editing cells stays in
      // the edit tab: there the click selects the cell)
      if (currentTab() !== "edit") showTab("query");
      box.scrollIntoView({block: "nearest"});
    }).catch(function (err) { box.textContent = err.message; });
  }

  document.getElementById("gm-coord").addEventListener("submit", function (e) {
    e.preventDefault();
    var lon = parseFloat(document.getElementById("gm-lon").value);
    var lat = parseFloat(document.getElementById("gm-lat").value);
    if (isFinite(lon) && isFinite(lat)) { map.setView([lat, lon], Math.max(map.getZoom(), 16)); lookup(lat, lon); }
  });

  return lookup;
}
