"""Proposing grid cells for a community: contiguous, compact, each within a household band.

1. Building units: a lattice of small squares clipped to the community (about
   ``UNITS_PER_CELL`` per cell of the band), cut further by the road lines when roads are
   given, so that a cell boundary can run along a road. Households and population are
   moved onto the units from the current cells by areal interpolation (tobler), i.e.
   spread uniformly over each current cell; each unit keeps the current cell it mostly
   lies in (``old_cell``).
2. Roads: two units whose shared edge lies on a road are not joined directly. The units
   joined without crossing a road make the road blocks; a block too small for a cell, or
   holding a total that no whole number of cells divides within the band, is merged with
   the neighbouring block it shares the longest road with. Inside a block, a dead-end
   road is not crossed either: a cell goes round its end. Cells then cross a through road
   only where blocks had to be merged (``cells_across_roads`` counts them); if no
   proposal within the band is found that way, the roads are ignored.
3. Start: the current cells themselves (those under the minimum merged into a
   neighbour), or PySAL spopt's max-p construction, which groups contiguous units so
   that every region holds at least the minimum, units compared by their centres and
   their current cell's centre (so that regions follow current cells). spopt 0.7.0's
   simulated annealing is not run: it can loop forever (pysal/spopt#506).
4. The maximum, which max-p does not enforce: a region above it sheds boundary units to
   neighbouring regions with room (never breaking contiguity, the minimum or a
   neighbour's maximum); a region that cannot shed is split by max-p run on it alone,
   or together with a neighbour.
5. Local search, within the band and keeping every region contiguous: a unit whose
   region took most of its households from another current cell moves to a neighbouring
   region continuing its own cell (fewer households moved), and boundary units move
   where regions get more compact without moving more households.
6. Several attempts (``tries`` within a ``time_budget``: the current cells, then max-p
   with several seeds); the proposal within the band that moves the fewest households
   wins.
7. When the band cannot be met, the reason is said instead: a single unit above the
   maximum, a total (of the community or of a separate piece of it) that no whole number
   of cells can divide within the band, or the cells that remain outside it.

Everything is in a metric CRS; the proposed cells are numbered by the CJ/T 349-2010
pattern: community code + three-digit serial, north to south in rows, west to east in a row.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from dataclasses import dataclass, field

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

__all__ = [
    "Proposal",
    "building_units",
    "propose",
    "propose_street",
    "polsby_popper",
    "cell_figures",
    "serial_order",
]

_EPS = 1e-3  # households: interpolated totals carry float error
UNITS_PER_CELL = 12  # lattice fineness when ``target`` is not given: units per proposed cell


def polsby_popper(geoms) -> np.ndarray:
    """Compactness 4πA/P² of each polygon: 1 for a disc, about 0.785 for a square.

    >>> float(polsby_popper([shapely.box(0, 0, 1, 1)])[0].round(3))
    0.785
    """
    area = shapely.area(geoms)
    perim = shapely.length(geoms)
    return np.where(perim > 0, 4 * np.pi * area / np.where(perim > 0, perim, 1) ** 2, 0.0)


def cell_figures(households, pp, band: tuple[float, float]) -> dict:
    """How a set of cells sits against a household ``band``: their count, household range
    and spread (standard deviation), how many lie within the band and their mean
    Polsby-Popper compactness, from each cell's ``households`` and ``pp`` (arrays).

    >>> cell_figures([300, 500, 700], [0.5, 0.6, 0.7], (300, 500))["cells_in_band"]
    2
    """
    hh, pp = np.asarray(households, dtype=float), np.asarray(pp, dtype=float)
    if not len(hh):
        return {
            "cells": 0,
            "min_households": None,
            "max_households": None,
            "spread_households": None,
            "cells_in_band": 0,
            "mean_polsby_popper": None,
        }
    lo, hi = band
    return {
        "cells": int(len(hh)),
        "min_households": round(float(hh.min()), 1),
        "max_households": round(float(hh.max()), 1),
        "spread_households": round(float(hh.std()), 1),
        "cells_in_band": int(((hh >= lo - _EPS) & (hh <= hi + _EPS)).sum()),
        "mean_polsby_popper": round(float(pp.mean()), 3),
    }


def serial_order(geoms, row_height: float = 300.0) -> np.ndarray:
    """Order for serial numbers: north to south in rows of ``row_height`` metres, west to
    east within a row."""
    c = shapely.centroid(np.asarray(geoms, dtype=object))
    x, y = shapely.get_x(c), shapely.get_y(c)
    return np.lexsort((x, -np.floor(y / row_height)))


def _check_metric(frame, what: str) -> None:
    crs = getattr(frame, "crs", None)
    if crs is not None and crs.is_geographic:
        raise ValueError(
            f"{what} are in degrees ({crs.name}); reproject them first with "
            "to_crs(geo.crs.metric_crs(...))"
        )


def _line_array(roads) -> np.ndarray:
    """Road lines as an object array of shapely geometries (GeoDataFrame, GeoSeries or
    sequence)."""
    if roads is None:
        return np.empty(0, dtype=object)
    geoms = roads.geometry if isinstance(roads, gpd.GeoDataFrame) else roads
    return np.asarray(getattr(geoms, "values", geoms), dtype=object)


def _faces(lines: np.ndarray, community) -> np.ndarray:
    """The polygons that ``lines`` and the community boundary enclose inside the community
    (slivers under 1 m² dropped)."""
    noded = shapely.union_all(np.concatenate([lines, [shapely.boundary(community)]]))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) >= 1.0]
    shapely.prepare(community)
    return faces[shapely.contains(community, shapely.point_on_surface(faces))]


def building_units(
    community,
    cells: gpd.GeoDataFrame,
    *,
    target: int | None = None,
    roads=None,
    band: tuple[float, float] = (300, 500),
    population: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Lattice squares inside ``community`` (a shapely polygon, metric CRS) with
    households and population, and the cell each unit mostly lies in (``old_cell``).

    Figures come from the finest data present (:func:`geo.redraw.estimate`): household
    points or buildings given as ``population`` (same CRS), summed or interpolated per
    square; otherwise interpolated by area from ``cells``. Which was used is kept in
    ``units.attrs["method"]``.

    ``target`` is about how many squares to make; by default about ``UNITS_PER_CELL``
    per cell of the ``band``'s mean (between 60 and 400 squares). ``roads`` (lines in
    the same CRS: GeoDataFrame, GeoSeries or sequence) cut the squares they cross,
    slivers under 1 m² dropped; they are kept in ``units.attrs["roads"]`` for
    :func:`propose`.
    """
    from geo.redraw import estimate

    _check_metric(cells, "grid cells")
    if target is None:
        total = float(cells["households"].sum())
        per_unit = (band[0] + band[1]) / 2 / UNITS_PER_CELL
        target = int(np.clip(total / per_unit, 60, 400)) if np.isfinite(total) else 250
    size = max(25.0, math.sqrt(community.area / target))
    x0, y0, x1, y1 = community.bounds
    xs = np.arange(x0, x1, size)
    ys = np.arange(y0, y1, size)
    lines = _line_array(roads)
    if len(lines):
        _check_metric(roads, "roads")
        if (
            getattr(roads, "crs", None) is not None
            and cells.crs is not None
            and roads.crs != cells.crs
        ):
            raise ValueError(
                "roads and grid cells are in different CRS; bring the roads to "
                "the cells' with roads.to_crs(cells.crs)"
            )
        lines = lines[shapely.intersects(lines, community)]
        lines = shapely.clip_by_rect(lines, x0 - 1, y0 - 1, x1 + 1, y1 + 1)
    if len(lines):
        # squares cut by the roads: polygonise the lattice lines, the roads and the
        # community boundary together (one noding, one polygonize, no loop over squares)
        lattice = [shapely.linestrings([[x, y0 - 1], [x, y1 + 1]]) for x in xs[1:]] + [
            shapely.linestrings([[x0 - 1, y], [x1 + 1, y]]) for y in ys[1:]
        ]
        lattice = np.asarray(lattice, dtype=object)
        pieces = _faces(np.concatenate([lattice, lines]), community)
    else:
        boxes = shapely.box(*np.meshgrid(xs, ys), *np.meshgrid(xs + size, ys + size))
        pieces = shapely.intersection(boxes.ravel(), community)
        pieces = pieces[shapely.area(pieces) > 1.0]
    units = gpd.GeoDataFrame(geometry=pieces, crs=cells.crs)
    if population is not None:
        _check_metric(population, "household data")
        population = population[population.intersects(community)]
    est, method = estimate(cells, units, population)
    units["households"] = est["households"].to_numpy()
    units["population"] = (
        est["population"].to_numpy() if "population" in est else np.zeros(len(units))
    )
    pts = units.representative_point().values
    hit_u, hit_c = shapely.STRtree(cells.geometry.values).query(pts, predicate="within")
    old = np.full(len(units), None, dtype=object)
    old[hit_u] = cells["code"].astype(str).to_numpy()[hit_c]
    units["old_cell"] = old
    units = units.reset_index(drop=True)
    # for propose: cells should not cross these (one geometry, so pandas can compare attrs)
    units.attrs["roads"] = shapely.geometrycollections(lines)
    units.attrs["method"] = method
    return units


