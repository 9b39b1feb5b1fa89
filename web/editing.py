"""Editing grid cells from the map or a script (planners only): the views.

Planning a change is :mod:`geo.edits`; saving it — the transaction, the stale-revision
rule and the revisions — is :mod:`layers.editing`. Errors (401, 403, 412 stale, 422 new
findings, 428 no If-Match, 400, 404) are raised and answered by :mod:`web.errors`.

    PUT  /collections/grid/items/{code}            If-Match: ETag; a GeoJSON Feature
    POST /collections/grid/items/{code}/preview    the cell after, findings it would add
    POST /collections/grid/items/{code}/revert     {"revision", "reason"} + If-Match
    POST /collections/grid/changes/preview         {"op", ...}: changed cells, figures,
                                                   new findings, base revisions
    POST /collections/grid/changes                 the same + "base", "reason", "accepted"?
    GET  /collections/grid/changes[?f=csv]         the change list, newest first
    GET  /collections/grid/changes/{id}            a change's cells before and after
    POST /collections/grid/changes/{id}/revert     {"reason"}
    GET  /collections/grid/diff?from=&to=          cells after change ``from`` and ``to``
"""

from __future__ import annotations

import csv
import io

import geopandas as gpd
from flask import Blueprint, Response, g, jsonify, request

from geo.edits import preview_change, preview_feature
from geo.errors import InputError, NotFound, PreconditionRequired
from layers.editing import apply_change, revert_change, revert_feature, update_feature
from web.auth import planner_required
from web.catalog import plain
from web.features import collection_of, geojson
from web.params import catalog, json_body

bp = Blueprint("edit", __name__)


def _op() -> dict:
    body = json_body()
    if "op" not in body:
        raise InputError(
            'send a JSON object with "op" (update, reshape, split, merge, move, draw or replace)',
            zh="请发送含 op 的 JSON 对象（reshape、split、merge、move、draw 或 replace）",
        )
    return body


def _grid_only(layer: str) -> None:
    collection_of(layer)
    if layer != "grid":
        raise InputError("only grid cells can be edited here", zh="只能在此编辑网格")


def _base_revision() -> int:
    try:
        return int(request.headers.get("If-Match", "").strip('"').rsplit(":", 1)[1])
    except (IndexError, ValueError):
        raise PreconditionRequired(
            "send If-Match with the ETag that GET returned for this feature",
            zh="请在 If-Match 中发送读取该要素时得到的 ETag",
        ) from None


def _saved(result: dict, layer: str, code: str, **fields) -> Response:
    catalog().reload()
    response = jsonify({"revision": result["revision"], "after": result["after"], **fields})
    response.headers["ETag"] = f'"{layer}:{code}:{result["revision"]}"'
    return response


# --------------------------------------------------------------------- one feature
@bp.put("/collections/<layer>/items/<code>")
@planner_required
def put_item(layer, code):
    _grid_only(layer)
    base = _base_revision()
    body = json_body("a GeoJSON Feature")
    result = update_feature(
        catalog().store,
        layer,
        code,
        body,
        base_revision=base,
        author=g.user["name"],
        reason=request.headers.get("X-Reason") or body.get("reason", ""),
        accepted=body.get("accepted"),
    )
    return _saved(result, layer, code, accepted_findings=result["accepted_findings"])


@bp.post("/collections/<layer>/items/<code>/preview")
@planner_required
def preview_item(layer, code):
    _grid_only(layer)
    base = catalog().preview_base()
    return jsonify(preview_feature(base.layers, code, json_body("a GeoJSON Feature"), base))


@bp.post("/collections/<layer>/items/<code>/revert")
@planner_required
def revert_item(layer, code):
    collection_of(layer)
    body = json_body()
    if not isinstance(body.get("revision"), int) or not body.get("reason"):
        raise InputError(
            'send {"revision": <id>, "reason": "…"}',
            zh='请发送 {"revision": 版本号, "reason": "原因"}',
        )
    result = revert_feature(
        catalog().store,
        layer,
        code,
        body["revision"],
        base_revision=_base_revision(),
        author=g.user["name"],
        reason=body["reason"],
    )
    return _saved(result, layer, code)


# --------------------------------------------------------------------- changes
@bp.post("/collections/grid/changes/preview")
@planner_required
def preview():
    cat = catalog()
    revisions = cat.store.latest_revisions("grid")
    base = cat.preview_base()
    return jsonify(plain(preview_change(base.layers, _op(), revisions.get, base)))


