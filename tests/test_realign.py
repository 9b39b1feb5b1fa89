"""The aligned-layout proposal (issue 14.3) on layouts whose answer is known by construction.

Units are 100 m squares in a row (or tests/tilings.py squares); a grid of the same squares
holds 100 households and 300 people each, so a jurisdiction's piece of a unit holds
households in proportion to its area.
"""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
import shapely

from geo.alignment import alignment_table
from geo.dataset import Dataset
from geo.errors import InputError
from geo.realign import aligned_layout, propose_alignment, propose_for_layer, unit_adjacency
from layers.storage import open_store
from tests.conftest import SAMPLE
from tests.tilings import box, strip_city


def _row(n: int):
    """n units U0…U(n-1) of 100 m in a row, and a grid of the same squares."""
    units = gpd.GeoDataFrame(
        {"code": [f"U{i}" for i in range(n)], "name": [f"单元{i}" for i in range(n)]},
        geometry=[box(100 * i, 0, 100 * (i + 1), 100) for i in range(n)],
        crs="EPSG:4539",
    )
    grid = units.assign(households=100, population=300)
    return units, grid


def _stations(*geoms):
    return gpd.GeoDataFrame(
        {
            "code": [f"S{i + 1}" for i in range(len(geoms))],
            "name": [f"{i + 1}所" for i in range(len(geoms))],
        },
        geometry=list(geoms),
        crs="EPSG:4539",
    )


@pytest.fixture(scope="module")
def sample_layers():
    return Dataset(open_store(SAMPLE).load())


@pytest.fixture(scope="module")
def strip():
    """tests/test_alignment's city: PA1 reaches 50 m into the east street (the west half
    of column 4: 430 households, 1,200 people, post P2); PA2 is the rest of it."""
    return strip_city()


def test_the_strip_goes_back_to_the_street_that_holds_it(strip):
    police, streets, grid, facilities = strip
    r = propose_alignment(police, streets, grid, facilities)
    assert r.status == "optimal"
    assert r.assignment == {"540102001": "PA1", "540102002": "PA2"}
    ((_, t),) = r.transfers.iterrows()
    assert (t["unit"], t["from"], t["to"], t["kind"]) == ("540102002", "PA1", "PA2", "real")
    assert t["area_m2"] == pytest.approx(50 * 800, abs=0.1)
    assert t["households"] == pytest.approx(430) and t["population"] == pytest.approx(1200)
    assert t["posts"] == ["P2"] and t["post_names"] == ["二站"]
    assert r.summary["households_moved"] == pytest.approx(430)
    assert r.summary["households_moved_fewest"] == pytest.approx(430)
    assert r.summary["posts_moved"] == 1
    assert r.reasons == []  # the fewest-moves answer met every constraint
    # the new outlines are the streets exactly
    areas = dict(zip(r.proposed["code"], r.proposed.area))
    assert areas == pytest.approx({"PA1": 400 * 800, "PA2": 400 * 800})
    s = r.stations.set_index("code")
    assert s.loc["PA1", "households_before"] == pytest.approx(3360 + 430)
    assert s.loc["PA1", "households_after"] == pytest.approx(3360)
    assert s.loc["PA2", "households_after"] == pytest.approx(3488)
    assert (s.loc["PA1", "posts_before"], s.loc["PA1", "posts_after"]) == (2, 1)
    # P2, PA2's own post in PA1's strip, is inside PA2's area once the strip goes back
    assert (s.loc["PA2", "posts_outside_before"], s.loc["PA2", "posts_outside_after"]) == (1, 0)
    # the same figures as the alignment table's households outside its street
    table = alignment_table(police, streets, grid).set_index("code")
    assert r.summary["households_moved"] == pytest.approx(table.loc["PA1", "households_mismatched"])


def test_contiguity_costs_households_and_says_why():
    """S1 holds U0 and 60 % of U2 (an enclave), S2 holds U1 and the rest of U2. Giving
    each unit to whoever holds most of it (U2 → S1, moving 40 households) splits S1; the
    only contiguous layout gives U2 to S2 and moves S1's 60."""
    units, grid = _row(3)
    stations = _stations(
        shapely.union(box(0, 0, 100, 100), box(240, 0, 300, 100)),
        shapely.union(box(100, 0, 200, 100), box(200, 0, 240, 100)),
    )
    r = propose_alignment(stations, units, grid)
    assert r.status == "optimal"
    assert r.assignment == {"U0": "S1", "U1": "S2", "U2": "S2"}
    assert r.summary["households_moved"] == pytest.approx(60)
    assert r.summary["households_moved_fewest"] == pytest.approx(40)
    (split,) = [m for m in r.reasons if m["reason"] == "contiguity"]
    assert split["jurisdictions"] == ["S1"] and split["units"] == ["U2"]
    assert "2 块" in split["zh"] and "2 separate parts" in split["en"]
    (cost,) = [m for m in r.reasons if m["reason"] == "cost"]
    assert cost["households"] == pytest.approx(20, abs=0.01)


