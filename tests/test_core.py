"""The domain core: the registry of layer kinds, the joint-household unit added through it,
the Dataset, the error tree and its one JSON body, the string catalogue."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geo
from geo.dataset import Dataset
from geo.errors import GridmapError, NotFound, StaleEdit, UnknownLayer
from geo.findings import RULES
from geo.kinds import KINDS, hierarchy, jurisdictions, map_layers, partitions
from layers.export import export_layer
from layers.readers import read_layer_file
from layers.storage import open_store
from tests.conftest import BROWSER
from tests.tilings import cell, squares

# ----------------------------------------------------------------------------- registry


def test_the_hierarchy_and_jurisdictions_come_from_the_registry():
    assert hierarchy() == ("street", "community", "grid", "household_unit")
    assert jurisdictions() == {
        "police_area": "street",
        "police_beat": "community",
        # other departments' grids (多网合一) follow the base grid
        **{f"grid_{d}": "grid" for d in ("governance", "urban", "party", "police")},
    }
    assert map_layers()[0] == "road" and map_layers().index("grid") > map_layers().index(
        "police_beat"
    )
    for k in KINDS.values():  # every parent is a kind, every kind has both names
        assert k.parent is None or k.parent in KINDS
        assert k.zh and k.en and k.en_plural
    hierarchy_levels, police = set(hierarchy()), set(jurisdictions())
    assert set(partitions()) == hierarchy_levels | police  # every one tiles its extent


def _units(grids: gpd.GeoDataFrame, code: str) -> gpd.GeoDataFrame:
    """Four 50 m joint-household units tiling the 100 m square cell ``code``."""
    x0, y0, _, _ = grids.loc[grids["code"] == code].geometry.iloc[0].bounds
    boxes = [
        shapely.box(x0 + dx, y0 + dy, x0 + dx + 50, y0 + dy + 50)
        for dx in (0, 50)
        for dy in (0, 50)
    ]
    return gpd.GeoDataFrame(
        {
            "code": [f"{code}{k:03d}" for k in range(1, 5)],
            "name": [f"第{k}联户" for k in range(1, 5)],
            "parent_code": code,
            "households": 10,
        },
        geometry=boxes,
        crs=grids.crs,
    )


def test_household_units_are_checked_as_the_fourth_level():
    streets, communities, grids = squares()
    a, b = grids["code"].iloc[cell(grids, 0, 0)], grids["code"].iloc[cell(grids, 5, 5)]
    units = pd.concat([_units(grids, a), _units(grids, b)], ignore_index=True)
    layers = {"street": streets, "community": communities, "grid": grids}
    clean = geo.check({**layers, "household_unit": units})
    # cells without units are no gap: units are kept where people live
    assert clean.clean, clean.findings[["rule", "layer", "features"]]

    broken = units.copy()
    # a unit of cell a reaches 20 m into the next cell east: 20 × 50 = 1,000 m² not nested
    broken.loc[2, "geometry"] = shapely.box(*np.add(broken.geometry.iloc[2].bounds, (0, 0, 20, 0)))
    broken.loc[5, "code"] = broken.loc[4, "code"]  # a duplicated code in cell b
    broken = broken.drop(index=7)  # a 50 × 50 m hole in cell b
    report = geo.check({**layers, "household_unit": broken})
    f = report.findings[report.findings["layer"] == "household_unit"]
    # (it overlaps no other unit: the cell it reaches into has none)
    assert report.summary() == {"duplicate_code": 1, "gap": 1, "not_nested": 1}
    nested = f[f["rule"] == "not_nested"].iloc[0]
    assert nested["parent_layer"] == "grid" and nested["area_m2"] == pytest.approx(1000, abs=1)
    gap = f[f["rule"] == "gap"].iloc[0]
    assert gap["parent"] == b and gap["area_m2"] == pytest.approx(2500, abs=1)
    assert f[f["rule"] == "duplicate_code"].iloc[0]["features"] == [broken.loc[4, "code"]]


def test_household_units_in_the_sample_lookup_map_import_and_export(client, tmp_path):
    sample = client.application.extensions["gridmap"]
    units = sample.layers["household_unit"]
    grid = sample.layers["grid"].set_index("code")
    # the sample's units share out their cells' households exactly
    sums = units.groupby("parent_code")["households"].sum()
    assert (sums == grid.loc[sums.index, "households"]).all()
    # lookup names the unit holding a point, and it lies in the cell the lookup names
    p = units.geometry.iloc[0].representative_point()
    areas = client.get(f"/lookup?lon={p.x}&lat={p.y}").get_json()["areas"]
    assert areas["household_unit"]["code"] == units["code"].iloc[0]
    assert areas["grid"]["code"] == units["parent_code"].iloc[0]
    # the map page draws it as a layer, from the registry
    html = client.get("/", headers=BROWSER).get_data(as_text=True)
    assert '"id": "household_unit"' in html and "联户单位" in html
    # import: a file with the columns planners' spreadsheets give them
    src = units.head(5).rename(
        columns={
            "code": "联户编码",
            "name": "联户名称",
            "parent_code": "网格编码",
            "households": "户数",
        }
    )
    src["联户长"] = "次仁"
    path = tmp_path / "units.geojson"
    src.to_file(path, driver="GeoJSON")
    gdf, report = read_layer_file(path, "household_unit")
    assert list(gdf["code"]) == list(units["code"].head(5))
    assert list(gdf["parent_code"]) == list(units["parent_code"].head(5))
    assert (gdf["leader"] == "次仁").all() and report.field_map["联户长"] == "leader"
    # export and read back
    out = export_layer(units, tmp_path / "units.gpkg", layer="household_unit")
    back = open_store(out).read_layer("household_unit")
    assert len(back) == len(units) and back["households"].sum() == units["households"].sum()


# ----------------------------------------------------------------------------- Dataset


def test_a_misspelt_layer_is_refused_never_read_as_clean():
    _, _, grids = squares(4)
    with pytest.raises(UnknownLayer, match="did you mean 'grid'"):
        geo.check({"grids": grids})


def test_dataset_measures_in_one_metric_crs_and_keeps_the_copies():
    _, communities, grids = squares(4)
    ds = Dataset({"grid": grids.to_crs("EPSG:4490"), "community": communities.to_crs("EPSG:4490")})
    assert ds.metric_crs.to_epsg() == 4539
    assert ds.metric("grid") is ds.metric("grid")
    assert ds.metric("grid").area.sum() == pytest.approx(16 * 100 * 100, rel=1e-6)
    assert ds.lonlat("grid").crs.to_epsg() == 4326
    part = ds.subset({"grid": grids.iloc[:2].to_crs("EPSG:4490")})
    assert part.metric_crs == ds.metric_crs
    assert ds.population() is None


# ----------------------------------------------------------------------------- errors


def test_every_error_has_a_status_a_code_and_both_languages():
    err = StaleEdit(7, {"code": "X", "author": "ana", "at": "t", "reason": "r"})
    body = err.to_dict()
    assert body["code"] == 412 and body["error"] == "stale_edit"
    assert "ana" in body["message"]["en"] and "ana" in body["message"]["zh"]
    assert body["message"]["zh"] != body["message"]["en"]
    json.dumps(body, allow_nan=False)
    assert issubclass(NotFound, GridmapError) and NotFound.status == 404


@pytest.mark.parametrize(
    "url, status, error",
    [
        ("/collections/nope/items", 404, "not_found"),
        ("/lookup?lon=91.1", 400, "bad_input"),
        ("/findings?rule=nope", 400, "bad_input"),
    ],
)
def test_one_json_body_for_every_error(client, url, status, error):
    body = client.get(url).get_json()
    assert body["code"] == status and body["error"] == error
    assert body["message"]["en"] == body["description"] and body["message"]["zh"]


def test_editing_needs_a_planner_with_one_answer(client):
    r = client.post("/collections/grid/changes/preview", json={"op": "merge"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    assert r.get_json()["error"] == "unauthorised"


# ----------------------------------------------------------------------------- strings


def _keys(table, prefix=""):
    out = set()
    for k, v in table.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= _keys(v, prefix + k + ".")
    return out


def test_every_string_exists_in_every_language():
    from web.i18n import LANGS, STRINGS

    keys = {lang: _keys(STRINGS[lang]) for lang in LANGS}
    every = set.union(*keys.values())
    for lang in LANGS:
        assert keys[lang] == every, f"missing in {lang}: {sorted(every - keys[lang])}"
    for rule in RULES:  # rules and kinds reach the page from their tables
        assert STRINGS["zh"]["rules"][rule] == RULES[rule].zh
    assert STRINGS["zh"]["household_unit"] == "联户单位"


# ----------------------------------------------------------------------------- the map


def test_the_map_draws_what_the_registry_says(browser, monkeypatch):
    """The page takes layer styles, their order, facility symbols and the lookup's layers
    from the registry: change the registry and the drawn map changes, nothing else."""
    import dataclasses

    from geo import kinds
    from tests.conftest import SAMPLE, serve_in_thread
    from web import create_app

    grid = dataclasses.replace(kinds.KINDS["grid"], style={"color": "#123456", "weight": 4})
    monkeypatch.setitem(kinds.KINDS, "grid", grid)
    post = dataclasses.replace(kinds.FACILITY_KINDS["police_post"], color="#abcdef")
    monkeypatch.setitem(kinds.FACILITY_KINDS, "police_post", post)
    url, server = serve_in_thread(create_app({"DATASET": str(SAMPLE), "TESTING": True}))
    page = browser.new_page()
    try:
        page.goto(url + "/")
        page.wait_for_function(
            "window.gridmap && window.gridmap.current && "
            "window.gridmap.current.layers.grid.getLayers().length > 0",
            timeout=20_000,
        )
        style = page.evaluate(
            "(() => { const o = window.gridmap.current.layers.grid.getLayers()[0].options;"
            " return [o.color, o.weight]; })()"
        )
        assert style == ["#123456", 4]
        legend = page.inner_html("#gm-panel")
        assert "#abcdef" in legend  # the police-post symbol in the facilities legend
        page.fill("#gm-lon", "91.1172")
        page.fill("#gm-lat", "29.6558")
        page.click("#gm-coord button")
        page.wait_for_function("document.querySelector('#gm-lookup table') !== null")
        rows = page.inner_text("#gm-lookup")
        assert "联户单位" in rows and "派出所辖区" in rows  # every partition layer answers
    finally:
        page.close()
        server.close()
