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

With ``--partitioned`` also, on the same cells stored in lon/lat as spatially partitioned
GeoParquet (``layers.geoparquet``): ``geo.partitioned.check_partitioned`` on a dask
LocalCluster of ``--workers`` processes, each reading its own parts (groups of
``--units-per-part`` streets with their halo), measured in its own zone — its time (the
cluster's start included), whether its findings are the one-process check's of the same
stored data, and the peak resident memory of the largest worker beside this process's.
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
    ap.add_argument("--partitioned", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--units-per-part", type=int, default=128)
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
    if args.partitioned:
        _partitioned(layers, report, r, args)


def _partitioned(layers, report, reference: float, args) -> None:
    """The partitioned check of the same layers, read part by part from GeoParquet."""
    import tempfile
    from pathlib import Path

    from geo.partitioned import check_partitioned, plan_parts
    from layers.geoparquet import GeoParquetDataset, export_geoparquet
    from layers.storage import open_store

    del report  # the one-process check below reads the same stored (lon/lat) data
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "bench.gpkg"))
        for name, gdf in layers.items():
            store.write_layer(name, gdf.to_crs("EPSG:4490"))
        export_geoparquet(store, Path(tmp) / "pq")
        source = GeoParquetDataset(Path(tmp) / "pq")
        parts, _ = plan_parts(source.read_layer("street"), units_per_part=args.units_per_part)
        t = time.perf_counter()
        parted = check_partitioned(source, workers=args.workers, units_per_part=args.units_per_part)
        took = time.perf_counter() - t
        t = time.perf_counter()
        stored = check_dataset(source.load())
        one = time.perf_counter() - t
    same = _key(parted) == _key(stored)
    worker_gb = max(p["peak_rss_mb"] or 0 for p in parted.parts) / 1024
    biggest = max(p["features"] for p in parted.parts)
    print(
        f"gridmap check_partitioned ({len(parts)} parts of {args.units_per_part} streets, "
        f"{args.workers} dask workers reading their parts from GeoParquet): {took:8.2f} s "
        f"({took / reference:.2f}× the reference; the one-process check of the same stored "
        f"data {one:.2f} s); findings the same as one process: {same} "
        f"({len(parted.findings)}: {parted.summary()}); peak RSS of the largest worker "
        f"{worker_gb:.2f} GB (largest part {biggest:,} features with its halo; this process "
        f"{_peak_gb():.2f} GB)"
    )


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _key(report):
    f = report.findings
    return sorted(
        (r.rule, r.layer, tuple(sorted(map(str, r.features))),
         None if r.area_m2 is None or r.area_m2 != r.area_m2 else round(r.area_m2, 1))
        for r in f.itertuples()
    )  # fmt: skip


if __name__ == "__main__":
    main()
