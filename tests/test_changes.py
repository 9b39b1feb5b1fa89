"""Multi-cell changes through the service: preview, save, stale refusal, roles, browser
sessions with CSRF tokens, revert, diff, the change list, exports and the print page."""

import base64
import io
import re
import threading
import zipfile

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import mapping, shape

from geo.errors import StaleEdit
from layers.editing import apply_change, revert_change
from tests.conftest import BROWSER, SAMPLE
from tests.tilings import cell, squares
from web import create_app
from web.auth import add_user

CELL = "540102001001002"  # a sample cell of 136 households
COMMUNITY = "540102001001"


def _basic(name, password="long-secret"):
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


@pytest.fixture
def app(tmp_path):
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    app = create_app({"DATASET": str(path), "SECRET_KEY": "test", "TESTING": True})
    store = app.extensions["gridmap"].store
    add_user(store, "ana", "planner", "long-secret")
    add_user(store, "vic", "viewer", "long-secret")
    return app


def _split_line(client, code):
    """A north-south line across the cell through its centre (lon/lat)."""
    g = shape(client.get(f"/collections/grid/items/{code}").get_json()["geometry"])
    x = g.centroid.x
    return {
        "type": "LineString",
        "coordinates": [[x, g.bounds[1] - 0.001], [x, g.bounds[3] + 0.001]],
    }


def test_split_preview_then_save_then_stale(app):
    c = app.test_client()
    op = {"op": "split", "code": CELL, "line": _split_line(c, CELL)}
    assert c.post("/collections/grid/changes/preview", json=op).status_code == 401
    assert (
        c.post("/collections/grid/changes/preview", json=op, headers=_basic("vic")).status_code
        == 403
    )
    p = c.post("/collections/grid/changes/preview", json=op, headers=_basic("ana")).get_json()
    assert [x["status"] for x in p["cells"]] == ["changed", "added"]
    assert sum(x["households"] for x in p["cells"]) == 136  # kept by the split
    assert p["method"] == "area-weighted from the previous cells" and p["new_findings"] == []
    assert p["base"] == {CELL: 0}
    assert c.get("/collections/grid/items?limit=0").get_json()["numberMatched"] == 651
    assert (
        c.post(
            "/collections/grid/changes", json={**op, "base": p["base"]}, headers=_basic("ana")
        ).status_code
        == 400
    )  # no reason
    saved = c.post(
        "/collections/grid/changes",
        json={**op, "base": p["base"], "reason": "big"},
        headers=_basic("ana"),
    )
    assert saved.status_code == 200, saved.get_json()
    body = saved.get_json()
    new_code = body["cells"][1]["code"]
    assert c.get(f"/collections/grid/items/{new_code}").status_code == 200  # served at once
    assert app.extensions["gridmap"].store.read_layer("grid").shape[0] == 652
    # a second planner still holding the old revision is refused, and told by whom
    stale = c.post(
        "/collections/grid/changes",
        json={**op, "base": {CELL: 0}, "reason": "x"},
        headers=_basic("ana"),
    )
    assert stale.status_code == 412
    assert "ana" in stale.get_json()["description"] and stale.get_json()["latest"]["id"] >= 1
    # the change list, as JSON and as CSV for Excel
    changes = c.get("/collections/grid/changes").get_json()["changes"]
    assert changes[0]["change_id"] == body["change_id"] and len(changes[0]["cells"]) == 2
    text = c.get("/collections/grid/changes?f=csv").get_data(as_text=True)
    assert text.startswith("\ufeffchange_id") and new_code in text and "split: big" in text


def test_a_change_that_leaves_a_gap_is_422_unless_accepted(app):
    c = app.test_client()
    grid = app.extensions["gridmap"].layers["grid"]
    cells = grid[grid["parent_code"] == COMMUNITY]
    # adopt "new" cells that drop one cell: its area becomes a gap in the community
    feats = [
        {"type": "Feature", "properties": {"code": r.code}, "geometry": mapping(r.geometry)}
        for r in cells.iloc[1:].itertuples()
    ]
    op = {"op": "replace", "community": COMMUNITY, "features": feats}
    p = c.post("/collections/grid/changes/preview", json=op, headers=_basic("ana")).get_json()
    assert "gap" in {f["rule"] for f in p["new_findings"]}
    assert [x["status"] for x in p["cells"]].count("removed") == 1
    refused = c.post(
        "/collections/grid/changes",
        json={**op, "base": p["base"], "reason": "r"},
        headers=_basic("ana"),
    )
    assert refused.status_code == 422 and refused.get_json()["findings"]
    assert len(app.extensions["gridmap"].store.read_layer("grid")) == 651
    ok = c.post(
        "/collections/grid/changes",
        json={**op, "base": p["base"], "reason": "r", "accepted": "survey pending"},
        headers=_basic("ana"),
    )
    assert ok.status_code == 200 and ok.get_json()["accepted_findings"]
    assert len(app.extensions["gridmap"].store.read_layer("grid")) == 650


