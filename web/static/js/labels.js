/* Names on the map, by zoom: the findings (their rule and the first feature they name,
 * in the rule's colour) from the district view, streets from the city view, communities
 * when they are large enough to read, grid cells close up (LABELS). Labels are placed
 * greedily, findings first, then higher levels, then the largest area, and one that would
 * overlap a label already placed is left out, so the map never shows a heap of names.
 * Only layers drawn as features are labelled (a layer drawn from vector tiles, at
 * province scale, is not), and only what the view holds (MAX_LABELS).
 * Labels are text in divIcons (never HTML from the data) and take no clicks.
 */
import {el} from "./dom.js";

// layer: [first zoom, last zoom], in the order they are placed; findings are named
// however small they are on screen (others only when the name fits their area)
var LABELS = {findings: [13, 22], street: [12, 14], community: [14, 16], grid: [16, 22]};
var ANY_SIZE = {findings: true};
var MAX_LABELS = 250;
var CHAR_PX = 13, HEIGHT_PX = 16, GAP_PX = 4;

// groups: {layer id: Leaflet layer}; texts: {layer id: function (feature) → {text, color}}
// for a layer not labelled by its features' names
export function installLabels(map, groups, texts) {
  var layer = L.layerGroup().addTo(map);

  function candidates() {
    var zoom = map.getZoom(), view = map.getBounds(), out = [];
    Object.keys(LABELS).forEach(function (id, rank) {
      var range = LABELS[id], group = groups[id];
      if (!group || !map.hasLayer(group) || zoom < range[0] || zoom > range[1]) return;
      group.eachLayer(function (lyr) {
        if (!lyr.feature) return;  // a tile layer, not features
        var said = texts && texts[id] ? texts[id](lyr.feature) : {text: lyr.feature.properties.name};
        if (!said.text) return;
        var c = {id: id, rank: rank, name: String(said.text), color: said.color};
        if (lyr.getLatLng) {  // a point: labelled beside it, whatever the zoom
          c.at = lyr.getLatLng(); c.size = Infinity; c.beside = true;
          if (!view.contains(c.at)) return;
        } else {
          var b = lyr.getBounds();
          if (!view.intersects(b)) return;
          c.at = b.getCenter();
          c.size = map.latLngToContainerPoint(b.getNorthEast()).distanceTo(map.latLngToContainerPoint(b.getSouthWest()));
        }
        out.push(c);
      });
    });
    // higher levels first, then the largest on screen
    return out.sort(function (a, b) { return a.rank - b.rank || b.size - a.size; });
  }

  // the panel and the legend cover the map: no label under them
  function covered() {
    var frame = map.getContainer().getBoundingClientRect();
    return [".gm-panel", ".gm-maplegend"].map(function (sel) {
      var node = map.getContainer().querySelector(sel);
      if (!node || !node.offsetWidth) return null;
      var r = node.getBoundingClientRect();
      return [r.left - frame.left, r.top - frame.top, r.right - frame.left, r.bottom - frame.top];
    }).filter(Boolean);
  }

  function draw() {
    layer.clearLayers();
    var placed = covered(), w = map.getSize().x, h = map.getSize().y;
    candidates().some(function (c) {
      var p = map.latLngToContainerPoint(c.at);
      var half = (c.name.length * CHAR_PX) / 2 + GAP_PX;
      if (c.beside) p = p.add([half + 8, 0]);  // right of the marker, not on it
      var box = [p.x - half, p.y - HEIGHT_PX / 2 - GAP_PX, p.x + half, p.y + HEIGHT_PX / 2 + GAP_PX];
      if (box[0] < 0 || box[1] < 0 || box[2] > w || box[3] > h) return false;
      if (half * 2 > c.size * 1.2 && !ANY_SIZE[c.id]) return false;  // wider than its area: clutter
      var hit = placed.some(function (o) { return box[0] < o[2] && o[0] < box[2] && box[1] < o[3] && o[1] < box[3]; });
      if (hit) return false;
      placed.push(box);
      var text = el("span", {"class": "gm-label gm-label-" + c.id, text: c.name});
      if (c.color) text.style.borderColor = c.color;
      layer.addLayer(L.marker(map.containerPointToLatLng(p), {icon: L.divIcon({html: text, className: "gm-label-icon", iconSize: null}),
                                     interactive: false, keyboard: false}));
      return layer.getLayers().length >= MAX_LABELS;
    });
  }

  map.on("moveend overlayadd overlayremove gridmap:restack", draw);
  return {draw: draw, layer: layer};
}
