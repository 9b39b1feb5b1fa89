"""Proposing grid cells for a community: contiguous, compact, each within a household band.

1. Building units: a lattice of small squares clipped to the community, cut further by
   the road lines when roads are given, so that a cell boundary can run along a road.
   Households and population are moved onto the units from the current cells by areal
   interpolation (tobler), i.e. spread uniformly over each current cell; each unit keeps
   the current cell it mostly lies in (``old_cell``) and the road block it lies in
   (``block``: the area enclosed by roads and the community boundary).
2. Road blocks: units are joined only within their block; a block too small for a cell,
   or holding a total that no whole number of cells divides within the band, is merged
   with the neighbouring block it shares the longest road with. Cells then never cross a
   road except where blocks had to be merged (``cells_across_roads`` counts them); if no
   proposal within the band is found that way, the roads are ignored.
3. Regions: PySAL spopt's max-p (``MaxPHeuristic``) groups contiguous units of a block so
   that every region holds at least the band's minimum, with units' centres (and their
   current cell's centre, so that regions follow current cells) as attributes.
4. Post-processing for the maximum, which max-p does not enforce: a region above it sheds
   boundary units to neighbouring regions with room (never breaking contiguity, the
   minimum or a neighbour's maximum); a region that cannot shed is split by max-p run on
   it alone, or together with a neighbour.
5. Fewer moves: a unit whose region took most of its households from another current cell
   moves to a neighbouring region that continues its own cell, when the band and
   contiguity allow. Several seeds are tried (``tries``, ``time_budget``); the proposal
   within the band that moves the fewest households wins.
6. When the band cannot be met, the reason is said instead: a single unit above the
   maximum, a total (of the community or of a separate piece of it) that no whole number
   of cells can divide within the band, or the cells that remain outside it.

Everything is in a metric CRS; the proposed cells are numbered by the CJ/T 349-2010
pattern: community code + three-digit serial, north to south in rows, west to east in a row.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

__all__ = ["Proposal", "building_units", "propose", "propose_street", "polsby_popper",
           "serial_order"]

_EPS = 1e-6
UNITS_PER_CELL = 12  # lattice fineness when ``target`` is not given: units per proposed cell


def polsby_popper(geoms) -> np.ndarray:
    """Compactness 4πA/P² of each polygon: 1 for a disc, about 0.785 for a square.

    >>> float(polsby_popper([shapely.box(0, 0, 1, 1)])[0].round(3))
    0.785
    """
    area = shapely.area(geoms)
    perim = shapely.length(geoms)
    return np.where(perim > 0, 4 * np.pi * area / np.where(perim > 0, perim, 1) ** 2, 0.0)


def serial_order(geoms, row_height: float = 300.0) -> np.ndarray:
    """Order for serial numbers: north to south in rows of ``row_height`` metres, west to
    east within a row."""
    c = shapely.centroid(np.asarray(geoms, dtype=object))
    x, y = shapely.get_x(c), shapely.get_y(c)
    return np.lexsort((x, -np.floor(y / row_height)))


def _check_metric(frame, what: str) -> None:
    crs = getattr(frame, "crs", None)
    if crs is not None and crs.is_geographic:
        raise ValueError(f"{what} are in degrees ({crs.name}); reproject them first with "
                         "to_crs(geo.crs.metric_crs(...))")


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


def building_units(community, cells: gpd.GeoDataFrame, *, target: int | None = None,
                   roads=None, band: tuple[float, float] = (300, 500)) -> gpd.GeoDataFrame:
    """Lattice squares inside ``community`` (a shapely polygon, metric CRS) with
    households and population interpolated by area from ``cells``, the cell each unit
    mostly lies in (``old_cell``) and its road block (``block``).

    ``target`` is about how many squares to make; by default about
    ``UNITS_PER_CELL`` per cell of the ``band``'s mean (between 60 and 400 squares).
    ``roads`` (lines in the same CRS: GeoDataFrame, GeoSeries or sequence) cut the squares
    they cross, slivers under 1 m² dropped; blocks are the areas roads enclose.
    """
    from tobler.area_weighted import area_interpolate

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
        if getattr(roads, "crs", None) is not None and cells.crs is not None \
                and roads.crs != cells.crs:
            raise ValueError("roads and grid cells are in different CRS; bring the roads to "
                             "the cells' with roads.to_crs(cells.crs)")
        lines = lines[shapely.intersects(lines, community)]
        lines = shapely.clip_by_rect(lines, x0 - 1, y0 - 1, x1 + 1, y1 + 1)
    if len(lines):
        # squares cut by the roads: polygonise the lattice lines, the roads and the
        # community boundary together (one noding, one polygonize, no loop over squares)
        lattice = [shapely.linestrings([[x, y0 - 1], [x, y1 + 1]]) for x in xs[1:]] + \
                  [shapely.linestrings([[x0 - 1, y], [x1 + 1, y]]) for y in ys[1:]]
        lattice = np.asarray(lattice, dtype=object)
        pieces = _faces(np.concatenate([lattice, lines]), community)
    else:
        boxes = shapely.box(*np.meshgrid(xs, ys), *np.meshgrid(xs + size, ys + size))
        pieces = shapely.intersection(boxes.ravel(), community)
        pieces = pieces[shapely.area(pieces) > 1.0]
    units = gpd.GeoDataFrame(geometry=pieces, crs=cells.crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = area_interpolate(cells[["households", "population", "geometry"]], units,
                               extensive_variables=["households", "population"])
    units["households"] = est["households"].to_numpy()
    units["population"] = est["population"].to_numpy()
    pts = units.representative_point().values
    hit_u, hit_c = shapely.STRtree(cells.geometry.values).query(pts, predicate="within")
    old = np.full(len(units), None, dtype=object)
    old[hit_u] = cells["code"].astype(str).to_numpy()[hit_c]
    units["old_cell"] = old
    units = units.reset_index(drop=True)
    units.attrs["roads"] = lines  # for propose: cells should not cross these
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
        on_road[near] = shapely.length(shapely.intersection(between[near], zone)) \
            > 0.5 * shared[near]
    g = nx.Graph()
    g.add_nodes_from(range(len(units)))
    g.add_edges_from((int(i), int(j), {"length": float(s), "road": bool(r)})
                     for i, j, s, r in zip(a, b, shared, on_road))
    return g


def _fits(total: float, lo: float, hi: float) -> bool:
    """Whether some whole number of cells within ``lo``..``hi`` holds ``total``."""
    kmin, kmax = math.ceil(total / hi - _EPS), math.floor(total / lo + _EPS)
    return kmax >= 1 and kmin <= kmax


def _groups(graph: nx.Graph, hh: np.ndarray, lo: float, hi: float, follow_roads: bool):
    """Groups of units to partition separately: road blocks (or, ignoring roads, the
    connected pieces), a block that cannot hold whole cells merged into the neighbouring
    block it shares the longest road with. Returns the group of each unit and the
    ``(households, units)`` of pieces that fit no band and have no neighbour."""
    inner = nx.Graph()
    inner.add_nodes_from(graph)
    inner.add_edges_from((a, b) for a, b, d in graph.edges(data=True)
                         if not (follow_roads and d["road"]))
    group = np.empty(len(hh), dtype=int)
    for k, comp in enumerate(nx.connected_components(inner)):
        group[list(comp)] = k
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
    _, group = np.unique(group, return_inverse=True)
    return group, unfit


def _working_graph(graph: nx.Graph, group: np.ndarray) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(graph)
    g.add_edges_from((a, b) for a, b in graph.edges if group[a] == group[b])
    return g


def _maxp(attrs: np.ndarray, hh: np.ndarray, idx: np.ndarray, floor: float, graph: nx.Graph,
          seed: int) -> np.ndarray:
    """spopt max-p on units ``idx``: region label per unit (0..p-1), each ≥ ``floor``."""
    from libpysal.weights import W
    from spopt.region import MaxPHeuristic

    local = {int(u): i for i, u in enumerate(idx)}
    neighbours = {i: [local[v] for v in graph.neighbors(int(u)) if v in local]
                  for u, i in local.items()}
    names = [f"a{k}" for k in range(attrs.shape[1])]
    sub = pd.DataFrame(attrs[idx], columns=names).assign(households=hh[idx])
    np.random.seed(seed)  # spopt draws from NumPy's global generator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MaxPHeuristic(sub, W(neighbours, silence_warnings=True), names, "households",
                              floor, top_n=2, max_iterations_construction=MAXP_CONSTRUCTION,
                              max_iterations_sa=1, verbose=False)
        model.solve()
    return np.unique(np.asarray(model.labels_), return_inverse=True)[1]


MAXP_CONSTRUCTION = 3  # max-p construction rounds per call (each good one costs one SA run)


def _contiguous_without(graph: nx.Graph, members: set, unit: int) -> bool:
    rest = members - {unit}
    return bool(rest) and nx.is_connected(graph.subgraph(rest))


def _repair(labels, hh, graph, lo, hi, split, max_rounds):
    """Bring regions above ``hi`` down: shed boundary units to neighbours with room, else
    split the region by max-p (alone, then with its lightest neighbour)."""
    stuck: set[int] = set()
    paired: set[int] = set()  # regions already re-split together with a neighbour
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
            room = [t for t in {int(labels[v]) for v in graph.neighbors(u)} - {r}
                    if load[t] + hh[u] <= hi + _EPS]
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
        nbrs = {int(labels[v]) for u in members for v in graph.neighbors(u)} - {r}
        if nbrs and r not in paired:
            paired.add(r)
            t = min(nbrs, key=lambda m: load[m])
            idx = np.flatnonzero((labels == r) | (labels == t))
            parts = split(idx)
            if parts.max() >= 2 or (parts.max() == 1 and max(
                    hh[idx][parts == 0].sum(), hh[idx][parts == 1].sum()) < load[r]):
                labels[idx] = np.where(parts == 0, r, np.where(parts == 1, t,
                                                                 parts + labels.max() - 1))
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
    succ = _successors(labels, old, hh)
    return float(hh[old != succ[labels]].sum())


def _follow_old_cells(labels, hh, old, graph, lo, hi, passes: int = 4):
    """Move units that left their current cell to a neighbouring region continuing that
    cell, keeping the band and contiguity: each move lowers the households moved."""
    for _ in range(passes):
        succ = _successors(labels, old, hh)
        load = np.bincount(labels, weights=hh)
        changed = False
        for u in np.argsort(-hh):
            r = labels[u]
            if old[u] < 0 or old[u] == succ[r] or load[r] - hh[u] < lo - _EPS:
                continue
            home = [t for t in {int(labels[v]) for v in graph.neighbors(u)}
                    if t != r and succ[t] == old[u] and load[t] + hh[u] <= hi + _EPS]
            if not home:
                continue
            members = set(np.flatnonzero(labels == r).tolist())
            if not _contiguous_without(graph, members, int(u)):
                continue
            t = min(home, key=lambda m: load[m])
            labels[u] = t
            load[r] -= hh[u]
            load[t] += hh[u]
            changed = True
        if not changed:
            break
    return labels


def _solve(attrs, hh, old, graph, group, lo, hi, seed, max_rounds):
    """One attempt: max-p per group, repair of the maximum, fewer moves. Region labels."""
    work = _working_graph(graph, group)
    labels = np.zeros(len(hh), dtype=int)
    nxt = 0
    for g in range(group.max() + 1):
        idx = np.flatnonzero(group == g)
        if math.floor(hh[idx].sum() / lo + _EPS) > 1:
            parts = _maxp(attrs, hh, idx, lo, work, seed + 7919 * g)
        else:
            parts = np.zeros(len(idx), dtype=int)
        labels[idx] = parts + nxt
        nxt += parts.max() + 1
    labels = _repair(labels, hh, work, lo, hi,
                     lambda idx: _maxp(attrs, hh, idx, lo, work, seed), max_rounds)
    labels = _follow_old_cells(labels, hh, old, work, lo, hi)
    return labels


def propose(units: gpd.GeoDataFrame, *, band: tuple[float, float] = (300, 500),
            community_code: str = "", seed: int = 0, max_rounds: int = 2000, tries: int = 4,
            time_budget: float = 5.0, roads=None, follow_roads: bool = True,
            old_weight: float = 0.5) -> Proposal:
    """Partition ``units`` (from :func:`building_units`) into cells within ``band``.

    Tries seeds ``seed``, ``seed + 1``, … (``tries`` of them, fewer once ``time_budget``
    seconds have passed; at least one) and keeps the proposal within the band that moves
    the fewest households. With ``follow_roads``, cells keep within road blocks (units'
    ``block``) where the band allows. ``old_weight`` weighs the centre of a unit's current
    cell against its own centre in max-p's attributes (0: compactness only).
    """
    start = time.perf_counter()
    lo, hi = band
    hh = units["households"].to_numpy(float)
    total = float(hh.sum())
    if hh.max() > hi:
        i = int(hh.argmax())
        return Proposal(False, f"one building unit alone holds {hh[i]:.0f} households, more "
                               f"than the maximum {hi:.0f}: split that compound first or widen "
                               "the band")
    kmin, kmax = math.ceil(total / hi - _EPS), math.floor(total / lo + _EPS)
    if kmin > kmax:
        return Proposal(False, f"{total:.0f} households cannot make cells of {lo:.0f}-{hi:.0f}: "
                               f"{kmax} cell(s) would be too large, {kmin} too small")
    if roads is None:
        roads = units.attrs.get("roads")
    graph = _graph(units, roads if follow_roads else None)
    group, unfit = _groups(graph, hh, lo, hi, follow_roads=False)
    if unfit:
        pieces = "; ".join(f"{h:.0f} households in {n} unit(s)" for h, n in unfit)
        return Proposal(False, f"the community is in {group.max() + 1} "
                               f"separate pieces and {len(unfit)} of them cannot make cells of "
                               f"{lo:.0f}-{hi:.0f} ({pieces}); propose cells for the pieces "
                               "together with a neighbouring community, or widen the band")
    old = pd.factorize(units["old_cell"], use_na_sentinel=True)[0]
    centre = units.geometry.centroid
    cx, cy = centre.x.to_numpy(), centre.y.to_numpy()
    area = units.geometry.area.to_numpy()
    attrs = np.c_[cx, cy]
    if old_weight > 0 and (old >= 0).any():
        w = np.bincount(old[old >= 0], weights=area[old >= 0])
        ox = np.bincount(old[old >= 0], weights=(area * cx)[old >= 0]) / w
        oy = np.bincount(old[old >= 0], weights=(area * cy)[old >= 0]) / w
        attrs = np.c_[cx, cy, old_weight * np.where(old >= 0, ox[old], cx),
                      old_weight * np.where(old >= 0, oy[old], cy)]
    plans = [(_groups(graph, hh, lo, hi, follow_roads=True)[0], "followed")] \
        if any(d["road"] for _, _, d in graph.edges(data=True)) else []
    plans.append((group, "ignored" if plans else "none"))
    best, best_key, tried = None, None, 0
    for plan, how in plans:
        for k in range(max(1, tries)):
            if tried and time.perf_counter() - start > time_budget:
                break
            labels = _solve(attrs, hh, old, graph, plan, lo, hi, seed + k, max_rounds)
            tried += 1
            load = np.bincount(labels, weights=hh)
            bad = int(((load < lo - _EPS) | (load > hi + _EPS)).sum())
            key = (bad, _moved(labels, old, hh))
            if best_key is None or key < best_key:
                best, best_key = (labels, seed + k, how), key
        if best_key[0] == 0:
            break
    labels, used_seed, how = best
    return _proposal(units, labels, hh, lo, hi, community_code, graph, metrics={
        "seed": used_seed, "tries": tried, "roads": how,
        "seconds": round(time.perf_counter() - start, 2)})


def _proposal(units, labels, hh, lo, hi, community_code, graph, metrics) -> Proposal:
    """Cells, moves and metrics for region ``labels`` of ``units``."""
    total = float(hh.sum())
    cells = units.assign(region=labels).dissolve(by="region", aggfunc={
        "households": "sum", "population": "sum"}).reset_index()
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
    # moves: a unit whose new cell is not the successor of its old cell
    units_out = units.assign(new_cell=cells["code"].to_numpy()[row_of[labels]])
    successor = (units_out.groupby(["new_cell", "old_cell"])["households"].sum()
                 .sort_values(ascending=False).reset_index()
                 .drop_duplicates("new_cell").set_index("new_cell")["old_cell"])
    moved = units_out[units_out["old_cell"] != units_out["new_cell"].map(successor)]
    moves = pd.DataFrame({"unit": moved.index, "old_cell": moved["old_cell"],
                          "new_cell": moved["new_cell"],
                          "households": moved["households"].round(1)}).reset_index(drop=True)
    across = {int(labels[a]) for a, b, d in graph.edges(data=True)
              if d["road"] and labels[a] == labels[b]}
    hcell = cells["households"].to_numpy()
    metrics = {"cells": len(cells), "households": round(total, 1), "band": [lo, hi],
               "min_households": float(hcell.min()), "max_households": float(hcell.max()),
               "spread_households": round(float(hcell.std()), 1),
               "cells_in_band": int(in_band.sum()),
               "mean_polsby_popper": round(float(cells["polsby_popper"].mean()), 3),
               "households_moved": round(float(moves["households"].sum()), 1),
               "cells_across_roads": len(across), **metrics}
    cells = cells.drop(columns="region")
    if not in_band.all():
        bad = load[~in_band]
        return Proposal(False, f"{len(bad)} cell(s) remain outside {lo:.0f}-{hi:.0f} "
                               f"households ({', '.join(f'{v:.0f}' for v in bad)})",
                        cells, moves, metrics, row_of[labels])
    return Proposal(True, None, cells, moves, metrics, row_of[labels])


def propose_street(communities: gpd.GeoDataFrame, cells: gpd.GeoDataFrame, *,
                   band: tuple[float, float] = (300, 500), roads=None,
                   target: int | None = None, seed: int = 0, tries: int = 4,
                   time_budget: float = 5.0, follow_roads: bool = True) -> dict[str, Proposal]:
    """A :class:`Proposal` for each community (by ``code``) of a street.

    ``communities`` and ``cells`` are GeoDataFrames in one metric CRS; a cell belongs to
    the community named by its ``parent_code``, or, without that column, to the one
    holding its representative point. ``roads`` (lines, same CRS) are passed to
    :func:`building_units`. Each community gets at most ``tries`` seeds and, after the
    first, ``time_budget`` seconds, so a street takes bounded time.
    """
    _check_metric(communities, "communities")
    _check_metric(cells, "grid cells")
    if cells.crs is not None and communities.crs is not None and cells.crs != communities.crs:
        raise ValueError("grid cells and communities are in different CRS; bring cells to "
                         "the communities' with cells.to_crs(communities.crs)")
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
            out[code] = Proposal(False, f"community {code} has no grid cells to take "
                                        "households from")
            continue
        near = None
        if tree is not None:
            near = gpd.GeoSeries(lines[tree.query(geom, predicate="intersects")],
                                 crs=getattr(roads, "crs", None))
        units = building_units(geom, mine, target=target, roads=near, band=band)
        out[code] = propose(units, band=band, community_code=code, seed=seed, tries=tries,
                            time_budget=time_budget, follow_roads=follow_roads)
    return out
