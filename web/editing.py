"""Editing grid cells from the map or a script (planners only): the views.

Planning a change is :mod:`geo.edits`; saving it — the transaction, the stale-revision
rule and the revisions — is :mod:`layers.editing`. Errors (401, 403, 412 stale, 422 new
findings, 428 no If-Match, 400, 404) are raised and answered by :mod:`web.errors`.

    POST   /collections/grid/items                 a new cell (GeoJSON Feature) → 201
    PUT    /collections/grid/items/{id}            If-Match: ETag; a GeoJSON Feature
    PATCH  /collections/grid/items/{id}            If-Match; a JSON Merge Patch of it
    DELETE /collections/grid/items/{id}            If-Match → 204
    POST   /collections/grid/items/{id}/preview    the cell after, findings it would add
    POST   /collections/grid/items/{id}/revert     {"revision", "reason"} + If-Match

Why (required) goes in ``X-Reason`` or the body's ``reason``; accepting the findings a
change adds in ``X-Accept-Findings`` or the body's ``accepted``.
    POST /collections/grid/changes/preview         {"op", ...}: changed cells, figures,
                                                   new findings, base revisions
    POST /collections/grid/changes                 the same + "base", "reason", "accepted"?
    GET  /collections/grid/diff?from=&to=          cells after change ``from`` and ``to``

Police areas and beats change whole, by adopting an aligned layout:
    POST /alignment/proposal                       If-Match: the proposal's ETag;
                                                   {"layer", "assignment", "reason"}

The changes of grid cells and of the jurisdictions (``{layer}``: grid, police_area,
police_beat), listed and undone alike:
    GET  /collections/{layer}/changes[?f=csv]      the change list, newest first
    GET  /collections/{layer}/changes/{id}         a change's features before and after
    POST /collections/{layer}/changes/{id}/revert  {"reason"}
"""

from __future__ import annotations

import io
import json
import math

import geopandas as gpd
from flask import Blueprint, Response, g, jsonify, request, url_for

from geo.edits import EDITABLE, preview_change, preview_feature
from geo.errors import InputError, NotFound, PreconditionRequired
from layers.editing import (
    REVERTIBLE,
    adopt_layout,
    apply_change,
    reason_zh,
    revert_change,
    revert_feature,
    update_feature,
)
from layers.export import csv_writer
from layers.storage.edits import WHOLE_LAYER
from web.auth import planner_required
from web.catalog import plain
from web.features import collection_of, feature_position, geojson, no_content
from web.params import accepts, catalog, if_match_version, json_body

bp = Blueprint("edit", __name__)


def _op() -> dict:
    body = json_body()
    if "op" not in body:
        raise InputError(
            'send a JSON object with "op" (update, reshape, split, merge, move, draw or replace)',
            zh="请发送含 op 的 JSON 对象（reshape、split、merge、move、draw 或 replace）",
        )
    return body


def _grid_only(layer: str):
    """The served collection ``layer``, if its features can be edited here."""
    col = collection_of(layer)
    if layer != "grid":
        raise InputError("only grid cells can be edited here", zh="只能在此编辑网格")
    return col


def _cell(layer: str, fid: str) -> tuple:
    """The collection, position and code of the editable feature ``fid``."""
    col = _grid_only(layer)
    i = feature_position(layer, col, fid)
    return col, i, str(col.codes[i])


def _base_revision() -> int:
    try:
        return int(request.headers.get("If-Match", "").strip('"').rsplit(":", 1)[1])
    except (IndexError, ValueError):
        raise PreconditionRequired(
            "send If-Match with the ETag that GET returned for this feature",
            zh="请在 If-Match 中发送读取该要素时得到的 ETag",
        ) from None


def _saved(result: dict, layer: str, code: str, **fields) -> Response:
    response = jsonify({"revision": result["revision"], "after": result["after"], **fields})
    response.headers["ETag"] = f'"{layer}:{code}:{result["revision"]}"'
    return response


# --------------------------------------------------------------------- one feature
def _reason_and_acceptance(body: dict) -> tuple[str, str | None]:
    """Why (``X-Reason`` header or the body's ``reason``) and, when the change adds
    findings, why they are accepted (``X-Accept-Findings`` or the body's ``accepted``).
    Headers let a standard OGC client, whose body is a bare Feature, say both."""
    reason = request.headers.get("X-Reason") or body.get("reason", "")
    accepted = request.headers.get("X-Accept-Findings") or body.get("accepted")
    return reason, accepted


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _as_edit(col, i: int, feature: dict) -> dict:
    """``feature`` less the properties the service derives or does not let an editor set,
    where they are as it served them: a client that read the feature and sends it back
    (QGIS, GDAL, a script doing GET then PUT) is not refused for them. One that changes
    such a property keeps it, and the edit refuses it, naming it."""
    if not isinstance(feature, dict):
        return feature
    served = json.loads(col.feature(i))["properties"]
    props = feature.get("properties")
    if not isinstance(props, dict):
        return feature
    kept = {
        k: v
        for k, v in props.items()
        if k in EDITABLE or k == "code" or k not in served or not _same(v, served[k])
    }
    return {**feature, "properties": kept}


