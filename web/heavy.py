"""Expensive analyses, bounded so that nobody — signed in or not — can stall the service.

- **A few at a time.** At most ``HEAVY_SLOTS`` expensive analyses run at once and at most
  ``HEAVY_QUEUE`` more wait for a slot (each for at most ``HEAVY_WAIT`` seconds). Beyond
  that the answer is 503 :class:`~geo.errors.Busy` with ``Retry-After``: the service says
  it is busy rather than letting requests pile up.
- **Out of the way of reads.** Siting and proposals build their models in pure Python,
  holding the interpreter lock for seconds; they run in a child process
  (:func:`run_isolated`), so reads in the service's threads go on at full speed.
- **A hard time limit.** A child process past its deadline is killed and the answer is a
  503 :class:`~geo.errors.TookTooLong`: the time limit caps the whole job, not only the
  solver inside it.
- **Nobody waiting, no work.** A client that closes its connection while its analysis
  waits for a slot or runs in a child gives the slot back within :data:`POLL_S` seconds:
  the child is killed and the request ends with :class:`~geo.errors.ClientGone` (499, which
  nobody receives). The server must say when a client has gone: waitress does with
  ``channel_request_lookahead`` set (``web.__main__.server_options``); elsewhere the
  work runs to its end.

Which analyses need sign-in: none of them. Staff locating service sites and officers
reading coverage work without accounts on an intranet, so the bounds above — the same for
everyone — are what protects the service, together with the work limits each endpoint
sets on its parameters (``p``, ``time_limit``, sites per what-if).
"""

from __future__ import annotations

import functools
import multiprocessing
import pickle
import threading
import time
from contextlib import contextmanager

from flask import current_app, has_request_context, request

from geo.errors import Busy, ClientGone, GridmapError, TookTooLong

__all__ = ["HeavyJobs", "heavy", "run_isolated", "client_gone"]

# seconds between looks at whether the client is still there
POLL_S = 0.2


def client_gone() -> bool:
    """True when the client of this request has closed its connection. False when the
    server cannot tell (see the module docstring) or outside a request."""
    if not has_request_context():
        return False
    check = request.environ.get("waitress.client_disconnected")
    return bool(check and check())


def _gone() -> ClientGone:
    return ClientGone(
        "the client closed the connection; the analysis was stopped",
        zh="客户端已断开连接，分析已停止",
    )


def _wait(ready, timeout: float) -> bool:
    """Call ``ready(seconds)`` in steps of :data:`POLL_S` until it returns True (→ True)
    or ``timeout`` seconds pass (→ False); :class:`~geo.errors.ClientGone` as soon as the
    client has gone."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if ready(max(0.0, min(POLL_S, left))):
            return True
        if client_gone():
            raise _gone()
        if left <= POLL_S:
            return False


class HeavyJobs:
    """The slots and queue of one app's expensive analyses (see the module docstring)."""

    def __init__(self, slots: int = 2, queue: int = 4, wait: float = 30.0):
        self.slots, self.queue, self.wait = slots, queue, wait
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.waiting = 0
        self.running = 0

    def _busy(self) -> Busy:
        retry = max(1, int(self.wait))
        return Busy(
            f"the service is busy with {self.running} analyses and {self.waiting} waiting; "
            f"ask again in {retry} s",
            zh=f"服务正忙：{self.running} 项分析正在运行，{self.waiting} 项在等待；请 {retry} 秒后重试",
            retry_after=retry,
        )

    @contextmanager
    def slot(self):
        """Hold one slot for the block; :class:`~geo.errors.Busy` when none frees up."""
        with self._lock:
            if self.waiting >= self.queue:
                raise self._busy()
            self.waiting += 1
        try:
            got = _wait(lambda s: self._free.acquire(timeout=s), self.wait)
        finally:
            with self._lock:
                self.waiting -= 1
        if not got:
            raise self._busy()
        with self._lock:
            self.running += 1
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1
            self._free.release()


def heavy(view):
    """Run ``view`` in one of the app's heavy-analysis slots (:class:`HeavyJobs`)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        with current_app.extensions["gridmap.heavy"].slot():
            return view(*args, **kwargs)

    wrapped.heavy = True  # the OpenAPI document says so
    return wrapped


def _child(conn, payload: bytes) -> None:
    """In the child process: run the pickled call, send back its result or error."""
    try:
        fn, args, kwargs = pickle.loads(payload)
        conn.send(("ok", fn(*args, **kwargs)))
    except GridmapError as err:
        conn.send(("error", err))
    except Exception as err:  # noqa: BLE001 - reported to the parent, which logs it
        conn.send(("crash", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()


_CONTEXT = multiprocessing.get_context("forkserver")  # no fork of a threaded server
# what the children import once, in the fork server, not each (tobler: 1.5 s; SciPy's
# MIP solver, for siting and the aligned layout: 0.25 s)
_CONTEXT.set_forkserver_preload(
    ["geo.access", "geo.network", "geo.proposals", "geo.realign", "networkx",
     "scipy.optimize", "tobler.area_weighted"]
)  # fmt: skip


def run_isolated(fn, *args, timeout: float, **kwargs):
    """``fn(*args, **kwargs)`` in a child process, killed after ``timeout`` seconds
    (:class:`~geo.errors.TookTooLong`). ``fn`` and its arguments must pickle; errors of
    the :mod:`geo.errors` tree come back as themselves."""
    payload = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
    here, there = _CONTEXT.Pipe(duplex=False)
    proc = _CONTEXT.Process(target=_child, args=(there, payload), daemon=True)
    started = time.monotonic()
    proc.start()
    there.close()
    try:
        if not _wait(here.poll, timeout):
            raise TookTooLong(
                f"the analysis took longer than its limit of {timeout:g} s and was stopped; "
                "ask for less (a smaller p, fewer candidates) or a longer time_limit",
                zh=f"分析超过 {timeout:g} 秒的时限，已停止；请减少规模（更小的 p、更少的候选点）"
                "或放宽 time_limit",
            )
        status, value = here.recv()
    except EOFError:
        raise TookTooLong(
            "the analysis stopped before it finished (out of memory?)",
            zh="分析未完成即中止（内存不足？）",
        ) from None
    finally:
        here.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
    if status == "error":
        raise value
    if status == "crash":
        current_app.logger.error(
            "isolated analysis failed after %.1f s: %s", time.monotonic() - started, value
        )
        raise RuntimeError(value)
    return value