def test_a_layout_contiguity_forbids_is_explained():
    """S1 holds U0 and U2 whole and nothing of U1 (S2's): whole units can be shared out
    only by giving S1 two parts that do not touch."""
    units, grid = _row(3)
    stations = _stations(shapely.union(box(0, 0, 100, 100), box(200, 0, 300, 100)),
                         box(100, 0, 200, 100))  # fmt: skip
    r = propose_alignment(stations, units, grid)
    assert r.status == "infeasible" and r.assignment == {}
    assert len(r.proposed) == 0 and len(r.transfers) == 0
    (why,) = r.reasons
    assert why["reason"] == "contiguity" and why["jurisdictions"] == ["S1"]
    assert "连成一片" in why["zh"]


def test_a_workload_band_moves_a_unit_to_the_neighbour():
    """S1 holds U0–U2 (300 households), S2 U3 (100): within 150–250 per station, U2 goes
    to S2 (S1 keeps the units it holds; 100 households move)."""
    units, grid = _row(4)
    stations = _stations(box(0, 0, 300, 100), box(300, 0, 400, 100))
    r = propose_alignment(stations, units, grid, band=(150, 250))
    assert r.status == "optimal"
    assert r.assignment == {"U0": "S1", "U1": "S1", "U2": "S2", "U3": "S2"}
    assert r.summary["households_moved"] == pytest.approx(100)
    s = r.stations.set_index("code")
    assert list(s["households_after"]) == [200, 200] and s["in_band"].all()
    assert list(s["households_before"]) == [300, 100]
    # without a band nothing moves
    assert propose_alignment(stations, units, grid).summary["households_moved"] == 0


def test_an_impossible_band_is_explained_before_solving():
    units, grid = _row(4)
    stations = _stations(box(0, 0, 300, 100), box(300, 0, 400, 100))
    r = propose_alignment(stations, units, grid, band=(10, 50))
    assert r.status == "infeasible"
    reasons = {m["reason"]: m for m in r.reasons}
    assert set(reasons) == {"band_total", "unit_over_band"}
    assert reasons["unit_over_band"]["units"] == ["U0", "U1", "U2", "U3"]
    assert r.summary["solver"] == "none"
    with pytest.raises(InputError, match="min ≤ max"):
        propose_alignment(stations, units, grid, band=(50, 10))


def test_more_stations_than_units_is_explained():
    units, grid = _row(1)
    stations = _stations(box(0, 0, 50, 100), box(50, 0, 100, 100))
    r = propose_alignment(stations, units, grid)
    assert r.status == "infeasible"
    assert r.reasons[0]["reason"] == "too_few_units"


def test_units_meeting_at_a_corner_are_not_neighbours():
    units = gpd.GeoDataFrame(
        {"code": ["A", "B", "C"]},
        geometry=[box(0, 0, 100, 100), box(100, 100, 200, 200), box(100, 0, 200, 100)],
        crs="EPSG:4539",
    )
    assert sorted(unit_adjacency(units).edges()) == [(0, 2), (1, 2)]


def test_an_assignment_that_is_not_a_layout_is_refused_naming_what_is_wrong():
    units, _ = _row(3)
    stations = _stations(box(0, 0, 150, 100), box(150, 0, 300, 100))
    with pytest.raises(InputError) as err:
        aligned_layout(stations, units, {"U0": "S1", "U1": "S9", "U7": "S1"})
    assert "U2" in str(err.value) and "S9" in str(err.value) and "U7" in str(err.value)
    assert "S2" in str(err.value)  # left with no unit
    assert "未分配" in err.value.zh


def test_the_sample_proposal_moves_the_known_strip(sample_layers):
    """On the sample, 公德林派出所 (PA02) reaches 321,325 m² into 吉崩岗街道 (the alignment
    panel's figure): the layout gives it back, and every new outline is whole streets."""
    r = propose_for_layer(sample_layers, "police_area")
    assert r.status == "optimal"
    real = r.transfers[(r.transfers["kind"] == "real") & r.transfers["from"].notna()]
    assert list(real["from"]) == ["540102PA02"] and list(real["unit"]) == ["540102003"]
    assert real["area_m2"].iloc[0] == pytest.approx(321325, abs=1)
    streets = sample_layers.metric("street").set_index("code").geometry
    for code, units in zip(r.stations["code"], r.stations["units_after"]):
        outline = r.proposed.set_index("code").geometry[code]
        assert outline.area == pytest.approx(streets[units].area.sum(), rel=1e-9)
    doc = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    x, y = doc["proposed"]["features"][0]["geometry"]["coordinates"][0][0][:2]
    assert 91 < x < 91.3 and 29.5 < y < 29.8  # lon/lat WGS 84
    with pytest.raises(InputError, match="not a jurisdiction"):
        propose_for_layer(sample_layers, "grid")