@dataclass
class Proposal:
    """A proposed partition: cells, the unit moves it implies, and how well it fits.

    ``labels`` gives, for each building unit, the row of ``cells`` it belongs to.
    """

    feasible: bool
    reason: str | None
    cells: gpd.GeoDataFrame | None = None
    moves: pd.DataFrame | None = None
    metrics: dict = field(default_factory=dict)
    labels: np.ndarray | None = None


ROAD_TOLERANCE = 0.5  # metres: a shared edge this close to a road line lies on the road
MAXP_CONSTRUCTION = 10  # max-p construction rounds per call; the best of them is kept
# spopt 0.7 draws from NumPy's global generator (np.random.shuffle and randint in its max-p
# construction) and takes no generator of its own. Its draws are made under this lock with
# the proposal's seed set and the previous state put back, so two proposals running in two
# threads of the server can neither take each other's draws nor change each other's result.
# (Nothing else in gridmap uses the global generator: our own draws use explicit Generators.)
_GLOBAL_RANDOM = threading.Lock()
IMPROVE_PASSES = 6  # passes of the local search after max-p
OLD_WEIGHT = 2.0  # weight of a unit's current cell's centre against its own, in max-p


def _graph(units: gpd.GeoDataFrame, roads=None) -> nx.Graph:
    """Units sharing an edge (not just a corner) are neighbours; ``length`` is the shared
    boundary in metres, and ``road`` marks edges lying (mostly) on one of the ``roads``."""
    geoms = units.geometry.values
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    a, b = left[keep], right[keep]
    between = shapely.intersection(geoms[a], geoms[b])
    shared = shapely.length(between)
    ok = shared > 0.01
    a, b, between, shared = a[ok], b[ok], between[ok], shared[ok]
    on_road = np.zeros(len(a), dtype=bool)
    lines = _line_array(roads)
    if len(lines) and len(a):
        zone = shapely.union_all(shapely.buffer(lines, ROAD_TOLERANCE, quad_segs=2))
        shapely.prepare(zone)
        near = shapely.intersects(zone, between)
        on_road[near] = (
            shapely.length(shapely.intersection(between[near], zone)) > 0.5 * shared[near]
        )
    g = nx.Graph()
    g.add_nodes_from(range(len(units)))
    g.add_edges_from(
        (int(i), int(j), {"length": float(s), "road": bool(r)})
        for i, j, s, r in zip(a, b, shared, on_road)
    )
    return g


