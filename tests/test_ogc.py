"""OGC API – Features as the standard says it, on answers known by construction: content
negotiation, absolute links behind a proxy, paging and the limit clamp, unique feature ids,
CRS (Part 2), filters (Part 3), editing (Part 4), findings as collections, styling kept
out of the data, RFC 7946 geometries, CORS and the OpenAPI document."""

import json
import re

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from geo.themes import classify
from tests.conftest import BROWSER, SAMPLE
from tests.test_changes import _basic
from tests.tilings import ORIGIN, squares
from web import create_app
from web.auth import add_user

OGC = "http://www.opengis.net/def/crs/"


@pytest.fixture(scope="module")
def squares_app(tmp_path_factory):
    """8 × 8 cells of 100 m built in EPSG:4539 at ORIGIN, stored in EPSG:4490."""
    streets, communities, grids = squares()
    path = tmp_path_factory.mktemp("ogc") / "squares.gpkg"
    for name, gdf in {"street": streets, "community": communities, "grid": grids}.items():
        gdf.to_crs(4490).to_file(path, layer=name, driver="GPKG")
    return create_app({"DATASET": str(path), "TESTING": True}), grids


@pytest.fixture
def editable(tmp_path):
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    app = create_app({"DATASET": str(path), "SECRET_KEY": "t", "TESTING": True})
    add_user(app.extensions["gridmap"].store, "ana", "planner", "long-secret")
    return app


