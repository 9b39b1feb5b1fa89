"""Benchmark: gridmap's items API against pygeoapi serving the same GeoPackage.

    python -m tests.benchmarks.bench_api [--cells 100000] [--clients 50] [--requests 2000]

A GeoPackage of streets ⊃ communities ⊃ ``--cells`` grid cells (``tests.tilings``, EPSG:4490,
written by ``layers.storage``; cached in /tmp/gridmap-bench/) is served by two servers on
loopback, each on waitress with 16 threads: gridmap (``python -m web``), and pygeoapi reading
the same file's ``grid`` layer with its OGR provider (GDAL's GeoPackage driver, R-tree index;
the SQLiteGPKG provider needs ``sqlite3.enable_load_extension``, which this Python lacks).
pygeoapi's config and OpenAPI document are generated there too. Benchmark-only dependencies,
not in requirements.txt: pygeoapi, aiohttp, GDAL bindings for Debian's libgdal
(``apt-get install libgdal-dev && pip install GDAL==$(gdal-config --version)``).

Both get the same seeded ``--requests`` ``GET /collections/grid/items?bbox=…&limit=100``
(bboxes ≈ 1 km × 1 km inside the extent; pygeoapi also ``f=json``), and gridmap the same
bboxes with a CQL2 filter (``filter=households > 300``: pygeoapi's OGR provider takes no
CQL2, so its bbox query is the reference for both), from ``--clients``
concurrent aiohttp clients (keep-alive, 60 s timeout) after an untimed warm-up of one request
per client; bodies are checked afterwards (FeatureCollection, same feature count per bbox).
Prints latency percentiles, req/s, errors, server and client CPU side by side, then gridmap's
``GET /lookup`` under the same load (pygeoapi has no equivalent). Clients and servers share
the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import numpy as np
import yaml

CACHE = Path("/tmp/gridmap-bench")
THREADS = 16  # server worker threads, the same for both (gridmap's default)


def build_dataset(cells: int) -> Path:
    path = CACHE / f"hierarchy-{cells}.gpkg"
    if path.exists():
        print(f"dataset: {path} (cached)")
        return path
    from layers.storage import open_store
    from tests.tilings import add_noise, hierarchy

    t = time.perf_counter()
    CACHE.mkdir(parents=True, exist_ok=True)
    building = CACHE / f"building-{cells}-{os.getpid()}.gpkg"
    store = open_store(building)
    for seed, (name, gdf) in enumerate(zip(("street", "community", "grid"), hierarchy(cells)), 1):
        store.write_layer(name, add_noise(gdf, seed=seed).to_crs(4490))
    os.replace(building, path)
    building.with_name(f".{building.name}.lock").unlink(missing_ok=True)
    print(f"dataset: {path} (built in {time.perf_counter() - t:.0f} s)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:  # raises OSError unless 2xx
        return json.load(r)


def start(cmd: list[str], env: dict, log: Path, ready_url: str, procs: list, timeout=900):
    """Start a server in its own process group; wait until ``ready_url`` answers."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    procs.append(proc)
    t = time.monotonic()
    while time.monotonic() < t + timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{' '.join(cmd)} exited: {log.read_text()[-3000:]}")
        try:
            get_json(ready_url)
            return proc
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"{ready_url} not ready after {timeout} s; see {log}")


