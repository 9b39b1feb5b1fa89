"""Why a geometry in a user's file cannot be read, in the user's terms.

GEOS refuses a polygon whose ring is not closed or has fewer than four points, with a
message about ``LinearRing`` and nothing about which feature. The readers parse such
geometries as missing and ask :func:`wkb_problem` or :func:`wkt_problem` what is wrong
with each one, so the refusal can name the feature and the ring (in English and Chinese).

>>> wkt_problem("POLYGON ((91.1 29.65, 91.11 29.65))")[0]
'ring 1 has 2 points and is not closed (a ring needs at least 4 points, the last the same as the first)'
>>> wkt_problem("POLYGON ((0 0, 1 0, 1 1, 0 0))") is None
True
"""

from __future__ import annotations

import re
import struct

import numpy as np

__all__ = ["ring_problem", "wkb_problem", "wkt_problem"]

_NEED = "a ring needs at least 4 points, the last the same as the first"
_NEED_ZH = "环至少需要 4 个点，且最后一点与第一点相同"


def ring_problem(rings: list[np.ndarray]) -> tuple[str, str] | None:
    """(English, Chinese) of the first ring (a coordinate array each) that is too short
    or not closed, or None when every ring is usable."""
    for k, ring in enumerate(rings, 1):
        n = len(ring)
        if n == 0:
            continue
        closed = n > 1 and np.array_equal(ring[0, :2], ring[-1, :2], equal_nan=True)
        if n >= 4 and closed:
            continue
        if n == 1:
            return (
                f"ring {k} has a single point ({_NEED})",
                f"第 {k} 个环只有 1 个点（{_NEED_ZH}）",
            )
        if not closed:
            return (
                f"ring {k} has {n} point{'s' if n != 1 else ''} and is not closed ({_NEED})",
                f"第 {k} 个环有 {n} 个点且未闭合（{_NEED_ZH}）",
            )
        return (
            f"ring {k} has only {n} points ({_NEED})",
            f"第 {k} 个环只有 {n} 个点（{_NEED_ZH}）",
        )
    return None


def _wkb_rings(wkb: bytes) -> list[np.ndarray]:
    """The rings of a WKB Polygon or MultiPolygon (ISO or extended WKB, any dimension)."""
    rings: list[np.ndarray] = []

    def geometry(pos: int) -> int:
        order = "<" if wkb[pos] == 1 else ">"
        (code,) = struct.unpack_from(order + "I", wkb, pos + 1)
        pos += 5
        dims = 2 + bool(code & 0x80000000) + bool(code & 0x40000000)
        if code & 0x20000000:  # EWKB with an SRID
            pos += 4
        code &= 0x0FFFFFFF
        dims += {1: 1, 2: 1, 3: 2}.get(code // 1000, 0)
        base = code % 1000
        (count,) = struct.unpack_from(order + "I", wkb, pos)
        pos += 4
        if base == 6:  # MultiPolygon: a list of polygons
            for _ in range(count):
                pos = geometry(pos)
            return pos
        if base != 3:
            raise ValueError("not a polygon")
        for _ in range(count):
            (n,) = struct.unpack_from(order + "I", wkb, pos)
            pos += 4
            coords = np.frombuffer(wkb, dtype=order + "f8", count=n * dims, offset=pos)
            rings.append(coords.reshape(n, dims))
            pos += 8 * n * dims
        return pos

    geometry(0)
    return rings


def wkb_problem(wkb: bytes | None) -> tuple[str, str]:
    """(English, Chinese) of what makes ``wkb`` unreadable as a geometry."""
    try:
        found = ring_problem(_wkb_rings(bytes(wkb)))
    except (ValueError, struct.error, IndexError):
        found = None
    return found or (
        "its geometry cannot be read (a line or ring with too few points, or a damaged record)",
        "其几何图形无法读取（线或环的点数过少，或记录已损坏）",
    )


_GROUP = re.compile(r"\(([^()]*)\)")


def wkt_problem(text: str) -> tuple[str, str] | None:
    """(English, Chinese) of what is wrong with a polygon's WKT rings, or None."""
    if not re.match(r"\s*(MULTI)?POLYGON", text, re.IGNORECASE):
        return None
    rings = []
    for group in _GROUP.findall(text):
        try:
            points = [[float(v) for v in p.split()] for p in group.split(",") if p.strip()]
        except ValueError:
            return None
        rings.append(np.array([p[:2] for p in points], dtype=float).reshape(-1, 2))
    return ring_problem(rings)