def _fits(total: float, lo: float, hi: float) -> bool:
    """Whether some whole number of cells within ``lo``..``hi`` holds ``total``.

    >>> _fits(520, 300, 500), _fits(700, 300, 500), _fits(200, 300, 500)
    (False, True, False)
    """
    kmin, kmax = math.ceil(total / hi - _EPS), math.floor(total / lo + _EPS)
    return kmax >= 1 and kmin <= kmax


def _groups(graph: nx.Graph, hh: np.ndarray, lo: float, hi: float, follow_roads: bool):
    """Groups of units to partition separately: the blocks between roads (or, ignoring
    roads, the connected pieces of the community), a block that cannot hold whole cells
    merged into the neighbouring block it shares the longest road with. Returns the group
    of each unit, its block, and ``(households, units)`` of each piece that fits no band
    and has no neighbour to merge with."""
    inner = nx.Graph()
    inner.add_nodes_from(graph)
    inner.add_edges_from(
        (a, b) for a, b, d in graph.edges(data=True) if not (follow_roads and d["road"])
    )
    block = np.empty(len(hh), dtype=int)
    for k, comp in enumerate(nx.connected_components(inner)):
        block[list(comp)] = k
    group = block
    load = dict(enumerate(np.bincount(group, weights=hh)))
    border: dict[int, dict[int, float]] = {k: {} for k in load}
    for a, b, d in graph.edges(data=True):
        ga, gb = group[a], group[b]
        if ga != gb:
            border[ga][gb] = border[ga].get(gb, 0.0) + d["length"]
            border[gb][ga] = border[gb].get(ga, 0.0) + d["length"]
    parent = {k: k for k in load}
    stuck = set()
    while True:
        bad = [k for k in load if k not in stuck and not _fits(load[k], lo, hi)]
        if not bad:
            break
        k = min(bad, key=load.get)
        if not border[k]:
            stuck.add(k)
            continue
        j = max(border[k], key=lambda m: (_fits(load[k] + load[m], lo, hi), border[k][m]))
        load[j] += load.pop(k)  # merge k into j
        for m, length in border.pop(k).items():
            border[m].pop(k)
            if m != j:
                border[j][m] = border[j].get(m, 0.0) + length
                border[m][j] = border[m].get(j, 0.0) + length
        parent[k] = j

    def root(k):
        while parent[k] != k:
            k = parent[k]
        return k

    group = np.array([root(k) for k in group])
    unfit = [(load[k], int((group == k).sum())) for k in sorted(stuck)]
    return np.unique(group, return_inverse=True)[1], block, unfit


