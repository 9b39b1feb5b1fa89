"""Rules within one polygon layer: invalid geometry, duplicate codes, overlaps, gaps.

Every function takes a GeoDataFrame in a metric CRS (metres) with a ``code`` column and
returns findings (see :mod:`geo.findings`); none of them changes its input.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo._parallel import threaded
from geo.findings import (
    Tolerances,
    detail,
    make_findings,
    polygon_parts,
    significant,
    upper_width,
)

__all__ = [
    "invalid_geometry",
    "repaired",
    "duplicate_code",
    "overlap",
    "gap_in_outline",
    "neighbour_codes",
    "uncovered_by",
]


def invalid_geometry(gdf: gpd.GeoDataFrame, layer: str) -> gpd.GeoDataFrame:
    """One finding per feature that is not a valid polygon, with GEOS's reason."""
    geoms = gdf.geometry.values
    bad = np.flatnonzero(~shapely.is_valid(geoms) | shapely.is_empty(geoms))
    rows = []
    for i in bad:
        g = geoms[i]
        if g is None or g.is_empty:
            reason, where = "empty geometry", None
        else:
            # GEOS says e.g. "Self-intersection[606343.9 3284028.5]": the place is the geometry.
            match = re.match(r"^(.*?)\[([-\d.eE+]+) ([-\d.eE+]+)\]$", shapely.is_valid_reason(g))
            reason = match.group(1) if match else shapely.is_valid_reason(g)
            where = (
                shapely.Point(float(match.group(2)), float(match.group(3)))
                if match
                else g.representative_point()
            )
        rows.append(
            {
                "rule": "invalid_geometry",
                "layer": layer,
                "features": [str(gdf["code"].iloc[i])],
                **detail("invalid", reason=reason),
                "geometry": where,
            }
        )
    return make_findings(rows, gdf.crs)


