"""Defects the area sums cannot see, pieces joined by a seam, ties, strict JSON and gaps
that must not depend on one union of noisy cells (issue 16.2). Each case is built so that
its answer is known: areas in m², codes by position in :func:`tests.tilings.squares`.

In ``squares()`` (8 × 8 cells of 100 m) the community boundary y = 400 m separates cells
(col, 3) and (col, 4) of the same street; x = 400 m separates the two streets.
"""

import json

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.checker import check_dataset
from tests.tilings import add_noise, box, cell, hierarchy, squares


def _check(streets, communities, grids):
    return check_dataset({"street": streets, "community": communities, "grid": grids})


def _rows(report, rule, layer="grid"):
    f = report.findings
    return f[(f["rule"] == rule) & (f["layer"] == layer)]


def _swap(grids, a, b, parcel_a, parcel_b):
    """Cell ``a`` gives ``parcel_a`` to ``b`` and takes ``parcel_b`` from it."""
    grids = grids.copy()
    ga, gb = grids.geometry.values[a], grids.geometry.values[b]
    grids.loc[a, "geometry"] = ga.difference(parcel_a).union(parcel_b)
    grids.loc[b, "geometry"] = gb.difference(parcel_b).union(parcel_a)
    return grids


def test_cells_swapping_equal_parcels_across_a_community_boundary_are_found():
    """Both communities keep their area, so the sums add up; each cell still reaches
    1,000 m² into the other community."""
    streets, communities, grids = squares()
    a, b = cell(grids, 1, 3), cell(grids, 1, 4)
    grids = _swap(grids, a, b, box(150, 380, 200, 400), box(100, 400, 150, 420))
    report = _check(streets, communities, grids)
    found = _rows(report, "not_nested").sort_values("area_m2")
    assert len(found) == 2, found.drop(columns="geometry").to_string()
    assert found["area_m2"].to_numpy() == pytest.approx([1000, 1000], rel=1e-6)
    code_a, code_b = grids["code"].iloc[a], grids["code"].iloc[b]
    assert sorted(f[0] for f in found["features"]) == sorted([code_a, code_b])
    for row in found.itertuples():
        into = grids["parent_code"].iloc[b if row.features[0] == code_a else a]
        assert row.features[1:] == [into]
    # nothing else: the parcels are exchanged, no overlap or gap between the cells
    assert report.summary() == {"not_nested": 2}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pair=st.integers(0, 15),
    depth=st.floats(2.0, 40.0),
    start=st.floats(0.0, 40.0),
    length=st.floats(5.0, 50.0),
)
def test_any_parcels_exchanged_between_neighbours_of_different_communities_are_found(
    pair, depth, start, length
):
    """Random neighbours across a community boundary (horizontal y = 400 m or vertical
    x = 400 m, which is also the street boundary) exchange equal parcels ``depth`` metres
    deep: always two not_nested findings of exactly that area."""
    streets, communities, grids = squares()
    along = pair % 8
    if pair < 8:  # (along, 3) | (along, 4) across y = 400
        a, b = cell(grids, along, 3), cell(grids, along, 4)
        give = box(100 * along + start, 400 - depth, 100 * along + start + length, 400)
        take = box(100 * along + 100 - length, 400, 100 * along + 100, 400 + depth)
    else:  # (3, along) | (4, along) across x = 400
        a, b = cell(grids, 3, along), cell(grids, 4, along)
        give = box(400 - depth, 100 * along + start, 400, 100 * along + start + length)
        take = box(400, 100 * along + 100 - length, 400 + depth, 100 * along + 100)
    grids = _swap(grids, a, b, give, take)
    found = _rows(_check(streets, communities, grids), "not_nested")
    area = depth * length
    assert len(found) == 2, found.drop(columns="geometry").to_string()
    assert found["area_m2"].to_numpy() == pytest.approx([area, area], rel=1e-6)


