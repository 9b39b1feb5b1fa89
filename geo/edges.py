"""Polygon outlines as straight segments, and which segments two outlines share exactly.

Layers of a grid-management hierarchy are drawn from one another: a street's outline is
its communities' outer edges, a community's its cells'. Their shared edges are then the
*same* segments, coordinate for coordinate, and a hash of each segment finds them in
linear time, where a geometric test would compare every pair of polygons along their
whole outlines. Callers use this as a fast path and check, or fall back to geometry,
wherever the layers were digitised apart.
"""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["segments", "fingerprints"]


def segments(polygons) -> tuple[np.ndarray, np.ndarray]:
    """``(owner, seg)``: every segment of every ring of ``polygons`` (polygons,
    multipolygons, or the polygons in a collection) as an (n, 4) array ``x0, y0, x1,
    y1``, and the index of the geometry it bounds.

    >>> two = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 1)])
    >>> owner, seg = segments([two, shapely.box(0, 0, 1, 1)])
    >>> owner.tolist(), seg.shape
    ([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1], (12, 4))
    """
    parts, part_owner = shapely.get_parts(np.asarray(polygons, dtype=object), return_index=True)
    polygon = shapely.get_type_id(parts) == shapely.GeometryType.POLYGON  # not lines, points
    parts, part_owner = parts[polygon], part_owner[polygon]
    rings = shapely.get_rings(parts)
    ring_owner = np.repeat(part_owner, shapely.get_num_interior_rings(parts) + 1)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = np.flatnonzero(ring[1:] == ring[:-1])
    seg = np.empty((len(same), 4))
    seg[:, :2] = coords[same]
    seg[:, 2:] = coords[same + 1]
    return ring_owner[ring[same]], seg


def fingerprints(seg) -> np.ndarray:
    """One 64-bit hash per segment (rows ``x0, y0, x1, y1``), the same whichever way it
    runs; equal segments have equal hashes. Two different segments share one with odds
    of about 2⁻⁶⁴ a pair (one in 10⁷ for all the edges of a 150,000-cell province).

    >>> a = fingerprints(np.array([[0.0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 1, 2]]))
    >>> bool(a[0] == a[1]), bool(a[0] == a[2])
    (True, False)
    """
    bits = np.ascontiguousarray(seg, dtype=np.float64).view(np.uint64)
    start = _mix(_mix(bits[:, 0]) ^ bits[:, 1])
    end = _mix(_mix(bits[:, 2]) ^ bits[:, 3])
    return start + end  # wraps modulo 2⁶⁴; a sum, so either direction gives the same


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every bit of the input moves every bit of the output."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))
