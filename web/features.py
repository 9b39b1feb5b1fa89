"""The features API: OGC API – Features Part 1 (Core, GeoJSON, HTML, OpenAPI 3.0), Part 2
(CRS) and Part 3 (filtering with CQL2); Part 4 (editing) is in :mod:`web.editing`.

    GET /                                    landing page (the map for browsers)
    GET /conformance                         the conformance classes honoured
    GET /collections, /collections/{id}      every layer and the findings layers
    GET /collections/{id}/queryables         what a filter may name (JSON Schema)
    GET /collections/{id}/items              ?bbox=&bbox-crs=&crs=&limit=&offset=
                                             &filter=&filter-lang=&{property}=
    GET /collections/{id}/items/{featureId}  one feature (ETag: "layer:code:revision")
    GET /collections/{id}/items/{featureId}/history, /collections/{id}/history

Every link is absolute (behind a reverse proxy, as the X-Forwarded-* headers say: see
:func:`web.create_app`). Coordinates are CRS84 lon/lat unless ``crs`` asks for another CRS
of the collection's ``crs`` list; the answer's ``Content-Crs`` header names it.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import shapely
from flask import Blueprint, Response, render_template, request, url_for
from pyproj import CRS, Transformer

from geo.crs import CRS84, crs_from_uri, crs_uri
from geo.errors import Conflict, InputError, NotFound
from geo.filters import equal_to, parse_filter, properties_of, select
from geo.kinds import KINDS
from geo.report import FINDINGS_LAYERS
from web import dataset_name
from web.catalog import json_text, rfc7946_geometries
from web.negotiation import MEDIA_TYPES, chosen_format
from web.params import accepts, catalog, int_arg

bp = Blueprint("features", __name__)

GEOJSON, JSON, HTML = MEDIA_TYPES["geojson"], MEDIA_TYPES["json"], MEDIA_TYPES["html"]
DEFAULT_LIMIT, MAX_LIMIT = 1000, 10_000
_OGC = "http://www.opengis.net/spec/"
CONFORMANCE = [
    f"{_OGC}ogcapi-features-1/1.0/conf/core",
    f"{_OGC}ogcapi-features-1/1.0/conf/geojson",
    f"{_OGC}ogcapi-features-1/1.0/conf/html",
    f"{_OGC}ogcapi-features-1/1.0/conf/oas30",
    f"{_OGC}ogcapi-features-2/1.0/conf/crs",
    f"{_OGC}ogcapi-features-3/1.0/conf/queryables",
    f"{_OGC}ogcapi-features-3/1.0/conf/queryables-query-parameters",
    f"{_OGC}ogcapi-features-3/1.0/conf/filter",
    f"{_OGC}ogcapi-features-3/1.0/conf/features-filter",
    f"{_OGC}cql2/1.0/conf/cql2-text",
    f"{_OGC}cql2/1.0/conf/cql2-json",
    f"{_OGC}cql2/1.0/conf/basic-cql2",
    f"{_OGC}cql2/1.0/conf/advanced-comparison-operators",
    f"{_OGC}cql2/1.0/conf/basic-spatial-functions",
    f"{_OGC}cql2/1.0/conf/spatial-functions",
    f"{_OGC}cql2/1.0/conf/property-property",
    f"{_OGC}cql2/1.0/conf/arithmetic",
    f"{_OGC}ogcapi-features-4/1.0/conf/create-replace-delete",
    f"{_OGC}ogcapi-features-4/1.0/conf/update",
    f"{_OGC}ogcapi-features-4/1.0/conf/features",
]


# --------------------------------------------------------------------- answers
def geojson(text: str, status: int = 200, crs: str = CRS84) -> Response:
    response = Response(text, status=status, mimetype=GEOJSON)
    response.headers["Content-Crs"] = f"<{crs}>"
    return response


def no_content() -> Response:
    """204: nothing sent, so no Content-Type either."""
    empty = Response(status=204)
    del empty.headers["Content-Type"]
    return empty


def json_answer(text: str, status: int = 200, mimetype: str = JSON) -> Response:
    """JSON text already written, as the answer."""
    return Response(text, status=status, mimetype=mimetype)


def _json(obj, status: int = 200, mimetype: str = JSON) -> Response:
    """``obj`` as strict, compact JSON (:func:`web.catalog.json_text`)."""
    return json_answer(json_text(obj), status, mimetype)


def answer(doc: dict, title: str, mimetype: str = JSON, table=None) -> Response:
    """``doc`` as JSON, or as an HTML page (``f=html`` or a browser's Accept) listing its
    links and, when given, a ``table`` (columns, rows of (href, cells))."""
    if chosen_format() == "html":
        html = render_template("ogc.html", title=title, doc=doc, table=table)
        return Response(html, mimetype=HTML)
    return _json(doc, mimetype=mimetype)


def link(rel: str, mimetype: str, endpoint: str, title: str | None = None, **values) -> dict:
    """An absolute link (``url_for`` with ``_external``: scheme, host and prefix as the
    client, or the proxy in front, sees them)."""
    out = {"rel": rel, "type": mimetype, "href": url_for(endpoint, _external=True, **values)}
    if title:
        out["title"] = title
    return out


def self_links(endpoint: str, mimetype: str = JSON, **values) -> list[dict]:
    """``self`` in the format answered and ``alternate`` in the other (JSON/HTML)."""
    html = chosen_format() == "html"
    here = HTML if html else mimetype
    there = mimetype if html else HTML
    return [
        link("self", here, endpoint, **values, f="html" if html else None),
        link("alternate", there, endpoint, **values, f=None if html else "html"),
    ]


def collection_of(layer: str):
    """The served collection ``layer``; NotFound naming the ones there are."""
    col = catalog().collection(layer)
    if col is None:
        names = ", ".join(catalog().collection_names())
        raise NotFound(
            f"no collection '{layer}'; available: {names}", zh=f"没有图层“{layer}”；可用：{names}"
        )
    return col


# --------------------------------------------------------------------- CRS
def offered_crs() -> list[str]:
    """The CRSs the collections can be answered in: CRS84 (the default), WGS 84 and
    CGCS2000 (latitude first, as EPSG defines them), the dataset's metric CRS and the CRS
    it is stored in."""
    cat = catalog()
    out = [CRS84, crs_uri("EPSG:4326"), crs_uri("EPSG:4490")]
    for crs in (cat.layers.metric_crs, cat.store_crs):
        if crs is not None and crs.to_epsg() and crs_uri(crs) not in out:
            out.append(crs_uri(crs))
    return out


def crs_arg(name: str) -> tuple[str, CRS | None]:
    """The URI and CRS a parameter names (CRS84: None, the served coordinates as they
    are); 400 for a CRS not offered."""
    raw = request.args.get(name)
    if raw is None:
        return CRS84, None
    try:
        uri = crs_uri(crs_from_uri(raw))
    except ValueError as err:
        uri, reason = None, str(err)
    if uri is None or uri not in offered_crs():
        offered = ", ".join(offered_crs())
        why = reason if uri is None else f"'{raw}' is not offered"
        raise InputError(
            f"{name}: {why}; offered: {offered}",
            zh=f"{name}：不支持“{raw}”；可用：{offered}",
            parameter=name,
        )
    return uri, (None if uri == CRS84 else CRS.from_user_input(uri))


def bbox_in_crs84() -> tuple[float, float, float, float] | None:
    """``bbox`` (in ``bbox-crs``, its own axis order) as lon/lat bounds, or None."""
    raw = request.args.get("bbox")
    if raw is None:
        if "bbox-crs" in request.args:
            raise InputError("bbox-crs needs a bbox", zh="给出 bbox-crs 时须同时给出 bbox")
        return None
    _, crs = crs_arg("bbox-crs")
    try:
        parts = [float(v) for v in raw.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4 or not all(np.isfinite(parts)):
        raise InputError(
            f"bbox must be four numbers minx,miny,maxx,maxy; got '{raw}'",
            zh=f"bbox 须为四个数：最小x,最小y,最大x,最大y；收到“{raw}”",
            parameter="bbox",
        )
    x0, y0, x1, y1 = parts
    if crs is not None:  # to CRS84; the bounds of the box's outline, not just its corners
        t = Transformer.from_crs(crs, "OGC:CRS84", always_xy=False)
        x0, y0, x1, y1 = t.transform_bounds(x0, y0, x1, y1, densify_pts=21)
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise InputError(
            "bbox must be minlon,minlat,maxlon,maxlat with min ≤ max, longitude within "
            f"±180 and latitude within ±90 (in CRS84; other axis orders with bbox-crs); "
            f"got '{raw}'",
            zh=f"bbox 须为度数，最小值 ≤ 最大值，经度在 ±180、纬度在 ±90 之内；收到“{raw}”",
            parameter="bbox",
        )
    return x0, y0, x1, y1


def geometries_in(col, positions, crs: CRS | None) -> list[str] | None:
    """GeoJSON geometries of ``positions`` in ``crs`` (its own axis order, exteriors
    counter-clockwise in that order; 1 mm or 1e-7° grid), or None for CRS84 (prepared)."""
    if crs is None:
        return None
    t = Transformer.from_crs("OGC:CRS84", crs, always_xy=False)
    geoms = col.table.geometry.values[positions]
    moved = shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
    grid = 1e-7 if crs.is_geographic else 1e-3
    return list(shapely.to_geojson(rfc7946_geometries(moved, grid)))


# --------------------------------------------------------------------- resources
def landing():
    """The OGC API landing page: JSON for clients (``Accept: application/json``, ``f=json``);
    the map page is the HTML answer (see :func:`web.pages.index`)."""
    doc = {
        "title": "gridmap",
        "description": f"网格化管理 urban grid management: {dataset_name(catalog().location)}",
        "links": [
            link("self", JSON, "pages.index", f="json"),
            link("alternate", HTML, "pages.index", title="map 地图"),
            link("service-desc", MEDIA_TYPES["openapi"], "openapi.api", title="OpenAPI 3.0"),
            link("service-doc", HTML, "openapi.api", title="API documentation", f="html"),
            link("conformance", JSON, "features.conformance"),
            link("data", JSON, "features.collections"),
            link(
                "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                JSON,
                "tiles.tile_matrix_sets",
            ),
        ],
    }
    return _json(doc)


@bp.get("/conformance")
@accepts(formats=("json", "html"))
def conformance():
    """The conformance classes this service honours."""
    from web.tiles import CONFORMANCE as TILES

    classes = CONFORMANCE + TILES
    doc = {"conformsTo": classes, "links": self_links("features.conformance")}
    return answer(doc, "conformance", table=(["class"], [(None, [c]) for c in classes]))


def describe(layer: str) -> dict:
    """A collection's description: extent, CRSs, links to its items and queryables."""
    cat = catalog()
    if layer in FINDINGS_LAYERS:
        zh, en = FINDINGS_LAYERS[layer]
        bounds = cat.extent() if cat.collections else None
        count = None
    else:
        k = KINDS[layer]
        zh, en = k.zh, k.en_plural
        col = cat.collections[layer]
        bounds, count = col.bounds, len(col)
    store = cat.store_crs
    doc = {
        "id": layer,
        "title": f"{zh} {layer}",
        "description": en,
        "itemType": "feature",
        "crs": offered_crs(),
        "storageCrs": crs_uri(store) if store is not None and store.to_epsg() else CRS84,
        "links": [
            link("self", JSON, "features.collection", layer=layer),
            link("alternate", HTML, "features.collection", layer=layer, f="html"),
            link("items", GEOJSON, "features.items", layer=layer),
            link("items", HTML, "features.items", layer=layer, f="html"),
            link(
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                MEDIA_TYPES["jsonschema"],
                "features.queryables",
                layer=layer,
            ),
            # the same, by the short name clients written before Part 3 look for
            link("queryables", MEDIA_TYPES["jsonschema"], "features.queryables", layer=layer),
            link(
                "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                JSON,
                "tiles.tilesets",
                layer=layer,
            ),
        ],
    }
    if bounds is not None:
        doc["extent"] = {"spatial": {"bbox": [list(bounds)], "crs": CRS84}}
    if count is not None:
        doc["numberOfFeatures"] = count
    return doc


@bp.get("/collections")
@accepts(formats=("json", "html"))
def collections():
    """Every layer and the two findings layers, with extents and CRSs."""
    docs = [describe(n) for n in catalog().collection_names()]
    doc = {"collections": docs, "links": self_links("features.collections")}
    rows = [
        (url_for("features.collection", layer=d["id"], f="html"), [d["id"], d["title"]])
        for d in docs
    ]
    return answer(doc, "collections", table=(["id", "title"], rows))


@bp.get("/collections/<layer>")
@accepts(formats=("json", "html"))
def collection(layer):
    """One collection: its extent, CRSs and links to its items and queryables."""
    collection_of(layer)
    doc = describe(layer)
    return answer(doc, doc["title"])


@bp.get("/collections/<layer>/queryables")
@accepts(formats=("jsonschema", "json", "html"))
def queryables(layer):
    """The properties a filter may name, as JSON Schema (Part 3)."""
    col = collection_of(layer)
    props = {}
    for name, kind in catalog().queryables(layer).items():
        if kind == "geometry":
            props[name] = {"format": "geometry-any", "title": "geometry"}
        else:
            props[name] = {"type": kind, "title": name}
            if name in col.derived:
                props[name]["readOnly"] = True
    doc = {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": url_for("features.queryables", layer=layer, _external=True),
        "type": "object",
        "title": layer,
        "properties": props,
        "additionalProperties": False,
    }
    rows = [(None, [n, p.get("type", p.get("format"))]) for n, p in props.items()]
    fmt = MEDIA_TYPES["jsonschema"] if chosen_format() == "jsonschema" else JSON
    return answer(doc, f"{layer}: queryables", mimetype=fmt, table=(["property", "type"], rows))


def _selected(col) -> np.ndarray:
    """Positions of the features the request selects: bbox, then property equality filters,
    then the CQL2 ``filter`` (each in stored order). Filters see only the columns they
    name, of the features still in play."""
    positions = col.query(bbox_in_crs84())
    types = col.queryables
    for name in request.args:
        if name in types:
            column = pd.Series(col.table[name].to_numpy()[positions], name=name)
            positions = positions[equal_to(column, types[name], request.args[name])]
    text = request.args.get("filter")
    if text is not None:
        tree = parse_filter(text, request.args.get("filter-lang", "cql2-text"))
        named = properties_of(tree) & set(types)
        geometry = col.table.geometry.name
        columns = {
            c: col.table.geometry.iloc[positions]
            if c == geometry
            else pd.Series(col.table[c].to_numpy()[positions], name=c)
            for c in named
        }
        positions = positions[select(columns, tree, types, n=len(positions))]
    elif "filter-lang" in request.args:
        raise InputError("filter-lang needs a filter", zh="给出 filter-lang 时须同时给出 filter")
    return positions


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@bp.get("/collections/<layer>/items")
@accepts(
    "bbox",
    "bbox-crs",
    "crs",
    "limit",
    "offset",
    "filter",
    "filter-lang",
    formats=("geojson", "json", "html"),
    properties=True,
)
def items(layer):
    """A page of a collection's features, by bbox, property equality or CQL2 filter, in any offered CRS."""
    col = collection_of(layer)
    # clamped, as Part 1 says; 0 counts (numberMatched) without sending features
    limit = min(int_arg("limit", DEFAULT_LIMIT, 0, 2**31), MAX_LIMIT)
    offset = int_arg("offset", 0, 0, 2**31)
    crs_name, crs = crs_arg("crs")
    matched = _selected(col)
    page = matched[offset : offset + limit]
    fmt = chosen_format()
    kept = {k: v for k, v in request.args.items() if k not in ("offset", "limit", "f")}

    def page_link(rel, at, f=None, mimetype=GEOJSON):
        # the query by hand: a property filter may be named like a URL variable ("layer")
        query = {**kept, "limit": limit, "offset": at, **({"f": f} if f else {})}
        href = url_for("features.items", layer=layer, _external=True) + "?" + urlencode(query)
        return {"rel": rel, "type": mimetype, "href": href}

    html = fmt == "html"
    links = [
        page_link("self", offset, "html" if html else None, HTML if html else GEOJSON),
        page_link("alternate", offset, None if html else "html", GEOJSON if html else HTML),
        link("collection", JSON, "features.collection", layer=layer),
    ]
    here = ("html", HTML) if html else (None, GEOJSON)
    if limit and offset + limit < len(matched):
        links.append(page_link("next", offset + limit, *here))
    if limit and offset > 0:
        links.append(page_link("prev", max(offset - limit, 0), *here))
    if html:
        columns = [c for c in col.table.columns if c != col.table.geometry.name][:8]
        rows = [
            (
                url_for("features.item", layer=layer, fid=str(col.ids[i]), f="html"),
                [col.ids[i], *(col.table[c].iloc[i] for c in columns)],
            )
            for i in page
        ]
        doc = {"numberMatched": len(matched), "numberReturned": len(page), "links": links}
        return answer(doc, f"{layer}: features", table=(["id", *columns], rows))
    geoms = geometries_in(col, page, crs)
    col.prepare(page)
    feats = (
        col.feature(i) if geoms is None else col.feature(i, geoms[k]) for k, i in enumerate(page)
    )
    head = (
        f'{{"type":"FeatureCollection","numberMatched":{len(matched)},'
        f'"numberReturned":{len(page)},"timeStamp":"{_now()}",'
        f'"links":{json.dumps(links, ensure_ascii=False)},"features":['
    )
    return geojson(head + ",".join(feats) + "]}", crs=crs_name)


def feature_position(layer: str, col, fid: str) -> int:
    """The position of feature ``fid``; NotFound, or Conflict when ``fid`` is a code that
    several features share (naming their ids)."""
    found = col.by_id(fid)
    if len(found) == 1:
        return int(found[0])
    shared = col.by_code(fid)
    if len(shared) > 1:
        ids = ", ".join(str(col.ids[i]) for i in shared)
        raise Conflict(
            f"{len(shared)} features in '{layer}' share code '{fid}' (a duplicate_code "
            f"finding); their ids are {ids}",
            zh=f"图层“{layer}”中有 {len(shared)} 个要素共用编码 {fid}（编码重复）；其 id 为 {ids}",
        )
    raise NotFound(f"no feature '{fid}' in '{layer}'", zh=f"图层“{layer}”中没有编号为 {fid} 的要素")


@bp.get("/collections/<layer>/items/<fid>")
@accepts("crs", formats=("geojson", "json", "html"))
def item(layer, fid):
    """One feature (ETag: its revision, for editing)."""
    catalog().keep_up()  # what a planner reads before editing includes every commit so far
    col = collection_of(layer)
    i = feature_position(layer, col, fid)
    crs_name, crs = crs_arg("crs")
    links = [
        *self_links("features.item", GEOJSON, layer=layer, fid=fid),
        link("collection", JSON, "features.collection", layer=layer),
    ]
    if chosen_format() == "html":
        cells = col.table.drop(columns=col.table.geometry.name).iloc[i]
        rows = [(None, [k, v]) for k, v in cells.items()]
        return answer({"links": links}, f"{layer} {fid}", table=(["property", "value"], rows))
    geoms = geometries_in(col, [i], crs)
    text = col.feature(i, None if geoms is None else geoms[0])
    response = geojson(
        text[:-1] + f',"links":{json.dumps(links, ensure_ascii=False)}}}', crs=crs_name
    )
    if col.etag(i):  # from the same copy as the body: never a newer ETag on an older cell
        response.headers["ETag"] = col.etag(i)
    return response


@bp.get("/collections/<layer>/items/<fid>/history")
@accepts()
def history(layer, fid):
    """A feature's revisions: who changed it, when, why, before and after."""
    collection_of(layer)
    return _json({"layer": layer, "code": fid, "revisions": catalog().store.revisions(layer, fid)})


@bp.get("/collections/<layer>/history")
@accepts()
def layer_history(layer):
    """Every revision of a layer."""
    collection_of(layer)
    return _json({"layer": layer, "revisions": catalog().store.revisions(layer)})
