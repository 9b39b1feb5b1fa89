"""The officers' alignment table (issue 14.2) on police areas whose answer is known by
construction (tests/tilings.py squares: 8 × 8 cells of 100 m, streets x < 400, x > 400)."""

from __future__ import annotations

import pytest

from geo.alignment import alignment_table
from tests.tilings import strip_city


@pytest.fixture(scope="module")
def table():
    """PA1 reaches 50 m into the east street (x 400–450, all 8 rows); PA2 is the east
    street less that strip. Cell (col, row) holds 100 + col + row households, 300 people."""
    police, streets, grid, facilities = strip_city()
    return alignment_table(police, streets, grid, facilities).set_index("code")


def test_each_station_is_matched_to_its_street_with_the_strip_measured(table):
    assert table.loc["PA1", "matched"] == ["540102001"]
    assert table.loc["PA1", "matched_names"] == ["街道001"]
    assert table.loc["PA2", "matched"] == ["540102002"]
    assert table.loc["PA1", "mismatched_area_m2"] == pytest.approx(50 * 800, abs=0.1)
    assert table.loc["PA1", "shared_pct"] == pytest.approx(100 * 400 / 450, abs=0.01)
    assert table.loc["PA2", "mismatched_area_m2"] == pytest.approx(0, abs=0.1)
    assert table.loc["PA2", "unmatched_in_units_m2"] == pytest.approx(50 * 800, abs=0.1)
    assert table.loc["PA1", "area_km2"] == pytest.approx(0.36)


def test_households_and_people_in_the_strip_are_half_of_column_four(table):
    """The strip covers the west half of each cell of column 4: half its households
    (0.5 × Σ 104 + row = 430) and half its 300 people per cell (1,200)."""
    assert table.loc["PA1", "households_mismatched"] == pytest.approx(430)
    assert table.loc["PA1", "population_mismatched"] == pytest.approx(1200)
    assert table.loc["PA2", "households_mismatched"] == pytest.approx(0)
    # the whole of PA1: columns 0–3 (3,360 households) and the strip
    assert table.loc["PA1", "households"] == pytest.approx(3360 + 430)
    assert table.loc["PA1", "population"] == pytest.approx(300 * 32 + 1200)
    assert table["households"].sum() == pytest.approx(
        sum(100 + c + r for c in range(8) for r in range(8))
    )


def test_the_sample_table_names_households_outside_and_downloads_as_csv(client):
    """On the sample, PA02 reaches into street 540102003 (the 跨界 strip of 321,325 m²):
    its table row says how many households live there; the CSV has the same rows."""
    rows = client.get("/alignment?layer=police_area").get_json()[0]["rows"]
    pa02 = next(r for r in rows if r["code"] == "540102PA02")
    assert pa02["mismatched_area_m2"] > 300_000 and pa02["households_mismatched"] > 0
    aligned = next(r for r in rows if r["code"] == "540102PA01")
    assert aligned["households_mismatched"] == 0 and aligned["households"] > 0
    csv = client.get("/alignment?layer=police_area&f=csv")
    assert csv.mimetype == "text/csv" and "attachment" in csv.headers["Content-Disposition"]
    lines = csv.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0].split(",")[:2] == ["code", "name"] and len(lines) == len(rows) + 1
    assert client.get("/alignment?f=csv").status_code == 400  # which layer's table?


def test_each_station_counts_the_posts_and_stations_inside_it(table):
    """A post in the strip is PA1's (the strip is PA1's area, though in PA2's street)."""
    assert table.loc["PA1", ["police_posts", "police_stations"]].tolist() == [2, 0]
    assert table.loc["PA2", ["police_posts", "police_stations"]].tolist() == [1, 1]


def test_the_table_downloads_as_an_excel_workbook(client):
    """f=xlsx: an Office Open XML workbook whose one sheet holds the table, Chinese
    names as text — read here from the package's XML, not by the library that wrote it."""
    import io
    import zipfile
    from xml.etree import ElementTree

    rows = client.get("/alignment?layer=police_area").get_json()[0]["rows"]
    answer = client.get("/alignment?layer=police_area&f=xlsx")
    assert answer.status_code == 200 and answer.mimetype.endswith("spreadsheetml.sheet")
    book = zipfile.ZipFile(io.BytesIO(answer.get_data()))
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    sheets = ElementTree.fromstring(book.read("xl/workbook.xml")).findall(".//m:sheet", ns)
    assert [s.get("name") for s in sheets] == ["police_area"]
    sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    assert len(sheet.findall(".//m:row", ns)) == len(rows) + 1
    # text cells: shared strings, or written in the cell (inlineStr), as this writer does
    shared = []
    if "xl/sharedStrings.xml" in book.namelist():
        table = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
        shared = ["".join(t.itertext()) for t in table.findall("m:si", ns)]
    strings = {"".join(c.itertext()) for c in sheet.iter(f"{{{ns['m']}}}is")} | set(shared)
    assert {"code", "households_mismatched"} <= set(strings)
    assert {r["name"] for r in rows} <= set(strings)


def test_a_post_standing_outside_its_own_stations_area_is_counted(table):
    """P2 is PA2's post but stands in PA1's strip: PA2 has one post outside its area."""
    assert table["posts_outside"].tolist() == [0, 1]
