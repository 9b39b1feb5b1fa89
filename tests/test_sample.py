"""The bundled sample: reproducible, at the scale of the city core, with exactly the defects
data/lhasa_defects.csv and data/README.md document."""

import re

import pandas as pd
import pytest
import shapely

from data.build_sample import build
from layers.storage import open_store
from tests.conftest import DEFECTS, ROOT, SAMPLE


@pytest.fixture(scope="module")
def sample():
    return open_store(SAMPLE).load()


@pytest.fixture(scope="module")
def metric(sample):
    return {name: gdf.to_crs("EPSG:4539") for name, gdf in sample.items()}


@pytest.fixture(scope="module")
def defects():
    return pd.read_csv(DEFECTS, dtype={"codes": str})


def _geom(layer, code):
    rows = layer[layer["code"] == code]
    assert len(rows) == 1, f"{code}: {len(rows)} features"
    return rows.geometry.iloc[0]


def test_committed_file_is_what_the_script_builds_from_its_seed(sample):
    built, defects = build(2024)
    assert list(built) == list(sample)
    for name, gdf in built.items():
        stored = sample[name]
        assert len(stored) == len(gdf), name
        for col in [c for c in gdf.columns if c != "geometry"]:
            assert stored[col].astype(str).tolist() == gdf[col].astype(str).tolist(), (name, col)
        same = shapely.equals_exact(stored.geometry.values, gdf.geometry.values, 1e-9)
        assert same.all(), f"{name}: {(~same).sum()} geometries differ"
    assert pd.DataFrame(defects)["codes"].tolist() == pd.read_csv(DEFECTS)["codes"].tolist()


def test_scale_of_the_city_core(sample):
    assert len(sample["street"]) == 10
    assert len(sample["community"]) == 50
    assert 500 <= len(sample["grid"]) <= 800
    hh = sample["grid"]["households"]
    assert (hh < 100).sum() >= 10 and (hh > 900).sum() >= 10
    kinds = sample["facility"]["kind"].value_counts()
    assert kinds["police_post"] == 160
    assert kinds["health_center"] == 9
    assert kinds["service_hall"] == 30
    assert kinds["party_service_station"] == 50
    assert kinds["police_station"] == len(sample["police_area"]) == 8
    assert len(sample["police_beat"]) == 50
    assert sample["road"]["class"].isin(["primary", "secondary", "residential"]).all()
    names = set(sample["street"]["name"]) | set(sample["community"]["name"])
    for real in [
        "八廓街道",
        "吉日街道",
        "扎细街道",
        "公德林街道",
        "嘎玛贡桑街道",
        "两岛街道",
        "金珠西路街道",
        "鲁固社区",
        "河坝林社区",
        "当巴社区",
        "雄嘎社区",
        "俄杰塘社区",
        "仙足岛社区",
        "藏热社区",
        "塔玛社区",
    ]:
        assert real in names


def test_inside_chengguan_near_the_potala(metric):
    potala = shapely.Point(91.1172, 29.6558)
    streets = metric["street"].to_crs(4490)
    assert streets.union_all().contains(potala)
    assert metric["street"].crs.to_epsg() == 4539
    assert 60 < metric["street"].area.sum() / 1e6 < 200  # km², the urban core


def test_codes_are_hierarchical(sample):
    c, g = sample["community"], sample["grid"]
    assert (c["code"].str[:9] == c["parent_code"]).all()
    assert c["code"].str.len().eq(12).all() and g["code"].str.len().eq(15).all()


def _defect_communities(sample, defects):
    codes = ";".join(defects.loc[defects.layer == "grid", "codes"]).split(";")
    grid = sample["grid"]
    comms = set(grid.loc[grid["code"].isin(codes), "parent_code"])
    mentioned = set(re.findall(r"\d{12}", " ".join(defects["description"])))
    return comms | mentioned | {c for c in codes if len(c) == 12}


def test_grids_tile_every_community_without_defects_exactly(sample, metric, defects):
    skip = _defect_communities(sample, defects)
    grid = metric["grid"]
    checked = 0
    for c in metric["community"].itertuples():
        if c.code in skip:
            continue
        cells = grid[grid["parent_code"] == c.code].geometry
        assert cells.area.sum() == pytest.approx(c.geometry.area, rel=1e-9), c.code
        assert cells.union_all().symmetric_difference(c.geometry).area < 1e-3, c.code
        checked += 1
    assert checked >= 40


def test_communities_tile_streets_and_police_beats_follow_communities(metric):
    streets, comms = metric["street"], metric["community"]
    for s in streets.itertuples():
        parts = comms[comms["parent_code"] == s.code].geometry
        assert parts.area.sum() == pytest.approx(s.geometry.area, rel=1e-9)


