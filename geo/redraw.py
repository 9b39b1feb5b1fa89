"""Redrawing grid cells: reshape, split, merge, move a piece, draw a new cell, and the
households and population of the cells that result.

Every operation works on the cells of one dataset in a metric CRS (metres) and returns the
cells it changes as a GeoDataFrame (``code``, ``parent_code``, ``name``, geometry; a cell
that disappears has an empty geometry). Operations are *topological*: area a cell gains is
taken from the cells it covered, area a cell gives up goes to the neighbour in the same
community that shares the longest border with it, and new geometry is snapped to the
community boundary and to neighbouring cells (``tolerance`` metres) so that an edge drawn
by hand a metre off its neighbour's does not leave a sliver. What cannot be settled this
way (a piece with no neighbour, a cell reaching outside its community) is left for the
validation engine to report.

:func:`reapportion` gives the changed cells their households and population from the finest
data available: household points or building polygons when present (summed, or
area-weighted by tobler for buildings that straddle a new edge), otherwise area-weighted
from the cells as they were (tobler's ``area_interpolate``). It says which it used.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.ops import split as split_polygon

from geo.errors import InputError

__all__ = [
    "RedrawError",
    "reshape",
    "split",
    "merge",
    "move_piece",
    "draw",
    "fit_to",
    "next_codes",
    "serial_name",
    "estimate",
    "reapportion",
    "SNAP_TOLERANCE",
]

SNAP_TOLERANCE = 2.0  # metres: vertices this close to a neighbour's edge are put on it
_CRUMB = 0.01  # m²: pieces smaller than this are floating-point dust, not area


class RedrawError(InputError):
    """An operation that cannot be done as asked; the message says why in planners' terms."""

    code = "redraw_refused"


def _polygonal(geom):
    """Only the polygons of a geometry (an intersection can add lines and points)."""
    if geom is None or geom.is_empty:
        return shapely.Polygon()
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


PRECISION = 0.001  # metres: results are snapped to a 1 mm grid


def _clean(geom):
    """Valid, polygonal, without dust: what a cell's geometry may be after an operation.

    Snapping to a 1 mm grid (``set_precision``) also removes the zero-width spikes that
    repeated overlays leave along shared edges; such a spike is harmless in metres but
    becomes a self-intersection once the cell is stored in degrees."""
    geom = shapely.make_valid(geom, method="structure")
    geom = _polygonal(shapely.set_precision(geom, PRECISION))
    parts = [p for p in shapely.get_parts(geom) if p.area > _CRUMB]
    if not parts:
        return shapely.Polygon()
    return (
        parts[0]
        if len(parts) == 1
        else shapely.MultiPolygon([q for p in parts for q in shapely.get_parts(p)])
    )


def _row(cells: gpd.GeoDataFrame, code: str) -> int:
    hits = np.flatnonzero(cells["code"].astype(str).to_numpy() == str(code))
    if len(hits) != 1:
        raise RedrawError(
            f"{len(hits)} grid cells have code '{code}'",
            zh=f"编码为 {code} 的网格有 {len(hits)} 个",
        )
    return int(hits[0])


def _snap(geom, references, tolerance: float):
    """``geom`` with each vertex within ``tolerance`` metres of the references' boundaries
    moved onto them: onto a vertex of theirs when one is that close (``shapely.snap``),
    else onto the nearest point of their edges."""
    refs = [r for r in references if r is not None and not r.is_empty]
    if not refs or tolerance <= 0:
        return geom
    target = shapely.union_all([shapely.boundary(r) for r in refs])
    geom = shapely.snap(geom, target, tolerance)
    coords = shapely.get_coordinates(geom)
    pts = shapely.points(coords)
    d = shapely.distance(pts, target)
    near = (d > 0) & (d <= tolerance)
    if near.any():
        on_edge = shapely.line_interpolate_point(
            target, shapely.line_locate_point(target, pts[near])
        )
        coords[near] = shapely.get_coordinates(on_edge)
        geom = shapely.set_coordinates(geom, coords)
    return _clean(geom)


def _community_of(community, cells, i):
    """The community polygon holding cell ``i`` (None when not given)."""
    if community is None:
        return None
    code = str(cells["parent_code"].iloc[i])
    hit = community[community["code"].astype(str) == code]
    return hit.geometry.iloc[0] if len(hit) else None


def _neighbours(cells, geom, exclude=()):
    """Row positions of the cells touching or overlapping ``geom``."""
    hits = cells.sindex.query(geom, predicate="intersects")
    return [int(h) for h in hits if int(h) not in exclude]