def repaired(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy with invalid polygons made valid (polygonal parts only), others untouched."""
    geoms = gdf.geometry.values.copy()
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        # "structure" keeps the area a digitiser meant (shell minus holes); "linework" can
        # drop most of a polygon whose ring crosses itself.
        fixed = shapely.make_valid(geoms[bad], method="structure", keep_collapsed=False)
        geoms[bad] = [shapely.union_all(polygon_parts([g])) for g in fixed]
    out = gdf.copy()
    out.geometry = geoms
    return out


def duplicate_code(
    gdf: gpd.GeoDataFrame, layer: str, *, counted: dict[str, int] | None = None
) -> gpd.GeoDataFrame:
    """One finding per code that more than one feature carries (or that is missing).

    counted : ``{code: features carrying it}`` counted over the whole layer when ``gdf``
        is a part of it (a partitioned check): those codes are reported, with that count.
    """
    codes = gdf["code"].astype(object)
    if counted is None:
        counts = codes.value_counts()
        counts = counts[counts > 1]
    else:  # codes as text, as the whole layer's were counted
        codes, counts = codes.astype(str), pd.Series(counted, dtype=int)
    rows = []
    for code, n in counts.items():
        here = (codes == code).to_numpy()
        if not here.any():
            continue  # a duplicated code of the layer that this part does not hold
        where = gdf.geometry[here]
        rows.append(
            {
                "rule": "duplicate_code",
                "layer": layer,
                "features": [str(code)],
                **detail("duplicate_code", n=n, code=code),
                "geometry": shapely.union_all(where.representative_point().values),
            }
        )
    return make_findings(rows, gdf.crs)


def _pairs(geoms, noise_width: float = 0.0):
    """Unique pairs (i < j) of polygons that may share a piece at least ``noise_width``
    metres wide.

    Real files' neighbours cross each other by nanometres almost everywhere (T-junctions,
    reprojection), so nearly every neighbour pair intersects. A piece of width w holds a
    disc of diameter w, whose centre lies at least w/2 inside both polygons: a pair can
    share such a piece only if the first polygon shrunk by w/2 still meets the second. That
    test (prepared) replaces the exact intersection of every pair that cannot hold one.
    """
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if noise_width <= 0 or not len(left):
        touching = threaded(shapely.touches, geoms[left], geoms[right])
        return left[~touching], right[~touching]
    used = np.unique(left)
    core = np.empty(len(geoms), dtype=object)
    # a hair less than half the width; where GEOS draws arcs with chords (around concave
    # corners) the shrunk polygon comes out a little larger: pairs are kept, never lost
    core[used] = threaded(
        shapely.buffer, np.asarray(geoms)[used], distance=-0.49 * noise_width, quad_segs=2
    )
    shapely.prepare(core[used])
    deep = threaded(shapely.intersects, core[left], geoms[right])
    return left[deep], right[deep]


def overlap(
    gdf: gpd.GeoDataFrame,
    layer: str,
    tolerances: Tolerances = Tolerances(),
    *,
    owned: set[str] | None = None,
) -> gpd.GeoDataFrame:
    """Areas shared by two features of the layer, wider than the noise width.

    Each connected piece of each pair's intersection is one finding with both codes.
    owned : only the pairs whose smaller code is one of these (the part of a partitioned
        check that owns them: :mod:`geo.partitioned`).
    """
    geoms = gdf.geometry.values
    left, right = _pairs(geoms, tolerances.noise_width)
    codes = gdf["code"].astype(str).to_numpy()
    if owned is not None and len(left):
        first = np.minimum(codes[left], codes[right])
        mine = np.fromiter((c in owned for c in first), dtype=bool, count=len(first))
        left, right = left[mine], right[mine]
    rows = []
    if len(left):
        inter = threaded(shapely.intersection, geoms[left], geoms[right])
        pieces, widths, kinds, pair = significant(inter, tolerances, owners=np.arange(len(left)))
        for p, w, k, n in zip(pieces, widths, kinds, pair):
            i, j = codes[left[n]], codes[right[n]]
            rows.append(
                {
                    "rule": "overlap",
                    "layer": layer,
                    "features": [i, j],
                    "area_m2": float(p.area),
                    "width_m": float(w),
                    "kind": k,
                    **detail("overlap", a=i, b=j),
                    "geometry": p,
                }
            )
    return make_findings(rows, gdf.crs)


def neighbour_codes(pieces, gdf: gpd.GeoDataFrame, *, distance: float = 0.05) -> list[list[str]]:
    """For each piece, the codes of the features within ``distance`` metres of it."""
    tree = shapely.STRtree(gdf.geometry.values)
    pieces = np.asarray(pieces, dtype=object)
    idx_piece, idx_feat = tree.query(pieces, predicate="dwithin", distance=distance)
    codes = gdf["code"].astype(str).to_numpy()
    out: list[list[str]] = [[] for _ in range(len(pieces))]
    for p, f in zip(idx_piece, idx_feat):
        if codes[f] not in out[p]:
            out[p].append(codes[f])
    return out


def uncovered_by(area, covers) -> shapely.Geometry:
    """The part of polygon ``area`` that none of the polygons ``covers`` covers.

    Not one floating-point union: the union of many noisy neighbours can come out valid
    yet wrong (on a 10,000-cell noisy tiling, the union of the 27 cells around a community
    had its interior as a hole, and the whole community looked uncovered). The area left
    by the union is therefore taken piece by piece and each piece has every cover that
    touches it taken away on its own, so a gap is a part that each of its neighbours,
    one at a time, leaves uncovered.

    >>> left, right = shapely.box(0, 0, 10, 10), shapely.box(12, 0, 20, 10)
    >>> float(uncovered_by(shapely.box(0, 0, 20, 10), [left, right]).area)
    20.0
    """
    covers = np.asarray(covers, dtype=object)
    if not len(covers):
        return area
    rest = shapely.difference(area, shapely.union_all(covers))
    parts = polygon_parts([rest])
    if not len(parts):
        return rest
    tree = shapely.STRtree(covers)
    kept = []
    for part in parts:
        for c in tree.query(part, predicate="intersects"):
            part = shapely.difference(part, covers[c])
            if part.is_empty:
                break
        kept.append(part)
    return shapely.union_all(kept)


def gap_findings(
    uncovered, around: gpd.GeoDataFrame, layer: str, tolerances: Tolerances, **fields
) -> gpd.GeoDataFrame:
    """``gap`` findings of the areas ``uncovered`` (geometries, metres) wider than noise,
    each naming the features of ``around`` that border it; ``fields`` (``detail``,
    ``parent_layer``, …) go on every row."""
    pieces, widths, kinds = significant(uncovered, tolerances)
    sides = neighbour_codes(pieces, around)
    rows = [
        {"rule": "gap", "layer": layer, "features": s, "area_m2": float(p.area),
         "width_m": float(w), "kind": k, "geometry": p, **fields}
        for p, w, k, s in zip(pieces, widths, kinds, sides)
    ]  # fmt: skip
    return make_findings(rows, around.crs)


def gap_in_outline(
    gdf: gpd.GeoDataFrame, layer: str, tolerances: Tolerances = Tolerances()
) -> gpd.GeoDataFrame:
    """Holes inside the outline of the layer's own union (for a layer with no parent)."""
    geoms = gdf.geometry.values
    union = shapely.union_all(geoms)
    holes = [shapely.Polygon(ring) for part in polygon_parts([union]) for ring in part.interiors]
    # each hole wider than noise checked against the features around it
    holes = [h for h in holes if upper_width(h) >= tolerances.noise_width]
    tree = shapely.STRtree(geoms)
    holes = [uncovered_by(h, geoms[tree.query(h, predicate="intersects")]) for h in holes]
    return gap_findings(holes, gdf, layer, tolerances, **detail("hole", layer=layer))
