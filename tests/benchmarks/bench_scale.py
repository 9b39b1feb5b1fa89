"""Benchmark: a province on one map — server start, vector tiles, saves.

    python -m tests.benchmarks.bench_scale [--cells 150000] [--clients 50] [--saves 20]
                                           [--postgis postgresql://…/test]

Builds its own province-sized dataset (streets ⊃ communities ⊃ ``--cells`` noisy grid
cells, ``tests.tilings``) as a GeoPackage (and, with ``--postgis``, the same in PostGIS),
serves it with ``python -m web`` twice — the first start (nothing kept on disk), then a
restart once the first run has kept the grid's generalisation (``layers.overviews``) — and
measures, each beside its reference in the same run:

- start: seconds until the service answers, and its resident memory (target < 5 s), at
  both starts;
- first view: the tiles a 1400 × 900 screen shows of the whole grid, six at a time as a
  browser asks, cold (target < 2 s), at both starts (the first draws low zooms exact until
  generalised); reference: the bare encoder (mapbox-vector-tile) on the same features of
  the same tiles, in this process;
- tile bytes of that view beside the bare encoder's bytes (target ≤ 1.5×);
- tile p50/p95 at ``--clients`` concurrent clients on zoom-14 tiles never asked for (cold;
  target p95 < 300 ms) while the first check runs, at both starts, and after the check;
  the same tiles again (cached; target < 100 ms); with PostGIS, the bare ``ST_AsMVT``
  query for the same tiles;
- after the restart, once its first check is done: save p50/p95 of ``--saves`` one-cell
  edits through the API, each waiting for the served copy to show it (target p95 <
  300 ms); reference: the old whole-file save (the grid layer written whole into a copy
  of the GeoPackage, renamed over it);
- the check once the saves pause, made near the saved cells (``geo.recheck``), beside the
  first check of the whole dataset (as ``GET /check`` reports how long each took).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import shapely
from shapely.geometry import mapping, shape

from geo.tiles import TMS, tile_bounds, to_web_mercator
from tests.tilings import add_noise, hierarchy

WORK = Path("/tmp/gridmap-bench-scale")
PASSWORD = "bench-secret"
SCREEN = (1400, 900)


def build(cells: int, path: Path, postgis: str | None) -> list[str]:
    """The province dataset (GeoPackage, and PostGIS when given): the datasets to serve."""
    from layers.storage import open_store
    from web.auth import add_user

    streets, communities, grids = hierarchy(cells, seed=1)
    grids = add_noise(grids, seed=1)
    layers = {"street": streets, "community": communities, "grid": grids}
    out = []
    for target in [str(path)] + ([postgis] if postgis else []):
        if target == str(path) and path.exists():
            path.unlink()
        store = open_store(target)
        for name, gdf in layers.items():
            store.write_layer(name, gdf.to_crs(4490))
        add_user(store, "planner", "planner", PASSWORD)
        out.append(target)
    return out


def serve(dataset: str, log: Path, overviews: Path) -> tuple[subprocess.Popen, str, float]:
    """``python -m web`` on ``dataset`` in its own process group, keeping generalised low
    zooms in ``overviews``: the process, its URL and the seconds until it answered (asked
    every 0.1 s)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    t = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "web", "--port", str(port)],
            env={**os.environ, "DATASET": dataset, "GRIDMAP_OVERVIEWS": str(overviews)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited: {log.read_text()[-3000:]}")
        try:
            fetch(f"{base}/collections")
            return proc, base, time.perf_counter() - t
        except OSError:
            time.sleep(0.1)


def rss_mb(pid: int) -> float:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return sum(int(ln.split()[1]) / 1024 for ln in lines if ln.startswith("VmRSS:"))


def fetch(url: str, headers: dict | None = None) -> tuple[float, int, bytes]:
    t = time.perf_counter()
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=600) as r:
        body = r.read()
        return time.perf_counter() - t, r.status, body


def view_tiles(bounds) -> tuple[int, list]:
    """The zoom at which ``bounds`` (lon/lat) fits a screen, and the tiles it shows."""
    for z in range(22, -1, -1):
        x0, y0, x1, y1 = to_web_mercator_box(bounds)
        px = 256 * 2**z / (2 * 20037508.342789244)
        if (x1 - x0) * px <= SCREEN[0] and (y1 - y0) * px <= SCREEN[1]:
            return z, list(TMS.tiles(*bounds, zooms=[z]))
    return 0, [next(TMS.tiles(*bounds, zooms=[0]))]


def to_web_mercator_box(bounds):
    a = to_web_mercator(np.array([shapely.box(*bounds)]))[0]
    return shapely.bounds(a)


