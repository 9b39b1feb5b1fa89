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

__all__ = [
    "Rule",
    "RULES",
    "SLIVER",
    "COLUMNS",
    "Tolerances",
    "width",
    "upper_width",
    "polygon_parts",
    "classify",
    "significant",
    "split_at_seams",
    "new_since",
    "empty_findings",
    "make_findings",
]


@dataclass(frozen=True)
class Rule:
    """A validation rule: what it applies to, its names and its colour on the map.

    zh_jurisdiction, en_jurisdiction : what the finding is called on a jurisdiction
        layer (police areas and beats): an overlap is 交叉管 (two units in charge), a gap
        三不管 (nobody in charge).
    """

    name: str
    applies_to: str
    zh: str
    en: str
    color: str
    zh_jurisdiction: str | None = None
    en_jurisdiction: str | None = None

    def label(self, lang: str = "zh") -> str:
        return self.zh if lang == "zh" else self.en


#: The rules, in report order; the checker, the report, the API, the map and its
#: translations read them from here.
# A table, a row per rule: the formatter leaves it.
# fmt: off
RULES: dict[str, Rule] = {r.name: r for r in [
    Rule("invalid_geometry", "every polygon layer", "几何无效", "Invalid geometry", "#000000"),
    Rule("duplicate_code", "every layer with codes", "编码重复", "Duplicate code", "#636363"),
    Rule("overlap", "every partition layer", "重叠", "Overlap", "#d7191c",
         "交叉管", "Two in charge (overlap)"),
    Rule("gap", "every partition layer, inside its parent or the hierarchy", "缝隙", "Gap",
         "#2c7bb6", "三不管", "Nobody in charge (gap)"),
    Rule("not_nested", "a layer with a parent kind", "越界", "Not nested", "#7b3294"),
    Rule("parent_mismatch", "a layer with a parent kind", "上级编码不符", "Parent mismatch",
         "#1a9641"),
    Rule("misaligned", "a jurisdiction against the units it follows", "跨界", "Misaligned",
         "#e66101"),
]}
# fmt: on


#: Pieces narrower than the sliver width (any rule): digitising slivers, fixable.
SLIVER = {"zh": "碎片", "en": "sliver", "color": "#ff00ff"}

COLUMNS = [
    "rule",
    "layer",
    "features",
    "area_m2",
    "width_m",
    "kind",
    "parent_layer",
    "parent",
    "detail",
    "detail_zh",
    "geometry",
]

#: What a finding's detail says, in English and Chinese: one entry per kind of detail,
#: filled by :func:`detail` (``{layer}``, ``{parent}`` and ``{unit}`` are layer kinds,
#: named in each language: :func:`geo.kinds.in_both_languages`).
DETAILS = {
    "invalid": ("{reason}", "几何无效：{reason_zh}"),
    "duplicate_code": ("{n} features carry code {code}", "{n} 个要素使用同一编码 {code}"),
    "overlap": ("{a} and {b} both cover this area", "{a} 与 {b} 都覆盖此处"),
    "hole": ("hole inside the {layer} layer", "{layer}图层内部的空洞"),
    "outside_every": ("lies outside every {parent}", "不在任何{parent}之内"),
    "reaches_outside": ("reaches outside {parent} {code}", "超出{parent} {code}"),
    "reaches_into": ("reaches outside {parent} {code} into {into}",
                     "超出{parent} {code}，伸入 {into}"),
    "parent_gap": ("part of {parent} {code} covered by no {layer}",
                   "{parent} {code} 有一部分不属于任何{layer}"),
    "unknown_parent": ("parent_code says {said}, which is not a {parent}",
                       "上级编码为 {said}，但它不是{parent}"),
    "wrong_parent": ("parent_code says {said}; it lies in {actual}",
                     "上级编码为 {said}，实际位于 {actual}"),
    "misaligned": ("{j} reaches into {unit} {u}, which {main} mainly covers",
                   "{j} 伸入{unit} {u}，该{unit}主要由 {main} 管辖"),
    "jurisdiction_gap": ("inside the {parent} layer but in no {layer}",
                         "位于{parent}范围内，但不属于任何{layer}"),
}  # fmt: skip

# GEOS's reasons for an invalid geometry (shapely.is_valid_reason), in Chinese
_INVALID_ZH = {
    "Self-intersection": "自相交",
    "Ring Self-intersection": "环自相交",
    "Too few points in geometry component": "组成部分的点数过少",
    "Hole lies outside shell": "内环位于外环之外",
    "Holes are nested": "内环相互嵌套",
    "Interior is disconnected": "内部不连通",
    "Nested shells": "外环相互嵌套",
    "Duplicate Rings": "环重复",
    "Invalid Coordinate": "坐标无效",
    "Ring is not closed": "环未闭合",
}


def detail(key: str, **params) -> dict[str, str]:
    """A finding's ``detail`` and ``detail_zh`` from :data:`DETAILS` ``key``; parameters
    ``layer`` and ``parent`` are layer kinds (named in each language), ``unit`` too.

    >>> detail("parent_gap", parent="community", code="540102001001", layer="grid")["detail_zh"]
    '社区 540102001001 有一部分不属于任何网格'
    """
    from geo.kinds import in_both_languages

    if "reason" in params:
        params["reason_zh"] = _INVALID_ZH.get(params["reason"], params["reason"])
    en, zh = in_both_languages(*DETAILS[key], **params)
    return {"detail": en, "detail_zh": zh}


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


