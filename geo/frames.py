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

__all__ = ["taken_rows"]


def taken_rows(first: pd.DataFrame, second: pd.DataFrame, order: np.ndarray) -> pd.DataFrame:
    """The rows ``order`` (positions in ``first``'s rows followed by ``second``'s) of the
    two tables, with ``first``'s columns (``second`` must have them all) and a fresh
    RangeIndex; a GeoDataFrame (same geometry column and CRS) if ``first`` is one. A
    column whose dtypes differ takes the dtype both fit in, as :func:`pandas.concat`
    finds it."""
    columns = {}
    for name in first.columns:
        a, b = first[name], second[name]
        if a.dtype == b.dtype:
            both = type(a.array)._concat_same_type([a.array, b.array])
        else:
            both = pd.concat([a, b], ignore_index=True).array
        columns[name] = both.take(order)
    out = pd.DataFrame(columns, columns=first.columns, copy=False)
    if isinstance(first, gpd.GeoDataFrame):
        return gpd.GeoDataFrame(out, geometry=first.geometry.name, crs=first.crs)
    return out
