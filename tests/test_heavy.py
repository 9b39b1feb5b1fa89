"""Expensive analyses cannot stall the service: a few at a time, a hard time limit, reads
unaffected (issue 17.2). The service runs in a real threaded server, as in production."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from tests.conftest import SAMPLE, serve_in_thread
from web import create_app

SITING = "/siting?kind=police_post&p=5&time_limit={limit}"


def _get(url):
    """(status, headers, JSON body, seconds) of a GET."""
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.headers, json.loads(r.read()), time.perf_counter() - t
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read()), time.perf_counter() - t


@pytest.fixture(scope="module")
def service():
    app = create_app({"DATASET": str(SAMPLE), "TESTING": True, "HEAVY_SLOTS": 2, "HEAVY_QUEUE": 1})
    app.extensions["gridmap"].report()
    app.extensions["gridmap"].access()
    app.extensions["gridmap.heavy"].wait = 0.3
    url, server = serve_in_thread(app, threads=16)
    yield url
    server.close()


def test_a_run_is_stopped_at_its_time_limit(service):
    """The time limit caps the whole job (a lattice of 1,747 candidates for p=50 took
    116 s with time_limit=60, which capped only the solver)."""
    status, _, body, seconds = _get(
        service + "/siting?kind=police_post&p=50&candidates=lattice&time_limit=3"
    )
    assert status == 503 and body["error"] == "took_too_long", body
    assert seconds < 6
    assert "3 s" in body["message"]["en"] and "3 秒" in body["message"]["zh"]


def test_heavy_jobs_wait_their_turn_and_reads_go_on(service):
    """Two siting runs take both slots; the next asks wait briefly, then are told the
    service is busy (503, Retry-After); item pages meanwhile answer as fast as ever."""
    results = {}

    def siting(n):
        results[n] = _get(service + SITING.format(limit=8))

    runs = [threading.Thread(target=siting, args=(n,)) for n in range(2)]
    for t in runs:
        t.start()
    time.sleep(1.0)  # both runs hold their slots now
    extra = [_get(service + SITING.format(limit=8)) for _ in range(3)]
    for status, headers, body, _ in extra:
        assert status == 503 and body["error"] == "busy", body
        assert int(headers["Retry-After"]) >= 1
    reads = [
        _get(service + "/collections/grid/items?limit=50&offset=" + str(50 * (k % 10)))
        for k in range(60)
    ]
    for t in runs:
        t.join()
    assert all(r[0] == 200 for r in reads)
    # the old main made an items request wait 268.6 s; the p99 < 200 ms at 50
    # connections is measured by bench_load. Here, on a CI machine of 2 cores of which each
    # siting child takes one, the bounds leave room for the rest of the test run.
    p50, p99 = np.percentile([r[3] for r in reads], [50, 99])
    assert p50 < 0.1 and p99 < 0.5, (
        f"reads slowed by the siting runs: p50 {p50:.3f} s, p99 {p99:.3f} s"
    )
    for status, _, body, seconds in results.values():
        assert status == 200 or body["error"] == "took_too_long", body
        assert seconds < 8 + 3
    # the slots are free again
    assert _get(service + "/coverage?kind=police_post")[0] == 200
