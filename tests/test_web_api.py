"""The HTTP API on the sample dataset: OGC-style collections, paging, errors, lookups."""

import geopandas as gpd
import pytest
import shapely

from layers.storage import open_store
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def grid():
    return open_store(SAMPLE).read_layer("grid").to_crs(4326)


def test_collections_list_every_layer_with_extent(client):
    body = client.get("/collections").get_json()
    ids = [c["id"] for c in body["collections"]]
    assert ids == [
        "street",
        "community",
        "grid",
        "household_unit",
        "police_area",
        "police_beat",
        "facility",
        "address",
        "road",
        "findings_area",
        "findings_point",
    ]
    grid = next(c for c in body["collections"] if c["id"] == "grid")
    assert grid["numberOfFeatures"] == 651
    x0, y0, x1, y1 = grid["extent"]["spatial"]["bbox"][0]
    assert 91.0 < x0 < x1 < 91.3 and 29.6 < y0 < y1 < 29.7
    assert client.get("/collections/grid").get_json()["id"] == "grid"


def test_ogc_landing_and_conformance(client):
    links = {link["rel"]: link["href"] for link in client.get("/?f=json").get_json()["links"]}
    assert links["data"] == "http://localhost/collections"
    assert links["conformance"] == "http://localhost/conformance"
    assert any(
        c.endswith("/conf/geojson") for c in client.get("/conformance").get_json()["conformsTo"]
    )


