/* The page around the map: the server-rendered panel as a Leaflet control, zooming to
 * bounds beside the panel, and the notice line over the map (#gm-notice).
 */

// The server-rendered panel becomes a Leaflet control: it scrolls and takes clicks without
// moving the map. Folded on a phone; ☰ opens and folds it.
export function installPanel(map) {
  var panel = document.getElementById("gm-panel");
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
  return panel;
}

// fitTo(bounds, maxZoom): zoom to bounds without putting them under the panel (open, beside
// the map on a wide screen; folded over it on a phone).
export function fitter(map, panelNode) {
  return function fitTo(bounds, maxZoom) {
    var right = 10;
    if (panelNode && panelNode.classList.contains("gm-open") &&
        panelNode.offsetWidth < map.getSize().x * 0.6) right += panelNode.offsetWidth;
    map.fitBounds(bounds, {maxZoom: maxZoom, paddingTopLeft: [10, 10], paddingBottomRight: [right, 10]});
  };
}

// showNotice(text): show text over the map; "" hides it.
export function notifier() {
  var notice = document.getElementById("gm-notice");
  return function showNotice(text) {
    if (!notice) return;
    notice.textContent = text || "";
    notice.hidden = !text;
  };
}
