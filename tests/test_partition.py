"""Proposing grid cells within a household band (answers known by construction)."""

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.partition import building_units, polsby_popper, propose, serial_order

X0, Y0 = 480_000.0, 3_270_000.0


def _community(cells_hh, size=200.0):
    """A row of square current cells (households given), as one community."""
    cells = gpd.GeoDataFrame(
        {"code": [f"c{i}" for i in range(len(cells_hh))], "households": cells_hh,
         "population": [3 * h for h in cells_hh]},
        geometry=[shapely.box(X0 + i * size, Y0, X0 + (i + 1) * size, Y0 + size)
                  for i in range(len(cells_hh))], crs="EPSG:4539")
    return shapely.union_all(cells.geometry.values), cells


def test_units_carry_the_households_by_area():
    community, cells = _community([400, 800])
    units = building_units(community, cells, target=50)
    assert units["households"].sum() == pytest.approx(1200, rel=1e-6)
    left = units[units["old_cell"] == "c0"]["households"].sum()
    assert left == pytest.approx(400, rel=1e-6)


def test_every_proposed_cell_is_contiguous_and_within_the_band():
    community, cells = _community([900, 300, 1250, 650])  # 3,100 households
    units = building_units(community, cells, target=120)
    p = propose(units, band=(300, 500), community_code="540102001001")
    assert p.feasible, p.reason
    hh = p.cells["households"]
    assert (hh >= 300 - 0.1).all() and (hh <= 500 + 0.1).all()
    assert hh.sum() == pytest.approx(3100, abs=1)
    assert 7 <= len(p.cells) <= 10  # 3,100 / 500 … 3,100 / 300
    assert (p.cells.geom_type == "Polygon").all()  # one piece each
    assert shapely.union_all(p.cells.geometry.values).symmetric_difference(community).area < 1
    assert list(p.cells["code"]) == [f"540102001001{i:03d}" for i in range(1, len(p.cells) + 1)]
    assert p.metrics["max_households"] <= 500 and 0 < p.metrics["mean_polsby_popper"] <= 1
    assert set(p.moves.columns) == {"unit", "old_cell", "new_cell", "households"}


@pytest.mark.parametrize("cells_hh, words", [
    ([520], "520 households cannot make cells of 300-500"),
    ([100, 100], "cannot make cells"),
])
def test_an_impossible_band_is_explained(cells_hh, words):
    community, cells = _community(cells_hh)
    p = propose(building_units(community, cells, target=30), band=(300, 500))
    assert not p.feasible and words in p.reason


def test_one_compound_above_the_maximum_is_named():
    community, cells = _community([700, 300], size=100)
    units = building_units(community, cells, target=2)  # each current cell one unit
    p = propose(units, band=(300, 500))
    assert not p.feasible and "700 households" in p.reason


def test_compactness_and_numbering_helpers():
    square, disc = shapely.box(0, 0, 1, 1), shapely.Point(0, 0).buffer(1, 256)
    assert polsby_popper([square])[0] == pytest.approx(np.pi / 4, rel=1e-6)
    assert polsby_popper([disc])[0] == pytest.approx(1, rel=1e-3)
    geoms = [shapely.box(x, y, x + 10, y + 10) for x, y in [(0, 0), (1000, 0), (0, 1000), (1000, 1000)]]
    assert list(serial_order(geoms)) == [2, 3, 0, 1]  # north row first, west to east


def test_proposal_api_on_a_sample_community(client):
    body = client.get("/proposal?community=540102003004&min=300&max=500").get_json()
    assert body["feasible"] and body["metrics"]["max_households"] <= 500
    hh = [f["properties"]["households"] for f in body["cells"]["features"]]
    assert min(hh) >= 299.9 and sum(hh) == pytest.approx(body["metrics"]["households"], abs=1)
    assert body["current"]["cells"] == 12 and isinstance(body["moves"], list)
    assert client.get("/proposal?community=nope").status_code == 404
    assert client.get("/proposal?community=540102003004&min=600&max=500").status_code == 400
