/* UNTIL THE SERVER SENDS IT — delete this module (and its one call in main.js) once
 * web/pages.py hands these facts over in the config object.
 *
 * Fills in, only where the config lacks them, the facts the modules read from cfg:
 *   cfg.layers[i].style        Leaflet path options of a layer
 *   cfg.layers[i].classWeight  {road class: line weight} of the road layer
 *   cfg.facilityKinds          {kind: {label, color, shape}}
 *   cfg.rules, cfg.sliverColor {rule: {label, color}} and a sliver's colour (findings)
 *   cfg.lookupLayers           the layers the lookup answer lists, in order
 * The values are the ones the page used before the server sent them (labels from
 * cfg.strings; rule colours as web/catalog.py RULE_COLORS, SLIVER_COLOR).
 */

var STYLE = {
  street: {color: "#222222", weight: 3, fill: true, fillOpacity: 0},
  community: {color: "#1f78b4", weight: 2, fill: true, fillOpacity: 0},
  grid: {color: "#7f7f7f", weight: 1, fill: true, fillOpacity: 0.04, fillColor: "#999999"},
  police_area: {color: "#e31a1c", weight: 2.5, dashArray: "8 6", fill: false},
  police_beat: {color: "#ff7f00", weight: 1.5, dashArray: "4 4", fill: false},
  road: {color: "#666666", weight: 1.5}
};
var ROAD_WEIGHT = {primary: 3.5, secondary: 2, residential: 1};
var KIND_STYLE = {
  police_station: {color: "#08306b", shape: "square"},
  police_post: {color: "#2171b5", shape: "circle"},
  health_center: {color: "#238b45", shape: "cross"},
  service_hall: {color: "#6a51a3", shape: "diamond"},
  party_service_station: {color: "#cb181d", shape: "star"},
  school: {color: "#d94801", shape: "triangle"}
};
var RULE_COLORS = {overlap: "#d7191c", gap: "#2c7bb6", not_nested: "#7b3294",
                   misaligned: "#e66101", invalid_geometry: "#000000",
                   duplicate_code: "#636363", parent_mismatch: "#1a9641"};
var SLIVER_COLOR = "#ff00ff";
var LOOKUP_LAYERS = ["street", "community", "grid", "police_area", "police_beat"];

function has(obj, key) { return obj[key] !== undefined && obj[key] !== null; }

// A copy of cfg with whatever of the above it lacks filled in; cfg itself is not changed.
export function withDefaults(cfg) {
  var S = cfg.strings;
  var out = Object.assign({}, cfg);
  out.layers = cfg.layers.map(function (info) {
    var l = Object.assign({}, info);
    if (!has(l, "style")) l.style = STYLE[l.id] || {};
    if (l.id === "road" && !has(l, "classWeight")) l.classWeight = ROAD_WEIGHT;
    return l;
  });
  if (!has(out, "facilityKinds")) {
    out.facilityKinds = {};
    Object.keys(KIND_STYLE).forEach(function (k) {
      out.facilityKinds[k] = {label: S.kinds[k] || k, color: KIND_STYLE[k].color, shape: KIND_STYLE[k].shape};
    });
  }
  if (!has(out, "rules")) {
    out.rules = {};
    Object.keys(RULE_COLORS).forEach(function (r) {
      out.rules[r] = {label: S.rules[r] || r, color: RULE_COLORS[r]};
    });
  }
  if (!has(out, "sliverColor")) out.sliverColor = SLIVER_COLOR;
  if (!has(out, "lookupLayers")) out.lookupLayers = LOOKUP_LAYERS;
  return out;
}
