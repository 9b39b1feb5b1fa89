"""Editing grid cells from the map or a script: operations on several cells at once.

    POST /collections/grid/changes/preview   {"op": ..., ...}  → changed cells, figures,
                                              findings it would add, base revisions
    POST /collections/grid/changes           {"op": ..., "base": {code: rev}, "reason",
                                              "accepted"?}      → saved change (412 stale,
                                              422 findings, 403 viewer, 401 no sign-in)
    GET  /collections/grid/changes[?f=csv]   the change list (newest first)
    GET  /collections/grid/changes/{id}      the change's cells before and after (GeoJSON)
    POST /collections/grid/changes/{id}/revert {"reason"}
    GET  /collections/grid/diff?from=&to=    cells as they were after change ``from``
                                              and after change ``to`` (GeoJSON)

Operations (lon/lat GeoJSON geometries): ``reshape`` {code, geometry}, ``split`` {code,
line}, ``merge`` {codes}, ``move`` {to, geometry}, ``draw`` {community, geometry, name?},
``replace`` {community, features} (adopt a proposal). See :mod:`web.editing`.
"""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, current_app, jsonify, request

from geo.redraw import RedrawError
from web.api import _planner
from web.catalog import _plain
from web.editing import (EDIT_LAYERS, EditRejected, StaleEdit, apply_change, preview_change,
                         revert_change)
from web.errors import ApiError

bp = Blueprint("edit", __name__)


def _catalog():
    return current_app.extensions["gridmap"]


def _op() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or "op" not in body:
        raise ApiError(400, 'send a JSON object with "op" (reshape, split, merge, move, draw '
                            "or replace)")
    return body


def _stored_layers() -> dict:
    cat = _catalog()
    if "grid" not in cat.stored:
        raise ApiError(404, "this dataset has no grid layer")
    return {n: cat.stored[n] for n in EDIT_LAYERS if n in cat.stored}


def _stale(err: StaleEdit):
    latest = err.latest or {}
    return jsonify({"code": 412, "description":
                    f"cell {latest.get('code', '?')} was changed by {latest.get('author', '?')} "
                    f"at {latest.get('at', '?')} ({latest.get('reason', '')}) since you read "
                    "it; look at its new shape and redo your change",
                    "latest": err.latest}), 412


@bp.post("/collections/grid/changes/preview")
def preview():
    _planner()
    cat = _catalog()
    _stored_layers()
    revisions = cat.store.latest_revisions("grid")
    base = cat.preview_base()
    try:
        result = preview_change(base.layers, _op(), revisions.get, base)
    except (RedrawError, ValueError) as err:
        raise ApiError(400, str(err)) from None
    for code, rev in (result["base"] or {}).items():
        result["base"][code] = rev or 0
    return jsonify(_plain(result))


@bp.post("/collections/grid/changes")
def apply():
    user = _planner()
    body = _op()
    base = body.get("base", {})
    if not isinstance(base, dict) or not all(isinstance(v, int) for v in base.values()):
        raise ApiError(400, 'send "base": {code: revision} as the preview returned it')
    try:
        result = apply_change(_catalog().store, body, base=base, author=user["name"],
                              reason=body.get("reason", ""), accepted=body.get("accepted"))
    except StaleEdit as err:
        return _stale(err)
    except EditRejected as err:
        return jsonify({"code": 422, "description": "the change breaks nesting or leaves a "
                        "gap or overlap; fix it, or resend with \"accepted\": \"<reason>\"",
                        "findings": err.findings}), 422
    except (RedrawError, ValueError) as err:
        raise ApiError(400, str(err)) from None
    _catalog().reload()
    return jsonify(_plain(result))


def _changes(revisions: list[dict]) -> list[dict]:
    """Revisions grouped by change, newest first."""
    groups: dict[int, dict] = {}
    for r in revisions:
        cid = r.get("change_id") or r["id"]
        g = groups.setdefault(cid, {"change_id": cid, "at": r["at"], "author": r["author"],
                                    "reason": r["reason"], "accepted": r["accepted"],
                                    "cells": []})
        props_b = (r["before"] or {}).get("properties", {})
        props_a = (r["after"] or {}).get("properties", {})
        g["cells"].append({
            "code": r["code"], "revision": r["id"],
            "status": "added" if not r["before"] else "removed" if not r["after"] else "changed",
            "households_before": props_b.get("households"),
            "households_after": props_a.get("households")})
    return sorted(groups.values(), key=lambda g: -g["change_id"])


@bp.get("/collections/grid/changes")
def change_list():
    changes = _changes(_catalog().store.revisions("grid"))
    if request.args.get("f") != "csv":
        return jsonify({"changes": changes})
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["change_id", "revision", "at", "author", "reason", "accepted", "code",
                "status", "households_before", "households_after"])
    for g in changes:
        for c in g["cells"]:
            w.writerow([g["change_id"], c["revision"], g["at"], g["author"], g["reason"],
                        g["accepted"] or "", c["code"], c["status"],
                        c["households_before"], c["households_after"]])
    # UTF-8 with a byte-order mark so that Excel shows the Chinese text
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": "attachment; filename=grid_changes.csv"})


def _feature_collection(pairs) -> Response:
    """GeoJSON of (side, feature) pairs, lon/lat (stored features are in the stored CRS)."""
    import geopandas as gpd

    crs = _catalog().stored["grid"].crs
    rows = [(side, f) for side, f in pairs if f]
    if not rows:
        return Response('{"type":"FeatureCollection","features":[]}',
                        mimetype="application/geo+json")
    gdf = gpd.GeoDataFrame.from_features([f for _, f in rows], crs=crs).to_crs("EPSG:4326")
    gdf["side"] = [side for side, _ in rows]
    return Response(gdf.to_json(drop_id=True, na="null", ensure_ascii=False),
                    mimetype="application/geo+json")


@bp.get("/collections/grid/changes/<int:change_id>")
def change(change_id):
    revs = [r for r in _catalog().store.revisions("grid") if r.get("change_id") == change_id]
    if not revs:
        raise ApiError(404, f"no change {change_id}")
    return _feature_collection([p for r in revs for p in (("before", r["before"]),
                                                          ("after", r["after"]))])


@bp.post("/collections/grid/changes/<int:change_id>/revert")
def revert(change_id):
    user = _planner()
    body = request.get_json(silent=True) or {}
    if not body.get("reason"):
        raise ApiError(400, 'send {"reason": "…"}')
    try:
        result = revert_change(_catalog().store, change_id, author=user["name"],
                               reason=body["reason"])
    except StaleEdit as err:
        return _stale(err)
    except KeyError as err:
        raise ApiError(404, str(err).strip("'")) from None
    _catalog().reload()
    return jsonify(result)


@bp.get("/collections/grid/diff")
def diff():
    """Each cell changed between two changes (the numbers of the change list; 0: as first
    loaded): as it was after change ``from`` and after change ``to``. A change is taken
    whole: a revision number inside one stands for its change."""
    try:
        lo, hi = int(request.args["from"]), int(request.args["to"])
    except (KeyError, ValueError):
        raise ApiError(400, "from and to must be change numbers (0: as first loaded)") from None
    lo, hi = min(lo, hi), max(lo, hi)
    first, last = {}, {}
    for r in _catalog().store.revisions("grid"):  # oldest first
        if lo < r["change_id"] <= hi:
            first.setdefault(r["code"], r["before"])
            last[r["code"]] = r["after"]
    pairs = [p for code in first for p in (("before", first[code]), ("after", last[code]))]
    return _feature_collection(pairs)
