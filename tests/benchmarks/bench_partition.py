"""Benchmark: proposing grid cells within a household band, against bare spopt max-p.

    python -m tests.benchmarks.bench_partition [--band 300 500] [--street CODE]
        [--communities CODE ...] [--no-roads] [--reference-timeout 120]

On the sample (data/lhasa.gpkg, in its metric CRS), for each community of the largest
street (most communities, then most grid cells; or ``--street``), plus ``--communities``:

- gridmap: ``geo.partition.propose`` on the community's building units (cut by the roads
  unless ``--no-roads``), default tries and time budget;
- reference, same units, same run: spopt's bare ``MaxPHeuristic`` with only the band's
  floor, units' centres as attributes, the construction rounds gridmap's max-p uses
  (``MAXP_CONSTRUCTION``) and one simulated-annealing pass (the fewest the class allows).
  It runs in a child process killed after ``--reference-timeout`` seconds, since spopt
  0.7.0's annealing can loop forever (pysal/spopt#506).

Then the whole street with ``geo.partition.propose_street`` (building units included)
against the sum of the references. Prints seconds next to the targets (one community: a few
seconds; one street: < 60 s), the ratio gridmap / max-p, and for both the band
satisfaction (cells in band / cells), the households moved from their current cell and the
mean Polsby-Popper compactness. Imports are warmed up first (the first proposal in a fresh
process pays about 2 s importing spopt and tobler).
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geo import partition
from geo.crs import metric_crs

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "lhasa.gpkg"


def _bare_maxp(units: gpd.GeoDataFrame, floor: float) -> np.ndarray:
    """spopt's MaxPHeuristic on ``units`` with only the floor: a region label per unit."""
    from libpysal.weights import W
    from spopt.region import MaxPHeuristic

    graph = partition._graph(units)
    frame = pd.DataFrame(
        {
            "cx": units.centroid.x,
            "cy": units.centroid.y,
            "households": units["households"].to_numpy(),
        }
    )
    np.random.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MaxPHeuristic(
            frame,
            W({u: list(graph.neighbors(u)) for u in graph}, silence_warnings=True),
            ["cx", "cy"],
            "households",
            floor,
            top_n=2,
            max_iterations_construction=partition.MAXP_CONSTRUCTION,
            max_iterations_sa=1,
        )
        model.solve()
    return np.asarray(model.labels_)


def _child(units, floor, conn):
    t = time.perf_counter()
    labels = _bare_maxp(units, floor)
    conn.send((time.perf_counter() - t, labels))
    conn.close()


def reference(units: gpd.GeoDataFrame, floor: float, timeout: float):
    """(seconds, labels) of bare max-p in a child process; (None, None) past ``timeout``."""
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(units, floor, there), daemon=True)
    proc.start()
    there.close()
    got = here.recv() if here.poll(timeout) else (None, None)
    if proc.is_alive():
        proc.terminate()
    proc.join()
    return got


def _figures(units, labels, band):
    """Cells in band, cells, households moved, mean Polsby-Popper of region ``labels``."""
    lo, hi = band
    labels = np.unique(labels, return_inverse=True)[1]
    hh = units["households"].to_numpy(float)
    load = np.bincount(labels, weights=hh)
    old = pd.factorize(units["old_cell"], use_na_sentinel=True)[0]
    regions = units.assign(region=labels).dissolve(by="region")
    pp = partition.polsby_popper(regions.geometry.values).mean()
    in_band = int(((load >= lo - 1e-3) & (load <= hi + 1e-3)).sum())
    return in_band, len(load), partition._moved(labels, old, hh), pp


