"""Findings: what the checker reports, as data, and the tolerances that classify them.

A finding is one row of a GeoDataFrame in the metric CRS with the columns of
:data:`COLUMNS`. The same frame feeds the text report, the JSON of ``python -m geo check``,
the API and the map. Gaps and overlaps carry their area (m²) and width (m, the diameter of
the largest inscribed circle) and are classified against :class:`Tolerances`: below the
noise width they are floating-point or millimetre-snapping artefacts and are dropped;
below the sliver width they are digitising slivers (``kind == "sliver"``), fixable
automatically; above, real (``kind == "real"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["RULES", "COLUMNS", "Tolerances", "width", "upper_width", "polygon_parts", "classify",
           "significant", "new_since",
           "empty_findings", "make_findings"]

RULES = ("invalid_geometry", "duplicate_code", "overlap", "gap", "not_nested",
         "parent_mismatch", "misaligned")

COLUMNS = ["rule", "layer", "features", "area_m2", "width_m", "kind", "parent_layer",
           "parent", "detail", "geometry"]


@dataclass(frozen=True)
class Tolerances:
    """Widths in metres separating noise, slivers and real defects.

    noise_width : pieces narrower than this are artefacts of floating point, snapping or
        reprojection and are not reported (default 1 cm).
    sliver_width : pieces narrower than this are digitising slivers (default 1 m).
    """

    noise_width: float = 0.01
    sliver_width: float = 1.0

    def __post_init__(self):
        if not 0 <= self.noise_width <= self.sliver_width:
            raise ValueError("tolerances must satisfy 0 ≤ noise_width ≤ sliver_width (metres)")


def polygon_parts(geoms) -> np.ndarray:
    """The polygons inside geometries (of any type), as a flat array; lines, points and
    empties are dropped."""
    parts = shapely.get_parts(np.asarray(geoms, dtype=object))
    if len(parts) == 0:
        return parts
    keep = shapely.get_type_id(parts) == shapely.GeometryType.POLYGON
    parts = parts[keep]
    nested = shapely.get_type_id(parts) != shapely.GeometryType.POLYGON
    return parts[~shapely.is_empty(parts) & ~nested]


def width(geoms, *, precision: float = 0.001) -> np.ndarray:
    """Width in metres of each polygon: the diameter of its largest inscribed circle.

    Computed to ``precision`` metres. For a strip 0.4 m wide the width is 0.4; for a disc
    of radius r it is 2r.

    >>> float(np.round(width([shapely.box(0, 0, 100, 0.4)])[0], 3))
    0.4
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms))
    for i, g in enumerate(geoms):
        if g is None or g.is_empty or g.area == 0:
            continue
        tol = min(precision, 0.25 * upper_width(g))
        out[i] = 2.0 * shapely.maximum_inscribed_circle(g, tol if tol > 0 else precision).length
    return out


def upper_width(geoms):
    """A cheap upper bound of the width of convex pieces: 4·area / perimeter (m)."""
    area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    return np.where(perimeter > 0, 4.0 * area / np.where(perimeter > 0, perimeter, 1), 0.0)


def classify(widths, tolerances: Tolerances) -> np.ndarray:
    """'noise', 'sliver' or 'real' for each width (m)."""
    widths = np.asarray(widths, dtype=float)
    return np.where(widths < tolerances.noise_width, "noise",
                    np.where(widths < tolerances.sliver_width, "sliver", "real"))


def significant(pieces, tolerances: Tolerances, *, owners=None):
    """Keep the polygon parts wider than the noise width.

    Returns ``(parts, widths, kinds)``, or with ``owners`` (one label per input geometry)
    ``(parts, widths, kinds, owner_of_each_part)``. Vectorised: the cheap upper bound of
    the width discards noise before any inscribed circle is computed.
    """
    pieces = np.asarray(pieces, dtype=object)
    # A part at least noise_width wide holds a disc of that diameter: smaller areas are noise.
    big = np.flatnonzero(shapely.area(pieces) >= np.pi / 4 * tolerances.noise_width ** 2)
    parts, index = shapely.get_parts(pieces[big], return_index=True)
    index = big[index]
    keep = shapely.get_type_id(parts) == shapely.GeometryType.POLYGON
    keep[keep] = upper_width(parts[keep]) >= tolerances.noise_width
    parts, index = parts[keep], index[keep]
    w = width(parts)
    kinds = classify(w, tolerances)
    real = kinds != "noise"
    out = parts[real], w[real], kinds[real]
    if owners is None:
        return out
    return (*out, np.asarray(owners, dtype=object)[index[real]] if len(index) else index[real])


def empty_findings(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(columns=COLUMNS), geometry="geometry", crs=crs)


def make_findings(rows: list[dict], crs) -> gpd.GeoDataFrame:
    """A findings frame from row dicts (missing columns filled with None)."""
    if not rows:
        return empty_findings(crs)
    frame = gpd.GeoDataFrame([{c: r.get(c) for c in COLUMNS} for r in rows],
                             geometry="geometry", crs=crs)
    return frame


def new_since(before: gpd.GeoDataFrame, after: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The findings of ``after`` that ``before`` did not have: same rule and layer, and most
    of the area shared (area findings) or the same features (the others). Both frames in
    the same CRS; used to tell what an edit or a repair would add."""
    keep = []
    for row in after.itertuples(index=False):
        same = before[(before["rule"] == row.rule) & (before["layer"] == row.layer)]
        if row.area_m2 is None or row.area_m2 != row.area_m2:
            seen = any(sorted(f) == sorted(row.features) for f in same["features"])
        else:
            seen = bool((same.geometry.intersection(row.geometry).area
                         > 0.5 * row.geometry.area).any())
        keep.append(not seen)
    return after[np.asarray(keep, dtype=bool)] if len(after) else after
