"""After a save of grid cells the check is made again near them only: the same report
as checking the whole dataset again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.affinity

from geo.checker import check_dataset
from geo.dataset import Dataset
from geo.recheck import _keys, applies, rechecked
from layers.storage import open_store
from tests.conftest import SAMPLE
from tests.tilings import add_noise, hierarchy


def _city():
    streets, communities, grids = hierarchy(600, seed=3)
    grids = add_noise(grids, seed=3)
    layers = {"street": streets, "community": communities, "grid": grids}
    return Dataset({n: g.to_crs(4490) for n, g in layers.items()})


def _sample():
    return Dataset(open_store(SAMPLE).load())


def _edit(grid, rng, metric):
    """One random save of ``grid`` (EPSG:4490): a cell pushed into its neighbours, one
    shrunk (a gap), one moved to another community, one removed, one added across a
    boundary, or one split; the codes it changed."""
    codes = grid["code"].astype(str).to_numpy()
    i = int(rng.integers(len(grid)))
    code = codes[i]
    out = grid.copy()
    to_metric = metric.crs
    g = out.geometry.iloc[i]
    kind = rng.choice(["grow", "shrink", "parent", "remove", "add", "split"])
    m = grid.iloc[[i]].to_crs(to_metric).geometry.iloc[0]
    if kind == "grow":
        m = m.buffer(float(rng.uniform(2, 40)))
    elif kind == "shrink":
        m = m.buffer(-float(rng.uniform(2, 20)))
    if kind in ("grow", "shrink"):
        g = shapely.get_geometry(type(grid.geometry)([m], crs=to_metric).to_crs(grid.crs).values, 0)
        out.loc[out.index[i], "geometry"] = g
        return out, [code]
    if kind == "parent":
        other = codes[int(rng.integers(len(grid)))]
        out.loc[out.index[i], "parent_code"] = grid["parent_code"].iloc[codes.tolist().index(other)]
        return out, [code]
    if kind == "remove":
        return out.drop(index=out.index[i]).reset_index(drop=True), [code]
    c = m.centroid
    if kind == "add":
        new = out.iloc[[i]].copy()
        new["code"] = code[:-3] + "999"
        blob = c.buffer(float(rng.uniform(50, 300)))
        new.geometry = type(grid.geometry)([blob], crs=to_metric).to_crs(grid.crs).values
        return pd.concat([out, new], ignore_index=True), [new["code"].iloc[0]]
    x0, y0, x1, y1 = m.bounds  # split: west half keeps the code, east half is new
    west, east = (
        m.intersection(shapely.box(x0, y0, c.x, y1)),
        m.intersection(shapely.box(c.x, y0, x1, y1)),
    )
    halves = type(grid.geometry)([west, east], crs=to_metric).to_crs(grid.crs).values
    out.loc[out.index[i], "geometry"] = halves[0]
    new = out.iloc[[i]].copy()
    new["code"] = code[:-3] + "998"
    new.geometry = halves[1:]
    return pd.concat([out, new], ignore_index=True), [code, new["code"].iloc[0]]


def _same_report(got, want):
    a, b = got.findings, want.findings
    assert sorted(_keys(a)) == sorted(_keys(b))
    assert shapely.area(a.geometry.values).sum() == pytest.approx(
        shapely.area(b.geometry.values).sum(), rel=1e-9, abs=1e-6
    )
    assert got.layers == want.layers
    assert list(got.alignment) == list(want.alignment)
    for name, table in want.alignment.items():
        pd.testing.assert_frame_equal(got.alignment[name], table, rtol=1e-9)


@pytest.mark.parametrize("dataset", [_city, _sample], ids=["tiling", "sample"])
def test_a_recheck_near_the_saves_reports_what_the_whole_check_reports(dataset):
    """Random saves, one after another, each rechecked from the report before: after
    each, the findings (rule, layer, features, parent, area and width to the cm), the
    layer counts and the alignment tables equal the whole dataset checked again."""
    rng = np.random.default_rng(11)
    ds = dataset()
    assert applies(ds)
    report = check_dataset(ds)
    changed = 0
    for _ in range(6):
        grid, codes = _edit(ds["grid"], rng, ds.metric("grid"))
        new = ds.subset(grid=grid)
        got, want = rechecked(report, ds, new, codes), check_dataset(new)
        changed += set(_keys(want.findings)) != set(_keys(report.findings))
        _same_report(got, want)
        ds, report = new, got
    assert changed >= 3  # the saves changed what the check finds


def test_a_dataset_across_zones_or_with_a_departments_grid_is_checked_whole():
    """Where a recheck would not be exact the whole check runs: a dataset whose streets
    lie in two projection zones (each part is measured in its own), and one with another
    department's grid, whose 跨界 pieces follow the cells wherever they reach."""
    ds = _sample()
    assert applies(ds)
    streets = ds["street"].copy()
    geoms = streets.geometry.values.copy()
    geoms[0] = shapely.affinity.translate(geoms[0], xoff=6.0)  # 6° east: the next zone
    streets.geometry = geoms
    assert not applies(ds.subset(street=streets))
    department = ds["grid"].iloc[:3][["code", "name", "geometry"]]
    assert not applies(ds.subset(grid_urban=department))