def _working_graph(graph: nx.Graph, group: np.ndarray, block: np.ndarray | None) -> nx.Graph:
    """``graph`` without the edges between groups, nor (given the road ``block`` of each
    unit) the edges across a road inside a block (a dead-end road: regions go round its
    end); each group stays connected."""
    g = nx.Graph()
    g.add_nodes_from(graph)
    g.add_edges_from(
        (a, b)
        for a, b, d in graph.edges(data=True)
        if group[a] == group[b] and not (block is not None and d["road"] and block[a] == block[b])
    )
    return g


def _maxp(
    attrs: np.ndarray, hh: np.ndarray, idx: np.ndarray, floor: float, graph: nx.Graph, seed: int
) -> np.ndarray:
    """Max-p regions of the (connected) units ``idx``: a label per unit (0..p-1), each
    region holding at least ``floor``; all zeros when two regions cannot be had.

    Runs spopt's max-p construction (region growing, enclave assignment; the best of
    ``MAXP_CONSTRUCTION`` rounds by within-region distance of ``attrs``) and leaves the
    local search to :func:`_improve`: the simulated annealing of spopt 0.7.0 can loop
    forever when no candidate unit borders another region (pysal/spopt#506), e.g. when
    only one region can be made. Without that function (a later spopt, fixed) the public
    ``MaxPHeuristic`` is run instead.
    """
    n = len(idx)
    if n < 2 or hh[idx].sum() < 2 * floor - _EPS:
        return np.zeros(n, dtype=int)
    local = {int(u): i for i, u in enumerate(idx)}
    neighbours = {
        i: [local[v] for v in graph.neighbors(int(u)) if v in local] for u, i in local.items()
    }
    with warnings.catch_warnings():  # libpysal and SciPy chatter about dtypes and islands
        warnings.simplefilter("ignore")
        return _maxp_quiet(attrs[idx], hh[idx].astype(float), neighbours, floor, seed)


def _maxp_quiet(a, hh, neighbours, floor, seed):
    """:func:`_maxp` on local attributes ``a``, households ``hh`` and ``neighbours``."""
    from libpysal.weights import W

    n = len(a)
    w = W(neighbours, silence_warnings=True)
    with _GLOBAL_RANDOM:
        state = np.random.get_state()
        np.random.seed(seed % 2**32)
        try:
            labels = _construct(a, hh, w, floor, n)
        except (IndexError, KeyError, ValueError):  # no region could be grown
            return np.zeros(n, dtype=int)
        finally:
            np.random.set_state(state)
    return np.unique(labels, return_inverse=True)[1]


def _construct(a, hh, w, floor, n):
    """spopt's max-p construction of ``n`` units (it draws from NumPy's global generator:
    call it under ``_GLOBAL_RANDOM`` with the seed set). A label per unit."""
    from scipy.spatial.distance import pdist, squareform

    try:
        from spopt.region.maxp import _construction_phase
    except ImportError:  # pragma: no cover - a spopt with pysal/spopt#506 fixed
        from spopt.region import MaxPHeuristic

        names = [f"a{k}" for k in range(a.shape[1])]
        model = MaxPHeuristic(
            pd.DataFrame(a, columns=names).assign(households=hh),
            w,
            names,
            "households",
            floor,
            top_n=2,
            max_iterations_construction=MAXP_CONSTRUCTION,
            max_iterations_sa=1,
        )
        model.solve()
        return np.asarray(model.labels_)
    dist = squareform(pdist(a, metric="cityblock"))
    _, found = _construction_phase(np.arange(n), a, hh, dist, w, floor, 2, MAXP_CONSTRUCTION)
    return np.asarray(
        min(found, key=lambda f: sum(dist[np.ix_(m, m)].sum() for m in f[1].values()))[0]
    )


def _contiguous_without(graph: nx.Graph, members: set, unit: int) -> bool:
    rest = members - {unit}
    return bool(rest) and nx.is_connected(graph.subgraph(rest))


