"""An aligned layout: each unit a jurisdiction should follow given whole to one jurisdiction
(派出所辖区 = whole streets, 社区警务区 = whole communities), moving the fewest households.

The reform the alignment table measures (:mod:`geo.alignment`) asks for jurisdictions
that are unions of whole units. :func:`propose_alignment` chooses, for every unit, the
jurisdiction that takes it whole:

- **fewest households moved**: the households of a unit that already belong to the
  jurisdiction taking it stay; those in its other pieces change station. Households in a
  piece are the grid cells' figures spread over each cell (areal interpolation,
  :func:`geo.alignment.population_in`); with no grid, area decides.
- **every jurisdiction contiguous**: its units form one connected group (units sharing
  at least :data:`MIN_SHARED_BORDER_M` of border), and every jurisdiction keeps at
  least one unit — one of those it mostly holds now, if any (a station is neither
  abolished nor moved across the city by redrawing lines);
- optionally a **workload band**: households per jurisdiction between ``band[0]`` and
  ``band[1]``.

Each unit going to the jurisdiction holding most of its households is the fewest-moves
answer; when it meets the constraints it is optimal and no solver runs. Otherwise the
assignment is a mixed-integer programme (contiguity as a single-commodity flow from one
root unit per jurisdiction, Shirabe 2005) solved by HiGHS, the MIP solver SciPy ships
(a 100,000-cell city in pairs of streets with a workload band: 13.8 s with CBC); the answer says
whether the solver proved it optimal. Where no assignment meets the constraints, the
reasons say why, in Chinese and English.

Inputs are GeoDataFrames in one metric CRS (metres) with ``code`` (and ``name``)
columns; areas are m², households and population the grid's figures.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.alignment import _pieces, population_in, posts_outside
from geo.crs import to_crs
from geo.dataset import Dataset
from geo.edges import fingerprints, segments
from geo.errors import InputError, NotFound
from geo.findings import Tolerances, polygon_parts, upper_width, width
from geo.kinds import KINDS, hierarchy, jurisdictions
from geo.strict_json import finite

if TYPE_CHECKING:  # imported where used: 0.2 s of every service start otherwise
    import networkx as nx

__all__ = [
    "MIN_SHARED_BORDER_M",
    "Realignment",
    "propose_alignment",
    "propose_for_layer",
    "units_for",
    "unit_adjacency",
    "aligned_layout",
]

#: Units sharing less border than this (m) are not neighbours: meeting at a corner, or
#: along a digitising sliver, does not join two parts of a jurisdiction.
MIN_SHARED_BORDER_M = 5.0

# Weight of a unit's area share in the objective, below one household: with equal
# households (or none), the jurisdiction covering more of the unit takes it.
_AREA_WEIGHT = 1e-3


@dataclass
class Realignment:
    """A proposed aligned layout of jurisdiction layer ``layer`` over units of ``follows``.

    status : 'optimal' (proved: the fewest households moved under the constraints),
        'feasible' (the solver's time ran out first: a valid layout, not proved the
        best) or 'infeasible' (no layout meets the constraints: see ``reasons``).
    units : per unit — ``code``, ``name``, ``current`` (the jurisdiction holding most of
        its households now), ``assigned``, ``households``, ``population``, ``area_m2``.
    transfers : the pieces that change hands (划转清单), metric CRS — ``unit``,
        ``unit_name``, ``from`` (None: covered by no jurisdiction now, 三不管),
        ``from_name``, ``to``, ``to_name``, ``area_m2``, ``width_m`` (to 1 mm or 1 %
        of it, whichever is coarser), ``kind`` ('real' or
        'sliver'), ``households``, ``population``, ``posts`` (codes of police posts in the
        piece: they change station), ``post_names``.
    stations : per jurisdiction, before and after — ``units_before``/``units_after``
        (codes), ``households_*``, ``population_*``, ``area_km2_*``, ``posts_*``,
        ``posts_outside_*`` (its own posts outside its area, where posts name their
        ``station``), and ``in_band`` when a band is set.
    proposed : the jurisdictions with their new outlines (the union of their units),
        metric CRS; empty when infeasible.
    summary : households/population/area moved, the fewest households any layout without
        the constraints would move, pieces, the solver and the seconds taken.
    reasons : explanations (``{"reason", "zh", "en", ...}``): why no layout exists, or
        what the constraints cost against the fewest-moves answer.
    """

    layer: str
    follows: str
    status: str
    band: tuple[int, int] | None
    units: pd.DataFrame
    transfers: gpd.GeoDataFrame
    stations: pd.DataFrame
    proposed: gpd.GeoDataFrame
    summary: dict
    reasons: list[dict] = field(default_factory=list)

    @property
    def assignment(self) -> dict[str, str]:
        """``{unit code: jurisdiction code}`` (empty when infeasible)."""
        if self.status == "infeasible":
            return {}
        return dict(zip(self.units["code"], self.units["assigned"]))

    def transfer_list(self) -> pd.DataFrame:
        """The transfer list (划转清单) as a table: a row per piece that changes hands,
        posts' codes and names joined by spaces, no geometry."""
        table = pd.DataFrame(self.transfers.drop(columns=self.transfers.geometry.name))
        for column in ("posts", "post_names"):
            table[column] = [" ".join(v) for v in table[column]]
        return table

    def to_dict(self) -> dict:
        """The proposal as JSON-ready data; geometries (``transfers``, ``proposed``) as
        GeoJSON FeatureCollections in lon/lat WGS 84, coordinates to 7 decimals."""
        return finite(
            {
                "layer": self.layer,
                "follows": self.follows,
                "status": self.status,
                "band": list(self.band) if self.band else None,
                "summary": self.summary,
                "reasons": self.reasons,
                "assignment": self.assignment,
                "units": self.units.to_dict("records"),
                "stations": self.stations.to_dict("records"),
                "transfers": _lonlat_features(self.transfers),
                "proposed": _lonlat_features(self.proposed),
            }
        )


