"""A spatial index that follows a layer through saves without being built again.

An STR tree cannot be changed once built, and building one over 150,000 grid cells takes
about 45 ms: too much to pay at every save of one cell. :class:`SplicedIndex` keeps the
tree it was built with and, after a save, a map from the tree's features to where they
are now (gone, or moved) and the few features that entered since, which a query checks
one by one. Once those are more than a small share of the layer the next splice starts
afresh, and the tree is built again at its first query.

>>> import shapely
>>> cells = np.array([shapely.box(i, 0, i + 1, 1) for i in range(4)])
>>> index = SplicedIndex(cells)
>>> sorted(index.query(shapely.box(1.2, 0.2, 1.8, 0.8)).tolist())
[1]
>>> # a save: cell 1 replaced by a cell far away (it goes last), cell 3 removed
>>> after = np.array([cells[0], cells[2], shapely.box(10, 0, 11, 1)])
>>> moved = index.spliced(np.array([0, 2, 4]), after)
>>> moved.query(shapely.box(1.2, 0.2, 1.8, 0.8)).tolist()
[]
>>> moved.query(shapely.box(10, 0, 11, 1)).tolist(), moved.query(shapely.box(2.2, 0, 2.5, 1)).tolist()
([2], [1])
"""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["SplicedIndex"]

# a splice starts afresh once this share of the layer (or at least MIN_EXTRA features)
# would be checked one by one
EXTRA_SHARE = 0.01
MIN_EXTRA = 64


class SplicedIndex:
    """The spatial index of ``geoms`` (an array of shapely geometries, None and empty
    ones never found), built at the first query. Queries answer positions in ``geoms``
    as they are now; :meth:`spliced` gives the index of the layer after a save."""

    def __init__(self, geoms: np.ndarray):
        self._built_on = geoms  # the geometries the tree is (or will be) built on
        self._rows = len(geoms)  # rows of the layer now
        self._tree: shapely.STRtree | None = None
        self._now: np.ndarray | None = None  # tree position -> position now (-1: gone)
        self._extra = np.empty(0, dtype=np.int64)  # positions now not in the tree
        self._extra_geoms = np.empty(0, dtype=object)
        self._extra_bounds = np.empty((0, 4))

    @property
    def tree(self) -> shapely.STRtree:
        """The STR tree of the geometries it was built on, built on first use."""
        if self._tree is None:
            self._tree = shapely.STRtree(self._built_on)
        return self._tree

    def query(self, geometry, predicate: str | None = None) -> np.ndarray:
        """Positions (now) of the features whose envelope meets ``geometry``'s, or with
        ``predicate`` (a binary predicate of shapely, as :meth:`shapely.STRtree.query`
        takes it: ``predicate(geometry, feature)``) those for which it holds; in no
        particular order."""
        hits = self.tree.query(geometry, predicate=predicate)
        if self._now is not None:
            hits = self._now[hits]
            hits = hits[hits >= 0]
        if not len(self._extra):
            return hits
        x0, y0, x1, y1 = shapely.bounds(geometry)
        b = self._extra_bounds
        near = (b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0)
        if predicate is not None and near.any():
            near[near] = getattr(shapely, predicate)(geometry, self._extra_geoms[near])
        return np.concatenate([hits, self._extra[near]])

    def spliced(self, order: np.ndarray, geoms: np.ndarray) -> SplicedIndex:
        """The index after a save that made the layer ``geoms``, its row ``i`` being row
        ``order[i]`` of the layer before (when below its length) or a feature that
        entered (:class:`layers.storage.edits.Splice`): at the cost of the change while
        the tree is built and what entered since is a small share, else a fresh index."""
        n = self._rows  # rows of the layer before
        kept = order < n
        entered = np.flatnonzero(~kept)
        extra_before = self._extra
        if self._tree is None or len(extra_before) + len(entered) > max(
            MIN_EXTRA, EXTRA_SHARE * len(geoms)
        ):
            return SplicedIndex(geoms)
        to_now = np.full(n, -1, dtype=np.int64)
        to_now[order[kept]] = np.flatnonzero(kept)
        out = SplicedIndex.__new__(SplicedIndex)
        out._built_on, out._tree = self._built_on, self._tree
        now = np.arange(len(self._built_on)) if self._now is None else self._now
        out._now = np.where(now >= 0, to_now[np.maximum(now, 0)], -1)
        carried = to_now[extra_before]
        out._extra = np.sort(np.concatenate([carried[carried >= 0], entered]))
        out._extra_geoms = np.asarray(geoms, dtype=object)[out._extra]
        out._extra_bounds = shapely.bounds(out._extra_geoms).reshape(-1, 4)
        out._rows = len(geoms)
        return out
