"""A spatial index carried through saves answers as one built afresh."""

import numpy as np
import pytest
import shapely

from geo.sindex import SplicedIndex


def _boxes(rng, n):
    x, y = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
    w = rng.uniform(0.5, 8, n)
    return shapely.box(x, y, x + w, y + w)


@pytest.mark.parametrize("predicate", [None, "intersects"])
def test_a_spliced_index_finds_what_a_fresh_one_finds(predicate):
    """Chains of random saves (cells replaced in place, removed, added at the end, empty
    geometries among them), each queried with random windows, against an STR tree built
    on the layer after each save; the index starts afresh when too much entered."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        geoms = _boxes(rng, int(rng.integers(50, 400)))
        index = SplicedIndex(geoms)
        index.query(shapely.box(0, 0, 1, 1))  # built: saves are spliced into it
        carried = 0
        for _ in range(30):
            n = len(geoms)
            k = int(rng.integers(0, 4))
            if rng.random() < 0.6:  # in place
                order = np.arange(n)
                order[rng.choice(n, min(k, n), replace=False)] = n + np.arange(min(k, n))
                k = min(k, n)
            else:  # some removed, the new ones last
                keep = np.sort(rng.choice(n, int(rng.integers(n // 2, n + 1)), replace=False))
                order = np.concatenate([keep, n + np.arange(k)])
            entering = _boxes(rng, k)
            if k and rng.random() < 0.2:
                entering[0] = shapely.Polygon()  # a removal written as an empty geometry
            geoms = np.concatenate([geoms, entering])[order]
            index = index.spliced(order, geoms)
            carried += index._tree is not None
            fresh = shapely.STRtree(geoms)
            for _ in range(5):
                x, y = rng.uniform(-5, 100, 2)
                window = shapely.box(x, y, x + rng.uniform(1, 30), y + rng.uniform(1, 30))
                got = np.sort(index.query(window, predicate=predicate))
                want = np.sort(fresh.query(window, predicate=predicate))
                assert got.tolist() == want.tolist()
        assert carried > 0  # the tree was carried, not only built again