def _lonlat_features(gdf: gpd.GeoDataFrame) -> dict:
    """A GeoDataFrame as a GeoJSON FeatureCollection (dict) in lon/lat, 7 decimals."""
    if not len(gdf):
        return {"type": "FeatureCollection", "features": []}
    out = to_crs(gdf, "EPSG:4326")
    out[out.geometry.name] = shapely.set_precision(out.geometry.values, 1e-7)
    return json.loads(out.to_json(drop_id=True, na="null", ensure_ascii=False))


# ---------------------------------------------------------------------------- geometry
def unit_adjacency(units: gpd.GeoDataFrame, *, min_shared: float = MIN_SHARED_BORDER_M) -> nx.Graph:
    """Neighbouring units (row positions as nodes): pairs whose borders run together for
    at least ``min_shared`` metres, within half a metre of each other (so that units
    whose shared edges were digitised twice, slightly apart, still touch).

    >>> import geopandas as gpd
    >>> row = gpd.GeoDataFrame(geometry=[shapely.box(i, 0, i + 10, 10) for i in (0, 10, 30)])
    >>> sorted(unit_adjacency(row).edges())
    [(0, 1)]
    """
    import networkx as nx  # imported where used (see the TYPE_CHECKING import above)

    geoms = np.asarray(units.geometry.values, dtype=object)
    graph = nx.Graph()
    graph.add_nodes_from(range(len(geoms)))
    if len(geoms) < 2:
        return graph
    a, b = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=0.5)
    keep = a < b
    a, b = a[keep], b[keep]
    # borders drawn from the same edges share their segments exactly: add those up first
    exact = _shared_exactly(geoms)
    shared = np.array([exact.get(pair, 0.0) for pair in zip(a.tolist(), b.tolist())])
    rest = np.flatnonzero(shared < min_shared)  # the others, within half a metre
    if len(rest):
        edges = shapely.boundary(geoms)
        others, at = np.unique(b[rest], return_inverse=True)
        near = shapely.buffer(edges[others], 0.5, cap_style="flat")
        shared[rest] = shapely.length(shapely.intersection(edges[a[rest]], near[at]))
    graph.add_edges_from(zip(a[shared >= min_shared].tolist(), b[shared >= min_shared].tolist()))
    return graph