def test_items_bbox_matches_geopandas_and_pages_with_next_links(client, grid):
    bbox = (91.10, 29.64, 91.13, 29.66)
    expected = set(grid[grid.intersects(shapely.box(*bbox))]["code"])
    codes, url, pages = [], f"/collections/grid/items?bbox={','.join(map(str, bbox))}&limit=25", 0
    while url:
        r = client.get(url)
        assert r.status_code == 200 and r.mimetype == "application/geo+json"
        body = r.get_json()
        assert body["numberMatched"] == len(expected)
        assert body["numberReturned"] == len(body["features"]) <= 25
        codes += [f["properties"]["code"] for f in body["features"]]
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        url = nxt[0] if nxt else None
        pages += 1
    assert pages == -(-len(expected) // 25)
    assert len(codes) == len(expected) and set(codes) == expected


def test_items_are_lonlat_geojson_with_attributes(client, grid):
    body = client.get("/collections/grid/items?limit=1000").get_json()
    assert body["numberMatched"] == body["numberReturned"] == 651
    f = body["features"][0]
    geom = shapely.geometry.shape(f["geometry"])
    x, y = geom.representative_point().coords[0]
    assert 91.0 < x < 91.3 and 29.6 < y < 29.7
    p = f["properties"]
    for key in (
        "households",
        "population",
        "parent_code",
        "parent_name",
        "police_area_name",
        "density_per_km2",
        "floating_share_pct",
    ):
        assert key in p
    assert not [k for k in p if k.startswith("_")]  # no map styling in the data


def test_a_large_layer_is_never_sent_whole(client):
    assert client.get("/collections/grid/items").get_json()["numberReturned"] <= 1000
    clamped = client.get("/collections/grid/items?limit=100000&bbox=91.1,29.64,91.11,29.65")
    assert clamped.status_code == 200  # clamped to the maximum, as Part 1 says
    assert clamped.get_json()["numberReturned"] == clamped.get_json()["numberMatched"]


def test_item_by_code_and_duplicates(client):
    f = client.get("/collections/community/items/540102003004").get_json()
    assert f["properties"]["name"] == "布达拉社区"
    assert client.get("/collections/grid/items/nope").status_code == 404
    dup = client.get("/collections/grid/items/540102001002001")
    assert dup.status_code == 409 and "share code" in dup.get_json()["description"]


@pytest.mark.parametrize(
    "url, status, words",
    [
        ("/collections/nope", 404, "no collection 'nope'"),
        ("/collections/nope/items", 404, "available: street"),
        ("/collections/grid/items?bbox=1,2,3", 400, "four numbers"),
        ("/collections/grid/items?bbox=a,b,c,d", 400, "four numbers"),
        ("/collections/grid/items?bbox=91.2,29.6,91.1,29.7", 400, "min ≤ max"),
        ("/collections/grid/items?bbox=0,-95,1,1", 400, "latitude within ±90"),
        ("/collections/grid/items?limit=x", 400, "whole number"),
        ("/collections/grid/items?offset=-1", 400, "between 0"),
        ("/lookup?lon=91.1", 400, "lat is required"),
        ("/lookup?lon=200&lat=29", 400, "lon must be between"),
        ("/findings?rule=nope", 400, "not a rule"),
        ("/no/such/page", 404, ""),
    ],
)
def test_errors_are_json_with_a_message(client, url, status, words):
    r = client.get(url)
    assert r.status_code == status
    body = r.get_json()
    assert body["code"] == status and words in body["description"]
    assert "Traceback" not in r.get_data(as_text=True)


def test_unexpected_errors_hide_the_stack_trace(sample_app):
    cat = sample_app.extensions["gridmap"]
    original = cat.search
    cat.search = lambda *a, **k: 1 / 0
    try:
        r = sample_app.test_client().get("/search?q=x")
    finally:
        cat.search = original
    assert r.status_code == 500
    assert r.get_json() == {"code": 500, "description": "internal error; see the server log"}


def test_findings_filter_by_rule_and_layer(client):
    all_ = client.get("/findings").get_json()
    assert all_["numberReturned"] == 11 and sum(all_["summary"].values()) == 11
    gaps = client.get("/findings?rule=gap&layer=grid").get_json()["features"]
    assert len(gaps) == 2
    assert {g["properties"]["kind"] for g in gaps} == {"real", "sliver"}
    assert not [k for g in gaps for k in g["properties"] if k.startswith("_")]
    police = client.get("/findings?layer=police_area").get_json()["features"]
    assert {f["properties"]["rule"] for f in police} == {"overlap", "gap", "misaligned"}


def test_lookup_names_everyone_responsible_and_the_nearest_facilities(client):
    body = client.get("/lookup?lon=91.1172&lat=29.6558").get_json()  # the Potala
    areas = body["areas"]
    street = {"code": "540102003", "name": "吉崩岗街道"}
    assert areas["street"] == {"status": "one", "holders": [street], **street}
    assert areas["community"]["code"] == "540102003004"
    assert areas["grid"]["code"].startswith("540102003004")
    assert areas["police_area"]["code"] == "540102PA03"
    assert areas["police_beat"]["code"] == "540102PB014"
    kinds = {n["kind"] for n in body["nearest"]}
    assert kinds == {
        "police_station",
        "police_post",
        "health_center",
        "service_hall",
        "party_service_station",
        "school",
    }
    post = next(n for n in body["nearest"] if n["kind"] == "police_post")
    assert post["method"] == "network"  # the sample has roads: walking distance
    # walking along roads is never shorter than the straight line (metres, EPSG:4539)
    fac = open_store(SAMPLE).read_layer("facility")
    posts = fac[fac["kind"] == "police_post"].to_crs(4539)
    here = gpd.GeoSeries([shapely.Point(91.1172, 29.6558)], crs=4490).to_crs(4539).iloc[0]
    assert post["distance_m"] >= posts.distance(here).min()
    outside = client.get("/lookup?lon=100&lat=30").get_json()["areas"]
    assert outside["street"] == outside["grid"] == {"status": "none", "holders": []}


def test_search_by_name_and_code(client):
    results = client.get("/search?q=鲁固").get_json()["results"]
    assert results[0]["name"] == "鲁固社区" and results[0]["layer"] == "community"
    by_code = client.get("/search?q=540102003004").get_json()["results"]
    assert by_code[0]["code"] == "540102003004" and by_code[0]["layer"] == "community"
    posts = client.get("/search?q=便民警务站").get_json()["results"]
    assert posts and all(r["layer"] == "facility" for r in posts)


def test_themes_have_classes_and_colours(client):
    themes = client.get("/themes").get_json()
    assert set(themes) == {"households", "population", "density", "floating_share"}
    hh = themes["households"]
    assert len(hh["bins"]) == len(hh["colors"]) == 5 and hh["bins"][-1] == 1150
    assert hh["method"] == "Quantiles"


@pytest.mark.postgis
def test_service_on_a_postgis_dataset(postgis_url, pg_schema):
    from tests.tilings import squares
    from web import create_app

    streets, communities, grids = squares()
    store = open_store(postgis_url, schema=pg_schema)
    for name, gdf in {
        "street": streets,
        "community": communities,
        "grid": grids.drop(columns=["col", "row"]),
    }.items():
        store.write_layer(name, gdf.to_crs(4490))
    sep = "&" if "?" in postgis_url else "?"
    app = create_app({"DATASET": f"{postgis_url}{sep}schema={pg_schema}"})
    c = app.test_client()
    assert [x["id"] for x in c.get("/collections").get_json()["collections"]] == [
        "street",
        "community",
        "grid",
        "findings_area",
        "findings_point",
    ]
    assert c.get("/collections/grid/items").get_json()["numberMatched"] == 64
    assert c.get("/findings").get_json()["numberReturned"] == 0


def test_geojson_is_gzipped_for_clients_that_accept_it(client):
    import gzip
    import json

    plain = client.get("/collections/grid/items?limit=200")
    packed = client.get("/collections/grid/items?limit=200", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(packed.get_data())
    unpacked, expected = json.loads(body), plain.get_json()
    # the two answers were made a moment apart: only their time stamps may differ
    assert unpacked.pop("timeStamp") and expected.pop("timeStamp")
    assert unpacked == expected
    assert len(packed.get_data()) < len(body) / 3


def test_lookup_on_the_far_side_of_the_globe_answers_nobody(client):
    # found by schemathesis: the point projects to infinity in the dataset's metric CRS
    r = client.get("/lookup?lon=-177.4&lat=-1e-121")
    assert r.status_code == 200
    body = r.get_json()
    assert all(v == {"status": "none", "holders": []} for v in body["areas"].values())
    assert body["nearest"] and all(n["unreachable"] for n in body["nearest"])