# --------------------------------------------------------------------- Part 1 core
def test_landing_page_is_json_for_clients_and_the_map_for_browsers(client):
    doc = client.get("/", headers={"Accept": "application/json"}).get_json()
    links = {link["rel"]: link for link in doc["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(links)
    assert links["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert all(link["href"].startswith("http://localhost/") for link in doc["links"])
    assert client.get("/").mimetype == "application/json"  # */*: curl, OWSLib
    page = client.get("/", headers=BROWSER)
    assert page.mimetype == "text/html" and "gridmap" in page.get_data(as_text=True)


def test_every_resource_negotiates_json_and_html(client):
    for url in ("/conformance", "/collections", "/collections/grid", "/api"):
        assert client.get(url, headers=BROWSER).mimetype == "text/html", url
        assert client.get(url + "?f=html").mimetype == "text/html", url
        assert client.get(url + "?f=json").mimetype == "application/json", url
    items = client.get("/collections/grid/items?limit=3&f=html")
    assert items.mimetype == "text/html" and "540102001001001" in items.get_data(as_text=True)
    assert client.get("/collections/grid/items?limit=3").mimetype == "application/geo+json"
    bad = client.get("/collections?f=xml")
    assert bad.status_code == 400 and "json, html" in bad.get_json()["description"]


def test_links_are_absolute_and_follow_the_reverse_proxy():
    proxied = create_app({"DATASET": str(SAMPLE), "PROXY_HOPS": 1, "TESTING": True})
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "gis.example.org",
        "X-Forwarded-Prefix": "/gridmap",
        "Accept": "application/json",
    }
    c = proxied.test_client()
    hrefs = [link["href"] for link in c.get("/", headers=headers).get_json()["links"]]
    page = c.get("/collections/grid/items?limit=5", headers=headers).get_json()
    hrefs += [link["href"] for link in page["links"]]
    assert all(h.startswith("https://gis.example.org/gridmap/") for h in hrefs), hrefs
    api = c.get("/api", headers=headers).get_json()
    assert api["servers"] == [{"url": "https://gis.example.org/gridmap"}]
    # not behind a proxy (the default): the headers are not trusted
    direct = create_app({"DATASET": str(SAMPLE), "TESTING": True}).test_client()
    hrefs = [link["href"] for link in direct.get("/", headers=headers).get_json()["links"]]
    assert all(h.startswith("http://localhost/") for h in hrefs)


def test_limit_is_clamped_and_pages_cover_every_feature(client, monkeypatch):
    import web.features

    monkeypatch.setattr(web.features, "MAX_LIMIT", 100)
    page = client.get("/collections/grid/items?limit=500").get_json()
    assert page["numberReturned"] == 100 and page["numberMatched"] == 651
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    assert "limit=100" in nxt and "offset=100" in nxt
    ids, url = [], "/collections/grid/items?limit=500"
    while url:
        body = client.get(url).get_json()
        ids += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert len(ids) == len(set(ids)) == 651
    counted = client.get("/collections/grid/items?limit=0").get_json()
    assert counted["numberMatched"] == 651 and counted["features"] == []
    assert not [link for link in counted["links"] if link["rel"] == "next"]


def test_page_and_feature_members(client):
    page = client.get("/collections/grid/items?limit=2").get_json()
    assert page["timeStamp"].endswith("Z") and page["numberReturned"] == 2
    feature = client.get("/collections/community/items/540102003004").get_json()
    rels = {link["rel"]: link["href"] for link in feature["links"]}
    assert rels["self"] == "http://localhost/collections/community/items/540102003004"
    assert rels["collection"] == "http://localhost/collections/community"


@pytest.mark.parametrize(
    "query, words",
    [
        ("foo=1", "unknown parameter 'foo'"),
        ("filter-crs=x", "leave out filter-crs"),
        ("datetime=garbage", "does not filter by datetime"),
        ("crs=EPSG:3857", "'EPSG:3857' is not offered"),
        ("crs=nonsense", "not a CRS URI"),
        ("bbox-crs=EPSG:4539", "bbox-crs needs a bbox"),
        ("filter-lang=cql2-text", "filter-lang needs a filter"),
        ("limit=-1", "between 0"),
    ],
)
def test_unknown_or_unsupported_parameters_are_refused(client, query, words):
    r = client.get(f"/collections/grid/items?{query}")
    assert r.status_code == 400 and words in r.get_json()["description"]
    assert r.get_json()["message"]["zh"]


def test_every_view_declares_its_parameters(sample_app):
    for rule in sample_app.url_map.iter_rules():
        if rule.endpoint != "static":
            view = sample_app.view_functions[rule.endpoint]
            assert hasattr(view, "accepts"), rule.rule
            assert view.__doc__ or rule.endpoint == "pages.favicon", rule.rule  # its summary
    assert sample_app.test_client().get("/lookup?lon=91.1&lat=29.65&x=1").status_code == 400


def test_duplicated_codes_get_unique_ids_and_keep_their_code(client):
    body = client.get("/collections/grid/items?parent_code=540102001002").get_json()
    dup = [f for f in body["features"] if f["properties"]["code"] == "540102001002001"]
    assert sorted(f["id"] for f in dup) == ["540102001002001.1", "540102001002001.2"]
    for f in dup:
        one = client.get(f"/collections/grid/items/{f['id']}").get_json()
        assert one["id"] == f["id"] and one["geometry"] == f["geometry"]
    shared = client.get("/collections/grid/items/540102001002001")
    assert shared.status_code == 409 and "540102001002001.2" in shared.get_json()["description"]


# --------------------------------------------------------------------- Part 2 CRS
def test_collections_list_their_crs(squares_app):
    app, _ = squares_app
    doc = app.test_client().get("/collections/grid").get_json()
    assert doc["crs"] == [
        f"{OGC}OGC/1.3/CRS84",
        f"{OGC}EPSG/0/4326",
        f"{OGC}EPSG/0/4490",
        f"{OGC}EPSG/0/4539",
    ]
    assert doc["storageCrs"] == f"{OGC}EPSG/0/4490"


def test_metric_crs_returns_the_constructed_coordinates_in_its_axis_order(squares_app):
    app, grids = squares_app
    c = app.test_client()
    r = c.get(f"/collections/grid/items?limit=100&crs={OGC}EPSG/0/4539")
    assert r.headers["Content-Crs"] == f"<{OGC}EPSG/0/4539>"
    got = {f["properties"]["code"]: shape(f["geometry"]) for f in r.get_json()["features"]}
    for row in grids.itertuples():
        # EPSG:4539 lists northing first: (x, y) as built comes back as (y, x)
        built = shapely.ops.transform(lambda x, y: (y, x), row.geometry)
        assert got[row.code].symmetric_difference(built).area < 1e-3  # < 0.001 m²
    lat_first = c.get("/collections/grid/items?limit=1&crs=EPSG:4326").get_json()
    lat, lon = lat_first["features"][0]["geometry"]["coordinates"][0][0]
    assert 29 < lat < 30 and 89 < lon < 92


def test_bbox_in_the_metric_crs_selects_by_construction(squares_app):
    app, grids = squares_app
    x0, y0 = ORIGIN
    # the inside of cell (2, 3): 100 m cells, so x 200..300 and y 300..400 from the origin
    n0, e0, n1, e1 = y0 + 310, x0 + 210, y0 + 390, x0 + 290
    r = app.test_client().get(
        f"/collections/grid/items?bbox={n0},{e0},{n1},{e1}&bbox-crs=EPSG:4539"
    )
    codes = [f["properties"]["code"] for f in r.get_json()["features"]]
    want = grids[(grids["col"] == 2) & (grids["row"] == 3)]["code"].tolist()
    assert codes == want


# --------------------------------------------------------------------- Part 3 filters
@pytest.fixture(scope="module")
def served_grid(sample_app):
    return sample_app.extensions["gridmap"].collections["grid"].table


@pytest.mark.parametrize(
    "cql, expected",
    [
        (
            "households > 500 AND parent_code = '540102001001'",
            lambda g: (g["households"] > 500) & (g["parent_code"] == "540102001001"),
        ),
        ("households BETWEEN 100 AND 300", lambda g: g["households"].between(100, 300)),
        ("name LIKE '%1%'", lambda g: g["name"].str.contains("1")),
        ("density_per_km2 < 5000 OR population IS NULL", lambda g: g["density_per_km2"] < 5000),
        ("households * 3 > population", lambda g: g["households"] * 3 > g["population"]),
    ],
)
def test_cql2_text_selects_what_geopandas_selects(client, served_grid, cql, expected):
    body = client.get("/collections/grid/items", query_string={"filter": cql}).get_json()
    want = served_grid[expected(served_grid).fillna(False).to_numpy()]["code"].tolist()
    assert body["numberMatched"] == len(want) > 0
    assert [f["properties"]["code"] for f in body["features"]] == want


def test_cql2_json_spatial_and_property_filters(client, served_grid):
    point = {"type": "Point", "coordinates": [91.1, 29.65]}
    tree = {"op": "s_intersects", "args": [{"property": "geometry"}, point]}
    q = {"filter": json.dumps(tree), "filter-lang": "cql2-json"}
    body = client.get("/collections/grid/items", query_string=q).get_json()
    want = served_grid[served_grid.intersects(shapely.Point(91.1, 29.65))]["code"].tolist()
    assert [f["properties"]["code"] for f in body["features"]] == want and len(want) == 1
    simple = client.get("/collections/grid/items?parent_code=540102001001&households=136")
    codes = [f["properties"]["code"] for f in simple.get_json()["features"]]
    assert codes == ["540102001001002"]


@pytest.mark.parametrize(
    "cql, words",
    [
        ("households >", "not valid cql2-text: it ends before the expression is complete"),
        ("households >> 3", "cannot be read at character 13 ('> 3')"),
        ("name = '社区", "cannot be read at character 8"),
        ("househods > 1", "'househods', which is not a queryable"),
        ("parent_code = 540102001001", "compare it with quoted text"),
    ],
)
def test_bad_filters_say_what_is_wrong(client, cql, words):
    r = client.get("/collections/grid/items", query_string={"filter": cql})
    assert r.status_code == 400 and words in r.get_json()["description"]
    assert "Token" not in r.get_json()["description"]  # the parser's own words stay inside


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"op": "="', "it is not JSON (at character 11)"),
        ('{"op": "nope", "args": []}', "not a CQL2"),
    ],
)
def test_bad_cql2_json_says_what_is_wrong(client, text, words):
    q = {"filter": text, "filter-lang": "cql2-json"}
    r = client.get("/collections/grid/items", query_string=q)
    assert r.status_code == 400 and words in r.get_json()["description"], r.get_json()
    assert "Unable to parse" not in r.get_json()["description"]