def _shared_exactly(geoms) -> dict[tuple[int, int], float]:
    """Length (m) of the outline segments each pair of polygons ``(i, j)``, i < j, have in
    common, coordinate for coordinate (:mod:`geo.edges`).

    >>> _shared_exactly(np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)]))
    {(0, 1): 1.0}
    """
    owner, seg = segments(geoms)
    key = fingerprints(seg)
    order = np.argsort(key, kind="stable")
    key, owner = key[order], owner[order]
    length = np.hypot(seg[order, 2] - seg[order, 0], seg[order, 3] - seg[order, 1])
    # each run of one segment: every two polygons in it share it (mostly runs of two)
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    size = np.diff(np.r_[first, len(key)])
    a, b, shared = [], [], []
    for run in (2, *np.unique(size[size > 2]).tolist()):
        starts = first[size == run]
        for i in range(run):
            for j in range(i + 1, run):
                a.append(owner[starts + i])
                b.append(owner[starts + j])
                shared.append(length[starts])
    if not a:
        return {}
    a, b, shared = np.concatenate(a), np.concatenate(b), np.concatenate(shared)
    keep = a != b  # a polygon's own ring met twice is no neighbour
    lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    n = len(geoms)
    pairs, at = np.unique(lo * n + hi, return_inverse=True)
    total = np.bincount(at, weights=shared[keep], minlength=len(pairs))
    return {(int(p // n), int(p % n)): float(t) for p, t in zip(pairs.tolist(), total)}


def aligned_layout(
    jurisdictions: gpd.GeoDataFrame, units: gpd.GeoDataFrame, assignment: dict[str, str]
) -> gpd.GeoDataFrame:
    """The jurisdictions with each outline the union of the units ``assignment`` gives it
    (``{unit code: jurisdiction code}``), other columns kept; any CRS (both frames in the
    same). :class:`~geo.errors.InputError` naming what is wrong when the assignment does
    not give every unit to a known jurisdiction, or leaves a jurisdiction with none."""
    jcodes = jurisdictions["code"].astype(str).tolist()
    ucodes = units["code"].astype(str).tolist()
    unknown_units = sorted(set(assignment) - set(ucodes))
    missing = [u for u in ucodes if u not in assignment]
    unknown = sorted({str(j) for j in assignment.values()} - set(jcodes))
    empty = sorted(set(jcodes) - {str(j) for j in assignment.values()})
    problems = []
    if unknown_units:
        problems.append(("units not in the layer: ", "图层中没有这些单元：", unknown_units))
    if missing:
        problems.append(("units given to no one: ", "未分配的单元：", missing))
    if unknown:
        problems.append(("unknown jurisdictions: ", "不存在的辖区：", unknown))
    if empty:
        problems.append(("jurisdictions left with no unit: ", "没有任何单元的辖区：", empty))
    if problems:
        raise InputError(
            "the assignment is not a layout: "
            + "; ".join(en + ", ".join(v[:10]) for en, _, v in problems),
            zh="分配方案无效：" + "；".join(zh + "、".join(v[:10]) for _, zh, v in problems),
        )
    geoms = np.asarray(units.geometry.values, dtype=object)
    of = np.array([str(assignment[u]) for u in ucodes], dtype=object)
    out = jurisdictions.copy()
    out[out.geometry.name] = [shapely.make_valid(shapely.union_all(geoms[of == j])) for j in jcodes]
    return out


# ---------------------------------------------------------------------------- the layout
def units_for(layer: str, unit: str | None = None) -> str:
    """The hierarchy layer whose whole units jurisdiction ``layer`` should be made of: its
    kind's (``follows``), or ``unit`` (any hierarchy kind: a department's grid may be
    compared with the communities as well as with the base grid).
    :class:`~geo.errors.InputError` naming the valid choices otherwise.

    >>> units_for("police_area"), units_for("grid_urban"), units_for("grid_urban", "community")
    ('street', 'grid', 'community')
    """
    follows = jurisdictions().get(layer)
    if follows is None:
        raise InputError(
            f"'{layer}' is not a jurisdiction layer; must be one of {', '.join(jurisdictions())}",
            zh=f"“{layer}”不是辖区图层；可用：{', '.join(jurisdictions())}",
        )
    if unit is not None and unit not in hierarchy():
        raise InputError(
            f"'{unit}' is not a unit layer; must be one of {', '.join(hierarchy())}",
            zh=f"“{unit}”不是可对齐的单元图层；可用：{', '.join(hierarchy())}",
        )
    return unit or follows


def propose_for_layer(
    layers,
    layer: str,
    *,
    unit: str | None = None,
    band: tuple[int, int] | None = None,
    time_limit: float = 30.0,
) -> Realignment:
    """:func:`propose_alignment` for jurisdiction layer ``layer`` of a dataset (a
    :class:`~geo.dataset.Dataset` or ``{kind: GeoDataFrame}``) over the units its kind
    follows (or ``unit``: see :func:`units_for`), measured in the dataset's metric CRS,
    with its grid cells' households and its police posts. :class:`~geo.errors.InputError`
    or :class:`~geo.errors.NotFound` naming the layer when it is not a jurisdiction or the
    dataset lacks a layer needed."""
    ds = Dataset.of(layers)
    follows = units_for(layer, unit)
    for needed in (layer, follows):
        if needed not in ds:
            raise NotFound(
                f"this dataset has no {needed} layer ({KINDS[needed].en_plural.lower()})",
                zh=f"该数据集没有{KINDS[needed].zh}图层",
            )
    return propose_alignment(
        ds.metric(layer),
        ds.metric(follows),
        ds.metric("grid") if "grid" in ds else None,
        ds.metric("facility") if "facility" in ds else None,
        layer=layer,
        follows=follows,
        band=band,
        time_limit=time_limit,
    )


def propose_alignment(
    jurisdictions: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    grid: gpd.GeoDataFrame | None = None,
    facilities: gpd.GeoDataFrame | None = None,
    *,
    layer: str = "police_area",
    follows: str = "street",
    band: tuple[int, int] | None = None,
    time_limit: float = 30.0,
    tolerances: Tolerances = Tolerances(),
    min_shared: float = MIN_SHARED_BORDER_M,
) -> Realignment:
    """An aligned layout of ``jurisdictions`` over ``units`` (see the module docstring).

    Parameters
    ----------
    jurisdictions, units : polygons in one metric CRS, with ``code`` and ``name``.
    grid : cells with ``households`` and ``population`` (same CRS): what a move costs.
    facilities : points with ``kind`` (same CRS): police posts in pieces that change hands.
    band : (min, max) households per jurisdiction after the change, or None.
    time_limit : seconds the solver may take when the fewest-moves answer does not meet
        the constraints; past it the best layout found is returned as 'feasible'.
    """
    start = time.perf_counter()
    if band is not None and not 0 <= band[0] <= band[1]:
        raise InputError(
            "the workload band must be min ≤ max households, both ≥ 0",
            zh="户数范围须满足 0 ≤ 最小值 ≤ 最大值",
        )
    crs = jurisdictions.crs
    J, U = len(jurisdictions), len(units)
    jcode = jurisdictions["code"].astype(str).to_numpy()
    jname = _names(jurisdictions)
    ucode = units["code"].astype(str).to_numpy()
    uname = _names(units)
    ugeom = np.asarray(units.geometry.values, dtype=object)

    # pieces of each jurisdiction in each unit, and the households in them
    ji, ui, inter = _pieces(jurisdictions, units)
    inter = np.asarray(inter, dtype=object)
    areas = shapely.area(inter)
    has_grid = grid is not None and {"households", "population"} <= set(grid.columns)
    if has_grid:
        both = population_in(np.concatenate([inter, ugeom]), grid).to_numpy()
        piece_fig, unit_fig = both[: len(inter)], both[len(inter) :]
    else:
        piece_fig, unit_fig = np.zeros((len(inter), 2)), np.zeros((U, 2))
    unit_area = shapely.area(ugeom)
    score = piece_fig[:, 0] + _AREA_WEIGHT * areas / np.maximum(unit_area[ui], 1e-9)
    # a piece counts for a jurisdiction's claim on a unit unless it is a sliver or noise
    claims = upper_width(inter) >= tolerances.sliver_width

    current = np.full(U, -1)
    best = np.full(U, -np.inf)
    for j, u, s in zip(ji, ui, score):
        if s > best[u]:
            best[u], current[u] = s, j
    candidates: list[set[int]] = [set() for _ in range(U)]
    for j, u, c in zip(ji, ui, claims):
        if c:
            candidates[u].add(int(j))
    for u in range(U):
        if current[u] >= 0:
            candidates[u].add(int(current[u]))
    graph = unit_adjacency(units, min_shared=min_shared)
    if band is not None:  # a workload band may need a unit to go to a neighbour's station
        for u in range(U):
            for v in graph.neighbors(u):
                candidates[u] |= {int(current[v])} if current[v] >= 0 else set()

    kept = np.zeros((U, J))  # score of each (unit, jurisdiction) pair
    np.add.at(kept, (ui, ji), score)
    totals = unit_fig[:, 0]

    reasons = _impossible(J, U, candidates, totals, band, jcode, jname, ucode, uname)
    assigned, solver, proven = None, "none", False
    if not reasons:
        greedy = current.copy()
        split = _split(greedy, graph, J)
        empty = sorted(set(range(J)) - set(greedy[greedy >= 0].tolist()))
        if (greedy >= 0).all() and not split and not empty and _in_band(greedy, totals, J, band):
            assigned, solver, proven = greedy, "fewest moves (no solver needed)", True
        else:
            assigned, proven, solver = _solve(
                kept, candidates, current, graph, totals, J, band, time_limit
            )
            if assigned is None:
                reasons = _why_not(
                    kept, candidates, current, graph, totals, J, band, time_limit, jcode, jname
                )
            else:
                reasons = _costs(split, empty, greedy, assigned, kept, jcode, jname, ucode, uname)
    status = "infeasible" if assigned is None else "optimal" if proven else "feasible"

    units_out = pd.DataFrame(
        {
            "code": ucode,
            "name": uname,
            "current": [jcode[j] if j >= 0 else None for j in current],
            "assigned": [jcode[j] for j in assigned] if assigned is not None else None,
            "households": unit_fig[:, 0].round(1),
            "population": unit_fig[:, 1].round(1),
            "area_m2": unit_area.round(1),
        }
    )
    posts = _posts(facilities)
    if assigned is None:
        transfers = gpd.GeoDataFrame(
            pd.DataFrame(columns=_TRANSFER_COLUMNS), geometry="geometry", crs=crs
        )
        proposed = jurisdictions.iloc[:0].copy()
    else:
        transfers = _transfers(
            ji, ui, inter, piece_fig, assigned, ugeom, unit_fig, posts,
            jcode, jname, ucode, uname, tolerances, crs,
        )  # fmt: skip
        proposed = aligned_layout(
            jurisdictions, units, {ucode[u]: jcode[j] for u, j in enumerate(assigned)}
        )
    stations = _stations(jurisdictions, proposed, current, assigned, ji, piece_fig, unit_fig,
                         ucode, posts, band)  # fmt: skip
    moved = transfers[transfers["from"].notna()] if len(transfers) else transfers
    real = moved[moved["kind"] == "real"] if len(moved) else moved
    summary = {
        "households_moved": round(float(moved["households"].sum()) if len(moved) else 0.0, 1),
        "population_moved": round(float(moved["population"].sum()) if len(moved) else 0.0, 1),
        "area_moved_m2": round(float(real["area_m2"].sum()) if len(real) else 0.0, 1),
        "households_moved_fewest": round(
            float(sum(_households_off(piece_fig, ji, ui, current))), 1
        ),
        "pieces": int(len(real)),
        "slivers": int(len(moved) - len(real)),
        "gaps_closed_m2": round(
            float(transfers.loc[transfers["from"].isna(), "area_m2"].sum()) if len(transfers)
            else 0.0, 1),
        "units_changed": int((units_out["current"] != units_out["assigned"]).sum())
        if assigned is not None else 0,
        "posts_moved": int(sum(len(p) for p in moved["posts"])) if len(moved) else 0,
        "solver": solver,
        "seconds": round(time.perf_counter() - start, 3),
    }  # fmt: skip
    return Realignment(layer, follows, status, band, units_out, transfers, stations, proposed,
                       summary, reasons)  # fmt: skip


def _names(gdf) -> np.ndarray:
    return (gdf["name"] if "name" in gdf else gdf["code"]).astype(str).to_numpy()


def _households_off(piece_fig, ji, ui, current):
    """Households of each piece not in its unit's current jurisdiction: what the
    fewest-moves answer (every unit to the one holding most of it) moves."""
    return piece_fig[ji != current[ui], 0]


def _split(assigned, graph: nx.Graph, J: int) -> dict[int, list[list[int]]]:
    """Jurisdictions whose units fall apart: ``{j: [units of each part]}``."""
    import networkx as nx

    out = {}
    for j in range(J):
        mine = np.flatnonzero(assigned == j).tolist()
        if len(mine) > 1:
            parts = [sorted(c) for c in nx.connected_components(graph.subgraph(mine))]
            if len(parts) > 1:
                out[j] = sorted(parts, key=len, reverse=True)
    return out


def _in_band(assigned, totals, J, band) -> bool:
    if band is None:
        return True
    load = np.bincount(assigned, weights=totals, minlength=J)
    return bool(((load >= band[0] - 1e-6) & (load <= band[1] + 1e-6)).all())


def _solve(kept, candidates, current, graph, totals, J, band, time_limit, contiguous=True):
    """The assignment keeping the most households (and area) under the constraints, as a
    mixed-integer programme solved by HiGHS (:func:`scipy.optimize.milp`, asked for a
    zero gap): ``(assigned, proved optimal, solver)``, or ``(None, False, solver)`` when
    none exists (or none was found in time).

    Columns: ``x[u, j]`` (unit u goes to jurisdiction j, binary) for each candidate pair;
    for each jurisdiction with two or more candidate units, ``root[u]`` (binary: the unit
    its flow starts from) and a flow ``f[a, b] ≥ 0`` along each border between two of
    them (Shirabe 2005)."""
    from scipy.optimize import Bounds, LinearConstraint, milp  # 0.25 s: where it is solved

    model = _Model()
    x = {
        (u, j): model.column(binary=True)
        for u in range(len(candidates))
        for j in sorted(candidates[u])
    }
    for u, choices in enumerate(candidates):
        model.row({x[u, j]: 1.0 for j in choices}, 1, 1)  # every unit to one jurisdiction
    members: dict[int, list[int]] = {j: [] for j in range(J)}
    for u, j in x:
        members[j].append(u)
    for j, mine in members.items():
        # a station keeps one of the units it mostly holds now (it is not moved across
        # the city), or, holding none mostly, some unit
        own = [u for u in mine if current[u] == j] or mine
        model.row({x[u, j]: 1.0 for u in own}, 1, np.inf)
        if band is not None:
            model.row({x[u, j]: float(totals[u]) for u in mine}, band[0], band[1])
        if not contiguous or len(mine) < 2:
            continue
        # one root per jurisdiction sends a unit of flow to each other unit it takes,
        # along borders between units it takes: it can reach them all only if they connect
        n = len(mine)
        root = {u: model.column(binary=True) for u in mine}
        model.row(dict.fromkeys(root.values(), 1.0), 1, 1)
        net = {u: {x[u, j]: -1.0, root[u]: float(n)} for u in mine}  # inflow - outflow ≥ x - n·root
        for a, b in graph.subgraph(mine).edges():
            for tail, head in ((a, b), (b, a)):
                f = model.column()
                model.row({f: 1.0, x[tail, j]: -(n - 1.0)}, -np.inf, 0)
                model.row({f: 1.0, x[head, j]: -(n - 1.0)}, -np.inf, 0)
                net[head][f] = 1.0
                net[tail][f] = -1.0
        for u in mine:
            model.row({root[u]: 1.0, x[u, j]: -1.0}, -np.inf, 0)
            model.row(net[u], 0, np.inf)
    objective = np.zeros(model.columns)
    for (u, j), col in x.items():
        objective[col] = -float(kept[u, j])  # milp minimises
    matrix, lower, upper = model.constraints()
    res = milp(
        objective,
        integrality=model.integrality(),
        bounds=Bounds(0.0, model.upper_bounds()),
        constraints=[LinearConstraint(matrix, lower, upper)],
        options={"time_limit": max(1.0, float(time_limit)), "mip_rel_gap": 0.0},
    )
    if res.x is None:
        return None, False, "HiGHS: " + ("infeasible" if res.status == 2 else res.message)
    proved = res.status == 0
    assigned = np.full(len(candidates), -1)
    for (u, j), col in x.items():
        if res.x[col] > 0.5:
            assigned[u] = j
    return assigned, proved, "HiGHS optimal" if proved else "HiGHS: best found in time"


class _Model:
    """A mixed-integer programme written sparse, row by row: columns are numbered as
    they are made; each row is ``{column: coefficient}`` with its bounds."""

    def __init__(self):
        self.columns = 0
        self._binary: list[bool] = []
        self._rows: list[dict[int, float]] = []
        self._bounds: list[tuple[float, float]] = []

    def column(self, *, binary: bool = False) -> int:
        self._binary.append(binary)
        self.columns += 1
        return self.columns - 1

    def row(self, coefficients: dict[int, float], lower: float, upper: float) -> None:
        self._rows.append(coefficients)
        self._bounds.append((lower, upper))

    def constraints(self):
        """``(sparse matrix, lower bounds, upper bounds)`` of the rows."""
        import scipy.sparse as sp

        sizes = [len(r) for r in self._rows]
        rows = np.repeat(np.arange(len(self._rows)), sizes)
        cols = np.fromiter((c for r in self._rows for c in r), dtype=np.int64, count=sum(sizes))
        vals = np.fromiter(
            (v for r in self._rows for v in r.values()), dtype=float, count=sum(sizes)
        )
        matrix = sp.csr_matrix((vals, (rows, cols)), shape=(len(self._rows), self.columns))
        lower, upper = np.array(self._bounds, dtype=float).reshape(-1, 2).T
        return matrix, lower, upper

    def integrality(self) -> np.ndarray:
        return np.array(self._binary, dtype=np.uint8)

    def upper_bounds(self) -> np.ndarray:
        """1 for binary columns, unbounded for flows."""
        return np.where(self._binary, 1.0, np.inf)


def _msg(reason: str, en: str, zh: str, **extra) -> dict:
    return {"reason": reason, "en": en, "zh": zh, **extra}


def _impossible(J, U, candidates, totals, band, jcode, jname, ucode, uname) -> list[dict]:
    """Reasons no layout can exist, found without solving."""
    out = []
    if U < J:
        out.append(_msg("too_few_units",
                        f"{J} jurisdictions but only {U} units: each must keep a whole unit",
                        f"共 {J} 个辖区，但只有 {U} 个单元：每个辖区至少要有一个完整单元"))  # fmt: skip
    claimed = set().union(*candidates) if candidates else set()
    lost = [j for j in range(J) if j not in claimed]
    if lost:
        names = "、".join(f"{jname[j]}（{jcode[j]}）" for j in lost)
        out.append(_msg("no_unit",
                        "no unit is mostly or substantially in "
                        + ", ".join(f"{jname[j]} ({jcode[j]})" for j in lost)
                        + ": it would keep no whole unit",
                        f"{names} 不含任何单元的主要部分：调整后将没有完整单元",
                        jurisdictions=[jcode[j] for j in lost]))  # fmt: skip
    if band is not None:
        lo, hi = band
        total = float(totals.sum())
        if total < J * lo or total > J * hi:
            out.append(_msg("band_total",
                            f"{total:,.0f} households cannot be shared among {J} "
                            f"jurisdictions of {lo}–{hi} each",
                            f"共 {total:,.0f} 户，无法分给 {J} 个辖区且每个 {lo}–{hi} 户"))  # fmt: skip
        big = np.flatnonzero(totals > hi)
        if len(big):
            out.append(_msg("unit_over_band",
                            "units holding more than the band's maximum alone: "
                            + ", ".join(f"{uname[u]} ({ucode[u]}, {totals[u]:,.0f})" for u in big[:10]),
                            f"单个单元户数已超过上限 {hi}："
                            + "、".join(f"{uname[u]}（{totals[u]:,.0f} 户）" for u in big[:10]),
                            units=[ucode[u] for u in big]))  # fmt: skip
    return out


def _why_not(
    kept, candidates, current, graph, totals, J, band, time_limit, jcode, jname
) -> list[dict]:
    """Why the solver found no layout: contiguity, the band, or the two together."""
    loose, _, _ = _solve(kept, candidates, current, graph, totals, J, band, time_limit, False)
    if loose is None:
        return [_msg("band",
                     f"no assignment of whole units (each to a jurisdiction holding part of "
                     f"it or of a neighbour) keeps every jurisdiction within "
                     f"{band[0]}–{band[1]} households" if band else
                     "no assignment gives every jurisdiction a whole unit",
                     f"没有任何整单元分配（每个单元划给现管其部分或其相邻单元的辖区）能使每个辖区户数在 "
                     f"{band[0]}–{band[1]} 之间" if band else
                     "没有任何整单元分配能使每个辖区至少有一个单元")]  # fmt: skip
    split = _split(loose, graph, J)
    names_en = ", ".join(f"{jname[j]} ({jcode[j]})" for j in split)
    names_zh = "、".join(f"{jname[j]}（{jcode[j]}）" for j in split)
    return [_msg("contiguity",
                 "whole units can be shared out"
                 + (" within the band" if band else "")
                 + f", but then {names_en or 'some jurisdiction'} falls into separate parts; "
                 "no layout keeps every jurisdiction in one piece",
                 "整单元可以分配" + ("且满足户数范围" if band else "")
                 + f"，但{names_zh or '部分辖区'}会被分成互不相连的几块：没有使每个辖区连成一片的方案",
                 jurisdictions=[jcode[j] for j in split])]  # fmt: skip


def _costs(split, empty, greedy, assigned, kept, jcode, jname, ucode, uname) -> list[dict]:
    """What the constraints cost: where the fewest-moves answer (each unit to the
    jurisdiction holding most of its households) would split a jurisdiction or leave one
    with no unit, and the households the layout moves beyond it."""
    extra = float(
        sum(kept[u, g] - kept[u, a] for u, (g, a) in enumerate(zip(greedy, assigned)) if g >= 0)
    )
    out = []
    for j, parts in split.items():
        cut = [ucode[u] for part in parts[1:] for u in part]
        out.append(_msg("contiguity",
                        f"giving each unit to the jurisdiction holding most of its households "
                        f"would leave {jname[j]} ({jcode[j]}) in {len(parts)} separate parts "
                        f"(units {', '.join(cut)} apart); the layout keeps it in one piece",
                        f"若每个单元都划给其大部分住户所属的辖区，{jname[j]}将分成 {len(parts)} 块"
                        f"互不相连（单元 {'、'.join(cut)} 不相连）；本方案使其连成一片",
                        jurisdictions=[jcode[j]], units=cut))  # fmt: skip
    for j in empty:
        out.append(_msg("no_unit",
                        f"no unit has most of its households in {jname[j]} ({jcode[j]}); "
                        "the layout gives it one so that it keeps an area",
                        f"没有单元的大部分住户属于{jname[j]}；本方案为其保留一个单元",
                        jurisdictions=[jcode[j]]))  # fmt: skip
    if out or extra > 0.05:
        out.append(_msg("cost",
                        f"these constraints move {extra:,.1f} households more than the fewest "
                        "possible",
                        f"满足这些约束比最少调整多调整 {extra:,.1f} 户", households=round(extra, 1)))  # fmt: skip
    return out


_TRANSFER_COLUMNS = [
    "unit", "unit_name", "from", "from_name", "to", "to_name", "area_m2", "width_m", "kind",
    "households", "population", "posts", "post_names", "geometry",
]  # fmt: skip


def _posts(facilities) -> gpd.GeoDataFrame | None:
    if facilities is None or "kind" not in facilities or not len(facilities):
        return None
    posts = facilities[(facilities["kind"] == "police_post").to_numpy()]
    return posts if len(posts) else None


def _posts_in(posts, geoms) -> list[list[int]]:
    """Row positions of the posts inside each geometry."""
    out = [[] for _ in range(len(geoms))]
    if posts is None or not len(geoms):
        return out
    g, p = shapely.STRtree(posts.geometry.values).query(np.asarray(geoms), predicate="intersects")
    for a, b in zip(g, p):
        out[a].append(int(b))
    return out


def _transfers(ji, ui, inter, piece_fig, assigned, ugeom, unit_fig, posts,
               jcode, jname, ucode, uname, tolerances, crs) -> gpd.GeoDataFrame:  # fmt: skip
    """The pieces changing hands: each jurisdiction's piece of a unit another takes, and
    the part of each unit that no jurisdiction holds now (三不管)."""
    rows = []
    moving = np.flatnonzero(ji != assigned[ui])
    for p in moving:
        rows.append((ui[p], ji[p], inter[p], piece_fig[p]))
    # the part of each unit in no jurisdiction now
    for u in _maybe_uncovered(ui, inter, ugeom, tolerances):
        held = inter[ui == u]
        rest = shapely.difference(ugeom[u], shapely.union_all(held))
        if not rest.is_empty:
            rows.append((u, -1, rest, None))
    if not rows:
        return gpd.GeoDataFrame(pd.DataFrame(columns=_TRANSFER_COLUMNS), geometry="geometry",
                                crs=crs)  # fmt: skip
    # the polygons of each piece (an intersection may bring lines and points along)
    geoms = np.array([_polygonal(r[2]) for r in rows], dtype=object)
    w = width(geoms, relative=0.01)  # to 1 % (or 1 mm): a wide piece to 0.1 % took 15 ms
    keep = w >= tolerances.noise_width
    rows = [r for r, k in zip(rows, keep) if k]
    geoms, w = geoms[keep], w[keep]
    gaps = [i for i, r in enumerate(rows) if r[3] is None]
    figs = np.array([r[3] if r[3] is not None else (0.0, 0.0) for r in rows]).reshape(-1, 2)
    if gaps:  # households in the uncovered parts: the unit's share by area
        for i in gaps:
            u = rows[i][0]
            share = shapely.area(geoms[i]) / max(shapely.area(ugeom[u]), 1e-9)
            figs[i] = unit_fig[u] * share
    inside = _posts_in(posts, geoms)
    pcode = posts["code"].astype(str).to_numpy() if posts is not None else np.array([])
    pname = _names(posts) if posts is not None else np.array([])
    frame = gpd.GeoDataFrame(
        {
            "unit": [ucode[r[0]] for r in rows],
            "unit_name": [uname[r[0]] for r in rows],
            "from": [jcode[r[1]] if r[1] >= 0 else None for r in rows],
            "from_name": [jname[r[1]] if r[1] >= 0 else None for r in rows],
            "to": [jcode[assigned[r[0]]] for r in rows],
            "to_name": [jname[assigned[r[0]]] for r in rows],
            "area_m2": shapely.area(geoms).round(1),
            "width_m": w.round(3),
            "kind": np.where(w < tolerances.sliver_width, "sliver", "real"),
            "households": figs[:, 0].round(1),
            "population": figs[:, 1].round(1),
            "posts": [[str(pcode[i]) for i in ins] for ins in inside],
            "post_names": [[str(pname[i]) for i in ins] for ins in inside],
        },
        geometry=geoms,
        crs=crs,
    )
    return frame.sort_values(["kind", "households", "area_m2"], ascending=[True, False, False],
                             ignore_index=True)  # fmt: skip


def _maybe_uncovered(ui, inter, ugeom, tolerances) -> np.ndarray:
    """The units whose pieces (``inter``, of unit ``ui``) may leave a part of them wider
    than the noise width uncovered. A unit is wholly covered, but for noise, when its
    pieces do not overlap one another and their areas add up to its own within the area
    of a disc noise_width across; only the others need the union and difference that
    find the uncovered part (most units of a city have one piece or two side by side)."""
    areas = shapely.area(inter)  # every piece has area (geo.alignment._pieces)
    deficit = shapely.area(ugeom) - np.bincount(ui, weights=areas, minlength=len(ugeom))
    suspect = deficit >= np.pi / 4 * tolerances.noise_width**2
    # pieces of one unit that overlap each other cover less than their areas add up to
    order = np.argsort(ui, kind="stable")
    for group in np.split(order, np.flatnonzero(np.diff(ui[order])) + 1):
        if len(group) < 2 or suspect[ui[group[0]]]:
            continue
        suspect[ui[group[0]]] = any(
            shapely.relate_pattern(inter[a], inter[b], "T********")  # interiors meet
            for i, a in enumerate(group)
            for b in group[i + 1 :]
        )
    return np.flatnonzero(suspect)


def _polygonal(geom):
    """The polygonal part of a geometry (an empty polygon if it has none)."""
    if shapely.get_type_id(geom) in (
        shapely.GeometryType.POLYGON,
        shapely.GeometryType.MULTIPOLYGON,
    ):
        return geom
    parts = polygon_parts([geom])
    return shapely.union_all(parts) if len(parts) else shapely.Polygon()


def _stations(jurisdictions, proposed, current, assigned, ji, piece_fig, unit_fig, ucode,
              posts, band) -> pd.DataFrame:  # fmt: skip
    """Each jurisdiction before and after the layout."""
    J = len(jurisdictions)
    before = np.zeros((J, 2))
    np.add.at(before, ji, piece_fig)
    out = pd.DataFrame(
        {
            "code": jurisdictions["code"].astype(str).to_numpy(),
            "name": _names(jurisdictions),
            "units_before": [ucode[current == j].tolist() for j in range(J)],
            "households_before": before[:, 0].round(1),
            "population_before": before[:, 1].round(1),
            "area_km2_before": (shapely.area(jurisdictions.geometry.values) / 1e6).round(4),
            "posts_before": [len(p) for p in _posts_in(posts, jurisdictions.geometry.values)],
        }
    )
    if assigned is None:
        return out
    after = np.zeros((J, 2))
    np.add.at(after, assigned, unit_fig)
    out["units_after"] = [ucode[assigned == j].tolist() for j in range(J)]
    out["households_after"] = after[:, 0].round(1)
    out["population_after"] = after[:, 1].round(1)
    out["area_km2_after"] = (shapely.area(proposed.geometry.values) / 1e6).round(4)
    out["posts_after"] = [len(p) for p in _posts_in(posts, proposed.geometry.values)]
    if posts is not None and "station" in posts:
        out["posts_outside_before"] = posts_outside(jurisdictions, posts)
        out["posts_outside_after"] = posts_outside(proposed, posts)
    if band is not None:
        out["in_band"] = (after[:, 0] >= band[0] - 1e-6) & (after[:, 0] <= band[1] + 1e-6)
    return out
