"""Service-site analysis on networks and cells whose answers are known by construction."""

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.access import Access, load_profiles

X0, Y0 = 480_000.0, 3_270_000.0  # EPSG:4539 metres near Lhasa
CRS = "EPSG:4539"


def _roads(*lines):
    return gpd.GeoDataFrame(
        {"name": [None] * len(lines), "class": "residential"},
        geometry=[shapely.LineString([(X0 + x, Y0 + y) for x, y in ln]) for ln in lines],
        crs=CRS,
    )


def _facilities(*rows):
    return gpd.GeoDataFrame(
        {"code": [r[0] for r in rows], "name": [r[0] for r in rows], "kind": [r[1] for r in rows]},
        geometry=[shapely.Point(X0 + r[2], Y0 + r[3]) for r in rows],
        crs=CRS,
    )


def _cells(*rows):
    """Square cells (code, x, y, size, households)."""
    return gpd.GeoDataFrame(
        {
            "code": [r[0] for r in rows],
            "name": [r[0] for r in rows],
            "parent_code": "c1",
            "households": [r[4] for r in rows],
            "population": [3 * r[4] for r in rows],
        },
        geometry=[
            shapely.box(X0 + r[1], Y0 + r[2], X0 + r[1] + r[3], Y0 + r[2] + r[3]) for r in rows
        ],
        crs=CRS,
    )


def _lonlat(x, y):
    p = gpd.GeoSeries([shapely.Point(X0 + x, Y0 + y)], crs=CRS).to_crs(4326).iloc[0]
    return p.x, p.y


@pytest.fixture
def cross():
    """A T of roads: y=0 from x=0 to 1000, x=500 from y=0 to 1000; a far island road."""
    roads = _roads([(0, 0), (1000, 0)], [(500, 0), (500, 1000)], [(5000, 5000), (5100, 5000)])
    fac = _facilities(("F", "police_post", 900, 10), ("ISL", "school", 5050, 5000))
    grid = _cells(("g1", 480, 580, 40, 100))
    return {"road": roads, "facility": fac, "grid": grid}


def test_walking_distance_follows_the_roads(cross):
    acc = Access(cross)
    lon, lat = _lonlat(500, 600)
    near = acc.nearest(lon, lat, kind="police_post")[0]
    # 600 m down the x=500 road, 400 m along y=0, then 10 m off the road to the post
    assert near["method"] == "network" and near["distance_m"] == pytest.approx(1010, abs=0.01)
    # on the same road segment the walk is direct: 100 m along it, 10 m to the post
    lon, lat = _lonlat(800, 0)
    assert acc.nearest(lon, lat, kind="police_post")[0]["distance_m"] == pytest.approx(
        110, abs=0.01
    )


def test_unreachable_is_explicit(cross):
    lon, lat = _lonlat(500, 600)
    school = Access(cross).nearest(lon, lat, kind="school")[0]
    assert school["distance_m"] is None and school["unreachable"] is True


def test_straight_line_without_roads(cross):
    acc = Access({k: v for k, v in cross.items() if k != "road"})
    lon, lat = _lonlat(500, 600)
    near = acc.nearest(lon, lat, kind="police_post")[0]
    assert near["method"] == "straight"
    assert near["distance_m"] == pytest.approx(np.hypot(400, 590), abs=0.1)


def test_coverage_spreads_households_uniformly():
    roads = _roads([(0, 0), (2000, 0)])
    fac = _facilities(("P", "police_post", 0, 0))
    # near: a cell hugging the road near the post; far: 1.5 km away; half: straddling 500 m
    grid = _cells(("near", 0, 0, 100, 120), ("far", 1500, 0, 100, 80), ("half", 400, 0, 200, 200))
    acc = Access({"road": roads, "facility": fac, "grid": grid})
    table, totals = acc.coverage("police_post")
    t = table.set_index("code")
    assert bool(t.loc["near", "covered"]) and t.loc["near", "uncovered_households"] == 0
    assert t.loc["near", "facilities"] == ["P"]
    assert not t.loc["far", "covered"] and t.loc["far", "uncovered_households"] == 80
    assert t.loc["far", "nearest_distance_m"] > 1500
    assert 0 < t.loc["half", "uncovered_households"] < 200  # part of it lies beyond 500 m
    assert (
        totals["uncovered_households"] == pytest.approx(t["uncovered_households"].sum())
        and totals["method"] == "network"
    )
    # what-if: a new post at the far cell covers exactly its 80 households
    _, what = acc.coverage("police_post", extra_sites=[_lonlat(1550, 0)])
    assert what["newly_covered_households"] == pytest.approx(80, abs=0.01)


def test_distances_are_radius_bounded_and_sparse():
    roads = _roads([(0, 0), (10_000, 0)])
    grid = _cells(*[(f"g{i}", i * 500, 0, 100, 10) for i in range(20)])
    fac = _facilities(("P", "police_post", 0, 0))
    acc = Access({"road": roads, "facility": fac, "grid": grid})
    within = acc._facility_demand(np.array([0]), 500.0)
    assert within.nnz < len(acc.demand) / 5  # only the pairs within 500 m are stored
    assert within.data.max() <= 500


