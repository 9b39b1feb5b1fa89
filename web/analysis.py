"""Analysis answers: findings, who is responsible at a point, search, themes, proposals.

GET /findings?rule=&layer=          the check report as GeoJSON
GET /check                          where the check of the served data stands (running:
                                    its step, in both languages, and seconds so far)
GET /lookup?lon=&lat=               features holding a point, nearest facility per kind
GET /search?q=                      features by name or code, and standard addresses
GET /addresses?q=&limit=            standard addresses by part of their text, each with
                                    who is responsible there and the nearest facilities
GET /alignment?layer=               how police areas and beats line up with streets and
                                    communities (the check's alignment tables)
GET /alignment/proposal?layer=&min=&max=   an aligned layout of police areas (beats): whole
                                    streets (communities), fewest households moved;
                                    f=csv|xlsx: its transfer list (划转清单)
GET /themes                         population themes: classes and colours
GET /proposal?community=|street=&min=&max=   a proposed re-partition of grid cells
"""

from __future__ import annotations

import json

import pandas as pd
from flask import Blueprint, Response, current_app, jsonify, request

from geo.errors import InputError
from geo.findings import RULES
from geo.kinds import KINDS, jurisdictions
from geo.realign import units_for
from layers.export import table_bytes
from web.catalog import json_text
from web.features import geojson, json_answer
from web.heavy import heavy, run_isolated
from web.negotiation import MEDIA_TYPES
from web.params import accepts, catalog, float_arg, int_arg, version_etag
from web.sites import nearest_json

bp = Blueprint("analysis", __name__)


def _one_of(name: str, value, table) -> None:
    if value and value not in table:
        raise InputError(
            f"'{value}' is not a {name}; must be one of {', '.join(table)}",
            zh=f"“{value}”不是有效的{'规则' if name == 'rule' else '图层'}；"
            f"可用：{', '.join(table)}",
        )


@bp.get("/findings")
@accepts("rule", "layer", formats=("geojson",))
def findings():
    """The check report as GeoJSON (the map's findings layer)."""
    rule, layer = request.args.get("rule"), request.args.get("layer")
    _one_of("rule", rule, RULES)
    _one_of("layer", layer, KINDS)
    feats = catalog().findings(rule=rule, layer=layer)
    summary = catalog().report().summary()
    return geojson(
        f'{{"type":"FeatureCollection","numberReturned":{len(feats)},'
        f'"summary":{json.dumps(summary)},"features":[' + ",".join(feats) + "]}"
    )


@bp.get("/check")
@accepts()
def check_status():
    """Where the background check of the served data stands (the findings panel asks
    while ``/findings`` waits for it): never waits itself."""
    response = jsonify(catalog().check_status())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/lookup")
@accepts("lon", "lat")
def lookup():
    """Who is responsible at a point: every area holding it, the nearest facility of each kind."""
    lon = float_arg("lon", -180, 180)
    lat = float_arg("lat", -90, 90)
    cat = catalog()
    if cat.has_access():  # walking distance along the roads, with the route
        near = cat.access(demand=False).nearest(lon, lat, paths="json")
    else:
        near = cat.locator.nearest(lon, lat)
    head = json_text({"lon": lon, "lat": lat, "areas": cat.locator.locate(lon, lat)})
    return json_answer(f'{head[:-1]},"nearest":{nearest_json(near)}}}')


@bp.get("/search")
@accepts("q")
def search():
    """Features whose name or code contains the text."""
    q = request.args.get("q", "")
    if len(q) > 100:
        raise InputError("q must be at most 100 characters", zh="搜索文字最多 100 个字符")
    return jsonify({"q": q, "results": catalog().search(q)})


@bp.get("/addresses")
@accepts("q", "limit")
def addresses():
    """Standard addresses holding every word of the text, each with who is responsible
    there and the nearest facilities."""
    q = request.args.get("q", "")
    if not q.strip() or len(q) > 100:
        raise InputError(
            "q must be 1 to 100 characters of an address or its code",
            zh="q 须为 1 到 100 个字符的地址或地址编码",
        )
    limit = int_arg("limit", 10, 1, 50)
    return jsonify({"q": q, "results": catalog().find_addresses(q, limit)})


@bp.get("/alignment")
@accepts("layer", formats=("json", "csv", "xlsx"))
def alignment():
    """How each police area and beat lines up with the units it should follow (one
    layer's table as a download with ``f=csv`` or ``f=xlsx``)."""
    tables = catalog().report().alignment_records()
    layer = request.args.get("layer")
    _one_of("layer", layer, tables)
    f = request.args.get("f")
    if f in ("csv", "xlsx"):
        if not layer:
            raise InputError(f"f={f} needs layer=", zh=f"下载 {f.upper()} 须指定 layer=")
        return _download(tables[layer], f, f"{layer}_alignment", layer)
    return jsonify(
        [
            {"layer": name, "follows": KINDS[name].follows, "rows": rows}
            for name, rows in tables.items()
            if not layer or name == layer
        ]
    )