def bare(grid_lonlat, tiles, z) -> tuple[float, int]:
    """The bare encoder on the same features: each tile's features (exact geometry, the
    same properties) given to mapbox-vector-tile to clip-free quantise and encode."""
    geoms = to_web_mercator(grid_lonlat.geometry.values)
    tree = shapely.STRtree(geoms)
    props = grid_lonlat.drop(columns="geometry").to_dict("records")
    total, size = 0.0, 0
    for t in tiles:
        b = tile_bounds(z, t.x, t.y)
        hit = tree.query(shapely.box(*b))
        feats = [{"geometry": geoms[i], "properties": props[i]} for i in hit]
        s = time.perf_counter()
        data = mapbox_vector_tile.encode(
            [{"name": "grid", "features": feats}],
            default_options={"quantize_bounds": b, "extents": 4096},
        )
        total += time.perf_counter() - s
        size += len(data)
    return total, size


def bare_st_asmvt(url: str, tiles) -> list[float]:
    """The bare ST_AsMVT query for each zoom-14 tile (stored columns, no ids), one at a
    time: the reference for tiles the database builds."""
    import sqlalchemy as sa

    from layers.storage.postgis import PostGISStore

    store = PostGISStore(url)
    table = f'"{store.schema}".grid'
    sql = sa.text(
        f"""SELECT ST_AsMVT(q.*, 'grid', 4096, 'geom') FROM (
            SELECT ST_AsMVTGeom(ST_Transform(geometry, 3857), ST_TileEnvelope(14, :x, :y),
                                4096, 64, true) AS geom, code, name, households, population
            FROM {table}
            WHERE geometry && ST_Transform(ST_TileEnvelope(14, :x, :y), 4490)) q"""
    )
    times = []
    with store.engine.connect() as con:
        for t in tiles:
            s = time.perf_counter()
            con.execute(sql, {"x": t.x, "y": t.y}).scalar()
            times.append(time.perf_counter() - s)
    return times


def wait_for_check(base: str, after: float = 0.0) -> float:
    """Wait (first ``after`` seconds, for a check to start) until ``GET /check`` says the
    check is done; how long it took, as the service measured it."""
    time.sleep(after)
    while True:
        status = json.loads(fetch(f"{base}/check")[2])
        if status["state"] == "done":
            return float(status["seconds"])
        time.sleep(0.2)


def pct(values, q) -> float:
    return float(np.percentile(np.array(values) * 1000, q))


def first_view(base: str, bounds) -> tuple[int, list, float, int]:
    """The tiles of the whole grid a screen shows, asked six at a time: their zoom, the
    tiles, the seconds until all came and their bytes."""
    z, tiles = view_tiles(bounds)
    url = f"{base}/collections/grid/tiles/WebMercatorQuad"
    t = time.perf_counter()
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda tt: fetch(f"{url}/{z}/{tt.y}/{tt.x}"), tiles))
    return z, tiles, time.perf_counter() - t, sum(len(b) for _, _, b in got)


def kept_overviews(where: Path) -> int:
    return len(list(where.glob("*.overview.npz")))


def tiles_at_once(url: str, tiles, clients: int, label: str, target: str) -> None:
    """Zoom-14 ``tiles`` asked by ``clients`` clients at once: p50 and p95."""
    with ThreadPoolExecutor(clients) as pool:
        times = [r[0] for r in pool.map(lambda tt: fetch(f"{url}/14/{tt.y}/{tt.x}"), tiles)]
    print(
        f"tiles at {clients} clients, {label}: {len(times)} tiles, "
        f"p50 {pct(times, 50):.0f} ms, p95 {pct(times, 95):.0f} ms ({target})"
    )


def stop(proc, procs) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)
    procs.remove(proc)


