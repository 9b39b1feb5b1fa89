/* The area and line layers (streets, communities, grid cells, police areas and beats,
 * roads): one L.geoJSON group per layer, styled from cfg.layers[i].style (and, for roads,
 * cfg.layers[i].classWeight), fetched from the API for the current view, and restacked in
 * the page's order whenever one is drawn.
 *
 * Grid cells can be painted instead by service coverage (paint.cover: code → colour) or a
 * population theme (paint.theme: a key of cfg.themes, classified by themeColor).
 */
import {el, fmt, getJSON} from "./dom.js";
import {themeColor} from "./themes.js";

var MAX_DRAW = 6000;   // features of one layer drawn at once; beyond this, zoom in
var PAGE = 2000;       // features per request

function bboxParam(bounds) {
  var sw = bounds.getSouthWest(), ne = bounds.getNorthEast();
  var clamp = function (v, lo, hi) { return Math.max(lo, Math.min(hi, v)); };
  return [clamp(sw.lng, -180, 180), clamp(sw.lat, -90, 90),
          clamp(ne.lng, -180, 180), clamp(ne.lat, -90, 90)].map(function (v) {
    return v.toFixed(6); }).join(",");
}

// onClick(layer, feature, event): a click on a feature (not while Geoman draws a shape)
export function createAreaLayers(map, cfg, onClick, showNotice) {
  var S = cfg.strings;
  var groups = {};
  var generation = {};
  var paint = {cover: null, theme: ""};
  var byId = {};
  cfg.layers.forEach(function (info) { byId[info.id] = info; });

  function featureStyle(layer) {
    var info = byId[layer];
    return function (feature) {
      var s = L.extend({}, info.style);
      if (layer === "grid" && paint.cover) {
        var cc = paint.cover[feature.properties.code];
        s.fillColor = cc || "#d9f0d3";
        s.fillOpacity = cc ? 0.75 : 0.35;
      } else if (layer === "grid" && paint.theme && cfg.themes[paint.theme]) {
        s.fillColor = themeColor(cfg.themes[paint.theme], feature.properties);
        s.fillOpacity = 0.7;
      }
      if (info.classWeight) s.weight = info.classWeight[feature.properties["class"]] || 1;
      return s;
    };
  }

  function bindFeature(layer) {
    return function (feature, lyr) {
      var p = feature.properties;
      if (layer !== "road" || p.name) {
        lyr.bindTooltip(el("span", {text: (p.name || "") + (p.code ? " · " + p.code : "")}), {sticky: true});
      }
      // Not bindPopup: a bound popup stops the click, and a click on a feature must also
      // answer "who is responsible here" (and place a what-if site in adding mode).
      lyr.on("click", function (e) {
        if (map.pm && map.pm.globalDrawModeEnabled()) return;  // the click is a vertex
        L.DomEvent.stopPropagation(e);
        onClick(layer, feature, e);
      });
    };
  }

  cfg.layers.forEach(function (info) {
    // Only cells and communities are snapped to while editing (pmIgnore/snapIgnore: Geoman).
    var snap = info.id === "grid" || info.id === "community";
    var group = L.geoJSON(null, {style: featureStyle(info.id), onEachFeature: bindFeature(info.id),
                                 pmIgnore: true, snapIgnore: !snap});
    groups[info.id] = group;
    generation[info.id] = 0;
    if (info.shown) group.addTo(map);
  });

  function loadLayer(id) {
    var group = groups[id];
    if (!map.hasLayer(group)) return Promise.resolve();
    var info = byId[id];
    var whole = info.count <= MAX_DRAW;
    if (whole && group._gmWhole) return Promise.resolve();  // small layer: loaded once
    var gen = ++generation[id];
    var base = cfg.api.items.replace("LAYER", id) + "?";
    var bbox = whole ? "" : "bbox=" + bboxParam(map.getBounds().pad(0.2)) + "&";
    // A small layer's size is known from the page; a large one is counted in view first.
    var counted = whole ? Promise.resolve({numberMatched: info.count})
                        : getJSON(base + bbox + "limit=0");
    return counted.then(function (head) {
      if (gen !== generation[id]) return;
      if (head.numberMatched > MAX_DRAW) {
        group.clearLayers();
        group._gmWhole = false;
        if (id === "grid") showNotice(S.zoom_in + " (" + fmt(head.numberMatched, 0) + ")");
        return;
      }
      if (id === "grid") showNotice("");
      var pages = [];
      for (var off = 0; off < head.numberMatched; off += PAGE) {
        pages.push(getJSON(base + bbox + "limit=" + PAGE + "&offset=" + off));
      }
      return Promise.all(pages).then(function (results) {
        if (gen !== generation[id]) return;
        group.clearLayers();
        results.forEach(function (fc) { group.addData(fc); });
        group._gmWhole = whole;
        restack();
      });
    }).catch(function (err) { showNotice(err.message); });
  }

  // Layers load in whatever order their answers come, and a layer switched on is drawn
  // last: put them back in the page's order (streets below … grid cells on top, so a
  // click on a cell reaches the cell, not the community around it); then whatever must stay
  // above them lifts itself on gridmap:restack (findings first, then the editor's layers).
  function restack() {
    cfg.layers.forEach(function (info) {
      if (map.hasLayer(groups[info.id])) groups[info.id].bringToFront();
    });
    map.fire("gridmap:restack");
  }
  map.on("overlayadd", restack);

  return {
    groups: groups,
    paint: paint,
    refresh: function () { cfg.layers.forEach(function (info) { loadLayer(info.id); }); },
    reloadLayer: function (id) {  // after an edit: fetch the layer again
      if (!groups[id]) return Promise.resolve();
      groups[id]._gmWhole = false;
      return loadLayer(id);
    },
    restyleGrid: function () { if (groups.grid) groups.grid.setStyle(featureStyle("grid")); },
    showGrid: function () { if (groups.grid && !map.hasLayer(groups.grid)) groups.grid.addTo(map); }
  };
}
