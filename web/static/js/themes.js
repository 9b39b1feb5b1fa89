/* Population themes: the #gm-theme choice paints the grid cells by the theme's classes and
 * draws its legend (#gm-legend) from cfg.themes (property, bins, colours, unit). A cell's
 * colour is looked up from its own property value: styling is not part of the data.
 */
import {el, fmt} from "./dom.js";

// The colour of a cell with properties `props` in theme `t`: the class whose upper bound
// is the first at or above its value (mapclassify's rule), grey when it has no value.
export function themeColor(t, props) {
  var v = props[t.property];
  if (v === null || v === undefined || !isFinite(v)) return t.noData;
  for (var i = 0; i < t.bins.length; i++) if (v <= t.bins[i]) return t.colors[i];
  return t.colors[t.colors.length - 1];
}

export function installThemes(map, cfg, areas) {
  var legend = document.getElementById("gm-legend");
  document.getElementById("gm-theme").addEventListener("change", function (e) {
    var theme = e.target.value;
    areas.paint.theme = theme;
    areas.restyleGrid();
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
    areas.showGrid();
  });
}
