"""Benchmark: 16 planners saving different cells at once (issue 17.10), on both backends.

    python -m tests.benchmarks.bench_planners [--planners 16] [--rounds 5]

The service (waitress, planners + 4 threads, in this process) serves a copy of the
sample, as a GeoPackage and, when a PostGIS server is reachable, in a PostGIS schema. Each
of ``--planners`` accounts edits one cell of its own community (GET for the ETag, a
preview as the map makes, then PUT with If-Match); the PUTs start together and are timed.
Printed per backend, measured in the same run: one planner saving alone (the reference:
what a save costs with nobody else saving), then each round of all planners at once,
p50/p95/max, next to the issue's target (p95 < 1 s) and its figures for the old main
(24–28 s p50, up to 84 s).
"""

from __future__ import annotations

import argparse
import base64
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from layers.storage import open_store
from tests.conftest import (
    PG_URL,
    SAMPLE,
    _postgis_unavailable,
    copy_sample,
    schema_url,
    serve_in_thread,
)
from tests.conftest import http_call as _call
from web import create_app
from web.auth import add_user

PASSWORD = "bench-secret"


def _datasets(work: Path):
    """(name, url, cleanup) of the sample on each backend this machine has."""
    path = work / "city.gpkg"
    shutil.copyfile(SAMPLE, path)
    yield "GeoPackage", str(path), lambda: None
    reason = _postgis_unavailable()
    if reason:
        print(f"PostGIS: not measured ({reason})")
        return
    import sqlalchemy as sa

    from layers.storage.postgis import _engine_url

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    url = copy_sample(schema_url(schema))

    def drop():
        engine = sa.create_engine(_engine_url(PG_URL))
        with engine.begin() as con:
            con.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()

    yield "PostGIS", url, drop


def _auth(n: int) -> dict:
    token = base64.b64encode(f"p{n}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _round(base: str, codes: list[str], planners: int) -> list[float]:
    """Seconds of each planner's PUT, all started together; raises on a refused save."""
    times, errors = [], []
    barrier = threading.Barrier(planners)

    def planner(n):
        item = f"{base}/collections/grid/items/{codes[n]}"
        _, headers, feature = _call("GET", item)
        feature["properties"] = {"households": feature["properties"]["households"] + 1}
        _call("POST", f"{item}/preview", feature, _auth(n))
        barrier.wait()
        t = time.perf_counter()
        status, _, body = _call(
            "PUT", item, feature, {"If-Match": headers["ETag"], "X-Reason": "bench", **_auth(n)}
        )
        times.append(time.perf_counter() - t)
        if status != 200:
            errors.append((status, body))

    threads = [threading.Thread(target=planner, args=(n,)) for n in range(planners)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"saves refused: {errors[:3]}")
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--planners", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for name, url, cleanup in _datasets(Path(tmp)):
            try:
                store = open_store(url)
                for n in range(args.planners):
                    add_user(store, f"p{n}", "planner", PASSWORD)
                app = create_app({"DATASET": url, "TESTING": True})
                base, server = serve_in_thread(app, threads=args.planners + 4)
                app.extensions["gridmap"].report()  # a service at work has checked its data
                grid = app.extensions["gridmap"].layers["grid"]
                unique = grid[~grid["code"].duplicated(keep=False)]
                codes = list(unique.groupby("parent_code")["code"].first().astype(str))
                codes = codes[: args.planners]
                alone = [_round(base, codes[:1], 1)[0] for _ in range(5)]
                print(f"{name}: one planner alone (reference) p50 {np.median(alone):.2f} s")
                for k in range(args.rounds):
                    times = _round(base, codes, args.planners)
                    p50, p95 = np.percentile(times, [50, 95])
                    print(
                        f"{name}: {args.planners} at once, round {k + 1}: p50 {p50:.2f} s, "
                        f"p95 {p95:.2f} s, max {max(times):.2f} s "
                        f"({p95 / np.median(alone):.1f}× one alone; target p95 < 1 s; "
                        "old main 24–28 s p50, up to 84 s)"
                    )
                    time.sleep(1.0)  # the background check after a burst
                server.close()
            finally:
                cleanup()


if __name__ == "__main__":
    main()