def _row(name, n_units, ours, ref, fig_ours, fig_ref, extra=""):
    ratio = f"{ours / ref:6.2f}×" if ref else "     –"
    ref_s = f"{ref:8.2f}" if ref is not None else "   >time"
    ib, n, moved, pp = fig_ours
    line = (
        f"{name:<14}{n_units:>6} {ours:9.2f} {ref_s} {ratio}  {ib:>3}/{n:<3} {moved:9.0f} {pp:6.3f}"
    )
    if fig_ref is not None:
        rib, rn, rmoved, rpp = fig_ref
        line += f"   | {rib:>3}/{rn:<3} {rmoved:9.0f} {rpp:6.3f}"
    else:
        line += "   | " + " " * 24
    print(line + extra)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--band", type=float, nargs=2, default=(300, 500))
    ap.add_argument("--street", help="street code (default: the one with most communities)")
    ap.add_argument("--communities", nargs="*", default=[], help="more community codes")
    ap.add_argument("--no-roads", action="store_true", help="do not cut units by roads")
    ap.add_argument("--reference-timeout", type=float, default=120.0)
    args = ap.parse_args(argv)
    band = tuple(args.band)

    layers = {
        name: gpd.read_file(SAMPLE, layer=name) for name in ("street", "community", "grid", "road")
    }
    crs = metric_crs(layers["community"])
    comm, grid, road = (layers[k].to_crs(crs) for k in ("community", "grid", "road"))
    comm["code"] = comm["code"].astype(str)
    grid["parent_code"] = grid["parent_code"].astype(str)
    roads = None if args.no_roads else road
    if args.street:
        street = args.street
    else:
        size = comm.groupby("parent_code").size().rename("communities").to_frame()
        size["cells"] = grid.assign(street=grid["parent_code"].str[:9]).groupby("street").size()
        street = size.sort_values(["communities", "cells"], ascending=False).index[0]
    members = comm[comm["parent_code"] == street]
    codes = list(members["code"]) + [c for c in args.communities if c not in set(members["code"])]
    print(
        f"sample {SAMPLE.name}, band {band[0]:.0f}-{band[1]:.0f} households, metric CRS "
        f"{crs.to_string()}, roads {'no' if roads is None else 'yes'}; street {street}: "
        f"{len(members)} communities, {int(grid['parent_code'].isin(members['code']).sum())} "
        "grid cells"
    )

    # warm-up: imports (spopt, libpysal, tobler) and first-call costs, untimed
    first = codes[0]
    warm = partition.building_units(
        comm.loc[comm["code"] == first].geometry.iloc[0],
        grid[grid["parent_code"] == first],
        roads=roads,
        band=band,
    )
    partition.propose(warm, band=band, tries=1)

    print(
        f"{'':<14}{'':>6} {'gridmap':>9} {'max-p':>8} {'ratio':>7}  "
        f"{'gridmap: in band, moved hh, PP':<33}| max-p: in band, moved hh, PP"
    )
    print(f"{'community':<14}{'units':>6} {'s':>9} {'s':>8} {'':>7}")
    ours_all, ref_all = [], []
    for code in codes:
        t = time.perf_counter()
        units = partition.building_units(
            comm.loc[comm["code"] == code].geometry.iloc[0],
            grid[grid["parent_code"] == code],
            roads=roads,
            band=band,
        )
        build = time.perf_counter() - t
        t = time.perf_counter()
        p = partition.propose(units, band=band, community_code=code)
        ours = time.perf_counter() - t
        ref, labels = reference(units, band[0], args.reference_timeout)
        fig_ours = (
            p.metrics.get("cells_in_band", 0),
            p.metrics.get("cells", 0),
            p.metrics.get("households_moved", float("nan")),
            p.metrics.get("mean_polsby_popper", float("nan")),
        )
        fig_ref = _figures(units, labels, band) if labels is not None else None
        note = "" if p.feasible else f"  ({p.reason})"
        _row(
            code,
            len(units),
            ours,
            ref,
            fig_ours,
            fig_ref,
            f"  [units built in {build:.2f} s; {p.metrics.get('tries')} tries, "
            f"roads {p.metrics.get('roads')}, "
            f"{p.metrics.get('cells_across_roads')} across]{note}",
        )
        if code in set(members["code"]):
            ours_all.append(ours + build)
            ref_all.append(ref)
    print(
        f"one community: {max(ours_all):.2f} s at most, {np.mean(ours_all):.2f} s on "
        f"average, building units included (target: a few seconds)"
    )

    t = time.perf_counter()
    results = partition.propose_street(
        members, grid[grid["parent_code"].isin(members["code"])], band=band, roads=roads
    )
    street_s = time.perf_counter() - t
    cells = sum(r.metrics.get("cells", 0) for r in results.values())
    in_band = sum(r.metrics.get("cells_in_band", 0) for r in results.values())
    moved = sum(r.metrics.get("households_moved", 0) for r in results.values())
    pp = np.mean([r.metrics["mean_polsby_popper"] for r in results.values() if r.metrics])
    feasible = sum(r.feasible for r in results.values())
    ref_sum = None if None in ref_all else sum(ref_all)
    ratio = f"{street_s / ref_sum:.2f}×" if ref_sum else "–"
    print(
        f"one street: {street_s:.2f} s (target: < 60 s) for {len(results)} communities "
        f"({feasible} feasible), units built in the run; max-p alone on the same units "
        f"{ref_sum if ref_sum is None else round(ref_sum, 2)} s; ratio gridmap / max-p "
        f"{ratio}"
    )
    print(
        f"street {street}: band satisfaction {in_band}/{cells} cells, "
        f"{moved:.0f} households moved, mean Polsby-Popper {pp:.3f}"
    )


if __name__ == "__main__":
    main()
