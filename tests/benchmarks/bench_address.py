"""Benchmark: searching standard addresses, with who is responsible and the nearest
facilities, on a city of ``--addresses`` addresses.

    python -m tests.benchmarks.bench_address [--addresses 100000] [--queries 500]

The bundled sample with its address layer replaced by ``--addresses`` addresses spread
over its communities (doors on the sample's road names and lanes, as its own addresses
are written) is served in-process (Flask's test client, no network). ``--queries``
seeded queries — a whole address, a road and door number in either order, a road name,
an address code — are sent to ``GET /addresses?q=…&limit=10`` after one untimed warm-up
(which builds the index). Printed: latency p50/p95/p99 of the endpoint (each answer with
up to ten addresses, each located in every area layer, with the nearest facility of each
kind) beside the reference measured on the same queries in the same run: pandas'
``Series.str.contains`` (regex off) over the same address texts, the scan alone, with no
ranking, no location and no HTTP. The target is p95 < 50 ms.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.build_sample import ROAD_NAMES
from layers.storage import open_store
from tests.conftest import SAMPLE


def _city(n: int, rng: np.random.Generator, folder: Path) -> tuple[Path, gpd.GeoDataFrame]:
    """The sample with ``n`` addresses in its communities."""
    path = folder / "city.gpkg"
    shutil.copyfile(SAMPLE, path)
    store = open_store(path)
    com = store.read_layer("community")
    x0, y0, x1, y1 = com.total_bounds
    xy = np.column_stack([rng.uniform(x0, x1, n * 2), rng.uniform(y0, y1, n * 2)])
    points = shapely.points(xy)
    tree = shapely.STRtree(com.geometry.values)
    at, where = tree.query(points, predicate="within")
    first = np.unique(at, return_index=True)[1]
    at, where = at[first][:n], where[first][:n]
    lanes = [f"{name.removesuffix('社区')}{k}巷" for name in com["name"] for k in range(1, 9)]
    labels = np.array(ROAD_NAMES + lanes, dtype=object)
    road = labels[rng.integers(0, len(labels), len(at))]
    door = rng.integers(1, 400, len(at))
    gdf = gpd.GeoDataFrame(
        {
            "code": [f"{com['code'].iloc[w]}{i:06d}" for i, w in enumerate(where)],
            "address": [f"拉萨市城关区{r}{d}号" for r, d in zip(road, door)],
            "door": [f"{d}号" for d in door],
        },
        geometry=points[at],
        crs=com.crs,
    )
    store.write_layer("address", gdf)
    return path, gdf


def _queries(gdf: gpd.GeoDataFrame, k: int, rng: np.random.Generator) -> list[str]:
    rows = gdf.iloc[rng.integers(0, len(gdf), k)]
    out = []
    for i, (code, text, door) in enumerate(zip(rows["code"], rows["address"], rows["door"])):
        road = text.removeprefix("拉萨市城关区").removesuffix(door)
        out.append([text, f"{road}{door}", f"{door} {road}", road, code][i % 5])
    return out


def _percentiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000
    return "p50 {:.1f} ms  p95 {:.1f} ms  p99 {:.1f} ms".format(*np.percentile(ms, [50, 95, 99]))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addresses", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(7)
    folder = Path(tempfile.mkdtemp(prefix="gridmap-bench-address-"))
    try:
        path, gdf = _city(args.addresses, rng, folder)
        queries = _queries(gdf, args.queries, rng)
        from web import create_app

        client = create_app({"DATASET": str(path)}).test_client()
        started = time.perf_counter()
        client.get("/addresses", query_string={"q": queries[0]})
        warm = time.perf_counter() - started
        served, answered = [], []
        for q in queries:
            t = time.perf_counter()
            r = client.get("/addresses", query_string={"q": q, "limit": 10})
            served.append(time.perf_counter() - t)
            assert r.status_code == 200, r.get_json()
            answered.append(len(r.get_json()["results"]))
        texts = pd.Series(gdf["address"].to_numpy(), dtype=object) + " " + gdf["code"]
        scans = []
        for q in queries:
            t = time.perf_counter()
            texts.str.contains(q.split()[0], regex=False).to_numpy().nonzero()
            scans.append(time.perf_counter() - t)
        print(f"{len(gdf):,} addresses, {len(queries)} queries; first query (builds the index) "
              f"{warm * 1000:.0f} ms; every query answered: {min(answered) > 0}")  # fmt: skip
        print(f"GET /addresses (ranked, located, nearest facilities): {_percentiles(served)}")
        print(f"reference, pandas str.contains scan alone:            {_percentiles(scans)}")
        p95 = np.percentile(served, 95) / np.percentile(scans, 95)
        print(f"ratio p95 endpoint / bare scan: {p95:.2f}; target p95 < 50 ms")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