def _download(rows, fmt: str, name: str, sheet: str) -> Response:
    """Records (or a table) as a CSV or Excel download named ``name``.``fmt``, one sheet
    named ``sheet`` (:func:`layers.export.table_bytes`)."""
    table = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    return Response(
        table_bytes(table, fmt, sheet=sheet),
        mimetype="text/csv" if fmt == "csv" else MEDIA_TYPES["xlsx"],
        headers={"Content-Disposition": f"attachment; filename={name}.{fmt}"},
    )


@bp.get("/alignment/proposal")
@accepts("layer", "unit", "min", "max", "time_limit", formats=("json", "csv", "xlsx"))
@heavy
def alignment_proposal():
    """An aligned layout of a jurisdiction layer (``layer=police_area|police_beat``, or
    another department's grid): every street (community, base grid cell; ``unit=``
    another hierarchy layer) given whole to one station, fewest households moved, every
    station contiguous, optionally ``min``–``max`` households per station. Its ``ETag``
    is the dataset version it was made at: send it as ``If-Match`` to adopt it
    (``POST /alignment/proposal``). ``f=csv|xlsx``: the transfer list."""
    layer = request.args.get("layer")
    if not layer:
        raise InputError(
            f"give layer= ({', '.join(jurisdictions())})",
            zh=f"请指定 layer=（{', '.join(jurisdictions())}）",
        )
    _one_of("layer", layer, jurisdictions())
    unit = units_for(layer, request.args.get("unit") or None)
    lo, hi = request.args.get("min"), request.args.get("max")
    band = None
    if lo is not None or hi is not None:
        band = (int_arg("min", 0, 0, 10_000_000), int_arg("max", 10_000_000, 0, 10_000_000))
        if band[0] > band[1]:
            raise InputError("min must not exceed max", zh="最小户数不能大于最大户数")
    cat = catalog()
    version = cat.version  # before the layers: a save between the two reads makes it stale
    layers = cat.layers
    cap = int(current_app.config["PROPOSAL_SECONDS"])  # the whole job, its solver a little less
    limit = int_arg("time_limit", min(30, max(1, cap - 10)), 1, max(1, cap - 10))
    result = run_isolated(
        _realign,
        dict(layers.items()),
        layers.metric_crs,
        layer=layer,
        unit=unit,
        band=band,
        time_limit=limit,
        timeout=cap,
    )
    f = request.args.get("f")
    if f in ("csv", "xlsx"):
        return _download(result["transfer_list"], f, f"{layer}_transfers", "transfers")
    response = jsonify({**result["proposal"], "basis": list(version)})
    response.headers["ETag"] = version_etag(version, layer, "layout")  # adopting sends it back
    return response


def _realign(layers, metric_crs, *, layer, unit, band, time_limit) -> dict:
    """A layout as JSON-ready data and its transfer list, in a child process."""
    from geo.dataset import Dataset
    from geo.realign import propose_for_layer

    r = propose_for_layer(
        Dataset(layers, metric_crs=metric_crs), layer, unit=unit, band=band, time_limit=time_limit
    )
    return {"proposal": r.to_dict(), "transfer_list": r.transfer_list()}


@bp.get("/themes")
@accepts()
def themes():
    """The population themes: the grid property each classifies, its class bounds and colours."""
    return jsonify(catalog().themes)


@bp.get("/proposal")
@accepts("community", "street", "min", "max")
@heavy
def proposal():
    """A proposed re-partition of a community's (``community=``) or a whole street's
    (``street=``, community by community) grid cells into a household band."""
    band = current_app.config["HOUSEHOLD_BAND"]
    lo = int_arg("min", band[0], 1, 100_000)
    hi = int_arg("max", band[1], 1, 100_000)
    if lo > hi:
        raise InputError("min must not exceed max", zh="最小户数不能大于最大户数")
    community, street = request.args.get("community"), request.args.get("street")
    if bool(community) == bool(street):
        raise InputError(
            "give community=CODE or street=CODE",
            zh="请给出 community=社区编码 或 street=街道编码（二选一）",
        )
    # in a child process (its search holds the interpreter lock), killed at the limit
    layers = catalog().layers
    result = run_isolated(
        _proposal,
        dict(layers.items()),
        layers.metric_crs,
        community=community or None,
        street=street or None,
        band=(lo, hi),
        timeout=current_app.config["PROPOSAL_SECONDS"],
    )
    return jsonify(result)


def _proposal(layers, metric_crs, **kwargs) -> dict:
    """A proposal as a dict, in a child process (the layers travel as plain frames)."""
    from geo.dataset import Dataset
    from geo.proposals import propose_for

    return propose_for(Dataset(layers, metric_crs=metric_crs), **kwargs).to_dict()