def test_adopting_a_proposal_then_reverting_it(app):
    c = app.test_client()
    prop = c.get(f"/proposal?community={COMMUNITY}&min=300&max=500").get_json()
    assert (
        prop["feasible"]
        and prop["current"]["spread_households"] > prop["metrics"]["spread_households"]
    )
    feats = [
        {
            "type": "Feature",
            "geometry": f["geometry"],
            "properties": {"code": f["properties"]["code"]},
        }
        for f in prop["cells"]["features"]
    ]
    op = {"op": "replace", "community": COMMUNITY, "features": feats}
    p = c.post("/collections/grid/changes/preview", json=op, headers=_basic("ana")).get_json()
    assert p["new_findings"] == [], p["new_findings"]
    saved = c.post(
        "/collections/grid/changes",
        json={**op, "base": p["base"], "reason": "band"},
        headers=_basic("ana"),
    ).get_json()
    store = app.extensions["gridmap"].store
    grid = store.read_layer("grid")
    mine = grid[grid["parent_code"] == COMMUNITY]
    assert len(mine) == prop["metrics"]["cells"]
    assert mine["households"].between(299, 501).all()  # whole households of a 300-500 band
    assert mine["households"].sum() == 6101  # the community's households, all kept
    # the change on the map: every old cell before, every new cell after
    fc = c.get(f"/collections/grid/changes/{saved['change_id']}").get_json()
    sides = [f["properties"]["side"] for f in fc["features"]]
    assert sides.count("after") == len(mine) and sides.count("before") == prop["current"]["cells"]
    # the diff of two revisions shows the same
    last = max(r["revision"] for r in saved["revisions"])
    diff = c.get(f"/collections/grid/diff?from=0&to={last}").get_json()
    assert len(diff["features"]) == len(fc["features"])
    back = c.post(
        f"/collections/grid/changes/{saved['change_id']}/revert",
        json={"reason": "council said no"},
        headers=_basic("ana"),
    )
    assert back.status_code == 200, back.get_json()
    restored = store.read_layer("grid")
    assert len(restored) == 651
    original = gpd.read_file(SAMPLE, layer="grid")
    key = ["code", "households"]  # the sample has a duplicated code on purpose
    a = restored.sort_values(key).reset_index(drop=True)
    b = original.sort_values(key).reset_index(drop=True)
    assert (a["code"] == b["code"]).all() and (a["households"] == b["households"]).all()
    assert shapely.equals_exact(a.geometry.values, b.geometry.values, 1e-9).all()
    # the diff speaks in the change list's numbers, each change taken whole: adopting, then
    # reverting, then both (which leave the cells as they were)
    undo = back.get_json()["change_id"]
    assert undo > last
    sides = lambda a, b: sorted(
        f["properties"]["side"]
        for f in c.get(  # noqa: E731
            f"/collections/grid/diff?from={a}&to={b}"
        ).get_json()["features"]
    )
    assert sides(0, saved["change_id"]) == sorted(f["properties"]["side"] for f in fc["features"])
    revert_fc = c.get(f"/collections/grid/changes/{undo}").get_json()
    assert sides(saved["change_id"], undo) == sorted(
        f["properties"]["side"] for f in revert_fc["features"]
    )
    both = c.get(f"/collections/grid/diff?from=0&to={undo}").get_json()["features"]
    kept = [f for f in both if f["properties"]["side"] == "after"]
    assert {f["properties"]["code"] for f in kept} == set(
        original.loc[original["parent_code"] == COMMUNITY, "code"]
    )


