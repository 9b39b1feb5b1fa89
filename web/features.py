"""The features API, OGC API – Features style; coordinates are WGS 84 lon/lat.

    GET /?f=json, /conformance                 landing page and conformance
    GET /collections, /collections/{layer}     the layers, with extents
    GET /collections/{layer}/items?bbox=minlon,minlat,maxlon,maxlat&limit=&offset=
    GET /collections/{layer}/items/{code}      one feature (ETag: "layer:code:revision")
    GET /collections/{layer}/items/{code}/history, /collections/{layer}/history

Editing a feature (PUT, preview, revert) is in :mod:`web.editing`.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request, url_for

from geo.errors import Conflict, NotFound
from geo.kinds import KINDS
from web.params import bbox_arg, catalog, int_arg

bp = Blueprint("features", __name__)

GEOJSON = "application/geo+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
DEFAULT_LIMIT, MAX_LIMIT = 1000, 10_000
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]


def geojson(text: str, status: int = 200) -> Response:
    return Response(text, status=status, mimetype=GEOJSON)


def collection_of(layer: str):
    """The served collection ``layer``; NotFound naming the ones there are."""
    col = catalog().collections.get(layer)
    if col is None:
        names = ", ".join(catalog().collections)
        raise NotFound(
            f"no collection '{layer}'; available: {names}", zh=f"没有图层“{layer}”；可用：{names}"
        )
    return col


def etag(layer: str, code: str) -> str:
    revs = catalog().store.revisions(layer, code)
    return f'"{layer}:{code}:{revs[-1]["id"] if revs else 0}"'


def _describe(layer: str, col) -> dict:
    k = KINDS[layer]
    return {
        "id": layer,
        "title": f"{k.zh} {layer}",
        "itemType": "feature",
        "numberOfFeatures": len(col),
        "extent": {"spatial": {"bbox": [list(col.bounds)], "crs": CRS84}},
        "links": [
            {"rel": "items", "type": GEOJSON, "href": url_for("features.items", layer=layer)},
            {
                "rel": "self",
                "type": "application/json",
                "href": url_for("features.collection", layer=layer),
            },
        ],
    }


@bp.get("/conformance")
def conformance():
    return jsonify({"conformsTo": CONFORMANCE})


def landing():
    """The OGC API landing page (``/?f=json``); the map page is the HTML answer."""
    return jsonify(
        {
            "title": "gridmap",
            "description": f"dataset {catalog().location}",
            "links": [
                {
                    "rel": "data",
                    "type": "application/json",
                    "href": url_for("features.collections"),
                },
                {
                    "rel": "conformance",
                    "type": "application/json",
                    "href": url_for("features.conformance"),
                },
                {"rel": "alternate", "type": "text/html", "href": url_for("pages.index")},
            ],
        }
    )


@bp.get("/collections")
def collections():
    cols = catalog().collections
    return jsonify(
        {
            "collections": [_describe(n, c) for n, c in cols.items()],
            "links": [
                {"rel": "self", "type": "application/json", "href": url_for("features.collections")}
            ],
        }
    )


@bp.get("/collections/<layer>")
def collection(layer):
    return jsonify(_describe(layer, collection_of(layer)))


@bp.get("/collections/<layer>/items")
def items(layer):
    col = collection_of(layer)
    bbox = bbox_arg()
    limit = int_arg("limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
    offset = int_arg("offset", 0, 0, 10**9)
    matched = col.query(bbox)
    page = matched[offset : offset + limit]
    args = {k: v for k, v in request.args.items() if k not in ("offset", "limit")}

    def link(rel, at):
        return {
            "rel": rel,
            "type": GEOJSON,
            "href": url_for("features.items", layer=layer, limit=limit, offset=at, **args),
        }

    links = [link("self", offset)]
    if offset + limit < len(matched):
        links.append(link("next", offset + limit))
    if offset > 0:
        links.append(link("prev", max(offset - limit, 0)))
    head = (
        f'{{"type":"FeatureCollection","numberMatched":{len(matched)},'
        f'"numberReturned":{len(page)},"links":{json.dumps(links)},"features":['
    )
    return geojson(head + ",".join(col.features[i] for i in page) + "]}")


@bp.get("/collections/<layer>/items/<code>")
def item(layer, code):
    col = collection_of(layer)
    found = col.by_code(code)
    if len(found) == 0:
        raise NotFound(
            f"no feature with code '{code}' in '{layer}'",
            zh=f"图层“{layer}”中没有编码为 {code} 的要素",
        )
    if len(found) > 1:
        raise Conflict(
            f"{len(found)} features in '{layer}' share code '{code}' "
            "(a duplicate_code finding); fix the codes first",
            zh=f"图层“{layer}”中有 {len(found)} 个要素共用编码 {code}（编码重复）；请先修正编码",
        )
    response = geojson(col.features[found[0]])
    response.headers["ETag"] = etag(layer, code)
    return response


@bp.get("/collections/<layer>/items/<code>/history")
def history(layer, code):
    collection_of(layer)
    return jsonify(
        {"layer": layer, "code": code, "revisions": catalog().store.revisions(layer, code)}
    )


@bp.get("/collections/<layer>/history")
def layer_history(layer):
    collection_of(layer)
    return jsonify({"layer": layer, "revisions": catalog().store.revisions(layer)})
