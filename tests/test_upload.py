"""Bringing users' files into a dataset: the three modes and their diff, revisions and
revert, the command line's --mode, and the browser upload API (formats, mapping step,
GCJ-02 detection, limits, refusals that change nothing, who may see an upload)."""

import base64
import hashlib
import io
import json
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from geo.chinacoords import wgs84_to_gcj02
from geo.errors import InputError, StaleEdit
from geo.layerdiff import diff_layer
from layers import cli
from layers.editing import revert_change
from layers.errors import StorageError
from layers.importing import import_layer
from layers.readers import ImportLimits, read_layer_file
from layers.storage import open_store
from layers.storage.edits import WHOLE_LAYER
from tests.conftest import SAMPLE
from web import create_app
from web.auth import add_user

FIELDS = ["code", "name", "kind", "station"]


def _facilities(codes, x0=91.10, crs=4490):
    """Points 0.001° apart, one per code, all police posts."""
    n = len(codes)
    return gpd.GeoDataFrame(
        {"code": codes, "name": [f"站{c}" for c in codes], "kind": ["police_post"] * n,
         "station": [None] * n},
        geometry=shapely.points(x0 + 0.001 * np.arange(n), np.full(n, 29.65)),
        crs=crs,
    )  # fmt: skip


# --------------------------------------------------------------------- the diff
def test_each_mode_says_what_it_adds_removes_and_changes():
    old = _facilities(["a", "b", "c"])
    new = _facilities(["b", "c", "d"])  # b, c moved one place west: b at a's point …
    new.geometry = old.geometry.values[[1, 2]].tolist() + [shapely.Point(91.2, 29.65)]
    new.loc[1, "name"] = "renamed"
    replace = diff_layer(old, new, "replace", fields=FIELDS)
    assert (replace.added, replace.removed, replace.changed, replace.unchanged) == (
        ["d"],
        ["a"],
        ["c"],
        1,
    )
    assert list(replace.rows["code"]) == ["c", "d"]  # only what changes is written
    update = diff_layer(old, new, "update", fields=FIELDS)
    assert (update.added, update.removed, update.changed) == (["d"], [], ["c"])
    with pytest.raises(InputError, match="already holds .*b, c"):
        diff_layer(old, new, "append", fields=FIELDS)
    appended = diff_layer(old, _facilities(["x", "y"]), "append", fields=FIELDS)
    assert appended.added == ["x", "y"] and appended.changed == []


def test_a_polygon_read_back_in_another_ring_order_or_as_multipart_is_unchanged():
    square = shapely.Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    turned = shapely.Polygon([(1, 1), (1, 0), (0, 0), (0, 1)])  # clockwise, other start
    old = gpd.GeoDataFrame({"code": ["a", "b"]}, geometry=[square, square], crs=4326)
    new = gpd.GeoDataFrame(
        {"code": ["a", "b"]}, geometry=[turned, shapely.MultiPolygon([square])], crs=4326
    )
    d = diff_layer(old, new, "replace", fields=["code"])
    assert d.unchanged == 2 and not d.codes
    moved = new.copy()
    moved.geometry = [shapely.affinity.translate(square, 1e-7), square]  # about 1 cm
    assert diff_layer(old, moved, "update", fields=["code"]).changed == ["a"]


def test_repeated_codes_are_refused_by_name():
    with pytest.raises(InputError, match=r"codes repeat in the file \(a\)"):
        diff_layer(None, _facilities(["a", "b", "a"]), "replace", fields=FIELDS)


def test_update_keeps_the_fields_the_file_does_not_have():
    old = _facilities(["a", "b"])
    old["station"] = ["S1", "S2"]
    new = _facilities(["a", "b"]).drop(columns="station")
    new.loc[0, "name"] = "新名"
    d = diff_layer(old, new, "update", fields=FIELDS, given=["code", "name", "kind"])
    assert d.changed == ["a"] and d.rows["station"].tolist() == ["S1"]
    # replace: the layer becomes the file, stations and all
    assert diff_layer(old, new, "replace", fields=FIELDS).changed == ["a", "b"]


