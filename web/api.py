"""The JSON/GeoJSON API, OGC API Features style. Coordinates are WGS 84 lon/lat.

    GET /collections
    GET /collections/{layer}
    GET /collections/{layer}/items?bbox=minlon,minlat,maxlon,maxlat&limit=&offset=
    GET /collections/{layer}/items/{code}
    GET /findings?rule=&layer=          the check report as GeoJSON
    GET /lookup?lon=&lat=               areas containing a point, nearest facility per kind
    GET /search?q=                      features by name or code
    GET /themes                         population themes: classes and colours
    GET /conformance, GET /?f=json      OGC API landing and conformance
    GET /nearest?lon=&lat=&kind=&k=     nearest facilities (network or straight distance)
    GET /coverage?kind=                 per-grid coverage against the kind's service radius
    POST /coverage/whatif               {"kind", "sites": [[lon, lat], ...]} → new totals
    GET /service_areas?kind=            the road each facility reaches within its radius
    GET /siting?kind=&p=&model=mclp|lscp  suggested new sites (spopt, CBC)

Errors are JSON ``{"code": status, "description": message}``, never a stack trace.
"""

from __future__ import annotations

import json
import math

import shapely
from flask import Blueprint, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import HTTPException

from geo.findings import RULES
from layers.schema import LAYERS
from web.catalog import _plain
from web.errors import ApiError

bp = Blueprint("api", __name__)

GEOJSON = "application/geo+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
DEFAULT_LIMIT, MAX_LIMIT = 1000, 10_000


def _catalog():
    return current_app.extensions["gridmap"]


def _collection(layer: str):
    col = _catalog().collections.get(layer)
    if col is None:
        raise ApiError(404, f"no collection '{layer}'; available: "
                            f"{', '.join(_catalog().collections)}")
    return col


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number, got '{raw}'") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _float_arg(name: str, lo: float, hi: float) -> float:
    raw = request.args.get(name)
    if raw is None:
        raise ApiError(400, f"{name} is required")
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a number, got '{raw}'") from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ApiError(400, f"{name} must be between {lo} and {hi}, got {raw}")
    return value


def _bbox():
    raw = request.args.get("bbox")
    if raw is None:
        return None
    try:
        parts = [float(v) for v in raw.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4 or not all(math.isfinite(v) for v in parts):
        raise ApiError(400, f"bbox must be four numbers minlon,minlat,maxlon,maxlat; got '{raw}'")
    x0, y0, x1, y1 = parts
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise ApiError(400, "bbox must be minlon,minlat,maxlon,maxlat in degrees with "
                            f"min ≤ max, longitude within ±180 and latitude within ±90; got '{raw}'")
    return parts


def _describe(layer: str, col) -> dict:
    spec = LAYERS[layer]
    return {"id": layer, "title": f"{spec.label} {layer}", "itemType": "feature",
            "numberOfFeatures": len(col),
            "extent": {"spatial": {"bbox": [list(col.bounds)], "crs": CRS84}},
            "links": [{"rel": "items", "type": GEOJSON,
                       "href": url_for("api.items", layer=layer)},
                      {"rel": "self", "type": "application/json",
                       "href": url_for("api.collection", layer=layer)}]}


def _geojson(text: str, status: int = 200) -> Response:
    return Response(text, status=status, mimetype=GEOJSON)


CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]


@bp.get("/conformance")
def conformance():
    return jsonify({"conformsTo": CONFORMANCE})


def landing():
    """The OGC API landing page (``/?f=json``); the map page is the HTML answer."""
    return jsonify({"title": "gridmap", "description": f"dataset {_catalog().location}",
                    "links": [{"rel": "data", "type": "application/json",
                               "href": url_for("api.collections")},
                              {"rel": "conformance", "type": "application/json",
                               "href": url_for("api.conformance")},
                              {"rel": "alternate", "type": "text/html",
                               "href": url_for("pages.index")}]})


