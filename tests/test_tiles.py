"""Vector tiles (OGC API – Tiles, Mapbox Vector Tiles): what they hold at every zoom, that
generalised neighbours keep their shared edges, and that a save rebuilds only the tiles
it touched. Tiles are decoded with ``mapbox-vector-tile`` and read by GDAL's OGC API
driver (pyogrio's GDAL), not by our own code."""

from __future__ import annotations

import json
import subprocess
import sys

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pytest
import shapely

from geo.tiles import BANDS, BUFFER, EXTENT, TMS, TileLayer, pixel_m, tile_bounds, tile_window
from tests.conftest import SAMPLE, serve_in_thread
from tests.test_editing import _basic
from tests.tilings import add_noise, hierarchy
from web import create_app
from web.auth import add_user

URL = "/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}"


def _decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def _tiles_of(bounds, z):
    return list(TMS.tiles(*bounds, zooms=[z]))


def _from_mercator(polys) -> gpd.GeoDataFrame:
    """Polygons given in Web Mercator metres, as lon/lat features with codes."""
    g = gpd.GeoDataFrame(
        {"code": [f"c{i}" for i in range(len(polys))], "households": np.arange(len(polys))},
        geometry=list(polys),
        crs=3857,
    )
    return g.to_crs(4326)


def _in_mercator(geom, z, x, y):
    """A decoded geometry (tile units, y down) back in Web Mercator metres."""
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    scale = (maxx - minx) / EXTENT
    return shapely.transform(
        geom, lambda xy: np.column_stack([minx + xy[:, 0] * scale, maxy - xy[:, 1] * scale])
    )


# ----------------------------------------------------------------------- known answers
def test_a_tile_holds_its_features_clipped_to_the_tile_and_its_buffer():
    z, x, y = 14, 12335, 6775
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    width = maxx - minx
    whole = shapely.box(minx - width, miny - width, maxx + width, maxy + width)  # covers it
    left = shapely.box(maxx + width, miny, maxx + 2 * width, maxy)  # the next tile east
    half = shapely.box(minx, miny, minx + width / 2, maxy)  # its western half
    layer = _from_mercator([whole, left, half])
    tl = TileLayer.from_lonlat("grid", layer, layer["code"], layer["code"])
    got = _decode(tl.tile(z, x, y)[0])["grid"]["features"]
    by_code = {f["properties"]["code"]: f for f in got}
    assert set(by_code) == {"c0", "c2"}  # c1 lies a whole tile away, beyond the buffer
    outer = shapely.geometry.shape(by_code["c0"]["geometry"])
    assert outer.bounds == (-BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)
    assert outer.area == (EXTENT + 2 * BUFFER) ** 2
    inner = shapely.geometry.shape(by_code["c2"]["geometry"])
    assert inner.bounds == (0, 0, EXTENT / 2, EXTENT)
    assert by_code["c2"]["properties"]["households"] == 2


def test_every_cell_with_its_attributes_at_every_zoom(client):
    """The sample's 651 grid cells (two share a code) are all in the tiles at zooms 8 to
    16, each with the properties the features API gives it."""
    cat = client.application.extensions["gridmap"]
    grid = cat.collections["grid"]
    items = client.get("/collections/grid/items?limit=1000").get_json()["features"]
    expected = {f["id"]: f["properties"] for f in items}
    meta = client.get("/collections/grid/tiles/WebMercatorQuad").get_json()
    assert meta["dataType"] == "vector" and meta["layers"][0]["id"] == "grid"
    template = next(link["href"] for link in meta["links"] if link["rel"] == "item")
    assert template.endswith("/grid/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}")
    limits = {lim["tileMatrix"]: lim for lim in meta["tileMatrixSetLimits"]}
    for z in (8, 11, 13, 16):
        seen = {}
        lim = limits[str(z)]
        for t in _tiles_of(grid.bounds, z):
            assert lim["minTileCol"] <= t.x <= lim["maxTileCol"]
            assert lim["minTileRow"] <= t.y <= lim["maxTileRow"]
            r = client.get(URL.format(layer="grid", z=z, x=t.x, y=t.y))
            assert r.status_code == 200 and r.mimetype == "application/vnd.mapbox-vector-tile"
            for f in _decode(r.data).get("grid", {}).get("features", []):
                seen[f["properties"]["id"]] = f["properties"]
        assert set(seen) == set(expected), z
        for fid, props in seen.items():
            # what the map paints, hovers and links by; the rest a click asks the feature
            assert {"code", "name", "households", "density_per_km2"} <= set(props)
            assert props.pop("id") == fid
            assert props == {k: expected[fid][k] for k in props}, (z, fid)