# --------------------------------------------------------------------- saving
def test_each_mode_is_one_revertible_change_on_each_backend(store):
    import_layer(store, "facility", _facilities(["a", "b", "c"]), mode=None,
                 author="ana", reason="first")  # fmt: skip
    assert sorted(store.read_layer("facility")["code"]) == ["a", "b", "c"]
    with pytest.raises(InputError, match="--mode"):  # never replaced without being said
        import_layer(store, "facility", _facilities(["z"]), mode=None, author="ana", reason="x")

    new = _facilities(["b", "c", "d"])
    new.loc[0, "name"] = "renamed"
    done = import_layer(store, "facility", new, mode="replace", author="ana", reason="resurvey")
    assert (done["added"], done["removed"], done["changed"], done["unchanged"]) == (1, 1, 2, 0)
    stored = store.read_layer("facility").set_index("code")
    assert sorted(stored.index) == ["b", "c", "d"] and stored.loc["b", "name"] == "renamed"
    revs = [r for r in store.revisions("facility") if r["change_id"] == done["change_id"]]
    assert {r["code"] for r in revs} == {"a", "b", "c", "d"}
    assert all(r["reason"] == "upload (replaced): resurvey" and r["author"] == "ana" for r in revs)
    assert next(r for r in revs if r["code"] == "a")["after"] is None  # removed

    revert_change(store, done["change_id"], author="ana", reason="wrong file", layer="facility")
    back = store.read_layer("facility").set_index("code")
    assert sorted(back.index) == ["a", "b", "c"] and back.loc["b", "name"] == "站b"

    upd = import_layer(store, "facility", _facilities(["c", "e"], x0=91.102), mode="update",
                       author="ana", reason="one more")  # fmt: skip
    assert (upd["added"], upd["changed"], upd["removed"], upd["unchanged"]) == (1, 0, 0, 1)
    assert sorted(store.read_layer("facility")["code"]) == ["a", "b", "c", "e"]
    with pytest.raises(InputError, match="changes nothing"):
        import_layer(store, "facility", _facilities(["e"], x0=91.103), mode="update",
                     author="ana", reason="again")  # fmt: skip


def test_a_new_layer_is_one_change_whose_revert_removes_it(store):
    import_layer(store, "street", _street(["s1"]), mode=None, author="ana", reason="start")
    first = import_layer(store, "facility", _facilities(["a", "b"]), mode=None, author="ana",
                         reason="new layer")  # fmt: skip
    assert first["revertible"] and first["added"] == 2
    assert first["whole"]["en"].startswith("a new layer")
    (rev,) = store.revisions("facility")
    assert (rev["id"], rev["code"], rev["before"], rev["after"]["features"]) == (
        first["change_id"],
        WHOLE_LAYER,
        None,
        2,
    )
    assert rev["reason"] == "upload (replaced, whole layer): new layer"
    assert store.layer_before(rev["id"]) is None  # there was no layer before

    undone = revert_change(store, first["change_id"], author="bo", reason="wrong city",
                           layer="facility")  # fmt: skip
    assert store.list_layers() == ["street"]  # the layer is gone, the street kept
    last = store.revisions("facility")[-1]
    assert (last["id"], last["before"], last["after"]) == (
        undone["change_id"],
        {"features": 2},
        None,
    )
    again = revert_change(store, undone["change_id"], author="bo", reason="it was right",
                          layer="facility")  # fmt: skip
    assert sorted(store.read_layer("facility")["code"]) == ["a", "b"] and again["change_id"]


def test_a_stale_preview_is_refused(store):
    import_layer(store, "facility", _facilities(["a", "b"]), mode=None, author="ana",
                 reason="new layer")  # fmt: skip
    basis = store.version()
    later = import_layer(store, "facility", _facilities(["c"], x0=91.2), mode="append",
                         author="bo", reason="meanwhile")  # fmt: skip
    with pytest.raises(StaleEdit, match="changed since the upload was previewed"):
        import_layer(store, "facility", _facilities(["d"], x0=91.3), mode="append",
                     author="ana", reason="late", basis=basis)  # fmt: skip
    with pytest.raises(StaleEdit, match="changed since the upload was previewed"):
        import_layer(store, "facility", _facilities(["d", "d"], x0=91.3), mode="replace",
                     author="ana", reason="late, whole", basis=basis)  # fmt: skip
    assert sorted(store.read_layer("facility")["code"]) == ["a", "b", "c"]
    revert_change(store, later["change_id"], author="ana", reason="undo", layer="facility")
    assert sorted(store.read_layer("facility")["code"]) == ["a", "b"]


