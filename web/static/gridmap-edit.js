/* gridmap editor: redraw grid cells on the map, propose a re-partition, see and revert
 * revisions. Drawing and snapping are Leaflet-Geoman's (served from static/vendor).
 *
 * Every operation goes to the server twice: first to /changes/preview, which computes the
 * new cells, their households and population and the findings the change would add; then,
 * when the planner has read that and given a reason, to /changes with the revisions the
 * preview was based on (a cell someone else changed meanwhile is refused: 412).
 * Data from the server is put into the page as text only (textContent), never as HTML.
 */
(function () {
  "use strict";

  window.gridmapEdit = function (api, cfg) {
    var S = cfg.strings, map = api.map, el = api.el, fmt = api.fmt;
    var E = cfg.edit;
    var box = document.getElementById("gm-edit");
    if (!box || !E) return;
    if (L.PM) {
      L.PM.setOptIn(true);  // only what the editor marks editable; grid and communities snap
      map.pm.setGlobalOptions({snappable: true, snapDistance: 15, allowSelfIntersection: false,
                               templineStyle: {color: "#e6550d"}, hintlineStyle: {color: "#e6550d", dashArray: [5, 5]},
                               pathOptions: {color: "#e6550d", weight: 3, fillOpacity: 0.15}});
    }

    var selected = null;        // the selected cell's feature
    var mergeWith = [];         // codes picked to merge with it
    var mode = "";              // "", "merge"
    var pending = null;         // the operation last previewed, with its base revisions
    var editable = null;        // the polygon being reshaped
    var selectLayer = L.geoJSON(null, {style: {color: "#e6550d", weight: 4, fill: false}, interactive: false}).addTo(map);
    var previewLayer = L.geoJSON(null, {interactive: false, style: function (f) {
      return {color: "#d94801", weight: 2.5, dashArray: "6 4", fillColor: "#fd8d3c", fillOpacity: 0.25};
    }}).addTo(map);
    var diffLayer = L.geoJSON(null, {style: function (f) {
      return f.properties.side === "before" ? {color: "#cb181d", weight: 2, dashArray: "4 4", fill: false}
                                            : {color: "#238b45", weight: 3, fillColor: "#74c476", fillOpacity: 0.25};
    }, onEachFeature: function (f, lyr) {
      lyr.bindTooltip(el("span", {text: (f.properties.side === "before" ? S.before : S.after) + " · " + f.properties.code +
                                        " · " + S.households + " " + fmt(f.properties.households, 0)}), {sticky: true});
    }}).addTo(map);
    var proposalLayer = L.geoJSON(null, {style: function (f) {
      var inBand = f.properties._in_band;
      return {color: "#6a51a3", weight: 2.5, fillColor: inBand ? "#9e9ac8" : "#fb6a4a", fillOpacity: 0.35};
    }, onEachFeature: function (f, lyr) {
      lyr.bindTooltip(el("span", {text: f.properties.code + " · " + fmt(f.properties.households, 0) + " " + S.households_unit +
                                        " · PP " + fmt(f.properties.polsby_popper, 2)}), {sticky: true});
    }}).addTo(map);
    map.on("gridmap:restack", function () {  // the page restacked its layers: ours on top
      [diffLayer, proposalLayer, previewLayer, selectLayer].forEach(function (l) { l.bringToFront(); });
    });

    var $ = function (id) { return document.getElementById(id); };
    var status = $("gm-edit-status"), result = $("gm-edit-result");

    function say(text, isError) {
      status.textContent = text || "";
      status.className = isError ? "gm-hint gm-error" : "gm-hint";
    }

    function send(method, url, body) {
      return fetch(url, {method: method, credentials: "same-origin",
                         headers: {"Content-Type": "application/json", "X-CSRF-Token": E.csrf},
                         body: body ? JSON.stringify(body) : undefined})
        .then(function (r) { return r.json().then(function (b) { b._status = r.status; return b; }); });
    }

    function showDiff(fc) {  // a change's cells before (dashed red) and after (green), zoomed to
      diffLayer.clearLayers().addData(fc);
      if (diffLayer.getLayers().length) api.fitTo(diffLayer.getBounds(), 17);
    }

    function when(at) { return (at || "").replace("T", " ").slice(0, 16); }  // UTC, to the minute

    function listCodes(codes) {  // a street's change names dozens of cells: the first few
      return codes.length <= 8 ? codes.join(", ") : codes.slice(0, 8).join(", ") + " … +" + (codes.length - 8);
    }

    // ------------------------------------------------------------------ selection
    function select(feature) {
      selected = feature;
      mergeWith = [];
      selectLayer.clearLayers().addData(feature);
      $("gm-selected").textContent = S.selected + ": " + feature.properties.name + " · " + feature.properties.code +
        " · " + S.households + " " + fmt(feature.properties.households, 0);
      propCodes = {community: feature.properties.parent_code || "", street: ""};
      fillPropCode();
      if (propCodes.community) {  // the street is the community's parent
        api.getJSON(cfg.api.items.replace("LAYER", "community") + "/" + encodeURIComponent(propCodes.community))
          .then(function (c) { propCodes.street = (c.properties && c.properties.parent_code) || ""; fillPropCode(); })
          .catch(function () {});
      }
      $("gm-print").href = E.print.replace("CODE", encodeURIComponent(feature.properties.parent_code || ""));
      setButtons(true);
      historyOf = feature.properties.code;
      loadHistory();
    }

    function setButtons(on) {
      ["gm-op-reshape", "gm-op-split", "gm-op-merge", "gm-op-move", "gm-op-draw"].forEach(function (id) {
        if ($(id)) $(id).disabled = !on || !E.user || E.user.role !== "planner";
      });
    }

    api.clickHooks.push(function (layer, feature) {
      if (layer !== "grid" || map.pm.globalDrawModeEnabled()) return false;
      if (!E.user || E.user.role !== "planner") {  // anyone may read a cell's history
        historyOf = feature.properties.code;
        loadHistory();
        return false;
      }
      if (mode === "merge" && selected && feature.properties.code !== selected.properties.code) {
        if (mergeWith.indexOf(feature.properties.code) < 0) mergeWith.push(feature.properties.code);
        selectLayer.addData(feature);
        preview({op: "merge", codes: [selected.properties.code].concat(mergeWith)});
        return true;
      }
      if (editable) return true;
      select(feature);
      return false;  // the popup and lookup still show
    });

    // ------------------------------------------------------------------ operations
    function stopDrawing() {
      map.closePopup();  // an open popup would swallow the clicks that place vertices
      if (map.pm.globalDrawModeEnabled()) map.pm.disableDraw();
      if (editable) { map.removeLayer(editable); editable = null; }
      mode = "";
    }

    function drawThen(shape, hint, makeOp) {
      stopDrawing();
      say(hint);
      map.pm.enableDraw(shape, {snappable: true, snapDistance: 15, finishOn: shape === "Line" ? "dblclick" : null});
      map.once("pm:create", function (e) {
        var geom = e.layer.toGeoJSON().geometry;
        map.removeLayer(e.layer);
        map.pm.disableDraw();
        preview(makeOp(geom));
      });
    }

    function on(id, fn) { if ($(id)) $(id).addEventListener("click", fn); }

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
      say(S.drag_vertices);
      $("gm-preview").hidden = false;
    });
    on("gm-preview", function () {
      if (!editable || !selected) return;
      preview({op: "reshape", code: selected.properties.code, geometry: editable.toGeoJSON().geometry});
    });
    on("gm-op-split", function () {
      if (!selected) return;
      drawThen("Line", S.draw_line, function (g) { return {op: "split", code: selected.properties.code, line: g}; });
    });
    on("gm-op-merge", function () {
      if (!selected) return;
      stopDrawing();
      mode = "merge";
      say(S.pick_neighbour);
    });
    on("gm-op-move", function () {
      if (!selected) return;
      drawThen("Polygon", S.draw_piece, function (g) { return {op: "move", to: selected.properties.code, geometry: g}; });
    });
    on("gm-op-draw", function () {
      if (!selected) return;
      drawThen("Polygon", S.draw_new, function (g) { return {op: "draw", community: selected.properties.parent_code, geometry: g}; });
    });
    on("gm-cancel", function () { reset(); say(""); });

    function reset() {
      stopDrawing();
      pending = null;
      previewLayer.clearLayers();
      result.textContent = "";
      $("gm-save-box").hidden = true;
      $("gm-preview").hidden = true;
      $("gm-accept-box").hidden = true;
    }

    // ------------------------------------------------------------------ preview and save
    function preview(op) {
      say(S.loading);
      send("POST", E.preview, op).then(function (r) {
        if (r._status !== 200) { say(r.description, true); return; }
        pending = {op: op, base: r.base};
        previewLayer.clearLayers().addData(r.features);
        showPreview(r);
        say("");
      }).catch(function (err) { say(err.message, true); });
    }

    function showPreview(r) {
      result.textContent = "";
      map.closePopup();  // the preview is drawn where the cell's popup stood
      var table = el("table", {"class": "gm-attrs gm-figures"});
      table.appendChild(el("tr", {}, [el("th", {text: S.code}), el("th", {text: S.status}),
        el("th", {text: S.households + " " + S.before}), el("th", {text: S.after}),
        el("th", {text: S.population + " " + S.before}), el("th", {text: S.after})]));
      r.cells.forEach(function (c) {
        table.appendChild(el("tr", {"data-code": c.code}, [el("td", {text: c.code}), el("td", {text: S[c.status] || c.status}),
          el("td", {text: fmt(c.households_before, 0)}), el("td", {text: fmt(c.households, 0)}),
          el("td", {text: fmt(c.population_before, 0)}), el("td", {text: fmt(c.population, 0)})]));
      });
      result.appendChild(table);
      result.appendChild(el("div", {"class": "gm-hint", text: S.method + ": " + ((S.methods || {})[r.method] || r.method)}));
      var findings = r.new_findings || [];
      if (findings.length) {
        result.appendChild(el("div", {"class": "gm-error", text: S.new_findings + " (" + findings.length + ")"}));
        var ul = el("ul", {"class": "gm-list", id: "gm-new-findings"});
        findings.forEach(function (f) {
          ul.appendChild(el("li", {text: (S.rules[f.rule] || f.rule) + " · " + f.features.join(", ") +
            (f.area_m2 !== null ? " · " + fmt(f.area_m2, 1) + " m²" : "")}));
        });
        result.appendChild(ul);
        say(S.blocked, true);
      }
      $("gm-accept-box").hidden = !findings.length;
      $("gm-save-box").hidden = false;
    }

    on("gm-save", function () {
      if (!pending) return;
      var body = L.extend({}, pending.op, {base: pending.base, reason: $("gm-reason").value,
                                           accepted: $("gm-accepted").value || undefined});
      send("POST", E.apply, body).then(function (r) {
        if (r._status === 200) {
          var codes = listCodes(r.cells.map(function (c) { return c.code; }));
          if (pending.op.op === "replace") { proposalLayer.clearLayers(); propBox.textContent = ""; }
          reset();
          selectLayer.clearLayers();
          selected = null;
          historyOf = "";
          setButtons(false);
          $("gm-selected").textContent = "";
          $("gm-reason").value = "";
          $("gm-accepted").value = "";
          say(S.saved + " #" + r.change_id + ": " + codes);
          api.reloadLayer("grid");
          loadHistory();
        } else if (r._status === 412) {  // say who changed it, when and why; draw that change
          var l = r.latest || {};
          say(S.stale + ": " + [l.code, l.author, when(l.at), l.reason].filter(Boolean).join(" · ") +
              ". " + S.redo, true);
          showDiff([["before", l.before], ["after", l.after]].filter(function (side) { return side[1]; })
            .map(function (side) { return L.extend({}, side[1], {properties: L.extend({}, side[1].properties, {side: side[0]})}); }));
          api.reloadLayer("grid");
          loadHistory();
        } else if (r._status === 422) {
          showPreview({cells: [], method: "", new_findings: r.findings});
          say(S.blocked, true);
        } else {
          say(r.description, true);
        }
      }).catch(function (err) { say(err.message, true); });
    });

    // ------------------------------------------------------------------ proposals
    var propBox = $("gm-prop-result");
    var propCodes = {community: "", street: ""};  // of the selected cell
    function fillPropCode() {
      var code = propCodes[$("gm-prop-scope").value];
      if (code) $("gm-prop-community").value = code;
    }
    $("gm-prop-scope").addEventListener("change", fillPropCode);
    on("gm-propose", function () {
      var code = $("gm-prop-community").value.trim();
      var scope = $("gm-prop-scope").value;
      var lo = $("gm-prop-min").value, hi = $("gm-prop-max").value;
      if (!code) return;
      propBox.textContent = S.loading;
      api.getJSON(E.proposal + "?" + scope + "=" + encodeURIComponent(code) + "&min=" + encodeURIComponent(lo) +
                  "&max=" + encodeURIComponent(hi)).then(function (r) {
        propBox.textContent = "";
        proposalLayer.clearLayers();
        map.closePopup();  // the clicked cell's attributes would hide part of the proposal
        if (!r.cells) { propBox.appendChild(el("div", {"class": "gm-error", text: S.infeasible + ": " + r.reason})); return; }
        r.cells.features.forEach(function (f) {
          f.properties._in_band = f.properties.households >= r.metrics.band[0] && f.properties.households <= r.metrics.band[1];
        });
        proposalLayer.addData(r.cells);
        api.fitTo(proposalLayer.getBounds(), 17);
        var m = r.metrics, cur = r.current;
        var rows = [["", S.current_cells, S.proposal],
                    [S.cells_n, cur.cells, m.cells],
                    [S.households, fmt(cur.min_households, 0) + "–" + fmt(cur.max_households, 0),
                     fmt(m.min_households, 0) + "–" + fmt(m.max_households, 0)],
                    [S.balance, fmt(cur.spread_households, 1), fmt(m.spread_households, 1)],
                    [S.cells_in_band, cur.cells_in_band, m.cells_in_band],
                    [S.compactness, fmt(cur.mean_polsby_popper, 3), fmt(m.mean_polsby_popper, 3)],
                    [S.households_moved, "", fmt(m.households_moved, 0) + " (" + (r.moves || []).length + " " + S.moves + ")"]];
        var table = el("table", {"class": "gm-attrs gm-figures", id: "gm-prop-metrics"});
        rows.forEach(function (row) { table.appendChild(el("tr", {}, row.map(function (v, i) { return el(i ? "td" : "th", {text: String(v)}); }))); });
        if (r.scope === "street") {
          table.appendChild(el("tr", {}, [el("th", {text: S.feasible_n}), el("td", {text: ""}),
                                          el("td", {text: m.communities_feasible + " / " + m.communities})]));
        }
        propBox.appendChild(table);
        r.communities.filter(function (c) { return !c.feasible; }).forEach(function (c) {
          propBox.appendChild(el("div", {"class": "gm-error", text: S.infeasible + " · " + c.community + ": " + c.reason}));
        });
        var list = el("ul", {"class": "gm-list"});
        r.cells.features.forEach(function (f) {
          list.appendChild(el("li", {text: f.properties.code + " · " + fmt(f.properties.households, 0) + " " + S.households_unit +
                                          " · PP " + fmt(f.properties.polsby_popper, 2)}));
        });
        propBox.appendChild(list);
        if (E.user && E.user.role === "planner") {
          var adopt = el("button", {type: "button", id: "gm-adopt", text: S.adopt});
          adopt.addEventListener("click", function () {
            var feats = r.cells.features.map(function (f) {
              return {type: "Feature", geometry: f.geometry,
                      properties: {code: f.properties.code, name: f.properties.name, parent_code: f.properties.parent_code}};
            });
            // a street: the communities that have proposed cells (the others stay as they are)
            var communities = r.communities.filter(function (c) { return c.cells > 0; })
                                           .map(function (c) { return c.community; });
            preview({op: "replace", communities: communities, features: feats});
            box.scrollIntoView();
          });
          propBox.appendChild(adopt);
        }
      }).catch(function (err) { propBox.textContent = err.message; });
    });

    // ------------------------------------------------------------------ revisions
    var historyBox = $("gm-history");
    var historyOf = "";  // a cell's code: only its changes; "": the whole layer
    function loadHistory() {
      api.getJSON(E.changes).then(function (r) {
        historyBox.textContent = "";
        var changes = r.changes.filter(function (c) {
          return !historyOf || c.cells.some(function (x) { return x.code === historyOf; });
        });
        var scope = $("gm-history-scope");
        scope.textContent = historyOf ? historyOf + " · " : "";
        if (historyOf) {
          var all = el("a", {href: "#", text: S.all_changes});
          all.addEventListener("click", function (e) { e.preventDefault(); historyOf = ""; loadHistory(); });
          scope.appendChild(all);
        }
        if (!changes.length) { historyBox.appendChild(el("li", {"class": "gm-muted", text: S.no_changes})); return; }
        changes.slice(0, 30).forEach(function (c) {
          var show = el("button", {type: "button", text: S.show_diff});
          show.addEventListener("click", function () {
            api.getJSON(E.change.replace("0", String(c.change_id))).then(showDiff);
          });
          var li = el("li", {"data-change": String(c.change_id)}, [
            el("div", {text: "#" + c.change_id + " · " + c.author + " · " + when(c.at)}),
            el("div", {"class": "gm-muted", text: c.reason + " · " + listCodes(c.cells.map(function (x) { return x.code; }))}),
            show]);
          if (E.user && E.user.role === "planner") {
            var undo = el("button", {type: "button", text: S.revert});
            undo.addEventListener("click", function () {
              var reason = $("gm-reason").value;
              if (!reason) { say(S.reason + "?", true); $("gm-reason").focus(); $("gm-save-box").hidden = false; return; }
              send("POST", E.revert.replace("0", String(c.change_id)), {reason: reason}).then(function (b) {
                if (b._status !== 200) { say(b.description, true); return; }
                say(S.saved + " #" + b.change_id);
                api.reloadLayer("grid");
                loadHistory();
              });
            });
            li.appendChild(undo);
          }
          historyBox.appendChild(li);
        });
      }).catch(function (err) { historyBox.textContent = err.message; });
    }
    on("gm-diff", function () {
      var a = $("gm-diff-from").value || "0", b = $("gm-diff-to").value || "0";
      api.getJSON(E.diff + "?from=" + encodeURIComponent(a) + "&to=" + encodeURIComponent(b)).then(showDiff);
    });
    on("gm-diff-clear", function () { diffLayer.clearLayers(); proposalLayer.clearLayers(); });

    setButtons(false);
    loadHistory();
    window.gridmap.editor = {select: select, preview: preview, layers: {preview: previewLayer, diff: diffLayer, proposal: proposalLayer}};
  };
})();
