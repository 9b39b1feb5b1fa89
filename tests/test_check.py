"""The validation engine against cases whose answer is known by construction."""

import json
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.checker import check_dataset
from geo.findings import Tolerances
from layers.storage import open_store
from tests.conftest import DEFECTS, ROOT, SAMPLE
from tests.tilings import ORIGIN, add_noise, cell, hierarchy, squares

X0, Y0 = ORIGIN


def _layers(streets, communities, grids, **more):
    return {"street": streets, "community": communities, "grid": grids, **more}


def _only(report, rule, layer):
    f = report.findings
    return f[(f["rule"] == rule) & (f["layer"] == layer)]


# --------------------------------------------------------------------------- clean data


def test_exact_square_tiling_has_no_finding():
    assert check_dataset(_layers(*squares())).clean


def test_noisy_real_world_tiling_has_no_finding_though_geos_flags_it():
    streets, communities, grids = (add_noise(g, seed=i) for i, g in enumerate(hierarchy(600)))
    # Strict coverage validation sees the T-junctions and reprojection noise as errors ...
    flagged = ~shapely.is_empty(shapely.coverage_invalid_edges(grids.geometry.values))
    assert flagged.sum() > 50
    # ... the checker, measuring widths in metres, does not.
    report = check_dataset(_layers(streets, communities, grids))
    assert report.clean, report.findings.drop(columns="geometry").to_string()


def test_millimetre_snapping_is_noise():
    streets, communities, grids = squares()
    grids = grids.copy()
    i = cell(grids, 1, 1)
    grids.loc[i, "geometry"] = shapely.box(X0 + 100, Y0 + 100, X0 + 200.004, Y0 + 200)  # 4 mm
    assert check_dataset(_layers(streets, communities, grids)).clean


# --------------------------------------------------------------------------- injected defects


def test_overlap_area_width_and_codes():
    streets, communities, grids = squares()
    grids = grids.copy()
    a, b = cell(grids, 1, 1), cell(grids, 2, 1)
    grids.loc[a, "geometry"] = shapely.box(X0 + 100, Y0 + 100, X0 + 205, Y0 + 200)  # 5 m into b
    report = check_dataset(_layers(streets, communities, grids))
    found = _only(report, "overlap", "grid")
    assert len(found) == 1 and len(report.findings) == 1
    row = found.iloc[0]
    assert row.area_m2 == pytest.approx(500, rel=0.01)
    assert row.width_m == pytest.approx(5, rel=0.01)
    assert row.kind == "real"
    assert set(row.features) == {grids.code[a], grids.code[b]}


def test_gap_inside_a_community():
    streets, communities, grids = squares()
    grids = grids.copy()
    a = cell(grids, 1, 1)
    hole = shapely.box(X0 + 150, Y0 + 100, X0 + 200, Y0 + 120)  # 50 × 20 m at its east edge
    grids.loc[a, "geometry"] = grids.geometry[a].difference(hole)
    report = check_dataset(_layers(streets, communities, grids))
    assert len(report.findings) == 1
    row = _only(report, "gap", "grid").iloc[0]
    assert row.area_m2 == pytest.approx(1000, rel=0.01)
    assert row.width_m == pytest.approx(20, rel=0.01)
    assert row.parent == grids.parent_code[a] and row.parent_layer == "community"
    assert grids.code[a] in row.features and grids.code[cell(grids, 2, 1)] in row.features


def test_sliver_is_classified_and_tolerance_is_the_users():
    streets, communities, grids = squares()
    grids = grids.copy()
    a = cell(grids, 1, 1)
    grids.loc[a, "geometry"] = shapely.box(X0 + 100, Y0 + 100, X0 + 199.7, Y0 + 200)  # 0.3 m
    row = _only(check_dataset(_layers(streets, communities, grids)), "gap", "grid").iloc[0]
    assert row.kind == "sliver"
    assert row.area_m2 == pytest.approx(30, rel=0.01)
    assert row.width_m == pytest.approx(0.3, rel=0.01)
    wide_noise = Tolerances(noise_width=0.5, sliver_width=2.0)
    assert check_dataset(_layers(streets, communities, grids), tolerances=wide_noise).clean
    strict = Tolerances(noise_width=0.01, sliver_width=0.1)
    assert (
        _only(check_dataset(_layers(streets, communities, grids), tolerances=strict), "gap", "grid")
        .iloc[0]
        .kind
        == "real"
    )


