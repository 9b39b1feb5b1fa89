"""Benchmark: full check of a three-level hierarchy against GEOS's bare coverage check.

    python -m tests.benchmarks.bench_check [--cells 100000] [--repeat 1]

Builds streets ⊃ communities ⊃ grid cells (Voronoi, ~12 cells per community, ~20
communities per street) with real-world noise (T-junctions on half the cells and a
reprojection round trip), injects one overlap and one gap, then times, in the same run:

- reference: ``shapely.coverage_invalid_edges`` on the grid cells (edges only, no areas,
  flags the noise too);
- gridmap: ``geo.checker.check_dataset`` on all three layers (every rule, exact defect
  polygons with areas and widths, noise ignored).

Prints both times, their ratio, the findings, and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import shapely

from geo.checker import check_dataset
from tests.tilings import add_noise, hierarchy


def _inject(grids):
    """One 5 m overlap and one 30 m bite, between same-community neighbours."""
    geoms = grids.geometry.values
    left, right = shapely.STRtree(geoms).query(geoms[:2000], predicate="touches")
    same = grids.parent_code.to_numpy()[left] == grids.parent_code.to_numpy()[right]
    (a, b), (c, d) = [(int(left[k]), int(right[k])) for k in np.flatnonzero(same)[[0, 50]]]
    grids = grids.copy()
    strip = geoms[b].intersection(geoms[a].buffer(5, join_style="mitre"))
    grids.loc[a, "geometry"] = geoms[a].union(strip)
    bite = geoms[d].intersection(
        shapely.buffer(geoms[c].boundary.intersection(geoms[d].boundary).centroid, 30)
    )
    grids.loc[d, "geometry"] = geoms[d].difference(bite)
    return grids


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)

    t = time.perf_counter()
    streets, communities, grids = hierarchy(args.cells)
    grids = _inject(grids)
    layers = {
        "street": add_noise(streets, seed=1),
        "community": add_noise(communities, seed=2),
        "grid": add_noise(grids, seed=3),
    }
    print(
        f"built {len(streets):,} streets, {len(communities):,} communities, "
        f"{len(grids):,} grid cells in {time.perf_counter() - t:.1f} s"
    )

    ref, ours = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        edges = shapely.coverage_invalid_edges(layers["grid"].geometry.values)
        ref.append(time.perf_counter() - t)
        t = time.perf_counter()
        report = check_dataset(layers)
        ours.append(time.perf_counter() - t)
    flagged = int((~shapely.is_empty(edges)).sum())
    r, o = min(ref), min(ours)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"reference shapely.coverage_invalid_edges (grid only): {r:8.2f} s "
        f"({flagged:,} cells flagged, noise included)"
    )
    print(
        f"gridmap check_dataset (3 layers, all rules):          {o:8.2f} s "
        f"({len(report.findings)} findings: {report.summary()})"
    )
    print(f"ratio gridmap / reference: {o / r:.2f}×   peak RSS {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
