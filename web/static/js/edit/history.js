/* Revisions: the changes of the selected cell or of the whole grid layer (#gm-history),
 * each with its diff drawn on request and, for a planner, a revert (asking its own reason,
 * in a field of its own); the diff between two revisions (#gm-diff). when() and listCodes() format
 * a change's time and cells.
 */
import {el, errorText} from "../dom.js";

export function when(at) { return (at || "").replace("T", " ").slice(0, 16); }  // UTC, to the minute

export function listCodes(codes) {  // a street's change names dozens of cells: the first few
  return codes.length <= 8 ? codes.join(", ") : codes.slice(0, 8).join(", ") + " … +" + (codes.length - 8);
}

export function createHistory(ed) {
  var S = ed.S, E = ed.E, $ = ed.$, api = ed.api, say = ed.say;
  var historyBox = $("gm-history");
  var historyOf = "";  // a cell's code: only its changes; "": the whole layer

  function show(code) { historyOf = code; load(); }

  function load() {
    api.getJSON(E.changes).then(function (r) {
      historyBox.textContent = "";
      var changes = r.changes.filter(function (c) {
        return !historyOf || c.cells.some(function (x) { return x.code === historyOf; });
      });
      var scope = $("gm-history-scope");
      scope.textContent = historyOf ? historyOf + " · " : "";
      if (historyOf) {
        var all = el("a", {href: "#", text: S.all_changes});
        all.addEventListener("click", function (e) { e.preventDefault(); show(""); });
        scope.appendChild(all);
      }
      if (!changes.length) { historyBox.appendChild(el("li", {"class": "gm-muted", text: S.no_changes})); return; }
      changes.slice(0, 30).forEach(function (c) { historyBox.appendChild(item(c)); });
    }).catch(function (err) { historyBox.textContent = err.message; });
  }

  function item(c) {
    // a change that wrote the layer whole (an upload): how many features, no diff to draw
    var whole = c.cells[0].status === "layer";
    var what = whole
      ? S.whole_layer.replace("{before}", c.cells[0].features_before).replace("{after}", c.cells[0].features_after)
      : listCodes(c.cells.map(function (x) { return x.code; }));
    var li = el("li", {"data-change": String(c.change_id)}, [
      el("div", {text: "#" + c.change_id + " · " + c.author + " · " + when(c.at)}),
      el("div", {"class": "gm-muted", text: (ed.cfg.lang === "en" ? c.reason : c.reason_zh) + " · " + what})]);
    if (!whole) {
      var showDiff = el("button", {type: "button", text: S.show_diff});
      showDiff.addEventListener("click", function () {
        api.getJSON(E.change.replace("0", String(c.change_id))).then(ed.showDiff);
      });
      li.appendChild(showDiff);
    }
    if (ed.planner) {
      var undo = el("button", {type: "button", text: S.revert});
      undo.addEventListener("click", function () { askWhy(li, c, undo); });
      li.appendChild(undo);
    }
    return li;
  }

  // a revert says why in its own words: a field of its own, empty each time
  function askWhy(li, c, undo) {
    undo.hidden = true;
    var why = el("input", {maxlength: "500", "aria-label": S.revert_reason, placeholder: S.revert_reason, "class": "gm-revert-reason"});
    var go = el("button", {type: "button", text: S.confirm_revert});
    var cancel = el("button", {type: "button", text: S.cancel});
    var box = el("div", {"class": "gm-band"}, [why, go, cancel]);
    li.appendChild(box);
    why.focus();
    cancel.addEventListener("click", function () { box.remove(); undo.hidden = false; });
    go.addEventListener("click", function () {
      if (!why.value.trim()) { say(S.revert_reason + "?", true); why.focus(); return; }
      ed.send("POST", E.revert.replace("0", String(c.change_id)), {reason: why.value}).then(function (b) {
        if (b._status !== 200) { say(errorText(b), true); return; }
        say(S.saved + " #" + b.change_id);
        api.reloadLayer("grid");
        load();
      });
    });
  }

  ed.on("gm-diff", function () {
    var a = $("gm-diff-from").value || "0", b = $("gm-diff-to").value || "0";
    api.getJSON(E.diff + "?from=" + encodeURIComponent(a) + "&to=" + encodeURIComponent(b)).then(ed.showDiff);
  });
  ed.on("gm-diff-clear", function () { ed.layers.diff.clearLayers(); ed.layers.proposal.clearLayers(); });

  return {show: show, load: load};
}
