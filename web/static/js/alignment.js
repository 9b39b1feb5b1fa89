/* The officers' alignment panel (#gm-align-box): for a jurisdiction layer (police areas,
 * police beats: cfg.alignmentLayers) the check's alignment table — the units each should
 * follow, how much it shares with them, the area, households and people outside them,
 * what of them it leaves uncovered, the boundary offset — sortable by any column. A row
 * zooms to its jurisdiction, outlines its findings (交叉管, 三不管, 跨界) in their rules'
 * colours, with a legend, and shows its summary (area, households, population, police
 * stations and posts inside it); the table downloads as CSV and as an Excel workbook.
 */
import {el, fmt, getJSON, namedCodes} from "./dom.js";

// [column, heading key, decimals (numbers) or null (text)]
var COLUMNS = [
  ["name", "align_unit", null],
  ["matched", "align_matched", null],
  ["shared_pct", "align_shared", 1],
  ["mismatched_area_m2", "align_mismatched", 0],
  ["households_mismatched", "align_households", 0],
  ["population_mismatched", "align_population", 0],
  ["unmatched_in_units_m2", "align_uncovered", 0],
  ["boundary_offset_m", "align_offset", 0]
];
// the findings that say a jurisdiction is out of line, in the legend's order
var RULES = [["overlap", "align_overlap"], ["gap", "align_gap"], ["misaligned", "align_misaligned"]];

// Returns {outline}: the layer of what a row shows (null without jurisdictions).
export function installAlignment(map, cfg, findings, fitTo, showNotice) {
  var S = cfg.strings;
  var box = document.getElementById("gm-align-box");
  var none = {outline: null, reload: function () {}};
  if (!box) return none;
  if (!cfg.alignmentLayers.length) { box.hidden = true; return none; }
  var select = document.getElementById("gm-align-layer");
  var tableBox = document.getElementById("gm-align-table");
  var summaryBox = document.getElementById("gm-align-summary");
  var csv = document.getElementById("gm-align-csv");
  var xlsx = document.getElementById("gm-align-xlsx");
  var rows = [], sortBy = "mismatched_area_m2", descending = true;
  var outline = L.geoJSON(null, {interactive: false, style: function (f) {
    return {color: (cfg.rules[f.properties.rule] || {}).color || "#333333", weight: 4,
            dashArray: "8 4", fill: false};
  }}).addTo(map);

  cfg.alignmentLayers.forEach(function (name) {
    select.appendChild(el("option", {value: name, text: S[name] || name}));
  });
  var legend = document.getElementById("gm-align-legend");
  RULES.forEach(function (r) {
    var swatch = el("span", {"class": "gm-swatch"});
    swatch.style.background = (cfg.rules[r[0]] || {}).color;
    legend.appendChild(el("div", {"class": "gm-legend-row"}, [swatch, el("span", {text: S[r[1]]})]));
  });

  // the units it follows, names before codes
  function named(row) { return namedCodes(row.matched, row.matched_names); }

  function cell(row, col) {
    var v = row[col[0]];
    if (col[0] === "name") return (v || "") + " " + row.code;  // names before codes
    if (col[0] === "matched") return named(row);
    return fmt(v, col[2]);
  }

  function render() {
    var sorted = rows.slice().sort(function (a, b) {
      var x = a[sortBy], y = b[sortBy];
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      var order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
      return descending ? -order : order;
    });
    var head = el("tr", {}, COLUMNS.map(function (col) {
      var mark = col[0] === sortBy ? (descending ? " ▼" : " ▲") : "";
      var th = el("th", {text: S[col[1]] + mark, scope: "col"});
      th.addEventListener("click", function () {
        descending = col[0] === sortBy ? !descending : col[2] !== null;
        sortBy = col[0];
        render();
      });
      return th;
    }));
    var table = el("table", {"class": "gm-attrs gm-sortable"}, [el("thead", {}, [head])]);
    var body = el("tbody", {});
    sorted.forEach(function (row) {
      var tr = el("tr", {"class": "gm-link", tabindex: "0"}, COLUMNS.map(function (col) {
        return el("td", {text: cell(row, col), "class": col[2] === null ? "" : "gm-num"});
      }));
      tr.addEventListener("click", function () { show(row); });
      tr.addEventListener("keydown", function (e) { if (e.key === "Enter") show(row); });
      body.appendChild(tr);
    });
    table.appendChild(body);
    tableBox.textContent = "";
    tableBox.appendChild(table);
  }

  // the station's (beat's) summary: what it covers and holds
  function summary(row) {
    var lines = [[S.align_matched, named(row)], [S.area, fmt(row.area_km2, 2) + " km²"],
                 [S.households, fmt(row.households, 0)], [S.population, fmt(row.population, 0)],
                 [S.kinds.police_station, fmt(row.police_stations, 0)],
                 [S.kinds.police_post, fmt(row.police_posts, 0)]];
    if (row.posts_outside !== undefined) lines.push([S.align_posts_outside, fmt(row.posts_outside, 0)]);
    var table = el("table", {"class": "gm-attrs"});
    lines.forEach(function (r) { table.appendChild(el("tr", {}, [el("th", {text: r[0]}), el("td", {text: r[1]})])); });
    summaryBox.textContent = "";
    summaryBox.appendChild(el("div", {"class": "gm-popup-title", text: (row.name || "") + " " + row.code}));
    summaryBox.appendChild(table);
  }

  // zoom to the jurisdiction, outline each finding naming it
  function show(row) {
    var layer = select.value;
    summary(row);
    outline.clearLayers();
    findings.eachLayer(function (f) {
      var p = f.feature.properties;
      if (p.layer === layer && p.features.indexOf(row.code) >= 0 && RULES.some(function (r) { return r[0] === p.rule; })) {
        outline.addData(f.feature);
      }
    });
    getJSON(cfg.api.items.replace("LAYER", layer) + "/" + encodeURIComponent(row.code)).then(function (feature) {
      var shape = L.geoJSON(feature);
      var bounds = shape.getBounds();
      if (outline.getLayers().length) bounds.extend(outline.getBounds());
      fitTo(bounds.pad(0.1), 17);
      outline.addData({type: "Feature", properties: {rule: "_unit"}, geometry: feature.geometry});
    }).catch(function (err) { showNotice(err.message); });
  }

  function load() {
    var layer = select.value;
    csv.href = cfg.api.alignment + "?layer=" + encodeURIComponent(layer) + "&f=csv";
    xlsx.href = cfg.api.alignment + "?layer=" + encodeURIComponent(layer) + "&f=xlsx";
    tableBox.textContent = S.loading;
    getJSON(cfg.api.alignment + "?layer=" + encodeURIComponent(layer)).then(function (tables) {
      rows = tables.length ? tables[0].rows : [];
      render();
    }).catch(function (err) { tableBox.textContent = err.message; });
  }
  select.addEventListener("change", function () {
    outline.clearLayers();
    summaryBox.textContent = "";
    load();
  });
  load();
  return {outline: outline, reload: load};
}