def test_adopting_a_whole_street_in_one_change(app):
    street = "540102005"
    c = app.test_client()
    store = app.extensions["gridmap"].store
    before = store.read_layer("grid")
    before = before[before["parent_code"].str.startswith(street)]
    prop = c.get(f"/proposal?street={street}").get_json()
    feats = [
        {
            "type": "Feature",
            "geometry": f["geometry"],
            "properties": {k: f["properties"][k] for k in ("code", "parent_code")},
        }
        for f in prop["cells"]["features"]
    ]
    communities = [x["community"] for x in prop["communities"]]
    op = {"op": "replace", "communities": communities, "features": feats}
    p = c.post("/collections/grid/changes/preview", json=op, headers=_basic("ana")).get_json()
    assert p["new_findings"] == [], p["new_findings"]
    saved = c.post(
        "/collections/grid/changes",
        json={**op, "base": p["base"], "reason": "band"},
        headers=_basic("ana"),
    )
    assert saved.status_code == 200, saved.get_json()
    grid = store.read_layer("grid")
    mine = grid[grid["parent_code"].isin(communities)]
    assert len(mine) == len(feats) and mine["households"].between(299, 501).all()
    # unnamed new cells are named by their serial: 冲赛康社区 + 第3网格 for serial 003
    comm = store.read_layer("community").set_index("code")["name"]
    assert (
        mine["name"]
        == [f"{comm[p]}第{int(c[len(p) :])}网格" for c, p in zip(mine["code"], mine["parent_code"])]
    ).all()
    assert "冲赛康社区第3网格" in set(mine["name"])
    # each community keeps its own households: cells moved within it, never across
    assert (
        mine.groupby("parent_code")["households"].sum()
        == before.groupby("parent_code")["households"].sum()
    ).all()
    # one change in the list, holding every cell of the street that was added, changed or
    # removed, with its households before and after
    newest = c.get("/collections/grid/changes").get_json()["changes"][0]
    assert newest["change_id"] == saved.get_json()["change_id"]
    codes = {x["code"] for x in newest["cells"]}
    assert codes == set(mine["code"]) | set(before["code"])
    assert sum(x["households_after"] or 0 for x in newest["cells"]) == before["households"].sum()
    # features must say their community when there are several
    bad = {
        **op,
        "features": [{**f, "properties": {"code": f["properties"]["code"]}} for f in feats],
    }
    r = c.post("/collections/grid/changes/preview", json=bad, headers=_basic("ana"))
    assert r.status_code == 400 and "parent_code" in r.get_json()["description"]


def _sample_with(tmp_path, layer, gdf):
    """A copy of the sample holding ``gdf`` (metric CRS) as ``layer``, served."""
    from layers.storage import open_store

    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    open_store(path).write_layer(layer, gdf.to_crs("EPSG:4490"))
    app = create_app({"DATASET": str(path), "SECRET_KEY": "test", "TESTING": True})
    add_user(app.extensions["gridmap"].store, "ana", "planner", "long-secret")
    return app


def _halves(code):
    """The sample cell ``code`` in EPSG:4539, the x of its centroid, and lattice points 5 m
    or more inside its western and eastern halves."""
    grid = gpd.read_file(SAMPLE, layer="grid").to_crs(4539)
    geom = grid.geometry[grid["code"] == code].iloc[0]
    x0, y0, x1, y1 = geom.bounds
    cx = geom.centroid.x
    lattice = [
        shapely.Point(x, y)
        for x in range(int(x0), int(x1), 12)
        for y in range(int(y0), int(y1), 12)
    ]
    inner = geom.buffer(-5)
    west = [p for p in lattice if inner.contains(p) and p.x < cx - 15]
    east = [p for p in lattice if inner.contains(p) and p.x > cx + 15]
    return geom, cx, west, east


