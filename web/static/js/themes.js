/* Population themes: the #gm-theme choice paints the grid cells with the server-computed
 * colours (properties._fill[theme]) and draws the theme's legend (#gm-legend) from
 * cfg.themes (bins, colours, unit).
 */
import {el, fmt} from "./dom.js";

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