def test_siting_covers_the_most_households_and_says_if_proven():
    roads = _roads([(0, 0), (3000, 0)])
    fac = _facilities(("P", "police_post", 0, 0))
    grid = _cells(("a", 0, 0, 100, 100), ("b", 1500, 0, 100, 300), ("c", 2800, 0, 100, 50))
    acc = Access({"road": roads, "facility": fac, "grid": grid})
    r = acc.site(
        "police_post",
        1,
        candidates=shapely.points([(X0 + 1550, Y0), (X0 + 2850, Y0), (X0 + 300, Y0)]),
    )
    assert r["proven_optimal"] and r["status"] == "Optimal"
    assert len(r["suggestions"]) == 1
    assert r["suggestions"][0]["newly_covered_households"] == pytest.approx(300, abs=0.01)
    lon, lat = _lonlat(1550, 0)
    assert r["suggestions"][0]["lon"] == pytest.approx(lon, abs=1e-6)
    cover_all = acc.site(
        "police_post",
        model="lscp",
        candidates=shapely.points([(X0 + 1550, Y0), (X0 + 2850, Y0), (X0 + 300, Y0)]),
    )
    assert len(cover_all["suggestions"]) == 2 and cover_all[
        "uncovered_households"
    ] == pytest.approx(0)


def test_lattice_candidates_lie_inside_the_grid():
    roads = _roads([(0, 0), (3000, 0)])
    fac = _facilities(("P", "police_post", 0, 0))
    grid = _cells(("a", 0, 0, 1000, 100), ("b", 2000, 0, 1000, 300))
    acc = Access({"road": roads, "facility": fac, "grid": grid})
    cand = acc.candidates("lattice", spacing=250)
    assert len(cand) == 32  # 4 × 4 per 1 km cell
    assert shapely.contains(shapely.union_all(acc.grid.geometry.values), cand).all()
    r = acc.site("police_post", 1, candidates="lattice")
    assert r["proven_optimal"] and r["suggestions"][0]["newly_covered_households"] > 0


def test_profiles_cite_their_sources():
    profiles = load_profiles()
    for kind in ("police_post", "health_center", "service_hall", "party_service_station", "school"):
        assert profiles[kind]["radius_m"] > 0 and len(profiles[kind]["source"]) > 40
    assert "GB 50180-2018" in profiles["health_center"]["source"]


def test_coverage_api_on_the_sample(client):
    body = client.get("/coverage?kind=police_post").get_json()
    assert body["totals"]["method"] == "network" and len(body["grids"]) == 651
    assert body["totals"]["uncovered_households"] == pytest.approx(
        sum(g["uncovered_households"] for g in body["grids"]), abs=1
    )
    assert "uncovered_households" in body["totals"] and body["profile"]["radius_m"] == 500
    near = client.get("/nearest?lon=91.1172&lat=29.6558&kind=police_post&k=3").get_json()
    assert len(near) == 3 and [n["distance_m"] for n in near] == sorted(
        n["distance_m"] for n in near
    )
    assert set(near[0]) >= {"code", "name", "kind", "distance_m", "method"}
    what = client.post(
        "/coverage/whatif", json={"kind": "police_post", "sites": [[91.1376, 29.6676]]}
    ).get_json()
    assert what["totals"]["newly_covered_households"] > 0 and what["newly_covered_cells"]
    assert (
        client.post("/coverage/whatif", json={"kind": "police_post", "sites": "x"}).status_code
        == 400
    )
    areas = client.get("/service_areas?kind=police_post").get_json()
    assert len(areas["features"]) == 160
    assert client.get("/coverage?kind=spaceship").status_code == 400


def test_route_follows_the_roads_and_matches_the_distance(cross):
    acc = Access(cross)
    lon, lat = _lonlat(500, 600)
    line = acc.route(lon, lat, "F")
    length = gpd.GeoSeries([line], crs=4326).to_crs(CRS).length.iloc[0]
    assert length == pytest.approx(1010, abs=0.05)
    corner = gpd.GeoSeries([shapely.Point(X0 + 500, Y0)], crs=CRS).to_crs(4326).iloc[0]
    assert line.distance(corner) < 1e-7  # it turns at the junction


def test_api_nearest_from_a_grid_cell_with_path_and_siting_export(client):
    near = client.get(
        "/nearest?layer=grid&code=540102003004003&kind=health_center&path=1"
    ).get_json()
    assert near[0]["kind"] == "health_center" and near[0]["path"]["type"] == "LineString"
    assert client.get("/nearest?layer=grid&code=nope").status_code == 404
    cov = client.get("/coverage?kind=police_post").get_json()
    assert len(cov["communities"]) == 50 and len(cov["streets"]) == 10
    assert sum(c["uncovered_households"] for c in cov["streets"]) == pytest.approx(
        cov["totals"]["uncovered_households"], abs=1
    )
    assert client.get("/siting?kind=police_post&candidates=moon").status_code == 400
    fc = client.get("/siting?kind=police_post&p=2&f=geojson").get_json()
    assert len(fc["features"]) == 2 and fc["features"][0]["properties"]["rank"] == 1
    assert "proven_optimal" in fc["features"][0]["properties"]