def _assign(cells: gpd.GeoDataFrame, geoms: dict, area, target: int) -> None:
    """Give ``area`` to cell ``target``, taking it from every other cell it covers
    (``geoms``: position → geometry, updated in place)."""
    for j in _neighbours(cells, area, exclude={target}):
        current = geoms.get(j, cells.geometry.iloc[j])
        if shapely.intersection(current, area).area > _CRUMB:
            geoms[j] = _clean(shapely.difference(current, area))
    geoms[target] = _clean(shapely.union(geoms.get(target, cells.geometry.iloc[target]), area))


def _release(cells: gpd.GeoDataFrame, geoms: dict, area, source: int) -> None:
    """Hand each piece of ``area`` (given up by ``source``) to the same-community neighbour
    sharing the longest border with it; a piece with none stays uncovered."""
    parent = cells["parent_code"].astype(str).to_numpy()
    for piece in shapely.get_parts(_clean(area)):
        best, longest = None, 0.0
        for j in _neighbours(cells, piece.buffer(0.01), exclude={source}):
            if parent[j] != parent[source]:
                continue
            shared = shapely.length(
                shapely.intersection(
                    shapely.boundary(piece), geoms.get(j, cells.geometry.iloc[j]).buffer(0.01)
                )
            )
            if shared > longest:
                best, longest = j, shared
        if best is not None and longest > 0.1:
            geoms[best] = _clean(shapely.union(geoms.get(best, cells.geometry.iloc[best]), piece))


def _result(cells: gpd.GeoDataFrame, geoms: dict, new: list[dict] = ()) -> gpd.GeoDataFrame:
    """The changed cells (existing ones in their original order, then new ones)."""
    rows = sorted(geoms)
    out = cells.iloc[rows][["code", "name", "parent_code"]].copy()
    out = gpd.GeoDataFrame(out, geometry=[geoms[r] for r in rows], crs=cells.crs)
    if new:
        out = pd.concat(
            [out, gpd.GeoDataFrame(new, geometry="geometry", crs=cells.crs)], ignore_index=True
        )
    out["code"] = out["code"].astype(str)
    return out.reset_index(drop=True)


def reshape(
    cells: gpd.GeoDataFrame, code: str, geom, community=None, *, tolerance: float = SNAP_TOLERANCE
) -> gpd.GeoDataFrame:
    """Cell ``code`` takes the outline ``geom``: it takes what it now covers from its
    neighbours and gives what it no longer covers to them. ``community``: the community
    layer (metric CRS), for snapping to its boundary and keeping the cell inside it."""
    i = _row(cells, code)
    comm = _community_of(community, cells, i)
    near = [cells.geometry.iloc[j] for j in _neighbours(cells, geom.buffer(tolerance), {i})]
    new = _snap(_clean(geom), near + [comm], tolerance)
    if comm is not None:
        new = _clean(shapely.intersection(new, comm))
    if new.is_empty:
        raise RedrawError(
            f"the new outline of '{code}' lies outside its community",
            zh=f"网格 {code} 的新边界在其社区之外",
        )
    geoms: dict = {i: new}
    _assign(cells, geoms, new, i)
    _release(cells, geoms, shapely.difference(cells.geometry.iloc[i], new), i)
    return _result(cells, geoms)


def split(
    cells: gpd.GeoDataFrame, code: str, line, new_codes=None, *, tolerance: float = SNAP_TOLERANCE
) -> gpd.GeoDataFrame:
    """Cut cell ``code`` along ``line`` (drawn from outside the cell to outside it). The
    largest piece keeps the code; the others get ``new_codes`` (default: the next free
    serials of the community, see :func:`next_codes`)."""
    i = _row(cells, code)
    cell = cells.geometry.iloc[i]
    # An end drawn just short of the edge is carried onto it.
    line = shapely.snap(line, shapely.boundary(cell), tolerance)
    pieces = sorted(
        (p for p in shapely.get_parts(split_polygon(cell, line)) if p.area > 1.0),
        key=lambda p: -p.area,
    )
    if len(pieces) < 2:
        raise RedrawError(
            f"the line does not cut '{code}' in two: draw it across the cell, "
            "from outside one edge to outside another",
            zh=f"这条线没有把网格 {code} 分成两块：请从网格一边的外侧画到另一边的外侧",
        )
    parent = str(cells["parent_code"].iloc[i])
    if new_codes is None:
        new_codes = next_codes(cells["code"], parent, len(pieces) - 1)
    if len(new_codes) != len(pieces) - 1:
        raise RedrawError(
            f"the line cuts '{code}' into {len(pieces)} pieces; give {len(pieces) - 1} new code(s)",
            zh=f"这条线把网格 {code} 分成了 {len(pieces)} 块；请给出 {len(pieces) - 1} 个新编码",
        )
    _unused(cells, new_codes)
    name = cells["name"].iloc[i] if "name" in cells else ""
    new = [
        {
            "code": str(c),
            "name": f"{name}-{k + 2}" if name else str(c),
            "parent_code": parent,
            "geometry": p,
        }
        for k, (c, p) in enumerate(zip(new_codes, pieces[1:]))
    ]
    return _result(cells, {i: pieces[0]}, new)


