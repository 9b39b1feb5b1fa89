/* DOM and network helpers shared by every panel.
 *
 * el() puts data into the page as text only (textContent), never as HTML: a feature called
 * "<img src=x onerror=alert(1)>" shows literally. svgSymbol() draws a facility kind's symbol
 * with DOM calls from a {color, shape} style.
 */

export function el(tag, attrs, children) {
  var node = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) {
    if (k === "text") node.textContent = attrs[k];
    else if (k === "class") node.className = attrs[k];
    else node.setAttribute(k, attrs[k]);
  });
  (children || []).forEach(function (c) { if (c) node.appendChild(c); });
  return node;
}

// Features named before their codes, as everywhere codes are shown: "八廓社区 540102006001,
// …" (``names``: one per code, or none; a code without a name is shown alone)
export function namedCodes(codes, names) {
  return codes.map(function (code, i) {
    var name = names && names[i];
    return name ? name + " " + code : code;
  }).join(", ");
}

export function fmt(n, digits) {
  if (n === null || n === undefined) return "—";
  return Number(n).toLocaleString(undefined, {maximumFractionDigits: digits === undefined ? 1 : digits});
}

// The message of an error answer in the page's language: every gridmap error carries it
// in Chinese and English ({"message": {"zh", "en"}}); others only a "description".
export function errorText(body) {
  var lang = (document.documentElement.lang || "zh").slice(0, 2) === "en" ? "en" : "zh";
  return (body && body.message && body.message[lang]) || (body && body.description) || "";
}

export function getJSON(url) {
  return fetch(url, {credentials: "same-origin"}).then(function (r) {
    return r.json().then(function (body) {
      if (!r.ok) throw new Error(errorText(body) || r.statusText);
      return body;
    });
  });
}

var UNKNOWN_KIND = {color: "#444444", shape: "circle"};
var SHAPES = {
  circle: ["circle", {cx: 10, cy: 10, r: 7}],
  square: ["rect", {x: 3, y: 3, width: 14, height: 14}],
  diamond: ["polygon", {points: "10,2 18,10 10,18 2,10"}],
  triangle: ["polygon", {points: "10,2 18,17 2,17"}],
  star: ["polygon", {points: "10,1 12.6,7 19,7.5 14,11.6 15.6,18 10,14.5 4.4,18 6,11.6 1,7.5 7.4,7"}],
  cross: ["polygon", {points: "7,2 13,2 13,7 18,7 18,13 13,13 13,18 7,18 7,13 2,13 2,7 7,7"}]
};

// style: {color, shape} of a facility kind (cfg.facilityKinds[kind]); none: a grey circle
export function svgSymbol(style) {
  var st = style || UNKNOWN_KIND;
  var ns = "http://www.w3.org/2000/svg";
  var svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 20 20");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  var spec = SHAPES[st.shape];
  var shape = document.createElementNS(ns, spec[0]);
  Object.keys(spec[1]).forEach(function (k) { shape.setAttribute(k, spec[1][k]); });
  shape.setAttribute("fill", st.color);
  shape.setAttribute("stroke", "#ffffff");
  shape.setAttribute("stroke-width", "1.5");
  svg.appendChild(shape);
  return svg;
}