@pytest.mark.parametrize("kind", ["household", "building"])
def test_households_of_new_cells_come_from_the_finest_data(tmp_path, kind):
    geom, cx, west, east = _halves(CELL)
    if kind == "household":  # standard addresses: 6 west of the cut (5 households), 2 east (20)
        data = gpd.GeoDataFrame(
            {"households": [5] * 6 + [20] * 2, "population": [15] * 6 + [50] * 2},
            geometry=west[:6] + east[:2],
            crs="EPSG:4539",
        )
        expect_west, expect_east, method = (30, 90), (40, 100), "household points"
    else:  # buildings: one of 10 households astride the cut (shared by area), one of 8 west
        cy = geom.centroid.y
        astride = shapely.box(cx - 10, cy - 10, cx + 10, cy + 10)
        assert geom.contains(astride)
        data = gpd.GeoDataFrame(
            {"households": [10, 8], "population": [30, 20]},
            geometry=[astride, west[0].buffer(4, quad_segs=2)],
            crs="EPSG:4539",
        )
        expect_west, expect_east, method = (13, 35), (5, 15), "buildings"
    app = _sample_with(tmp_path, kind, data)
    c = app.test_client()
    op = {"op": "split", "code": CELL, "line": _split_line(c, CELL)}
    p = c.post("/collections/grid/changes/preview", json=op, headers=_basic("ana")).get_json()
    assert p["method"] == method
    side = {}
    for f in p["features"]["features"]:
        x = gpd.GeoSeries([shape(f["geometry"])], crs=4326).to_crs(4539).centroid.x.iloc[0]
        side["west" if x < cx else "east"] = f["properties"]["code"]
    cells = {x["code"]: x for x in p["cells"]}
    assert (cells[side["west"]]["households"], cells[side["east"]]["households"]) == (
        expect_west[0],
        expect_east[0],
    )
    assert (cells[side["west"]]["population"], cells[side["east"]]["population"]) == (
        expect_west[1],
        expect_east[1],
    )
    # the record said 136 households; the finer data wins and the preview says so
    assert cells[CELL]["households_before"] == 136
    # proposals count the same data: every household of the community is in this one cell
    prop = c.get(f"/proposal?community={COMMUNITY}&min=10&max=100").get_json()
    assert prop["metrics"]["figures_from"] == method
    assert prop["metrics"]["households"] == pytest.approx(expect_west[0] + expect_east[0], abs=0.1)


def test_browser_session_needs_its_csrf_token(app):
    c = app.test_client()
    page = c.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    # the form itself is protected: no token, no sign-in
    assert c.post("/login", data={"name": "ana", "password": "long-secret"}).status_code == 403
    bad = c.post("/login", data={"name": "ana", "password": "nope", "csrf": token})
    assert bad.status_code == 401
    ok = c.post(
        "/login",
        data={"name": "ana", "password": "long-secret", "csrf": token, "next": "//evil.example/"},
    )
    assert ok.status_code == 302 and ok.headers["Location"] == "/"  # no open redirect
    html = c.get("/", headers=BROWSER).get_data(as_text=True)
    assert "ana" in html and "gm-op-split" in html
    csrf = re.search(r'"csrf": "([^"]+)"', html).group(1)
    op = {"op": "split", "code": CELL, "line": _split_line(c, CELL)}
    # a cross-site page can make the browser send the cookie, but not the token
    forged = c.post("/collections/grid/changes/preview", json=op)
    assert forged.status_code == 403 and "CSRF" in forged.get_json()["description"]
    assert (
        c.post(
            "/collections/grid/changes/preview", json=op, headers={"X-CSRF-Token": "guess"}
        ).status_code
        == 403
    )
    assert (
        c.post(
            "/collections/grid/changes/preview", json=op, headers={"X-CSRF-Token": csrf}
        ).status_code
        == 200
    )
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    c.post("/logout", data={"csrf": csrf})
    assert (
        c.post(
            "/collections/grid/changes/preview", json=op, headers={"X-CSRF-Token": csrf}
        ).status_code
        == 401
    )
    # a viewer's page has no editing tools
    v = app.test_client()
    t = re.search(r'name="csrf" value="([^"]+)"', v.get("/login").get_data(as_text=True)).group(1)
    v.post("/login", data={"name": "vic", "password": "long-secret", "csrf": t})
    assert "gm-op-split" not in v.get("/", headers=BROWSER).get_data(as_text=True)


def _fill(store):
    streets, communities, grids = squares()
    for name, gdf in {
        "street": streets,
        "community": communities,
        "grid": grids.drop(columns=["col", "row"]),
    }.items():
        store.write_layer(name, gdf.to_crs(4490))
    return grids


def _lonlat(geom, crs="EPSG:4539"):
    return mapping(gpd.GeoSeries([geom], crs=crs).to_crs(4326).iloc[0])


