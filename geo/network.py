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

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra

from geo.strict_json import coordinates

__all__ = ["RoadNetwork", "Entries", "NearestTree", "Walks"]

# Vertices of a road closer than this (m) to where a walk starts or ends on it are not
# repeated in the walk's coordinates.
VERTEX_EPS_M = 1e-6


class Entries(NamedTuple):
    """Where points join the network (:meth:`RoadNetwork.entries`), one row per point:
    the nodes just before (``left``) and after (``right``) the point's foot on its road
    segment ``seg`` and the metres along it to them (``dl``, ``dr``), the metres along the
    segment to the foot (``along``), the foot's coordinates (``foot``, n × 2) and the
    off-road walk from the point to its foot (``off``, m)."""

    left: np.ndarray
    dl: np.ndarray
    right: np.ndarray
    dr: np.ndarray
    off: np.ndarray
    seg: np.ndarray
    along: np.ndarray
    foot: np.ndarray


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
        # every vertex of every segment with its position along the whole network laid end
        # to end (m; non-decreasing): a walk along a segment picks its vertices by position
        xy, which = shapely.get_coordinates(segs, return_index=True)
        step = np.hypot(*np.diff(xy, axis=0, prepend=xy[:1]).T)
        first = np.r_[True, which[1:] != which[:-1]] if len(which) else np.zeros(0, bool)
        step[first] = 0.0
        self._vertex_xy, self._vertex_at = xy, np.cumsum(step)
        self._segment_at = self._vertex_at[first]  # where each segment starts
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
        # edges that run along a segment: (segment, metres along it at each end)
        along_seg = [np.arange(len(self.segments))]
        along_a, along_b = [np.zeros(len(self.segments))], [length]
        self._chain = {}
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
            along_seg.append(np.full(len(pos) - 1, sg))
            along_a.append(pos[:-1])
            along_b.append(pos[1:])
        r, c, w = (np.concatenate(x) for x in (rows, cols, weights))
        n = nj + 2 * ns
        # tiny positive weights keep zero-length links as edges in the sparse matrix
        m = sp.coo_matrix((np.maximum(w, 1e-6), (r.astype(int), c.astype(int))), shape=(n, n))
        self.graph = _symmetric_min(m.tocsr())
        self._index_edges(r, c, w, along_seg, along_a, along_b)
        self.node_points = np.vstack(
            [
                self.node_xy,
                self._site_points if ns else np.zeros((0, 2)),
                self._feet(self._site_seg, self._site_along),
            ]
        )

    def _index_edges(self, r, c, w, along_seg, along_a, along_b):
        """The segment and positions of every edge that runs along a road, both ways, keyed
        by ``a * n + b`` (sorted): of parallel edges the shortest, as in the graph. The
        off-road walks (site to its projection, rows ``len(u)``..``len(u) + n_sites``)
        have none."""
        nu, ns = len(self.u), self.n_sites
        keep = np.r_[np.arange(nu), np.arange(nu + ns, len(r))]
        a, b, w = r[keep].astype(np.int64), c[keep].astype(np.int64), w[keep]
        seg = np.concatenate(along_seg)
        pa, pb = np.concatenate(along_a), np.concatenate(along_b)
        n = np.int64(self.n_junctions + 2 * ns)
        keys = np.concatenate([a * n + b, b * n + a])
        order = np.lexsort((np.r_[w, w], keys))
        keys = keys[order]
        first = np.r_[True, keys[1:] != keys[:-1]]
        self._edge_keys = keys[first]
        self._edge_seg = np.r_[seg, seg][order][first]
        self._edge_from = np.r_[pa, pb][order][first]
        self._edge_to = np.r_[pb, pa][order][first]

    def _feet(self, seg, along) -> np.ndarray:
        """Coordinates (n × 2) of the places ``along`` metres along segments ``seg``."""
        if not len(seg):
            return np.zeros((0, 2))
        return shapely.get_coordinates(shapely.line_interpolate_point(self.segments[seg], along))

    def _vertices_between(self, seg, a, b):
        """The vertices of segments ``seg`` strictly between ``a`` and ``b`` metres along
        them, in order from ``a`` to ``b``: (first index, stop index, reversed?) into
        ``_vertex_xy``, per row."""
        base = self._segment_at[seg]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        i0 = np.searchsorted(self._vertex_at, base + lo + VERTEX_EPS_M, side="left")
        i1 = np.searchsorted(self._vertex_at, base + hi - VERTEX_EPS_M, side="right")
        return i0, np.maximum(i0, i1), a > b

    def _ranges(self, i0, i1, backwards):
        """Vertex indices of the ranges ``[i0, i1)`` (each reversed where ``backwards``)."""
        k = i1 - i0
        row = np.repeat(np.arange(len(k)), k)
        within = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)
        return np.where(backwards[row], i1[row] - 1 - within, i0[row] + within), row, within

    def entries(self, points) -> Entries:
        """Where each point joins the network (:class:`Entries`)."""
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
        return Entries(left, dl, right, dr, off, seg, along, self._feet(seg, along))

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
        e = self.entries([point])
        rows = self.from_nodes([e.left[0], e.right[0]], limit)
        return np.minimum(rows[0] + e.dl[0], rows[1] + e.dr[0]) + e.off[0]

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
        e = self.entries([point])
        dist, pred = dijkstra(
            self.graph, directed=False, indices=int(source), limit=limit, return_predecessors=True
        )
        ends = [(dist[e.left[0]] + e.dl[0], e.left[0]), (dist[e.right[0]] + e.dr[0], e.right[0])]
        total, node = min(ends)
        if not np.isfinite(total):
            return None
        return self.route(self.walks(pred), node, e, point)

    def walks(self, pred: np.ndarray) -> Walks:
        """The coordinates of every way back in the shortest-path tree ``pred``
        (predecessors, negative at the root and where unreached), made in one pass."""
        n = len(pred)
        child = np.flatnonzero(pred >= 0)
        parent = pred[child].astype(np.int64)
        keys = parent * np.int64(n) + child
        at = np.clip(np.searchsorted(self._edge_keys, keys), 0, max(len(self._edge_keys) - 1, 0))
        on_road = self._edge_keys[at] == keys if len(self._edge_keys) else np.zeros(0, bool)
        i0, i1, back = self._vertices_between(
            self._edge_seg[at], self._edge_from[at], self._edge_to[at]
        )
        i1 = np.where(on_road, i1, i0)  # an off-road walk is straight: no vertices
        k = i1 - i0
        counts = np.zeros(n, dtype=np.int64)
        counts[child] = k + 1
        start = np.r_[0, np.cumsum(counts)]
        xy = np.empty((int(start[-1]), 2))
        idx, row, within = self._ranges(i0, i1, back)
        xy[start[child][row] + within] = self._vertex_xy[idx]
        xy[start[child] + k] = self.node_points[child]
        return Walks(pred, start, xy, self.node_points)

    def leg(self, entry: Entries, node: int, i: int = 0) -> np.ndarray:
        """The coordinates (m × 2) from node ``node`` (either end of the ``i``-th entry's
        stretch of road, not included) along the road to the entry's foot (included)."""
        seg, along = entry.seg[i : i + 1], entry.along[i]
        start = along - entry.dl[i] if node == entry.left[i] else along + entry.dr[i]
        i0, i1, back = self._vertices_between(seg, np.array([start]), np.array([along]))
        idx, _, _ = self._ranges(i0, i1, back)
        return np.vstack([self._vertex_xy[idx], entry.foot[i : i + 1]])

    def route(self, walks: Walks, node: int, entry: Entries, point):
        """The LineString from the root of ``walks`` through ``node`` (an end of the
        point's stretch of road, :meth:`entries`) along the road to the point's foot,
        then the point."""
        return shapely.LineString(
            np.vstack([walks.to(node), self.leg(entry, node), shapely.get_coordinates(point)])
        )

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
        self._walks: Walks | None = None

    def at(self, point, entry: Entries | None = None) -> tuple[int, float, int]:
        """(source node, walking distance in metres, entry node) of the nearest source of
        a metric point; source -1 and distance inf when none is within the limit.
        ``entry``: the point's :meth:`RoadNetwork.entries`, when already known."""
        e = entry if entry is not None else self.net.entries([point])
        ends = [
            (self.dist[e.left[0]] + e.dl[0], int(e.left[0])),
            (self.dist[e.right[0]] + e.dr[0], int(e.right[0])),
        ]
        total, node = min(ends)
        if not np.isfinite(total):
            return -1, np.inf, node
        return int(self.src[node]), float(total + e.off[0]), node

    def walks(self) -> Walks:
        """Every node's way back to its nearest source (made on first use)."""
        if self._walks is None:
            self._walks = self.net.walks(self.pred)
        return self._walks

    def route(self, node: int, point, entry: Entries | None = None):
        """The walking route from the nearest source to ``point`` entering at ``node``."""
        e = entry if entry is not None else self.net.entries([point])
        return self.net.route(self.walks(), node, e, point)


