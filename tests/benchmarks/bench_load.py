"""Benchmark: reads under load while planners save and heavy analyses run, then a soak.

    python -m tests.benchmarks.bench_load [--clients 50] [--requests 3000] [--soak 600]
                                          [--workers 1]

The service (``python -m web``, waitress, 16 threads per worker process, ``--workers``
processes) serves a copy of the bundled sample with 4 planner accounts. ``--clients`` concurrent aiohttp clients (keep-alive) send the same
seeded ``--requests`` reads — item pages (``/collections/grid/items?bbox=…&limit=100``) and
``/lookup`` at random points — in four conditions, each measured in this run:

1. alone: the reference;
2. while 4 planners save (each: GET a cell of its own community, PUT it back with one more
   household and its ETag, again and again; the save latency is reported);
3. while heavy analyses run (2 threads asking ``/siting?p=5`` over and over — both slots
   taken, so further asks are refused with 503 and ``Retry-After``);
4. all of it at once.

Then a soak of ``--soak`` seconds of condition 4, sampling the server's resident memory
(RSS, /proc) every 10 s; growth is measured from the end of the first minute (warm-up).
Benchmark-only dependency, not in requirements.txt: aiohttp.

The issue's figures on the old main, for comparison: ``/lookup`` at 50 connections 11.6
req/s, p50 4.1 s, p99 5.8 s; an items request waited 268.6 s behind 16 ``/siting?p=5``.
Targets: lookup ≥ 500 req/s and p99 < 100 ms; items p99 < 200 ms while heavy jobs run;
soak RSS growth < 5 %.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from tests.benchmarks.bench_api import (
    bboxes,
    family,
    feature_count,
    free_port,
    get_json,
    load,
    lookup_areas,
    start,
    stop,
    table,
)
from tests.conftest import http_call as _call

ROOT = Path(__file__).resolve().parents[2]
WORK = Path("/tmp/gridmap-bench-load")
PLANNERS = 4
PASSWORD = "bench-secret"


def rss_mb(pid: int) -> float:
    """Resident memory (MB) of the server: the process and its workers."""
    total = 0.0
    for p in family(pid):
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(ln.split()[1]) / 1024 for ln in lines if ln.startswith("VmRSS:"))
    return total


class Background:
    """Threads doing one kind of work until stopped, recording latency and statuses."""

    def __init__(self, work, n: int):
        self.work, self.n = work, n
        self.times: list[float] = []
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(k,)) for k in range(n)]

    def _run(self, k):
        while not self._stop.is_set():
            t = time.perf_counter()
            status = self.work(k)
            if status == 200:
                self.times.append(time.perf_counter() - t)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status != 200:
                time.sleep(0.5)

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join()

    def summary(self) -> str:
        if not self.times:
            return f"no success; statuses {self.statuses}"
        p50, p95 = np.percentile(np.array(self.times) * 1000, [50, 95])
        return f"{len(self.times)} ok, p50 {p50:.0f} ms, p95 {p95:.0f} ms; statuses {self.statuses}"


def planners(base: str, codes: list[str]) -> Background:
    def save(k):
        item = f"{base}/collections/grid/items/{codes[k]}"
        status, headers, feature = _call("GET", item)
        feature["properties"] = {"households": feature["properties"]["households"] + 1}
        token = base64.b64encode(f"planner{k}:{PASSWORD}".encode()).decode()
        status, _, _ = _call(
            "PUT",
            item,
            feature,
            {"If-Match": headers["ETag"], "X-Reason": "bench", "Authorization": f"Basic {token}"},
        )
        return status

    return Background(save, PLANNERS)


def heavy(base: str) -> Background:
    return Background(lambda k: _call("GET", f"{base}/siting?kind=police_post&p=5")[0], 2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--soak", type=float, default=600, help="seconds (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1, help="python -m web --workers")
    args = ap.parse_args(argv)

    WORK.mkdir(parents=True, exist_ok=True)
    dataset = WORK / "city.gpkg"
    shutil.copyfile(ROOT / "data" / "lhasa.gpkg", dataset)
    from layers.storage import open_store
    from web.auth import add_user

    store = open_store(dataset)
    for k in range(PLANNERS):
        add_user(store, f"planner{k}", "planner", PASSWORD)
    grid = store.read_layer("grid")
    unique = grid[~grid["code"].duplicated(keep=False)]
    codes = list(unique.groupby("parent_code")["code"].first().astype(str))[:PLANNERS]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        t = time.perf_counter()
        proc = start(
            [sys.executable, "-m", "web", "--port", str(port), "--workers", str(args.workers)],
            {"DATASET": str(dataset)},
            WORK / "gridmap.log",
            f"{base}/collections",
            procs,
        )
        log = WORK / "gridmap.log"
        while log.read_text().count("serving") < args.workers:  # every worker has loaded
            time.sleep(0.5)
        print(
            f"gridmap: {base} ready in {time.perf_counter() - t:.1f} s; {dataset}; "
            f"{args.workers} worker process(es)"
        )
        get_json(f"{base}/findings?rule=gap")  # the check has run
        extent = get_json(f"{base}/collections/grid")["extent"]["spatial"]["bbox"][0]
        boxes = bboxes(extent, args.requests, args.seed, size_m=500)
        rng = np.random.default_rng(args.seed)
        x0, y0, x1, y1 = extent
        points = zip(rng.uniform(x0, x1, args.requests), rng.uniform(y0, y1, args.requests))
        items = [f"{base}/collections/grid/items?bbox={b}&limit=100" for b in boxes]
        lookups = [f"{base}/lookup?lon={x:.6f}&lat={y:.6f}" for x, y in points]
        load(items[:100] + lookups[:100], args.clients, proc.pid, lambda d: 1)  # warm up

        def measure(title):
            rows = {
                f"items, {title}": load(items, args.clients, proc.pid, feature_count),
                f"lookup, {title}": load(lookups, args.clients, proc.pid, lookup_areas),
            }
            table(f"{args.clients} clients", "count", rows)
            for r in rows.values():
                for e in r["errors"][:3]:
                    print("   error:", e)
            return rows

        measure("alone")
        with planners(base, codes) as p:
            measure("4 planners saving")
        print(f"   saves while measured: {p.summary()}")
        with heavy(base) as h:
            time.sleep(2)
            measure("2 sitings running")
        print(f"   siting runs: {h.summary()}")
        with planners(base, codes) as p, heavy(base) as h:
            measure("saves + sitings")
            if args.soak:
                samples, t0 = [], time.perf_counter()
                while time.perf_counter() - t0 < args.soak:
                    load(items[:500] + lookups[:500], args.clients, proc.pid, lambda d: 1)
                    samples.append((time.perf_counter() - t0, rss_mb(proc.pid)))
                after = [m for s, m in samples if s >= 60] or [samples[-1][1]]
                warm, end = after[0], samples[-1][1]
                print(
                    f"soak {args.soak:.0f} s: RSS {samples[0][1]:.0f} MB at start, {warm:.0f} MB "
                    f"after the first minute, {end:.0f} MB at the end: growth "
                    f"{100 * (end - warm) / warm:+.1f} % (target < 5 %)"
                )
        print(f"   saves: {p.summary()}\n   siting runs: {h.summary()}")
        print(
            "old main (the issue): lookup at 50 connections 11.6 req/s, p99 5.8 s; an items "
            "request waited 268.6 s behind 16 sitings"
        )
    finally:
        stop(procs)


if __name__ == "__main__":
    main()
