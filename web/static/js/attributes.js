/* The popup of a clicked area or road: its layer's title and a table of its attributes
 * (code, name, parent, households and population of a cell, responsible police).
 */
import {el, fmt} from "./dom.js";

export function attributeTable(S, layer, p) {
  var rows = [[S.code, p.code], [S.name, p.name]];
  if (p.parent_name !== undefined) {  // a level of the hierarchy below the top
    rows.push([S.parent, (p.parent_name || "") + " " + (p.parent_code || "")]);
  }
  if (layer === "household_unit" && p.households !== undefined && p.households !== null) {
    rows.push([S.households, fmt(p.households, 0)]);
    if (p.leader) rows.push([S.fields.leader, p.leader]);
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
