/* Preview and save a change: the server's preview of an operation (new cells drawn, their
 * households and population before and after, the findings it would add) in
 * #gm-edit-result; then saving it with a reason (#gm-save-box) against the revisions the
 * preview was based on — refused when someone changed them meanwhile (412, that change is
 * drawn) or when it adds findings not accepted (422).
 */
import {el, errorText, fmt} from "../dom.js";
import {ruleLabel} from "../findings.js";
import {when, listCodes} from "./history.js";

export function createChanges(ed) {
  var S = ed.S, E = ed.E, map = ed.map, $ = ed.$, on = ed.on, say = ed.say;
  var result = $("gm-edit-result");
  var pending = null;         // the operation last previewed, with its base revisions

  function reset() {
    ed.tools.stopDrawing();
    pending = null;
    ed.layers.preview.clearLayers();
    result.textContent = "";
    $("gm-save-box").hidden = true;
    $("gm-preview").hidden = true;
    $("gm-accept-box").hidden = true;
  }
  on("gm-cancel", function () { reset(); say(""); });

  function preview(op) {
    say(S.loading);
    ed.send("POST", E.preview, op).then(function (r) {
      if (r._status !== 200) { say(errorText(r), true); return; }
      pending = {op: op, base: r.base};
      ed.layers.preview.clearLayers().addData(r.features);
      showPreview(r);
      say("");
    }).catch(function (err) { say(err.message, true); });
  }

  function showPreview(r) {
    result.textContent = "";
    map.closePopup();  // the preview is drawn where the cell's popup stood
    var table = el("table", {"class": "gm-attrs gm-figures"});
    table.appendChild(el("tr", {}, [el("th", {text: S.code}), el("th", {text: S.status}),
      el("th", {text: S.households + " " + S.before}), el("th", {text: S.after}),
      el("th", {text: S.population + " " + S.before}), el("th", {text: S.after})]));
    r.cells.forEach(function (c) {
      table.appendChild(el("tr", {"data-code": c.code}, [el("td", {text: c.code}), el("td", {text: S[c.status] || c.status}),
        el("td", {text: fmt(c.households_before, 0)}), el("td", {text: fmt(c.households, 0)}),
        el("td", {text: fmt(c.population_before, 0)}), el("td", {text: fmt(c.population, 0)})]));
    });
    result.appendChild(table);
    result.appendChild(el("div", {"class": "gm-hint", text: S.method + ": " + ((S.methods || {})[r.method] || r.method)}));
    var findings = r.new_findings || [];
    if (findings.length) {
      result.appendChild(el("div", {"class": "gm-error", text: S.new_findings + " (" + findings.length + ")"}));
      var ul = el("ul", {"class": "gm-list", id: "gm-new-findings"});
      findings.forEach(function (f) {
        ul.appendChild(el("li", {text: ruleLabel(ed.cfg, f.rule) + " · " + f.features.join(", ") +
          (f.area_m2 !== null ? " · " + fmt(f.area_m2, 1) + " m²" : "")}));
      });
      result.appendChild(ul);
      say(S.blocked, true);
    }
    $("gm-accept-box").hidden = !findings.length;
    $("gm-save-box").hidden = false;
  }

  on("gm-save", function () {
    if (!pending) return;
    var body = L.extend({}, pending.op, {base: pending.base, reason: $("gm-reason").value,
                                         accepted: $("gm-accepted").value || undefined});
    ed.send("POST", E.apply, body).then(function (r) {
      if (r._status === 200) {
        var codes = listCodes(r.cells.map(function (c) { return c.code; }));
        if (pending.op.op === "replace") ed.proposal.clear();
        reset();
        ed.tools.deselect();
        $("gm-reason").value = "";
        $("gm-accepted").value = "";
        say(S.saved + " #" + r.change_id + ": " + codes);
        ed.api.reloadLayer("grid");
        ed.history.show("");
      } else if (r._status === 412) {  // say who changed it, when and why; draw that change
        var l = r.latest || {};
        var why = ed.cfg.lang === "en" ? l.reason : (l.reason_zh || l.reason);
        say(S.stale + ": " + [l.code, l.author, when(l.at), why].filter(Boolean).join(" · ") +
            ". " + S.redo, true);
        ed.showDiff([["before", l.before], ["after", l.after]].filter(function (side) { return side[1]; })
          .map(function (side) { return L.extend({}, side[1], {properties: L.extend({}, side[1].properties, {side: side[0]})}); }));
        ed.api.reloadLayer("grid");
        ed.history.load();
      } else if (r._status === 422) {
        showPreview({cells: [], method: "", new_findings: r.findings});
        say(S.blocked, true);
      } else {
        say(errorText(r), true);
      }
    }).catch(function (err) { say(err.message, true); });
  });

  return {preview: preview};
}
