"""Redrawing grid cells (geo.redraw) on square tilings whose answers are known by
construction: 100 m squares, communities of 4 × 4 cells."""

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo import redraw
from geo.checker import check_dataset
from tests.tilings import cell, squares


@pytest.fixture
def city():
    streets, communities, grids = squares()
    return streets, communities, grids


def _apply(grids, changed):
    """The grid layer after a change (what web.editing writes)."""
    keep = grids[~grids["code"].isin(changed["code"])].drop(columns=["col", "row"])
    live = changed[~changed.geometry.is_empty]
    return gpd.GeoDataFrame(
        __import__("pandas").concat([keep, live], ignore_index=True), crs=grids.crs
    )


def _figures(grids, changed):
    before = grids[grids["code"].isin(changed["code"])]
    return redraw.reapportion(before, changed)


def test_split_along_a_line_keeps_the_code_on_the_larger_piece(city):
    streets, communities, grids = city
    i = cell(grids, 1, 1)
    x0, y0, x1, y1 = grids.geometry.iloc[i].bounds
    line = shapely.LineString([(x0 + 40, y0 - 5), (x0 + 40, y1 + 5)])
    changed = redraw.split(grids, grids["code"].iloc[i], line)
    assert list(changed["code"])[0] == grids["code"].iloc[i]
    assert changed.area.round(3).tolist() == [6000.0, 4000.0]
    parent = grids["parent_code"].iloc[i]
    assert changed["code"].iloc[1].startswith(parent) and changed["code"].iloc[1] not in set(
        grids["code"]
    )
    out, method = _figures(grids, changed)
    hh = grids["households"].iloc[i]  # 102, split 60/40 by area
    assert out["households"].tolist() == [round(hh * 0.6), round(hh * 0.4)]
    assert method == "area-weighted from the previous cells"
    report = check_dataset(
        {"street": streets, "community": communities, "grid": _apply(grids, out)}
    )
    assert report.findings.empty


def test_a_line_that_does_not_cross_the_cell_is_refused(city):
    _, _, grids = city
    x0, y0, _, _ = grids.geometry.iloc[cell(grids, 1, 1)].bounds
    with pytest.raises(redraw.RedrawError, match="does not cut"):
        redraw.split(
            grids,
            grids["code"].iloc[cell(grids, 1, 1)],
            shapely.LineString([(x0 + 40, y0 + 10), (x0 + 40, y0 + 60)]),
        )


def test_merge_neighbours_only_within_one_community(city):
    _, _, grids = city
    a, b = grids["code"].iloc[cell(grids, 0, 0)], grids["code"].iloc[cell(grids, 1, 0)]
    changed = redraw.merge(grids, [a, b])
    assert changed["code"].tolist() == [a, b]
    assert changed.geometry.iloc[0].area == pytest.approx(20000, abs=0.01)
    assert changed.geometry.iloc[0].geom_type == "Polygon" and changed.geometry.iloc[1].is_empty
    out, _ = _figures(grids, changed)
    assert out["households"].iloc[0] == 100 + 101 and out["households"].iloc[1] == 0
    far = grids["code"].iloc[cell(grids, 3, 3)]
    with pytest.raises(redraw.RedrawError, match="do not share a border"):
        redraw.merge(grids, [a, far])
    other = grids["code"].iloc[cell(grids, 4, 0)]  # across the community boundary
    with pytest.raises(redraw.RedrawError, match="different communities"):
        redraw.merge(grids, [grids["code"].iloc[cell(grids, 3, 0)], other])


def test_move_a_piece_to_the_neighbour(city):
    streets, communities, grids = city
    a, b = cell(grids, 0, 0), cell(grids, 1, 0)
    x0, y0, x1, y1 = grids.geometry.iloc[b].bounds
    piece = shapely.box(x0 - 1, y0, x0 + 20, y1)  # the west 20 m of b, drawn 1 m over a
    changed = redraw.move_piece(grids, piece, grids["code"].iloc[a], communities)
    areas = dict(zip(changed["code"], changed.area.round(3)))
    assert areas == {grids["code"].iloc[a]: 12000.0, grids["code"].iloc[b]: 8000.0}
    out, _ = _figures(grids, changed)
    got = dict(zip(out["code"], out["households"]))
    assert got[grids["code"].iloc[a]] == 100 + round(101 * 0.2)
    assert sum(got.values()) == 100 + 101
    report = check_dataset(
        {"street": streets, "community": communities, "grid": _apply(grids, out)}
    )
    assert report.findings.empty