def merge_patch(target, patch):
    """``target`` with the JSON Merge Patch ``patch`` applied (RFC 7396): members set to
    null are removed, objects merged member by member, anything else replaced."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _replace(layer: str, fid: str, feature: dict) -> Response:
    """Save ``feature`` (lon/lat) as the new state of feature ``fid``: PUT and PATCH."""
    col, i, code = _cell(layer, fid)
    base = _base_revision()
    reason, accepted = _reason_and_acceptance(feature)
    result = update_feature(
        catalog().store,
        layer,
        code,
        _as_edit(col, i, feature),
        base_revision=base,
        author=g.user["name"],
        reason=reason,
        accepted=accepted,
        served=catalog(),
    )
    return _saved(result, layer, code, accepted_findings=result["accepted_findings"])


@bp.put("/collections/<layer>/items/<fid>")
@accepts()
@planner_required
def put_item(layer, fid):
    """Replace a grid cell (If-Match: its ETag; X-Reason: why): OGC API – Features Part 4."""
    return _replace(layer, fid, json_body("a GeoJSON Feature"))


@bp.patch("/collections/<layer>/items/<fid>")
@accepts()
@planner_required
def patch_item(layer, fid):
    """Change part of a grid cell: a JSON Merge Patch of the feature as GET returns it."""
    col, i, _ = _cell(layer, fid)
    served = json.loads(col.feature(i))
    patch = json_body("a JSON Merge Patch of the feature")
    return _replace(layer, fid, merge_patch(served, patch))


@bp.post("/collections/<layer>/items")
@accepts()
@planner_required
def create_item(layer):
    """Add a grid cell exactly as sent (properties.parent_code: its community; code: the
    community's next serial unless given). 201 with its Location and ETag."""
    _grid_only(layer)
    feature = json_body("a GeoJSON Feature")
    reason, accepted = _reason_and_acceptance(feature)
    result = apply_change(
        catalog().store,
        {"op": "create", "feature": feature},
        base={},
        author=g.user["name"],
        reason=reason,
        accepted=accepted,
        served=catalog(),
    )
    new = result["revisions"][0]
    response = jsonify(plain(result))
    response.status_code = 201
    response.headers["Location"] = url_for(
        "features.item", layer=layer, fid=new["code"], _external=True
    )
    response.headers["ETag"] = f'"{layer}:{new["code"]}:{new["revision"]}"'
    return response


@bp.delete("/collections/<layer>/items/<fid>")
@accepts()
@planner_required
def delete_item(layer, fid):
    """Remove a grid cell (If-Match; X-Reason; X-Accept-Findings for the gap it leaves)."""
    _, _, code = _cell(layer, fid)
    reason, accepted = _reason_and_acceptance({})
    apply_change(
        catalog().store,
        {"op": "delete", "code": code},
        base={code: _base_revision()},
        author=g.user["name"],
        reason=reason,
        accepted=accepted,
        served=catalog(),
    )
    return no_content()


@bp.post("/collections/<layer>/items/<fid>/preview")
@accepts()
@planner_required
def preview_item(layer, fid):
    """What a PUT of this body would do: the cell before and after, findings it adds."""
    col, i, code = _cell(layer, fid)
    feature = _as_edit(col, i, json_body("a GeoJSON Feature"))
    with catalog().planning():
        base = catalog().preview_base()
        return jsonify(preview_feature(base.layers, code, feature, base))


@bp.post("/collections/<layer>/items/<fid>/revert")
@accepts()
@planner_required
def revert_item(layer, fid):
    """Put a cell back as it was before one of its revisions (a new revision)."""
    _, _, code = _cell(layer, fid)
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
        served=catalog(),
    )
    return _saved(result, layer, code)


# --------------------------------------------------------------------- changes
@bp.post("/collections/grid/changes/preview")
@accepts()
@planner_required
def preview():
    """What a multi-cell operation would do, without saving it."""
    cat, op = catalog(), _op()
    with cat.planning():
        revisions, base = cat.revisions(), cat.preview_base()  # base revisions as previewed
        return jsonify(plain(preview_change(base.layers, op, revisions.get, base)))


@bp.post("/collections/grid/changes")
@accepts()
@planner_required
def apply():
    """Save a multi-cell operation as one change."""
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
        served=catalog(),
    )
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
                "reason_zh": reason_zh(r["reason"]),
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
                "status": "layer"  # the layer written whole: how many features before, after
                if r["code"] == WHOLE_LAYER
                else "added"
                if not r["before"]
                else "removed"
                if not r["after"]
                else "changed",
                "households_before": props_b.get("households"),
                "households_after": props_a.get("households"),
                **(
                    {
                        "features_before": (r["before"] or {}).get("features", 0),
                        "features_after": (r["after"] or {}).get("features", 0),
                    }
                    if r["code"] == WHOLE_LAYER
                    else {}
                ),
            }
        )
    return sorted(groups.values(), key=lambda grp: -grp["change_id"])


