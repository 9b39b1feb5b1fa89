/* gridmap map page: layers fetched from the API for the current view, findings, facilities,
 * population themes, search and point lookup.
 *
 * Every name and attribute from the data is inserted as text (textContent / text nodes),
 * never as HTML: a feature called "<img src=x onerror=alert(1)>" shows literally.
 * Colours of themes and findings come computed from the server (properties _fill, _color).
 */
(function () {
  "use strict";

  var MAX_DRAW = 6000;   // features of one layer drawn at once; beyond this, zoom in
  var PAGE = 2000;       // features per request

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

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function svgSymbol(kind) {
    var st = KIND_STYLE[kind] || {color: "#444444", shape: "circle"};
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 20 20");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "18");
    var shape;
    var shapes = {
      circle: ["circle", {cx: 10, cy: 10, r: 7}],
      square: ["rect", {x: 3, y: 3, width: 14, height: 14}],
      diamond: ["polygon", {points: "10,2 18,10 10,18 2,10"}],
      triangle: ["polygon", {points: "10,2 18,17 2,17"}],
      star: ["polygon", {points: "10,1 12.6,7 19,7.5 14,11.6 15.6,18 10,14.5 4.4,18 6,11.6 1,7.5 7.4,7"}],
      cross: ["polygon", {points: "7,2 13,2 13,7 18,7 18,13 13,13 13,18 7,18 7,13 2,13 2,7 7,7"}]
    }[st.shape];
    shape = document.createElementNS(ns, shapes[0]);
    Object.keys(shapes[1]).forEach(function (k) { shape.setAttribute(k, shapes[1][k]); });
    shape.setAttribute("fill", st.color);
    shape.setAttribute("stroke", "#ffffff");
    shape.setAttribute("stroke-width", "1.5");
    svg.appendChild(shape);
    return svg;
  }

  function fmt(n, digits) {
    if (n === null || n === undefined) return "—";
    return Number(n).toLocaleString(undefined, {maximumFractionDigits: digits === undefined ? 1 : digits});
  }

  function bboxParam(bounds) {
    var sw = bounds.getSouthWest(), ne = bounds.getNorthEast();
    var clamp = function (v, lo, hi) { return Math.max(lo, Math.min(hi, v)); };
    return [clamp(sw.lng, -180, 180), clamp(sw.lat, -90, 90),
            clamp(ne.lng, -180, 180), clamp(ne.lat, -90, 90)].map(function (v) {
      return v.toFixed(6); }).join(",");
  }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin"}).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.description || r.statusText);
        return body;
      });
    });
  }

  function start(map, cfg, panelNode) {
    var S = cfg.strings;
    var theme = "";
    var coverColors = null;   // grid code -> colour of an uncovered cell, from /coverage
    var adding = false;       // the next click places a what-if site
    var overlays = {};
    var layerGroups = {};
    var generation = {};
    var clickHooks = [];      // functions (layer, feature, event) → true when they took it

    map.attributionControl.setPrefix(false);
    if (!map.options.maxZoom) map.setMaxZoom(19);  // no tile layer sets one by default
    L.control.scale({imperial: false}).addTo(map);
    var notice = document.getElementById("gm-notice");

    function featureStyle(layer) {
      return function (feature) {
        var s = L.extend({}, STYLE[layer]);
        if (layer === "grid" && coverColors) {
          var cc = coverColors[feature.properties.code];
          s.fillColor = cc || "#d9f0d3";
          s.fillOpacity = cc ? 0.75 : 0.35;
        } else if (layer === "grid" && theme && feature.properties._fill) {
          s.fillColor = feature.properties._fill[theme];
          s.fillOpacity = 0.7;
        }
        if (layer === "road") s.weight = ROAD_WEIGHT[feature.properties["class"]] || 1;
        return s;
      };
    }

    function attributeTable(layer, p) {
      var rows = [[S.code, p.code], [S.name, p.name]];
      if (layer === "grid" || layer === "community") {
        rows.push([S.parent, (p.parent_name || "") + " " + (p.parent_code || "")]);
      }
      if (layer === "grid") {
        rows.push([S.households, fmt(p.households, 0)], [S.population, fmt(p.population, 0)]);
        if (p.floating_population !== undefined && p.floating_population !== null) {
          rows.push([S.floating_population, fmt(p.floating_population, 0)]);
        }
        rows.push([S.density_per_km2, fmt(p.density_per_km2, 0)],
                  [S.floating_share_pct, fmt(p.floating_share_pct, 1)]);
      }
      if (p.police_area_name) rows.push([S.responsible_police, p.police_area_name + " " + p.police_area_code]);
      if (p.police_beat_name) rows.push([S.police_beat_name, p.police_beat_name + " " + p.police_beat_code]);
      if (layer === "road" && p.name) rows = [[S.name, p.name], [S.kind, p["class"]]];
      var table = el("table", {"class": "gm-attrs"});
      rows.forEach(function (r) {
        table.appendChild(el("tr", {}, [el("th", {text: r[0]}), el("td", {text: String(r[1] === null || r[1] === undefined ? "—" : r[1])})]));
      });
      return el("div", {}, [el("div", {"class": "gm-popup-title", text: S[layer] || layer}), table]);
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
          if (adding) { addSite(e.latlng); return; }
          // the editor (gridmap-edit.js) takes clicks on cells while it is selecting
          if (clickHooks.some(function (h) { return h(layer, feature, e); })) return;
          L.popup().setLatLng(e.latlng).setContent(attributeTable(layer, p)).openOn(map);
          lookup(e.latlng.lat, e.latlng.lng);
        });
      };
    }

    // ---------------------------------------------------------------- area and line layers
    cfg.layers.forEach(function (info) {
      // Only cells and communities are snapped to while editing (pmIgnore/snapIgnore: Geoman).
      var snap = info.id === "grid" || info.id === "community";
      var group = L.geoJSON(null, {style: featureStyle(info.id), onEachFeature: bindFeature(info.id),
                                   pmIgnore: true, snapIgnore: !snap});
      layerGroups[info.id] = group;
      overlays[info.title] = group;
      generation[info.id] = 0;
      if (info.shown) group.addTo(map);
    });

    function showNotice(text) {
      if (!notice) return;
      notice.textContent = text || "";
      notice.hidden = !text;
    }

    function loadLayer(id) {
      var group = layerGroups[id];
      if (!map.hasLayer(group)) return Promise.resolve();
      var info = cfg.layers.filter(function (l) { return l.id === id; })[0];
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
    // click on a cell reaches the cell, not the community around it), findings above all;
    // the editor then lifts its own layers (gridmap:restack).
    function restack() {
      cfg.layers.forEach(function (info) {
        if (map.hasLayer(layerGroups[info.id])) layerGroups[info.id].bringToFront();
      });
      if (findingsLayer) findingsLayer.bringToFront();  // defects stay visible on top
      map.fire("gridmap:restack");
    }
    map.on("overlayadd", restack);

    // Zoom to bounds without putting them under the panel (open, beside the map on a wide
    // screen; folded over it on a phone).
    function fitTo(bounds, maxZoom) {
      var right = 10;
      if (panelNode && panelNode.classList.contains("gm-open") &&
          panelNode.offsetWidth < map.getSize().x * 0.6) right += panelNode.offsetWidth;
      map.fitBounds(bounds, {maxZoom: maxZoom, paddingTopLeft: [10, 10], paddingBottomRight: [right, 10]});
    }

    function refresh() {
      cfg.layers.forEach(function (info) { loadLayer(info.id); });
    }

    // ---------------------------------------------------------------- facilities
    var facilities = null;
    if (cfg.facilities) {
      facilities = L.markerClusterGroup({disableClusteringAtZoom: 17, maxClusterRadius: 50});
      overlays[S.facility] = facilities;
      facilities.addTo(map);
      getJSON(cfg.api.items.replace("LAYER", "facility") + "?limit=10000").then(function (fc) {
        fc.features.forEach(function (f) {
          var c = f.geometry.coordinates, p = f.properties;
          var holder = el("div", {"class": "gm-fac"}, [svgSymbol(p.kind)]);
          var marker = L.marker([c[1], c[0]], {icon: L.divIcon({html: holder, className: "gm-fac-icon", iconSize: [18, 18]})});
          marker.bindTooltip(el("span", {text: p.name}));
          marker.bindPopup(function () {
            return el("div", {}, [el("div", {"class": "gm-popup-title", text: S.kinds[p.kind] || p.kind}),
                                  el("div", {text: p.name}), el("div", {"class": "gm-muted", text: p.code})]);
          });
          facilities.addLayer(marker);
        });
      });
      var kinds = document.getElementById("gm-kinds");
      Object.keys(KIND_STYLE).forEach(function (k) {
        kinds.appendChild(el("div", {"class": "gm-legend-row"}, [svgSymbol(k), el("span", {text: S.kinds[k] || k})]));
      });
    }

    // ---------------------------------------------------------------- findings
    var findingsLayer = L.geoJSON(null, {
      style: function (f) { return {color: f.properties._color, weight: 2, fillColor: f.properties._color, fillOpacity: 0.45}; },
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, {radius: 7, color: "#ffffff", weight: 2, fillColor: f.properties._color, fillOpacity: 0.95});
      },
      onEachFeature: function (f, lyr) {
        lyr.bindPopup(function () { return findingCard(f.properties); });
      }
    }).addTo(map);
    overlays[S.findings] = findingsLayer;

    function findingLabel(p) {
      return (S.rules[p.rule] || p.rule) + (p.kind === "sliver" ? " (" + S.rules.sliver + ")" : "");
    }

    function findingCard(p) {
      var rows = [[S.rule, findingLabel(p)], [S.layer || S.layers, S[p.layer] || p.layer],
                  [S.features, p.features.join(", ")]];
      if (p.area_m2 !== null) rows.push([S.area, fmt(p.area_m2, 1) + " m²"], [S.width, fmt(p.width_m, 2) + " m"]);
      if (p.detail) rows.push(["", p.detail]);
      var table = el("table", {"class": "gm-attrs"});
      rows.forEach(function (r) { table.appendChild(el("tr", {}, [el("th", {text: r[0]}), el("td", {text: r[1]})])); });
      return el("div", {}, [el("div", {"class": "gm-popup-title", text: findingLabel(p)}), table]);
    }

    getJSON(cfg.api.findings).then(function (fc) {
      findingsLayer.addData(fc);
      var list = document.getElementById("gm-findings");
      document.getElementById("gm-summary").textContent = "(" + fc.features.length + ")";
      if (!fc.features.length) list.appendChild(el("li", {text: S.no_findings}));
      findingsLayer.eachLayer(function (lyr) {
        var p = lyr.feature.properties;
        var swatch = el("span", {"class": "gm-swatch"});
        swatch.style.background = p._color;
        var text = findingLabel(p) + " · " + p.features.join(", ") +
          (p.area_m2 !== null ? " · " + fmt(p.area_m2, 0) + " m²" : "");
        var item = el("li", {"class": "gm-link", tabindex: "0"}, [swatch, el("span", {text: text})]);
        var go = function () {
          if (lyr.getBounds) fitTo(lyr.getBounds().pad(0.5), 18);
          else map.setView(lyr.getLatLng(), 18);
          lyr.openPopup();
        };
        item.addEventListener("click", go);
        item.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
        list.appendChild(item);
      });
    }).catch(function (err) { showNotice(err.message); });

    // ---------------------------------------------------------------- themes
    var legend = document.getElementById("gm-legend");
    document.getElementById("gm-theme").addEventListener("change", function (e) {
      theme = e.target.value;
      layerGroups.grid && layerGroups.grid.setStyle(featureStyle("grid"));
      legend.textContent = "";
      if (!theme) return;
      var t = cfg.themes[theme], lower = null;
      t.bins.forEach(function (upper, i) {
        var sw = el("span", {"class": "gm-swatch"});
        sw.style.background = t.colors[i];
        var range = (lower === null ? "≤ " : fmt(lower, 1) + " – ") + fmt(upper, 1) + (t.unit ? " " + t.unit : "");
        legend.appendChild(el("div", {"class": "gm-legend-row"}, [sw, el("span", {text: range})]));
        lower = upper;
      });
      if (layerGroups.grid && !map.hasLayer(layerGroups.grid)) layerGroups.grid.addTo(map);
    });

    // ---------------------------------------------------------------- search
    var results = document.getElementById("gm-results");
    var searchTimer = null;
    document.getElementById("gm-search").addEventListener("input", function (e) {
      clearTimeout(searchTimer);
      var q = e.target.value;
      searchTimer = setTimeout(function () {
        results.textContent = "";
        if (!q.trim()) return;
        getJSON(cfg.api.search + "?q=" + encodeURIComponent(q)).then(function (body) {
          results.textContent = "";
          body.results.forEach(function (r) {
            var li = el("li", {"class": "gm-link", tabindex: "0"},
                        [el("span", {text: r.name}), el("span", {"class": "gm-muted", text: " " + (S[r.layer] || r.layer) + " " + r.code})]);
            var go = function () {
              var b = r.bbox;
              if (b[0] === b[2] && b[1] === b[3]) map.setView([b[1], b[0]], 18);
              else fitTo([[b[1], b[0]], [b[3], b[2]]], 18);
            };
            li.addEventListener("click", go);
            li.addEventListener("keydown", function (ev) { if (ev.key === "Enter") go(); });
            results.appendChild(li);
          });
        }).catch(function (err) { showNotice(err.message); });
      }, 250);
    });

    // ---------------------------------------------------------------- lookup
    var lookupBox = document.getElementById("gm-lookup");
    var lookupMarker = null;
    var pathLayer = L.geoJSON(null, {style: function (f) {
      return {color: (KIND_STYLE[f.properties.kind] || {}).color || "#333333", weight: 4,
              opacity: 0.85, dashArray: "6 4"}; }}).addTo(map);
    function lookup(lat, lon) {
      lookupBox.textContent = S.loading;
      getJSON(cfg.api.lookup + "?lon=" + lon.toFixed(7) + "&lat=" + lat.toFixed(7)).then(function (body) {
        lookupBox.textContent = "";
        var table = el("table", {"class": "gm-attrs"});
        ["street", "community", "grid", "police_area", "police_beat"].forEach(function (k) {
          if (!(k in body.areas)) return;
          var a = body.areas[k];
          table.appendChild(el("tr", {}, [el("th", {text: S[k]}), el("td", {text: a ? a.name + " " + a.code : S.none})]));
        });
        lookupBox.appendChild(el("div", {"class": "gm-muted", text: lon.toFixed(6) + ", " + lat.toFixed(6)}));
        lookupBox.appendChild(table);
        if (body.nearest.length) {
          lookupBox.appendChild(el("div", {"class": "gm-popup-title", text: S.nearest}));
          var near = el("table", {"class": "gm-attrs"});
          body.nearest.forEach(function (n) {
            near.appendChild(el("tr", {}, [el("th", {text: S.kinds[n.kind] || n.kind}),
              el("td", {text: n.name + " · " + fmt(n.distance_m, 0) + " m (" + (S[n.method] || n.method) + ")"})]));
          });
          lookupBox.appendChild(near);
        }
        pathLayer.clearLayers();
        body.nearest.forEach(function (n) {
          if (n.path) pathLayer.addData({type: "Feature", properties: {kind: n.kind}, geometry: n.path});
        });
        if (lookupMarker) map.removeLayer(lookupMarker);
        lookupMarker = L.circleMarker([lat, lon], {radius: 6, color: "#000000", weight: 2, fillColor: "#ffff00", fillOpacity: 1}).addTo(map);
        panelNode.classList.add("gm-open");
      }).catch(function (err) { lookupBox.textContent = err.message; });
    }
    map.on("click", function (e) {
      if (adding) { addSite(e.latlng); return; }
      lookup(e.latlng.lat, e.latlng.lng);
    });

    // ---------------------------------------------------------------- coverage and siting
    var covKind = "";
    var areasLayer = L.geoJSON(null, {style: {color: "#1a9850", weight: 3, opacity: 0.8}}).addTo(map);
    var sitesLayer = L.layerGroup().addTo(map);
    var whatifLayer = L.layerGroup().addTo(map);
    var totalsBox = document.getElementById("gm-cov-totals");
    var siteBox = document.getElementById("gm-site-result");

    function showTotals(t) {
      totalsBox.textContent = S.uncovered + ": " + fmt(t.uncovered_households, 0) + " / " +
        fmt(t.households, 0) + " " + S.households_unit + " · " + t.radius_m + " m (" + (S[t.method] || t.method) + ")" +
        (t.newly_covered_households !== undefined ? " · " + S.newly + " " + fmt(t.newly_covered_households, 0) : "");
    }

    function whatif() {
      var sites = [];
      whatifLayer.eachLayer(function (m) { var ll = m.getLatLng(); sites.push([ll.lng, ll.lat]); });
      fetch(cfg.api.whatif, {method: "POST", headers: {"Content-Type": "application/json"},
                             body: JSON.stringify({kind: covKind, sites: sites})})
        .then(function (r) { return r.json(); }).then(function (body) {
          if (body.totals) showTotals(body.totals); else showNotice(body.description);
        });
    }

    function addSite(latlng) {
      adding = false;
      document.getElementById("gm-add").classList.remove("gm-active");
      var m = L.marker(latlng, {draggable: true}).addTo(whatifLayer);
      m.on("dragend", whatif);
      whatif();
    }

    document.getElementById("gm-add").addEventListener("click", function (e) {
      if (!covKind) return;
      adding = true;
      e.target.classList.add("gm-active");
      siteBox.textContent = S.click_to_add;
    });

    document.getElementById("gm-cov-kind").addEventListener("change", function (e) {
      covKind = e.target.value;
      areasLayer.clearLayers(); sitesLayer.clearLayers(); whatifLayer.clearLayers();
      totalsBox.textContent = ""; siteBox.textContent = "";
      if (!covKind) { coverColors = null; layerGroups.grid.setStyle(featureStyle("grid")); return; }
      totalsBox.textContent = S.loading;
      getJSON(cfg.api.coverage + "?kind=" + encodeURIComponent(covKind)).then(function (body) {
        coverColors = {};
        body.grids.forEach(function (g) { if (g._color) coverColors[g.code] = g._color; });
        if (!map.hasLayer(layerGroups.grid)) layerGroups.grid.addTo(map);
        layerGroups.grid.setStyle(featureStyle("grid"));
        showTotals(body.totals);
      }).catch(function (err) { totalsBox.textContent = err.message; });
      getJSON(cfg.api.areas + "?kind=" + encodeURIComponent(covKind)).then(function (fc) {
        areasLayer.addData(fc);
      });
    });

    document.getElementById("gm-site").addEventListener("click", function () {
      if (!covKind) return;
      siteBox.textContent = S.loading;
      getJSON(cfg.api.siting + "?p=5&kind=" + encodeURIComponent(covKind)).then(function (r) {
        sitesLayer.clearLayers();
        r.suggestions.forEach(function (sg) {
          var holder = el("div", {"class": "gm-rank", text: String(sg.rank)});
          L.marker([sg.lat, sg.lon], {icon: L.divIcon({html: holder, className: "gm-rank-icon", iconSize: [22, 22]})})
            .bindTooltip(el("span", {text: "#" + sg.rank + " · " + S.newly + " " + fmt(sg.newly_covered_households, 0) + " " + S.households_unit}))
            .addTo(sitesLayer);
        });
        siteBox.textContent = S.newly + " " + fmt(r.newly_covered_households, 0) + " " + S.households_unit +
          " · " + (r.proven_optimal ? S.optimal : S.not_optimal) + " (" + r.status + ", " + r.solve_s + " s)";
      }).catch(function (err) { siteBox.textContent = err.message; });
    });
    document.getElementById("gm-coord").addEventListener("submit", function (e) {
      e.preventDefault();
      var lon = parseFloat(document.getElementById("gm-lon").value);
      var lat = parseFloat(document.getElementById("gm-lat").value);
      if (isFinite(lon) && isFinite(lat)) { map.setView([lat, lon], Math.max(map.getZoom(), 16)); lookup(lat, lon); }
    });

    // ---------------------------------------------------------------- wiring
    L.control.layers(null, overlays, {collapsed: true, position: "topleft"}).addTo(map);
    map.on("moveend", refresh);
    map.on("overlayadd", refresh);
    refresh();
    function reloadLayer(id) {  // after an edit: fetch the layer again
      if (!layerGroups[id]) return Promise.resolve();
      layerGroups[id]._gmWhole = false;
      return loadLayer(id);
    }
    return {map: map, layers: layerGroups, findings: findingsLayer, facilities: facilities,
            areas: areasLayer, sites: sitesLayer, whatif: whatifLayer, clickHooks: clickHooks,
            reloadLayer: reloadLayer, fitTo: fitTo, el: el, fmt: fmt, getJSON: getJSON, showNotice: showNotice};
  }

  window.gridmap = {
    start: function (map, cfg) {
      var panel = document.getElementById("gm-panel");
      var api;
      // The server-rendered panel becomes a Leaflet control: it scrolls and takes clicks
      // without moving the map.
      var Panel = L.Control.extend({
        options: {position: "topright"},
        onAdd: function () {
          L.DomEvent.disableClickPropagation(panel);
          L.DomEvent.disableScrollPropagation(panel);
          return panel;
        }
      });
      new Panel().addTo(map);
      document.getElementById("gm-toggle").addEventListener("click", function () {
        panel.classList.toggle("gm-open");
      });
      if (window.matchMedia && window.matchMedia("(max-width: 700px)").matches) panel.classList.remove("gm-open");
      api = start(map, cfg, panel);
      window.gridmap.current = api;
      if (window.gridmapEdit) window.gridmapEdit(api, cfg);
      document.documentElement.setAttribute("lang", cfg.lang === "en" ? "en" : "zh-CN");
      return api;
    }
  };
})();
