"""The service description: an OpenAPI 3.0 document of every endpoint, built from the
app's own routes, so that it cannot drift from what the service does.

    GET /api            the document (``application/vnd.oai.openapi+json;version=3.0``)
    GET /api?f=html     the same, as a page to read

Each path comes from a URL rule; its summary from the view's docstring; its query
parameters from the view's :func:`web.params.accepts` declaration and the
:data:`web.params.PARAMETERS` table (``limit`` with its maximum, which GDAL takes as its
page size); its answer formats from the same declaration.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, render_template, url_for

from web.negotiation import MEDIA_TYPES, chosen_format
from web.params import PARAMETERS, accepts, catalog

bp = Blueprint("openapi", __name__)

# Routes that serve the browser, not the API: files and the browser's favicon request.
_NOT_API = ("static", "pages.favicon")
# URL variables by the names OGC API – Features and Tiles give them in their OpenAPI documents
_PATH_NAMES = {
    "layer": "collectionId",
    "fid": "featureId",
    "tms": "tileMatrixSetId",
    "z": "tileMatrix",
    "row": "tileRow",
    "col": "tileCol",
    "uid": "uploadId",
}
_ERROR = {
    "description": "a problem with the request (4xx) or the service (5xx), said in English "
    "and Chinese",
    "content": {
        MEDIA_TYPES["json"]: {
            "schema": {
                "type": "object",
                "required": ["code", "description"],
                "properties": {
                    "code": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                    "description": {"type": "string"},
                    "message": {"type": "object"},
                },
            }
        }
    },
}
_FEATURE_COLLECTION = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": {"type": "object"}},
        "numberMatched": {"type": "integer", "minimum": 0},
        "numberReturned": {"type": "integer", "minimum": 0},
        "links": {"type": "array", "items": {"type": "object"}},
    },
}
_FEATURE = {
    "type": "object",
    "required": ["type", "geometry", "properties"],
    "properties": {"type": {"type": "string", "enum": ["Feature"]}},
}
_BODY = {
    "post": (MEDIA_TYPES["json"], MEDIA_TYPES["geojson"]),
    "put": (MEDIA_TYPES["json"], MEDIA_TYPES["geojson"]),
    "patch": ("application/merge-patch+json", MEDIA_TYPES["json"]),
}


def _content(fmt: str, endpoint: str) -> dict:
    """The OpenAPI media-type object of an answer format: a schema for JSON ones (pages,
    files and CSV have none)."""
    if fmt == "geojson":
        return {"schema": _FEATURE if endpoint.endswith(".item") else _FEATURE_COLLECTION}
    if fmt in ("openapi", "jsonschema"):
        return {"schema": {"type": "object"}}
    if fmt == "json":  # an object or, for lists such as /nearest, an array
        return {"schema": {}}
    return {}


def _path_params(rule) -> list[dict]:
    out = []
    for conv, name in re.findall(r"<(?:(\w+):)?(\w+)>", rule.rule):
        schema = {"type": "integer"} if conv == "int" else {"type": "string"}
        if name == "layer":
            schema["enum"] = catalog().collection_names()
        out.append(
            {"name": _PATH_NAMES.get(name, name), "in": "path", "required": True, "schema": schema}
        )
    return out


def _query_params(view, max_limit: int) -> list[dict]:
    out = []
    for name in getattr(view, "accepts", ()):
        p = PARAMETERS[name]
        schema = dict(p.schema)
        if name == "f":
            schema = {"type": "string", "enum": list(view.formats)}
        if name == "limit":
            schema["maximum"] = max_limit
        param = {"name": name, "in": "query", "required": False, "description": p.en}
        param["schema"] = schema
        if not p.explode:
            param.update(style="form", explode=False)
        out.append(param)
    return out


_JSON_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


def _collection_paths(items_get: dict) -> dict:
    """``/collections/{id}/items`` written out per collection, with each queryable property
    as an equality filter parameter: how GDAL and QGIS learn which properties the server
    filters on (and send ``-where`` to the server instead of filtering after download)."""
    out = {}
    cat = catalog()
    for name in cat.collection_names():
        params = [p for p in items_get["parameters"] if p["in"] != "path"]
        for prop, kind in cat.queryables(name).items():
            if kind in _JSON_TYPES:
                params.append(
                    {
                        "name": prop,
                        "in": "query",
                        "required": False,
                        "description": f"only features whose {prop} equals this value",
                        "schema": {"type": kind},
                    }
                )
        op = {**items_get, "operationId": f"features.items.{name}", "parameters": params}
        out[f"/collections/{name}/items"] = {"get": op}
    return out


def document() -> dict:
    """The OpenAPI 3.0 document of this app, with absolute server URL."""
    from web.features import MAX_LIMIT

    paths: dict[str, dict] = {}
    for rule in sorted(current_app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in _NOT_API:
            continue
        view = current_app.view_functions[rule.endpoint]
        path = re.sub(
            r"<(?:\w+:)?(\w+)>", lambda m: "{" + _PATH_NAMES.get(m[1], m[1]) + "}", rule.rule
        )
        formats = getattr(view, "formats", ("json",))
        doc = " ".join((view.__doc__ or rule.endpoint).strip().split("\n\n")[0].split())
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            m = method.lower()
            op = {
                "operationId": f"{rule.endpoint}.{m}",
                "summary": doc,
                "tags": [rule.endpoint.split(".")[0]],
                "parameters": _path_params(rule)
                + (_query_params(view, MAX_LIMIT) if m == "get" else []),
                "responses": {
                    "200": {
                        "description": "the answer",
                        "content": {MEDIA_TYPES[f]: _content(f, rule.endpoint) for f in formats},
                    },
                    "default": _ERROR,
                },
            }
            if m in _BODY:  # a view may name its own body types (an upload: a form)
                types = getattr(view, "body_types", None) or _BODY[m]
                op["requestBody"] = {"content": {t: {"schema": {"type": "object"}} for t in types}}
            if getattr(view, "planner_only", False):
                op["security"] = [{"session": []}]
            if getattr(view, "heavy", False):  # web.heavy: bounded, may be refused
                op["responses"]["503"] = {
                    "description": "busy (see Retry-After) or over its time limit",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            paths.setdefault(path, {})[m] = op
    paths.update(_collection_paths(paths["/collections/{collectionId}/items"]["get"]))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "gridmap",
            "version": "1",
            "description": "网格化管理 urban grid management: layers as OGC API – Features "
            "(Parts 1–4), checks, lookups, service sites, editing with revisions.",
        },
        "servers": [{"url": url_for("pages.index", _external=True).rstrip("/")}],
        "components": {
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "session"}}
        },
        "paths": paths,
    }


@bp.get("/api")
@accepts(formats=("openapi", "json", "html"))
def api():
    """This document: every endpoint of the service."""
    doc = document()
    fmt = chosen_format()
    if fmt == "html":
        return Response(render_template("openapi.html", doc=doc), mimetype=MEDIA_TYPES["html"])
    from web.features import _json

    return _json(doc, mimetype=MEDIA_TYPES[fmt])