def _row(defects, layer, rule, contains=""):
    rows = defects[
        (defects.layer == layer)
        & (defects.rule == rule)
        & defects.description.str.contains(contains)
    ]
    assert len(rows) == 1, (layer, rule, contains)
    return rows.iloc[0]


def test_documented_grid_overlap(metric, defects):
    d = _row(defects, "grid", "overlap")
    a, b = d.codes.split(";")
    area = _geom(metric["grid"], a).intersection(_geom(metric["grid"], b)).area
    assert area == pytest.approx(d.area_m2, rel=0.01)
    assert area > 100


@pytest.mark.parametrize("kind", ["bite", "sliver"])
def test_documented_grid_gaps(metric, defects, kind):
    d = _row(defects, "grid", "gap", kind)
    a, b = d.codes.split(";")
    grid, comms = metric["grid"], metric["community"]
    parent = grid.loc[grid["code"] == a, "parent_code"].iloc[0]
    hole = _geom(comms, parent).difference(grid[grid["parent_code"] == parent].union_all())
    assert hole.area == pytest.approx(d.area_m2, rel=0.01)
    main = max(getattr(hole, "geoms", [hole]), key=lambda g: g.area)
    width = 2 * shapely.maximum_inscribed_circle(main, 0.001).length
    if kind == "sliver":
        assert width == pytest.approx(0.4, abs=0.02)
    else:
        assert width > 10


def test_documented_grid_crossing_its_community(metric, defects):
    d = _row(defects, "grid", "not_nested")
    code, other_community = d.codes.split(";")
    grid, comms = metric["grid"], metric["community"]
    cell = _geom(grid, code)
    own = grid.loc[grid["code"] == code, "parent_code"].iloc[0]
    outside = cell.difference(_geom(comms, own))
    assert outside.area == pytest.approx(d.area_m2, rel=0.01)
    assert outside.intersection(_geom(comms, other_community)).area == pytest.approx(
        outside.area, rel=1e-6
    )


def test_documented_wrong_parent_code(metric, defects):
    d = _row(defects, "grid", "parent_mismatch")
    code, declared = d.codes.split(";")
    cell = _geom(metric["grid"], code)
    assert _geom(metric["grid"], code) is not None
    assert metric["grid"].loc[metric["grid"]["code"] == code, "parent_code"].iloc[0] == declared
    assert not _geom(metric["community"], declared).contains(cell.representative_point())
    actual = metric["community"][metric["community"].contains(cell.representative_point())]
    assert len(actual) == 1 and actual["code"].iloc[0] != declared


def test_documented_duplicate_code_and_invalid_geometry(metric, defects):
    dup = _row(defects, "grid", "duplicate_code").codes
    assert (metric["grid"]["code"] == dup).sum() == 2
    code = _row(defects, "grid", "invalid_geometry").codes
    geom = _geom(metric["grid"], code)
    assert not geom.is_valid
    assert "Self-intersection" in shapely.is_valid_reason(geom)
    assert shapely.make_valid(geom).area == pytest.approx(geom.area, rel=1e-9)
    # the only invalid feature in the sample
    assert (~metric["grid"].is_valid).sum() == 1


def test_documented_police_area_defects(metric, defects):
    areas = metric["police_area"]
    hierarchy = metric["street"].union_all()
    gap = _row(defects, "police_area", "gap")
    uncovered = hierarchy.difference(areas.union_all())
    assert uncovered.area == pytest.approx(gap.area_m2, rel=0.01)
    assert uncovered.area > 10_000  # a real 三不管 area, not noise
    ov = _row(defects, "police_area", "overlap")
    a, b = ov.codes.split(";")
    assert _geom(areas, a).intersection(_geom(areas, b)).area == pytest.approx(ov.area_m2, rel=0.01)
    mis = _row(defects, "police_area", "misaligned")
    area_code, street_code = mis.codes.split(";")
    inside = _geom(areas, area_code).intersection(_geom(metric["street"], street_code)).area
    assert inside == pytest.approx(mis.area_m2, rel=0.01)
    beat_gap = _row(defects, "police_beat", "gap")
    beats_missing = metric["community"].union_all().difference(metric["police_beat"].union_all())
    assert beats_missing.area == pytest.approx(beat_gap.area_m2, rel=0.01)


def test_data_readme_lists_every_defect(defects):
    readme = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for codes in defects["codes"]:
        for code in codes.split(";"):
            assert code in readme, f"data/README.md does not mention {code}"
