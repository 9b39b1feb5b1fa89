"""Proposed fixes: slivers go to the right neighbour, nothing is saved unless re-validated."""

import subprocess
import sys

import pytest
import shapely

from geo.checker import check_dataset
from geo.repair import propose_fixes
from layers.editing import revert_change
from layers.storage import open_store
from tests.conftest import ROOT
from tests.tilings import ORIGIN, cell, squares

X0, Y0 = ORIGIN


def _fix(streets, communities, grids):
    layers = {"street": streets, "community": communities, "grid": grids}
    report = check_dataset(layers)
    proposal = propose_fixes(grids.to_crs(report.metric_crs), "grid", report.findings)
    return report, proposal, check_dataset({**layers, "grid": proposal.layer})


def test_sliver_goes_to_the_neighbour_in_the_same_community():
    streets, communities, grids = squares()
    grids = grids.copy()
    a, b = cell(grids, 3, 2), cell(grids, 4, 2)  # a community border runs between them
    assert grids.parent_code[a] != grids.parent_code[b]
    grids.loc[a, "geometry"] = shapely.box(X0 + 300, Y0 + 200, X0 + 399.7, Y0 + 300)
    before, proposal, after = _fix(streets, communities, grids)
    assert before.summary() == {"gap": 1}
    assert proposal.changed_codes == [grids.code[a]]
    fixed = proposal.layer.geometry
    assert fixed[a].area == pytest.approx(10_000, rel=1e-9)
    assert fixed[b].equals(grids.geometry[b])
    assert after.clean
    # the input layer itself was not touched
    assert grids.geometry[a].area == pytest.approx(9_970, rel=1e-9)


def test_small_overlap_stays_with_the_longer_border():
    streets, communities, grids = squares()
    grids = grids.copy()
    a = cell(grids, 1, 1)
    # a reaches 0.5 m into b (the cell east of it) along 50 m: the strip borders a for 50 m and b for 51 m
    grids.loc[a, "geometry"] = shapely.box(X0 + 100, Y0 + 100, X0 + 200, Y0 + 200).union(
        shapely.box(X0 + 200, Y0 + 120, X0 + 200.5, Y0 + 170)
    )
    before, proposal, after = _fix(streets, communities, grids)
    assert before.findings.iloc[0].kind == "sliver"
    assert proposal.changes.iloc[0].code == grids.code[a]
    assert proposal.layer.geometry[a].area == pytest.approx(10_000, rel=1e-9)
    assert after.clean


def test_real_defects_are_left_alone():
    streets, communities, grids = squares()
    grids = grids.copy()
    a = cell(grids, 1, 1)
    grids.loc[a, "geometry"] = shapely.box(X0 + 100, Y0 + 100, X0 + 180, Y0 + 200)  # 20 m gap
    _, proposal, after = _fix(streets, communities, grids)
    assert proposal.changes.empty and "too wide" in proposal.skipped[0]
    assert after.summary() == {"gap": 1}


def test_cli_shows_then_saves_only_when_asked(tmp_path):
    streets, communities, grids = squares()
    grids = grids.copy()
    a = cell(grids, 1, 1)
    grids.loc[a, "geometry"] = shapely.box(X0 + 100, Y0 + 100, X0 + 199.6, Y0 + 200)
    path = tmp_path / "city.gpkg"
    store = open_store(path)
    for name, gdf in {"street": streets, "community": communities, "grid": grids}.items():
        store.write_layer(name, gdf.drop(columns=["col", "row"], errors="ignore").to_crs(4490))
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "geo", *a],
        cwd=ROOT,  # noqa: E731
        capture_output=True,
        text=True,
    )
    shown = run("fix", str(path), "--layer", "grid")
    assert shown.returncode == 1 and "takes the sliver (+40.00 m²)" in shown.stdout
    assert run("check", str(path)).returncode == 1  # nothing saved
    assert "图层 grid 的修复方案（尚未保存）" in run("fix", str(path), "--layer", "grid",
                                                "--lang", "zh").stdout  # fmt: skip
    saved = run("fix", str(path), "--layer", "grid", "--save")
    assert saved.returncode == 0, saved.stdout + saved.stderr
    assert run("check", str(path)).returncode == 0
    assert open_store(path).read_layer("grid").to_crs(4539).area.sum() == pytest.approx(640_000)
    # the repair is one change of the layer, listed and revertible like an upload
    (rev,) = open_store(path).revisions("grid")
    assert rev["code"] == "*" and rev["reason"] == "python -m geo fix: 1 repair(s)"
    assert f"as change {rev['id']} (revertible)" in saved.stdout
    revert_change(open_store(path), rev["id"], author="ana", reason="keep the gap", layer="grid")
    assert run("check", str(path)).returncode == 1  # the sliver is back
