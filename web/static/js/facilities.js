/* Facilities: one clustered marker per facility, drawn with its kind's symbol
 * (cfg.facilityKinds[kind]: label, color, shape), and the kinds' legend (#gm-kinds).
 */
import {el, getJSON, svgSymbol} from "./dom.js";

export function kindLabel(cfg, kind) {
  var k = cfg.facilityKinds[kind];
  return (k && k.label) || kind;
}

// The marker-cluster layer, on the map; null when the dataset has no facilities.
export function createFacilities(map, cfg) {
  if (!cfg.facilities) return null;
  var kinds = cfg.facilityKinds;
  // clusters small and quiet: a count in a grey disc, not a coloured bubble over the grid
  var layer = L.markerClusterGroup({
    disableClusteringAtZoom: 16, maxClusterRadius: 40, showCoverageOnHover: false,
    iconCreateFunction: function (cluster) {
      return L.divIcon({html: el("span", {text: String(cluster.getChildCount())}),
                        className: "gm-cluster", iconSize: [20, 20]});
    }
  });
  layer.addTo(map);
  layer.reload = function () {  // after an upload: the facilities as they are now
    return getJSON(cfg.api.items.replace("LAYER", "facility") + "?limit=10000").then(draw);
  };
  function draw(fc) {
    layer.clearLayers();
    fc.features.forEach(function (f) {
      var c = f.geometry.coordinates, p = f.properties;
      var holder = el("div", {"class": "gm-fac"}, [svgSymbol(kinds[p.kind])]);
      var marker = L.marker([c[1], c[0]], {icon: L.divIcon({html: holder, className: "gm-fac-icon", iconSize: [18, 18]})});
      marker.bindTooltip(el("span", {text: p.name}));
      marker.bindPopup(function () {
        return el("div", {}, [el("div", {"class": "gm-popup-title", text: kindLabel(cfg, p.kind)}),
                              el("div", {text: p.name}), el("div", {"class": "gm-muted", text: p.code})]);
      });
      layer.addLayer(marker);
    });
  }
  layer.reload();
  var legend = document.getElementById("gm-kinds");
  Object.keys(kinds).forEach(function (k) {
    legend.appendChild(el("div", {"class": "gm-legend-row"}, [svgSymbol(kinds[k]), el("span", {text: kindLabel(cfg, k)})]));
  });
  return layer;
}
