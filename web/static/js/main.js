/* gridmap map page, the entry module: installs window.gridmap = {start}; the page calls
 * gridmap.start(map, cfg) once it has loaded. start() puts the panel beside the map, builds
 * each panel's part (layers, facilities, findings, themes, search, lookup, coverage,
 * alignment and its aligned layout; then
 * the editor), routes clicks, and leaves the parts in window.gridmap.current.
 *
 * Every name and attribute from the data is inserted as text (textContent / text nodes),
 * never as HTML. Colours of themes, coverage and findings come computed from the server.
 */
import {el, fmt, getJSON} from "./dom.js";
import {installPanel, fitter, notifier, showTab} from "./view.js";
import {createAreaLayers} from "./layers.js";
import {attributeTable} from "./attributes.js";
import {createFacilities} from "./facilities.js";
import {createFindings, findingColor} from "./findings.js";
import {installThemes} from "./themes.js";
import {installSearch} from "./search.js";
import {createLookup} from "./lookup.js";
import {installCoverage} from "./coverage.js";
import {installAlignment} from "./alignment.js";
import {installRealign} from "./realign.js";
import {installEditor} from "./edit/index.js";
import {installLegend} from "./legend.js";
import {installLabels} from "./labels.js";

function build(map, cfg, panel) {
  var S = cfg.strings;
  var clickHooks = [];      // functions (layer, feature, event) → true when they took it

  map.attributionControl.setPrefix(false);
  if (!map.options.maxZoom) map.setMaxZoom(19);  // no tile layer sets one by default
  L.control.scale({imperial: false}).addTo(map);
  var showNotice = notifier();
  var fitTo = fitter(map, panel);

  // Parts are made in this order: it is the order of their layers on the map and of their
  // first requests.
  var areas = createAreaLayers(map, cfg, featureClick, showNotice);
  var facilities = createFacilities(map, cfg);
  var findings = createFindings(map, cfg, fitTo, showNotice, function (latlng) {
    lookup(latlng.lat, latlng.lng);  // inside a finding: who is (or is not) in charge there
  });
  installThemes(map, cfg, areas);
  installSearch(map, cfg, fitTo, showNotice, function (lat, lon) { lookup(lat, lon); });
  var lookup = createLookup(map, cfg);
  var coverage = installCoverage(map, cfg, areas, showNotice);
  var alignment = installAlignment(map, cfg, findings, fitTo, showNotice);
  installRealign(map, cfg, fitTo, areas.reloadLayer, alignment.reload);

  // A click on a feature: a what-if site being placed, else the editor's (it takes clicks
  // on cells while it is selecting), else the feature's attributes and the lookup there.
  function featureClick(layer, feature, e) {
    if (coverage.placeSite(e.latlng)) return;
    if (clickHooks.some(function (h) { return h(layer, feature, e); })) return;
    L.popup().setLatLng(e.latlng).setContent(attributeTable(S, layer, feature.properties)).openOn(map);
    lookup(e.latlng.lat, e.latlng.lng);
  }
  map.on("click", function (e) {  // on no feature
    if (coverage.placeSite(e.latlng)) return;
    lookup(e.latlng.lat, e.latlng.lng);
  });

  var overlays = {};
  cfg.layers.forEach(function (info) { overlays[info.title] = areas.groups[info.id]; });
  if (facilities) overlays[S.facility] = facilities;
  overlays[S.findings] = findings;
  L.control.layers(null, overlays, {collapsed: true, position: "topleft"}).addTo(map);
  map.on("moveend", areas.refresh);
  map.on("overlayadd", areas.refresh);
  areas.refresh();
  installLegend(map, cfg, {layers: areas.groups, facilities: facilities, findings: findings});
  var labels = installLabels(map, Object.assign({findings: findings}, areas.groups), {
    findings: function (f) { return {text: findings.labelOf(f.properties), color: findingColor(cfg, f.properties)}; }
  });
  return {map: map, layers: areas.groups, findings: findings, facilities: facilities,
          alignment: alignment.outline,
          areas: coverage.areas, sites: coverage.sites, whatif: coverage.whatif, clickHooks: clickHooks,
          reloadLayer: areas.reloadLayer, fitTo: fitTo, el: el, fmt: fmt, getJSON: getJSON, showNotice: showNotice,
          showTab: showTab, labels: labels.layer};
}

window.gridmap = {
  // cfg: the page's configuration from web/pages.py (layer styles, facility kinds, rules
  // and the lookup's layers come from the server's registry and rule table)
  start: function (map, cfg) {
    var panel = installPanel(map);
    var api = build(map, cfg, panel);
    window.gridmap.current = api;
    installEditor(api, cfg);
    document.documentElement.setAttribute("lang", cfg.lang === "en" ? "en" : "zh-CN");
    return api;
  }
};