def test_concurrent_changes_lose_nothing(store):
    """Six planners each move the border between two cells 3 m east, twice, at the same
    time, retrying when told their copy is stale. Every move builds on the last, so after
    12 saved changes the western cell is exactly 36 m × 100 m larger: a lost update would
    show as a smaller cell."""
    grids = _fill(store)
    a, b = grids["code"].iloc[cell(grids, 0, 0)], grids["code"].iloc[cell(grids, 1, 0)]
    _, y0, _, y1 = grids.geometry.iloc[cell(grids, 1, 0)].bounds
    saved, errors, refused = [], [], []

    def planner(n):
        try:
            for k in range(2):
                while True:
                    latest = {r["code"]: r["id"] for r in store.revisions("grid")}
                    grid = store.read_layer("grid").to_crs(4539).set_index("code")
                    base = {a: latest.get(a, 0), b: latest.get(b, 0)}
                    border = grid.geometry[a].bounds[2]
                    strip = shapely.box(border - 5, y0, border + 3, y1)
                    try:
                        r = apply_change(
                            store,
                            {"op": "move", "to": a, "geometry": _lonlat(strip)},
                            base=base,
                            author=f"p{n}",
                            reason=f"{n}-{k}",
                        )
                        saved.append(r["change_id"])
                        break
                    except StaleEdit:
                        refused.append(n)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(repr(err))

    threads = [threading.Thread(target=planner, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(saved) == 12 and refused  # they did collide, and were refused
    history = [r for r in store.revisions("grid") if r["code"] == a]
    assert sorted(r["change_id"] for r in history) == sorted(saved)
    for prev, nxt in zip(history, history[1:]):  # each change saw the one before it
        assert shape(nxt["before"]["geometry"]).equals_exact(
            shape(prev["after"]["geometry"]), 1e-12
        )
    final = store.read_layer("grid").to_crs(4539).set_index("code")
    assert final.geometry[a].area == pytest.approx(10000 + 12 * 300, abs=0.5)
    assert final.geometry[a].area + final.geometry[b].area == pytest.approx(20000, abs=0.5)


def test_revert_of_an_overtaken_change_is_refused(store):
    grids = _fill(store)
    a, b = grids["code"].iloc[cell(grids, 0, 0)], grids["code"].iloc[cell(grids, 1, 0)]
    first = apply_change(
        store, {"op": "merge", "codes": [a, b]}, base={a: 0, b: 0}, author="ana", reason="one cell"
    )
    rev = {r["code"]: r["id"] for r in store.revisions("grid")}
    x0, y0, _, y1 = grids.geometry.iloc[cell(grids, 0, 0)].bounds
    apply_change(
        store,
        {
            "op": "split",
            "code": a,
            "line": _lonlat(shapely.LineString([(x0 + 50, y0 - 5), (x0 + 50, y1 + 5)])),
        },
        base={a: rev[a]},
        author="bo",
        reason="split again",
    )
    with pytest.raises(StaleEdit):
        revert_change(store, first["change_id"], author="ana", reason="undo")


def test_print_page_and_exports(app):
    c = app.test_client()
    html = c.get(f"/print/community/{COMMUNITY}").get_data(as_text=True)
    grid = app.extensions["gridmap"].layers["grid"]
    mine = grid[grid["parent_code"] == COMMUNITY]
    assert all(code in html for code in mine["code"])
    assert html.count('class="gm-p-cell"') == len(mine)
    table = html[html.index("<tbody") :]  # the table lists the cells in serial order
    assert [table.index(code) for code in sorted(mine["code"])] == sorted(
        table.index(code) for code in mine["code"]
    )
    assert f"{int(mine['households'].sum()):,}" in html and "@page" not in html
    assert c.get("/print/community/nope").status_code == 404
    index = c.get("/print/community/").get_data(as_text=True)  # every community, linked
    assert index.count("/print/community/5401") == 50
    z = zipfile.ZipFile(io.BytesIO(c.get("/export/grid?format=shp&encoding=gbk").data))
    assert z.read("grid.cpg").decode().strip().upper() == "GBK"
    names = z.read("grid.dbf")
    assert "金珠社区第2网格".encode("gbk") in names  # Chinese names in GBK for old tools
    gj = c.get("/export/grid?format=geojson")
    assert gj.status_code == 200 and len(gj.get_json()["features"]) == 651
    assert c.get("/export/grid?format=dwg").status_code == 400
    assert c.get("/export/grid?format=gpkg&encoding=gbk").status_code == 400