@bp.post("/collections/grid/changes")
@planner_required
def apply():
    body = _op()
    base = body.get("base", {})
    if not isinstance(base, dict) or not all(isinstance(v, int) for v in base.values()):
        raise InputError(
            'send "base": {code: revision} as the preview returned it',
            zh='请按预览返回的内容发送 "base": {编码: 版本号}',
        )
    result = apply_change(
        catalog().store,
        body,
        base=base,
        author=g.user["name"],
        reason=body.get("reason", ""),
        accepted=body.get("accepted"),
    )
    catalog().reload()
    return jsonify(plain(result))


def _changes(revisions: list[dict]) -> list[dict]:
    """Revisions grouped by change, newest first."""
    groups: dict[int, dict] = {}
    for r in revisions:
        cid = r.get("change_id") or r["id"]
        grp = groups.setdefault(
            cid,
            {
                "change_id": cid,
                "at": r["at"],
                "author": r["author"],
                "reason": r["reason"],
                "accepted": r["accepted"],
                "cells": [],
            },
        )
        props_b = (r["before"] or {}).get("properties", {})
        props_a = (r["after"] or {}).get("properties", {})
        grp["cells"].append(
            {
                "code": r["code"],
                "revision": r["id"],
                "status": "added"
                if not r["before"]
                else "removed"
                if not r["after"]
                else "changed",
                "households_before": props_b.get("households"),
                "households_after": props_a.get("households"),
            }
        )
    return sorted(groups.values(), key=lambda grp: -grp["change_id"])


@bp.get("/collections/grid/changes")
def change_list():
    changes = _changes(catalog().store.revisions("grid"))
    if request.args.get("f") != "csv":
        return jsonify({"changes": changes})
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        [
            "change_id",
            "revision",
            "at",
            "author",
            "reason",
            "accepted",
            "code",
            "status",
            "households_before",
            "households_after",
        ]
    )
    for grp in changes:
        for c in grp["cells"]:
            w.writerow(
                [
                    grp["change_id"],
                    c["revision"],
                    grp["at"],
                    grp["author"],
                    grp["reason"],
                    grp["accepted"] or "",
                    c["code"],
                    c["status"],
                    c["households_before"],
                    c["households_after"],
                ]
            )
    # UTF-8 with a byte-order mark so that Excel shows the Chinese text
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=grid_changes.csv"},
    )


def _feature_collection(pairs) -> Response:
    """GeoJSON of (side, feature) pairs, lon/lat (stored features are in the stored CRS)."""
    rows = [(side, f) for side, f in pairs if f]
    if not rows:
        return geojson('{"type":"FeatureCollection","features":[]}')
    crs = catalog().stored["grid"].crs
    gdf = gpd.GeoDataFrame.from_features([f for _, f in rows], crs=crs).to_crs("EPSG:4326")
    gdf["side"] = [side for side, _ in rows]
    return geojson(gdf.to_json(drop_id=True, na="null", ensure_ascii=False))


@bp.get("/collections/grid/changes/<int:change_id>")
def change(change_id):
    revs = [r for r in catalog().store.revisions("grid") if r.get("change_id") == change_id]
    if not revs:
        raise NotFound(f"no change {change_id}", zh=f"没有第 {change_id} 号修改")
    return _feature_collection(
        [p for r in revs for p in (("before", r["before"]), ("after", r["after"]))]
    )


@bp.post("/collections/grid/changes/<int:change_id>/revert")
@planner_required
def revert(change_id):
    body = json_body()
    if not body.get("reason"):
        raise InputError('send {"reason": "…"}', zh='请发送 {"reason": "原因"}')
    result = revert_change(catalog().store, change_id, author=g.user["name"], reason=body["reason"])
    catalog().reload()
    return jsonify(result)


@bp.get("/collections/grid/diff")
def diff():
    """Each cell changed between two changes (the numbers of the change list; 0: as first
    loaded): as it was after change ``from`` and after change ``to``. A change is taken
    whole: a revision number inside one stands for its change."""
    try:
        lo, hi = int(request.args["from"]), int(request.args["to"])
    except (KeyError, ValueError):
        raise InputError(
            "from and to must be change numbers (0: as first loaded)",
            zh="from 和 to 须为修改编号（0 表示初始状态）",
        ) from None
    lo, hi = min(lo, hi), max(lo, hi)
    first, last = {}, {}
    for r in catalog().store.revisions("grid"):  # oldest first
        if lo < r["change_id"] <= hi:
            first.setdefault(r["code"], r["before"])
            last[r["code"]] = r["after"]
    pairs = [p for code in first for p in (("before", first[code]), ("after", last[code]))]
    return _feature_collection(pairs)
