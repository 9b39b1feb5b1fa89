/* Proposals: an automatic re-partition of a community or a street into cells within the
 * household band (#gm-proposal-box), drawn on the map with its figures beside the current
 * cells'; a planner may adopt it (a "replace" change, previewed first). The selected cell
 * fills in its community's or street's code and the print link.
 */
import {el, fmt} from "../dom.js";

export function createProposal(ed) {
  var S = ed.S, E = ed.E, map = ed.map, $ = ed.$, api = ed.api, layer = ed.layers.proposal;
  var propBox = $("gm-prop-result");
  var propCodes = {community: "", street: ""};  // of the selected cell

  function fillPropCode() {
    var code = propCodes[$("gm-prop-scope").value];
    if (code) $("gm-prop-community").value = code;
  }
  $("gm-prop-scope").addEventListener("change", fillPropCode);

  function forCell(feature) {  // a cell was selected
    propCodes = {community: feature.properties.parent_code || "", street: ""};
    fillPropCode();
    if (propCodes.community) {  // the street is the community's parent
      api.getJSON(ed.cfg.api.items.replace("LAYER", "community") + "/" + encodeURIComponent(propCodes.community))
        .then(function (c) { propCodes.street = (c.properties && c.properties.parent_code) || ""; fillPropCode(); })
        .catch(function () {});
    }
    $("gm-print").href = E.print.replace("CODE", encodeURIComponent(feature.properties.parent_code || ""));
  }

  function clear() {  // the proposal was adopted
    layer.clearLayers();
    propBox.textContent = "";
  }

  ed.on("gm-propose", function () {
    var code = $("gm-prop-community").value.trim();
    var scope = $("gm-prop-scope").value;
    var lo = $("gm-prop-min").value, hi = $("gm-prop-max").value;
    if (!code) return;
    propBox.textContent = S.loading;
    api.getJSON(E.proposal + "?" + scope + "=" + encodeURIComponent(code) + "&min=" + encodeURIComponent(lo) +
                "&max=" + encodeURIComponent(hi)).then(function (r) {
      propBox.textContent = "";
      layer.clearLayers();
      map.closePopup();  // the clicked cell's attributes would hide part of the proposal
      if (!r.cells) { propBox.appendChild(el("div", {"class": "gm-error", text: S.infeasible + ": " + r.reason})); return; }
      r.cells.features.forEach(function (f) {
        f.properties._in_band = f.properties.households >= r.metrics.band[0] && f.properties.households <= r.metrics.band[1];
      });
      layer.addData(r.cells);
      api.fitTo(layer.getBounds(), 17);
      showFigures(r);
      if (ed.planner) propBox.appendChild(adoptButton(r));
    }).catch(function (err) { propBox.textContent = err.message; });
  });

  function showFigures(r) {
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
  }

  function adoptButton(r) {
    var adopt = el("button", {type: "button", id: "gm-adopt", text: S.adopt});
    adopt.addEventListener("click", function () {
      var feats = r.cells.features.map(function (f) {
        return {type: "Feature", geometry: f.geometry,
                properties: {code: f.properties.code, name: f.properties.name, parent_code: f.properties.parent_code}};
      });
      // a street: the communities that have proposed cells (the others stay as they are)
      var communities = r.communities.filter(function (c) { return c.cells > 0; })
                                     .map(function (c) { return c.community; });
      ed.changes.preview({op: "replace", communities: communities, features: feats});
      ed.box.scrollIntoView();
    });
    return adopt;
  }

  return {forCell: forCell, clear: clear};
}