def test_a_replace_whose_codes_repeat_is_one_change_reverted_whole(store):
    import_layer(store, "street", _street(["s1"]), mode=None, author="ana", reason="start")
    import_layer(store, "facility", _facilities(["a", "b"]), mode=None, author="ana", reason="1")
    moved = import_layer(store, "facility", _facilities(["b"], x0=91.3), mode="update",
                         author="ana", reason="b moved")  # fmt: skip
    kept = store.read_layer("facility")
    twice = _facilities(["a", "a", "c"])
    with pytest.raises(InputError, match=r"codes repeat in the file \(a\)"):
        import_layer(store, "facility", twice, mode="update", author="ana", reason="2")
    done = import_layer(store, "facility", twice, mode="replace", author="ana", reason="2")
    assert done["revertible"] and "codes repeat (a)" in done["whole"]["en"]
    assert sorted(store.read_layer("facility")["code"]) == ["a", "a", "c"]
    with pytest.raises(StorageError, match="did not write a layer whole"):
        store.layer_before(moved["change_id"])  # a feature's revision keeps no layer
    # the feature change before it cannot be reverted over it: the layer was rewritten
    with pytest.raises(StaleEdit, match="written whole since"):
        revert_change(store, moved["change_id"], author="ana", reason="x", layer="facility")
    revert_change(store, done["change_id"], author="ana", reason="wrong file", layer="facility")
    back = store.read_layer("facility")
    assert_geodataframe_equal(back, kept, check_less_precise=True)  # as it was, point for point
    revert_change(store, moved["change_id"], author="ana", reason="b was right",
                  layer="facility")  # fmt: skip
    assert store.read_layer("facility").geometry.x.round(3).tolist() == [91.1, 91.101]


def _street(codes):
    return gpd.GeoDataFrame(
        {"code": codes, "name": [f"街道{c}" for c in codes]},
        geometry=[shapely.box(91.0 + i, 29.0, 91.5 + i, 29.9) for i in range(len(codes))],
        crs=4490,
    )


def test_a_layer_without_codes_is_one_change_reverted_whole(store):
    import_layer(store, "street", _street(["s1"]), mode=None, author="ana", reason="start")
    roads = gpd.GeoDataFrame(
        {"name": ["北京路", None]},
        geometry=[shapely.LineString([(91.1, 29.6), (91.2, 29.6)]),
                  shapely.LineString([(91.1, 29.7), (91.2, 29.7)])],
        crs=4490,
    )  # fmt: skip
    import_layer(store, "road", roads, mode=None, author="ana", reason="roads")
    first = store.read_layer("road")
    done = import_layer(store, "road", roads.iloc[:1], mode="append", author="ana", reason="more")
    assert done == {**done, "revertible": True, "added": 1}
    assert "no codes" in done["whole"]["en"] and len(store.read_layer("road")) == 3
    later = import_layer(store, "road", roads, mode="replace", author="bo", reason="resurvey")
    with pytest.raises(StaleEdit, match="changed since change .* revert that first"):
        revert_change(store, done["change_id"], author="ana", reason="x", layer="road")
    assert len(store.read_layer("road")) == 2  # the refusal wrote nothing
    revert_change(store, later["change_id"], author="ana", reason="undo resurvey", layer="road")
    revert_change(store, done["change_id"], author="ana", reason="one too many", layer="road")
    assert_geodataframe_equal(store.read_layer("road"), first)
    with pytest.raises(InputError, match="cannot be updated by code"):
        import_layer(store, "road", roads, mode="update", author="ana", reason="x")


# --------------------------------------------------------------------- files
def _gbk_zipped_communities(tmp_path, rename: dict[str, str]):
    """The sample's communities as a zipped GBK shapefile without .cpg, Chinese column
    names, with the names in ``rename`` ({code: new name}) changed."""
    com = open_store(SAMPLE).read_layer("community")
    com["name"] = [rename.get(c, n) for c, n in zip(com["code"], com["name"])]
    com = com.rename(columns={"code": "编码", "name": "名称", "parent_code": "上级编码"})
    folder = tmp_path / "shp"
    folder.mkdir()
    com.to_file(folder / "社区.shp", encoding="gbk")
    (folder / "社区.cpg").unlink(missing_ok=True)
    out = tmp_path / "社区.zip"
    with zipfile.ZipFile(out, "w") as z:
        for part in folder.iterdir():
            z.write(part, part.name)
    return out, com


