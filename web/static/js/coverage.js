/* Service coverage of a facility kind (#gm-cov-kind): grid cells painted by coverage, the
 * service areas drawn, uncovered households counted (#gm-cov-totals); what-if sites placed
 * by clicking the map (#gm-add, draggable) and suggested new sites (#gm-site).
 */
import {el, errorText, fmt, getJSON} from "./dom.js";

// Returns its layers and placeSite(latlng): places a what-if site and is true when one was
// asked for (#gm-add), else false (the click is someone else's).
export function installCoverage(map, cfg, areas, showNotice) {
  var S = cfg.strings;
  var covKind = "";
  var adding = false;       // the next click places a what-if site
  var areasLayer = L.geoJSON(null, {style: {color: "#1a9850", weight: 3, opacity: 0.8}}).addTo(map);
  var sitesLayer = L.layerGroup().addTo(map);
  var whatifLayer = L.layerGroup().addTo(map);
  var totalsBox = document.getElementById("gm-cov-totals");
  var siteBox = document.getElementById("gm-site-result");

  function showTotals(t) {
    totalsBox.textContent = S.uncovered + ": " + fmt(t.uncovered_households, 0) + " / " +
      fmt(t.households, 0) + " " + S.households_unit + " · " + t.radius_m + " m (" + (S[t.method] || t.method) + ")" +
      (t.newly_covered_households !== undefined ? " · " + S.newly + " " + fmt(t.newly_covered_households, 0) : "");
  }

  function whatif() {
    var sites = [];
    whatifLayer.eachLayer(function (m) { var ll = m.getLatLng(); sites.push([ll.lng, ll.lat]); });
    fetch(cfg.api.whatif, {method: "POST", headers: {"Content-Type": "application/json"},
                           body: JSON.stringify({kind: covKind, sites: sites})})
      .then(function (r) { return r.json(); }).then(function (body) {
        if (body.totals) showTotals(body.totals); else showNotice(errorText(body));
      });
  }

  function placeSite(latlng) {
    if (!adding) return false;
    adding = false;
    document.getElementById("gm-add").classList.remove("gm-active");
    var m = L.marker(latlng, {draggable: true}).addTo(whatifLayer);
    m.on("dragend", whatif);
    whatif();
    return true;
  }

  document.getElementById("gm-add").addEventListener("click", function (e) {
    if (!covKind) return;
    adding = true;
    e.target.classList.add("gm-active");
    siteBox.textContent = S.click_to_add;
  });

  // what the shading and the green lines mean
  var legendBox = document.getElementById("gm-cov-legend");
  function showLegend(legend) {
    legendBox.textContent = "";
    var lower = null;
    (legend.bins || []).forEach(function (upper, i) {
      var sw = el("span", {"class": "gm-swatch"});
      sw.style.background = legend.colors[i];
      var range = (lower === null ? "≤ " : fmt(lower, 0) + " – ") + fmt(upper, 0);
      legendBox.appendChild(el("div", {"class": "gm-legend-row"}, [sw, el("span", {text: S.uncovered_population + " " + range})]));
      lower = upper;
    });
    var line = el("span", {"class": "gm-swatch"});
    line.style.background = "#1a9850";
    line.style.height = "3px";
    legendBox.appendChild(el("div", {"class": "gm-legend-row"}, [line, el("span", {text: S.reachable_roads})]));
  }

  document.getElementById("gm-cov-kind").addEventListener("change", function (e) {
    covKind = e.target.value;
    areasLayer.clearLayers(); sitesLayer.clearLayers(); whatifLayer.clearLayers();
    totalsBox.textContent = ""; siteBox.textContent = ""; legendBox.textContent = "";
    if (!covKind) { areas.paint.cover = null; areas.restyleGrid(); return; }
    totalsBox.textContent = S.loading;
    getJSON(cfg.api.coverage + "?kind=" + encodeURIComponent(covKind)).then(function (body) {
      var colors = {};
      body.grids.forEach(function (g) { if (g._color) colors[g.code] = g._color; });
      areas.paint.cover = colors;
      areas.showGrid();
      areas.restyleGrid();
      showTotals(body.totals);
      showLegend(body.legend);
    }).catch(function (err) { totalsBox.textContent = err.message; });
    getJSON(cfg.api.areas + "?kind=" + encodeURIComponent(covKind)).then(function (fc) {
      areasLayer.addData(fc);
    });
  });

  // while the model is solved: the seconds so far, and the button held
  function progress(button) {
    var started = Date.now();
    button.disabled = true;
    var tick = function () { siteBox.textContent = S.solving + " … " + Math.round((Date.now() - started) / 1000) + " s"; };
    tick();
    var timer = setInterval(tick, 500);
    return function () { clearInterval(timer); button.disabled = false; };
  }

  document.getElementById("gm-site").addEventListener("click", function (e) {
    if (!covKind) return;
    var p = Math.max(1, Math.min(10, parseInt(document.getElementById("gm-site-p").value, 10) || 5));
    var done = progress(e.currentTarget);
    getJSON(cfg.api.siting + "?p=" + p + "&kind=" + encodeURIComponent(covKind)).then(function (r) {
      done();
      sitesLayer.clearLayers();
      r.suggestions.forEach(function (sg) {
        var holder = el("div", {"class": "gm-rank", text: String(sg.rank)});
        L.marker([sg.lat, sg.lon], {icon: L.divIcon({html: holder, className: "gm-rank-icon", iconSize: [22, 22]})})
          .bindTooltip(el("span", {text: "#" + sg.rank + " · " + S.newly + " " + fmt(sg.newly_covered_households, 0) + " " + S.households_unit}))
          .addTo(sitesLayer);
      });
      siteBox.textContent = S.newly + " " + fmt(r.newly_covered_households, 0) + " " + S.households_unit +
        " · " + (r.proven_optimal ? S.optimal : S.not_optimal) + " (" + r.status + ", " + r.solve_s + " s)";
    }).catch(function (err) { done(); siteBox.textContent = err.message; });
  });

  return {areas: areasLayer, sites: sitesLayer, whatif: whatifLayer, placeSite: placeSite};
}