def test_a_sliver_joined_to_a_real_overlap_by_a_seam_is_its_own_finding():
    """Cell (2, 2) reaches 3 m into (3, 2) for 40 m and, past a 0.5 mm seam, 0.5 m for
    30 m: a real overlap of 120 m² and a sliver of 15 m², not one real overlap of 135 m²."""
    streets, communities, grids = squares()
    a = cell(grids, 2, 2)
    strip = box(300, 210, 303, 250)
    seam = box(300, 250, 300.0005, 260)
    sliver = box(300, 260, 300.5, 290)
    grids = grids.copy()
    grids.loc[a, "geometry"] = shapely.union_all([grids.geometry.values[a], strip, seam, sliver])
    found = _rows(_check(streets, communities, grids), "overlap").sort_values("area_m2")
    assert len(found) == 2, found.drop(columns="geometry").to_string()
    small, large = found.itertuples()
    assert (small.kind, large.kind) == ("sliver", "real")
    assert small.area_m2 == pytest.approx(15, abs=0.01) and small.width_m == pytest.approx(0.5)
    assert large.area_m2 == pytest.approx(120, abs=0.01) and large.width_m == pytest.approx(3)


@pytest.mark.parametrize("kept", ["south", "north"])
def test_a_cell_exactly_half_in_its_declared_community_keeps_it(kept):
    """Cells (1, 3) and (1, 4) become one cell spanning y = 300–500 m, declared in the
    community of the cell kept: half of it lies in each community. Ties favour the
    declared parent: 10,000 m² not_nested, no parent_mismatch."""
    streets, communities, grids = squares()
    south, north = cell(grids, 1, 3), cell(grids, 1, 4)
    keep, drop = (south, north) if kept == "south" else (north, south)
    grids = grids.copy()
    grids.loc[keep, "geometry"] = box(100, 300, 200, 500)
    grids = grids.drop(index=grids.index[drop]).reset_index(drop=True)
    report = _check(streets, communities, grids)
    assert _rows(report, "parent_mismatch").empty
    out = _rows(report, "not_nested")
    assert len(out) == 1 and out["area_m2"].iloc[0] == pytest.approx(10_000)


def test_parent_mismatch_json_is_strict_and_has_no_kind():
    streets, communities, grids = squares()
    grids = grids.copy()
    grids.loc[cell(grids, 1, 1), "parent_code"] = communities["code"].iloc[-1]
    doc = _check(streets, communities, grids).to_dict()
    text = json.dumps(doc, allow_nan=False)  # raises on NaN
    mismatch = [f for f in json.loads(text)["findings"] if f["rule"] == "parent_mismatch"]
    assert len(mismatch) == 1 and mismatch[0]["kind"] is None


def test_a_community_covered_by_noisy_cells_is_not_a_gap():
    """The 10,000-cell noisy tiling of bench_check: shapely.union_all of the 27 cells
    around community 540102038003 returned a polygon whose difference with it was the
    whole community (204,576 m²). The only defects are the two injected."""
    from tests.benchmarks.bench_check import _inject

    streets, communities, grids = hierarchy(10_000)
    grids = _inject(grids)
    report = _check(
        add_noise(streets, seed=1), add_noise(communities, seed=2), add_noise(grids, seed=3)
    )
    gaps = _rows(report, "gap")
    assert len(gaps) == 1, gaps.drop(columns="geometry").to_string()
    # the 30 m bite of bench_check: a half disc at most, cut by the cell's outline
    assert 0 < gaps["area_m2"].iloc[0] < np.pi * 30**2 / 2 + 1
    assert report.summary() == {"overlap": 1, "gap": 1}


@pytest.mark.parametrize("depth, found", [(0.012, 1), (0.008, 0), (0.3, 1), (12.0, 1)])
def test_overlaps_just_above_the_noise_width_survive_the_pair_screen(depth, found):
    """Pairs are screened by shrinking one polygon by half the noise width (1 cm): an
    overlap 1.2 cm wide is still found (a sliver), one of 0.8 cm is noise."""
    streets, communities, grids = squares()
    a = cell(grids, 2, 2)
    grids = grids.copy()
    grids.loc[a, "geometry"] = grids.geometry.values[a].union(box(300, 210, 300 + depth, 290))
    rows = _rows(_check(streets, communities, grids), "overlap")
    assert len(rows) == found
    if found:
        assert rows["width_m"].iloc[0] == pytest.approx(depth, rel=0.01)
        assert rows["area_m2"].iloc[0] == pytest.approx(80 * depth, rel=0.01)