class Walks:
    """The ways back to the root of a shortest-path tree, as coordinates: node ``n``'s
    edge from its predecessor is ``xy[start[n]:start[n + 1]]`` (its vertices after the
    predecessor, ending at ``n``'s point); ``node_xy`` holds every node's point. Built by
    :meth:`RoadNetwork.walks`; :meth:`project` gives the same walks in another CRS."""

    def __init__(self, pred, start, xy, node_xy):
        self._pred = np.asarray(pred).tolist()  # a Python list: walked item by item
        self.start, self.xy, self.node_xy = start, xy, node_xy
        self._texts: dict[int, str] = {}  # node → its edge's coordinates as JSON text

    def to(self, node: int) -> np.ndarray:
        """Coordinates (k × 2) of the way from the root to ``node``."""
        pred, chain = self._pred, []
        while node >= 0:
            chain.append(node)
            node = pred[node]
        chain.reverse()  # root ... node
        steps = np.asarray(chain[1:], dtype=np.int64)
        s, e = self.start[steps], self.start[steps + 1]
        k = e - s
        idx = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k - s, k)
        return np.vstack([self.node_xy[chain[0] : chain[0] + 1], self.xy[idx]])

    def json_to(self, node: int) -> str:
        """The coordinates of :meth:`to` as JSON text (:func:`geo.strict_json.coordinates`):
        each node's edge is written the first time a walk passes it and kept, so a walk
        is then joined from texts with no number formatting."""
        pred, texts, parts = self._pred, self._texts, []
        while node >= 0:
            text = texts.get(node)
            if text is None:
                edge = self.start[node], self.start[node + 1]
                root = pred[node] < 0  # the root's point starts the way
                xy = self.node_xy[node : node + 1] if root else self.xy[edge[0] : edge[1]]
                text = texts[node] = coordinates(xy)
            parts.append(text)
            node = pred[node]
        parts.reverse()
        return ",".join(filter(None, parts))  # an edge with no points adds nothing

    def project(self, fn) -> Walks:
        """These walks with every coordinate passed through ``fn(x, y) -> (x, y)`` (arrays),
        e.g. a pyproj ``Transformer.transform`` to answer in lon/lat."""
        out = Walks([], self.start, _apply(fn, self.xy), _apply(fn, self.node_xy))
        out._pred = self._pred
        return out


def _apply(fn, xy: np.ndarray) -> np.ndarray:
    return np.column_stack(fn(xy[:, 0], xy[:, 1])) if len(xy) else xy.copy()


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
