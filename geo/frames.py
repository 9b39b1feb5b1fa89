"""Rows of tables spliced column by column, at the cost of arrays rather than frames.

A save replaces a few rows of a layer of 150,000. Concatenating two frames and taking
rows from the result goes through pandas' block and index machinery, and costs about
twice as much as doing the same to each column's array (``_concat_same_type`` and
``take``), which is what :func:`taken_rows` does.

>>> import geopandas as gpd, numpy as np, shapely
>>> points = [shapely.Point(i, 0) for i in range(3)]
>>> a = gpd.GeoDataFrame({"code": ["1", "2", "3"]}, geometry=points, crs="EPSG:4490")
>>> b = gpd.GeoDataFrame({"code": ["2b"]}, geometry=[shapely.Point(9, 9)], crs="EPSG:4490")
>>> out = taken_rows(a, b, np.array([0, 3, 2]))    # row 1 replaced by b's row 0
>>> out["code"].tolist(), out.geometry.x.tolist(), out.crs.to_epsg()
(['1', '2b', '3'], [0.0, 9.0, 2.0], 4490)
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["in_place", "taken_rows"]


def taken_rows(first: pd.DataFrame, second: pd.DataFrame, order: np.ndarray) -> pd.DataFrame:
    """The rows ``order`` (positions in ``first``'s rows followed by ``second``'s) of the
    two tables, with ``first``'s columns (``second`` must have them all) and a fresh
    RangeIndex; a GeoDataFrame (same geometry column and CRS) if ``first`` is one. A
    column whose dtypes differ takes the dtype both fit in, as :func:`pandas.concat`
    finds it. Where ``order`` keeps every row of ``first`` in place and only replaces
    some (:func:`in_place`), a column of one dtype is copied and those rows overwritten."""
    replaced = in_place(order, len(first))
    columns = {}
    for name in first.columns:
        a, b = first[name], second[name]
        if a.dtype != b.dtype:  # the dtype both fit in, as concat finds it
            columns[name] = pd.concat([a, b], ignore_index=True).array.take(order)
        elif replaced is not None:
            columns[name] = _overwritten(a.array, b.array, *replaced)
        else:
            columns[name] = type(a.array)._concat_same_type([a.array, b.array]).take(order)
    out = pd.DataFrame(columns, columns=first.columns, copy=False)
    if isinstance(first, gpd.GeoDataFrame):
        return gpd.GeoDataFrame(out, geometry=first.geometry.name, crs=first.crs)
    return out


def in_place(order: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """When ``order`` (as in :func:`taken_rows`, over ``n`` first rows) keeps every first
    row where it is and only replaces some by second rows (a save that changed features
    without adding or removing any): the positions replaced and the second row each
    takes; else None.

    >>> in_place(np.array([0, 3, 2]), 3)
    (array([1]), array([0]))
    >>> in_place(np.array([0, 2, 3]), 3) is None       # row 1 removed, one added last
    True
    """
    if len(order) != n:
        return None
    moved = np.flatnonzero(order != np.arange(n))
    if (order[moved] < n).any():
        return None
    return moved, order[moved] - n


def _overwritten(column, new, at: np.ndarray, rows: np.ndarray):
    """``column`` (an array of a frame) with positions ``at`` set to rows ``rows`` of
    ``new`` (the same dtype). Text held by Arrow is joined from slices (setting items of
    an Arrow array converts it: 150,000 codes, 3-7 ms)."""
    if not len(at):
        return column
    arrow = getattr(column, "_pa_array", None)
    if arrow is None:
        out = column.copy()
        out[at] = new[rows]
        return out
    values = new._pa_array.take(rows)
    if values.type != arrow.type:  # string and large_string are one dtype to pandas
        values = values.cast(arrow.type)
    pieces, start = [], 0
    for k in np.argsort(at, kind="stable"):
        pieces += [arrow.slice(start, int(at[k]) - start), values.slice(int(k), 1)]
        start = int(at[k]) + 1
    pieces.append(arrow.slice(start))
    joined = pa.chunked_array([c for p in pieces for c in p.chunks], type=arrow.type)
    if joined.num_chunks > 32:  # many saves later: one chunk again
        joined = pa.chunked_array([joined.combine_chunks()])
    return type(column)(joined, dtype=column.dtype)
