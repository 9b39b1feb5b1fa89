/* The map's legend (bottom left): a row for every layer shown — its line drawn as the map
 * draws it (colour, weight, dashes; roads by class) — the findings' colours by rule and the
 * facilities' symbols; it follows the layer switcher. Themes and coverage explain their own
 * shading beside their controls (#gm-legend, #gm-cov-legend). Folds to a button.
 */
import {el, svgSymbol} from "./dom.js";

var SVG = "http://www.w3.org/2000/svg";

function lineSwatch(style) {
  var svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", "28");
  svg.setAttribute("height", "12");
  if (style.fill && style.fillOpacity) {
    var box = document.createElementNS(SVG, "rect");
    [["x", 1], ["y", 1], ["width", 26], ["height", 10], ["fill", style.fillColor || style.color],
     ["fill-opacity", Math.max(style.fillOpacity, 0.15)], ["stroke", "none"]].forEach(function (a) { box.setAttribute(a[0], a[1]); });
    svg.appendChild(box);
  }
  var line = document.createElementNS(SVG, "line");
  [["x1", 1], ["y1", 6], ["x2", 27], ["y2", 6], ["stroke", style.color || "#333"],
   ["stroke-width", Math.min(style.weight || 1, 5)]].forEach(function (a) { line.setAttribute(a[0], a[1]); });
  if (style.dashArray) line.setAttribute("stroke-dasharray", style.dashArray);
  svg.appendChild(line);
  return svg;
}

function areaSwatch(color) {
  var sw = el("span", {"class": "gm-swatch"});
  sw.style.background = color;
  sw.style.opacity = "0.7";
  return sw;
}

export function installLegend(map, cfg, api) {
  var S = cfg.strings;
  var body = el("div", {"class": "gm-maplegend-body"});
  var toggle = el("button", {type: "button", "class": "gm-maplegend-toggle", text: S.legend});
  var box = el("div", {"class": "gm-maplegend", id: "gm-maplegend"}, [toggle, body]);
  var Legend = L.Control.extend({
    options: {position: "bottomleft"},
    onAdd: function () {
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    }
  });
  new Legend().addTo(map);
  toggle.addEventListener("click", function () { box.classList.toggle("gm-folded"); });
  if (window.matchMedia && window.matchMedia("(max-width: 700px)").matches) box.classList.add("gm-folded");

  function row(swatch, text) { return el("div", {"class": "gm-legend-row"}, [swatch, el("span", {text: text})]); }

  function draw() {
    body.textContent = "";
    cfg.layers.slice().reverse().forEach(function (info) {  // top of the map first
      var group = api.layers[info.id];
      if (!group || !map.hasLayer(group)) return;
      if (info.classWeight) {  // roads: one row per class, as wide as drawn
        Object.keys(info.classWeight).forEach(function (cls) {
          var style = Object.assign({}, info.style, {weight: info.classWeight[cls]});
          body.appendChild(row(lineSwatch(style), info.title + " · " + (S.road_classes[cls] || cls)));
        });
        return;
      }
      body.appendChild(row(lineSwatch(info.style), info.title));
    });
    if (api.facilities && map.hasLayer(api.facilities)) {
      Object.keys(cfg.facilityKinds).forEach(function (k) {
        body.appendChild(row(svgSymbol(cfg.facilityKinds[k]), cfg.facilityKinds[k].label));
      });
    }
    if (api.findings && map.hasLayer(api.findings)) {  // the rules found, each in its colour
      var found = {}, sliver = false;
      api.findings.eachLayer(function (f) {
        var p = f.feature.properties;
        if (p.kind === "sliver") sliver = true;
        else found[p.rule] = true;
      });
      Object.keys(cfg.rules).forEach(function (r) {
        if (found[r]) body.appendChild(row(areaSwatch(cfg.rules[r].color), S.findings + " · " + cfg.rules[r].label));
      });
      if (sliver) body.appendChild(row(areaSwatch(cfg.sliverColor), S.findings + " · " + S.rules.sliver));
    }
  }
  var pending = null;  // findings arrive one by one: drawn again once they have
  function soon() { clearTimeout(pending); pending = setTimeout(draw, 100); }
  map.on("overlayadd overlayremove", draw);
  if (api.findings) api.findings.on("layeradd", soon);
  draw();
  return {draw: draw};
}
