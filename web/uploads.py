"""Uploading a layer from the browser (planners only): the views.

Reading the file is :func:`layers.readers.read_layer_file` (what the command line
reads with); what a mode changes is :func:`geo.layerdiff.diff_layer`; saving it as one
revertible change is :func:`layers.importing.import_layer`. An upload is kept on the
server (:class:`layers.uploads.UploadArea`) while the user maps its columns, looks at the
preview and commits it; nothing reaches the dataset before the commit.

    POST   /uploads                 multipart: file (one, or a shapefile's parts), layer,
                                    and optionally encoding, crs, source_layer (a sheet or
                                    layer), fields (JSON {column: field}), mode → 201 the
                                    reading (below); Location: /uploads/{id}
    POST   /uploads/{id}/read       JSON {layer, encoding?, crs?, source_layer?, fields?,
                                    mode?}: read again with these choices → the reading
    POST   /uploads/{id}/commit     If-Match: the reading's ETag; JSON {layer, mode, reason,
                                    and the same choices} → what the change did
    DELETE /uploads/{id}            → 204

The reading says what was read (features, CRS, encoding, the file's columns and how
they map to the layer's fields, notes and warnings), whether the positions fit GCJ-02 or
BD-09 better than WGS 84 (:func:`geo.datum_fit.datum_fit`), what each mode would add,
remove and change, for the chosen mode the findings the check would add, and a preview
of the features (lon/lat GeoJSON, at most :data:`PREVIEW_FEATURES`). A file that cannot
be read answers 400 with what is wrong and, in ``details``, the columns and sheets found
so far, so that the user can map them and read again.
"""

from __future__ import annotations

import json
import time

import geopandas as gpd
from flask import Blueprint, Response, current_app, g, jsonify, request, url_for

import geo
from geo.datum_fit import datum_fit
from geo.errors import GridmapError, InputError, PreconditionRequired
from geo.findings import new_since
from geo.kinds import KINDS, kind
from geo.layerdiff import MODES
from layers.importing import (
    held_codes,
    import_layer,
    planned_import,
    whole_layer,
    written_whole,
)
from layers.readers import ImportLimits, ImportReport, parse_crs, read_layer_file
from layers.storage.edits import splice
from web.auth import planner_required
from web.catalog import plain
from web.features import no_content
from web.heavy import heavy
from web.params import accepts, catalog, if_match_version, json_body, version_etag

bp = Blueprint("upload", __name__)

#: Features of the preview drawn on the map (the counts are of all of them).
PREVIEW_FEATURES = 3000
#: Codes listed for each of added, removed and changed (the counts are of all).
LISTED_CODES = 50
_CHOICES = ("layer", "encoding", "crs", "source_layer", "fields", "mode")


def uploads():
    """The app's :class:`layers.uploads.UploadArea`."""
    return current_app.extensions["gridmap.uploads"]


def limits() -> ImportLimits:
    return current_app.extensions["gridmap.import_limits"]


