/* The area and line layers (streets, communities, grid cells, police areas and beats,
 * roads): one L.geoJSON group per layer, styled from cfg.layers[i].style (and, for roads,
 * cfg.layers[i].classWeight), fetched from the API for the current view, and restacked in
 * the page's order whenever one is drawn. Where the view holds more features of a layer
 * than MAX_DRAW (a city or a province seen whole), the group draws the layer's vector
 * tiles instead (Leaflet.VectorGrid on canvas; generalised by the server below zoom 13),
 * styled, hovered and clicked like its features.
 *
 * Grid cells can be painted instead by service coverage (paint.cover: code → colour) or a
 * population theme (paint.theme: a key of cfg.themes, classified by themeColor).
 */
import {el, getJSON} from "./dom.js";
import {themeColor} from "./themes.js";

// Leaflet.VectorGrid 1.3 stops a click on a tile's feature with L.DomEvent.fakeStop, which
// Leaflet 1.8 removed; the map skips a click so marked (as it did with fakeStop).
if (L.DomEvent && !L.DomEvent.fakeStop) L.DomEvent.fakeStop = function (e) { e._stopped = true; };

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
  var groups = {};
  var generation = {};
  var paint = {cover: null, theme: ""};
  var byId = {};
  cfg.layers.forEach(function (info) { byId[info.id] = info; });

  // the style of a feature with properties p of layer `layer`
  function propertiesStyle(layer, p) {
    var info = byId[layer];
    var s = L.extend({}, info.style);
    if (layer === "grid" && paint.cover) {
      var cc = paint.cover[p.code];
      s.fillColor = cc || "#d9f0d3";
      s.fillOpacity = cc ? 0.75 : 0.35;
    } else if (layer === "grid" && paint.theme && cfg.themes[paint.theme]) {
      s.fillColor = themeColor(cfg.themes[paint.theme], p);
      s.fillOpacity = 0.7;
    }
    if (info.classWeight) s.weight = info.classWeight[p["class"]] || 1;
    return s;
  }

  function featureStyle(layer) {
    return function (feature) { return propertiesStyle(layer, feature.properties); };
  }

  function label(p) { return (p.name || "") + (p.code ? " · " + p.code : ""); }

  // The layer's vector tiles, made on first use (see the head of this file).
  var tiled = {};
  function tilesOf(id, order) {
    if (tiled[id]) return tiled[id];
    var info = byId[id], styles = {};
    styles[id] = function (p) {
      var s = propertiesStyle(id, p);
      s.fill = info.geometry !== "line";
      return s;
    };
    var vg = L.vectorGrid.protobuf(cfg.api.tiles.replace("LAYER", id), {
      rendererFactory: L.canvas.tile, vectorTileLayerStyles: styles, interactive: true,
      maxNativeZoom: 22, zIndex: 10 + order, getFeatureId: function (f) { return f.properties.id; }
    });
    var tip = L.tooltip({sticky: true});
    vg.on("mouseover", function (e) {
      var p = e.layer.properties;
      if (id === "road" && !p.name) return;
      tip.setContent(el("span", {text: label(p)}));
      map.openTooltip(tip, e.latlng);
    });
    vg.on("mouseout", function () { map.closeTooltip(tip); });
    // a tile's feature carries what the map paints by: the click asks for the whole feature
    // (every property, and its exact geometry for the editor)
    vg.on("click", function (e) {
      if (map.pm && map.pm.globalDrawModeEnabled()) return;
      var p = e.layer.properties;
      getJSON(cfg.api.items.replace("LAYER", id) + "/" + encodeURIComponent(p.id))
        .then(function (f) { onClick(id, f, e); })
        .catch(function () { onClick(id, {type: "Feature", id: p.id, properties: p}, e); });
    });
    tiled[id] = vg;
    return vg;
  }

  function bindFeature(layer) {
    return function (feature, lyr) {
      var p = feature.properties;
      if (layer !== "road" || p.name) lyr.bindTooltip(el("span", {text: label(p)}), {sticky: true});
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
      if (head.numberMatched > MAX_DRAW) {  // too many to draw one by one: tiles
        var vg = tilesOf(id, cfg.layers.indexOf(info));
        if (!group.hasLayer(vg)) { group.clearLayers(); group.addLayer(vg); }
        group._gmWhole = false;
        return;
      }
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
      if (tiled[id] && groups[id].hasLayer(tiled[id])) tiled[id].redraw();  // revalidated
      return loadLayer(id);
    },
    restyleGrid: function () {
      if (!groups.grid) return;
      groups.grid.setStyle(featureStyle("grid"));
      if (tiled.grid && groups.grid.hasLayer(tiled.grid)) tiled.grid.redraw();
    },
    showGrid: function () { if (groups.grid && !map.hasLayer(groups.grid)) groups.grid.addTo(map); }
  };
}