@bp.get("/collections")
def collections():
    cols = _catalog().collections
    return jsonify({"collections": [_describe(n, c) for n, c in cols.items()],
                    "links": [{"rel": "self", "type": "application/json",
                               "href": url_for("api.collections")}]})


@bp.get("/collections/<layer>")
def collection(layer):
    return jsonify(_describe(layer, _collection(layer)))


@bp.get("/collections/<layer>/items")
def items(layer):
    col = _collection(layer)
    bbox = _bbox()
    limit = _int_arg("limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
    offset = _int_arg("offset", 0, 0, 10**9)
    matched = col.query(bbox)
    page = matched[offset:offset + limit]
    args = {k: v for k, v in request.args.items() if k not in ("offset", "limit")}
    links = [{"rel": "self", "type": GEOJSON,
              "href": url_for("api.items", layer=layer, limit=limit, offset=offset, **args)}]
    if offset + limit < len(matched):
        links.append({"rel": "next", "type": GEOJSON,
                      "href": url_for("api.items", layer=layer, limit=limit,
                                      offset=offset + limit, **args)})
    if offset > 0:
        links.append({"rel": "prev", "type": GEOJSON,
                      "href": url_for("api.items", layer=layer, limit=limit,
                                      offset=max(offset - limit, 0), **args)})
    head = (f'{{"type":"FeatureCollection","numberMatched":{len(matched)},'
            f'"numberReturned":{len(page)},"links":{json.dumps(links)},"features":[')
    return _geojson(head + ",".join(col.features[i] for i in page) + "]}")


def _etag(layer, code) -> str:
    revs = _catalog().store.revisions(layer, code)
    return f'"{layer}:{code}:{revs[-1]["id"] if revs else 0}"'


@bp.get("/collections/<layer>/items/<code>")
def item(layer, code):
    col = _collection(layer)
    found = col.by_code(code)
    if len(found) == 0:
        raise ApiError(404, f"no feature with code '{code}' in '{layer}'")
    if len(found) > 1:
        raise ApiError(409, f"{len(found)} features in '{layer}' share code '{code}' "
                            "(a duplicate_code finding); fix the codes first")
    response = _geojson(col.features[found[0]])
    response.headers["ETag"] = _etag(layer, code)
    return response


@bp.get("/collections/<layer>/items/<code>/history")
def history(layer, code):
    _collection(layer)
    return jsonify({"layer": layer, "code": code,
                    "revisions": _catalog().store.revisions(layer, code)})


class _Unauthorised(Exception):
    pass


def _planner():
    """The signed-in planner, or an error answer: 401 / 403.

    HTTP Basic credentials when sent (scripts); otherwise the browser session, whose
    editing requests must carry its CSRF token in ``X-CSRF-Token``."""
    from web.auth import authenticate, csrf_ok, session_user

    store = _catalog().store
    if request.authorization is not None:
        user = authenticate(store, request.authorization)
    else:
        user = session_user(store)
        if user is not None and not csrf_ok(request.headers.get("X-CSRF-Token")):
            raise ApiError(403, "this request did not come from gridmap's own page (missing "
                                "or wrong CSRF token); reload the page and try again")
    if user is None:
        raise _Unauthorised()
    if user["role"] != "planner":
        raise ApiError(403, f"'{user['name']}' is a {user['role']}: only planners may edit")
    return user


@bp.app_errorhandler(_Unauthorised)
def unauthorised(_err):
    response = jsonify({"code": 401, "description": "sign in: HTTP Basic credentials of a "
                                                    "planner account are required"})
    response.headers["WWW-Authenticate"] = 'Basic realm="gridmap"'
    return response, 401


def _base_revision() -> int:
    try:
        return int(request.headers.get("If-Match", "").strip('"').rsplit(":", 1)[1])
    except (IndexError, ValueError):
        raise ApiError(428, "send If-Match with the ETag that GET returned for this feature") from None


def _feature_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or body.get("type") != "Feature":
        raise ApiError(400, "the body must be a GeoJSON Feature")
    return body


@bp.get("/collections/<layer>/history")
def layer_history(layer):
    _collection(layer)
    return jsonify({"layer": layer, "revisions": _catalog().store.revisions(layer)})


@bp.post("/collections/<layer>/items/<code>/preview")
def preview_item(layer, code):
    from web.editing import preview_feature

    _planner()
    _collection(layer)
    cat = _catalog()
    if layer != "grid" or "grid" not in cat.stored:
        raise ApiError(400, "only grid cells can be edited here")
    base = cat.preview_base()
    try:
        return jsonify(preview_feature(base.layers, layer, code, _feature_body(), base))
    except KeyError as err:
        raise ApiError(404, str(err).strip("'")) from None
    except ValueError as err:
        raise ApiError(400, str(err)) from None


@bp.post("/collections/<layer>/items/<code>/revert")
def revert_item(layer, code):
    from web.editing import StaleEdit, revert_feature

    user = _planner()
    _collection(layer)
    body = request.get_json(silent=True) or {}
    if not isinstance(body.get("revision"), int) or not body.get("reason"):
        raise ApiError(400, 'send {"revision": <id>, "reason": "…"}')
    try:
        result = revert_feature(_catalog().store, layer, code, body["revision"],
                                base_revision=_base_revision(), author=user["name"],
                                reason=body["reason"])
    except StaleEdit as err:
        return jsonify({"code": 412, "description": "the feature changed since you read it",
                        "latest": err.latest}), 412
    except KeyError as err:
        raise ApiError(404, str(err).strip("'")) from None
    _catalog().reload()
    response = jsonify({"revision": result["revision"], "after": result["after"]})
    response.headers["ETag"] = f'"{layer}:{code}:{result["revision"]}"'
    return response


@bp.put("/collections/<layer>/items/<code>")
def put_item(layer, code):
    from web.editing import EditRejected, StaleEdit, update_feature

    cat = _catalog()
    user = _planner()
    _collection(layer)
    base = _base_revision()
    body = _feature_body()
    try:
        result = update_feature(cat.store, layer, code, body, base_revision=base,
                                author=user["name"],
                                reason=request.headers.get("X-Reason") or body.get("reason", ""),
                                accepted=body.get("accepted"))
    except StaleEdit as err:
        return jsonify({"code": 412, "description":
                        f"the feature changed since you read it (now revision {err.current}); "
                        "get it again and redo your change", "latest": err.latest}), 412
    except EditRejected as err:
        return jsonify({"code": 422, "description": "the change breaks nesting or leaves a gap "
                        "or overlap; fix it, or resend with \"accepted\": \"<reason>\"",
                        "findings": err.findings}), 422
    except KeyError as err:
        raise ApiError(404, str(err).strip("'")) from None
    except ValueError as err:
        raise ApiError(400, str(err)) from None
    cat.reload()
    response = jsonify({"revision": result["revision"], "after": result["after"],
                        "accepted_findings": result["accepted_findings"]})
    response.headers["ETag"] = f'"{layer}:{code}:{result["revision"]}"'
    return response


@bp.get("/findings")
def findings():
    rule, layer = request.args.get("rule"), request.args.get("layer")
    if rule and rule not in RULES:
        raise ApiError(400, f"'{rule}' is not a rule; must be one of {', '.join(RULES)}")
    if layer and layer not in LAYERS:
        raise ApiError(400, f"'{layer}' is not a layer; must be one of {', '.join(LAYERS)}")
    feats = _catalog().findings(rule=rule, layer=layer)
    summary = _catalog().report().summary()
    return _geojson(f'{{"type":"FeatureCollection","numberReturned":{len(feats)},'
                    f'"summary":{json.dumps(summary)},"features":[' + ",".join(feats) + "]}")


@bp.get("/lookup")
def lookup():
    lon = _float_arg("lon", -180, 180)
    lat = _float_arg("lat", -90, 90)
    cat = _catalog()
    try:  # walking distance along the roads where the dataset allows it, with the route
        acc = cat.access()
        near = _with_paths(acc, lon, lat, acc.nearest(lon, lat))
    except ValueError:
        near = cat.locator.nearest(lon, lat)
    return jsonify({"lon": lon, "lat": lat, "areas": cat.locator.locate(lon, lat),
                    "nearest": near})


@bp.get("/search")
def search():
    q = request.args.get("q", "")
    if len(q) > 100:
        raise ApiError(400, "q must be at most 100 characters")
    return jsonify({"q": q, "results": _catalog().search(q)})


@bp.get("/themes")
def themes():
    return jsonify(_catalog().themes)


@bp.app_errorhandler(ApiError)
def api_error(err: ApiError):
    return jsonify({"code": err.status, "description": err.message}), err.status


@bp.app_errorhandler(HTTPException)
def http_error(err: HTTPException):
    return jsonify({"code": err.code, "description": err.description}), err.code


@bp.app_errorhandler(Exception)
def unexpected(err: Exception):
    current_app.logger.exception("unexpected error")
    return jsonify({"code": 500, "description": "internal error; see the server log"}), 500


# --------------------------------------------------------------------------- service sites

def _access():
    try:
        return _catalog().access()
    except ValueError as err:
        raise ApiError(404, str(err)) from None


def _kind(acc, required=True):
    kind = request.args.get("kind") or (request.get_json(silent=True) or {}).get("kind")
    if kind is None and not required:
        return None
    if kind not in acc.kinds():
        raise ApiError(400, f"kind must be one of {', '.join(acc.kinds())}; got '{kind}'")
    if required and kind not in acc.profiles:
        raise ApiError(400, f"no service profile for '{kind}'")
    return kind


def _with_paths(acc, lon, lat, results):
    for r in results:
        line = acc.route(lon, lat, r["code"]) if r.get("distance_m") is not None else None
        r["path"] = json.loads(shapely.to_geojson(line)) if line is not None else None
    return results


def _origin():
    """lon/lat from the query, or the representative point of ?layer=&code=."""
    layer, code = request.args.get("layer"), request.args.get("code")
    if layer or code:
        col = _collection(layer or "")
        found = col.by_code(code or "")
        if len(found) != 1:
            raise ApiError(404, f"no single feature with code '{code}' in '{layer}'")
        p = _catalog().layers[layer].geometry.iloc[found[0]].representative_point()
        return p.x, p.y
    return _float_arg("lon", -180, 180), _float_arg("lat", -90, 90)


@bp.get("/nearest")
def nearest():
    acc = _access()
    lon, lat = _origin()
    kind = _kind(acc, required=False)
    k = _int_arg("k", 1, 1, 50)
    results = acc.nearest(lon, lat, kind=kind, k=k)
    if request.args.get("path") in ("1", "true"):
        results = _with_paths(acc, lon, lat, results)
    return jsonify(results)


def _coverage_colors(table):
    """Server-side colours: uncovered cells shaded by the population they leave out."""
    from geo.themes import classify

    colours, legend = classify(table["uncovered_population"].where(~table["covered"]))
    return [None if c == "#cccccc" else c for c in colours], legend


@bp.get("/coverage")
def coverage():
    acc = _access()
    kind = _kind(acc)
    table, totals = acc.coverage(kind)
    colours, legend = _coverage_colors(table)
    records = table.assign(_color=colours).to_dict("records")
    streets = {}
    community = _catalog().layers.get("community")
    if community is not None:
        streets = dict(zip(community["code"].astype(str), community["parent_code"].astype(str)))
    by_community = acc.rollup(table, table["parent_code"])
    by_street = acc.rollup(table, table["parent_code"].map(streets).fillna("?"))
    return jsonify({"totals": totals, "legend": legend, "profile": acc.profiles[kind],
                    "grids": _plain(records),
                    "communities": _plain(by_community.to_dict("records")),
                    "streets": _plain(by_street.to_dict("records"))})


@bp.post("/coverage/whatif")
def whatif():
    acc = _access()
    body = request.get_json(silent=True) or {}
    kind = _kind(acc)
    sites = body.get("sites", [])
    if (not isinstance(sites, list) or len(sites) > 50 or not all(
            isinstance(s, list) and len(s) == 2 and all(isinstance(v, (int, float)) for v in s)
            and -180 <= s[0] <= 180 and -90 <= s[1] <= 90 for s in sites)):
        raise ApiError(400, "sites must be a list of at most 50 [lon, lat] pairs")
    before, _ = acc.coverage(kind)
    table, totals = acc.coverage(kind, extra_sites=[tuple(s) for s in sites])
    newly = table["covered"].to_numpy() & ~before["covered"].to_numpy()
    return jsonify({"totals": totals, "newly_covered_cells": table.loc[newly, "code"].tolist()})


@bp.get("/service_areas")
def service_areas():
    acc = _access()
    areas = acc.service_areas(_kind(acc)).to_crs("EPSG:4326")
    return _geojson(areas.to_json(drop_id=True))


@bp.get("/siting")
def siting():
    acc = _access()
    kind = _kind(acc)
    model = request.args.get("model", "mclp")
    if model not in ("mclp", "lscp"):
        raise ApiError(400, "model must be mclp or lscp")
    p = _int_arg("p", 5, 1, 200)
    limit = _int_arg("time_limit", 60, 1, 600)
    source = request.args.get("candidates", "intersections")
    if source not in ("intersections", "lattice"):
        raise ApiError(400, "candidates must be intersections or lattice")
    result = acc.site(kind, p if model == "mclp" else None, model=model, time_limit=limit,
                      candidates=source)
    if request.args.get("f") == "geojson":  # export for desktop GIS
        props = {k: v for k, v in result.items() if k != "suggestions"}
        feats = [{"type": "Feature", "properties": {**props, **{k: v for k, v in s.items()
                                                                 if k not in ("lon", "lat")}},
                  "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]}}
                 for s in result["suggestions"]]
        return _geojson(json.dumps({"type": "FeatureCollection", "features": feats},
                                   ensure_ascii=False))
    return jsonify(result)


@bp.get("/proposal")
def proposal():
    """A proposed re-partition of a community's (``community=``) or a whole street's
    (``street=``, community by community) grid cells into a household band."""
    from geo.proposals import propose_for

    cat = _catalog()
    band = current_app.config["HOUSEHOLD_BAND"]
    lo = _int_arg("min", band[0], 1, 100_000)
    hi = _int_arg("max", band[1], 1, 100_000)
    if lo > hi:
        raise ApiError(400, "min must not exceed max")
    community, street = request.args.get("community"), request.args.get("street")
    if bool(community) == bool(street):
        raise ApiError(400, "give community=CODE or street=CODE")
    try:
        result = propose_for(cat.layers, community=community or None, street=street or None,
                             band=(lo, hi))
    except KeyError as err:
        raise ApiError(404, err.args[0]) from None
    except ValueError as err:
        raise ApiError(404, str(err)) from None
    body = {"scope": result.scope, result.scope: result.code, "feasible": result.feasible,
            "reason": result.reason, "metrics": result.metrics, "current": result.current,
            "communities": [{"community": code, "feasible": p.feasible, "reason": p.reason,
                             "cells": p.metrics.get("cells", 0)}
                            for code, p in result.communities.items()]}
    if result.cells is not None:
        body["cells"] = json.loads(result.cells.to_crs("EPSG:4326").to_json(drop_id=True))
        body["moves"] = _plain(result.moves.to_dict("records"))
    return jsonify(body)