def merge(cells: gpd.GeoDataFrame, codes: list[str]) -> gpd.GeoDataFrame:
    """Join neighbouring cells of one community; the first code stays, the others go."""
    if len(set(codes)) < 2:
        raise RedrawError(
            "choose at least two different cells to merge", zh="请至少选择两个不同的网格进行合并"
        )
    rows = [_row(cells, c) for c in codes]
    parents = set(cells["parent_code"].astype(str).iloc[rows])
    if len(parents) > 1:
        raise RedrawError(
            f"cells {', '.join(codes)} belong to different communities "
            f"({', '.join(sorted(parents))}); a cell lies in one community",
            zh=f"网格 {', '.join(codes)} 属于不同社区（{', '.join(sorted(parents))}）；"
            "一个网格只能在一个社区内",
        )
    geoms = [cells.geometry.iloc[r] for r in rows]
    joined = _clean(
        shapely.union_all([g.buffer(0.01, join_style="mitre") for g in geoms]).buffer(
            -0.01, join_style="mitre"
        )
    )
    if joined.geom_type != "Polygon":
        raise RedrawError(
            f"cells {', '.join(codes)} do not share a border: only neighbouring cells can be merged",
            zh=f"网格 {', '.join(codes)} 不相邻：只能合并相邻的网格",
        )
    out = {rows[0]: joined}
    out.update({r: shapely.Polygon() for r in rows[1:]})
    return _result(cells, out)


def move_piece(
    cells: gpd.GeoDataFrame,
    piece,
    to_code: str,
    community=None,
    *,
    tolerance: float = SNAP_TOLERANCE,
) -> gpd.GeoDataFrame:
    """Give the area ``piece`` to cell ``to_code``, taking it from the cells it covers in
    the same community (a piece must touch the cell it joins)."""
    t = _row(cells, to_code)
    comm = _community_of(community, cells, t)
    near = [cells.geometry.iloc[j] for j in _neighbours(cells, piece.buffer(tolerance), {t})]
    piece = _snap(_clean(piece), near + [cells.geometry.iloc[t], comm], tolerance)
    if comm is not None:
        piece = _clean(shapely.intersection(piece, comm))
    if piece.is_empty or _clean(shapely.difference(piece, cells.geometry.iloc[t])).is_empty:
        raise RedrawError(
            f"the piece adds nothing to '{to_code}': draw it over the area to move",
            zh=f"所画地块没有给网格 {to_code} 增加面积：请画在要划转的区域上",
        )
    if not piece.buffer(0.05).intersects(cells.geometry.iloc[t]):
        raise RedrawError(
            f"the piece does not touch '{to_code}': a cell must stay in one piece",
            zh=f"所画地块与网格 {to_code} 不相接：网格须保持为一整块",
        )
    geoms: dict = {}
    _assign(cells, geoms, piece, t)
    return _result(cells, geoms)


def draw(
    cells: gpd.GeoDataFrame,
    geom,
    parent_code: str,
    community=None,
    *,
    code: str | None = None,
    name: str | None = None,
    tolerance: float = SNAP_TOLERANCE,
) -> gpd.GeoDataFrame:
    """A new cell in community ``parent_code`` with outline ``geom``, taken from the cells
    it covers; ``code`` defaults to the community's next serial."""
    code = code or next_codes(cells["code"], parent_code, 1)[0]
    _unused(cells, [code])
    comm = None
    if community is not None:
        hit = community[community["code"].astype(str) == str(parent_code)]
        if not len(hit):
            raise RedrawError(
                f"there is no community '{parent_code}'", zh=f"没有社区 {parent_code}"
            )
        comm = hit.geometry.iloc[0]
    near = [cells.geometry.iloc[j] for j in _neighbours(cells, geom.buffer(tolerance))]
    new = _snap(_clean(geom), near + [comm], tolerance)
    if comm is not None:
        new = _clean(shapely.intersection(new, comm))
    if new.is_empty:
        raise RedrawError(
            f"the new cell lies outside community '{parent_code}'",
            zh=f"新网格在社区 {parent_code} 之外",
        )
    everyone = pd.concat(
        [
            cells,
            gpd.GeoDataFrame(
                [
                    {
                        "code": code,
                        "name": name or code,
                        "parent_code": str(parent_code),
                        "geometry": shapely.Polygon(),
                    }
                ],
                geometry="geometry",
                crs=cells.crs,
            ),
        ],
        ignore_index=True,
    )
    t = len(everyone) - 1
    geoms: dict = {}
    _assign(everyone, geoms, new, t)
    return _result(everyone, geoms)