def test_grid_crossing_its_community():
    streets, communities, grids = squares()
    grids = grids.copy()
    a, b = cell(grids, 3, 1), cell(grids, 4, 1)  # neighbours across a community border
    assert grids.parent_code[a] != grids.parent_code[b]
    grids.loc[a, "geometry"] = shapely.box(X0 + 300, Y0 + 100, X0 + 410, Y0 + 200)
    grids.loc[b, "geometry"] = shapely.box(X0 + 410, Y0 + 100, X0 + 500, Y0 + 200)
    report = check_dataset(_layers(streets, communities, grids))
    assert report.summary() == {"not_nested": 1}
    row = report.findings.iloc[0]
    assert row.area_m2 == pytest.approx(1000, rel=0.01) and row.width_m == pytest.approx(
        10, rel=0.01
    )
    assert row.features == [grids.code[a], grids.parent_code[b]]


def test_wrong_parent_code_and_unknown_parent():
    streets, communities, grids = squares()
    grids = grids.copy()
    a, b = cell(grids, 0, 0), cell(grids, 7, 7)
    right = grids.parent_code[a]
    grids.loc[a, "parent_code"] = grids.parent_code[b]
    grids.loc[b, "parent_code"] = "540102009999"
    report = check_dataset(_layers(streets, communities, grids))
    found = _only(report, "parent_mismatch", "grid").set_index(report.findings["features"].str[0])
    assert report.summary() == {"parent_mismatch": 2}
    assert found.loc[grids.code[a], "parent"] == right
    assert "not a community" in found.loc[grids.code[b], "detail"]


def test_duplicate_codes_and_invalid_geometry_do_not_stop_the_other_rules():
    streets, communities, grids = squares()
    grids = grids.copy()
    a, b, c = cell(grids, 0, 0), cell(grids, 0, 1), cell(grids, 5, 5)
    grids.loc[b, "code"] = grids.code[a]
    x, y = X0 + 500, Y0 + 500  # cell (5, 5) with a zero-width spike: invalid, same area
    grids.loc[c, "geometry"] = shapely.Polygon(
        [
            (x, y),
            (x + 50, y),
            (x + 50, y - 20),
            (x + 50, y),
            (x + 100, y),
            (x + 100, y + 100),
            (x, y + 100),
        ]
    )
    d = cell(grids, 6, 6)
    grids.loc[d, "geometry"] = shapely.box(X0 + 590, Y0 + 600, X0 + 700, Y0 + 700)  # overlap
    report = check_dataset(_layers(streets, communities, grids))
    assert report.summary() == {"invalid_geometry": 1, "duplicate_code": 1, "overlap": 1}
    inv = _only(report, "invalid_geometry", "grid").iloc[0]
    assert "Self-intersection" in inv.detail
    assert inv.geometry.distance(shapely.Point(x + 50, y)) < 1e-6
    assert _only(report, "overlap", "grid").iloc[0].area_m2 == pytest.approx(1000, rel=0.01)


def _police(streets):
    return gpd.GeoDataFrame(
        {"code": ["PA1", "PA2"], "name": ["西派出所", "东派出所"]},
        geometry=list(streets.geometry),
        crs=streets.crs,
    )