def test_reshape_snaps_to_neighbours_and_leaves_no_sliver(city):
    streets, communities, grids = city
    i = cell(grids, 1, 1)
    x0, y0, x1, y1 = grids.geometry.iloc[i].bounds
    # hand-drawn: east edge pushed 30 m into the neighbour, other edges up to 1.5 m off
    drawn = shapely.Polygon(
        [(x0 + 1.2, y0 - 0.8), (x1 + 30, y0 + 1.5), (x1 + 30, y1 - 1.0), (x0 - 0.7, y1 + 1.3)]
    )
    changed = redraw.reshape(grids, grids["code"].iloc[i], drawn, communities)
    areas = dict(zip(changed["code"], changed.area))
    assert areas[grids["code"].iloc[i]] == pytest.approx(13000, abs=1)
    assert areas[grids["code"].iloc[cell(grids, 2, 1)]] == pytest.approx(7000, abs=1)
    new_grid = _apply(grids, _figures(grids, changed)[0])
    assert new_grid.area.sum() == pytest.approx(grids.area.sum(), abs=0.01)
    report = check_dataset({"street": streets, "community": communities, "grid": new_grid})
    assert report.findings.empty, report.findings[["rule", "features", "area_m2"]]


def test_reshape_without_snapping_would_leave_slivers(city):
    """The same drawing with snapping off: the hand-drawn wobble survives as wedges less
    than 2 m wide handed to the neighbours — so the test above passes because of the
    snapping."""
    _, communities, grids = city
    i = cell(grids, 1, 1)
    x0, y0, x1, y1 = grids.geometry.iloc[i].bounds
    drawn = shapely.Polygon(
        [(x0 + 1.2, y0 - 0.8), (x1 + 30, y0 + 1.5), (x1 + 30, y1 - 1.0), (x0 - 0.7, y1 + 1.3)]
    )
    changed = redraw.reshape(grids, grids["code"].iloc[i], drawn, communities, tolerance=0)
    areas = dict(zip(changed["code"], changed.area))
    assert abs(areas[grids["code"].iloc[i]] - 13000) > 10
    south = grids["code"].iloc[cell(grids, 1, 0)]
    wedge = (
        changed.set_index("code").geometry[south].difference(grids.geometry.iloc[cell(grids, 1, 0)])
    )
    assert 10 < wedge.area and shapely.maximum_inscribed_circle(wedge).length * 2 < 2.0


def test_draw_a_new_cell_takes_area_from_the_cells_it_covers(city):
    streets, communities, grids = city
    x0, y0, _, _ = grids.geometry.iloc[cell(grids, 1, 1)].bounds
    box = shapely.box(x0 + 50, y0 + 50, x0 + 150, y0 + 150)  # a quarter of 4 cells
    parent = grids["parent_code"].iloc[cell(grids, 1, 1)]
    changed = redraw.draw(grids, box, parent, communities)
    new = changed[~changed["code"].isin(grids["code"])]
    assert len(new) == 1 and new.area.iloc[0] == pytest.approx(10000, abs=0.01)
    assert (changed[changed["code"].isin(grids["code"])].area.round(3) == 7500).all()
    out, _ = _figures(grids, changed)
    assert out["households"].sum() == grids[grids["code"].isin(changed["code"])]["households"].sum()
    report = check_dataset(
        {"street": streets, "community": communities, "grid": _apply(grids, out)}
    )
    assert report.findings.empty


def test_household_points_count_exactly(city):
    _, _, grids = city
    i = cell(grids, 1, 1)
    x0, y0, x1, y1 = grids.geometry.iloc[i].bounds
    changed = redraw.split(
        grids, grids["code"].iloc[i], shapely.LineString([(x0 + 40, y0 - 5), (x0 + 40, y1 + 5)])
    )
    # 7 addresses west of the cut (3 households each), 2 east (10 each), 1 outside
    pts = [(x0 + 10, y0 + 10 + 10 * k) for k in range(7)] + [
        (x0 + 80, y0 + 50),
        (x0 + 90, y0 + 20),
        (x0 - 300, y0),
    ]
    points = gpd.GeoDataFrame(
        {"households": [3] * 7 + [10, 10, 99], "population": [9] * 7 + [25, 25, 999]},
        geometry=shapely.points(np.array(pts)),
        crs=grids.crs,
    )
    out, method = redraw.reapportion(grids.iloc[[i]], changed, points)
    assert method == "household points"
    assert out["households"].tolist() == [20, 21] and out["population"].tolist() == [50, 63]


