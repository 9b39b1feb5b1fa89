/* The aligned layout in the officers' panel (#gm-align-box): for the jurisdiction layer
 * chosen there, GET /alignment/proposal gives each street (each community, for beats)
 * whole to one station, moving the fewest households. The map splits in two, side by
 * side and moving together: on the left the layout as it is, on the right the proposed
 * one (each station in its own colour over the units' outlines); the pieces changing
 * hands are hatched on both. The panel lists the figures, the reasons (what contiguity
 * or the band cost, or why no layout exists), the transfer list (划转清单, also as CSV and
 * Excel) and each station's households before and after. A planner adopts the layout as
 * one change of the layer (If-Match: the proposal's ETag) and may revert that change.
 */
import {el, errorText, fmt, getJSON} from "./dom.js";

var PROPOSED = "#1a9641";   // proposed outlines
var PIECE = "#e66101";      // pieces changing hands
var PALETTE = ["#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69",
               "#fccde5", "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f"];

export function installRealign(map, cfg, fitTo, reloadLayer, refreshAlignment) {
  var S = cfg.strings, E = cfg.edit || {};
  var $ = function (id) { return document.getElementById(id); };
  var button = $("gm-layout-propose");
  if (!button || !cfg.alignmentLayers.length) return;
  var result = $("gm-layout-result"), clearButton = $("gm-layout-clear");
  var select = $("gm-align-layer");
  var planner = !!(E.user && E.user.role === "planner");
  var compare = null;       // {map, node, proposed, pieces, units}
  var pieces = L.geoJSON(null, {interactive: false, style: pieceStyle}).addTo(map);

  function pieceStyle() {
    return {color: PIECE, weight: 2, fillColor: PIECE, fillOpacity: 0.35, dashArray: "3 3"};
  }

  // the right half: a second map that moves with the first
  function openCompare() {
    if (compare) return compare;
    var container = map.getContainer();
    var node = el("div", {id: "gm-compare", "class": "gm-compare"});
    container.parentNode.insertBefore(node, container.nextSibling);
    container.classList.add("gm-split");
    map.invalidateSize();
    var other = L.map(node, {zoomControl: false, attributionControl: false, maxZoom: map.getMaxZoom()});
    other.setView(map.getCenter(), map.getZoom(), {animate: false});
    var syncing = false;
    function follow(from, to) {
      return function () {
        if (syncing) return;
        syncing = true;
        to.setView(from.getCenter(), from.getZoom(), {animate: false});
        syncing = false;
      };
    }
    var lead = follow(map, other);
    map.on("move", lead);
    other.on("move", follow(other, map));
    compare = {
      map: other, node: node, lead: lead,
      units: L.geoJSON(null, {interactive: false, style: {color: "#555555", weight: 1, fill: false}}).addTo(other),
      proposed: L.geoJSON(null, {style: function (f) {
        return {color: PROPOSED, weight: 3, fillColor: f.properties._colour, fillOpacity: 0.45};
      }, onEachFeature: function (f, layer) {
        layer.bindTooltip(f.properties.name || f.properties.code, {permanent: true, direction: "center",
                                                                    className: "gm-label"});
      }}).addTo(other),
      pieces: L.geoJSON(null, {interactive: false, style: pieceStyle}).addTo(other)
    };
    var title = function (text, side) {
      var T = L.Control.extend({options: {position: side}, onAdd: function () {
        return el("div", {"class": "gm-map-title", text: text});
      }});
      return new T();
    };
    title(S.layout_proposed, "topleft").addTo(other);
    compare.title = title(S.layout_current, "bottomleft").addTo(map);
    return compare;
  }

  function closeCompare() {
    pieces.clearLayers();
    if (!compare) return;
    map.off("move", compare.lead);
    compare.map.remove();
    compare.node.parentNode.removeChild(compare.node);
    compare.title.remove();
    map.getContainer().classList.remove("gm-split");
    map.invalidateSize();
    compare = null;
  }

  function table(rows, head) {
    var t = el("table", {"class": "gm-attrs gm-figures"});
    if (head) t.appendChild(el("tr", {}, head.map(function (h) { return el("th", {text: h}); })));
    rows.forEach(function (r) {
      t.appendChild(el("tr", {}, r.map(function (v, i) {
        return el(i === 0 && !head ? "th" : "td", {text: String(v), "class": typeof v === "number" ? "gm-num" : ""});
      })));
    });
    return t;
  }

  function figures(p) {
    var m = p.summary;
    return table([[S.layout_moved, fmt(m.households_moved, 0)], [S.layout_people, fmt(m.population_moved, 0)],
                  [S.layout_area, fmt(m.area_moved_m2, 0)], [S.layout_pieces, m.pieces],
                  [S.layout_posts, m.posts_moved], [S.layout_fewest, fmt(m.households_moved_fewest, 0)]]);
  }

  // a row per piece: the unit, from → to, households and posts; a click zooms to it
  function transferList(p) {
    var feats = p.transfers.features.filter(function (f) { return f.properties.kind === "real"; });
    var list = el("ul", {"class": "gm-list", id: "gm-layout-transfers"});
    feats.forEach(function (f) {
      var q = f.properties;
      var posts = (q.post_names || []).length ? " · " + S.kinds.police_post + " " + q.post_names.join("、") : "";
      var li = el("li", {"class": "gm-link", tabindex: "0"}, [
        el("b", {text: q.unit_name + " " + q.unit}),
        el("div", {text: (q.from ? q.from_name : S.layout_nobody) + " → " + q.to_name}),
        el("div", {"class": "gm-muted", text: fmt(q.households, 0) + " " + S.households_unit + " · " +
                                               fmt(q.area_m2, 0) + " m²" + posts})]);
      function zoom() { fitTo(L.geoJSON(f).getBounds().pad(0.2), 17); }
      li.addEventListener("click", zoom);
      li.addEventListener("keydown", function (e) { if (e.key === "Enter") zoom(); });
      list.appendChild(li);
    });
    return list;
  }

  function workloads(p) {
    var changed = p.stations.filter(function (s) { return s.households_before !== s.households_after; });
    return table(changed.map(function (s) {
      return [s.name + " " + s.code, fmt(s.households_before, 0) + " → " + fmt(s.households_after, 0)];
    }), null);
  }

  function adoptBox(p, etag, layer) {
    var reason = el("input", {id: "gm-layout-reason", maxlength: "500"});
    var go = el("button", {type: "button", id: "gm-layout-adopt", text: S.layout_adopt});
    var status = el("div", {"class": "gm-hint", role: "status"});
    go.addEventListener("click", function () {
      go.disabled = true;
      post(cfg.api.realign, {layer: layer, assignment: p.assignment, reason: reason.value}, {"If-Match": etag})
        .then(function (r) {
          status.textContent = S.layout_adopted.replace("{id}", r.change_id);
          status.className = "gm-hint";
          reloadLayer(layer);
          refreshAlignment();
          status.appendChild(revertBox(layer, r.change_id));
        }).catch(function (err) { status.textContent = err.message; status.className = "gm-hint gm-error"; go.disabled = false; });
    });
    return el("div", {"class": "gm-adopt"}, [el("label", {text: S.reason}, [reason]),
                                              el("div", {"class": "gm-buttons"}, [go]), status]);
  }

  function revertBox(layer, change) {
    var reason = el("input", {id: "gm-layout-revert-reason", maxlength: "500"});
    var go = el("button", {type: "button", id: "gm-layout-revert", text: S.layout_revert});
    var status = el("div", {"class": "gm-hint", role: "status"});
    go.addEventListener("click", function () {
      go.disabled = true;
      var url = cfg.api.changes.replace("LAYER", layer) + "/" + change + "/revert";
      post(url, {reason: reason.value}, {}).then(function (r) {
        status.textContent = S.layout_reverted.replace("{id}", r.change_id);
        reloadLayer(layer);
        refreshAlignment();
      }).catch(function (err) { status.textContent = err.message; status.className = "gm-hint gm-error"; go.disabled = false; });
    });
    return el("div", {}, [el("label", {text: S.revert_reason}, [reason]), el("div", {"class": "gm-buttons"}, [go]), status]);
  }

  function post(url, body, headers) {
    var h = {"Content-Type": "application/json", "X-CSRF-Token": E.csrf};
    Object.keys(headers).forEach(function (k) { h[k] = headers[k]; });
    return fetch(url, {method: "POST", credentials: "same-origin", headers: h, body: JSON.stringify(body)})
      .then(function (r) {
        return r.json().then(function (b) { if (!r.ok) throw new Error(errorText(b) || r.statusText); return b; });
      });
  }

  function show(p, etag, layer) {
    result.textContent = "";
    var status = p.status;
    result.appendChild(el("div", {"class": status === "infeasible" ? "gm-error" : "gm-hint", id: "gm-layout-status",
                                  text: S["layout_status_" + status] + " · " + p.summary.seconds + " s"}));
    p.reasons.forEach(function (r) {
      result.appendChild(el("div", {"class": status === "infeasible" ? "gm-error" : "gm-hint",
                                    text: r[cfg.lang === "en" ? "en" : "zh"]}));
    });
    if (status === "infeasible") { closeCompare(); return; }
    var c = openCompare();
    p.proposed.features.forEach(function (f, i) { f.properties._colour = PALETTE[i % PALETTE.length]; });
    c.proposed.clearLayers().addData(p.proposed);
    var moving = {type: "FeatureCollection", features: p.transfers.features.filter(function (f) { return f.properties.kind === "real"; })};
    c.pieces.clearLayers().addData(moving);
    pieces.clearLayers().addData(moving);
    getJSON(cfg.api.items.replace("LAYER", p.follows) + "?limit=10000").then(function (fc) {
      if (compare) compare.units.clearLayers().addData(fc);
    }).catch(function () {});
    var legend = el("div", {"class": "gm-legend"});
    [[PROPOSED, S.layout_proposed], [PIECE, S.layout_piece]].forEach(function (row) {
      var swatch = el("span", {"class": "gm-swatch"});
      swatch.style.background = row[0];
      legend.appendChild(el("div", {"class": "gm-legend-row"}, [swatch, el("span", {text: row[1]})]));
    });
    result.appendChild(legend);
    result.appendChild(figures(p));
    result.appendChild(el("h4", {text: S.layout_transfers}));
    var base = cfg.api.realign + "?" + query(layer);
    result.appendChild(el("div", {"class": "gm-band"}, [
      el("a", {href: base + "&f=csv", text: S.download_csv, id: "gm-layout-csv"}),
      el("a", {href: base + "&f=xlsx", text: S.download_xlsx, id: "gm-layout-xlsx"})]));
    result.appendChild(transferList(p));
    result.appendChild(el("h4", {text: S.layout_workload}));
    result.appendChild(workloads(p));
    if (planner) result.appendChild(adoptBox(p, etag, layer));
    map.invalidateSize();  // the whole layout; a row of the transfer list zooms to its piece
    map.fitBounds(L.geoJSON(p.proposed).getBounds(), {maxZoom: 16});
  }

  function query(layer) {
    var q = "layer=" + encodeURIComponent(layer);
    var lo = $("gm-layout-min").value, hi = $("gm-layout-max").value;
    if (lo || hi) q += "&min=" + encodeURIComponent(lo || 0) + "&max=" + encodeURIComponent(hi || 10000000);
    return q;
  }

  button.addEventListener("click", function () {
    var layer = select.value, etag = null;
    result.textContent = S.loading;
    button.disabled = true;
    fetch(cfg.api.realign + "?" + query(layer), {credentials: "same-origin"}).then(function (r) {
      etag = r.headers.get("ETag");
      return r.json().then(function (b) { if (!r.ok) throw new Error(errorText(b) || r.statusText); return b; });
    }).then(function (p) {
      show(p, etag, layer);
      clearButton.hidden = false;
    }).catch(function (err) {
      result.textContent = "";
      result.appendChild(el("div", {"class": "gm-error", text: err.message}));
    }).then(function () { button.disabled = false; });
  });
  clearButton.addEventListener("click", function () {
    closeCompare();
    result.textContent = "";
    clearButton.hidden = true;
  });
  select.addEventListener("change", function () { closeCompare(); result.textContent = ""; clearButton.hidden = true; });
}