def test_queryables_are_json_schema_with_derived_ones_read_only(client):
    r = client.get("/collections/grid/queryables")
    assert r.mimetype == "application/schema+json"
    props = r.get_json()["properties"]
    assert props["households"]["type"] == "integer" and props["parent_code"]["type"] == "string"
    assert props["density_per_km2"]["readOnly"] and "readOnly" not in props["households"]
    assert props["geometry"]["format"] == "geometry-any"


# --------------------------------------------------------------------- findings, styling
def test_findings_are_collections_a_gis_loads(client):
    everything = client.get("/findings").get_json()["numberReturned"]
    area = client.get("/collections/findings_area/items").get_json()
    point = client.get("/collections/findings_point/items").get_json()
    assert area["numberMatched"] + point["numberMatched"] == everything == 11
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in area["features"])
    gaps = client.get("/collections/findings_area/items?rule=gap&layer=grid").get_json()
    assert gaps["numberMatched"] == 2 and {f["properties"]["rule_zh"] for f in gaps["features"]}


def test_no_styling_in_the_data_and_themes_classify_by_the_cells_own_value(client, served_grid):
    for name in [c["id"] for c in client.get("/collections").get_json()["collections"]]:
        body = client.get(f"/collections/{name}/items?limit=10000").get_json()
        assert not [k for f in body["features"] for k in f["properties"] if k.startswith("_")]
    themes = client.get("/themes").get_json()
    for theme in themes.values():
        values = served_grid[theme["property"]]
        colours, _ = classify(values)
        # the map's rule (themes.js themeColor): the first class whose bound is ≥ the value
        for v, want in zip(values, colours):
            if np.isfinite(v):
                i = next(k for k, b in enumerate(theme["bins"]) if v <= b)
                assert theme["colors"][i] == want
            else:
                assert want == theme["noData"]


