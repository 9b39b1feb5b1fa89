"""Areal interpolation (geo.areal) and shared edges (geo.edges), against answers known by
construction and against geopandas' own overlay.

The fast path counts cells whole by a point inside them and intersects only the cells an
outline cuts; every case where that shortcut could be wrong (a gap in the grid, cells
overlapping, an outline drawn apart from the cells' edges, areas made of several parts)
must still give the exact shares.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

import geo.areal
from geo.areal import cell_shares
from geo.edges import fingerprints, segments
from geo.realign import propose_alignment, unit_adjacency
from tests.tilings import box, hierarchy


def _held(areas, cells) -> np.ndarray:
    """Area (m²) of each area counted through the shares: Σ share × cell area."""
    a, c, s = cell_shares(areas, cells)
    out = np.zeros(len(areas))
    np.add.at(out, a, s * shapely.area(np.asarray(cells, dtype=object))[c])
    return out


def _squares(n: int, size: float = 10.0) -> np.ndarray:
    """n × n squares of ``size`` m from the origin, row by row."""
    i, j = np.divmod(np.arange(n * n), n)
    return shapely.box(j * size, i * size, (j + 1) * size, (i + 1) * size)


def _no_fallback(monkeypatch):
    def refuse(*args):
        raise AssertionError("an area fell back to pair-by-pair intersection")

    monkeypatch.setattr(geo.areal, "_pairwise", refuse)


def test_areas_made_of_whole_cells_hold_them_whole_without_any_intersection(monkeypatch):
    _no_fallback(monkeypatch)
    cells = _squares(4)  # 40 m square of 16 cells
    west = shapely.union_all(cells[[0, 1, 4, 5, 8, 9, 12, 13]])
    corner = shapely.union_all(cells[[10, 11, 14, 15]])
    a, c, s = cell_shares([west, corner], cells)
    assert sorted(c[a == 0].tolist()) == [0, 1, 4, 5, 8, 9, 12, 13]
    assert sorted(c[a == 1].tolist()) == [10, 11, 14, 15]
    assert (s == 1).all()  # whole, not 0.999…: no intersection was computed


def test_an_outline_cutting_cells_gives_their_exact_shares(monkeypatch):
    _no_fallback(monkeypatch)
    cells = _squares(4)
    # the west 15 m: columns 0 whole and column 1 half, a cut along x = 15
    west = shapely.union_all([*cells[[0, 4, 8, 12]], shapely.box(10, 0, 15, 40)])
    a, c, s = cell_shares([west], cells)
    got = dict(zip(c.tolist(), s.tolist()))
    assert got == pytest.approx({0: 1, 4: 1, 8: 1, 12: 1, 1: 0.5, 5: 0.5, 9: 0.5, 13: 0.5})


def test_a_piece_inside_one_cell_holds_its_share_of_it():
    cells = _squares(2)
    a, c, s = cell_shares([shapely.box(2, 2, 4, 7)], cells)  # 10 m² of cell 0's 100
    assert c.tolist() == [0] and s == pytest.approx([0.1])


def test_a_gap_in_the_grid_is_not_filled_by_the_shortcut():
    cells = np.delete(_squares(4), 5)  # the cell at column 1, row 1 missing
    area = shapely.box(0, 0, 40, 40)
    assert _held([area], cells)[0] == pytest.approx(1500.0)


def test_overlapping_cells_each_count_their_own_share():
    cells = np.append(_squares(2), shapely.box(5, 0, 15, 10))  # over cells 0 and 1
    a, c, s = cell_shares([shapely.box(0, 0, 10, 20)], cells)
    got = dict(zip(c.tolist(), s.tolist()))
    assert got == pytest.approx({0: 1, 2: 1, 4: 0.5})


def test_an_outline_drawn_with_fewer_vertices_than_the_cells_still_counts_whole():
    cells = _squares(4)
    # the same west half, drawn as one rectangle: none of its edges is a cell's edge
    a, c, s = cell_shares([shapely.box(0, 0, 20, 40)], cells)
    assert sorted(c.tolist()) == [0, 1, 4, 5, 8, 9, 12, 13]
    assert s == pytest.approx(np.ones(8))


def test_multipart_areas_collections_and_areas_without_area():
    cells = _squares(4)
    two = shapely.MultiPolygon([shapely.box(0, 0, 10, 10), shapely.box(30, 30, 40, 35)])
    bag = shapely.GeometryCollection(
        [shapely.box(10, 0, 20, 10), shapely.LineString([(0, 0), (40, 40)])]
    )
    line = shapely.LineString([(0, 0), (40, 40)])
    held = _held([two, bag, line, shapely.Polygon(), None], cells)
    assert held == pytest.approx([150.0, 100.0, 0, 0, 0])


@pytest.mark.parametrize("seed", [0, 1])
def test_shares_agree_with_geopandas_overlay_on_a_voronoi_city(seed):
    """Streets and communities of a Voronoi city (made of cells), plus discs and a band
    drawn across them; each area's households as geopandas' own overlay of the cells
    counts them."""
    streets, communities, cells = hierarchy(3000, seed=seed)
    x0, y0, x1, y1 = cells.total_bounds
    mid = ((x0 + x1) / 2, (y0 + y1) / 2)
    drawn = [
        shapely.Point(mid).buffer((x1 - x0) / 5),
        shapely.box(x0 + 123.4, y0, x0 + 777.7, y1),
        shapely.Point(x0, y0).buffer((x1 - x0) / 3),
    ]
    areas = np.concatenate([streets.geometry.values, communities.geometry.values[:50], drawn])
    cells = cells.assign(households=np.arange(len(cells)) % 7 + 1.0)
    a, c, s = cell_shares(areas, cells.geometry.values)
    ours = np.zeros(len(areas))
    np.add.at(ours, a, s * cells["households"].to_numpy()[c])
    frame = gpd.GeoDataFrame({"area": np.arange(len(areas))}, geometry=list(areas), crs=cells.crs)
    pieces = gpd.overlay(cells.assign(cell_area=cells.area), frame, how="intersection",
                         keep_geom_type=True)  # fmt: skip
    pieces["h"] = pieces["households"] * pieces.area / pieces["cell_area"]
    theirs = pieces.groupby("area")["h"].sum().reindex(range(len(areas)), fill_value=0.0)
    assert ours == pytest.approx(theirs.to_numpy(), rel=1e-9, abs=1e-6)


def test_a_coherent_city_takes_the_fast_path(monkeypatch):
    """Streets and communities made of the cells: no area needs pair-by-pair work."""
    _no_fallback(monkeypatch)
    streets, communities, cells = hierarchy(2000)
    areas = np.concatenate([streets.geometry.values, communities.geometry.values])
    held = _held(areas, cells.geometry.values)
    assert held == pytest.approx(shapely.area(areas), rel=1e-9)


# ------------------------------------------------------------------------- edges
def test_a_segment_has_one_fingerprint_whichever_way_it_runs():
    seg = np.array([[0.0, 0, 10, 0], [10, 0, 0, 0], [0, 0, 0, 10], [0, 10, 0, 0], [10, 0, 0, 0.0]])
    f = fingerprints(seg)
    assert f[0] == f[1] == f[4] and f[2] == f[3] and f[0] != f[2]


def test_segments_of_multipolygons_and_holes_belong_to_their_geometry():
    ring = shapely.box(0, 0, 30, 30).difference(shapely.box(10, 10, 20, 20))
    owner, seg = segments(
        [ring, shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(5, 5, 6, 6)])]
    )
    assert np.bincount(owner).tolist() == [8, 8]


def _units(*geoms):
    return gpd.GeoDataFrame(
        {"code": [f"U{i}" for i in range(len(geoms))]}, geometry=list(geoms), crs="EPSG:4539"
    )


def test_neighbours_digitised_apart_still_share_their_border():
    """A border drawn twice, 0.3 m apart, with different vertices: no segment is shared
    exactly, and the units are still neighbours; 3 m of border is not enough."""
    units = _units(
        shapely.segmentize(box(0, 0, 100, 100), 30),  # vertices every 25 m
        box(100.3, 0, 200, 100),
        box(0, 100, 3, 103).union(box(-50, 103, 3, 150)),  # meets U0 along 3 m only
    )
    assert sorted(unit_adjacency(units).edges()) == [(0, 1)]


def test_neighbours_sharing_exact_edges_are_found_by_their_segments():
    units = _units(*_squares(3, size=100.0))  # 3 × 3 squares: 12 shared borders of 100 m
    edges = sorted(unit_adjacency(units).edges())
    assert len(edges) == 12 and (0, 1) in edges and (0, 3) in edges and (0, 4) not in edges


# ------------------------------------------------------------------------- the proposal
def test_overlap_and_gap_of_equal_area_in_one_unit_still_show_the_gap():
    """In U0 (100 m²·10), S1 holds 60 %, S2 40 % of which 20 % overlaps S1, and 20 % is in
    no station: the pieces' areas add up to the unit's, yet 200 m² is 三不管."""
    units = _units(box(0, 0, 10, 100), box(10, 0, 20, 100))
    stations = gpd.GeoDataFrame(
        {"code": ["S1", "S2"], "name": ["一所", "二所"]},
        geometry=[box(0, 0, 6, 100), box(4, 0, 8, 100).union(box(10, 0, 20, 100))],
        crs="EPSG:4539",
    )
    r = propose_alignment(stations, units)
    assert r.summary["gaps_closed_m2"] == pytest.approx(200.0)
    gap = r.transfers[r.transfers["from"].isna()]
    assert gap["unit"].tolist() == ["U0"] and gap["to"].tolist() == ["S1"]