def width(geoms, *, precision: float = 0.001, relative: float = 0.001) -> np.ndarray:
    """Width in metres of each polygon: the diameter of its largest inscribed circle.

    Computed to ``precision`` metres or about ``relative`` × its width, whichever is
    coarser: a millimetre for slivers, a decimetre for a piece 100 m wide (GEOS refines a
    long slanted strip 150 m wide for 80 ms to reach 1 mm, 16 ms to reach 0.14 m). For a strip
    0.4 m wide the width is 0.4; for a disc of radius r it is 2r.

    >>> float(np.round(width([shapely.box(0, 0, 100, 0.4)])[0], 3))
    0.4
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms))
    for i, g in enumerate(geoms):
        if g is None or g.is_empty or g.area == 0:
            continue
        upper = upper_width(g)  # at most twice the width
        tol = min(max(precision, relative * upper / 2), 0.25 * upper)
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
    return np.where(
        widths < tolerances.noise_width,
        "noise",
        np.where(widths < tolerances.sliver_width, "sliver", "real"),
    )


def significant(pieces, tolerances: Tolerances, *, owners=None):
    """Keep the polygon parts wider than the noise width.

    Returns ``(parts, widths, kinds)``, or with ``owners`` (one label per input geometry)
    ``(parts, widths, kinds, owner_of_each_part)``. Vectorised: the cheap upper bound of
    the width discards noise before any inscribed circle is computed.
    """
    pieces = np.asarray(pieces, dtype=object)
    # A part at least noise_width wide holds a disc of that diameter: smaller areas are noise.
    big = np.flatnonzero(shapely.area(pieces) >= np.pi / 4 * tolerances.noise_width**2)
    parts, index = shapely.get_parts(pieces[big], return_index=True)
    index = big[index]
    keep = shapely.get_type_id(parts) == shapely.GeometryType.POLYGON
    keep[keep] = upper_width(parts[keep]) >= tolerances.noise_width
    parts, index = parts[keep], index[keep]
    w = width(parts)
    # A part wider than noise may be two defects joined by a seam narrower than noise
    # (a 3 m overlap and a 0.5 m sliver of the same pair): measure each on its own.
    wide = np.flatnonzero(w >= tolerances.noise_width)
    if len(wide):
        pieces_of = split_at_seams(parts[wide], tolerances.noise_width)
        split = [k for k, p in enumerate(pieces_of) if len(p) > 1]
        if split:
            more = [q for k in split for q in pieces_of[k]]
            more_index = [index[wide[k]] for k in split for _ in pieces_of[k]]
            drop = np.zeros(len(parts), dtype=bool)
            drop[wide[split]] = True
            parts = np.concatenate([parts[~drop], np.array(more, dtype=object)])
            index = np.concatenate([index[~drop], np.array(more_index, dtype=index.dtype)])
            w = np.concatenate([w[~drop], width(more)])
    kinds = classify(w, tolerances)
    real = kinds != "noise"
    out = parts[real], w[real], kinds[real]
    if owners is None:
        return out
    return (*out, np.asarray(owners, dtype=object)[index[real]] if len(index) else index[real])


def split_at_seams(polygons, seam_width: float) -> list[list]:
    """Each polygon cut where it narrows below ``seam_width`` metres: a list of pieces per
    polygon, the polygon itself alone when it has no such neck.

    The cut is a morphological opening (shrink then grow by half the seam width): a neck
    narrower than the seam width vanishes and its two sides become separate pieces. Each
    piece is then taken back from the polygon itself (the polygon within half the seam
    width of the opened piece), so its corners and area are the polygon's own; only the
    seam is lost.

    >>> joined = shapely.union_all([shapely.box(0, 0, 3, 40),
    ...                             shapely.box(0, 40, 0.0005, 50), shapely.box(0, 50, 0.5, 80)])
    >>> [round(p.area, 3) for p in split_at_seams([joined], 0.01)[0]]
    [120.0, 15.0]
    """
    r = seam_width / 2
    out = []
    for poly in polygons:
        opened = shapely.buffer(shapely.buffer(poly, -r, quad_segs=2), r, quad_segs=2)
        cores = polygon_parts([opened])
        if len(cores) < 2:
            out.append([poly])
            continue
        pieces = shapely.intersection(poly, shapely.buffer(cores, r, quad_segs=2))
        out.append([q for q in polygon_parts(pieces) if q.area > 0])
    return out


def empty_findings(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(columns=COLUMNS), geometry="geometry", crs=crs)


def make_findings(rows: list[dict], crs) -> gpd.GeoDataFrame:
    """A findings frame from row dicts (missing columns filled with None)."""
    if not rows:
        return empty_findings(crs)
    frame = gpd.GeoDataFrame(
        [{c: r.get(c) for c in COLUMNS} for r in rows], geometry="geometry", crs=crs
    )
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
            seen = bool(
                (same.geometry.intersection(row.geometry).area > 0.5 * row.geometry.area).any()
            )
        keep.append(not seen)
    return after[np.asarray(keep, dtype=bool)] if len(after) else after