def measure(dataset: str, args, procs, overviews: Path) -> None:
    """Two runs of the service on ``dataset``: the first start (nothing kept), then a
    restart once the first run has kept the grid's generalisation — where the saves are
    measured, as a planner meets the service on a working day."""
    from layers.storage import open_store

    shutil.rmtree(overviews, ignore_errors=True)  # the first start has none kept
    proc, base, started = serve(dataset, WORK / "gridmap.log", overviews)
    procs.append(proc)
    print(f"\n== {dataset}\n-- first start (nothing kept)")
    print(f"start: {started:.1f} s (target < 5 s); resident {rss_mb(proc.pid):.0f} MB")

    meta = json.loads(fetch(f"{base}/collections/grid")[2])
    bounds = meta["extent"]["spatial"]["bbox"][0]
    z, tiles, first, ours = first_view(base, bounds)
    url = f"{base}/collections/grid/tiles/WebMercatorQuad"
    store = open_store(dataset)
    grid = store.read_layer("grid").to_crs(4326)
    ref_s, ref_bytes = bare(grid, tiles, z)
    print(
        f"first view (low zooms drawn exact until generalised): zoom {z}, {len(tiles)} "
        f"tiles, {first:.2f} s cold (target < 2 s); bare encoder on the same features "
        f"{ref_s:.2f} s ({first / ref_s:.2f}x)"
    )
    print(
        f"first view bytes: {ours / 1e6:.2f} MB; bare encoder {ref_bytes / 1e6:.2f} MB "
        f"({ours / ref_bytes:.2f}x, target <= 1.5x)"
    )
    # 50 clients on zoom 14 tiles never asked for (cold), then the same again (cached),
    # while the first check runs
    deep = list(TMS.tiles(*bounds, zooms=[14]))
    rng = np.random.default_rng(0)
    picks = [
        [deep[i] for i in rng.choice(len(deep), min(len(deep), 10 * args.clients), False)]
        for _ in range(2)
    ]
    tiles_at_once(url, picks[0], args.clients, "cold, first check running", "p95 < 300 ms")
    tiles_at_once(url, picks[0], args.clients, "cached", "p95 < 100 ms")
    if dataset.startswith("postgres"):
        bare_times = bare_st_asmvt(dataset, picks[0])
        print(
            f"reference, the bare ST_AsMVT query for the same zoom-14 tiles, one at a time: "
            f"p50 {pct(bare_times, 50):.0f} ms, p95 {pct(bare_times, 95):.0f} ms"
        )
    whole_check = wait_for_check(base)
    t = time.perf_counter()
    while (
        not kept_overviews(overviews) or any(overviews.glob(".writing-*"))
    ) and time.perf_counter() - t < 300:
        time.sleep(0.5)
    print(
        f"the whole dataset's first check: {whole_check:.1f} s; the grid's generalisation "
        f"kept {time.perf_counter() - t:.0f} s after it; resident {rss_mb(proc.pid):.0f} MB"
    )
    stop(proc, procs)

    # the restart: the generalisation taken from disk
    proc, base, started = serve(dataset, WORK / "gridmap-restart.log", overviews)
    procs.append(proc)
    print(f"-- restart ({kept_overviews(overviews)} generalisation kept)")
    print(f"start: {started:.1f} s (target < 5 s); resident {rss_mb(proc.pid):.0f} MB")
    url = f"{base}/collections/grid/tiles/WebMercatorQuad"
    z, tiles, again, ours = first_view(base, bounds)
    print(
        f"first view: zoom {z}, {len(tiles)} tiles, {again:.2f} s cold (target < 2 s), "
        f"{ours / 1e6:.2f} MB; the first start's {first:.2f} s; bare encoder on the exact "
        f"features {ref_s:.2f} s"
    )
    tiles_at_once(url, picks[1], args.clients, "cold, first check running", "p95 < 300 ms")
    whole_check = wait_for_check(base)
    fresh = [deep[i] for i in rng.choice(len(deep), min(len(deep), 10 * args.clients), False)]
    tiles_at_once(url, fresh, args.clients, "cold, check done", "p95 < 300 ms")

    # saves: one cell's households each, through the API, once the first check is done
    auth = "Basic " + base64.b64encode(f"planner:{PASSWORD}".encode()).decode()
    codes = grid["code"].drop_duplicates(keep=False).sample(args.saves, random_state=1)
    times = []
    for code in codes:
        got = urllib.request.urlopen(f"{base}/collections/grid/items/{code}", timeout=60)
        etag = got.headers["ETag"]
        feature = json.loads(got.read())
        feature["properties"] = {"households": int(rng.integers(50, 900))}
        feature["geometry"] = mapping(shape(feature["geometry"]))
        feature["reason"] = "bench"
        req = urllib.request.Request(
            f"{base}/collections/grid/items/{code}",
            data=json.dumps(feature).encode(),
            method="PUT",
            headers={"Content-Type": "application/json", "If-Match": etag, "Authorization": auth},
        )
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=600) as r:
            r.read()
        times.append(time.perf_counter() - t)
    print(
        f"saves: {len(times)}, p50 {pct(times, 50):.0f} ms, p95 {pct(times, 95):.0f} ms "
        f"(target p95 < 300 ms); each: {' '.join(f'{t * 1000:.0f}' for t in times)}"
    )
    t = time.perf_counter()
    near = wait_for_check(base, after=0.5)
    print(
        f"the check after the saves, near the saved cells: {near:.2f} s "
        f"(done {time.perf_counter() - t:.1f} s after the last save, which waits 2 s for "
        f"saves to pause); the whole dataset's first check {whole_check:.1f} s"
    )
    if not dataset.startswith("postgres"):
        copy = WORK / "whole.gpkg"
        shutil.copyfile(dataset, copy)
        whole = open_store(copy)
        layer = whole.read_layer("grid")
        t = time.perf_counter()
        whole.write_layer("grid", layer)
        print(f"reference, the old whole-file save of the grid: {time.perf_counter() - t:.1f} s")
    print(f"resident after: {rss_mb(proc.pid):.0f} MB")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=150_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--saves", type=int, default=20)
    ap.add_argument("--postgis", default=None, help="a PostGIS URL to measure as well")
    args = ap.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    datasets = build(args.cells, WORK / "province.gpkg", args.postgis)
    print(f"built {args.cells} cells in {time.perf_counter() - t:.0f} s: {', '.join(datasets)}")
    procs: list = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for i, dataset in enumerate(datasets):
            measure(dataset, args, procs, WORK / f"overviews-{i}")
            for proc in list(procs):
                stop(proc, procs)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
