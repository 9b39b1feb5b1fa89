"""Run a vectorised shapely function over chunks of its input arrays on several threads.

Shapely releases the GIL inside GEOS, so chunks of one large call run truly in parallel.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["threaded"]

_MIN_CHUNK = 20_000  # below this, threads cost more than they give


def threaded(func, *arrays, workers: int | None = None, **kwargs) -> np.ndarray:
    """``func(*arrays, **kwargs)`` computed in chunks on ``workers`` threads (default:
    the machine's cores, or ``GRIDMAP_THREADS``). Arrays must have equal length."""
    n = len(arrays[0])
    workers = workers or int(os.environ.get("GRIDMAP_THREADS", 0)) or os.cpu_count() or 1
    if workers == 1 or n < 2 * _MIN_CHUNK:
        return func(*arrays, **kwargs)
    bounds = np.linspace(0, n, min(workers, n // _MIN_CHUNK) + 1).astype(int)
    with ThreadPoolExecutor(len(bounds) - 1) as pool:
        parts = pool.map(
            lambda ab: func(*(a[ab[0] : ab[1]] for a in arrays), **kwargs),
            zip(bounds[:-1], bounds[1:]),
        )
        return np.concatenate(list(parts))