def stop(procs: list) -> None:
    """SIGTERM each server's process group, SIGKILL whatever is left after 10 s."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def family(pid: int) -> list[int]:
    """``pid`` and its child processes (a server's worker processes)."""
    out = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue  # ended meanwhile
    return out


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its child processes."""
    total = 0
    for p in family(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def pygeoapi_config(gpkg: Path, port: int, extent: list[float]) -> dict:
    here = f"http://127.0.0.1:{port}"
    contact = dict.fromkeys(
        (
            "name",
            "position",
            "address",
            "city",
            "stateorprovince",
            "country",
            "phone",
            "fax",
            "email",
            "url",
            "hours",
            "instructions",
            "role",
        ),
        "-",
    )
    ident = {
        "title": "bench",
        "description": "-",
        "keywords": ["-"],
        "url": here,
        "terms_of_service": here,
    }
    provider = {
        "type": "feature",
        "name": "OGR",
        "id_field": "code",
        "layer": "grid",
        "data": {
            "source_type": "GPKG",
            "source": str(gpkg),
            "source_capabilities": {"paging": True},
            # pyogrio's newer GDAL wrote GPKG 1.4: GDAL 3.6 reads it, but
            # would log a warning on every open
            "gdal_ogr_options": {"GPKG_WARN_UNRECOGNIZED_APPLICATION_ID": "NO"},
        },
    }
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": here,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "pretty_print": False,
            "limits": {"default_items": 100, "max_items": 10_000},
            "map": {"url": f"{here}/{{z}}/{{x}}/{{y}}.png", "attribution": "-"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": ident,
            "license": {"name": "-", "url": here},
            "provider": {"name": "-", "url": here},
            "contact": contact,
        },
        # EPSG:4490 lon/lat served as CRS84 untransformed, as gridmap does (< 1 m apart)
        "resources": {
            "grid": {
                "type": "collection",
                "title": "grid",
                "description": "网格",
                "keywords": ["grid"],
                "links": [],
                "providers": [provider],
                "extents": {
                    "spatial": {
                        "bbox": extent,
                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                    }
                },
            }
        },
    }


def bboxes(extent, n: int, seed: int, size_m: float = 1000.0) -> list[str]:
    """``n`` bboxes of about ``size_m`` × ``size_m`` inside ``extent``, as bbox= strings."""
    x0, y0, x1, y1 = extent
    h = size_m / 111_320.0
    w = h / math.cos(math.radians((y0 + y1) / 2))
    rng = np.random.default_rng(seed)
    xs, ys = rng.uniform(x0, x1 - w, n), rng.uniform(y0, y1 - h, n)
    return [f"{x:.6f},{y:.6f},{x + w:.6f},{y + h:.6f}" for x, y in zip(xs, ys)]


async def _fetch_all(urls: list[str], clients: int):
    bodies, lat = [None] * len(urls), [math.nan] * len(urls)
    todo = iter(range(len(urls)))  # shared: each index is taken by exactly one client

    async def client(session):
        for i in todo:
            t = time.perf_counter()
            try:
                async with session.get(urls[i]) as r:
                    body = await r.read()
                ok = r.status == 200
                bodies[i] = body if ok else RuntimeError(f"HTTP {r.status}: {body[:200]}")
            except Exception as err:  # noqa: BLE001 - every failure is counted
                bodies[i] = err
            lat[i] = time.perf_counter() - t

    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as s:
        await asyncio.gather(*(client(s) for _ in range(clients)))
    return bodies, lat


def load(urls: list[str], clients: int, server_pid: int, check) -> dict:
    """GET every URL once from ``clients`` concurrent clients, then check every body."""
    srv, cli, t = cpu_seconds(server_pid), time.process_time(), time.perf_counter()
    bodies, lat = asyncio.run(_fetch_all(urls, clients))
    wall = time.perf_counter() - t
    srv, cli = cpu_seconds(server_pid) - srv, time.process_time() - cli
    counts, errors = [None] * len(urls), []
    for i, body in enumerate(bodies):
        try:
            if isinstance(body, Exception):
                raise body
            counts[i] = check(json.loads(body))
        except Exception as err:  # noqa: BLE001
            errors.append(f"{urls[i]}: {type(err).__name__}: {str(err)[:200]}")
    ok = np.array([x for x, c in zip(lat, counts) if c is not None]) * 1000
    p50, p90, p99 = np.percentile(ok, [50, 90, 99]) if len(ok) else [math.nan] * 3
    return {
        "p50": p50,
        "p90": p90,
        "p99": p99,
        "rps": len(ok) / wall,
        "errors": errors,
        "counts": counts,
        "srv": 100 * srv / wall,
        "cli": 100 * cli / wall,
    }


def items_urls(base: str, boxes: list[str], extra: str) -> list[str]:
    return [f"{base}/collections/grid/items?bbox={b}&limit=100{extra}" for b in boxes]


def lookup_areas(doc) -> int:
    return len(doc["areas"])  # a missing key counts as an error


CQL2 = "households > 300"


def filtered_count(doc) -> int:
    """Features of a CQL2-filtered page, each checked to satisfy the filter."""
    n = feature_count(doc)
    assert all(f["properties"]["households"] > 300 for f in doc["features"]), "filter ignored"
    return n


def feature_count(doc) -> int:
    if doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise ValueError(f"not a GeoJSON FeatureCollection: {str(doc)[:100]}")
    return len(doc["features"])


def table(title: str, count: str, rows: dict) -> None:
    print(
        f"{title:27} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>6} "
        f"{count:>7} {'server':>7} {'client':>7}"
    )
    for name, r in rows.items():
        c = [x for x in r["counts"] if x is not None]
        print(
            f"{name:27} {r['p50']:8.1f} {r['p90']:8.1f} {r['p99']:8.1f} {r['rps']:8.1f} "
            f"{len(r['errors']):6d} {np.mean(c) if c else math.nan:7.1f} "
            f"{r['srv']:6.0f}% {r['cli']:6.0f}%"
        )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import pygeoapi
    from osgeo import gdal

    gpkg = build_dataset(args.cells)
    g_port, p_port = free_port(), free_port()
    g_url, p_url = f"http://127.0.0.1:{g_port}", f"http://127.0.0.1:{p_port}"
    procs: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops them
    try:
        t = time.perf_counter()
        g_proc = start(
            [sys.executable, "-m", "web", "--port", str(g_port), "--threads", str(THREADS)],
            {"DATASET": str(gpkg)},
            CACHE / "gridmap.log",
            f"{g_url}/collections",
            procs,
        )
        print(f"gridmap:  {g_url} ready in {time.perf_counter() - t:.0f} s")
        extent = get_json(f"{g_url}/collections/grid")["extent"]["spatial"]["bbox"][0]

        cfg, oas = CACHE / "pygeoapi-config.yml", CACHE / "pygeoapi-openapi.yml"
        cfg.write_text(yaml.safe_dump(pygeoapi_config(gpkg, p_port, extent), allow_unicode=True))
        env = {"PYGEOAPI_CONFIG": str(cfg), "PYGEOAPI_OPENAPI": str(oas)}
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from pygeoapi import cli; cli()",
                "openapi",
                "generate",
                str(cfg),
                "--output-file",
                str(oas),
            ],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            timeout=300,
        )
        t = time.perf_counter()
        p_proc = start(
            [
                sys.executable,
                "-m",
                "waitress",
                f"--listen=127.0.0.1:{p_port}",
                f"--threads={THREADS}",
                "pygeoapi.flask_app:APP",
            ],
            env,
            CACHE / "pygeoapi.log",
            f"{p_url}/collections/grid?f=json",
            procs,
        )
        print(
            f"pygeoapi: {p_url} ready in {time.perf_counter() - t:.0f} s (pygeoapi "
            f"{pygeoapi.__version__}, OGR provider, GDAL {gdal.__version__}, same file)"
        )

        boxes = bboxes(extent, args.requests, args.seed)
        warm = bboxes(extent, args.clients, args.seed + 1)
        runs = {}
        for name, base, proc, extra in (
            ("gridmap", g_url, g_proc, ""),
            ("pygeoapi (OGR, same GPKG)", p_url, p_proc, "&f=json"),
        ):
            load(items_urls(base, warm, extra), args.clients, proc.pid, feature_count)
            runs[name] = load(items_urls(base, boxes, extra), args.clients, proc.pid, feature_count)
        cql = "&filter=" + urllib.parse.quote(CQL2)
        load(items_urls(g_url, warm, cql), args.clients, g_proc.pid, filtered_count)
        filtered = load(items_urls(g_url, boxes, cql), args.clients, g_proc.pid, filtered_count)
        x0, y0, x1, y1 = extent
        rng, n = np.random.default_rng(args.seed), args.requests + args.clients
        urls = [
            f"{g_url}/lookup?lon={x:.6f}&lat={y:.6f}"
            for x, y in zip(rng.uniform(x0, x1, n), rng.uniform(y0, y1, n))
        ]
        load(urls[args.requests :], args.clients, g_proc.pid, lookup_areas)  # warm-up
        look = load(urls[: args.requests], args.clients, g_proc.pid, lookup_areas)
    finally:
        stop(procs)

    print(
        f"\n{args.requests} requests per server, {args.clients} concurrent clients, "
        f"{args.cells:,} grid cells, bbox ≈ 1 km × 1 km, limit=100; CPU in % of one core"
    )
    table("GET /collections/grid/items", "feat/rq", runs)
    g, p = runs.values()
    print(
        f"{'ratio pygeoapi/gridmap':27} {p['p50'] / g['p50']:7.1f}× {p['p90'] / g['p90']:7.1f}× "
        f"{p['p99'] / g['p99']:7.1f}×   req/s gridmap/pygeoapi {g['rps'] / p['rps']:.1f}×"
    )
    print()
    table(f"GET …/items?bbox=…&filter={CQL2} (gridmap)", "feat/rq", {"gridmap CQL2": filtered})
    print(
        f"{'ratio to pygeoapi bbox':27} {p['p50'] / filtered['p50']:7.1f}× "
        f"{p['p90'] / filtered['p90']:7.1f}× {p['p99'] / filtered['p99']:7.1f}×   req/s gridmap "
        f"CQL2/pygeoapi bbox {filtered['rps'] / p['rps']:.1f}×"
    )
    both = [(a, b) for a, b in zip(g["counts"], p["counts"]) if a is not None and b is not None]
    diff = [abs(a - b) for a, b in both if a != b]
    print(
        f"same bbox, different feature count: {len(diff)} of {len(both)} bboxes"
        + (f" (largest difference {max(diff)})" if diff else "")
    )
    print()
    table("GET /lookup (gridmap only)", "areas", {"gridmap": look})
    for name, r in {**runs, "gridmap CQL2": filtered, "gridmap /lookup": look}.items():
        for e in r["errors"][:3]:
            print(f"{name} error: {e}")


if __name__ == "__main__":
    main()
