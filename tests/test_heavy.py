"""Expensive analyses cannot stall the service: a few at a time, a hard time limit, reads
unaffected (issue 17.2). The service runs in a real threaded server, as in production."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SAMPLE, serve_in_thread
from web import create_app

# The longest analysis the sample offers: new cells for every community of street
# 540102001, 1.5–5 s in its child process depending on the machine (a siting takes under
# a second since HiGHS). The tests time it first and set their limits from that.
LONG = "/proposal?street=540102001"


def _get(url):
    """(status, headers, JSON body, seconds) of a GET."""
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.headers, json.loads(r.read()), time.perf_counter() - t
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read()), time.perf_counter() - t


@pytest.fixture(scope="module")
def served():
    """(url, the app's HeavyJobs) of the sample in a real threaded server."""
    app = create_app({"DATASET": str(SAMPLE), "TESTING": True, "HEAVY_SLOTS": 2, "HEAVY_QUEUE": 1})
    app.config["PROPOSAL_SECONDS"] = 20
    app.extensions["gridmap"].report()
    app.extensions["gridmap"].access()
    jobs = app.extensions["gridmap.heavy"]
    jobs.wait = 0.3
    url, server = serve_in_thread(app, threads=16)
    status, _, body, took = _get(url + LONG)  # alone: how long the long analysis takes here
    assert status == 200, body
    assert took > 1.0, f"the long analysis took {took:.2f} s: too short to test with"
    yield url, jobs, app, took
    server.close()


def test_a_run_is_stopped_at_its_time_limit(served):
    """The time limit caps the whole job, not only a solver inside it (a siting of 1,747
    candidates for p=50 took 116 s with time_limit=60 when it capped only CBC)."""
    url, _, app, took = served
    limit = round(took / 3, 1)
    app.config["PROPOSAL_SECONDS"] = limit
    try:
        status, _, body, seconds = _get(url + LONG)
    finally:
        app.config["PROPOSAL_SECONDS"] = 20
    assert status == 503 and body["error"] == "took_too_long", body
    assert seconds < limit + 1.0
    assert f"{limit:g} s" in body["message"]["en"] and f"{limit:g} 秒" in body["message"]["zh"]


def test_heavy_jobs_wait_their_turn_and_reads_go_on(served):
    """Two long analyses take both slots; the next asks wait briefly, then are told the
    service is busy (503, Retry-After); item pages meanwhile answer as fast as ever."""
    service, jobs, _, took = served
    results = {}

    def analysis(n):
        results[n] = _get(service + LONG)

    runs = [threading.Thread(target=analysis, args=(n,)) for n in range(2)]
    for t in runs:
        t.start()
    assert _until(lambda: jobs.running == 2, 5) is not None, "the runs did not start"
    jobs.wait = took / 20  # three asks refused well before the runs end
    try:
        extra = [_get(service + LONG) for _ in range(3)]
    finally:
        jobs.wait = 0.3
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
        f"reads slowed by the analyses: p50 {p50:.3f} s, p99 {p99:.3f} s"
    )
    for status, _, body, seconds in results.values():
        assert status == 200 or body["error"] == "took_too_long", body
        assert seconds < 20 + 3
    # the slots are free again
    assert _get(service + "/coverage?kind=police_post")[0] == 200


def _descendants() -> int:
    """How many processes descend from this one (the analyses' children among them)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        parents[int(stat.parent.name)] = int(fields[1])
    mine, grew = {os.getpid()}, True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in mine} - mine
        mine |= more
        grew = bool(more)
    return len(mine) - 1


def _ask_and_hang_up(url: str, path: str) -> socket.socket:
    """Send a GET for ``path`` on a raw connection and return it, unanswered."""
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)))
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return conn


def _until(condition, seconds: float) -> float | None:
    """Seconds until ``condition()`` holds; None if it did not within ``seconds``."""
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        if condition():
            return time.perf_counter() - t
        time.sleep(0.02)
    return None


def test_a_client_that_hangs_up_stops_its_analysis(served):
    """An analysis whose client closes the connection is stopped: its child process
    is killed and its slot is free within a second, not at its 20 s time limit; a client
    that hangs up while waiting for a slot leaves the queue."""
    url, jobs, _, _ = served
    before = _descendants()
    long_run = LONG
    runs = [_ask_and_hang_up(url, long_run) for _ in range(2)]
    assert _until(lambda: jobs.running == 2 and _descendants() >= before + 2, 10), (
        "the runs did not start"
    )
    jobs.wait = 20.0  # a third ask waits for a slot
    try:
        waiting = _ask_and_hang_up(url, long_run)
        assert _until(lambda: jobs.waiting == 1, 5) is not None
        waiting.close()
        assert _until(lambda: jobs.waiting == 0, 1.0) is not None, "the waiter kept its place"
        assert jobs.running == 2
        for conn in runs:
            conn.close()
        freed = _until(lambda: jobs.running == 0, 1.0)
        assert freed is not None, f"{jobs.running} runs went on after their clients left"
        assert _until(lambda: _descendants() <= before, 2.0) is not None, (
            "the runs' child processes were not killed"
        )
    finally:
        jobs.wait = 0.3
    # the slots serve the next client at once (it would wait 0.3 s, then be told "busy")
    status, _, body, _ = _get(url + "/coverage?kind=police_post")
    assert status == 200, body
