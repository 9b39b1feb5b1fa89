/* Findings (the data's defects): a layer above all areas, each with a popup card, and the
 * list in the panel (#gm-findings, count in #gm-summary) that zooms to one.
 *
 * A finding's colour is its rule's (cfg.rules[rule].color; a sliver: cfg.sliverColor).
 * Labels: cfg.rules[rule].label.
 */
import {el, fmt, getJSON, namedCodes} from "./dom.js";

export function ruleLabel(cfg, rule) {
  var r = cfg.rules[rule];
  return (r && r.label) || rule;
}

export function findingColor(cfg, p) {
  if (p.kind === "sliver") return cfg.sliverColor;
  return (cfg.rules[p.rule] || {}).color;
}

// onClick(latlng): what else a click inside a finding does (the page: the lookup there)
export function createFindings(map, cfg, fitTo, showNotice, onClick) {
  var S = cfg.strings;
  var color = function (f) { return findingColor(cfg, f.properties); };
  var layer = L.geoJSON(null, {
    style: function (f) { return {color: color(f), weight: 2, fillColor: color(f), fillOpacity: 0.45}; },
    pointToLayer: function (f, latlng) {
      return L.circleMarker(latlng, {radius: 7, color: "#ffffff", weight: 2, fillColor: color(f), fillOpacity: 0.95});
    },
    onEachFeature: function (f, lyr) {
      lyr.bindPopup(function () { return findingCard(f.properties); });
      lyr.on("click", function (e) { onClick(e.latlng); });
    }
  }).addTo(map);
  map.on("gridmap:restack", function () { layer.bringToFront(); });  // defects stay visible on top

  function findingLabel(p) {
    return ruleLabel(cfg, p.rule) + (p.kind === "sliver" ? " (" + S.rules.sliver + ")" : "");
  }

  // the features a finding concerns, names before codes
  function named(p) { return namedCodes(p.features, p.names); }

  function findingCard(p) {
    var rows = [[S.rule, findingLabel(p)], [S.layer || S.layers, S[p.layer] || p.layer],
                [S.features, named(p)]];
    if (p.area_m2 !== null) rows.push([S.area, fmt(p.area_m2, 1) + " m²"], [S.width, fmt(p.width_m, 2) + " m"]);
    var said = cfg.lang === "en" ? p.detail : (p.detail_zh || p.detail);  // the page's language
    if (said) rows.push(["", said]);
    var table = el("table", {"class": "gm-attrs"});
    rows.forEach(function (r) { table.appendChild(el("tr", {}, [el("th", {text: r[0]}), el("td", {text: r[1]})])); });
    return el("div", {}, [el("div", {"class": "gm-popup-title", text: findingLabel(p)}), table]);
  }

  // a large dataset is checked in the background after the service starts or a save: the
  // map is usable meanwhile, and the list says so until the findings come
  var list = document.getElementById("gm-findings");
  var waiting = el("li", {"class": "gm-muted", text: S.checking});
  var step = el("div", {"class": "gm-muted", id: "gm-check-progress"});
  waiting.appendChild(step);
  list.appendChild(waiting);
  var polling = setInterval(showProgress, 1000);
  getJSON(cfg.api.findings).then(function (fc) {
    clearInterval(polling);
    layer.addData(fc);
    waiting.remove();
    document.getElementById("gm-summary").textContent = "(" + fc.features.length + ")";
    if (!fc.features.length) list.appendChild(el("li", {text: S.no_findings}));
    layer.eachLayer(function (lyr) {
      var p = lyr.feature.properties;
      var swatch = el("span", {"class": "gm-swatch"});
      swatch.style.background = findingColor(cfg, p);
      var text = findingLabel(p) + " · " + named(p) +
        (p.area_m2 !== null ? " · " + fmt(p.area_m2, 0) + " m²" : "");
      var item = el("li", {"class": "gm-link", tabindex: "0"}, [swatch, el("span", {text: text})]);
      var go = function () {
        if (lyr.getBounds) fitTo(lyr.getBounds().pad(0.5), 18);
        else map.setView(lyr.getLatLng(), 18);
        lyr.openPopup();
      };
      item.addEventListener("click", go);
      item.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
      list.appendChild(item);
    });
  }).catch(function (err) { clearInterval(polling); waiting.remove(); showNotice(err.message); });

  // while the check runs: its step and seconds so far (and how long the last one took)
  function showProgress() {
    getJSON(cfg.api.check).then(function (s) {
      if (s.state !== "running" || !document.body.contains(step)) return;
      var text = (s.step ? s.step[cfg.lang === "en" ? "en" : "zh"] + " · " : "") +
        S.check_elapsed.replace("{s}", fmt(s.elapsed_s, 0));
      if (s.last_s !== null) text += " · " + S.check_last.replace("{s}", fmt(s.last_s, 0));
      step.textContent = text;
    }).catch(function () {});
  }

  // the map's label of a finding (labels.js): its rule and the first feature it names
  layer.labelOf = function (p) {
    var first = (p.names && p.names[0]) || p.features[0];
    return findingLabel(p) + (first ? " · " + first + (p.features.length > 1 ? " …" : "") : "");
  };
  return layer;
}
