/* gridmap editor, the entry of its modules: redraw grid cells on the map (tools.js),
 * preview and save a change (preview.js), propose a re-partition (proposal.js), see and
 * revert revisions (history.js), upload a layer (upload.js). Drawing and snapping are Leaflet-Geoman's (static/vendor).
 *
 * Every operation goes to the server twice: first to /changes/preview, which computes the
 * new cells, their households and population and the findings the change would add; then,
 * when the planner has read that and given a reason, to /changes with the revisions the
 * preview was based on (a cell someone else changed meanwhile is refused: 412).
 * Data from the server is put into the page as text only (textContent), never as HTML.
 *
 * The parts share one object, ed: the page's api, cfg, the editor's layers and helpers
 * (on, say, send, showDiff), and each part as ed.tools, ed.changes, ed.proposal, ed.history.
 */
import {createEditLayers} from "./layers.js";
import {createTools} from "./tools.js";
import {createChanges} from "./preview.js";
import {createProposal} from "./proposal.js";
import {createHistory} from "./history.js";
import {createUpload} from "./upload.js";

export function installEditor(api, cfg) {
  var S = cfg.strings, map = api.map;
  var E = cfg.edit;
  var box = document.getElementById("gm-edit");
  if (!box || !E) return;
  if (L.PM) {
    L.PM.setOptIn(true);  // only what the editor marks editable; grid and communities snap
    map.pm.setGlobalOptions({snappable: true, snapDistance: 15, allowSelfIntersection: false,
                             templineStyle: {color: "#e6550d"}, hintlineStyle: {color: "#e6550d", dashArray: [5, 5]},
                             pathOptions: {color: "#e6550d", weight: 3, fillOpacity: 0.15}});
  }
  var layers = createEditLayers(map, S);
  var $ = function (id) { return document.getElementById(id); };
  var status = $("gm-edit-status");

  var ed = {
    api: api, cfg: cfg, S: S, E: E, map: map, box: box, layers: layers, $: $,
    planner: !!(E.user && E.user.role === "planner"),
    on: function (id, fn) { if ($(id)) $(id).addEventListener("click", fn); },  // a button's click
    say: function (text, isError) {
      status.textContent = text || "";
      status.className = isError ? "gm-hint gm-error" : "gm-hint";
    },
    send: function (method, url, body) {
      return fetch(url, {method: method, credentials: "same-origin",
                         headers: {"Content-Type": "application/json", "X-CSRF-Token": E.csrf},
                         body: body ? JSON.stringify(body) : undefined})
        .then(function (r) { return r.json().then(function (b) { b._status = r.status; return b; }); });
    },
    showDiff: function (fc) {  // a change's cells before (dashed red) and after (green), zoomed to
      layers.diff.clearLayers().addData(fc);
      if (layers.diff.getLayers().length) api.fitTo(layers.diff.getBounds(), 17);
    }
  };
  ed.history = createHistory(ed);
  ed.changes = createChanges(ed);
  ed.proposal = createProposal(ed);
  ed.tools = createTools(ed);
  ed.upload = createUpload(ed);

  ed.tools.setButtons(false);
  ed.history.load();
  window.gridmap.editor = {select: ed.tools.select, preview: ed.changes.preview,
                           layers: {preview: layers.preview, diff: layers.diff, proposal: layers.proposal},
                           upload: ed.upload && ed.upload.preview};
}
