/* The page around the map: the server-rendered panel as a Leaflet control with a tab per
 * job (查询 look up, 检查 check, 对齐 align, 服务 services, 编辑 edit), zooming to bounds
 * beside the panel, and the notice line over the map (#gm-notice).
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
      // Leaflet tells a click in a control from one on the map by walking up from its
      // target; a target the click itself removed (a table sorted again) has no way up,
      // and the map took it as a click on the map (a lookup there). Clicks stop here.
      panel.addEventListener("click", function (e) { e.stopPropagation(); });
      return panel;
    }
  });
  new Panel().addTo(map);
  document.getElementById("gm-toggle").addEventListener("click", function () {
    panel.classList.toggle("gm-open");
  });
  var phone = window.matchMedia && window.matchMedia("(max-width: 700px)");
  if (phone && phone.matches) panel.classList.remove("gm-open");
  keepAboveSheet(panel, phone);
  panel.querySelectorAll(".gm-tabs [data-tab]").forEach(function (button) {
    button.addEventListener("click", function () { showTab(button.getAttribute("data-tab")); });
  });
  return panel;
}

// On a phone the panel is a sheet along the bottom (gridmap.css): the controls at the
// bottom sit above it (--gm-sheet) and a popup opens, and is panned to, in the map above
// it, no taller than that room.
function keepAboveSheet(panel, phone) {
  if (!phone || !window.ResizeObserver) return;
  var popup = L.Popup.prototype.options;
  var wide = {topLeft: popup.autoPanPaddingTopLeft, bottomRight: popup.autoPanPaddingBottomRight,
              maxHeight: popup.maxHeight, maxWidth: popup.maxWidth};
  function fit() {
    var sheet = phone.matches ? panel.getBoundingClientRect().height : 0;
    document.documentElement.style.setProperty("--gm-sheet", sheet + "px");
    if (!phone.matches) { Object.assign(popup, wide); return; }
    popup.autoPanPaddingTopLeft = L.point(50, 10);  // clear of the zoom buttons
    popup.autoPanPaddingBottomRight = L.point(5, sheet + 10);
    popup.maxWidth = window.innerWidth - 80;
    popup.maxHeight = Math.max(120, window.innerHeight - sheet - 90);
  }
  new ResizeObserver(fit).observe(panel);
  if (phone.addEventListener) phone.addEventListener("change", fit);
  fit();
}

// currentTab(): the name of the tab shown
export function currentTab() {
  var shown = document.querySelector("#gm-panel .gm-tab:not([hidden])");
  return shown ? shown.getAttribute("data-tab") : null;
}

// showTab(name): the panel's tab for one job, the others folded away; the panel opens.
export function showTab(name) {
  var panel = document.getElementById("gm-panel");
  if (!panel || !panel.querySelector('.gm-tab[data-tab="' + name + '"]')) return;
  panel.querySelectorAll(".gm-tab").forEach(function (tab) {
    tab.hidden = tab.getAttribute("data-tab") !== name;
  });
  panel.querySelectorAll(".gm-tabs [data-tab]").forEach(function (button) {
    button.setAttribute("aria-selected", button.getAttribute("data-tab") === name ? "true" : "false");
  });
  panel.classList.add("gm-open");
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
