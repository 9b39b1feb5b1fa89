"""Benchmark: one grid-cell edit on the sample city, through the HTTP API.

    python -m tests.benchmarks.bench_edit [--n 60]

Times, on a copy of the sample GeoPackage, ``--n`` rounds of
- preview: POST /collections/grid/items/{code}/preview (validate the change against its
  communities and neighbours, return the new figures and findings; nothing saved);
- save: GET (ETag) + PUT with If-Match (validate, write the layer, record the revision,
  refresh the served dataset);
for random cells, each nudging one vertex by 2 m; and
- map operations: POST /collections/grid/changes/preview for a split through the cell's
  centre, a merge with a neighbour, a piece of a neighbour moved, a reshape (2 m nudge) —
  what the map sends when a planner finishes drawing.
Prints p50/p95 of each next to the 200 ms p95 target of the issue, and, as the reference
measured in the same run, the bare validation the preview must do (``check_dataset`` on the
same communities, twice: before and after), so the ratio says what the preview adds.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from shapely.geometry import mapping, shape

from tests.conftest import SAMPLE
from web import create_app
from web.auth import add_user


def _nudge(feature, rng):
    g = shape(feature["geometry"])
    poly = max(getattr(g, "geoms", [g]), key=lambda p: p.area)
    coords = np.array(poly.exterior.coords)
    k = rng.integers(1, len(coords) - 1)
    coords[k] += rng.normal(0, 2e-5, 2)  # about 2 m
    return dict(feature, geometry=mapping(type(poly)(coords)))


def _operations(app, client, codes, rng, n):
    """``n`` map operations on random cells (lon/lat), with the stored geometries they touch."""
    import geopandas as gpd
    import shapely

    stored = app.extensions["gridmap"].stored["grid"]
    grid = stored.to_crs(4326)
    metric = stored.to_crs(4539)
    ops = []
    kinds = ["split", "merge", "move", "reshape"]
    while len(ops) < n:
        code = codes[rng.integers(len(codes))]
        hit = np.flatnonzero(grid["code"].astype(str).to_numpy() == code)
        if len(hit) != 1:
            continue
        i = int(hit[0])
        cell = grid.geometry.iloc[i]
        same = grid["parent_code"].to_numpy() == grid["parent_code"].iloc[i]
        touching = [
            int(j)
            for j in metric.sindex.query(
                metric.geometry.iloc[i].buffer(0.5), predicate="intersects"
            )
            if j != i
            and same[j]
            and metric.geometry.iloc[j].intersection(metric.geometry.iloc[i].buffer(0.5)).area > 10
        ]
        kind = kinds[len(ops) % 4]
        if kind == "split":
            x = cell.centroid.x
            op = {
                "op": "split",
                "code": code,
                "line": {
                    "type": "LineString",
                    "coordinates": [[x, cell.bounds[1] - 0.001], [x, cell.bounds[3] + 0.001]],
                },
            }
        elif kind == "merge" and touching:
            op = {"op": "merge", "codes": [code, str(grid["code"].iloc[touching[0]])]}
        elif kind == "move" and touching:
            nb = metric.geometry.iloc[touching[0]]
            piece = nb.intersection(metric.geometry.iloc[i].buffer(40))  # a 40 m band
            piece = gpd.GeoSeries([piece], crs=4539).to_crs(4326).iloc[0]
            op = {"op": "move", "to": code, "geometry": mapping(piece)}
        elif kind == "reshape":
            poly = max(getattr(cell, "geoms", [cell]), key=lambda p: p.area)
            coords = np.array(poly.exterior.coords)
            k = rng.integers(1, len(coords) - 1)
            coords[k] += rng.normal(0, 2e-5, 2)
            op = {"op": "reshape", "code": code, "geometry": mapping(shapely.Polygon(coords))}
        else:
            continue
        ops.append((op, [stored.geometry.iloc[i]]))
    return ops


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60)
    args = ap.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="gridmap-edit-"))
    path = folder / "city.gpkg"
    shutil.copy(SAMPLE, path)
    app = create_app({"DATASET": str(path)})
    add_user(app.extensions["gridmap"].store, "bench", "planner", "bench-password")
    auth = {"Authorization": "Basic " + base64.b64encode(b"bench:bench-password").decode()}
    client = app.test_client()
    codes = [c for c in app.extensions["gridmap"].layers["grid"]["code"].astype(str)]
    rng = np.random.default_rng(0)
    app.extensions["gridmap"].report()  # the start-up check is done before timing
    edits = []
    for _ in range(args.n):
        code = codes[rng.integers(len(codes))]
        got = client.get(f"/collections/grid/items/{code}")
        if got.status_code == 200:  # skips the sample's duplicated code
            edits.append(
                (
                    code,
                    dict(
                        _nudge(got.get_json(), rng),
                        properties={},
                        reason="benchmark",
                        accepted="benchmark nudge",
                    ),
                )
            )
    preview, save = [], []
    for code, f in edits:  # a planner previews as they draw ...
        t = time.perf_counter()
        r = client.post(f"/collections/grid/items/{code}/preview", json=f, headers=auth)
        preview.append(time.perf_counter() - t)
        assert r.status_code == 200, r.get_json()
    # map operations are previewed before any save: a save re-checks the whole dataset in
    # the background, which would be timed too
    ops = _operations(app, client, codes, rng, args.n)
    change, reference = [], []
    from geo.checker import check_dataset
    from geo.edits import neighbourhood as _neighbourhood

    stored = app.extensions["gridmap"].stored
    layers = {n: stored[n] for n in ("street", "community", "grid")}
    for op, region in ops:
        t = time.perf_counter()
        r = client.post("/collections/grid/changes/preview", json=op, headers=auth)
        change.append(time.perf_counter() - t)
        assert r.status_code == 200, (op["op"], r.get_json())
        t = time.perf_counter()
        for _ in range(2):
            check_dataset(_neighbourhood(layers, region))
        reference.append(time.perf_counter() - t)
    for code, f in edits:  # ... and saves now and then
        url = f"/collections/grid/items/{code}"
        t = time.perf_counter()
        got = client.get(url)
        r = client.put(url, json=f, headers={"If-Match": got.headers["ETag"], **auth})
        save.append(time.perf_counter() - t)
        assert r.status_code == 200, r.get_json()
    ms = lambda v, q: f"{1000 * np.percentile(v, q):7.1f} ms"  # noqa: E731
    print(f"{len(preview)} edits on the sample city ({len(codes)} grid cells)")
    print(
        f"  validate-and-preview: p50 {ms(preview, 50)}, p95 {ms(preview, 95)}   target p95 200 ms"
    )
    print(f"  save (GET + PUT):     p50 {ms(save, 50)}, p95 {ms(save, 95)}")
    kinds = sorted({op["op"] for op, _ in ops})
    print(f"{len(ops)} map operations ({', '.join(kinds)})")
    for k in kinds:
        v = [t for (op, _), t in zip(ops, change) if op["op"] == k]
        print(f"  {k:8s} preview:     p50 {ms(v, 50)}, p95 {ms(v, 95)}")
    print(f"  all previews:         p50 {ms(change, 50)}, p95 {ms(change, 95)}   target p95 200 ms")
    print(
        f"  reference, validation alone (before + after): p50 {ms(reference, 50)}, "
        f"p95 {ms(reference, 95)}; preview/validation at p95: "
        f"{np.percentile(change, 95) / np.percentile(reference, 95):.2f}x"
    )
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