def test_findings_are_tiled_with_their_rule(client):
    findings = client.get("/collections/findings_area/items?limit=1000").get_json()["features"]
    assert findings
    rules = {f["properties"]["rule"] for f in findings}
    bounds = shapely.total_bounds(
        [shapely.geometry.shape(f["geometry"]) for f in findings if f["geometry"]]
    )
    seen = set()
    for t in _tiles_of(bounds, 12):
        tile = _decode(client.get(URL.format(layer="findings_area", z=12, x=t.x, y=t.y)).data)
        seen |= {f["properties"]["rule"] for f in tile.get("findings_area", {}).get("features", [])}
    assert seen == rules


def test_bad_tiles_are_refused_and_unchanged_tiles_revalidate(client):
    assert client.get(URL.format(layer="grid", z=23, x=0, y=0)).status_code == 404
    assert client.get(URL.format(layer="grid", z=3, x=8, y=0)).status_code == 404
    assert client.get("/collections/grid/tiles/WorldCRS84Quad").status_code == 404
    assert client.get(URL.format(layer="nowhere", z=3, x=0, y=0)).status_code == 404
    t = _tiles_of(client.application.extensions["gridmap"].collections["grid"].bounds, 14)[0]
    url = URL.format(layer="grid", z=14, x=t.x, y=t.y)
    first = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip" and first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert _decode(client.get(url).data)["grid"]["features"]


# ----------------------------------------------------------------------- generalisation
@pytest.fixture(scope="module")
def noisy_city():
    _, _, grids = hierarchy(3000, seed=3)
    return add_noise(grids, seed=3).to_crs(4326)


def test_generalised_cells_keep_their_shared_edges(noisy_city):
    """Each band of a noisy city (T-junctions, a reprojection round trip): fewer vertices,
    and the cells still cover exactly what they covered — no overlap, no gap opened."""
    tl = TileLayer.from_lonlat("grid", noisy_city, noisy_city["code"], noisy_city["code"])
    tl.generalised()
    exact = shapely.union_all(tl.geoms)
    for b in BANDS:
        g = tl.bands[b]
        assert (
            shapely.get_num_coordinates(g).sum() < 0.6 * shapely.get_num_coordinates(tl.geoms).sum()
        )
        total = shapely.area(g).sum()
        union = shapely.union_all(g)
        assert total - union.area < 1e-6 * exact.area, b  # no overlap
        assert abs(union.area - exact.area) < 1e-6 * exact.area, b  # no gap, same outline
        # every cell stays within a screen pixel of where it is
        assert shapely.hausdorff_distance(g, tl.geoms).max() < pixel_m(b), b


def test_neighbouring_tiles_meet_without_gap_or_overlap(noisy_city):
    """The cells of all tiles of zoom 11 (generalised) and 14 (exact), cut back to each
    tile and put together, cover the city once: what they overlap or leave open is
    within the rounding to tile units (16 units a screen pixel)."""
    tl = TileLayer.from_lonlat("grid", noisy_city, noisy_city["code"], noisy_city["code"])
    tl.generalised()
    exact = shapely.union_all(tl.geoms)
    lonlat = noisy_city.total_bounds
    for z in (11, 14):
        pieces = []
        for t in _tiles_of(lonlat, z):
            tile = _decode(tl.tile(z, t.x, t.y)[0]).get("grid", {"features": []})
            for f in tile["features"]:
                g = _in_mercator(shapely.geometry.shape(f["geometry"]), z, t.x, t.y)
                pieces.append(shapely.clip_by_rect(g, *tile_bounds(z, t.x, t.y)))
        unit = (pixel_m(z) * 256 / EXTENT) ** 2  # one tile unit, in square metres
        union = shapely.union_all(pieces)
        overlap = shapely.area(pieces).sum() - union.area
        gap = shapely.difference(exact, union).area
        perimeter_units = shapely.length(tl.geoms).sum() / np.sqrt(unit)
        assert overlap < 0.5 * perimeter_units * unit, z
        assert gap < 0.5 * perimeter_units * unit, z
        assert abs(union.area - exact.area) < 0.01 * exact.area