def test_xlsx_with_chinese_headers_and_a_chosen_sheet(tmp_path):
    fac = _facilities(["F1", "F2"], crs=4326)
    book = tmp_path / "设施.xlsx"
    with pd.ExcelWriter(book, engine="openpyxl") as xl:
        pd.DataFrame({"说明": ["另一张表"]}).to_excel(xl, sheet_name="说明", index=False)
        pd.DataFrame({"编码": ["F1", "F2"], "名称": ["一号", "二号"], "类型": ["便民警务站"] * 2,
                      "经度": fac.geometry.x, "纬度": fac.geometry.y}).to_excel(
            xl, sheet_name="设施", index=False)  # fmt: skip
    with pytest.raises(InputError, match="no coordinates"):  # the first sheet by default
        read_layer_file(book, "facility", crs="EPSG:4326")
    gdf, report = read_layer_file(book, "facility", crs="EPSG:4326", source_layer="设施")
    assert list(gdf["code"]) == ["F1", "F2"] and list(gdf["kind"]) == ["police_post"] * 2
    assert report.sheets == ["说明", "设施"] and report.given() == ["code", "name", "kind"]
    assert shapely.equals_exact(gdf.geometry.values, fac.geometry.values, 1e-12).all()


KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document>
<Schema name="posts" id="posts"><SimpleField name="编码" type="string"/>
<SimpleField name="类型" type="string"/></Schema>
<Placemark><name>一号站</name><ExtendedData><SchemaData schemaUrl="#posts">
<SimpleData name="编码">K1</SimpleData><SimpleData name="类型">便民警务站</SimpleData>
</SchemaData></ExtendedData><Point><coordinates>91.12,29.65</coordinates></Point></Placemark>
<Placemark><name>二号站</name><ExtendedData><SchemaData schemaUrl="#posts">
<SimpleData name="编码">K2</SimpleData><SimpleData name="类型">学校</SimpleData>
</SchemaData></ExtendedData><Point><coordinates>91.13,29.66</coordinates></Point></Placemark>
</Document></kml>"""


def test_kml_and_kmz_are_read_and_a_kml_with_a_dtd_is_refused_unparsed(tmp_path):
    kml = tmp_path / "站点.kml"
    kml.write_text(KML, encoding="utf-8")
    gdf, report = read_layer_file(kml, "facility")
    assert list(gdf["code"]) == ["K1", "K2"] and list(gdf["name"]) == ["一号站", "二号站"]
    assert list(gdf["kind"]) == ["police_post", "school"] and gdf.crs.to_epsg() == 4326
    assert "altitudeMode" not in report.columns  # GDAL's display columns, all empty
    kmz = tmp_path / "站点.kmz"
    with zipfile.ZipFile(kmz, "w") as z:
        z.writestr("doc.kml", KML)
    assert list(read_layer_file(kmz, "facility")[0]["code"]) == ["K1", "K2"]
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = tmp_path / "bomb.kml"
    bomb.write_text(
        f'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY l0 "ha">{laughs}]>'
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>&l9;</name>'
        "<Point><coordinates>91.1,29.6</coordinates></Point></Placemark></Document></kml>"
    )
    with pytest.raises(InputError, match="declares a DTD or entities"):
        read_layer_file(bomb, "facility")
    gml = tmp_path / "a.kml"
    gml.write_text('<?xml version="1.0"?><gml:FeatureCollection xmlns:gml="x"/>')
    with pytest.raises(InputError, match="no <kml> element"):
        read_layer_file(gml, "facility")


def test_limits_are_the_same_for_the_command_line(tmp_path):
    path = tmp_path / "f.geojson"
    _facilities(["a", "b", "c"]).to_file(path)
    with pytest.raises(InputError, match="more than the 2 one import may bring"):
        read_layer_file(path, "facility", limits=ImportLimits(max_features=2))
    with pytest.raises(InputError, match="bytes, more than the 100"):
        read_layer_file(path, "facility", limits=ImportLimits(max_bytes=100))


def test_the_command_line_says_the_mode(tmp_path, capsys):
    dataset = tmp_path / "city.gpkg"
    dataset.write_bytes(SAMPLE.read_bytes())
    src = tmp_path / "posts.geojson"
    _facilities(["N1", "N2"]).to_file(src)
    before = hashlib.sha256(dataset.read_bytes()).hexdigest()
    assert cli.main(["import", str(dataset), str(src), "--layer", "facility"]) == 2
    assert "--mode replace" in capsys.readouterr().err
    assert hashlib.sha256(dataset.read_bytes()).hexdigest() == before  # nothing written
    held = len(open_store(dataset).read_layer("facility"))
    assert cli.main(["import", str(dataset), str(src), "--layer", "facility", "--mode", "append",
                     "--reason", "two new posts"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "append: 2 added, 0 changed, 0 removed" in out and "(revertible)" in out
    assert len(open_store(dataset).read_layer("facility")) == held + 2
    assert cli.main(["import", str(dataset), str(src), "--layer", "facility", "--mode",
                     "append"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "already holds" in err and "错误：" in err and "已有" in err  # both languages
    other = tmp_path / "more.geojson"
    _facilities(["N3"], x0=91.2).to_file(other)
    assert cli.main(["import", str(dataset), str(other), "--layer", "facility", "--mode",
                     "append", "--lang", "zh"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "读取 1 个要素" in out and "append：新增 1" in out and "可撤销" in out, out
    roads = tmp_path / "roads.geojson"  # a layer without codes: written whole, says why
    gpd.GeoDataFrame({"name": ["新路"]}, geometry=[shapely.LineString([(91.1, 29.6), (91.2, 29.6)])],
                     crs=4490).to_file(roads)  # fmt: skip
    for lang, why in (
        ("en", "(revertible; this layer has no codes"),
        ("zh", "（可撤销；此图层没有编码"),
    ):
        assert cli.main(["import", str(dataset), str(roads), "--layer", "road", "--mode",
                         "append", "--reason", "新路", "--lang", lang]) == 0  # fmt: skip
        assert why in capsys.readouterr().out


# --------------------------------------------------------------------- the web API
def _basic(name):
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:long-secret".encode()).decode()}


@pytest.fixture
def planner_app(sample_dataset):
    app = create_app({"DATASET": sample_dataset, "SECRET_KEY": "upload-test"})
    store = app.extensions["gridmap"].store
    add_user(store, "ana", "planner", "long-secret")
    add_user(store, "bo", "planner", "long-secret")
    add_user(store, "vic", "viewer", "long-secret")
    return app


def _upload(c, files, user="ana", **form):
    data = {**form, "file": [(io.BytesIO(body), name) for name, body in files]}
    return c.post("/uploads", data=data, headers=_basic(user), content_type="multipart/form-data")


def test_a_gbk_shapefile_updates_by_code_and_is_reverted_in_the_browser_api(planner_app, tmp_path):
    c = planner_app.test_client()
    target = "540102001001"
    zipped, com = _gbk_zipped_communities(tmp_path, {target: "八廓新社区"})
    r = _upload(c, [(zipped.name, zipped.read_bytes())], layer="community")
    assert r.status_code == 201, r.get_json()
    b = r.get_json()
    assert b["encoding"] in ("gbk", "gb18030") and b["features"] == len(com)  # GB18030 ⊃ GBK
    assert b["field_map"] == {"编码": "code", "名称": "name", "上级编码": "parent_code"}
    assert b["mode"] is None  # the layer holds features: the planner must choose
    assert b["modes"]["update"]["changed"] == 1
    assert b["modes"]["update"]["codes"]["changed"] == [target]
    assert b["modes"]["update"]["names"]["changed"] == ["八廓新社区"]  # the file's name first
    assert b["modes"]["update"]["unchanged"] == len(com) - 1
    assert "refused" in b["modes"]["append"]
    assert b["preview"]["features"][0]["properties"]["name"]  # lon/lat GeoJSON to draw

    read = c.post(f"/uploads/{b['id']}/read", json={"layer": "community", "mode": "update"},
                  headers=_basic("ana"))  # fmt: skip
    assert read.status_code == 200 and read.get_json()["findings"]["count"] == 0
    body = {"layer": "community", "mode": "update"}
    no_reason = c.post(f"/uploads/{b['id']}/commit", json=body,
                       headers={**_basic("ana"), "If-Match": read.headers["ETag"]})  # fmt: skip
    assert no_reason.status_code == 400 and "原因" in no_reason.get_json()["message"]["zh"]
    done = c.post(f"/uploads/{b['id']}/commit", json={**body, "reason": "社区更名"},
                  headers={**_basic("ana"), "If-Match": read.headers["ETag"]})  # fmt: skip
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["changed"] == 1 and done.get_json()["revertible"]
    served = c.get(f"/collections/community/items?code={target}").get_json()["features"]
    assert served[0]["properties"]["name"] == "八廓新社区"  # the map shows it at once
    changes = c.get("/collections/community/changes").get_json()["changes"]
    assert changes[0]["reason"] == "upload (updated): 社区更名"
    undo = c.post(f"/collections/community/changes/{done.get_json()['change_id']}/revert",
                  json={"reason": "更名未批准"}, headers=_basic("ana"))  # fmt: skip
    assert undo.status_code == 200
    served = c.get(f"/collections/community/items?code={target}").get_json()["features"]
    original = open_store(SAMPLE).read_layer("community").set_index("code").loc[target, "name"]
    assert served[0]["properties"]["name"] == original
    # the upload is gone once committed
    assert c.post(f"/uploads/{b['id']}/read", json=body, headers=_basic("ana")).status_code == 404


def test_a_layer_written_whole_is_listed_and_reverted_in_the_browser_api(planner_app):
    c = planner_app.test_client()
    served = planner_app.extensions["gridmap"]
    before = served.stored["road"].copy()
    road = {
        "type": "Feature",
        "properties": {"name": "新修路", "class": "residential"},
        "geometry": {"type": "LineString", "coordinates": [[91.11, 29.65], [91.12, 29.65]]},
    }
    body = json.dumps({"type": "FeatureCollection", "features": [road]}).encode()
    b = _upload(c, [("新路.geojson", body)], layer="road").get_json()
    assert b["modes"]["append"]["revertible"] and "no codes" in b["modes"]["append"]["whole"]["en"]
    read = c.post(f"/uploads/{b['id']}/read", json={"layer": "road", "mode": "append"},
                  headers=_basic("ana"))  # fmt: skip
    done = c.post(f"/uploads/{b['id']}/commit",
                  json={"layer": "road", "mode": "append", "reason": "新路竣工"},
                  headers={**_basic("ana"), "If-Match": read.headers["ETag"]}).get_json()  # fmt: skip
    assert done["change_id"] and done["added"] == 1
    assert len(served.stored["road"]) == len(before) + 1  # the map shows it at once

    (change,) = c.get("/collections/road/changes").get_json()["changes"]
    assert change["change_id"] == done["change_id"]
    assert change["cells"] == [{**change["cells"][0], "code": "*", "status": "layer",
                                "features_before": len(before),
                                "features_after": len(before) + 1}]  # fmt: skip
    drawn = c.get(f"/collections/road/changes/{done['change_id']}",
                  headers={"Accept-Language": "zh-CN"})  # fmt: skip
    assert drawn.status_code == 400 and "整体重写了图层 road" in drawn.get_json()["message"]["zh"]

    undo = c.post(f"/collections/road/changes/{done['change_id']}/revert",
                  json={"reason": "录入有误"}, headers=_basic("bo"))  # fmt: skip
    assert undo.status_code == 200, undo.get_json()
    assert len(served.stored["road"]) == len(before)
    back = open_store(planner_app.config["DATASET"]).read_layer("road")
    assert back.geometry.geom_equals_exact(before.geometry, 0).all()
    again = c.post(f"/collections/road/changes/{done['change_id']}/revert",
                   json={"reason": "twice"}, headers=_basic("bo"))  # fmt: skip
    assert again.status_code == 412  # the layer is no longer as that change left it


def test_gcj02_points_are_detected_and_converted(planner_app):
    c = planner_app.test_client()
    roads = planner_app.extensions["gridmap"].stored["road"]
    on_roads = shapely.line_interpolate_point(roads.geometry.values[:40], 0.5, normalized=True)
    x, y = shapely.get_coordinates(on_roads).T
    gx, gy = wgs84_to_gcj02(x, y)  # as copied from AMap
    table = pd.DataFrame({"编码": [f"G{i}" for i in range(len(x))], "名称": "警务站",
                          "类型": "police_post", "lng": gx, "lat": gy})  # fmt: skip
    csv = table.to_csv(index=False).encode("utf-8")
    r = _upload(c, [("高德坐标.csv", csv)], layer="facility", crs="EPSG:4326")
    b = r.get_json()
    assert r.status_code == 201, b
    assert b["datum"]["suggested"] == "gcj02" and b["datum"]["against"] == "roads"
    assert b["datum"]["median_m"]["gcj02"] < 1 < 50 < b["datum"]["median_m"]["wgs84"]
    again = c.post(f"/uploads/{b['id']}/read",
                   json={"layer": "facility", "crs": "GCJ-02", "mode": "append"},
                   headers=_basic("ana")).get_json()  # fmt: skip
    assert again["datum"] is None and "converted GCJ02 coordinates to WGS 84" in again["notes"]
    assert "已将 GCJ02 坐标转换为 WGS 84" in again["notes_zh"]  # said in the page's language
    assert len(again["notes_zh"]) == len(again["notes"])
    got = np.array([f["geometry"]["coordinates"] for f in again["preview"]["features"]])
    metres = np.hypot((got[:, 0] - x) * 96_800, (got[:, 1] - y) * 111_000)
    assert metres.max() < 0.5  # back on the roads


def test_the_mapping_step_when_a_required_column_is_not_recognised(planner_app):
    c = planner_app.test_client()
    table = pd.DataFrame({"站点编号": ["M1"], "名称": ["一号站"], "类型": ["police_post"],
                          "经度": [91.12], "纬度": [29.65]})  # fmt: skip
    r = _upload(c, [("站点.csv", table.to_csv(index=False).encode())], layer="facility",
                crs="EPSG:4490")  # fmt: skip
    b = r.get_json()
    assert r.status_code == 400 and "code" in b["description"]
    assert b["columns"] == ["站点编号", "名称", "类型"]  # what the user maps
    assert any(f["name"] == "code" and f["required"] for f in b["fields"])
    mapped = c.post(f"/uploads/{b['upload']}/read",
                    json={"layer": "facility", "crs": "EPSG:4490", "fields": {"站点编号": "code"}},
                    headers=_basic("ana"))  # fmt: skip
    assert mapped.status_code == 200 and mapped.get_json()["field_map"]["站点编号"] == "code"


def _digest(app) -> str:
    """What the dataset holds, layer by layer (bytes of a GeoPackage may move with its
    journal; the data may not)."""
    store = app.extensions["gridmap"].store
    parts = [store.version()]
    for name in store.list_layers():
        gdf = store.read_layer(name)
        attributes = gdf.drop(columns=gdf.geometry.name).to_json()
        parts.append((name, attributes, b"".join(shapely.to_wkb(gdf.geometry.values))))
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def test_refused_uploads_change_nothing(planner_app, sample_dataset):
    c = planner_app.test_client()
    before = _digest(planner_app)
    gpkg = sample_dataset.endswith(".gpkg")
    raw = open(sample_dataset, "rb").read() if gpkg else None
    clash = _facilities(["PS002", "NEW9"])
    buf = io.BytesIO(clash.to_json().encode())
    r = _upload(c, [("posts.geojson", buf.getvalue())], layer="facility")
    b, etag = r.get_json(), r.headers["ETag"]
    url = f"/uploads/{b['id']}/commit"
    refusals = [
        (c.post(url, json={"layer": "facility", "mode": "append", "reason": "x"},
                headers={**_basic("ana"), "If-Match": etag}), 400),  # a code already held
        (c.post(url, json={"layer": "facility", "mode": "update", "reason": "x"},
                headers=_basic("ana")), 428),  # no If-Match
        (c.post(url, json={"layer": "facility", "mode": "update", "reason": "x"},
                headers={**_basic("bo"), "If-Match": etag}), 404),  # another planner's
        (c.post(url, json={"layer": "facility", "mode": "update", "reason": "x"},
                headers={**_basic("vic"), "If-Match": etag}), 403),  # a viewer
        (c.post(url, json={"layer": "facility", "mode": "update", "reason": "x"},
                headers={**_basic("ana"), "If-Match": '"upload:0.0"'}), 412),  # stale
    ]  # fmt: skip
    assert [r.status_code for r, _ in refusals] == [want for _, want in refusals], [
        r.get_json() for r, _ in refusals
    ]
    assert "已有" in refusals[0][0].get_json()["message"]["zh"]
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.geojson", b" " * (50 << 20))
    assert _upload(c, [("bomb.zip", bomb.getvalue())], layer="facility").status_code == 400
    assert _upload(c, [("x.exe", b"MZ")], layer="facility").status_code == 400
    assert _digest(planner_app) == before
    if gpkg:
        assert open(sample_dataset, "rb").read() == raw  # byte-identical


def test_upload_size_and_feature_limits(tmp_path):
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    app = create_app({"DATASET": str(path), "MAX_UPLOAD": 4096, "MAX_UPLOAD_FEATURES": 5})
    add_user(app.extensions["gridmap"].store, "ana", "planner", "long-secret")
    c = app.test_client()
    big = _facilities([f"X{i}" for i in range(60)]).to_json().encode()
    assert len(big) > 4096
    assert _upload(c, [("big.geojson", big)], layer="facility").status_code == 413
    six = _facilities([f"X{i}" for i in range(6)]).to_json().encode()
    r = _upload(c, [("six.geojson", six)], layer="facility")
    assert r.status_code == 400 and "more than the 5" in r.get_json()["description"]


def test_a_new_layer_from_an_upload_is_served_at_once(planner_app):
    c = planner_app.test_client()
    posts = _facilities(["H1", "H2", "H3"])
    posts["kind"] = "health_center"
    units = gpd.GeoDataFrame(
        {"code": ["U1"], "name": ["联户一"], "parent_code": ["540102001001001"]},
        geometry=[shapely.box(91.13, 29.65, 91.131, 29.651)], crs=4490,
    )  # fmt: skip
    store = planner_app.extensions["gridmap"].store
    if "household_unit" in store.list_layers():
        store.delete_layer("household_unit")
        planner_app.extensions["gridmap"]._load()
    r = _upload(c, [("units.geojson", units.to_json().encode())], layer="household_unit")
    b = r.get_json()
    assert r.status_code == 201 and b["mode"] == "replace" and b["held"] == 0
    done = c.post(f"/uploads/{b['id']}/commit",
                  json={"layer": "household_unit", "mode": "replace", "reason": "first units"},
                  headers={**_basic("ana"), "If-Match": r.headers["ETag"]})  # fmt: skip
    assert done.status_code == 200, done.get_json()
    items = c.get("/collections/household_unit/items").get_json()
    assert [f["properties"]["code"] for f in items["features"]] == ["U1"]
    assert json.loads(json.dumps(items))  # strict JSON


def _as_files(fmt: str, gdf: gpd.GeoDataFrame, tmp_path) -> list[tuple[str, bytes]]:
    """``gdf`` (lon/lat facilities) as a user's file(s) of format ``fmt``."""
    plain = pd.DataFrame({"编码": gdf["code"], "名称": gdf["name"], "类型": gdf["kind"],
                          "经度": gdf.geometry.x, "纬度": gdf.geometry.y})  # fmt: skip
    if fmt == "csv":
        return [("posts.csv", plain.to_csv(index=False).encode("gbk"))]
    if fmt == "xlsx":
        out = io.BytesIO()
        plain.to_excel(out, index=False)
        return [("posts.xlsx", out.getvalue())]
    if fmt == "geojson":
        return [("posts.geojson", gdf.to_json().encode())]
    if fmt == "kml":
        path = tmp_path / "posts.kml"
        gdf.to_file(path, driver="KML")
        return [(path.name, path.read_bytes())]
    folder = tmp_path / fmt
    folder.mkdir()
    if fmt == "gpkg":
        gdf.to_file(folder / "posts.gpkg", layer="posts")
        return [("posts.gpkg", (folder / "posts.gpkg").read_bytes())]
    gdf.to_file(folder / "posts.shp", encoding="gbk")
    (folder / "posts.cpg").unlink(missing_ok=True)
    parts = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
    if fmt == "shp parts":  # chosen together in the browser
        return parts
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, body in parts:
            z.writestr(name, body)
    return [("posts.zip", out.getvalue())]


@pytest.mark.parametrize("fmt", ["gpkg", "zip", "shp parts", "geojson", "kml", "csv", "xlsx"])
def test_every_format_reads_alike_through_the_api(fmt, tmp_path):
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    app = create_app({"DATASET": str(path)})
    add_user(app.extensions["gridmap"].store, "ana", "planner", "long-secret")
    posts = _facilities(["W1", "W2"], x0=91.12, crs=4326)
    posts["name"] = ["西一站", "西二站"]
    crs = {"crs": "EPSG:4326"} if fmt in ("csv", "xlsx") else {}
    r = _upload(app.test_client(), _as_files(fmt, posts, tmp_path), layer="facility", **crs)
    b = r.get_json()
    assert r.status_code == 201, b
    assert b["features"] == 2 and b["modes"]["append"]["added"] == 2
    names = [f["properties"]["name"] for f in b["preview"]["features"]]
    assert names == ["西一站", "西二站"]  # Chinese intact, whatever the encoding
    got = np.array([f["geometry"]["coordinates"] for f in b["preview"]["features"]])
    assert np.allclose(got, shapely.get_coordinates(posts.geometry.values), atol=1e-9)