def _choices(raw) -> dict:
    """The user's choices (form fields or a JSON object), each checked."""
    out = {k: raw.get(k) or None for k in _CHOICES}
    if not out["layer"]:
        raise InputError(
            "say which layer the file is (layer: street, community, grid, facility, …)",
            zh="请选择文件对应的图层（layer：street、community、grid、facility 等）",
        )
    kind(out["layer"])
    fields = out["fields"] or {}
    if isinstance(fields, str):  # a form field holds the mapping as JSON text
        try:
            fields = json.loads(fields)
        except ValueError:
            fields = None
    if not (
        isinstance(fields, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
    ):
        raise InputError(
            'fields must be a JSON object {"your column": "field"}',
            zh='fields 须为 JSON 对象 {"文件列名": "字段"}',
        )
    out["fields"] = {k: v for k, v in fields.items() if v}
    if out["mode"] is not None and out["mode"] not in MODES:
        raise InputError(
            f"mode must be one of {', '.join(MODES)}", zh=f"导入方式须为 {', '.join(MODES)} 之一"
        )
    for k in ("encoding", "crs", "source_layer"):
        if out[k] is not None and not isinstance(out[k], str):
            raise InputError(f"{k} must be text", zh=f"{k} 须为文字")
    return out


def _read(upload, choices: dict) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """The upload read with the user's choices; a refusal carries the columns and sheets
    found before it (``details``), for the mapping step."""
    report = ImportReport(layer=choices["layer"], source=upload.name)
    try:
        return read_layer_file(
            upload.path,
            choices["layer"],
            source_layer=choices["source_layer"],
            encoding=choices["encoding"],
            crs=choices["crs"],
            field_map=choices["fields"],
            limits=limits(),
            report=report,
        )
    except GridmapError as err:
        err.details = {
            **(err.details or {}),
            "upload": upload.id,
            "file": upload.name,
            "columns": report.columns,
            "sheets": report.sheets,
            "encoding": report.encoding,
            "fields": _fields(choices["layer"]),
        }
        raise


def _fields(layer: str) -> list[dict]:
    return [
        {"name": f.name, "zh": f.zh, "en": f.en, "required": f.required}
        for f in KINDS[layer].fields
    ]


def _after(current, gdf, mode: str, diff) -> gpd.GeoDataFrame:
    """The layer as it would be after the upload, in the stored CRS."""
    if diff is not None:
        return splice(current, diff.rows, diff.codes)
    return whole_layer(current, gdf, mode)


def _reading(upload, choices: dict) -> Response:
    cat = catalog()
    gdf, report = _read(upload, choices)
    layer = choices["layer"]
    version, stored = cat.version, cat.stored
    current = stored.get(layer)
    if current is not None and not gdf.crs.equals(current.crs):
        gdf = gdf.to_crs(current.crs)
    names = {}  # each code's name, the file's first (names before codes in the diff)
    for frame in (current, gdf):
        if frame is not None and "code" in frame.columns and "name" in frame.columns:
            names.update(zip(frame["code"].astype(str), frame["name"].astype(str)))
    modes, diffs = {}, {}
    for mode in MODES:
        try:
            diff = diffs[mode] = planned_import(current, gdf, layer, mode, given=report.given())
        except InputError as err:
            modes[mode] = {"refused": err.to_dict()}
            continue
        if diff is None:  # rewritten whole
            held = len(current) if current is not None else 0
            why = written_whole(layer, mode, gdf, held_codes(current, layer))
            modes[mode] = {
                "added": len(gdf),
                "removed": held if mode == "replace" else 0,
                "changed": 0,
                "unchanged": 0,
                "revertible": True,  # as one change of the layer as a whole
                "whole": {"en": why[0], "zh": why[1]},
            }
            continue
        modes[mode] = {
            **diff.counts(),
            "revertible": True,
            "codes": {k: getattr(diff, k)[:LISTED_CODES] for k in ("added", "removed", "changed")},
            "names": {
                k: [names.get(c) for c in getattr(diff, k)[:LISTED_CODES]]
                for k in ("added", "removed", "changed")
            },
        }
    answer = {
        "id": upload.id,
        "file": upload.name,
        "layer": layer,
        "source": report.source,
        "features": report.features,
        "crs": report.crs,
        "encoding": report.encoding,
        "columns": report.columns,
        "sheets": report.sheets,
        "field_map": report.field_map,
        "fields": _fields(layer),
        "notes": report.notes,
        "notes_zh": report.notes_zh,
        "warnings": report.warnings,
        "warnings_zh": report.warnings_zh,
        "held": 0 if current is None else len(current),
        "modes": modes,
        "mode": choices["mode"] or (None if current is not None and len(current) else "replace"),
        "datum": None,
        "findings": None,
        "preview": None,
    }
    stated_datum = parse_crs(choices["crs"])[1] if choices["crs"] else None
    fit = datum_fit(gdf, stored, layer, cat.layers.metric_crs) if not stated_datum else None
    if fit is not None:
        answer["datum"] = fit.to_dict()
    chosen = answer["mode"]
    if chosen and "refused" not in modes[chosen]:
        after = _after(current, gdf, chosen, diffs[chosen]).to_crs("EPSG:4326")
        started = time.monotonic()
        checked = geo.check(cat.layers.subset(**{layer: after}))
        added = new_since(cat.report().findings, checked.findings)
        answer["findings"] = {
            "added": [
                {
                    "rule": r.rule,
                    "layer": r.layer,
                    "features": list(r.features),
                    "detail": r.detail,
                    "detail_zh": r.detail_zh,
                }
                for r in added.itertuples(index=False)
            ][:200],
            "count": len(added),
            "seconds": round(time.monotonic() - started, 2),
        }
    shown = gdf.iloc[:PREVIEW_FEATURES].to_crs("EPSG:4326")
    answer["preview"] = json.loads(shown.to_json(drop_id=True, na="null", ensure_ascii=False))
    answer["preview_truncated"] = len(gdf) > PREVIEW_FEATURES
    response = jsonify(plain(answer))
    response.headers["ETag"] = version_etag(version, "upload")  # the commit sends it back
    return response


@bp.post("/uploads")
@accepts()
@planner_required
@heavy
def create():
    """Receive a file and read it (the first reading)."""
    request.max_content_length = limits().max_bytes
    files = [(f.filename or "upload", f.stream) for f in request.files.getlist("file")]
    choices = _choices(request.form)
    upload = uploads().put(g.user["name"], files, limits().max_bytes)
    response = _reading(upload, choices)
    response.status_code = 201
    response.headers["Location"] = url_for("upload.read", uid=upload.id, _external=True)
    return response


create.body_types = ("multipart/form-data",)  # the OpenAPI document says so


@bp.post("/uploads/<uid>/read")
@accepts()
@planner_required
@heavy
def read(uid):
    """Read the upload again with other choices (columns mapped, encoding, CRS, sheet,
    mode)."""
    return _reading(uploads().get(g.user["name"], uid), _choices(json_body()))


@bp.post("/uploads/<uid>/commit")
@accepts()
@planner_required
@heavy
def commit(uid):
    """Bring the upload into the dataset as one change; the upload is then removed."""
    upload = uploads().get(g.user["name"], uid)
    body = json_body()
    choices = _choices(body)
    basis = if_match_version("upload")
    if basis is None:
        raise PreconditionRequired(
            "send If-Match with the ETag of the reading you looked at (POST /uploads or "
            "/uploads/{id}/read)",
            zh="请在 If-Match 中发送所查看预览的 ETag（POST /uploads 或 /uploads/{id}/read）",
        )
    gdf, report = _read(upload, choices)
    result = import_layer(
        catalog().store,
        choices["layer"],
        gdf,
        mode=choices["mode"],
        author=g.user["name"],
        reason=body.get("reason", ""),
        basis=basis,
        served=catalog(),
        given=report.given(),
    )
    uploads().drop(g.user["name"], uid)
    return jsonify(plain({**result, "source": report.source}))


@bp.delete("/uploads/<uid>")
@accepts()
@planner_required
def drop(uid):
    """Remove an upload without committing it."""
    uploads().drop(g.user["name"], uid)
    return no_content()
