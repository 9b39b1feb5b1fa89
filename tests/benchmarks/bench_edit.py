"""Benchmark: one grid-cell edit on the sample city, through the HTTP API.

    python -m tests.benchmarks.bench_edit [--n 60]

Times, on a copy of the sample GeoPackage, ``--n`` rounds of
- preview: POST /collections/grid/items/{code}/preview (validate the change against its
  communities and neighbours, return the new figures and findings; nothing saved);
- save: GET (ETag) + PUT with If-Match (validate, write the layer, record the revision,
  refresh the served dataset);
for random cells, each nudging one vertex by 2 m. Prints p50/p95 of each next to the
200 ms p95 target of the issue.
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
            edits.append((code, dict(_nudge(got.get_json(), rng), properties={},
                                     reason="benchmark", accepted="benchmark nudge")))
    preview, save = [], []
    for code, f in edits:  # a planner previews as they draw ...
        t = time.perf_counter()
        r = client.post(f"/collections/grid/items/{code}/preview", json=f, headers=auth)
        preview.append(time.perf_counter() - t)
        assert r.status_code == 200, r.get_json()
    for code, f in edits:  # ... and saves now and then
        url = f"/collections/grid/items/{code}"
        t = time.perf_counter()
        got = client.get(url)
        r = client.put(url, json=f, headers={"If-Match": got.headers["ETag"], **auth})
        save.append(time.perf_counter() - t)
        assert r.status_code == 200, r.get_json()
    ms = lambda v, q: f"{1000 * np.percentile(v, q):7.1f} ms"  # noqa: E731
    print(f"{len(preview)} edits on the sample city ({len(codes)} grid cells)")
    print(f"  validate-and-preview: p50 {ms(preview, 50)}, p95 {ms(preview, 95)}   target p95 200 ms")
    print(f"  save (GET + PUT):     p50 {ms(save, 50)}, p95 {ms(save, 95)}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