def test_police_area_three_no_mans_land_cross_management_and_alignment():
    streets, communities, grids = squares()
    police = _police(streets)
    # 三不管: a 100 × 50 m hole in the west area at its east edge
    hole = shapely.box(X0 + 300, Y0 + 200, X0 + 400, Y0 + 250)
    police.loc[0, "geometry"] = police.geometry[0].difference(hole)
    # 交叉管: the east area reaches 20 m into the west street along a 200 m stretch
    police.loc[1, "geometry"] = police.geometry[1].union(
        shapely.box(X0 + 380, Y0 + 500, X0 + 400, Y0 + 700)
    )
    report = check_dataset(_layers(streets, communities, grids, police_area=police))
    assert report.summary() == {"overlap": 1, "gap": 1, "misaligned": 1}
    assert _only(report, "gap", "police_area").iloc[0].area_m2 == pytest.approx(5000, rel=0.01)
    ov = _only(report, "overlap", "police_area").iloc[0]
    assert ov.area_m2 == pytest.approx(4000, rel=0.01) and ov.width_m == pytest.approx(20, rel=0.01)
    mis = _only(report, "misaligned", "police_area").iloc[0]
    assert mis.features == ["PA2", streets.code[0]] and mis.area_m2 == pytest.approx(4000, rel=0.01)
    table = report.alignment["police_area"].set_index("code")
    assert table.loc["PA1", "matched"] == [streets.code[0]]
    assert table.loc["PA1", "unmatched_in_units_m2"] == pytest.approx(5000, rel=0.01)
    assert table.loc["PA2", "mismatched_area_m2"] == pytest.approx(4000, rel=0.01)
    assert table.loc["PA2", "shared_pct"] == pytest.approx(100 * 320000 / 324000, abs=0.01)
    assert table.loc["PA2", "boundary_offset_m"] == pytest.approx(20, abs=0.01)


def test_police_beats_against_communities():
    streets, communities, grids = squares()
    beats = communities[["code", "name", "geometry"]].copy()
    beats["code"] = [f"PB{i}" for i in range(len(beats))]
    beats["parent_code"] = [
        "PA1" if c.startswith("540102001") else "PA2" for c in communities["code"]
    ]
    # One beat takes a 10 m strip of its northern neighbour community (same street).
    i = int(np.flatnonzero(communities.code == "540102001001")[0])
    j = int(np.flatnonzero(communities.code == "540102001002")[0])
    strip = shapely.box(X0, Y0 + 400, X0 + 400, Y0 + 410)
    beats.loc[i, "geometry"] = beats.geometry[i].union(strip)
    beats.loc[j, "geometry"] = beats.geometry[j].difference(strip)
    report = check_dataset(
        _layers(streets, communities, grids, police_area=_police(streets), police_beat=beats)
    )
    assert report.summary() == {"misaligned": 1}
    mis = report.findings.iloc[0]
    assert mis.features == [f"PB{i}", "540102001002"] and mis.area_m2 == pytest.approx(
        4000, rel=0.01
    )


def test_any_subset_of_layers_is_checked():
    streets, communities, grids = squares()
    grids = grids.copy()
    a = cell(grids, 1, 1)
    grids.loc[a, "geometry"] = grids.geometry[a].difference(
        shapely.box(X0 + 140, Y0 + 140, X0 + 160, Y0 + 160)
    )
    only_grid = check_dataset({"grid": grids})
    row = _only(only_grid, "gap", "grid").iloc[0]
    assert row.area_m2 == pytest.approx(400, rel=0.01) and row.parent_layer is None
    assert check_dataset({"police_area": _police(streets)}).clean
    assert check_dataset({"road": gpd.GeoDataFrame(geometry=[], crs=4490)}).clean


# --------------------------------------------------------------------------- property tests


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(40, 300), seed=st.integers(0, 10_000))
def test_random_noisy_tilings_give_no_finding(n, seed):
    layers = [
        add_noise(g, seed=seed + i)
        for i, g in enumerate(
            hierarchy(n, cells_per_community=8, communities_per_street=4, seed=seed)
        )
    ]
    report = check_dataset(_layers(*layers))
    assert report.clean, report.findings.drop(columns="geometry").to_string()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), depth=st.floats(0.05, 30.0), gap=st.booleans())