def _revertible(layer: str) -> str:
    """``layer`` if its changes can be listed and reverted here, else 404 naming those."""
    if layer not in REVERTIBLE:
        raise NotFound(
            f"'{layer}' has no change list; layers with one: {', '.join(REVERTIBLE)}",
            zh=f"“{layer}”没有修改记录；有修改记录的图层：{', '.join(REVERTIBLE)}",
        )
    return layer


@bp.get("/collections/<layer>/changes")
@accepts(formats=("json", "csv"))
def change_list(layer):
    """The change list of a layer, newest first (CSV with f=csv)."""
    changes = _changes(catalog().store.revisions(_revertible(layer)))
    if request.args.get("f") != "csv":
        return jsonify({"changes": changes})
    out = io.StringIO()
    w = csv_writer(out)  # text that starts like a formula is quoted
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
        headers={"Content-Disposition": f"attachment; filename={layer}_changes.csv"},
    )


def _feature_collection(pairs, layer: str = "grid") -> Response:
    """GeoJSON of (side, feature) pairs, lon/lat (stored features are in the stored CRS)."""
    rows = [(side, f) for side, f in pairs if f]
    if not rows:
        return geojson('{"type":"FeatureCollection","features":[]}')
    crs = catalog().stored[layer].crs
    gdf = gpd.GeoDataFrame.from_features([f for _, f in rows], crs=crs).to_crs("EPSG:4326")
    gdf["side"] = [side for side, _ in rows]
    return geojson(gdf.to_json(drop_id=True, na="null", ensure_ascii=False))


@bp.get("/collections/<layer>/changes/<int:change_id>")
@accepts(formats=("geojson",))
def change(layer, change_id):
    """A change's features before and after (GeoJSON)."""
    revs = [
        r for r in catalog().store.revisions(_revertible(layer)) if r.get("change_id") == change_id
    ]
    if not revs:
        raise NotFound(f"no change {change_id} of {layer}", zh=f"没有第 {change_id} 号修改")
    if revs[0]["code"] == WHOLE_LAYER:
        raise _written_whole(revs[0])
    return _feature_collection(
        [p for r in revs for p in (("before", r["before"]), ("after", r["after"]))], layer
    )


def _written_whole(r: dict) -> InputError:
    """The refusal to draw a change that wrote its layer whole feature by feature."""
    n = [(r[side] or {}).get("features", 0) for side in ("before", "after")]
    return InputError(
        f"change {r['id']} wrote the layer {r['layer']} whole ({n[0]} features before, "
        f"{n[1]} after): it is not drawn feature by feature; its revert puts the layer "
        "back as it was",
        zh=f"第 {r['id']} 号修改整体重写了图层 {r['layer']}（之前 {n[0]} 个要素，之后 "
        f"{n[1]} 个）：不逐个要素显示；撤销它可恢复原图层",
    )


@bp.post("/collections/<layer>/changes/<int:change_id>/revert")
@accepts()
@planner_required
def revert(layer, change_id):
    """Undo a whole change, as a new change."""
    body = json_body()
    if not body.get("reason"):
        raise InputError('send {"reason": "…"}', zh='请发送 {"reason": "原因"}')
    result = revert_change(
        catalog().store,
        change_id,
        author=g.user["name"],
        reason=body["reason"],
        served=catalog(),
        layer=_revertible(layer),
    )
    return jsonify(result)


@bp.post("/alignment/proposal")
@accepts()
@planner_required
def adopt():
    """Adopt an aligned layout (``GET /alignment/proposal``) as one change of its layer:
    If-Match with the proposal's ETag; ``{"layer", "assignment", "reason"}`` and, when the
    proposal was made of other units than the layer's own, ``"unit"``."""
    body = json_body()
    layer = body.get("layer")
    basis = if_match_version(str(layer), "layout")
    if basis is None:
        raise PreconditionRequired(
            "send If-Match with the ETag of the layout proposal you adopt (GET "
            "/alignment/proposal?layer=…)",
            zh="请在 If-Match 中发送所采用调整方案的 ETag（GET /alignment/proposal?layer=…）",
        )
    result = adopt_layout(
        catalog().store,
        layer,
        body.get("assignment"),
        basis=basis,
        author=g.user["name"],
        reason=body.get("reason", ""),
        served=catalog(),
        unit=body.get("unit") or None,
    )
    return jsonify(result)


@bp.get("/collections/grid/diff")
@accepts("from", "to", formats=("geojson",))
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
        if lo < r["change_id"] <= hi and r["code"] == WHOLE_LAYER:
            raise _written_whole(r)
        if lo < r["change_id"] <= hi:
            first.setdefault(r["code"], r["before"])
            last[r["code"]] = r["after"]
    pairs = [p for code in first for p in (("before", first[code]), ("after", last[code]))]
    return _feature_collection(pairs)
