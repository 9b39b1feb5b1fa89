/* The editor's layers, kept above the page's own (gridmap:restack): the selected cell
 * (select), a previewed change (preview), a change's cells before and after (diff) and a
 * proposed re-partition (proposal), whose cells are red outside the household band.
 */
import {el, fmt} from "../dom.js";

export function createEditLayers(map, S) {
  var select = L.geoJSON(null, {style: {color: "#e6550d", weight: 4, fill: false}, interactive: false}).addTo(map);
  var preview = L.geoJSON(null, {interactive: false, style: function (f) {
    return {color: "#d94801", weight: 2.5, dashArray: "6 4", fillColor: "#fd8d3c", fillOpacity: 0.25};
  }}).addTo(map);
  var diff = L.geoJSON(null, {style: function (f) {
    return f.properties.side === "before" ? {color: "#cb181d", weight: 2, dashArray: "4 4", fill: false}
                                          : {color: "#238b45", weight: 3, fillColor: "#74c476", fillOpacity: 0.25};
  }, onEachFeature: function (f, lyr) {
    lyr.bindTooltip(el("span", {text: (f.properties.side === "before" ? S.before : S.after) + " · " + f.properties.code +
                                      " · " + S.households + " " + fmt(f.properties.households, 0)}), {sticky: true});
  }}).addTo(map);
  var proposal = L.geoJSON(null, {style: function (f) {
    var inBand = f.properties._in_band;
    return {color: "#6a51a3", weight: 2.5, fillColor: inBand ? "#9e9ac8" : "#fb6a4a", fillOpacity: 0.35};
  }, onEachFeature: function (f, lyr) {
    lyr.bindTooltip(el("span", {text: f.properties.code + " · " + fmt(f.properties.households, 0) + " " + S.households_unit +
                                      " · PP " + fmt(f.properties.polsby_popper, 2)}), {sticky: true});
  }}).addTo(map);
  map.on("gridmap:restack", function () {  // the page restacked its layers: ours on top
    [diff, proposal, preview, select].forEach(function (l) { l.bringToFront(); });
  });
  return {select: select, preview: preview, diff: diff, proposal: proposal};
}
