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

  // How many features of layer `id` the view holds (a small layer's count is in the page).
  function countInView(id) {
    var info = byId[id];
    if (info.count <= MAX_DRAW) return Promise.resolve(info.count);
    var url = cfg.api.items.replace("LAYER", id) + "?bbox=" + bboxParam(map.getBounds().pad(0.2)) + "&limit=0";
    return getJSON(url).then(function (head) { return head.numberMatched; });
  }

  function drawTiles(id) {
    var group = groups[id], vg = tilesOf(id, cfg.layers.indexOf(byId[id]));
    if (!group.hasLayer(vg)) { group.clearLayers(); group.addLayer(vg); }
    group._gmWhole = false;
  }

  function drawFeatures(id, n) {
    var group = groups[id], whole = byId[id].count <= MAX_DRAW;
    if (whole && group._gmWhole) return Promise.resolve();  // small layer: loaded once
    var gen = ++generation[id];
    var base = cfg.api.items.replace("LAYER", id) + "?";
    var bbox = whole ? "" : "bbox=" + bboxParam(map.getBounds().pad(0.2)) + "&";
    var pages = [];
    for (var off = 0; off < n; off += PAGE) {
      pages.push(getJSON(base + bbox + "limit=" + PAGE + "&offset=" + off));
    }
    return Promise.all(pages).then(function (results) {
      if (gen !== generation[id]) return;
      group.clearLayers();
      results.forEach(function (fc) { group.addData(fc); });
      group._gmWhole = whole;
      restack();
    });
  }

  // Draw the shown layers for the view: one by one where the view holds few enough of a
  // layer's features, else from tiles — and every layer below a tiled one from tiles too
  // (tiles lie beneath features on the map: a community drawn as features above tiled
  // cells would take their hovers and clicks).
  var round = 0;
  function refresh() {
    var ids = cfg.layers.map(function (info) { return info.id; })
      .filter(function (id) { return map.hasLayer(groups[id]); });
    var mine = ++round;
    return Promise.all(ids.map(countInView)).then(function (counts) {
      if (mine !== round) return;
      var tiles = false, work = [];
      for (var k = ids.length - 1; k >= 0; k--) {  // from the top of the stack down
        tiles = tiles || counts[k] > MAX_DRAW;
        if (tiles) drawTiles(ids[k]); else work.push(drawFeatures(ids[k], counts[k]));
      }
      return Promise.all(work);
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
    refresh: refresh,
    reloadLayer: function (id) {  // after an edit: fetch the layer again
      if (!groups[id]) return Promise.resolve();
      groups[id]._gmWhole = false;
      if (tiled[id] && groups[id].hasLayer(tiled[id])) tiled[id].redraw();  // revalidated
      return refresh();
    },
    restyleGrid: function () {
      if (!groups.grid) return;
      groups.grid.setStyle(featureStyle("grid"));
      if (tiled.grid && groups.grid.hasLayer(tiled.grid)) tiled.grid.redraw();
    },
    showGrid: function () { if (groups.grid && !map.hasLayer(groups.grid)) groups.grid.addTo(map); }
  };
}
