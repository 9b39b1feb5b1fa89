"""Areal interpolation of grid-cell figures onto other areas, intersecting only the cells
an area's outline cuts.

Each cell's figures (households, population) are spread uniformly over the cell, so an
area holds Σ figure × area(cell ∩ area) / area(cell) — tobler's ``area_interpolate``
with ``allocate_total=False``. Done pair by pair, that is one polygon intersection per
(area, cell) pair: 330,000 of them for the streets and police pieces of a 100,000-cell
city. But areas in a grid-management hierarchy are mostly *made of* cells: a street's
outline runs along its cells' edges, so most cells lie wholly inside or wholly outside
it and only the few its outline actually cuts need an intersection.

:func:`cell_shares` finds those few without testing every pair:

1. a point inside each cell decides, for every area, which cells it holds whole;
2. an area's outline segments that are not also a cell's edge (:mod:`geo.edges`) are the
   only places it can cut a cell: the cells those segments touch are intersected exactly
   (a hash collision taking a segment for a cell's edge only fails step 3);
3. each area's sum — whole cells plus exact pieces — must equal its own area. It does
   when the cells tile the area; where it does not (a hash collision, or anything the
   two steps above did not foresee), that area's shares are computed pair by pair.

The shares are exact for any grid whose cells do not overlap one another, with or
without gaps, and for outlines drawn apart from the cells' edges (those are cut
candidates everywhere, so only slower). Where cells overlap each other (a grid defect
the check reports), a cell crossing an outline exactly along *another* cell's edge counts
whole or not at all: the error is at most its households in that overlap, which the grid
already counts twice.
All geometry in one metric CRS (m, m²).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from geo.edges import fingerprints, segments

__all__ = ["cell_shares"]

#: relative difference between an area and the sum of its cells' pieces still taken as
#: equal (floating-point sums of thousands of cell areas; 1e-9 of a 1 km² street is 1 mm²)
_AREA_AGREE = 1e-9


def cell_shares(areas, cells) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(area_index, cell_index, share)``: for each area and each cell it overlaps, the
    share of the cell's area inside the area (0 < share ≤ 1). Geometries without area
    (empty, missing, lines, points) hold nothing. Polygons in one metric CRS.

    >>> cells = shapely.box([0, 1, 2], 0, [1, 2, 3], 1)
    >>> a, c, s = cell_shares([shapely.box(0, 0, 2, 1), shapely.box(0.5, 0, 1.5, 1)], cells)
    >>> sorted(zip(a.tolist(), c.tolist(), s.round(3).tolist()))
    [(0, 0, 1.0), (0, 1, 1.0), (1, 0, 0.5), (1, 1, 0.5)]
    """
    areas = np.asarray(areas, dtype=object)
    cells = np.asarray(cells, dtype=object)
    area = shapely.area(areas)
    live = np.flatnonzero(area > 0)  # not lines, points, empties or None
    empty = (np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp), np.zeros(0))
    if not len(live) or not len(cells):
        return empty
    mine, own = areas[live], area[live]
    cell_area = shapely.area(cells)
    tree = shapely.STRtree(cells)
    # 1. whole cells: a point strictly inside each cell, in which areas
    inner = _inner_points(cells)
    whole_a, whole_c = shapely.STRtree(inner).query(mine, predicate="contains")
    # 2. cells an outline may cut: those touching a segment that is no cell's edge
    seg_a, seg = segments(mine)
    loose = ~_isin(fingerprints(seg), fingerprints(segments(cells)[1]))
    loose_seg = shapely.linestrings(seg[loose].reshape(-1, 2, 2))
    s, cut_c = tree.query(loose_seg, predicate="intersects")
    cut_a = seg_a[loose][s]
    key = np.unique(cut_a * len(cells) + cut_c)
    cut_a, cut_c = key // len(cells), key % len(cells)
    keep = ~_isin(whole_a * len(cells) + whole_c, key)
    whole_a, whole_c = whole_a[keep], whole_c[keep]
    cut_share = shapely.area(shapely.intersection(mine[cut_a], cells[cut_c])) / cell_area[cut_c]
    # 3. each area's cells must add up to the area; where not, pair by pair
    held = np.zeros(len(mine))
    np.add.at(held, whole_a, cell_area[whole_c])
    np.add.at(held, cut_a, cut_share * cell_area[cut_c])
    off = np.flatnonzero(np.abs(held - own) > _AREA_AGREE * np.maximum(own, 1.0))
    a = np.concatenate([whole_a, cut_a])
    c = np.concatenate([whole_c, cut_c])
    share = np.concatenate([np.ones(len(whole_a)), cut_share])
    if len(off):
        drop = _isin(a, off)
        ea, ec, es = _pairwise(mine[off], cells, cell_area, tree)
        a = np.concatenate([a[~drop], off[ea]])
        c = np.concatenate([c[~drop], ec])
        share = np.concatenate([share[~drop], es])
    nonzero = share > 0
    return live[a[nonzero]], c[nonzero], share[nonzero]


def _inner_points(cells) -> np.ndarray:
    """A point strictly inside each cell: its centroid when that is, else a point on its
    surface (GEOS's, for concave or multi-part cells)."""
    points = shapely.centroid(cells)
    outside = ~shapely.contains_properly(cells, points)
    points[outside] = shapely.point_on_surface(cells[outside])
    return points


def _isin(values, among) -> np.ndarray:
    """``np.isin`` by hash table (pandas) rather than by sorting: linear time."""
    return pd.Index(values).isin(among)


def _pairwise(areas, cells, cell_area, tree):
    """Shares by one intersection per overlapping pair, for areas the fast path could not
    vouch for: a cell inside counts whole, one only touching from outside counts nothing.
    ``tree``: the cells' index."""
    a, c = tree.query(areas, predicate="intersects")
    shapely.prepare(areas)
    share = shapely.contains(areas[a], cells[c]).astype(float)
    cut = np.flatnonzero(share == 0)
    cut = cut[~shapely.touches(areas[a[cut]], cells[c[cut]])]
    share[cut] = (
        shapely.area(shapely.intersection(areas[a[cut]], cells[c[cut]])) / cell_area[c[cut]]
    )
    return a, c, share
