"""Access to service sites: nearest facility, coverage against a standard, siting.

:class:`Access` is built once per dataset. Distances are walking distances along the road
network when the dataset has roads (:class:`geo.network.RoadNetwork`), straight-line metres
otherwise; every answer says which (``method``: ``network`` or ``straight``).

Population inside a grid cell is spread by a stated rule: **uniformly over the cell**. Each
cell is represented by its representative point plus a regular lattice of points inside it
(at most about a dozen, at least 75 m apart), each carrying an equal share of the cell's
households and population. A point is covered when a facility of the kind lies within the
kind's service radius (:func:`load_profiles`).

Siting uses the maximal covering (MCLP) and set covering (LSCP) models of
:mod:`geo.location_models`, built sparse and solved by HiGHS. Distances are only computed
within the service radius, and the models only for the still-uncovered demand: which
candidate reaches which demand point is a sparse matrix, from which each model is built.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from pyproj import Transformer
from shapely.ops import substring

from geo.crs import transformer
from geo.dataset import Dataset
from geo.location_models import max_coverage, set_cover
from geo.strict_json import coordinates

__all__ = ["load_profiles", "demand_points", "Access", "SitingProblem"]

PROFILES = Path(__file__).with_name("service_profiles.json")
SEARCH_LIMIT_M = 50_000.0  # beyond this a facility counts as unreachable
# lon/lat in answers: seven decimals (about 1 cm), the precision the served layers use
LONLAT_DECIMALS = 7


_LINE_JSON = '{{"type":"LineString","coordinates":[{}]}}'


def line_json(line) -> str | None:
    """The JSON text of a GeoJSON LineString (None for None), numbers as json writes them."""
    return None if line is None else _LINE_JSON.format(coordinates(shapely.get_coordinates(line)))


def load_profiles(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """Service profiles per facility kind: ``{"radius_m", "minutes", "source"}``.

    ``path`` (or ``GRIDMAP_PROFILES``) overrides the defaults kind by kind.
    """
    profiles = json.loads(PROFILES.read_text(encoding="utf-8"))
    path = path or os.environ.get("GRIDMAP_PROFILES")
    if path:
        profiles.update(json.loads(Path(path).read_text(encoding="utf-8")))
    return {k: v for k, v in profiles.items() if not k.startswith("_")}


def demand_points(
    grid: gpd.GeoDataFrame, *, per_cell: int = 12, min_spacing: float = 75.0
) -> gpd.GeoDataFrame:
    """Points carrying each cell's households and population, spread uniformly.

    ``grid`` is in a metric CRS. Returns one row per point with ``cell`` (position in
    ``grid``), ``households`` and ``population`` (floats; they sum to the cell's figures)
    and ``is_centre`` (the cell's representative point, used for its nearest distance).
    """
    rows = []
    for i, (geom, hh, pop) in enumerate(
        zip(grid.geometry.values, grid["households"], grid["population"])
    ):
        centre = geom.representative_point()
        spacing = max(min_spacing, np.sqrt(geom.area / per_cell))
        x0, y0, x1, y1 = geom.bounds
        xs = np.arange(x0 + spacing / 2, x1, spacing)
        ys = np.arange(y0 + spacing / 2, y1, spacing)
        lattice = (
            shapely.points(np.array(np.meshgrid(xs, ys)).reshape(2, -1).T)
            if len(xs) and len(ys)
            else np.array([], dtype=object)
        )
        inside = lattice[shapely.contains(geom, lattice)] if len(lattice) else lattice
        pts = [centre, *inside]
        share = 1.0 / len(pts)
        rows += [
            {
                "cell": i,
                "households": float(hh) * share,
                "population": float(pop) * share,
                "is_centre": j == 0,
                "geometry": p,
            }
            for j, p in enumerate(pts)
        ]
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=grid.crs)


@dataclass(frozen=True)
class SitingProblem:
    """A siting problem (:meth:`Access.siting_problem`): ``covering``, demand points ×
    useful candidates, true where the candidate reaches the point within ``radius``
    metres; ``weights``, the households of each demand point; ``sites``, the useful
    candidates (points, metric CRS); ``candidates``, how many were tried in all;
    ``open_households``, households no existing facility covers (reachable or not)."""

    covering: sp.csc_matrix
    weights: np.ndarray
    sites: np.ndarray
    candidates: int
    radius: float
    open_households: float


class Access:
    """Nearest-facility, coverage and siting queries on one dataset.

    Parameters
    ----------
    layers : a :class:`~geo.dataset.Dataset` (or ``{name: GeoDataFrame}``) with
        ``facility`` points, ``grid`` cells and, optionally, ``road`` lines (any CRS);
        distances are measured in its metric CRS.
    profiles : service profiles (default :func:`load_profiles`).
    """

    @property
    def _to_metric(self) -> Transformer:
        """lon/lat → the metric CRS (this thread's, see :func:`geo.crs.transformer`)."""
        return transformer("EPSG:4326", self.crs)

    @property
    def _to_lonlat(self) -> Transformer:
        return transformer(self.crs, "EPSG:4326")

    def _lonlat_of(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Metric coordinates as answered: lon/lat to seven decimals (about 1 cm, RFC 7946's
        advice and the precision the served layers use)."""
        lon, lat = self._to_lonlat.transform(x, y)
        return np.round(lon, LONLAT_DECIMALS), np.round(lat, LONLAT_DECIMALS)

    def __init__(
        self, layers: Dataset | dict[str, gpd.GeoDataFrame], *, profiles: dict | None = None
    ):
        self.profiles = profiles or load_profiles()
        layers = Dataset.of(layers)
        self.crs = layers.metric_crs
        self.facilities = layers.metric("facility").reset_index(drop=True)
        self.grid = layers.metric("grid").reset_index(drop=True) if "grid" in layers else None
        self.demand = demand_points(self.grid) if self.grid is not None else None
        # facilities' lon/lat as answered: as the served layer gives them (1e-7 degree)
        lonlat = shapely.set_precision(
            layers.lonlat("facility").geometry.values, 10.0**-LONLAT_DECIMALS
        )
        self._lon, self._lat = shapely.get_coordinates(lonlat).T
        self._cache: dict = {}
        # facility attributes as plain arrays, read by every lookup
        self._codes = self.facilities["code"].astype(str).to_numpy()
        self._names = self.facilities["name"].astype(str).to_numpy()
        self._kinds = self.facilities["kind"].astype(str).to_numpy()
        self._by_code = {c: i for i, c in reversed(list(enumerate(self._codes)))}
        self._of = {str(kd): np.flatnonzero(self._kinds == kd) for kd in sorted(set(self._kinds))}
        roads = layers.get("road")
        self.method = "network" if roads is not None and len(roads) else "straight"
        if self.method == "network":
            from geo.network import RoadNetwork  # SciPy's graphs: 0.4 s, when roads are met

            self.net = RoadNetwork(layers.metric("road").geometry.values)
            self.fac_nodes = self.net.add_sites(self.facilities.geometry.values)
            self.demand_nodes = (
                self.net.add_sites(self.demand.geometry.values)
                if self.demand is not None
                else np.zeros(0, dtype=int)
            )
            # the nearest facility of each kind from every node, computed once: a lookup
            # is then two array reads, not a Dijkstra per request
            self._trees = {
                kd: self.net.nearest_tree(self.fac_nodes[self._of_kind(kd)], SEARCH_LIMIT_M)
                for kd in self.kinds()
            }
            self._node_facility = dict(zip(self.fac_nodes.tolist(), range(len(self.fac_nodes))))
            # and every node's way back to it, in lon/lat: a route is then put together
            # from array slices, with no geometry work per request
            self._walks = {
                kd: tree.walks().project(self._lonlat_of) for kd, tree in self._trees.items()
            }

    # ------------------------------------------------------------------ distances
    def kinds(self) -> list[str]:
        return list(self._of)

    def _of_kind(self, kind: str) -> np.ndarray:
        idx = self._of.get(kind, np.zeros(0, dtype=int))
        if not len(idx):
            raise ValueError(
                f"no facilities of kind '{kind}'; kinds here: {', '.join(self.kinds())}"
            )
        return idx

    def _point_to_facilities(self, pt, idx, limit) -> np.ndarray:
        """Distances (m) from a metric point to facilities ``idx`` (inf beyond ``limit``).
        A point the metric CRS cannot hold (the far side of the globe projects to infinity)
        reaches none."""
        if not np.isfinite([pt.x, pt.y]).all():
            return np.full(len(idx), np.inf)
        if self.method == "straight":
            d = shapely.distance(self.facilities.geometry.values[idx], pt)
            return np.where(d <= limit, d, np.inf)
        d = self.net.from_point(pt, limit)[self.fac_nodes[idx]]
        return np.where(d <= limit, d, np.inf)

    def route(self, lon: float, lat: float, code: str):
        """The walking route (lon/lat LineString) from a point to the facility ``code``;
        None without roads or when it is unreachable."""
        if self.method != "network":
            return None
        i = self._by_code.get(code)
        if i is None:
            return None
        pt = shapely.Point(*self._to_metric.transform(lon, lat))
        if not np.isfinite([pt.x, pt.y]).all():
            return None
        node = int(self.fac_nodes[i])
        tree = self._trees[self._kinds[i]]
        entry = self.net.entries([pt])
        nearest, _, via = tree.at(pt, entry)
        if nearest == node:  # the nearest of its kind: its way is in the kind's tree
            line = tree.route(via, pt, entry)
        else:
            line = self.net.path(node, pt, SEARCH_LIMIT_M)
        if line is None:
            return None
        return shapely.transform(
            line, lambda c: np.column_stack(self._to_lonlat.transform(c[:, 0], c[:, 1]))
        )

    def nearest(
        self,
        lon: float,
        lat: float,
        *,
        kind: str | None = None,
        k: int = 1,
        paths: bool | str = False,
    ) -> list[dict]:
        """The k nearest facilities (of ``kind``, or of each kind) from a lon/lat point:
        ``{code, name, kind, distance_m, method, lon, lat}``; ``distance_m`` is None and
        ``unreachable`` True when none is reachable within 50 km. ``paths``: with each
        route as a lon/lat LineString (``path``; None without roads or out of reach);
        ``paths="json"``: each route as the JSON text of that GeoJSON LineString (how the
        web service answers: the walks' texts are kept, so no geometry is built)."""
        pt = shapely.Point(*self._to_metric.transform(lon, lat))
        kinds = [kind] if kind else self.kinds()
        if k == 1 and self.method == "network" and np.isfinite([pt.x, pt.y]).all():
            return self._nearest_in_trees(lon, lat, pt, kinds, paths)
        out = []
        for kd in kinds:
            idx = self._of_kind(kd)
            d = self._point_to_facilities(pt, idx, SEARCH_LIMIT_M)
            for i in np.argsort(d, kind="stable")[:k]:
                ok = bool(np.isfinite(d[i]))
                out.append(self._answer(idx[i], kd, float(d[i]) if ok else None))
                if paths:
                    line = self.route(lon, lat, out[-1]["code"]) if ok else None
                    out[-1]["path"] = line_json(line) if paths == "json" else line
        return out

    def _nearest_in_trees(self, lon, lat, pt, kinds, paths) -> list[dict]:
        """The nearest facility of each kind read from the kinds' precomputed trees: two
        array reads per kind, and with ``paths`` each route put together from the tree's
        walks, already in lon/lat."""
        entry = self.net.entries([pt])  # where the point joins the roads
        legs = {}  # lon/lat from each end of its road to the point (as JSON text for "json")
        out = []
        for kd in kinds:
            node, dist, via = self._trees[kd].at(pt, entry)
            if node < 0 or dist > SEARCH_LIMIT_M:
                idx = self._of_kind(kd)
                out.append(self._answer(idx[0], kd, None))
                if paths:
                    out[-1]["path"] = None
                continue
            out.append(self._answer(self._node_facility[node], kd, dist))
            if not paths:
                continue
            if via not in legs:
                leg = self.net.leg(entry, via)
                lonlat = np.column_stack(self._lonlat_of(leg[:, 0], leg[:, 1]))
                point = (round(lon, LONLAT_DECIMALS), round(lat, LONLAT_DECIMALS))
                xy = np.vstack([lonlat, [point]])
                legs[via] = coordinates(xy) if paths == "json" else xy
            walks = self._walks[kd]
            if paths == "json":
                out[-1]["path"] = _LINE_JSON.format(walks.json_to(via) + "," + legs[via])
            else:
                out[-1]["path"] = shapely.LineString(np.vstack([walks.to(via), legs[via]]))
        return out

    def _answer(self, i: int, kind: str, distance: float | None) -> dict:
        """The lookup's record of facility ``i`` at ``distance`` m (None: out of reach)."""
        ok = distance is not None
        return {
            "code": self._codes[i],
            "name": self._names[i],
            "kind": kind,
            "distance_m": round(distance, 1) if ok else None,
            "method": self.method,
            "lon": float(self._lon[i]),
            "lat": float(self._lat[i]),
            **({} if ok else {"unreachable": True}),
        }

    def _demand_to(self, points_metric, radius: float):
        """Sparse (len(points) × n_demand) distances ≤ radius from metric points."""
        pts = np.asarray(points_metric, dtype=object)
        n = len(self.demand)
        if self.method == "straight":
            tree = shapely.STRtree(self.demand.geometry.values)
            i, j = tree.query(pts, predicate="dwithin", distance=radius)
            d = shapely.distance(pts[i], self.demand.geometry.values[j])
            return sp.csr_matrix((d, (i, j)), shape=(len(pts), n))
        e = self.net.entries(pts)
        a = self.net.sparse_within(e.left, self.demand_nodes, radius).tocoo()
        b = self.net.sparse_within(e.right, self.demand_nodes, radius).tocoo()
        i = np.concatenate([a.row, b.row])
        j = np.concatenate([a.col, b.col])
        d = np.concatenate([a.data + e.dl[a.row], b.data + e.dr[b.row]]) + e.off[i]
        frame = pd.DataFrame({"i": i, "j": j, "d": d}).groupby(["i", "j"], sort=False)["d"].min()
        frame = frame[frame <= radius]
        ii = frame.index.get_level_values(0).to_numpy()
        jj = frame.index.get_level_values(1).to_numpy()
        return sp.csr_matrix((frame.to_numpy(), (ii, jj)), shape=(len(pts), n))

    def _facility_demand(self, idx, radius):
        """Sparse (facilities × demand points) distances within ``radius``; kept per query."""
        key = (tuple(idx), radius)
        if key not in self._cache:
            if self.method == "straight":
                self._cache[key] = self._demand_to(self.facilities.geometry.values[idx], radius)
            else:
                self._cache[key] = self.net.sparse_within(
                    self.fac_nodes[idx], self.demand_nodes, radius
                )
        return self._cache[key]

    # ------------------------------------------------------------------ coverage
    def radius(self, kind: str) -> float:
        if kind not in self.profiles:
            raise ValueError(
                f"no service profile for '{kind}'; profiles: {', '.join(self.profiles)}"
            )
        return float(self.profiles[kind]["radius_m"])

    def coverage(self, kind: str, *, extra_sites=()) -> tuple[pd.DataFrame, dict]:
        """Per grid cell: covered or not, by which facilities, walking distance from its
        representative point to the nearest facility, and the households and population
        outside coverage; plus totals. ``extra_sites`` (lon, lat) are hypothetical new
        facilities (what-if)."""
        if not len(extra_sites) and ("table", kind) in self._cache:
            return self._cache[("table", kind)]
        idx = self._of_kind(kind)
        radius = self.radius(kind)
        within = self._facility_demand(idx, radius).tocsc()
        covered = np.diff(within.indptr) > 0
        newly = np.zeros(len(self.demand), dtype=bool)
        if len(extra_sites):
            pts = [shapely.Point(*self._to_metric.transform(x, y)) for x, y in extra_sites]
            extra = self._demand_to(pts, radius).tocsc()
            newly = (np.diff(extra.indptr) > 0) & ~covered
        key = ("nearest", tuple(idx), radius)
        if key not in self._cache:
            self._cache[key] = self._nearest_to_demand(idx, radius * 4)
        nearest = self._cache[key]
        is_cov = covered | newly
        cell = self.demand["cell"].to_numpy()
        hh = self.demand["households"].to_numpy()
        pop = self.demand["population"].to_numpy()
        n = len(self.grid)
        out_hh = np.bincount(cell, weights=np.where(is_cov, 0.0, hh), minlength=n)
        out_pop = np.bincount(cell, weights=np.where(is_cov, 0.0, pop), minlength=n)
        all_hh = np.bincount(cell, weights=hh, minlength=n)
        centre_d = np.full(n, np.inf)
        centres = self.demand["is_centre"].to_numpy()
        centre_d[cell[centres]] = nearest[centres]
        # which facilities reach each cell: from the sparse (facility × point) matrix
        codes = self.facilities["code"].astype(str).to_numpy()[idx]
        pairs = within.tocoo()
        by_cell = pd.Series(codes[pairs.row]).groupby(cell[pairs.col]).unique()
        table = pd.DataFrame(
            {
                "code": self.grid["code"].astype(str).to_numpy(),
                "parent_code": self.grid["parent_code"].astype(str).to_numpy(),
                "covered": out_hh <= 1e-9,
                "covered_share": np.round(1 - out_hh / np.maximum(all_hh, 1e-9), 4),
                "facilities": [sorted(by_cell.get(i, [])) for i in range(n)],
                "nearest_distance_m": [
                    round(float(d), 1) if np.isfinite(d) else None for d in centre_d
                ],
                "uncovered_households": np.round(out_hh, 1),
                "uncovered_population": np.round(out_pop, 1),
            }
        )
        totals = {
            "kind": kind,
            "radius_m": radius,
            "method": self.method,
            "households": round(float(self.demand["households"].sum()), 1),
            "uncovered_households": round(float(table["uncovered_households"].sum()), 1),
            "uncovered_population": round(float(table["uncovered_population"].sum()), 1),
            "cells": len(table),
            "uncovered_cells": int((~table["covered"]).sum()),
            "rule": "households spread uniformly over each cell",
        }
        if len(extra_sites):
            totals["newly_covered_households"] = round(
                float(self.demand.loc[newly, "households"].sum()), 1
            )
        else:
            self._cache[("table", kind)] = (table, totals)
        return table, totals

    def _nearest_to_demand(self, idx, limit):
        if self.method == "straight":
            tree = shapely.STRtree(self.facilities.geometry.values[idx])
            near = tree.nearest(self.demand.geometry.values)
            return shapely.distance(
                self.facilities.geometry.values[idx][near], self.demand.geometry.values
            )
        dist, _ = self.net.from_nodes(self.fac_nodes[idx], limit, min_only=True)
        return dist[self.demand_nodes]

    @staticmethod
    def rollup(table: pd.DataFrame, parent_codes: pd.Series) -> pd.DataFrame:
        """Uncovered households and population summed by a parent code (community or
        street: pass the code series aligned with ``table``)."""
        return (
            table.assign(parent=parent_codes.to_numpy())
            .groupby("parent")[["uncovered_households", "uncovered_population"]]
            .sum()
            .round(1)
            .reset_index()
        )

    # ------------------------------------------------------------------ service areas
    def service_areas(self, kind: str) -> gpd.GeoDataFrame:
        """For each facility of ``kind``, the road it reaches within its radius (network) or
        a circle of the radius (straight), in the metric CRS."""
        idx = self._of_kind(kind)
        radius = self.radius(kind)
        geoms = []
        if self.method == "straight":
            geoms = list(shapely.buffer(self.facilities.geometry.values[idx], radius))
        else:
            seg_len = shapely.length(self.net.segments)
            for node in self.fac_nodes[idx]:
                d = self.net.from_nodes([node], radius)[0]
                du, dv = d[self.net.u], d[self.net.v]
                pieces = []
                full = (du + seg_len <= radius + 1e-6) | (dv + seg_len <= radius + 1e-6)
                pieces += list(self.net.segments[full & np.isfinite(du) & np.isfinite(dv)])
                part_u = np.isfinite(du) & ~full
                part_v = np.isfinite(dv) & ~full
                # partly reached segments: the stretch within the radius from each end
                pieces += [
                    substring(s, 0, radius - a)
                    for s, a in zip(self.net.segments[part_u], du[part_u])
                ]
                pieces += [
                    substring(s, s.length - (radius - b), s.length)
                    for s, b in zip(self.net.segments[part_v], dv[part_v])
                ]
                geoms.append(shapely.union_all(pieces) if pieces else shapely.LineString())
        return gpd.GeoDataFrame(
            {
                "code": self.facilities["code"].iloc[idx].to_numpy(),
                "name": self.facilities["name"].iloc[idx].to_numpy(),
                "radius_m": radius,
                "method": self.method,
            },
            geometry=geoms,
            crs=self.crs,
        )

    # ------------------------------------------------------------------ siting
    def candidates(
        self, source: str = "intersections", *, spacing: float | None = None, points=None
    ) -> np.ndarray:
        """Candidate sites (metric points): road intersections (junctions where three or
        more roads meet), a regular lattice inside the grid layer, or given points."""
        if points is not None:
            return np.asarray(points, dtype=object)
        if source == "intersections" and self.method == "network":
            degree = np.bincount(
                np.concatenate([self.net.u, self.net.v]), minlength=self.net.n_junctions
            )
            return shapely.points(self.net.node_xy[degree >= 3])
        area = shapely.union_all(self.grid.geometry.values)
        step = spacing or 200.0
        x0, y0, x1, y1 = area.bounds
        xs, ys = np.meshgrid(np.arange(x0 + step / 2, x1, step), np.arange(y0 + step / 2, y1, step))
        pts = shapely.points(np.column_stack([xs.ravel(), ys.ravel()]))
        return pts[shapely.contains(area, pts)]

    def siting_problem(self, kind: str, candidates=None) -> SitingProblem:
        """What siting new ``kind`` facilities must solve: which candidate sites
        (``candidates``: "intersections", "lattice" at half the service radius, or points in
        the metric CRS) reach which demand points that no existing facility covers."""
        radius = self.radius(kind)
        idx = self._of_kind(kind)
        existing = np.diff(self._facility_demand(idx, radius).tocsc().indptr) > 0
        if candidates is None or isinstance(candidates, str):
            cand = self.candidates(candidates or "intersections", spacing=radius / 2)
        else:
            cand = self.candidates(points=candidates)
        reach = self._demand_to(cand, radius).tocsc()  # candidates × demand
        open_ = np.flatnonzero(~existing)
        coverable = open_[np.diff(reach.indptr)[open_] > 0]
        weights = self.demand["households"].to_numpy()
        sub = reach[:, coverable].T.tocsr()  # demand × candidates, sparse
        useful = np.flatnonzero(np.diff(sub.tocsc().indptr) > 0)
        return SitingProblem(
            covering=(sub[:, useful] > 0).tocsc(),
            weights=weights[coverable].astype(np.float64),
            sites=np.asarray(cand)[useful],
            candidates=int(len(cand)),
            radius=radius,
            open_households=float(weights[open_].sum()),
        )

    def site(
        self,
        kind: str,
        p: int | None = None,
        *,
        model: str = "mclp",
        candidates=None,
        time_limit: float = 60.0,
    ) -> dict:
        """Suggest new sites for ``kind``, keeping existing ones fixed.

        ``model='mclp'``: the ``p`` sites covering the most still-uncovered households;
        ``model='lscp'``: the fewest sites covering every household a candidate can reach.
        Returns suggestions (lon, lat, households newly covered by each, in order), the
        households left uncovered, and the solver's honest status: ``proven_optimal`` is
        True only when HiGHS proved optimality (not when it stopped at ``time_limit``);
        the models are :mod:`geo.location_models`, built sparse.
        """
        problem = self.siting_problem(kind, candidates)
        covering, weights = problem.covering, problem.weights
        t0 = time.perf_counter()
        if not problem.weights.size:
            return {
                "kind": kind,
                "model": model,
                "suggestions": [],
                "status": "nothing to cover",
                "proven_optimal": True,
                "uncovered_households": round(problem.open_households, 1),
            }
        if model == "mclp":
            if not p or p < 1:
                raise ValueError("p, the number of new sites, must be at least 1")
            solution = max_coverage(covering, weights, p, time_limit=time_limit)
        elif model == "lscp":
            solution = set_cover(covering, time_limit=time_limit)
        else:
            raise ValueError(f"model '{model}' must be mclp or lscp")
        # households newly covered by each suggestion, greedily in decreasing order
        left = np.ones(len(weights), dtype=bool)
        covers = {int(j): covering[:, j].toarray().ravel() for j in solution.chosen}
        order = []
        while covers:
            j = max(covers, key=lambda c: weights[covers[c] & left].sum())
            gain = float(weights[covers[j] & left].sum())
            left &= ~covers.pop(j)
            order.append((j, gain))
        suggestions = []
        for rank, (j, gain) in enumerate(order, start=1):
            pt = problem.sites[j]
            lon, lat = self._to_lonlat.transform(pt.x, pt.y)
            suggestions.append(
                {
                    "rank": rank,
                    "lon": round(lon, 7),
                    "lat": round(lat, 7),
                    "newly_covered_households": round(gain, 1),
                }
            )
        proven = solution.proven_optimal
        status = "Optimal" if proven else solution.status
        if not proven and len(solution.chosen):
            status = (
                f"best found when HiGHS stopped at the {time_limit:g} s limit, within "
                f"{solution.gap:.1%} of the optimum: not proven optimal"
            )
        uncovered = problem.open_households - sum(g for _, g in order)
        return {
            "kind": kind,
            "model": model,
            "radius_m": problem.radius,
            "method": self.method,
            "p": p,
            "candidates": problem.candidates,
            "suggestions": suggestions,
            "newly_covered_households": round(sum(g for _, g in order), 1),
            "uncovered_households": round(uncovered, 1),
            "unreachable_households": round(problem.open_households - float(weights.sum()), 1),
            "status": status,
            "solver": "HiGHS",
            "proven_optimal": bool(proven),
            "solve_s": round(time.perf_counter() - t0, 2),
        }
