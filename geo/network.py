"""Walking distances along the road network, radius-bounded and sparse.

:class:`RoadNetwork` nodes the road lines once (every crossing becomes a node), keeps the
graph as a SciPy sparse matrix (edge weights in metres) and attaches points to their
nearest road segment: a point reaches the network by a straight walk to the segment, then
along it to either end. Shortest paths use SciPy's Dijkstra with a distance limit, so only
pairs within the limit are ever computed. Points are "sites" (facilities, candidates,
demand points): each becomes a node joined to its segment's two ends, which can never be a
shortcut (joining costs at least the segment's length).

All coordinates are in a metric CRS; distances in metres; ``inf`` means unreachable within
the limit.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra
from shapely.ops import substring

__all__ = ["RoadNetwork"]


class RoadNetwork:
    """A walking network built from road lines (metric CRS).

    Parameters
    ----------
    lines : array of LineString/MultiLineString geometries (metres).
    sites : point geometries to add as nodes (e.g. all facilities and demand points).
    """

    def __init__(self, lines, sites=()):
        noded = shapely.node(shapely.union_all(np.asarray(lines, dtype=object)))
        segs = shapely.get_parts(noded)
        segs = segs[shapely.length(segs) > 0]
        start = shapely.get_coordinates(shapely.get_point(segs, 0))
        end = shapely.get_coordinates(shapely.get_point(segs, -1))
        keys = np.round(np.vstack([start, end]), 3)  # millimetres: shared ends meet
        _, ids = np.unique(keys, axis=0, return_inverse=True)
        ids = ids.ravel()
        self.segments = segs
        self.u, self.v = ids[: len(segs)], ids[len(segs) :]
        self.n_junctions = int(ids.max()) + 1 if len(ids) else 0
        self.node_xy = np.zeros((self.n_junctions, 2))
        self.node_xy[self.u] = start
        self.node_xy[self.v] = end
        self._tree = shapely.STRtree(segs)
        self.n_sites = 0
        self._site_seg = np.zeros(0, dtype=int)
        self._site_along = np.zeros(0)
        self._site_points = None
        self.site_offset = np.zeros(0)
        self.add_sites(sites)

    # ------------------------------------------------------------------ building
    def attach(self, points):
        """For each point: (segment index, distance along it to u, to v, off-road walk)."""
        points = np.asarray(points, dtype=object)
        seg = self._tree.nearest(points)
        lines = self.segments[seg]
        along = shapely.line_locate_point(lines, points)
        length = shapely.length(lines)
        off = shapely.distance(lines, points)
        return seg, along, length - along, off

    def add_sites(self, points) -> np.ndarray:
        """Add points as nodes; returns their node ids (stable). Rebuilds the sparse graph.

        Each site is joined by its off-road walk to its projection on the segment, and the
        projections on a segment are chained in order, so that sites on the same segment
        reach each other directly along it.
        """
        points = np.asarray(points, dtype=object)
        if len(points):
            xy = shapely.get_coordinates(points)
            self._site_points = (
                xy if self._site_points is None else np.vstack([self._site_points, xy])
            )
            seg, along, _, off = self.attach(points)
            self._site_seg = np.concatenate([self._site_seg, seg])
            self._site_along = np.concatenate([self._site_along, along])
            self.site_offset = np.concatenate([self.site_offset, off])
        first = self.n_junctions + self.n_sites
        self.n_sites += len(points)
        self._build()
        return np.arange(first, first + len(points))

    def _build(self):
        nj, ns = self.n_junctions, self.n_sites
        length = shapely.length(self.segments)
        sites = np.arange(ns)
        proj = nj + ns + sites  # projection node of each site
        rows = [self.u, nj + sites]
        cols = [self.v, proj]
        weights = [length, self.site_offset]
        self._chain = {}
        self._edge_cache: dict[tuple[int, int], list] = {}
        self._edge_geom = {
            (int(a), int(b)): (i, 0.0, float(length[i]))
            for i, (a, b) in enumerate(zip(self.u, self.v))
        }
        order = np.lexsort((self._site_along, self._site_seg))
        segs, starts = np.unique(self._site_seg[order], return_index=True)
        bounds = list(starts[1:]) + [len(order)]
        for sg, a, b in zip(segs, starts, bounds):
            members = order[a:b]
            pos = np.concatenate([[0.0], self._site_along[members], [length[sg]]])
            nodes = np.concatenate([[self.u[sg]], proj[members], [self.v[sg]]])
            rows.append(nodes[:-1])
            cols.append(nodes[1:])
            weights.append(np.diff(pos))
            self._chain[int(sg)] = (pos, nodes)
            for a_node, b_node, pa, pb in zip(nodes[:-1], nodes[1:], pos[:-1], pos[1:]):
                self._edge_geom[(int(a_node), int(b_node))] = (int(sg), float(pa), float(pb))
        r, c, w = (np.concatenate(x) for x in (rows, cols, weights))
        n = nj + 2 * ns
        # tiny positive weights keep zero-length links as edges in the sparse matrix
        m = sp.coo_matrix((np.maximum(w, 1e-6), (r.astype(int), c.astype(int))), shape=(n, n))
        self.graph = _symmetric_min(m.tocsr())

    def entries(self, points):
        """Where each point joins the network: the nodes just before and after it on its
        segment and the distances to them, plus its off-road walk (m)."""
        seg, along, _, off = self.attach(points)
        left = np.empty(len(seg), dtype=int)
        right = np.empty(len(seg), dtype=int)
        dl = np.empty(len(seg))
        dr = np.empty(len(seg))
        length = shapely.length(self.segments[seg])
        for k, (sg, a) in enumerate(zip(seg, along)):
            pos, nodes = self._chain.get(
                int(sg), (np.array([0.0, length[k]]), np.array([self.u[sg], self.v[sg]]))
            )
            i = int(np.clip(np.searchsorted(pos, a, side="right"), 1, len(pos) - 1))
            left[k], right[k] = nodes[i - 1], nodes[i]
            dl[k], dr[k] = a - pos[i - 1], pos[i] - a
        return left, dl, right, dr, off

    # ------------------------------------------------------------------ queries
    def from_nodes(self, nodes, limit: float, *, min_only: bool = False):
        """Dijkstra from ``nodes`` up to ``limit`` metres.

        Returns a dense row per source (``inf`` beyond the limit), or with ``min_only`` the
        distance to the nearest source for every node and which source it was.
        """
        nodes = np.atleast_1d(np.asarray(nodes, dtype=int))
        if min_only:
            dist, _, src = dijkstra(
                self.graph,
                directed=False,
                indices=nodes,
                limit=limit,
                min_only=True,
                return_predecessors=True,
            )
            return dist, src
        return dijkstra(self.graph, directed=False, indices=nodes, limit=limit)

    def from_point(self, point, limit: float) -> np.ndarray:
        """Distances (m) from an arbitrary point to every node, within ``limit``."""
        left, dl, right, dr, off = self.entries([point])
        rows = self.from_nodes([left[0], right[0]], limit)
        return np.minimum(rows[0] + dl[0], rows[1] + dr[0]) + off[0]

    def nearest_tree(self, sources, limit: float) -> NearestTree:
        """For every node, the nearest of the nodes ``sources`` along the roads (within
        ``limit`` metres), its distance and the way there: one multi-source Dijkstra,
        after which the nearest source of any point is a lookup (:meth:`NearestTree.at`)."""
        sources = np.atleast_1d(np.asarray(sources, dtype=int))
        if not len(sources):
            n = self.graph.shape[0]
            return NearestTree(self, np.full(n, np.inf), np.full(n, -9999), np.full(n, -9999))
        dist, pred, src = dijkstra(
            self.graph,
            directed=False,
            indices=sources,
            limit=limit,
            min_only=True,
            return_predecessors=True,
        )
        return NearestTree(self, dist, pred, src)

    def path(self, source: int, point, limit: float):
        """The walking route (LineString, metric CRS) from node ``source`` to ``point``
        along the roads, or None if the point is beyond ``limit``."""
        left, dl, right, dr, off = self.entries([point])
        dist, pred = dijkstra(
            self.graph, directed=False, indices=int(source), limit=limit, return_predecessors=True
        )
        ends = [(dist[left[0]] + dl[0], left[0]), (dist[right[0]] + dr[0], right[0])]
        total, node = min(ends)
        if not np.isfinite(total):
            return None
        return self.route(node, pred, point)

    def route(self, node: int, pred: np.ndarray, point):
        """The LineString from the root of the shortest-path tree ``pred`` (predecessors,
        -9999 at the root) through ``node`` on to ``point``'s place on its road, then the
        point."""
        chain = [int(node)]
        while pred[chain[-1]] >= 0:
            chain.append(int(pred[chain[-1]]))
        chain.reverse()  # source ... entry node
        coords = [self._node_point(chain[0])]
        for a, b in zip(chain[:-1], chain[1:]):
            coords += self._edge_coords(a, b)[1:]
        seg, along, _, _ = self.attach([point])
        coords.append(
            np.asarray(shapely.line_interpolate_point(self.segments[seg[0]], along[0]).coords[0])
        )
        coords.append(np.asarray(point.coords[0]))
        return shapely.LineString(np.vstack(coords))

    def _node_point(self, node: int) -> np.ndarray:
        """Coordinates of a node: a junction, a site, or a site's projection on its road."""
        nj, ns = self.n_junctions, self.n_sites
        if node < nj:
            return self.node_xy[node]
        if node < nj + ns:
            return self._site_points[node - nj]
        k = node - nj - ns
        return np.asarray(
            shapely.line_interpolate_point(
                self.segments[self._site_seg[k]], self._site_along[k]
            ).coords[0]
        )

    def _edge_coords(self, a: int, b: int) -> list:
        """The coordinates along the edge from node ``a`` to node ``b`` (kept once made:
        routes share their edges)."""
        known = self._edge_cache.get((a, b))
        if known is None:
            known = self._edge_cache[(a, b)] = self._cut_edge(a, b)
        return known

    def _cut_edge(self, a: int, b: int) -> list:
        key = (a, b) if (a, b) in self._edge_geom else (b, a)
        if key in self._edge_geom:
            sg, pa, pb = self._edge_geom[key]
            if key != (a, b):
                pa, pb = pb, pa
            piece = substring(self.segments[sg], min(pa, pb), max(pa, pb))
            xy = shapely.get_coordinates(piece)
            return list(xy if pa <= pb else xy[::-1])
        return [self._node_point(a), self._node_point(b)]  # a site's off-road walk

    def sparse_within(self, sources, targets, limit: float, *, chunk: int = 64):
        """Sparse matrix (len(sources) × len(targets)) of distances ≤ ``limit`` (m); pairs
        beyond the limit are absent. Sources are processed in chunks to bound memory."""
        sources = np.asarray(sources, dtype=int)
        targets = np.asarray(targets, dtype=int)
        ii, jj, dd = [], [], []
        for i in range(0, len(sources), chunk):
            rows = self.from_nodes(sources[i : i + chunk], limit)[:, targets]
            r, c = np.nonzero(np.isfinite(rows))
            ii.append(r + i)
            jj.append(c)
            dd.append(rows[r, c])
        if not ii:
            return sp.csr_matrix((len(sources), len(targets)))
        # explicit entries: a distance of 0 (a site on a road end) is kept, not dropped
        return sp.csr_matrix(
            (np.concatenate(dd), (np.concatenate(ii), np.concatenate(jj))),
            shape=(len(sources), len(targets)),
        )


