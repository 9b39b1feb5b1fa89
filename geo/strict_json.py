"""Strict JSON out: NaN and infinities become ``null``, never the invalid ``NaN`` token.

Python's :func:`json.dumps` writes ``NaN``/``Infinity`` by default, which no strict JSON
parser (browsers, ``jq``, most languages) accepts. Everything gridmap writes as JSON goes
through :func:`dumps`, which turns non-finite numbers (and pandas' missing values) into
``null`` first and then refuses any it missed (``allow_nan=False``).

>>> dumps({"kind": float("nan"), "area_m2": [1.5, float("inf")]})
'{"kind": null, "area_m2": [1.5, null]}'
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

__all__ = ["finite", "dumps", "coordinates"]


def finite(obj):
    """``obj`` with NaN, ±inf, ``pd.NA`` and ``NaT`` replaced by None (recursively through
    dicts, lists and tuples); numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [finite(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def dumps(obj, **kwargs) -> str:
    """:func:`json.dumps` of :func:`finite` ``(obj)``: strict JSON, Chinese kept as is."""
    kwargs.setdefault("ensure_ascii", False)
    return json.dumps(finite(obj), allow_nan=False, **kwargs)


def coordinates(xy) -> str:
    """JSON text of an (n × 2) array of coordinates, ``[x,y],[x,y],…`` without enclosing
    brackets and each number as :func:`json.dumps` writes it: pieces of a GeoJSON
    geometry's ``coordinates`` put together without building the geometry. ValueError
    for a non-finite coordinate.

    >>> coordinates(np.array([[91.1, 29.65], [91.2, 29.7]]))
    '[91.1,29.65],[91.2,29.7]'
    """
    xy = np.asarray(xy, dtype=float)
    if not np.isfinite(xy).all():
        raise ValueError("a coordinate is not a finite number")
    return ",".join([f"[{x!r},{y!r}]" for x, y in xy.tolist()])
