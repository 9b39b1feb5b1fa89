/* Uploading a layer (planners): send a file, read what the server made of it, map its
 * columns, choose what it does to the layer (replace, append, update by code), look at
 * the preview on the map and the findings it would add, then commit it with a reason as
 * one change — revertible here like any other.
 *
 * The server keeps the file (POST /uploads → an id); every choice reads it again there
 * (POST /uploads/{id}/read), so what is previewed is what is committed. The reading's
 * ETag goes back with the commit: if the layer changed meanwhile, the commit is refused.
 * Data from the server is put into the page as text only.
 */
import {el, errorText, fmt, namedCodes} from "../dom.js";

var MODES = ["replace", "append", "update"];
var PREVIEW_STYLE = {color: "#d95f0e", weight: 2, fillOpacity: 0.15, dashArray: "4 3"};

export function createUpload(ed) {
  var S = ed.S, E = ed.E, $ = ed.$, api = ed.api;
  var form = $("gm-upload-form");
  if (!form) return null;
  var status = $("gm-upload-status"), result = $("gm-upload-result");
  if (!ed.map.getPane("gm-upload")) ed.map.createPane("gm-upload").style.zIndex = 650;  // above the markers
  var preview = L.geoJSON(null, {
    pane: "gm-upload",
    style: function (f) { return f.geometry.type.indexOf("Point") >= 0 ? {} : PREVIEW_STYLE; },
    pointToLayer: function (f, latlng) {  // above the facility symbols, unmistakably new
      return L.circleMarker(latlng, {pane: "gm-upload", radius: 9, color: "#d95f0e", weight: 3,
                                     fillColor: "#ffffff", fillOpacity: 0.9});
    }
  }).addTo(ed.map);
  var current = null;  // {reading, etag, choices}

  var layerSelect = $("gm-upload-layer");
  E.uploadKinds.forEach(function (k) {
    layerSelect.appendChild(el("option", {value: k, text: (S[k] || k) + " · " + k}));
  });
  layerSelect.value = "facility";

  function say(text, isError) {
    status.textContent = text || "";
    status.className = isError ? "gm-hint gm-error" : "gm-hint";
  }

  function choices() {
    return {layer: layerSelect.value, crs: $("gm-upload-crs").value || null,
            encoding: $("gm-upload-encoding").value || null};
  }

  function answer(r) {  // the body, its status and the ETag of a reading
    return r.json().then(function (b) { b._status = r.status; b._etag = r.headers.get("ETag"); return b; });
  }

  function postJSON(url, body, etag) {
    var headers = {"Content-Type": "application/json", "X-CSRF-Token": E.csrf};
    if (etag) headers["If-Match"] = etag;
    return fetch(url, {method: "POST", credentials: "same-origin", headers: headers,
                       body: JSON.stringify(body)}).then(answer);
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var files = $("gm-upload-file").files;
    if (!files.length) { say(S.upload_file + "?", true); return; }
    var body = new FormData(), c = choices();
    Array.prototype.forEach.call(files, function (f) { body.append("file", f, f.name); });
    Object.keys(c).forEach(function (k) { if (c[k]) body.append(k, c[k]); });
    say(S.upload_reading);
    result.textContent = "";
    fetch(E.uploads, {method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": E.csrf}, body: body})
      .then(answer).then(function (b) { shown(b, c); })
      .catch(function (err) { say(err.message, true); });
  });

  function readAgain(extra) {
    if (!current) return;
    var c = Object.assign({}, current.choices, extra || {});
    say(S.upload_reading);
    postJSON(E.uploads + "/" + current.id + "/read", c).then(function (b) { shown(b, c); })
      .catch(function (err) { say(err.message, true); });
  }

  // the answer to a reading: what was read, the mapping, the modes, the preview
  function shown(b, c) {
    result.textContent = "";
    preview.clearLayers();
    if (b._status !== 200 && b._status !== 201) {
      say(errorText(b), true);
      if (b.upload) current = {id: b.upload, choices: c, etag: null};
      if (b.upload && b.sheets && b.sheets.length > 1) result.appendChild(sheets(b.sheets, ""));  // choose one
      if (b.upload && b.columns && b.columns.length) {  // the file was opened: let the user map it
        result.appendChild(mapping(b.columns, b.fields, c.fields || {}));
      }
      return;
    }
    current = {id: b.id, etag: b._etag, choices: Object.assign({}, c, {mode: b.mode})};
    say(S.upload_read_n.replace("{n}", fmt(b.features, 0)) + " · " + b.source + " · " + b.crs +
        (b.encoding ? " · " + b.encoding : ""));
    var zh = ed.cfg.lang !== "en";  // what the reader decided, in the page's language
    (zh ? b.notes_zh : b.notes).forEach(function (n) { result.appendChild(el("div", {"class": "gm-muted", text: n})); });
    (zh ? b.warnings_zh : b.warnings).forEach(function (n) { result.appendChild(el("div", {"class": "gm-error", text: n})); });
    if (b.datum && b.datum.suggested) result.appendChild(datumWarning(b.datum));
    if (b.sheets && b.sheets.length > 1) result.appendChild(sheets(b.sheets, b.source));
    result.appendChild(mapping(b.columns, b.fields, b.field_map));
    result.appendChild(modes(b));
    if (b.findings) result.appendChild(findings(b.findings));
    if (b.mode && !(b.modes[b.mode] || {}).refused) result.appendChild(commitBox(b));
    preview.addData(b.preview);
    if (preview.getLayers().length) api.fitTo(preview.getBounds(), 17);
    if (b.preview_truncated) result.appendChild(el("div", {"class": "gm-muted", text: S.preview_truncated.replace("{n}", "3000")}));
  }

  function datumWarning(d) {
    var name = d.suggested === "gcj02" ? "GCJ-02" : "BD-09";
    var text = S.datum_warning.replace("{datum}", name)
      .replace("{against}", S["against_" + d.against] || d.against)
      .replace("{best}", fmt(d.median_m[d.suggested], 0)).replace("{plain}", fmt(d.median_m.wgs84, 0));
    var go = el("button", {type: "button", text: S.datum_convert.replace("{datum}", name)});
    go.addEventListener("click", function () {
      $("gm-upload-crs").value = name;
      readAgain({crs: name});
    });
    return el("div", {"class": "gm-warning", id: "gm-upload-datum"}, [el("div", {text: text}), go]);
  }

  function sheets(names, source) {
    var pick = el("select", {"aria-label": S.upload_sheet});
    names.forEach(function (n) {
      var o = el("option", {value: n, text: n});
      if (source.indexOf("(sheet " + n + ")") >= 0 || source.indexOf("(layer " + n + ")") >= 0) o.selected = true;
      pick.appendChild(o);
    });
    pick.addEventListener("change", function () { readAgain({source_layer: pick.value}); });
    return el("label", {"class": "gm-band"}, [el("span", {text: S.upload_sheet + " "}), pick]);
  }

  // each column of the file with the field it fills (pre-filled from the names the
  // server recognised, Chinese aliases included)
  function mapping(columns, fields, map) {
    var rows = columns.map(function (col) {
      var pick = el("select", {"data-column": col, "aria-label": col});
      pick.appendChild(el("option", {value: "", text: S.not_used}));
      fields.forEach(function (f) {
        var o = el("option", {value: f.name, text: (S.fields[f.name] || f.name) + (f.required ? " *" : "")});
        if (map[col] === f.name || (!map[col] && col === f.name)) o.selected = true;
        pick.appendChild(o);
      });
      return el("tr", {}, [el("td", {text: col}), el("td", {}, [pick])]);
    });
    var again = el("button", {type: "button", text: S.upload_reread});
    again.addEventListener("click", function () {
      var fieldsMap = {};
      result.querySelectorAll("select[data-column]").forEach(function (s) {
        if (s.value && s.value !== s.getAttribute("data-column")) fieldsMap[s.getAttribute("data-column")] = s.value;
      });
      readAgain({fields: fieldsMap});
    });
    return el("div", {id: "gm-upload-mapping"}, [
      el("h4", {text: S.upload_columns + " (* " + S.required + ")"}),
      el("table", {"class": "gm-table"}, [el("tbody", {}, rows)]), again]);
  }

  function modes(b) {
    var box = el("fieldset", {id: "gm-upload-modes"}, [el("legend", {text: S.upload_mode})]);
    MODES.forEach(function (m) {
      var info = b.modes[m] || {};
      var radio = el("input", {type: "radio", name: "gm-upload-mode", value: m});
      if (b.mode === m) radio.checked = true;
      var detail = info.refused ? errorText(info.refused)
        : S.added + " " + fmt(info.added, 0) + " · " + S.removed + " " + fmt(info.removed, 0) + " · " +
          S.changed + " " + fmt(info.changed, 0) + " · " + S.unchanged + " " + fmt(info.unchanged, 0);
      if (info.refused) radio.disabled = true;
      radio.addEventListener("change", function () { readAgain({mode: m}); });
      var row = el("label", {"class": "gm-mode"}, [radio, el("span", {text: " " + S["mode_" + m]}),
        el("div", {"class": info.refused ? "gm-muted gm-error" : "gm-muted", text: detail})]);
      if (info.codes && b.mode === m) row.appendChild(codes(info.codes, info.names));
      if (info.whole && b.held) row.appendChild(el("div", {"class": "gm-hint", text: info.whole[ed.cfg.lang === "en" ? "en" : "zh"]}));
      box.appendChild(row);
    });
    if (!b.mode) box.appendChild(el("div", {"class": "gm-hint", text: S.choose_mode}));
    return box;
  }

  // the features a mode adds, removes and changes: names before codes
  function codes(c, names) {
    var out = el("div", {"class": "gm-muted"});
    ["added", "removed", "changed"].forEach(function (k) {
      if (!c[k].length) return;
      var listed = namedCodes(c[k], names && names[k]);
      out.appendChild(el("div", {text: S[k] + ": " + listed + (c[k].length >= 50 ? " …" : "")}));
    });
    return out;
  }

  function findings(f) {
    var box = el("div", {id: "gm-upload-findings"}, [el("h4", {text: S.upload_findings + " (" + f.count + ")"})]);
    if (!f.count) box.appendChild(el("div", {"class": "gm-muted", text: S.no_new_findings}));
    var list = el("ul", {"class": "gm-list"});
    f.added.slice(0, 20).forEach(function (r) {
      var rule = (ed.cfg.rules[r.rule] || {}).label || r.rule;
      var said = ed.cfg.lang === "en" ? r.detail : (r.detail_zh || r.detail);
      list.appendChild(el("li", {text: rule + " · " + (S[r.layer] || r.layer) + " · " + (said || r.features.join(", "))}));
    });
    box.appendChild(list);
    return box;
  }

  function commitBox(b) {
    var why = el("input", {id: "gm-upload-reason", maxlength: "500", placeholder: S.reason, "aria-label": S.reason});
    var go = el("button", {id: "gm-upload-commit", type: "button", text: S.upload_commit});
    var drop = el("button", {type: "button", text: S.upload_discard});
    go.addEventListener("click", function () {
      if (!why.value.trim()) { say(S.reason + "?", true); why.focus(); return; }
      var body = Object.assign({}, current.choices, {reason: why.value});
      say(S.upload_committing);
      postJSON(E.uploads + "/" + current.id + "/commit", body, current.etag).then(function (r) {
          if (r._status !== 200) { say(errorText(r), true); return; }
          done(r);
        });
    });
    drop.addEventListener("click", function () {
      ed.send("DELETE", E.uploads + "/" + current.id).catch(function () {});
      current = null; result.textContent = ""; preview.clearLayers(); say("");
    });
    return el("div", {"class": "gm-save"}, [why, el("div", {"class": "gm-buttons"}, [go, drop])]);
  }

  // committed: say what it did, offer its revert, show the layer as it is now
  function done(r) {
    result.textContent = "";
    preview.clearLayers();
    current = null;
    var text = S.upload_done.replace("{id}", r.change_id);
    if (r.whole) text += " · " + r.whole[ed.cfg.lang === "en" ? "en" : "zh"];
    say(text + " · " + S.added + " " + r.added + " · " + S.removed + " " + r.removed + " · " + S.changed + " " + r.changed);
    shownAgain(r.layer, true);
    if (r.change_id) result.appendChild(revertBox(r));
    $("gm-upload").scrollIntoView({block: "start"});
  }

  // the layer as it is now on the map; one the page does not draw yet: a link to reload
  function shownAgain(layer, offerReload) {
    if (api.layers[layer]) api.reloadLayer(layer);
    else if (layer === "facility" && api.facilities) api.facilities.reload();
    else if (offerReload) result.appendChild(el("a", {href: window.location.href, text: S.reload_page}));
  }

  function revertBox(r) {
    var why = el("input", {maxlength: "500", placeholder: S.revert_reason, "aria-label": S.revert_reason});
    var go = el("button", {type: "button", text: S.revert});
    go.addEventListener("click", function () {
      if (!why.value.trim()) { say(S.revert_reason + "?", true); why.focus(); return; }
      var url = E.layerRevert.replace("LAYER", r.layer).replace("/0/", "/" + r.change_id + "/");
      ed.send("POST", url, {reason: why.value}).then(function (b) {
        if (b._status !== 200) { say(errorText(b), true); return; }
        say(S.saved + " #" + b.change_id);
        result.textContent = "";
        shownAgain(r.layer, false);
      });
    });
    return el("div", {"class": "gm-band", id: "gm-upload-revert"}, [why, go]);
  }

  return {preview: preview};
}