def fit_to(
    cells: gpd.GeoDataFrame, outline, *, tolerance: float = SNAP_TOLERANCE
) -> gpd.GeoDataFrame:
    """New cells for one community (e.g. an adopted proposal) made to tile its ``outline``
    exactly: snapped to it, clipped to it, and each uncovered sliver narrower than
    ``tolerance`` (dropped slivers, coordinate rounding) given to the cell sharing the
    longest border with it. A wider uncovered piece is a real gap and stays one."""
    out = cells.copy()
    geoms = [
        _clean(shapely.intersection(_snap(g, [outline], tolerance), outline)) for g in out.geometry
    ]
    rest = _clean(shapely.difference(outline, shapely.union_all(geoms)))
    for piece in shapely.get_parts(rest):
        if (
            piece.is_empty
            or shapely.length(shapely.maximum_inscribed_circle(piece)) * 2 > tolerance
        ):
            continue
        shared = [
            shapely.length(shapely.intersection(shapely.boundary(piece), g.buffer(0.01)))
            for g in geoms
        ]
        if shared and max(shared) > 0:
            k = int(np.argmax(shared))
            geoms[k] = _clean(shapely.union(geoms[k], piece))
    out["geometry"] = geoms
    return out


def _unused(cells, codes) -> None:
    taken = set(cells["code"].astype(str)) & {str(c) for c in codes}
    if taken:
        raise RedrawError(
            f"code(s) {', '.join(sorted(taken))} already exist",
            zh=f"编码 {', '.join(sorted(taken))} 已存在",
        )


def serial_name(code: str, parent_code: str, parent_name: str | None) -> str:
    """The usual name of a grid cell numbered by the CJ/T 349-2010 pattern: its
    community's name + 第N网格, N its serial without leading zeros; the code itself when
    the code does not extend the community's or the community has no name.

    >>> serial_name("540102005001003", "540102005001", "冲赛康社区")
    '冲赛康社区第3网格'
    >>> serial_name("X17", "540102005001", "冲赛康社区")
    'X17'
    """
    code, parent_code = str(code), str(parent_code)
    serial = code[len(parent_code) :]
    if not parent_name or not code.startswith(parent_code) or not serial.isdigit():
        return code
    return f"{parent_name}第{int(serial)}网格"


def next_codes(codes, parent_code: str, n: int, digits: int = 3) -> list[str]:
    """The next ``n`` free grid codes of a community: its code + a ``digits``-digit serial
    (the CJ/T 349-2010 pattern), after the highest serial in use.

    >>> next_codes(["540102001001001", "540102001001007"], "540102001001", 2)
    ['540102001001008', '540102001001009']
    """
    prefix = str(parent_code)
    used = [
        int(c[len(prefix) :])
        for c in map(str, codes)
        if c.startswith(prefix) and len(c) == len(prefix) + digits and c[len(prefix) :].isdigit()
    ]
    start = max(used, default=0) + 1
    if start + n - 1 >= 10**digits:
        raise RedrawError(
            f"community {prefix} has no free {digits}-digit grid serials left",
            zh=f"社区 {prefix} 已没有可用的 {digits} 位网格序号",
        )
    return [f"{prefix}{k:0{digits}d}" for k in range(start, start + n)]


FIGURES = ("households", "population", "floating_population")


#: The ``method`` of :func:`estimate`, in Chinese.
METHODS_ZH = {
    "household points": "户点位汇总",
    "buildings": "建筑物面积插值",
    "area-weighted from the previous cells": "按原网格面积加权",
}