# ----------------------------------------------------------------------- saves
def test_a_save_rebuilds_exactly_the_tiles_it_touched(tmp_path):
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    app = create_app({"DATASET": str(path)})
    cat = app.extensions["gridmap"]
    add_user(cat.store, "ana", "planner", "long-secret")
    c = app.test_client()
    grid = cat.collections["grid"]
    asked = {(z, t.x, t.y) for z in (13, 14, 15) for t in _tiles_of(grid.bounds, z)}
    for z, x, y in asked:
        c.get(URL.format(layer="grid", z=z, x=x, y=y))
    assert cat.tiles.cached("grid") == asked
    code = "540102003004003"
    url = f"/collections/grid/items/{code}"
    got = c.get(url)
    cell = shapely.geometry.shape(got.get_json()["geometry"])
    f = dict(got.get_json(), properties={"households": 7}, reason="survey")
    saved = c.put(
        url, json=f, headers={"If-Match": got.headers["ETag"], **_basic("ana", "long-secret")}
    )
    assert saved.status_code == 200, saved.get_json()
    # the tiles the cell reaches (with their buffers) are dropped; all others are kept
    box = shapely.box(*shapely.bounds(TMS_xy(cell)))
    reached = set()
    for z, x, y in asked:
        if shapely.intersects(box, shapely.box(*tile_window(z, x, y))):
            reached.add((z, x, y))
    assert reached and reached != asked
    assert cat.tiles.cached("grid") == asked - reached
    # the kept tiles are what the new version's tiles are; the rebuilt ones hold the change
    new = cat.collections["grid"]
    fresh = TileLayer.from_lonlat(
        "grid", new.table, new.ids, new.codes, cat._tile_columns("grid", new)
    )
    for z, x, y in sorted(asked - reached)[:40]:
        assert c.get(URL.format(layer="grid", z=z, x=x, y=y)).data == fresh.tile(z, x, y)[0]
    for z, x, y in reached:
        data = c.get(URL.format(layer="grid", z=z, x=x, y=y)).data
        assert data == fresh.tile(z, x, y)[0]
        props = [p["properties"] for p in _decode(data)["grid"]["features"]]
        assert any(p["code"] == code and p["households"] == 7 for p in props)


def TMS_xy(geom):
    """A lon/lat geometry in Web Mercator metres."""
    from geo.tiles import to_web_mercator

    return to_web_mercator(np.array([geom]))[0]


# ----------------------------------------------------------------------- a real client
GDAL_PROBE = """
import json, sys, urllib.request
import pyogrio
url = sys.argv[1]
meta = json.load(urllib.request.urlopen(url + "/collections/grid/tiles/WebMercatorQuad"))
(minx, miny), (maxx, maxy) = meta["boundingBox"]["lowerLeft"], meta["boundingBox"]["upperRight"]
df = pyogrio.read_dataframe(
    "OGCAPI:" + url + "/collections/grid", layer="Zoom level 14", API="TILES",
    MINX=minx, MINY=miny, MAXX=maxx, MAXY=maxy,
)
row = df.iloc[0]
print(json.dumps({"ids": sorted(set(df["id"])), "epsg": df.crs.to_epsg(),
                  "id": row["id"], "households": int(row["households"])}))
"""


def test_gdal_reads_the_tiles_through_ogc_api_tiles(sample_app):
    """GDAL's OGC API driver (3.12, in pyogrio's wheel; in another process, as GDAL holds
    Python's lock while it fetches) finds the tiles from the collection's links, reads the
    tile matrix set and decodes the tiles itself: every cell at zoom 14, with its
    properties. (GDAL takes the collection's extent in the tile matrix set's units; the
    tileset's boundingBox gives them: MINX… are the driver's documented options.)"""
    import pyogrio

    if "OGCAPI" not in pyogrio.list_drivers():
        pytest.fail("pyogrio's GDAL has no OGC API driver")
    url, server = serve_in_thread(sample_app)
    try:
        run = subprocess.run(
            [sys.executable, "-c", GDAL_PROBE, url], capture_output=True, text=True, timeout=300
        )
    finally:
        server.close()
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    grid = sample_app.extensions["gridmap"].collections["grid"]
    assert got["ids"] == sorted(map(str, grid.ids))
    assert got["epsg"] == 3857
    i = int(np.flatnonzero(grid.ids == got["id"])[0])
    assert got["households"] == int(grid.table["households"].iloc[i])


