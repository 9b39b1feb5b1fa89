"""Service sites: nearest facilities, coverage, what-if sites, service areas and siting.

GET  /nearest?lon=&lat=&kind=&k=&path=1   (or ?layer=&code= for a feature's point)
GET  /coverage?kind=                      per-grid coverage against the kind's radius
POST /coverage/whatif                     {"kind", "sites": [[lon, lat], ...]}
GET  /service_areas?kind=                 the roads each facility reaches
GET  /siting?kind=&p=&model=mclp|lscp&candidates=intersections|lattice[&f=geojson]

All but /nearest are expensive and bounded by :mod:`web.heavy` (a few at a time, 503
with Retry-After when busy); siting runs in a child process killed at its time limit.
"""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request

from geo.errors import InputError, NotFound
from geo.themes import classify
from web.catalog import json_text, plain
from web.features import collection_of, geojson, json_answer
from web.heavy import heavy, run_isolated
from web.params import accepts, catalog, float_arg, int_arg, json_body

bp = Blueprint("sites", __name__)

# Work limits of siting: new sites asked for at most, and seconds a whole run may take.
MAX_SITES = 50
MAX_SECONDS = 120


def _kind(acc, required=True):
    kind = request.args.get("kind") or json_body().get("kind")
    if kind is None and not required:
        return None
    if kind not in acc.kinds():
        raise InputError(
            f"kind must be one of {', '.join(acc.kinds())}; got '{kind}'",
            zh=f"设施类型须为 {', '.join(acc.kinds())} 之一，收到“{kind}”",
        )
    if required and kind not in acc.profiles:
        raise InputError(f"no service profile for '{kind}'", zh=f"“{kind}”没有服务半径设置")
    return kind


def nearest_json(results: list[dict]) -> str:
    """The JSON array of nearest facilities (``Access.nearest`` or ``Locator.nearest``);
    a ``path`` is already JSON text (``paths="json"``) and is put in as it is."""
    records = []
    for r in results:
        if "path" not in r:
            records.append(json_text(r))
            continue
        head = json_text({k: v for k, v in r.items() if k != "path"})
        records.append(f'{head[:-1]},"path":{r["path"] or "null"}}}')
    return "[" + ",".join(records) + "]"


def _origin():
    """lon/lat from the query, or the representative point of ?layer=&code=."""
    layer, code = request.args.get("layer"), request.args.get("code")
    if layer or code:
        col = collection_of(layer or "")
        found = col.by_code(code or "")
        if len(found) != 1:
            raise NotFound(
                f"no single feature with code '{code}' in '{layer}'",
                zh=f"图层“{layer}”中没有唯一编码为 {code} 的要素",
            )
        p = catalog().layers[layer].geometry.iloc[found[0]].representative_point()
        return p.x, p.y
    return float_arg("lon", -180, 180), float_arg("lat", -90, 90)


@bp.get("/nearest")
@accepts("lon", "lat", "layer", "code", "kind", "k", "path")
def nearest():
    """The nearest facilities from a point or a feature, along the roads."""
    acc = catalog().access(demand=False)
    lon, lat = _origin()
    kind = _kind(acc, required=False)
    k = int_arg("k", 1, 1, 50)
    paths = request.args.get("path") in ("1", "true")
    results = acc.nearest(lon, lat, kind=kind, k=k, paths="json" if paths else False)
    return json_answer(nearest_json(results))


def _coverage_colors(table):
    """Server-side colours: uncovered cells shaded by the population they leave out."""
    colours, legend = classify(table["uncovered_population"].where(~table["covered"]))
    return [None if c == "#cccccc" else c for c in colours], legend


@bp.get("/coverage")
@accepts("kind")
@heavy
def coverage():
    """Which grid cells a kind of facility covers within its service distance."""
    acc = catalog().access()
    kind = _kind(acc)
    table, totals = acc.coverage(kind)
    colours, legend = _coverage_colors(table)
    records = table.assign(_color=colours).to_dict("records")
    streets = {}
    community = catalog().layers.get("community")
    if community is not None:
        streets = dict(zip(community["code"].astype(str), community["parent_code"].astype(str)))
    by_community = acc.rollup(table, table["parent_code"])
    by_street = acc.rollup(table, table["parent_code"].map(streets).fillna("?"))
    return jsonify(
        {
            "totals": totals,
            "legend": legend,
            "profile": acc.profiles[kind],
            "grids": plain(records),
            "communities": plain(by_community.to_dict("records")),
            "streets": plain(by_street.to_dict("records")),
        }
    )


@bp.post("/coverage/whatif")
@accepts("kind")
@heavy
def whatif():
    """Coverage with extra candidate sites added."""
    acc = catalog().access()
    kind = _kind(acc)
    sites = json_body().get("sites", [])
    if (
        not isinstance(sites, list)
        or len(sites) > 50
        or not all(
            isinstance(s, list)
            and len(s) == 2
            and all(isinstance(v, (int, float)) for v in s)
            and -180 <= s[0] <= 180
            and -90 <= s[1] <= 90
            for s in sites
        )
    ):
        raise InputError(
            "sites must be a list of at most 50 [lon, lat] pairs",
            zh="sites 须为最多 50 个 [经度, 纬度] 的列表",
        )
    before, _ = acc.coverage(kind)
    table, totals = acc.coverage(kind, extra_sites=[tuple(s) for s in sites])
    newly = table["covered"].to_numpy() & ~before["covered"].to_numpy()
    return jsonify({"totals": totals, "newly_covered_cells": table.loc[newly, "code"].tolist()})


@bp.get("/service_areas")
@accepts("kind", formats=("geojson",))
@heavy
def service_areas():
    """The area each facility serves within its service distance (GeoJSON)."""
    acc = catalog().access()
    areas = acc.service_areas(_kind(acc)).to_crs("EPSG:4326")
    return geojson(areas.to_json(drop_id=True))


@bp.get("/siting")
@accepts("kind", "model", "p", "time_limit", "candidates", formats=("json", "geojson"))
@heavy
def siting():
    """Suggested new sites for a kind of facility (a location model)."""
    acc = catalog().access()
    kind = _kind(acc)
    model = request.args.get("model", "mclp")
    if model not in ("mclp", "lscp"):
        raise InputError("model must be mclp or lscp", zh="model 须为 mclp 或 lscp")
    p = int_arg("p", 5, 1, MAX_SITES)
    limit = int_arg("time_limit", 60, 1, MAX_SECONDS)
    source = request.args.get("candidates", "intersections")
    if source not in ("intersections", "lattice"):
        raise InputError(
            "candidates must be intersections or lattice",
            zh="candidates 须为 intersections 或 lattice",
        )
    # in a child process, killed at the time limit: the limit caps the whole job
    result = run_isolated(
        acc.site,
        kind,
        p if model == "mclp" else None,
        model=model,
        time_limit=limit,
        candidates=source,
        timeout=limit,
    )
    if request.args.get("f") == "geojson":  # export for desktop GIS
        props = {k: v for k, v in result.items() if k != "suggestions"}
        feats = [
            {
                "type": "Feature",
                "properties": {**props, **{k: v for k, v in s.items() if k not in ("lon", "lat")}},
                "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
            }
            for s in result["suggestions"]
        ]
        return geojson(
            json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False)
        )
    return jsonify(result)