def test_injected_overlap_or_gap_above_tolerance_is_found(seed, depth, gap):
    streets, communities, grids = hierarchy(
        150, cells_per_community=10, communities_per_street=5, seed=seed
    )
    rng = np.random.default_rng(seed)
    geoms = grids.geometry.values
    left, right = shapely.STRtree(geoms).query(geoms, predicate="touches")
    shared = shapely.length(
        shapely.intersection(shapely.boundary(geoms[left]), shapely.boundary(geoms[right]))
    )
    same = grids.parent_code.to_numpy()[left] == grids.parent_code.to_numpy()[right]
    k = rng.choice(np.flatnonzero(same & (shared > 3 * depth) & (shared > 5)))
    a, b = int(left[k]), int(right[k])
    grids = grids.copy()
    piece = geoms[b].intersection(geoms[a].buffer(depth, join_style="mitre"))
    if gap:  # take the strip away from b, leaving it to nobody
        grids.loc[b, "geometry"] = geoms[b].difference(piece)
        expected = piece.area
    else:  # a also covers the strip of b
        grids.loc[a, "geometry"] = geoms[a].union(piece)
        expected = grids.geometry[a].intersection(geoms[b]).area
    report = check_dataset(_layers(streets, communities, add_noise(grids, seed=seed)))
    rule = "gap" if gap else "overlap"
    found = _only(report, rule, "grid")
    assert found["area_m2"].sum() == pytest.approx(expected, rel=0.01)
    assert all(grids.code[b] in f for f in found["features"])
    # Nothing else, except that the noise may make the cut cell itself invalid (a pinch
    # point after reprojection); the rest of the check then runs on its repaired copy.
    others = report.findings[report.findings["rule"] != rule]
    assert set(others["rule"]) <= {"invalid_geometry"}
    assert all(f == [grids.code[b]] for f in others["features"])


# --------------------------------------------------------------------------- the sample


def test_sample_findings_are_exactly_the_documented_defects():
    report = check_dataset(open_store(SAMPLE).load())
    documented = pd.read_csv(DEFECTS)
    assert len(report.findings) == len(documented)
    for d in documented.itertuples():
        f = _only(report, d.rule, d.layer)
        codes = d.codes.split(";")
        match = f[
            [
                codes[0] in feats or codes[0] == parent
                for feats, parent in zip(f["features"], f["parent"])
            ]
        ]
        assert len(match) == 1, (d.rule, d.layer, d.codes)
        if d.area_m2 > 0:
            assert match.iloc[0].area_m2 == pytest.approx(d.area_m2, rel=0.01), d.codes
        if d.width_m == d.width_m:  # the sliver
            assert match.iloc[0].width_m == pytest.approx(d.width_m, rel=0.02)
            assert match.iloc[0].kind == "sliver"


def _check(*args):
    return subprocess.run(
        [sys.executable, "-m", "geo", "check", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_cli_json_exit_codes_and_export(tmp_path):
    out = _check(str(SAMPLE), "--format", "json", "--export", str(tmp_path / "f.gpkg"))
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) >= {"dataset", "metric_crs", "layers", "findings", "summary"}
    assert doc["metric_crs"] == "EPSG:4539"
    assert doc["layers"]["grid"] == {"features": 651, "crs": "EPSG:4490"}
    assert sum(doc["summary"].values()) == len(doc["findings"]) == 11
    f = doc["findings"][0]
    assert set(f) >= {"rule", "layer", "features", "area_m2", "width_m", "geometry"}
    lon, lat = shapely.geometry.shape(doc["findings"][2]["geometry"]).centroid.coords[0]
    assert 91.0 < lon < 91.3 and 29.6 < lat < 29.7  # lon/lat, not metres
    layers = dict(pyogrio.list_layers(tmp_path / "f.gpkg"))
    assert set(layers) == {"findings_area", "findings_point"}
    areas = gpd.read_file(tmp_path / "f.gpkg", layer="findings_area")
    assert len(areas) == 8 and areas.crs.to_epsg() == 4326  # 11 findings, 3 of them points

    text = _check(str(SAMPLE))
    assert text.returncode == 1 and "三不管" in text.stdout and "交叉管" in text.stdout
    assert "sliver" in text.stdout


def test_cli_clean_dataset_exits_0_and_bad_input_2(tmp_path):
    streets, communities, grids = squares()
    store = open_store(tmp_path / "clean.gpkg")
    for name, gdf in _layers(streets, communities, grids).items():
        store.write_layer(name, gdf.to_crs(4490))
    clean = _check(str(tmp_path / "clean.gpkg"), "-o", str(tmp_path / "r.txt"))
    assert clean.returncode == 0, clean.stderr
    assert "No findings" in (tmp_path / "r.txt").read_text(encoding="utf-8")
    bad = _check(str(tmp_path / "missing.gpkg"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no gridmap layers" in bad.stderr
    (tmp_path / "broken.gpkg").write_text("not a geopackage")
    broken = _check(str(tmp_path / "broken.gpkg"))
    assert broken.returncode == 2 and "not a readable GeoPackage" in broken.stderr
