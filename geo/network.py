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
        self.u, self.v = ids[: len(segs)], ids[len(segs):]
        self.n_junctions = int(ids.max()) + 1 if len(ids) else 0
        self.node_xy = np.zeros((self.n_junctions, 2))
        self.node_xy[self.u] = start
        self.node_xy[self.v] = end
        self._tree = shapely.STRtree(segs)
        self.n_sites = 0
        self._extra = ([], [], [])  # rows, cols, weights of site links
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
        """Add points as nodes; returns their node ids. Rebuilds the sparse graph."""
        points = np.asarray(points, dtype=object)
        if len(points) == 0:
            self._build()
            return np.zeros(0, dtype=int)
        seg, du, dv, off = self.attach(points)
        first = self.n_junctions + self.n_sites
        nodes = np.arange(first, first + len(points))
        rows, cols, w = self._extra
        rows += list(nodes) + list(nodes)
        cols += list(self.u[seg]) + list(self.v[seg])
        w += list(du + off) + list(dv + off)
        self.n_sites += len(points)
        self.site_offset = np.concatenate([self.site_offset, off])
        self._build()
        return nodes

    def _build(self):
        n = self.n_junctions + self.n_sites
        rows, cols, w = self._extra
        r = np.concatenate([self.u, np.asarray(rows, dtype=int)])
        c = np.concatenate([self.v, np.asarray(cols, dtype=int)])
        weights = np.concatenate([shapely.length(self.segments), np.asarray(w, dtype=float)])
        # tiny positive weights keep zero-length links as edges in the sparse matrix
        weights = np.maximum(weights, 1e-6)
        m = sp.coo_matrix((weights, (r, c)), shape=(n, n)).tocsr()
        self.graph = _symmetric_min(m)

    # ------------------------------------------------------------------ queries
    def from_nodes(self, nodes, limit: float, *, min_only: bool = False):
        """Dijkstra from ``nodes`` up to ``limit`` metres.

        Returns a dense row per source (``inf`` beyond the limit), or with ``min_only`` the
        distance to the nearest source for every node and which source it was.
        """
        nodes = np.atleast_1d(np.asarray(nodes, dtype=int))
        if min_only:
            dist, _, src = dijkstra(self.graph, directed=False, indices=nodes, limit=limit,
                                    min_only=True, return_predecessors=True)
            return dist, src
        return dijkstra(self.graph, directed=False, indices=nodes, limit=limit)

    def from_point(self, point, limit: float) -> np.ndarray:
        """Distances (m) from an arbitrary point to every node, within ``limit``."""
        seg, du, dv, off = self.attach([point])
        rows = self.from_nodes([self.u[seg[0]], self.v[seg[0]]], limit)
        return np.minimum(rows[0] + du[0], rows[1] + dv[0]) + off[0]

    def sparse_within(self, sources, targets, limit: float, *, chunk: int = 64):
        """Sparse matrix (len(sources) × len(targets)) of distances ≤ ``limit`` (m); pairs
        beyond the limit are absent. Sources are processed in chunks to bound memory."""
        sources = np.asarray(sources, dtype=int)
        targets = np.asarray(targets, dtype=int)
        ii, jj, dd = [], [], []
        for i in range(0, len(sources), chunk):
            rows = self.from_nodes(sources[i:i + chunk], limit)[:, targets]
            r, c = np.nonzero(np.isfinite(rows))
            ii.append(r + i)
            jj.append(c)
            dd.append(rows[r, c])
        if not ii:
            return sp.csr_matrix((len(sources), len(targets)))
        # explicit entries: a distance of 0 (a site on a road end) is kept, not dropped
        return sp.csr_matrix((np.concatenate(dd), (np.concatenate(ii), np.concatenate(jj))),
                             shape=(len(sources), len(targets)))


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
