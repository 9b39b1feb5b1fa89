"""Proposing grid cells for a community: contiguous, compact, each within a household band.

1. Building units: a lattice of small squares clipped to the community; households and
   population are moved onto them from the current cells by areal interpolation (tobler),
   i.e. spread uniformly over each current cell.
2. Regions: PySAL spopt's max-p (``MaxPHeuristic``) groups contiguous units so that every
   region holds at least the band's minimum, with units' centres as the attribute so that
   regions stay compact.
3. Post-processing for the maximum, which max-p does not enforce: a region above it sheds
   boundary units to neighbouring regions with room (never breaking contiguity or a
   neighbour's maximum), and a region that cannot shed is split by max-p run on it alone.
4. When the band cannot be met, the reason is said instead: a single unit above the
   maximum, or a total that no whole number of cells can divide within the band.

Everything is in a metric CRS; the proposed cells are numbered by the CJ/T 349-2010
pattern: community code + three-digit serial, north to south in rows, west to east in a row.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

__all__ = ["Proposal", "building_units", "propose", "polsby_popper", "serial_order"]


def polsby_popper(geoms) -> np.ndarray:
    """Compactness 4πA/P² of each polygon: 1 for a disc, about 0.785 for a square."""
    area = shapely.area(geoms)
    perim = shapely.length(geoms)
    return np.where(perim > 0, 4 * np.pi * area / np.where(perim > 0, perim, 1) ** 2, 0.0)


def serial_order(geoms, row_height: float = 300.0) -> np.ndarray:
    """Order for serial numbers: north to south in rows of ``row_height`` metres, west to
    east within a row."""
    c = shapely.centroid(np.asarray(geoms, dtype=object))
    x, y = shapely.get_x(c), shapely.get_y(c)
    return np.lexsort((x, -np.floor(y / row_height)))


def building_units(community, cells: gpd.GeoDataFrame, *, target: int = 250) -> gpd.GeoDataFrame:
    """About ``target`` lattice squares inside ``community`` with households and population
    interpolated by area from ``cells`` (metric CRS), and the cell each unit mostly lies in
    (``old_cell``)."""
    from tobler.area_weighted import area_interpolate

    size = max(25.0, math.sqrt(community.area / target))
    x0, y0, x1, y1 = community.bounds
    xs = np.arange(x0, x1, size)
    ys = np.arange(y0, y1, size)
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
    pts = units.representative_point()
    hit_u, hit_c = shapely.STRtree(cells.geometry.values).query(pts.values, predicate="within")
    old = np.full(len(units), None, dtype=object)
    old[hit_u] = cells["code"].astype(str).to_numpy()[hit_c]
    units["old_cell"] = old
    return units.reset_index(drop=True)


@dataclass
class Proposal:
    """A proposed partition: cells, the unit moves it implies, and how well it fits."""

    feasible: bool
    reason: str | None
    cells: gpd.GeoDataFrame | None = None
    moves: pd.DataFrame | None = None
    metrics: dict = field(default_factory=dict)
    labels: np.ndarray | None = None


def _graph(units: gpd.GeoDataFrame) -> nx.Graph:
    """Units sharing an edge (not just a corner) are neighbours."""
    geoms = units.geometry.values
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    g = nx.Graph()
    g.add_nodes_from(range(len(units)))
    shared = shapely.length(shapely.intersection(geoms[left[keep]], geoms[right[keep]]))
    g.add_edges_from((int(a), int(b)) for a, b, s in zip(left[keep], right[keep], shared) if s > 0.01)
    return g


def _maxp(units: gpd.GeoDataFrame, idx: np.ndarray, floor: float, graph: nx.Graph, seed: int):
    """spopt max-p on units ``idx``: region label per unit (0..p-1), each ≥ ``floor``."""
    from libpysal.weights import W
    from spopt.region import MaxPHeuristic

    sub = units.iloc[idx].copy().reset_index(drop=True)
    local = {int(u): i for i, u in enumerate(idx)}
    neighbours = {i: [local[v] for v in graph.neighbors(int(u)) if v in local]
                  for u, i in local.items()}
    c = sub.geometry.centroid
    sub["cx"], sub["cy"] = c.x, c.y
    np.random.seed(seed)  # spopt draws from NumPy's global generator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MaxPHeuristic(sub, W(neighbours, silence_warnings=True), ["cx", "cy"],
                              "households", floor, top_n=2, max_iterations_construction=20,
                              max_iterations_sa=5, verbose=False)
        model.solve()
    return np.asarray(model.labels_)


def _contiguous_without(graph, members: set, unit: int) -> bool:
    rest = members - {unit}
    return bool(rest) and nx.is_connected(graph.subgraph(rest))


def propose(units: gpd.GeoDataFrame, *, band: tuple[float, float] = (300, 500),
            community_code: str = "", seed: int = 0, max_rounds: int = 2000) -> Proposal:
    """Partition ``units`` (from :func:`building_units`) into cells within ``band``."""
    lo, hi = band
    hh = units["households"].to_numpy(float)
    total = float(hh.sum())
    if hh.max() > hi:
        i = int(hh.argmax())
        return Proposal(False, f"one building unit alone holds {hh[i]:.0f} households, more "
                               f"than the maximum {hi:.0f}: split that compound first or widen "
                               "the band")
    kmin, kmax = math.ceil(total / hi), math.floor(total / lo)
    if kmin > kmax:
        return Proposal(False, f"{total:.0f} households cannot make cells of {lo:.0f}-{hi:.0f}: "
                               f"{kmax} cell(s) would be too large, {kmin} too small")
    graph = _graph(units)
    if not nx.is_connected(graph):
        return Proposal(False, "the community is in several separate pieces; propose cells "
                               "for each piece")
    labels = _maxp(units, np.arange(len(units)), lo, graph, seed) if kmax > 1 else \
        np.zeros(len(units), dtype=int)
    # Post-process the maximum: shed boundary units to neighbours with room, else split.
    for _ in range(max_rounds):
        load = pd.Series(hh).groupby(labels).sum()
        over = load[load > hi]
        if over.empty:
            break
        r = int(over.index[0])
        members = set(np.flatnonzero(labels == r).tolist())
        moved = False
        for u in sorted(members, key=lambda m: hh[m]):
            targets = {int(labels[v]) for v in graph.neighbors(u)} - {r}
            room = [t for t in targets if load[t] + hh[u] <= hi]
            if room and _contiguous_without(graph, members, u):
                labels[u] = min(room, key=lambda t: load[t])
                moved = True
                break
        if not moved:
            idx = np.array(sorted(members))
            parts = _maxp(units, idx, lo, graph, seed)
            if len(set(parts)) < 2:
                break
            labels[idx] = parts + labels.max() + 1
    load = pd.Series(hh).groupby(labels).sum()
    bad = load[(load < lo - 1e-6) | (load > hi + 1e-6)]
    cells = units.assign(region=labels).dissolve(by="region", aggfunc={
        "households": "sum", "population": "sum"}).reset_index()
    order = serial_order(cells.geometry.values)
    cells = cells.iloc[order].reset_index(drop=True)
    cells["code"] = [f"{community_code}{i + 1:03d}" for i in range(len(cells))]
    new_code = dict(zip(cells["region"], cells["code"]))
    cells["polsby_popper"] = np.round(polsby_popper(cells.geometry.values), 3)
    cells["households"] = cells["households"].round(1)
    cells["population"] = cells["population"].round(1)
    # moves: a unit whose new cell is not the successor of its old cell
    units_out = units.assign(new_cell=[new_code[r] for r in labels])
    successor = (units_out.groupby(["new_cell", "old_cell"])["households"].sum()
                 .sort_values(ascending=False).reset_index()
                 .drop_duplicates("new_cell").set_index("new_cell")["old_cell"])
    moved = units_out[units_out["old_cell"] != units_out["new_cell"].map(successor)]
    moves = pd.DataFrame({"unit": moved.index, "old_cell": moved["old_cell"],
                          "new_cell": moved["new_cell"],
                          "households": moved["households"].round(1)}).reset_index(drop=True)
    hcell = cells["households"].to_numpy()
    metrics = {"cells": len(cells), "households": round(total, 1), "band": [lo, hi],
               "min_households": float(hcell.min()), "max_households": float(hcell.max()),
               "spread_households": round(float(hcell.std()), 1),
               "mean_polsby_popper": round(float(cells["polsby_popper"].mean()), 3),
               "households_moved": round(float(moves["households"].sum()), 1)}
    if len(bad):
        return Proposal(False, f"{len(bad)} cell(s) remain outside {lo:.0f}-{hi:.0f} "
                               f"households ({', '.join(f'{v:.0f}' for v in bad)})",
                        cells, moves, metrics, labels)
    return Proposal(True, None, cells.drop(columns="region"), moves, metrics, labels)
