/* Editing tools: selecting a grid cell (a planner's click on a cell; anyone's click shows
 * the cell's history) and the operations on it, drawn with Leaflet-Geoman — reshape (drag
 * its vertices), split (draw a line), merge (pick neighbours), move a piece to it, draw a
 * new cell in its community. Each ends in a preview (ed.changes.preview).
 */
import {fmt} from "../dom.js";

var OP_BUTTONS = ["gm-op-reshape", "gm-op-split", "gm-op-merge", "gm-op-move", "gm-op-draw"];

export function createTools(ed) {
  var S = ed.S, map = ed.map, $ = ed.$, on = ed.on, selectLayer = ed.layers.select;
  var selected = null;        // the selected cell's feature
  var mergeWith = [];         // codes picked to merge with it
  var mode = "";              // "", "merge"
  var editable = null;        // the polygon being reshaped

  function select(feature) {
    selected = feature;
    mergeWith = [];
    selectLayer.clearLayers().addData(feature);
    $("gm-selected").textContent = S.selected + ": " + feature.properties.name + " · " + feature.properties.code +
      " · " + S.households + " " + fmt(feature.properties.households, 0);
    ed.proposal.forCell(feature);
    setButtons(true);
    ed.history.show(feature.properties.code);
  }

  function deselect() {  // after a save
    selectLayer.clearLayers();
    selected = null;
    setButtons(false);
    $("gm-selected").textContent = "";
  }

  function setButtons(on) {
    OP_BUTTONS.forEach(function (id) {
      if ($(id)) $(id).disabled = !on || !ed.planner;
    });
  }

  ed.api.clickHooks.push(function (layer, feature) {
    if (layer !== "grid" || map.pm.globalDrawModeEnabled()) return false;
    if (!ed.planner) {  // anyone may read a cell's history
      ed.history.show(feature.properties.code);
      return false;
    }
    if (mode === "merge" && selected && feature.properties.code !== selected.properties.code) {
      if (mergeWith.indexOf(feature.properties.code) < 0) mergeWith.push(feature.properties.code);
      selectLayer.addData(feature);
      ed.changes.preview({op: "merge", codes: [selected.properties.code].concat(mergeWith)});
      return true;
    }
    if (editable) return true;
    select(feature);
    return false;  // the popup and lookup still show
  });

  function stopDrawing() {
    map.closePopup();  // an open popup would swallow the clicks that place vertices
    if (map.pm.globalDrawModeEnabled()) map.pm.disableDraw();
    if (editable) { map.removeLayer(editable); editable = null; }
    mode = "";
  }

  function drawThen(shape, hint, makeOp) {
    stopDrawing();
    ed.say(hint);
    map.pm.enableDraw(shape, {snappable: true, snapDistance: 15, finishOn: shape === "Line" ? "dblclick" : null});
    map.once("pm:create", function (e) {
      var geom = e.layer.toGeoJSON().geometry;
      map.removeLayer(e.layer);
      map.pm.disableDraw();
      ed.changes.preview(makeOp(geom));
    });
  }

  on("gm-op-reshape", function () {
    if (!selected) return;
    stopDrawing();
    // an editable copy of the cell (largest part of a multipolygon)
    editable = L.geoJSON(selected, {pmIgnore: false, snapIgnore: true,
                                    style: {color: "#e6550d", weight: 3, fillOpacity: 0.1}}).getLayers()[0];
    editable.options.pmIgnore = false;
    L.PM.reInitLayer(editable);
    editable.addTo(map);
    editable.pm.enable({snappable: true, snapDistance: 15, allowSelfIntersection: false});
    ed.say(S.drag_vertices);
    $("gm-preview").hidden = false;
  });
  on("gm-preview", function () {
    if (!editable || !selected) return;
    ed.changes.preview({op: "reshape", code: selected.properties.code, geometry: editable.toGeoJSON().geometry});
  });
  on("gm-op-split", function () {
    if (!selected) return;
    drawThen("Line", S.draw_line, function (g) { return {op: "split", code: selected.properties.code, line: g}; });
  });
  on("gm-op-merge", function () {
    if (!selected) return;
    stopDrawing();
    mode = "merge";
    ed.say(S.pick_neighbour);
  });
  on("gm-op-move", function () {
    if (!selected) return;
    drawThen("Polygon", S.draw_piece, function (g) { return {op: "move", to: selected.properties.code, geometry: g}; });
  });
  on("gm-op-draw", function () {
    if (!selected) return;
    drawThen("Polygon", S.draw_new, function (g) { return {op: "draw", community: selected.properties.parent_code, geometry: g}; });
  });

  return {select: select, deselect: deselect, setButtons: setButtons, stopDrawing: stopDrawing};
}