def _region_neighbours(graph, labels, members) -> set:
    return {int(labels[v]) for u in members for v in graph.neighbors(u)}


def _fill_under(labels, hh, graph, lo, hi):
    """Merge each region below ``lo`` into a neighbouring region (one that stays within
    ``hi`` if any, else the lightest); regions above ``hi`` are left to :func:`_repair`."""
    stuck: set[int] = set()  # a region with no neighbour (a separate piece)
    for _ in range(len(hh)):
        load = np.bincount(labels, weights=hh)
        under = [int(r) for r in np.flatnonzero(load < lo - _EPS) if int(r) not in stuck]
        if not under:
            break
        r = min(under, key=lambda m: load[m])
        nbrs = _region_neighbours(graph, labels, np.flatnonzero(labels == r)) - {r}
        if not nbrs:
            stuck.add(r)
            continue
        t = min(nbrs, key=lambda m: (load[m] + load[r] > hi + _EPS, load[m]))
        labels[labels == r] = t
        labels = np.unique(labels, return_inverse=True)[1]
        stuck = {m - (m > r) for m in stuck}  # labels above r shifted down by one
    return labels


def _repair(labels, hh, graph, lo, hi, split, max_rounds):
    """Bring regions above ``hi`` down: shed boundary units to neighbours with room, else
    split the region by max-p (alone, else once together with its lightest neighbour)."""
    stuck: set[int] = set()
    paired: set[int] = set()
    for _ in range(max_rounds):
        load = np.bincount(labels, weights=hh)
        over = [int(r) for r in np.flatnonzero(load > hi + _EPS) if int(r) not in stuck]
        if not over:
            break
        r = max(over, key=lambda m: load[m])
        members = set(np.flatnonzero(labels == r).tolist())
        done = False
        for u in sorted(members, key=lambda m: hh[m]):
            if load[r] - hh[u] < lo - _EPS:
                continue
            room = [
                t
                for t in {int(labels[v]) for v in graph.neighbors(u)} - {r}
                if load[t] + hh[u] <= hi + _EPS
            ]
            if room and _contiguous_without(graph, members, u):
                labels[u] = min(room, key=lambda t: load[t])
                done = True
                break
        if done:
            continue
        idx = np.array(sorted(members))
        parts = split(idx)
        if parts.max() >= 1:
            labels[idx] = np.where(parts == 0, r, parts + labels.max())
            continue
        nbrs = _region_neighbours(graph, labels, members) - {r}
        if nbrs and r not in paired:
            paired.add(r)
            t = min(nbrs, key=lambda m: load[m])
            idx = np.flatnonzero((labels == r) | (labels == t))
            parts = split(idx)
            if parts.max() >= 2 or (
                parts.max() == 1
                and max(hh[idx][parts == 0].sum(), hh[idx][parts == 1].sum()) < load[r]
            ):
                labels[idx] = np.where(
                    parts == 0, r, np.where(parts == 1, t, parts + labels.max() - 1)
                )
                continue
        stuck.add(r)
    return np.unique(labels, return_inverse=True)[1]


def _successors(labels, old, hh):
    """For each region, the current cell it takes most households from (-1 if none)."""
    k = labels.max() + 1
    m = old.max() + 2
    table = np.bincount(labels * m + old + 1, weights=hh, minlength=k * m).reshape(k, m)
    table[:, 0] = -1  # units in no current cell never make a successor
    succ = table.argmax(axis=1) - 1
    return np.where(table.max(axis=1) > 0, succ, -1)


def _moved(labels, old, hh) -> float:
    """Households in units whose region does not continue their current cell."""
    return float(hh[old != _successors(labels, old, hh)[labels]].sum())