def test_the_command_line_writes_the_layout_and_the_transfer_list(tmp_path, capsys):
    """``python -m geo align``: the new police areas are the sample's streets themselves
    (stored coordinates, no reprojection), the transfer list names the strip; a band no
    layout meets exits 1 with the reason."""
    from geo.__main__ import main

    out = tmp_path / "aligned.gpkg"
    assert main(["align", str(SAMPLE), "--layer", "police_area", "-o", str(out)]) == 0
    assert "吉崩岗街道 540102003: 城关区公安分局公德林派出所 → " in capsys.readouterr().out
    layout = gpd.read_file(out, layer="police_area").set_index("code")
    streets = gpd.read_file(SAMPLE, layer="street").set_index("code")
    assert layout.geometry["540102PA02"].equals(streets.geometry["540102002"])
    table = tmp_path / "transfers.csv"
    assert main(["align", str(SAMPLE), "--layer", "police_area", "-o", str(table)]) == 0
    rows = table.read_text(encoding="utf-8-sig").splitlines()
    assert rows[0].startswith("unit,unit_name,from,from_name,to,to_name,area_m2")
    assert rows[1].startswith("540102003,吉崩岗街道,540102PA02,")
    capsys.readouterr()
    assert main(["align", str(SAMPLE), "--layer", "police_area", "--band", "15000-60000",
                 "--lang", "en"]) == 1  # fmt: skip
    assert "falls into separate parts" in capsys.readouterr().out


def _basic(name, password):
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def test_a_layout_is_adopted_as_one_change_and_reverted(sample_dataset):
    """Through the API, on each backend: the proposal's ETag adopts it (planners only,
    If-Match required, stale refused); PA02 and PA03 become their streets exactly, one
    change of two revisions, the map's police layer and alignment table show it at once;
    reverting the change puts both outlines back."""
    from web import create_app
    from web.auth import add_user

    app = create_app({"DATASET": sample_dataset})
    add_user(app.extensions["gridmap"].store, "ana", "planner", "long-secret")
    add_user(app.extensions["gridmap"].store, "vic", "viewer", "long-secret")
    c = app.test_client()
    got = c.get("/alignment/proposal?layer=police_area")
    assert got.status_code == 200, got.get_json()
    proposal, tag = got.get_json(), got.headers["ETag"]
    assert proposal["status"] == "optimal" and proposal["assignment"]["540102003"] == "540102PA03"
    table = c.get("/alignment/proposal?layer=police_area&f=csv")
    assert table.mimetype == "text/csv" and "540102PA02" in table.get_data(as_text=True)
    before = {f["properties"]["code"]: f for f in c.get("/collections/police_area/items").get_json()["features"]}  # fmt: skip
    body = {"layer": "police_area", "assignment": proposal["assignment"], "reason": "派出所=街道"}
    planner = _basic("ana", "long-secret")
    assert c.post("/alignment/proposal", json=body, headers={"If-Match": tag}).status_code == 401
    assert c.post("/alignment/proposal", json=body,
                  headers={"If-Match": tag, **_basic("vic", "long-secret")}).status_code == 403  # fmt: skip
    assert c.post("/alignment/proposal", json=body, headers=planner).status_code == 428
    bad = c.post("/alignment/proposal", json={**body, "assignment": {"540102003": "X"}},
                 headers={"If-Match": tag, **planner})  # fmt: skip
    assert bad.status_code == 400 and "540102001" in bad.get_json()["message"]["en"]
    done = c.post("/alignment/proposal", json=body, headers={"If-Match": tag, **planner})
    assert done.status_code == 200, done.get_json()
    change = done.get_json()["change_id"]
    # PA02 gives back its strip, PA04 takes the 三不管 hole: the two outlines that change
    assert sorted(r["code"] for r in done.get_json()["revisions"]) == ["540102PA02", "540102PA04"]
    assert c.post("/alignment/proposal", json=body, headers={"If-Match": tag, **planner}).status_code == 412  # fmt: skip
    streets = app.extensions["gridmap"].stored["street"].set_index("code").geometry
    police = app.extensions["gridmap"].stored["police_area"].set_index("code").geometry
    assert police["540102PA02"].equals(streets["540102002"])
    rows = {r["code"]: r for r in c.get("/alignment?layer=police_area").get_json()[0]["rows"]}
    assert rows["540102PA02"]["mismatched_area_m2"] == pytest.approx(0, abs=1)
    listed = c.get("/collections/police_area/changes").get_json()["changes"]
    assert listed[0]["change_id"] == change and len(listed[0]["cells"]) == 2
    undo = c.post(f"/collections/police_area/changes/{change}/revert", json={"reason": "撤销"},
                  headers=planner)  # fmt: skip
    assert undo.status_code == 200, undo.get_json()
    after = {f["properties"]["code"]: f for f in c.get("/collections/police_area/items").get_json()["features"]}  # fmt: skip
    for code in ("540102PA02", "540102PA04"):
        assert shapely.geometry.shape(after[code]["geometry"]).equals_exact(
            shapely.geometry.shape(before[code]["geometry"]), 1e-7
        )
    assert c.get("/collections/nothing/changes").status_code == 404