def test_precomputed_nearest_answers_like_a_search_per_point(sample_app):
    """The lookup's nearest facility of each kind comes from one multi-source Dijkstra per
    kind made at start (issue 17.3: a search per request took 90 ms and 11.6 req/s at 50
    connections); on 200 random points of the sample it names the same facility at the
    same walking distance (to 0.1 m) as a search from the point, and the same route."""
    from geo.access import SEARCH_LIMIT_M

    acc = sample_app.extensions["gridmap"].access()
    x0, y0, x1, y1 = sample_app.extensions["gridmap"].extent()
    rng = np.random.default_rng(7)
    checked = 0
    for lon, lat in zip(rng.uniform(x0, x1, 200), rng.uniform(y0, y1, 200)):
        pt = shapely.Point(*acc._to_metric.transform(lon, lat))
        for near in acc.nearest(lon, lat, paths=True):
            idx = acc._of_kind(near["kind"])
            d = acc._point_to_facilities(pt, idx, SEARCH_LIMIT_M)  # a search from the point
            best = idx[np.argmin(d)]
            if not np.isfinite(d.min()):
                assert near["distance_m"] is None and near["path"] is None
                continue
            assert near["distance_m"] == pytest.approx(d.min(), abs=0.1)
            assert str(acc.facilities["code"].iloc[best]) == near["code"] or np.isclose(
                d[idx == acc._by_code[near["code"]]][0], d.min(), atol=0.1
            )
            metric = shapely.transform(
                near["path"],
                lambda c: np.column_stack(acc._to_metric.transform(c[:, 0], c[:, 1])),
            )
            node = int(acc.fac_nodes[acc._by_code[near["code"]]])
            searched = acc.net.path(node, pt, SEARCH_LIMIT_M)  # the route by a search
            assert metric.length == pytest.approx(searched.length, abs=0.1)
            # the route drawn is the walk measured, bends of the road included
            assert metric.length == pytest.approx(near["distance_m"], abs=0.1)
            checked += 1
    assert checked > 500


def _strict(text: str):
    def refuse(token):
        raise AssertionError(f"{token} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_routes_as_json_text_are_the_routes(sample_app):
    """``paths="json"`` (how /lookup and /nearest answer: the walks' coordinates are
    written once and kept) gives exactly the coordinates of ``paths=True``, for points on
    and off the sample's roads, inside and far outside it; the answers are strict JSON."""
    acc = sample_app.extensions["gridmap"].access()
    x0, y0, x1, y1 = sample_app.extensions["gridmap"].extent()
    rng = np.random.default_rng(11)
    points = [*zip(rng.uniform(x0 - 0.1, x1 + 0.1, 300), rng.uniform(y0 - 0.1, y1 + 0.1, 300))]
    points += [(x0 - 3.0, y0 - 3.0), (-179.0, -80.0)]  # beyond 50 km; where EPSG:4539 breaks
    routes = unreachable = 0
    for lon, lat in points:
        for shape, text in zip(
            acc.nearest(lon, lat, paths=True), acc.nearest(lon, lat, paths="json")
        ):
            if shape["path"] is None:
                assert text["path"] is None
                unreachable += 1
                continue
            line = _strict(text["path"])
            assert line["type"] == "LineString"
            assert line["coordinates"] == shapely.get_coordinates(shape["path"]).tolist()
            routes += 1
        # and so for k > 1, answered by a search from the point
    lon, lat = points[0]
    for shape, text in zip(
        acc.nearest(lon, lat, kind="police_post", k=3, paths=True),
        acc.nearest(lon, lat, kind="police_post", k=3, paths="json"),
    ):
        assert (
            _strict(text["path"])["coordinates"] == shapely.get_coordinates(shape["path"]).tolist()
        )
    assert routes > 1000 and unreachable >= 12


def test_lookup_answers_strict_json_with_routes(client):
    """/lookup and /nearest put the routes' JSON text into their answers as it is."""
    doc = _strict(client.get("/lookup?lon=91.13&lat=29.65").get_data(as_text=True))
    assert doc["areas"]["grid"]["code"] == "540102006003003"
    assert {n["kind"] for n in doc["nearest"]} >= {"police_post", "health_center"}
    assert all(n["path"]["type"] == "LineString" for n in doc["nearest"])
    near = _strict(
        client.get("/nearest?lon=91.13&lat=29.65&k=2&kind=school&path=1").get_data(as_text=True)
    )
    assert len(near) == 2 and near[0]["distance_m"] <= near[1]["distance_m"]
    assert len(near[0]["path"]["coordinates"]) >= 2
    assert (
        "path" not in _strict(client.get("/nearest?lon=91.13&lat=29.65").get_data(as_text=True))[0]
    )