class NearestTree:
    """The nearest source of every node of a :class:`RoadNetwork` (see
    :meth:`RoadNetwork.nearest_tree`): ``dist`` (m), ``pred`` (the way back) and ``src``
    (which source; -9999 beyond the limit)."""

    def __init__(self, net: RoadNetwork, dist, pred, src):
        self.net, self.dist, self.pred, self.src = net, dist, pred, src

    def at(self, point, entry=None) -> tuple[int, float, int]:
        """(source node, walking distance in metres, entry node) of the nearest source of
        a metric point; source -1 and distance inf when none is within the limit.
        ``entry``: the point's :meth:`RoadNetwork.entries`, when already known."""
        left, dl, right, dr, off = entry if entry is not None else self.net.entries([point])
        ends = [
            (self.dist[left[0]] + dl[0], int(left[0])),
            (self.dist[right[0]] + dr[0], int(right[0])),
        ]
        total, node = min(ends)
        if not np.isfinite(total):
            return -1, np.inf, node
        return int(self.src[node]), float(total + off[0]), node

    def route(self, node: int, point):
        """The walking route from the nearest source to ``point`` entering at ``node``."""
        return self.net.route(node, self.pred, point)


def _symmetric_min(m: sp.csr_matrix) -> sp.csr_matrix:
    """An undirected adjacency: each pair keeps its shortest parallel edge, both ways."""
    coo = m.tocoo()
    r = np.concatenate([coo.row, coo.col])
    c = np.concatenate([coo.col, coo.row])
    w = np.concatenate([coo.data, coo.data])
    order = np.lexsort((w, c, r))
    r, c, w = r[order], c[order], w[order]
    first = np.ones(len(r), dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    return sp.csr_matrix((w[first], (r[first], c[first])), shape=m.shape)