# --------------------------------------------------------------------- RFC 7946
def test_geojson_is_rfc7946_ccw_and_seven_decimals(client, tmp_path):
    text = client.get("/collections/grid/items?limit=10000").get_data(as_text=True)
    doc = json.loads(text)
    assert "crs" not in doc
    for f in doc["features"]:
        for poly in getattr(shape(f["geometry"]), "geoms", [shape(f["geometry"])]):
            assert poly.exterior.is_ccw and not any(r.is_ccw for r in poly.interiors)
    coords = [json.dumps(f["geometry"]["coordinates"]) for f in doc["features"]]
    assert max(len(d) for c in coords for d in re.findall(r"\.(\d+)", c)) <= 7

    from layers.export import export_layer

    out = export_layer(gpd.read_file(SAMPLE, layer="grid"), tmp_path / "g.geojson", layer="grid")
    raw = out.read_text()
    exported = json.loads(raw)
    assert "crs" not in exported and "name" not in exported
    assert shapely.LinearRing(exported["features"][0]["geometry"]["coordinates"][0]).is_ccw
    assert max(len(d) for d in re.findall(r"\d\.(\d+)", raw.split('"geometry"', 1)[1])) <= 7


# --------------------------------------------------------------------- Part 4 editing
def test_get_then_put_of_the_same_body_is_accepted(editable):
    c = editable.test_client()
    r = c.get("/collections/grid/items/540102001001002")
    sent = r.get_json()  # with derived properties and links, as every client sends it back
    saved = c.put(
        "/collections/grid/items/540102001001002",
        json=sent,
        headers={**_basic("ana"), "If-Match": r.headers["ETag"], "X-Reason": "round trip"},
    )
    assert saved.status_code == 200, saved.get_json()
    assert saved.headers["ETag"] != r.headers["ETag"]
    changed = dict(sent, properties={**sent["properties"], "density_per_km2": 1.0})
    refused = c.put(
        "/collections/grid/items/540102001001002",
        json=changed,
        headers={**_basic("ana"), "If-Match": saved.headers["ETag"], "X-Reason": "x"},
    )
    assert refused.status_code == 400 and "density_per_km2" in refused.get_json()["description"]


def test_patch_is_a_json_merge_patch(editable):
    c = editable.test_client()
    r = c.get("/collections/grid/items/540102001001002")
    before = r.get_json()
    patched = c.patch(
        "/collections/grid/items/540102001001002",
        json={"properties": {"households": 140, "name": "新名字"}},
        headers={**_basic("ana"), "If-Match": r.headers["ETag"], "X-Reason": "recount"},
    )
    assert patched.status_code == 200, patched.get_json()
    after = c.get("/collections/grid/items/540102001001002").get_json()
    assert after["properties"]["households"] == 140 and after["properties"]["name"] == "新名字"
    assert after["properties"]["population"] == before["properties"]["population"]
    assert after["geometry"] == before["geometry"]


