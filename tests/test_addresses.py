"""Standard addresses (标准地址): found by part of their text, answered with who is
responsible there and the nearest facilities."""

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.addresses import SCAN_LIMIT, AddressIndex, normalise


def _addresses(texts, codes=None):
    n = len(texts)
    return gpd.GeoDataFrame(
        {"code": codes or [f"A{i}" for i in range(n)], "address": texts},
        geometry=shapely.points(np.arange(n), np.zeros(n)),
        crs=4326,
    )


def test_full_width_digits_case_and_spaces_do_not_matter():
    gdf = _addresses(["北京中路１２号", "Jiangsu Rd 5", "林廓北路 3 号"])
    index = AddressIndex(gdf)
    assert index.search("北京中路12号") == [0]
    assert index.search("jiangsu rd5") == [1]
    assert index.search("林廓北路3号") == [2]
    assert normalise("ＡＢ　１") == "ab1"


def test_every_word_must_match_in_any_order_and_codes_are_searched():
    gdf = _addresses(["北京中路12号", "北京东路12号", "北京中路14号"], ["X1", "X2", "540102001"])
    index = AddressIndex(gdf)
    assert index.search("12号 北京中路") == [0]
    assert index.search("540102") == [2]
    assert index.search("上海") == [] and index.search("   ") == []


def test_exact_then_prefix_then_shortest():
    gdf = _addresses(["城关区八廓街1号附3号", "八廓街1号附1号", "城关区八廓街1号", "八廓街1号"])
    assert AddressIndex(gdf).search("八廓街1号") == [3, 1, 2, 0]


def test_a_query_matching_everything_is_bounded():
    texts = [f"路{i}号" for i in range(SCAN_LIMIT * 2)]
    found = AddressIndex(_addresses(texts)).search("路", limit=10_000)
    assert len(found) == SCAN_LIMIT


def test_the_answer_says_who_is_responsible_and_the_nearest_post(client, sample_app):
    got = client.get("/addresses", query_string={"q": "林廓北路12号"}).get_json()
    assert got["results"], got
    hit = got["results"][0]
    assert hit["address"] == "拉萨市城关区林廓北路12号"
    point = shapely.Point(hit["lon"], hit["lat"])
    stored = sample_app.extensions["gridmap"].layers
    for layer in ("street", "community", "grid", "police_area", "police_beat"):
        gdf = stored[layer]
        holders = set(gdf["code"][gdf.geometry.contains(point)])
        assert hit["areas"][layer]["code"] in holders, layer  # worked out independently
    posts = stored["facility"][stored["facility"]["kind"] == "police_post"].to_crs(4539)
    metric = gpd.GeoSeries([point], crs=4326).to_crs(4539).iloc[0]
    nearest = posts["code"].iloc[int(np.argmin(posts.distance(metric)))]
    post = next(n for n in hit["nearest"] if n["kind"] == "police_post")
    assert post["code"] == nearest
    assert post["distance_m"] == pytest.approx(posts.distance(metric).min(), abs=0.5)


def test_the_search_box_finds_addresses_and_refuses_an_empty_query(client):
    results = client.get("/search", query_string={"q": "八廓3巷"}).get_json()["results"]
    assert results and all(r["layer"] == "address" for r in results[-3:])
    assert results[-1]["bbox"][0] == results[-1]["bbox"][2]  # a point
    assert client.get("/addresses", query_string={"q": " "}).status_code == 400
    assert client.get("/addresses", query_string={"q": "路", "limit": 99}).status_code == 400