# ----------------------------------------------------------------------- bounded
def test_a_tile_asked_for_at_once_is_built_once_and_builders_are_bounded(tmp_path, monkeypatch):
    """30 clients asking for the same cold tile cause one build; when every builder is
    busy past the wait, the answer is 503 with Retry-After (nothing piles up)."""
    import threading

    import web.tilecache

    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    app = create_app({"DATASET": str(path)})
    cat = app.extensions["gridmap"]
    grid = cat.collections["grid"]
    t = _tiles_of(grid.bounds, 9)[0]
    cat.tiles.tile("grid", grid, 16, 0, 0)  # the tile layer made (an empty tile)
    assert cat.tiles.settled()  # and generalised
    before = cat.tiles.built
    start = threading.Barrier(30)
    got = []

    def ask():
        start.wait()
        got.append(cat.tiles.tile("grid", grid, 9, t.x, t.y).data)

    threads = [threading.Thread(target=ask) for _ in range(30)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert cat.tiles.built - before == 1
    assert len(got) == 30 and len(set(got)) == 1 and got[0]

    monkeypatch.setattr(web.tilecache, "BUILD_WAIT", 0.2)
    for _ in range(cat.tiles.workers):
        cat.tiles._slots.acquire()  # every builder busy
    try:
        r = app.test_client().get(URL.format(layer="grid", z=15, x=t.x * 64, y=t.y * 64))
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
        assert r.get_json()["error"] == "busy"
        cached = app.test_client().get(URL.format(layer="grid", z=9, x=t.x, y=t.y))
        assert cached.status_code == 200  # what is built is still served
    finally:
        for _ in range(cat.tiles.workers):
            cat.tiles._slots.release()


def test_the_zooms_that_show_a_layer_whole_are_built_ahead_once_generalised(tmp_path, monkeypatch):
    """Seeding: every tile of each zoom below 13 whose tiles covering the grid number at
    most SEED_TILES (4 here, for the small sample), and none other; not before the layer
    is generalised (its low zooms would be drawn again), but as soon as it is."""
    import web.tilecache
    from geo.tiles import EXACT_FROM

    monkeypatch.setattr(web.tilecache, "SEED_TILES", 4)
    SEED_TILES = 4
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    cat = create_app({"DATASET": str(path), "OVERVIEWS": "off"}).extensions["gridmap"]
    grid = cat.collections["grid"]
    expected = set()
    for z in range(EXACT_FROM):
        tiles = _tiles_of(grid.bounds, z)
        if len(tiles) <= SEED_TILES:
            expected |= {(z, t.x, t.y) for t in tiles}
    assert 0 < len({z for z, _, _ in expected}) < EXACT_FROM  # some zooms left out

    assert cat.tiles.seed("grid", grid) == 0  # being generalised: not yet
    assert cat.tiles.settled()
    assert cat.tiles.cached("grid") == expected  # built once it was
    before = cat.tiles.built
    assert cat.tiles.seed("grid", grid) == len(expected)  # kept: nothing built again
    assert cat.tiles.built == before


# ----------------------------------------------------------------------- PostGIS
@pytest.mark.postgis
@pytest.mark.parametrize("repeated_code", [True, False])
def test_postgis_builds_the_exact_tiles_with_st_asmvt(pg_schema, repeated_code):
    """On PostGIS, tiles from zoom 13 up are built by ST_AsMVT: the same features with the
    same ids and stored properties, the same geometry to a tile unit, as the service's
    own encoder draws from its copy; low zooms (generalised) stay the service's. Both
    with the sample's repeated code (its features' ids numbered) and without (ids are
    the codes)."""
    from shapely.geometry import shape

    from layers.storage import open_store
    from tests.conftest import copy_sample, schema_url

    url = copy_sample(schema_url(pg_schema))
    if not repeated_code:
        store = open_store(url)
        cells = store.read_layer("grid")
        again = cells["code"].duplicated()
        assert again.any()
        cells.loc[again, "code"] = cells.loc[again, "code"] + "9"
        store.write_layer("grid", cells)
    app = create_app({"DATASET": url})
    cat = app.extensions["gridmap"]
    grid = cat.collections["grid"]
    assert cat.tiles.layer("grid", grid).unique_codes is not repeated_code
    own = TileLayer.from_lonlat(
        "grid", grid.table, grid.ids, grid.codes, cat._tile_columns("grid", grid)
    )
    stored = [c for c in own.columns if c in cat.stored["grid"].columns and c != "geometry"]
    figures = ["density_per_km2", "floating_share_pct"]  # derived: PostGIS computes them too
    assert set(figures) <= set(own.columns)
    c = app.test_client()
    compared = 0
    for t in _tiles_of(grid.bounds, 14)[:12]:
        got = c.get(URL.format(layer="grid", z=14, x=t.x, y=t.y))
        db = {
            f["properties"]["id"]: f for f in _decode(got.data).get("grid", {}).get("features", [])
        }
        mine = {
            f["properties"]["id"]: f
            for f in _decode(own.tile(14, t.x, t.y)[0]).get("grid", {}).get("features", [])
        }
        assert set(db) == set(mine)
        for fid, f in db.items():
            assert {k: f["properties"].get(k) for k in stored} == {
                k: mine[fid]["properties"].get(k) for k in stored
            }
            for k in figures:  # the same figure, to its rounding
                a, b = f["properties"].get(k), mine[fid]["properties"].get(k)
                assert (a is None) == (b is None) and (a is None or abs(a - b) <= 0.1), (k, a, b)
            a, b = shape(f["geometry"]), shape(mine[fid]["geometry"])
            # both round to tile units: they differ by rounding along the outline at most
            assert a.symmetric_difference(b).area <= a.length, fid
            compared += 1
    assert compared > 50
    # the theme figures, which the service derives, are there to paint by; the rest of
    # what it derives (who is in charge) is not
    props = next(iter(db.values()))["properties"]
    assert props["density_per_km2"] > 0 and "police_area_code" not in props


def test_a_save_during_generalisation_takes_its_bands_when_they_come(noisy_city):
    """A save spliced into a layer still being generalised (the first minute of a
    province's service) takes the bands once they come, and generalises again only the
    group it changed: the same bands as generalising the saved layer whole."""
    from layers.storage.edits import Splice

    before = TileLayer.from_lonlat("grid", noisy_city, noisy_city["code"], noisy_city["code"])
    code = str(noisy_city["code"].iloc[100])
    changed = noisy_city[noisy_city["code"] == code].assign(households=1)
    plan = Splice.of(noisy_city["code"].to_numpy(), changed, [code])
    after, boxes = before.spliced(plan, changed, noisy_city["code"], noisy_city["code"])
    assert len(boxes) == 2 and not after.bands and not after.inherit_bands()
    before.generalised()  # the generalisation that was running ends
    assert after.inherit_bands()
    assert after.dirty == {int(before.groups[100])}
    after.regeneralised()
    whole = TileLayer.from_lonlat("grid", noisy_city, noisy_city["code"], noisy_city["code"])
    whole.generalised()
    for b in BANDS:
        assert shapely.equals_exact(after.bands[b], whole.bands[b], 0.0).all()
    assert after.tags.records([100])[0]["households"] == 1


def test_postgis_tiles_read_a_layers_columns_once_and_again_when_they_change(pg_schema):
    """A PostGIS tile costs one query: the layer's columns are read once, not per tile;
    when another writer changes the table, the next tile reads them again."""
    import sqlalchemy as sa

    from layers.storage import open_store
    from tests.conftest import copy_sample, schema_url

    store = open_store(copy_sample(schema_url(pg_schema)))
    grid = store.read_layer("grid").to_crs(4326)
    tiles = _tiles_of(tuple(grid.total_bounds), 14)[:3]
    asked = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda *a: asked.append("information_schema" in a[2]))  # fmt: skip
    columns = ["name", "households", "population"]
    for t in tiles:
        assert store.vector_tile("grid", 14, t.x, t.y, columns, 4096, 64)[1] > 0
    assert asked == [True, False, False, False]  # columns once, then one query a tile
    with store.engine.begin() as con:  # another writer drops a column
        con.execute(sa.text(f'ALTER TABLE "{pg_schema}".grid DROP COLUMN population'))
    data, n = store.vector_tile("grid", 14, tiles[0].x, tiles[0].y, columns, 4096, 64)
    features = _decode(data)["grid"]["features"]
    assert n == len(features) > 0 and "population" not in features[0]["properties"]
    assert "households" in features[0]["properties"]