def _improve(labels, hh, old, xy, area, graph, lo, hi, passes: int | None = None):
    """Local search keeping the band and contiguity: a unit that left its current cell
    moves to a neighbouring region continuing that cell (fewer households moved); other
    boundary units move where that makes regions more compact (lower area-weighted
    squared distance to the region centre) without moving more households."""
    for _ in range(IMPROVE_PASSES if passes is None else passes):
        k = labels.max() + 1
        succ = _successors(labels, old, hh)
        load = np.bincount(labels, weights=hh, minlength=k)
        wsum = np.bincount(labels, weights=area, minlength=k)
        sx = np.bincount(labels, weights=area * xy[:, 0], minlength=k)
        sy = np.bincount(labels, weights=area * xy[:, 1], minlength=k)
        members = [set() for _ in range(k)]
        for u, r in enumerate(labels):
            members[r].add(u)
        changed = 0
        for u in range(len(labels)):
            r = labels[u]
            if load[r] - hh[u] < lo - _EPS or len(members[r]) < 2:
                continue
            near = {int(labels[v]) for v in graph.neighbors(u)} - {r}
            near = [t for t in near if load[t] + hh[u] <= hi + _EPS]
            if not near:
                continue
            wu, (x, y) = area[u], xy[u]
            # squared-distance sums: leaving r saves w·W/(W−w)·|x−c_r|², joining t costs
            # w·W/(W+w)·|x−c_t|² (c: the centres before the move)
            cr = sx[r] / wsum[r], sy[r] / wsum[r]
            lose = (
                wu * wsum[r] / (wsum[r] - wu) * ((x - cr[0]) ** 2 + (y - cr[1]) ** 2)
                if wsum[r] > wu
                else 0.0
            )
            best, best_gain = None, 1e-9 * wu * (wsum[r] / max(len(members[r]), 1))
            for t in near:
                home = old[u] >= 0 and succ[t] == old[u] != succ[r]
                if old[u] >= 0 and old[u] == succ[r] != succ[t]:
                    continue  # would move the unit out of its continued cell
                ct = sx[t] / wsum[t], sy[t] / wsum[t]
                gain = lose - wu * wsum[t] / (wsum[t] + wu) * ((x - ct[0]) ** 2 + (y - ct[1]) ** 2)
                if home:
                    gain += 1e30  # fewer moves first
                if gain > best_gain:
                    best, best_gain = t, gain
            if best is None or not _contiguous_without(graph, members[r], u):
                continue
            t = best
            labels[u] = t
            members[r].discard(u)
            members[t].add(u)
            load[r] -= hh[u]
            load[t] += hh[u]
            for arr, val in ((wsum, wu), (sx, wu * x), (sy, wu * y)):
                arr[r] -= val
                arr[t] += val
            changed += 1
        if not changed:
            break
    return labels


def _start_current(old, graph):
    """Regions that are the current cells (each connected piece of one)."""
    g = nx.Graph()
    g.add_nodes_from(graph)
    g.add_edges_from((a, b) for a, b in graph.edges if old[a] == old[b] >= 0)
    labels = np.empty(len(old), dtype=int)
    for k, comp in enumerate(nx.connected_components(g)):
        labels[list(comp)] = k
    return labels


def _solve(start, attrs, hh, old, xy, area, graph, plan, lo, hi, seed, max_rounds):
    """One attempt (``start``: ``"current"`` cells or ``"max-p"``), then repair of the
    band and local search, within the ``(group, block)`` of each unit. Region labels."""
    group, block = plan
    work = _working_graph(graph, group, block)

    def split(idx):
        return _maxp(attrs, hh, idx, lo, work, seed)

    if start == "current":
        labels = _fill_under(_start_current(old, work), hh, work, lo, hi)
    else:
        labels = np.zeros(len(hh), dtype=int)
        nxt = 0
        for g in range(group.max() + 1):
            idx = np.flatnonzero(group == g)
            parts = _maxp(attrs, hh, idx, lo, work, seed + 7919 * g)
            labels[idx] = parts + nxt
            nxt += parts.max() + 1
    labels = _repair(labels, hh, work, lo, hi, split, max_rounds)
    return _improve(labels, hh, old, xy, area, work, lo, hi)


