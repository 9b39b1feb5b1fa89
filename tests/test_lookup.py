"""Who is responsible at a place: every holder, 交叉管 and 三不管 said (issue 14.1), on
layers whose answer is known by construction (tests/tilings.py squares, 100 m cells)."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from geo.locator import Locator
from tests.tilings import ORIGIN, cell, squares


def _lonlat(x, y):
    """lon/lat of the point (x, y) metres from the squares' south-west corner."""
    p = gpd.GeoSeries([shapely.Point(ORIGIN[0] + x, ORIGIN[1] + y)], crs=4539).to_crs(4490)
    return p.x.iloc[0], p.y.iloc[0]


def _box(x0, y0, x1, y1):
    return shapely.box(ORIGIN[0] + x0, ORIGIN[1] + y0, ORIGIN[0] + x1, ORIGIN[1] + y1)


@pytest.fixture(scope="module")
def city():
    """8 × 8 cells of 100 m, two streets (x < 400, x > 400); police area PA1 reaches 50 m
    into the east street (交叉管 strip x 400–450), PA2 has a 100 m hole at (600–700,
    600–700) (三不管); cell (1, 1) is missing; cell (0, 0) has one household unit on its
    west half only; beats follow the communities."""
    streets, communities, grids = squares(8)
    grids = grids.drop(index=cell(grids, 1, 1)).reset_index(drop=True)
    police = gpd.GeoDataFrame(
        {"code": ["PA1", "PA2"], "name": ["一所", "二所"]},
        geometry=[
            _box(0, 0, 450, 800),
            _box(400, 0, 800, 800).difference(_box(600, 600, 700, 700)),
        ],
        crs=4539,
    )
    beats = communities[["code", "name", "geometry"]].assign(
        code=lambda d: "PB" + d["code"], parent_code=["PA1", "PA1", "PA2", "PA2"]
    )
    first = grids.iloc[cell(grids, 0, 0)]
    units = gpd.GeoDataFrame(
        {"code": ["U1"], "name": ["联户1"], "parent_code": [first["code"]], "households": [10]},
        geometry=[_box(0, 0, 50, 100)],
        crs=4539,
    )
    layers = {
        "street": streets,
        "community": communities,
        "grid": grids,
        "household_unit": units,
        "police_area": police,
        "police_beat": beats,
    }
    return Locator({n: g.to_crs(4490) for n, g in layers.items()})


def _status(city, x, y):
    return {n: a["status"] for n, a in city.locate(*_lonlat(x, y)).items()}


def test_two_stations_in_charge_are_both_named_and_called_an_overlap(city):
    answer = city.locate(*_lonlat(425, 100))
    police = answer["police_area"]
    assert police["status"] == "overlap"  # 交叉管
    assert police["holders"] == [{"code": "PA1", "name": "一所"}, {"code": "PA2", "name": "二所"}]
    assert police["code"] == "PA1" and police["also"] == ["PA2"]
    assert answer["street"]["status"] == "one" and answer["street"]["code"] == "540102002"
    # 10 m either side of the strip: one station each
    assert city.locate(*_lonlat(390, 100))["police_area"]["code"] == "PA1"
    assert city.locate(*_lonlat(460, 100))["police_area"]["holders"] == [
        {"code": "PA2", "name": "二所"}
    ]


def test_a_place_nobody_is_in_charge_of_is_a_gap_and_outside_the_city_is_not(city):
    hole = _status(city, 650, 650)
    assert hole["police_area"] == "gap"  # 三不管: no station, though the beat is drawn
    assert hole["police_beat"] == "one"
    assert hole["street"] == hole["community"] == hole["grid"] == "one"
    missing_cell = _status(city, 150, 150)
    assert missing_cell["grid"] == "gap" and missing_cell["community"] == "one"
    # outside every street: no layer is expected to be here
    assert set(_status(city, -500, -500).values()) == {"none"}


def test_household_units_are_a_gap_only_in_cells_that_have_some(city):
    assert _status(city, 25, 50)["household_unit"] == "one"
    assert _status(city, 75, 50)["household_unit"] == "gap"  # its cell is only half tiled
    assert _status(city, 350, 350)["household_unit"] == "none"  # a cell with no units


def test_an_edited_layer_is_answered_at_once(city):
    """After an edit of the police layer (the hole filled), the same place has a station."""
    police = city._areas["police_area"].copy()
    police.loc[1, "geometry"] = gpd.GeoSeries([_box(400, 0, 800, 800)], crs=4539).to_crs(4490)[0]
    edited = city.with_area("police_area", police)
    assert _status(edited, 650, 650)["police_area"] == "one"
    assert _status(city, 650, 650)["police_area"] == "gap"  # the original is unchanged