def warm() -> None:
    """Import tobler now (about 1.5 s, once per process: it brings statsmodels), so that
    the first :func:`estimate` does not wait for it; a service calls this in the
    background once it is up, rather than paying it before it answers."""
    import tobler.area_weighted  # noqa: F401


def estimate(
    before: gpd.GeoDataFrame, target: gpd.GeoDataFrame, population: gpd.GeoDataFrame | None = None
) -> tuple[pd.DataFrame, str]:
    """Households and population (and floating population) of each polygon of ``target``,
    from the finest data present, unrounded.

    ``before``: the same area's cells with their figures; ``population``: optional
    household points or building polygons with ``households`` (and ``population``); all in
    one metric CRS. Returns ``(figures, method)``, one row per ``target`` row in order;
    ``method`` is ``"household points"`` (summed per polygon, a point on a shared edge
    counted once), ``"buildings"`` (tobler's area interpolation of the buildings) or
    ``"area-weighted from the previous cells"`` (the same, of ``before``). A figure the
    household data lacks comes from ``before`` by area.
    """
    from tobler.area_weighted import area_interpolate  # 1.5 s the first time: see warm()

    target = gpd.GeoDataFrame(geometry=target.geometry.values, crs=target.crs)
    figures = [f for f in FIGURES if f in before.columns and before[f].notna().any()]

    def by_area(source, fields):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = area_interpolate(
                source[fields + ["geometry"]], target, extensive_variables=fields
            )
        return pd.DataFrame({f: est[f].to_numpy(float) for f in fields})

    if population is None or not len(population):
        return by_area(before, figures), "area-weighted from the previous cells"
    pop = population[~population.geometry.is_empty]
    fields = [f for f in FIGURES if f in pop.columns and pop[f].notna().any()]
    if pop.geom_type.isin(["Point", "MultiPoint"]).all():
        method = "household points"
        pts = pop.geometry.representative_point().values
        hit_p, hit_c = shapely.STRtree(target.geometry.values).query(pts, predicate="intersects")
        first = pd.Series(hit_c, index=hit_p).groupby(level=0).first()  # once per point
        sums = pop.iloc[first.index][fields].astype(float).groupby(first.to_numpy()).sum()
        est = sums.reindex(range(len(target))).fillna(0.0).reset_index(drop=True)
    else:
        method = "buildings"
        bad = ~pop.geometry.is_valid.to_numpy()
        if bad.any():  # a footprint drawn as a bow-tie: its two lobes, not a crash
            pop = pop.copy()
            pop.loc[bad, "geometry"] = shapely.make_valid(
                pop.geometry.values[bad], method="structure"
            )
        est = by_area(pop, fields)
    rest = [f for f in figures if f not in fields]
    if rest:  # e.g. floating population, which address data rarely carries
        est = pd.concat([est, by_area(before, rest)], axis=1)
    return est, method


def reapportion(
    before: gpd.GeoDataFrame, after: gpd.GeoDataFrame, population: gpd.GeoDataFrame | None = None
) -> tuple[gpd.GeoDataFrame, str]:
    """Households and population of the changed cells ``after`` (empty geometry: removed).

    Estimated by :func:`estimate` (``before``, ``population`` and the method as there),
    then made whole numbers whose total is the rounded total of the estimates (largest
    remainder), so a split or merge keeps the households it started with. With a
    ``parent_code`` column the rounding is done per community, so that rounding never moves
    a household from one community to another.
    """
    after = after.copy()
    live = (~after.geometry.is_empty).to_numpy()
    est, method = estimate(before, after[live], population)
    groups = (
        after["parent_code"].astype(str).to_numpy()[live]
        if "parent_code" in after
        else np.zeros(int(live.sum()))
    )
    for f in est.columns:
        estimates = est[f].to_numpy(float)
        whole = np.zeros(len(estimates), dtype=int)
        for g in pd.unique(groups):
            mine = groups == g
            whole[mine] = _whole(estimates[mine])
        values = np.zeros(len(after), dtype=int)
        values[live] = whole
        after[f] = values
    return after, method


def _whole(values: np.ndarray) -> np.ndarray:
    """Whole numbers with the same rounded total (largest remainder): splitting a cell of
    101 households in half gives 51 + 50, not 50 + 50 or 51 + 51.

    >>> _whole(np.array([50.5, 50.5])).tolist()
    [51, 50]
    """
    values = np.nan_to_num(values)
    floor = np.floor(values).astype(int)
    short = int(round(values.sum())) - int(floor.sum())
    if short > 0:
        floor[np.argsort(-(values - floor), kind="stable")[:short]] += 1
    return floor