def test_buildings_straddling_a_new_edge_are_shared_by_area(city):
    _, _, grids = city
    i = cell(grids, 1, 1)
    x0, y0, x1, y1 = grids.geometry.iloc[i].bounds
    changed = redraw.split(
        grids, grids["code"].iloc[i], shapely.LineString([(x0 + 40, y0 - 5), (x0 + 40, y1 + 5)])
    )
    buildings = gpd.GeoDataFrame(
        {"households": [10, 7, 12], "population": [30, 20, 40]},
        geometry=[
            shapely.box(x0 + 30, y0 + 10, x0 + 50, y0 + 30),  # half on each side
            shapely.box(x0 + 60, y0 + 60, x0 + 80, y0 + 80),  # east piece only
            shapely.box(x0 + 5, y0 + 60, x0 + 25, y0 + 80),
        ],  # west piece only
        crs=grids.crs,
    )
    out, method = redraw.reapportion(grids.iloc[[i]], changed, buildings)
    assert method == "buildings"
    # the kept code is the larger (east, 60 m) piece: 5 + 7; the new west piece: 5 + 12
    assert out["households"].tolist() == [12, 17] and out["population"].tolist() == [35, 55]


def test_fitting_cells_that_already_tile_the_community_changes_nothing():
    outline = shapely.box(0, 0, 400, 200)
    cells = gpd.GeoDataFrame(
        {"code": ["a", "b"]},
        crs="EPSG:4539",
        geometry=[shapely.box(0, 0, 150, 200), shapely.box(150, 0, 400, 200)],
    )
    fitted = redraw.fit_to(cells, outline)
    assert fitted.area.tolist() == pytest.approx([30_000, 50_000], abs=1e-6)
    # a 1 m strip left uncovered goes to the cell along it; a 10 m one stays a gap
    short = cells.assign(geometry=[shapely.box(0, 0, 150, 200), shapely.box(150, 0, 399, 200)])
    assert redraw.fit_to(short, outline).area.sum() == pytest.approx(80_000, abs=1e-3)
    gap = cells.assign(geometry=[shapely.box(0, 0, 150, 200), shapely.box(150, 0, 390, 200)])
    assert redraw.fit_to(gap, outline).area.sum() == pytest.approx(78_000, abs=1e-3)


def test_rounding_keeps_each_community_s_households():
    # two communities, each split into three cells of a third: whole numbers per community
    before = gpd.GeoDataFrame(
        {"code": ["a", "b"], "parent_code": ["A", "B"], "households": [100, 100]},
        crs="EPSG:4539",
        geometry=[shapely.box(0, 0, 300, 100), shapely.box(300, 0, 600, 100)],
    )
    after = gpd.GeoDataFrame(
        {"code": list("123456"), "parent_code": list("AAABBB")},
        crs="EPSG:4539",
        geometry=[shapely.box(100 * i, 0, 100 * (i + 1), 100) for i in range(6)],
    )
    out, method = redraw.reapportion(before, after)
    assert method == "area-weighted from the previous cells"
    assert out.groupby("parent_code")["households"].sum().tolist() == [100, 100]
    assert sorted(out["households"].tolist()) == [33, 33, 33, 33, 34, 34]


def test_an_invalid_building_footprint_is_repaired_not_fatal():
    before = gpd.GeoDataFrame(
        {"code": ["a"], "households": [100], "population": [300]},
        geometry=[shapely.box(0, 0, 100, 100)],
        crs="EPSG:4539",
    )
    after = gpd.GeoDataFrame(
        {"code": ["a", "b"]},
        crs="EPSG:4539",
        geometry=[shapely.box(0, 0, 50, 100), shapely.box(50, 0, 100, 100)],
    )
    # a bow-tie of two 625 m² lobes (10 households), 850 m² of it west of x = 50, and a
    # building of 5 households wholly east
    bow = shapely.Polygon([(10, 10), (60, 60), (60, 10), (10, 60)])
    assert not bow.is_valid
    buildings = gpd.GeoDataFrame(
        {"households": [10, 5]}, crs="EPSG:4539", geometry=[bow, shapely.box(70, 70, 80, 80)]
    )
    out, method = redraw.reapportion(before, after, buildings)
    assert method == "buildings"
    assert out["households"].tolist() == [7, 8]  # 6.8 and 3.2 + 5, whole numbers keeping 15
