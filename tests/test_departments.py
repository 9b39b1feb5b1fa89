"""Other departments' grids (多网合一, issue 14.4): an urban-management grid compared with
the base grid by the same engine as police areas with streets — the check, the alignment
table, the lookup and the aligned layout — on a layout whose answer is known by
construction.

Base grid: tests/tilings.py squares(8), 100 m cells, cell (col, row) holding 100 + col +
row households and 300 people. Urban cells (城管网格) are 2 × 2 blocks of base cells, except:

- U00 reaches 40 m into column 2 for rows 0–1 (its neighbour U10 gives that strip up):
  40 % of cells (2, 0) and (2, 1), 0.4 × (102 + 103) = 82 households;
- U03 reaches 40 m into column 2 for rows 6–7 while U13 keeps all of it (交叉管):
  0.4 × (108 + 109) = 86.8 households held twice;
- U33 leaves a 50 m square hole in cell (7, 7) (三不管).
"""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from geo.checker import check_dataset
from geo.dataset import Dataset
from geo.kinds import department_grids, jurisdictions
from geo.locator import Locator
from geo.realign import propose_for_layer
from tests.tilings import ORIGIN, box, squares


@pytest.fixture(scope="module")
def city():
    streets, communities, grid = squares(8)
    cells = {}
    for a in range(4):
        for b in range(4):
            cells[a, b] = box(200 * a, 200 * b, 200 * a + 200, 200 * b + 200)
    cells[0, 0] = box(0, 0, 240, 200)
    cells[1, 0] = box(240, 0, 400, 200)
    cells[0, 3] = box(0, 600, 240, 800)
    cells[3, 3] = shapely.difference(cells[3, 3], box(700, 700, 750, 750))
    urban = gpd.GeoDataFrame(
        {"code": [f"U{a}{b}" for a, b in cells], "name": [f"城管{a}{b}" for a, b in cells]},
        geometry=list(cells.values()),
        crs=grid.crs,
    )
    return Dataset(
        {"street": streets, "community": communities, "grid": grid.drop(columns=["col", "row"]),
         "grid_urban": urban},
        metric_crs=grid.crs,
    )  # fmt: skip


def test_department_grids_are_jurisdictions_of_the_base_grid():
    assert department_grids()["grid_urban"] == ("城管", "urban management")
    assert {jurisdictions()[n] for n in department_grids()} == {"grid"}


def test_the_check_finds_the_strip_the_overlap_and_the_hole(city):
    report = check_dataset(city)
    f = report.findings[report.findings["layer"] == "grid_urban"]
    gaps = f[f["rule"] == "gap"]
    assert list(gaps["area_m2"].round(1)) == [2500.0]
    overlaps = f[f["rule"] == "overlap"]
    assert sorted(overlaps["features"].iloc[0]) == ["U03", "U13"]
    assert overlaps["area_m2"].iloc[0] == pytest.approx(40 * 200, abs=0.1)
    cut = f[f["rule"] == "misaligned"]
    # each strip cuts two base cells of column 2: 40 m × 100 m in each
    assert sorted((a, b[-3:]) for a, b in cut["features"]) == [
        ("U00", "020"), ("U00", "021"), ("U03", "026"), ("U03", "027")]  # fmt: skip
    assert cut["area_m2"].tolist() == pytest.approx([4000] * 4, abs=0.1)
    assert set(cut["parent_layer"]) == {"grid"}
    table = report.alignment["grid_urban"].set_index("code")
    assert table.loc["U00", "mismatched_area_m2"] == pytest.approx(40 * 200, abs=0.1)
    assert table.loc["U00", "households_mismatched"] == pytest.approx(82)
    assert table.loc["U03", "households_mismatched"] == pytest.approx(86.8)


def test_the_lookup_says_who_is_in_charge_of_the_urban_grid(city):
    lonlat = city.lonlat("grid_urban")
    where = Locator(city.subset({n: city.lonlat(n) for n in city}))
    to_lonlat = gpd.GeoSeries(
        [shapely.Point(ORIGIN[0] + x, ORIGIN[1] + y) for x, y in [(725, 725), (220, 700), (100, 100)]],
        crs=city["grid"].crs,
    ).to_crs(lonlat.crs)  # fmt: skip
    hole, overlap, plain = (where.locate(p.x, p.y)["grid_urban"] for p in to_lonlat)
    assert hole["status"] == "gap" and hole["holders"] == []
    assert overlap["status"] == "overlap"
    assert sorted(h["code"] for h in overlap["holders"]) == ["U03", "U13"]
    assert plain["status"] == "one" and plain["code"] == "U00"


def test_the_aligned_layout_gives_each_base_cell_to_one_urban_cell(city):
    r = propose_for_layer(city, "grid_urban")
    assert r.status == "optimal" and r.follows == "grid"
    moved = r.transfers[r.transfers["from"].notna() & (r.transfers["kind"] == "real")]
    assert sorted(zip(moved["from"], moved["to"])) == [("U00", "U10"), ("U00", "U10"),
                                                       ("U03", "U13"), ("U03", "U13")]  # fmt: skip
    assert r.summary["households_moved"] == pytest.approx(82 + 86.8)
    assert r.summary["gaps_closed_m2"] == pytest.approx(2500, abs=0.1)
    # every urban cell is now exactly its 2 × 2 block of base cells
    assert r.proposed.area.round(3).tolist() == [40_000.0] * 16
    # against the communities instead (unit=): 16 urban cells cannot each keep a whole one of 4
    loose = propose_for_layer(city, "grid_urban", unit="community")
    assert loose.status == "infeasible" and loose.reasons[0]["reason"] == "too_few_units"