def propose(
    units: gpd.GeoDataFrame,
    *,
    band: tuple[float, float] = (300, 500),
    community_code: str = "",
    seed: int = 0,
    max_rounds: int = 200,
    tries: int = 8,
    time_budget: float = 5.0,
    roads=None,
    follow_roads: bool = True,
    warm_start: bool = True,
) -> Proposal:
    """Partition ``units`` (from :func:`building_units`) into cells within ``band``.

    Attempts (``tries``, fewer once ``time_budget`` seconds have passed, at least one)
    start from max-p with seeds ``seed``, ``seed + 1``, …; with ``warm_start`` the first
    starts from the current cells (``old_cell``) instead and max-p compares units by their
    current cell's centre as well as their own (``OLD_WEIGHT``). The attempt with every
    cell in the band that moves the fewest households wins. Cells keep off the ``roads``
    (default: those :func:`building_units` cut the units by) where the band allows,
    unless ``follow_roads`` is false.

    >>> from shapely import box
    >>> cells = gpd.GeoDataFrame({"code": ["a", "b"], "households": [700, 300],
    ...                           "population": [2000, 900]},
    ...                          geometry=[box(0, 0, 200, 200), box(200, 0, 400, 200)])
    >>> units = building_units(box(0, 0, 400, 200), cells, target=32)
    >>> p = propose(units, band=(300, 500), community_code="540102001001")
    >>> p.feasible, list(p.cells["code"]), float(p.cells["households"].sum())
    (True, ['540102001001001', '540102001001002', '540102001001003'], 1000.0)
    """
    start_time = time.perf_counter()
    lo, hi = band
    if roads is None:
        roads = units.attrs.get("roads")
    if isinstance(roads, shapely.Geometry):
        roads = shapely.get_parts(roads)
    method = units.attrs.get("method", "area-weighted from the previous cells")
    units = units.copy(deep=False)
    units.attrs = {}
    hh = units["households"].to_numpy(float)
    total = float(hh.sum())
    if hh.max() > hi:
        i = int(hh.argmax())
        return Proposal(
            False,
            f"one building unit alone holds {hh[i]:.0f} households, more "
            f"than the maximum {hi:.0f}: split that compound first or widen "
            "the band",
        )
    kmin, kmax = math.ceil(total / hi - _EPS), math.floor(total / lo + _EPS)
    if kmin > kmax:
        return Proposal(
            False,
            f"{total:.0f} households cannot make cells of {lo:.0f}-{hi:.0f}: "
            f"{kmax} cell(s) would be too large, {kmin} too small",
        )
    graph = _graph(units, roads)
    group, _, unfit = _groups(graph, hh, lo, hi, follow_roads=False)
    if unfit:
        pieces = "; ".join(f"{h:.0f} households in {n} unit(s)" for h, n in unfit)
        return Proposal(
            False,
            f"the community is in {group.max() + 1} separate pieces and "
            f"{len(unfit)} of them cannot make cells of {lo:.0f}-{hi:.0f} "
            f"({pieces}); propose cells for such a piece together with a "
            "neighbouring community, or widen the band",
        )
    old = pd.factorize(units["old_cell"], use_na_sentinel=True)[0]
    centre = units.geometry.centroid
    xy = np.c_[centre.x.to_numpy(), centre.y.to_numpy()]
    area = units.geometry.area.to_numpy()
    attrs = xy
    if warm_start and (old >= 0).any():  # centre of each unit's current cell
        known = old >= 0
        w = np.bincount(old[known], weights=area[known])
        oxy = np.c_[
            np.bincount(old[known], weights=(area * xy[:, 0])[known]) / w,
            np.bincount(old[known], weights=(area * xy[:, 1])[known]) / w,
        ]
        attrs = np.c_[xy, OLD_WEIGHT * np.where(known[:, None], oxy[np.maximum(old, 0)], xy)]
    on_roads = _groups(graph, hh, lo, hi, follow_roads=True)[:2]  # (group, block) per unit
    any_road = any(d["road"] for _, _, d in graph.edges(data=True))
    plans = [(on_roads, "followed")] if follow_roads and any_road else []
    plans.append(((group, None), "ignored" if any_road else "none"))
    best, best_key, tried = None, None, 0
    for plan, roads_how in plans:
        for k in range(max(1, tries)):
            if k and time.perf_counter() - start_time > time_budget:
                break
            start = "current" if k == 0 and warm_start and (old >= 0).any() else "max-p"
            labels = _solve(
                start, attrs, hh, old, xy, area, graph, plan, lo, hi, seed + k, max_rounds
            )
            tried += 1
            load = np.bincount(labels, weights=hh)
            bad = int(((load < lo - _EPS) | (load > hi + _EPS)).sum())
            key = (bad, round(_moved(labels, old, hh), 6), k)
            if best_key is None or key < best_key:
                best, best_key = (labels, start, seed + k, roads_how), key
        if best_key[0] == 0:
            break
    labels, start, used_seed, roads_how = best
    return _proposal(
        units,
        labels,
        hh,
        lo,
        hi,
        community_code,
        on_roads[1],
        metrics={
            "start": start,
            "seed": used_seed,
            "tries": tried,
            "roads": roads_how,
            "figures_from": method,
            "seconds": round(time.perf_counter() - start_time, 2),
        },
    )


