"""Reading a request's query parameters: each one checked, with a message naming it.

:data:`PARAMETERS` is the one table of the query parameters the service knows (their
JSON Schema and meaning, which the OpenAPI document publishes); each view declares the
ones it takes with :func:`accepts`, and :func:`refuse_unknown` answers any other with 400
before the view runs, so that a client asking for something the service does not do
(``crs=`` on a resource without it, a misspelt ``fitler=``) is told instead of silently
getting something else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from flask import current_app, request

from geo.errors import InputError

__all__ = [
    "PARAMETERS",
    "Param",
    "accepts",
    "refuse_unknown",
    "catalog",
    "int_arg",
    "float_arg",
    "json_body",
    "version_etag",
    "if_match_version",
]


@dataclass(frozen=True)
class Param:
    """A query parameter: what it means (English, for the OpenAPI document) and its JSON
    Schema; ``explode=False`` for comma-separated lists such as ``bbox``."""

    en: str
    schema: dict = field(default_factory=lambda: {"type": "string"})
    explode: bool = True


_NUMBER, _INT = {"type": "number"}, {"type": "integer"}
# fmt: off
PARAMETERS: dict[str, Param] = {
    "f":           Param("answer format (instead of the Accept header)"),
    "lang":        Param("page language", {"type": "string", "enum": ["zh", "en"]}),
    "next":        Param("where to go after signing in (a path on this site)"),
    "bbox":        Param("minx,miny,maxx,maxy: only features intersecting this box, in "
                         "bbox-crs (default CRS84: lon/lat degrees)",
                         {"type": "array", "minItems": 4, "maxItems": 4, "items": _NUMBER},
                         explode=False),
    "bbox-crs":    Param("CRS of bbox (a URI from the collection's crs list)"),
    "crs":         Param("CRS of the answer's coordinates (a URI from the collection's crs "
                         "list); the Content-Crs header names it"),
    "limit":       Param("features per page; values above the maximum are clamped; 0 "
                         "counts the matches (numberMatched) without sending them",
                         {"type": "integer", "minimum": 0, "default": 1000}),
    "offset":      Param("features to skip (the next link sets it)",
                         {"type": "integer", "minimum": 0, "default": 0}),
    "filter":      Param("a CQL2 filter on the collection's queryables, e.g. "
                         "households > 500 AND parent_code = '540102001001'"),
    "filter-lang": Param("language of filter",
                         {"type": "string", "enum": ["cql2-text", "cql2-json", "cql-text"],
                          "default": "cql2-text"}),
    "rule":        Param("only findings of this rule"),
    "layer":       Param("a layer name (grid, community, …)"),
    "unit":        Param("the hierarchy layer whose whole units a layout is made of (street, community, grid)"),
    "lon":         Param("longitude, degrees (WGS 84)",
                         {"type": "number", "minimum": -180, "maximum": 180}),
    "lat":         Param("latitude, degrees (WGS 84)",
                         {"type": "number", "minimum": -90, "maximum": 90}),
    "q":           Param("text to search in names and codes", {"type": "string", "maxLength": 100}),
    "min":         Param("fewest households a proposed cell (a station, in a layout) should hold", _INT),
    "max":         Param("most households a proposed cell (a station, in a layout) should hold", _INT),
    "community":   Param("a community code"),
    "street":      Param("a street code"),
    "kind":        Param("a facility kind (police_post, health_centre, …)"),
    "code":        Param("a feature code"),
    "k":           Param("how many nearest facilities", {"type": "integer", "minimum": 1,
                                                         "maximum": 50}),
    "path":        Param("include the walking route", {"type": "string",
                                                       "enum": ["0", "1", "true", "false"]}),
    "model":       Param("siting model", {"type": "string", "enum": ["mclp", "lscp"]}),
    "p":           Param("how many new sites", {"type": "integer", "minimum": 1, "maximum": 200}),
    "time_limit":  Param("solver time limit, seconds", {"type": "integer", "minimum": 1,
                                                        "maximum": 600}),
    "candidates":  Param("where new sites may go",
                         {"type": "string", "enum": ["intersections", "lattice"]}),
    "format":      Param("file format", {"type": "string", "enum": ["gpkg", "geojson", "shp"]}),
    "encoding":    Param("shapefile text encoding", {"type": "string", "enum": ["utf-8", "gbk"]}),
    "from":        Param("change number to compare from (0: as first loaded)", _INT),
    "to":          Param("change number to compare to", _INT),
}
# Parameters of the standard this service knows and does not offer, and why.
REFUSED = {
    "datetime": ("the layers have no time: this service does not filter by datetime",
                 "图层没有时间属性：本服务不按 datetime 筛选"),
    "filter-crs": ("filters are evaluated in CRS84 (lon/lat) only; leave out filter-crs",
                   "filter 只按 CRS84（经纬度）计算；请去掉 filter-crs"),
    "sortby": ("features are returned in stored order; sortby is not offered",
               "要素按存储顺序返回，不支持 sortby"),
}
# fmt: on


def accepts(
    *names: str,
    formats: tuple[str, ...] = ("json",),
    properties: bool = False,
    f: bool | None = None,
):
    """Declare the query parameters (keys of :data:`PARAMETERS`) a view takes and the
    formats it answers in (keys of :data:`web.negotiation.MEDIA_TYPES`; first: the
    default), chosen by ``f=`` when it offers several (unless ``f=False``: another
    parameter chooses); ``properties``: also the collection's queryable properties, as
    equality filters. Every view declares this; it is what :func:`refuse_unknown` checks
    and what the OpenAPI document lists."""
    unknown = set(names) - set(PARAMETERS)
    if unknown:
        raise ValueError(f"parameters not in PARAMETERS: {sorted(unknown)}")

    def mark(view):
        negotiated = len(formats) > 1 if f is None else f
        view.accepts = ("f", *names) if negotiated else names
        view.formats = formats
        view.takes_properties = properties
        return view

    return mark


def refuse_unknown():
    """Before a view runs: 400 for any query parameter it does not take, or an ``f`` it
    cannot answer in, naming what it does take."""
    view = current_app.view_functions.get(request.endpoint)
    if view is None or not hasattr(view, "accepts"):
        return
    taken = set(view.accepts)
    if view.takes_properties:
        taken |= set(catalog().queryables(request.view_args.get("layer", "")))
    for name in request.args:
        if name in taken:
            continue
        if name in REFUSED:
            en, zh = REFUSED[name]
            raise InputError(en, zh=zh, parameter=name)
        offered = ", ".join(sorted(taken)) or "none"
        raise InputError(
            f"unknown parameter '{name}'; this resource takes: {offered}",
            zh=f"未知参数“{name}”；此资源可用的参数：{offered}",
            parameter=name,
        )
    f = request.args.get("f")
    if f is not None and f not in view.formats:
        raise InputError(
            f"f must be one of {', '.join(view.formats)}; got '{f}'",
            zh=f"f 须为 {', '.join(view.formats)} 之一，收到“{f}”",
            parameter="f",
        )


def catalog():
    """The :class:`web.catalog.Catalog` this app serves."""
    return current_app.extensions["gridmap"]


def _number(name: str, raw: str, parse, lo, hi, *, en: str, zh: str):
    """``raw`` parsed by ``parse`` and within [lo, hi]; InputError naming ``name``."""
    try:
        value = parse(raw)
    except ValueError:
        raise InputError(
            f"{name} must be {en}, got '{raw}'", zh=f"{name} 须为{zh}，收到“{raw}”"
        ) from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise InputError(
            f"{name} must be between {lo} and {hi}, got {raw}",
            zh=f"{name} 须在 {lo} 到 {hi} 之间，收到 {raw}",
        )
    return value


def int_arg(name: str, default: int, lo: int, hi: int) -> int:
    """The whole number ``name`` of the query (``default`` when absent), within [lo, hi]."""
    raw = request.args.get(name)
    if raw is None:
        return default
    return _number(name, raw, int, lo, hi, en="a whole number", zh="整数")


def float_arg(name: str, lo: float, hi: float) -> float:
    """The number ``name`` of the query (required), finite and within [lo, hi]."""
    raw = request.args.get(name)
    if raw is None:
        raise InputError(f"{name} is required", zh=f"缺少参数 {name}")
    return _number(name, raw, float, lo, hi, en="a number", zh="数字")


def json_body(what: str = "a JSON object") -> dict:
    """The request's JSON object body (an empty dict when there is none); 413 when it is
    over ``MAX_JSON_BODY`` bytes, before it is parsed."""
    limit = current_app.config.get("MAX_JSON_BODY")
    if limit:
        if (request.content_length or 0) > limit:
            from web.errors import too_large

            raise too_large(limit)
        request.max_content_length = min(limit, request.max_content_length or limit)
    body = request.get_json(silent=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InputError(f"send {what}", zh="请求体须为 JSON 对象")
    return body


def version_etag(version, *scope: str) -> str:
    """The ETag of an answer made at dataset ``version`` (a layout proposal, an upload's
    reading), naming what it is of: ``version_etag(v, "police_area", "layout")`` →
    ``'"police_area:layout:3.17"'``. Sent back in If-Match, it says what the client saw
    (:func:`if_match_version`)."""
    return '"' + ":".join([*scope, f"{version.layers}.{version.revision}"]) + '"'


def if_match_version(*scope: str):
    """The dataset version the request's If-Match names, when it is an ETag of
    :func:`version_etag` with this ``scope``; None when it is absent or another's."""
    from layers.storage.edits import Version

    tag = request.headers.get("If-Match", "").strip('"').split(":")
    if tag[:-1] != list(scope):
        return None
    try:
        return Version(*(int(v) for v in tag[-1].split(".", 1)))
    except (TypeError, ValueError):
        return None