def test_post_creates_and_delete_removes_with_roles_and_if_match(editable):
    c = editable.test_client()
    old = c.get("/collections/grid/items/540102001001002")
    feature = {
        "type": "Feature",
        "properties": {
            "parent_code": "540102001001",
            "name": "新网格",
            "households": 0,
            "population": 0,
        },
        "geometry": old.get_json()["geometry"],
    }
    assert c.post("/collections/grid/items", json=feature).status_code == 401
    refused = c.post(
        "/collections/grid/items", json=feature, headers={**_basic("ana"), "X-Reason": "new"}
    )
    assert refused.status_code == 422  # it overlaps the cell it copies
    made = c.post(
        "/collections/grid/items",
        json=feature,
        headers={**_basic("ana"), "X-Reason": "new", "X-Accept-Findings": "test"},
    )
    assert made.status_code == 201
    location = made.headers["Location"]
    assert location.startswith("http://localhost/collections/grid/items/540102001001")
    code = location.rsplit("/", 1)[1]
    got = c.get(f"/collections/grid/items/{code}")
    assert got.get_json()["properties"]["name"] == "新网格"
    url = f"/collections/grid/items/{code}"
    assert c.delete(url, headers={**_basic("ana"), "X-Reason": "x"}).status_code == 428
    stale = c.delete(url, headers={**_basic("ana"), "X-Reason": "x", "If-Match": '"grid:x:999"'})
    assert stale.status_code == 412
    gone = c.delete(
        url, headers={**_basic("ana"), "X-Reason": "gone", "If-Match": got.headers["ETag"]}
    )
    assert gone.status_code == 204
    assert c.get(url).status_code == 404
    history = c.get(f"/collections/grid/items/{code}/history").get_json()["revisions"]
    assert [r["after"] is None for r in history] == [False, True]


def test_delete_that_leaves_a_gap_needs_the_findings_accepted(editable):
    c = editable.test_client()
    r = c.get("/collections/grid/items/540102001001002")
    headers = {**_basic("ana"), "If-Match": r.headers["ETag"], "X-Reason": "merge later"}
    refused = c.delete("/collections/grid/items/540102001001002", headers=headers)
    assert refused.status_code == 422
    assert {f["rule"] for f in refused.get_json()["findings"]} == {"gap"}
    assert c.get("/collections/grid/items/540102001001002").status_code == 200


# --------------------------------------------------------------------- CORS, OpenAPI
def test_cors_is_read_only_and_off_unless_configured(client):
    assert "Access-Control-Allow-Origin" not in client.get("/collections").headers
    shared = create_app({"DATASET": str(SAMPLE), "CORS_ORIGINS": "*", "TESTING": True})
    c = shared.test_client()
    r = c.get("/collections", headers={"Origin": "http://other.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    pre = c.options(
        "/collections/grid/items/x",
        headers={"Origin": "http://other.example", "Access-Control-Request-Method": "PUT"},
    )
    assert "PUT" not in pre.headers.get("Access-Control-Allow-Methods", "")


def test_openapi_describes_every_endpoint_with_the_maximum_limit(client, sample_app):
    import web.features

    doc = client.get("/api").get_json()
    paths = set(doc["paths"])
    for rule in sample_app.url_map.iter_rules():
        if rule.endpoint in ("static", "pages.favicon"):
            continue
        templated = rule.rule.replace("<layer>", "{collectionId}").replace("<fid>", "{featureId}")
        templated = templated.replace("<int:change_id>", "{change_id}").replace("<code>", "{code}")
        templated = templated.replace("<tms>", "{tileMatrixSetId}").replace(
            "<int:z>", "{tileMatrix}"
        )
        templated = templated.replace("<int:row>", "{tileRow}").replace("<int:col>", "{tileCol}")
        templated = templated.replace("<uid>", "{uploadId}")
        assert templated in paths, rule.rule
    items = doc["paths"]["/collections/grid/items"]["get"]["parameters"]
    limit = next(p for p in items if p["name"] == "limit")
    assert limit["schema"]["maximum"] == web.features.MAX_LIMIT
    assert {"households", "parent_code", "filter", "crs", "bbox-crs"} <= {p["name"] for p in items}
    put = doc["paths"]["/collections/{collectionId}/items/{featureId}"]["put"]
    assert put["security"] == [{"session": []}]
    upload = doc["paths"]["/uploads"]["post"]
    assert list(upload["requestBody"]["content"]) == ["multipart/form-data"]
    assert upload["security"] == [{"session": []}] and "503" in upload["responses"]


def test_alignment_table_is_strict_json(client):
    def no_nan(name):
        raise AssertionError(f"{name} is not JSON")

    text = client.get("/alignment").get_data(as_text=True)
    tables = {t["layer"]: t for t in json.loads(text, parse_constant=no_nan)}
    assert tables["police_area"]["follows"] == "street"
    rows = tables["police_area"]["rows"]
    assert len(rows) == client.get("/collections/police_area").get_json()["numberOfFeatures"]
    first = next(r for r in rows if r["code"] == "540102PA01")
    assert first["matched"] == ["540102001"] and first["shared_pct"] == 100.0
    assert client.get("/alignment?layer=grid").status_code == 400