def _proposal(units, labels, hh, lo, hi, community_code, block, metrics) -> Proposal:
    """Cells, moves and metrics for region ``labels`` of ``units``."""
    total = float(hh.sum())
    cells = (
        units.assign(region=labels)
        .dissolve(by="region", aggfunc={"households": "sum", "population": "sum"})
        .reset_index()
    )
    order = serial_order(cells.geometry.values)
    cells = cells.iloc[order].reset_index(drop=True)
    cells["code"] = [f"{community_code}{i + 1:03d}" for i in range(len(cells))]
    row_of = np.empty(len(cells), dtype=int)
    row_of[cells["region"].to_numpy()] = np.arange(len(cells))
    cells["polsby_popper"] = np.round(polsby_popper(cells.geometry.values), 3)
    load = cells["households"].to_numpy()
    in_band = (load >= lo - _EPS) & (load <= hi + _EPS)
    cells["households"] = cells["households"].round(1)
    cells["population"] = cells["population"].round(1)
    # moves: a unit whose new cell does not continue its old cell (as in _moved, which
    # the search minimised)
    old, old_codes = pd.factorize(units["old_cell"])
    succ = _successors(labels, old, hh)
    continues = np.array([old_codes[s] if s >= 0 else None for s in succ], dtype=object)
    is_moved = old != succ[labels]
    moved = units[is_moved]
    moves = pd.DataFrame(
        {
            "unit": moved.index,
            "old_cell": moved["old_cell"],
            "new_cell": cells["code"].to_numpy()[row_of[labels[is_moved]]],
            # codes are renumbered: the old cell the new one mostly continues
            "new_cell_continues": continues[labels[is_moved]],
            "households": moved["households"].round(1),
        }
    ).reset_index(drop=True)
    # cells crossing a through road: two road blocks each covering 5 % of the cell or more
    share = pd.Series(units.geometry.area.to_numpy()).groupby([labels, block]).sum()
    share = share / share.groupby(level=0).transform("sum")
    across = (share >= 0.05).groupby(level=0).sum()
    metrics = {
        **cell_figures(load, cells["polsby_popper"], (lo, hi)),
        "households": round(total, 1),
        "band": [lo, hi],
        "households_moved": round(float(moves["households"].sum()), 1),
        "cells_across_roads": int((across > 1).sum()),
        **metrics,
    }
    cells = cells.drop(columns="region")
    if not in_band.all():
        bad = load[~in_band]
        return Proposal(
            False,
            f"{len(bad)} cell(s) remain outside {lo:.0f}-{hi:.0f} "
            f"households ({', '.join(f'{v:.0f}' for v in bad)})",
            cells,
            moves,
            metrics,
            row_of[labels],
        )
    return Proposal(True, None, cells, moves, metrics, row_of[labels])


def propose_street(
    communities: gpd.GeoDataFrame,
    cells: gpd.GeoDataFrame,
    *,
    band: tuple[float, float] = (300, 500),
    roads=None,
    target: int | None = None,
    seed: int = 0,
    tries: int = 8,
    time_budget: float = 5.0,
    follow_roads: bool = True,
    population: gpd.GeoDataFrame | None = None,
) -> dict[str, Proposal]:
    """A :class:`Proposal` for each community (by ``code``) of a street.

    ``communities`` and ``cells`` are GeoDataFrames in one metric CRS; a cell belongs to
    the community named by its ``parent_code``, or, without that column, to the one
    holding its representative point. ``roads`` (lines) and ``population`` (household
    points or buildings), same CRS, are passed to :func:`building_units`. Each community
    gets at most ``tries`` attempts and, after the first, ``time_budget`` seconds, so a
    street takes bounded time.
    """
    _check_metric(communities, "communities")
    _check_metric(cells, "grid cells")
    if cells.crs is not None and communities.crs is not None and cells.crs != communities.crs:
        raise ValueError(
            "grid cells and communities are in different CRS; bring the cells "
            "to the communities' with cells.to_crs(communities.crs)"
        )
    codes = communities["code"].astype(str).to_numpy()
    if "parent_code" in cells:
        owner = cells["parent_code"].astype(str).to_numpy()
    else:
        pts = cells.representative_point().values
        hit_c, hit_p = shapely.STRtree(communities.geometry.values).query(pts, predicate="within")
        owner = np.full(len(cells), None, dtype=object)
        owner[hit_c] = codes[hit_p]
    lines = _line_array(roads)
    tree = shapely.STRtree(lines) if len(lines) else None
    out: dict[str, Proposal] = {}
    for code, geom in sorted(zip(codes, communities.geometry.values)):
        mine = cells[owner == code]
        if mine.empty:
            out[code] = Proposal(
                False, f"community {code} has no grid cells to take households from"
            )
            continue
        near = None
        if tree is not None:
            near = gpd.GeoSeries(
                lines[tree.query(geom, predicate="intersects")], crs=getattr(roads, "crs", None)
            )
        units = building_units(
            geom, mine, target=target, roads=near, band=band, population=population
        )
        out[code] = propose(
            units,
            band=band,
            community_code=code,
            seed=seed,
            tries=tries,
            time_budget=time_budget,
            follow_roads=follow_roads,
        )
    return out
