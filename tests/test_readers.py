"""Import of users' files: formats, encodings, CRS checks, datum conversion."""

import json
import subprocess
import sys
import zipfile

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.chinacoords import wgs84_to_bd09, wgs84_to_gcj02
from layers.errors import InputError, LayerError
from layers.readers import read_layer_file
from tests.conftest import ROOT


def _chinese_grid(grid_layer):
    """The grid fixture with Chinese column names, as users' files have them."""
    return grid_layer.rename(
        columns={
            "code": "编码",
            "name": "名称",
            "parent_code": "社区编码",
            "households": "户数",
            "population": "人口",
        }
    )


def _write_gbk_shapefile(gdf, folder, cpg=False):
    path = folder / "grid.shp"
    gdf.to_file(path, encoding="gbk")
    if not cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
    return path


def test_gbk_shapefile_without_cpg_imports_correct_chinese(tmp_path, grid_layer):
    path = _write_gbk_shapefile(_chinese_grid(grid_layer), tmp_path)
    assert not path.with_suffix(".cpg").exists()
    gdf, report = read_layer_file(path, "grid")
    assert gdf["name"].tolist() == grid_layer["name"].tolist()
    assert gdf["households"].tolist() == [120, 480, 905, 60]
    assert report.encoding == "gb18030"
    assert any("GB18030/GBK" in n for n in report.notes)


def test_user_stated_encoding_is_used(tmp_path, grid_layer):
    path = _write_gbk_shapefile(_chinese_grid(grid_layer), tmp_path)
    gdf, report = read_layer_file(path, "grid", encoding="GBK")
    assert gdf["name"].iloc[2] == "鲁固第1网格" and report.encoding == "gbk"


def test_wrong_encoding_is_refused_not_stored_as_mojibake(tmp_path, grid_layer):
    path = _write_gbk_shapefile(_chinese_grid(grid_layer), tmp_path)
    with pytest.raises(InputError, match="garbled.*--encoding gbk"):
        read_layer_file(path, "grid", encoding="latin-1")
    with pytest.raises(InputError, match="not valid utf-8"):
        read_layer_file(path, "grid", encoding="utf-8")


def test_cpg_file_is_honoured_and_cut_utf8_field_names_survive(tmp_path, grid_layer):
    path = tmp_path / "grid.shp"
    _chinese_grid(grid_layer).to_file(path, encoding="utf-8")
    path.with_suffix(".cpg").write_text("UTF-8")
    # GDAL cut 社区编码 (12 bytes in UTF-8) to 10 bytes, splitting the last character.
    with pytest.raises(LayerError, match="parent_code.*the file has: .*社区编, "):
        read_layer_file(path, "grid")
    gdf, report = read_layer_file(path, "grid", field_map={"社区编": "parent_code"})
    assert gdf["name"].iloc[0] == "八廓第1网格" and report.encoding == "utf-8"


def test_zipped_shapefile(tmp_path, grid_layer):
    shp = _write_gbk_shapefile(
        _chinese_grid(grid_layer), tmp_path / "src" if (tmp_path / "src").mkdir() is None else None
    )
    archive = tmp_path / "grid.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in shp.parent.iterdir():
            z.write(f, f"网格/{f.name}")
    gdf, report = read_layer_file(archive, "grid")
    assert len(gdf) == 4 and gdf["name"].iloc[1] == "八廓第2网格"
    assert report.source == "grid.zip!grid.shp"


def test_projected_input_is_stored_geographic_with_areas_kept(tmp_path, grid_layer):
    path = tmp_path / "grid.gpkg"
    grid_layer.to_crs("EPSG:4539").to_file(path, layer="cells")
    gdf, report = read_layer_file(path, "grid")
    assert gdf.crs.to_epsg() == 4490
    areas = gdf.to_crs("EPSG:4539").area
    np.testing.assert_allclose(areas, 1_000_000, rtol=1e-6)
    assert any("EPSG:4490" in n for n in report.notes)


def test_multilayer_geopackage_needs_the_layer_named(tmp_path, grid_layer):
    path = tmp_path / "many.gpkg"
    grid_layer.to_file(path, layer="a")
    grid_layer.to_file(path, layer="b")
    with pytest.raises(InputError, match=r"several layers \(a, b\).*--source-layer"):
        read_layer_file(path, "grid")
    assert len(read_layer_file(path, "grid", source_layer="b")[0]) == 4


def test_missing_crs_is_refused_unless_stated(tmp_path, grid_layer):
    path = tmp_path / "grid.shp"
    grid_layer.to_file(path)
    path.with_suffix(".prj").unlink()
    with pytest.raises(LayerError, match="no coordinate reference system.*--crs EPSG:4490"):
        read_layer_file(path, "grid")
    gdf, _ = read_layer_file(path, "grid", crs="EPSG:4490")
    assert gdf.crs.to_epsg() == 4490


def _csv(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "posts.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_with_chinese_columns_in_gbk_needs_a_crs(tmp_path):
    text = "编码,名称,类型,经度,纬度\nPP1,八廓第1便民警务站,便民警务站,91.1332,29.6528\n"
    path = _csv(tmp_path, text, "gbk")
    with pytest.raises(LayerError, match="no coordinate reference system"):
        read_layer_file(path, "facility")
    gdf, report = read_layer_file(path, "facility", crs="EPSG:4326")
    assert gdf["name"].iloc[0] == "八廓第1便民警务站"
    assert gdf["kind"].iloc[0] == "police_post"
    assert gdf.geometry.iloc[0].equals(shapely.Point(91.1332, 29.6528))
    assert report.encoding == "gb18030"


def test_csv_keeps_leading_zeros_of_codes_and_reads_wkt(tmp_path):
    text = "code,name,kind,wkt\n007,甲,school,POINT (91.1 29.65)\n"
    gdf, _ = read_layer_file(_csv(tmp_path, "\ufeff" + text), "facility", crs="EPSG:4490")
    assert gdf["code"].iloc[0] == "007"


@pytest.mark.parametrize(
    "xy, message",
    [
        ((91.1, 120.0), "latitude 120 is beyond ±90"),
        ((29.65, 91.13), "look swapped"),
        ((500000.0, 3280000.0), "look like projected metres"),
    ],
)
def test_coordinates_that_cannot_be_degrees_are_refused(tmp_path, xy, message):
    path = _csv(tmp_path, f"code,name,kind,lon,lat\nA,甲,school,{xy[0]},{xy[1]}\n")
    with pytest.raises(LayerError, match=message):
        read_layer_file(path, "facility", crs="EPSG:4326")


def test_swapped_eastern_china_points_are_refused(tmp_path):
    path = _csv(tmp_path, "code,name,kind,lon,lat\nA,甲,school,39.9,116.4\n")
    with pytest.raises(LayerError, match="swapped"):
        read_layer_file(path, "facility", crs="EPSG:4326")


def test_degrees_labelled_as_gauss_kruger_metres_are_refused(tmp_path):
    path = _csv(tmp_path, "code,name,kind,x,y\nA,甲,school,91.1,29.6\n")
    with pytest.raises(LayerError, match="look like degrees"):
        read_layer_file(path, "facility", crs="EPSG:4539")


def test_gcj02_and_bd09_points_are_converted_to_wgs84(tmp_path):
    lon, lat = 91.1172, 29.6558  # Potala Palace, WGS 84
    glon, glat = wgs84_to_gcj02(lon, lat)
    blon, blat = wgs84_to_bd09(lon, lat)
    for (x, y), crs in [((glon, glat), "GCJ-02"), ((blon, blat), "BD-09")]:
        path = _csv(
            tmp_path, f"code,name,kind,lng,lat\nA,布达拉宫,school,{float(x)!r},{float(y)!r}\n"
        )
        gdf, report = read_layer_file(path, "facility", crs=crs)
        p = gdf.geometry.iloc[0]
        assert gdf.crs.to_epsg() == 4326
        # within 1 mm of the true WGS 84 position (1e-8 degree ≈ 1 mm)
        assert abs(p.x - lon) < 1e-8 and abs(p.y - lat) < 1e-8
        assert any("converted" in n for n in report.notes)
    # and the offset really is hundreds of metres, so not converting would be wrong
    d = gpd.GeoSeries([shapely.Point(lon, lat), shapely.Point(glon, glat)], crs=4326).to_crs(4539)
    assert 200 < d.iloc[0].distance(d.iloc[1]) < 800


def test_geojson_import(tmp_path, grid_layer):
    path = tmp_path / "grid.geojson"
    path.write_text(grid_layer.to_crs(4326).to_json(), encoding="utf-8")
    gdf, _ = read_layer_file(path, "grid")
    assert gdf["name"].tolist() == grid_layer["name"].tolist()


def test_cli_import_then_summary(tmp_path, grid_layer):
    src = _write_gbk_shapefile(_chinese_grid(grid_layer).rename(columns={"户数": "HU"}), tmp_path)
    dataset = tmp_path / "city.gpkg"
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "layers", *a],
        cwd=ROOT,  # noqa: E731
        capture_output=True,
        text=True,
    )
    bad = run("import", str(dataset), str(src), "--layer", "grid")
    assert bad.returncode == 2 and "households" in bad.stderr and "--field" in bad.stderr
    assert not dataset.exists()  # nothing stored from a refused import
    ok = run("import", str(dataset), str(src), "--layer", "grid", "--field", "HU=households")
    assert ok.returncode == 0, ok.stderr
    assert "4 features" in ok.stdout and "HU → households" in ok.stdout
    summary = run("summary", str(dataset), "--format", "json")
    info = json.loads(summary.stdout)
    grid = info["layers"]["grid"]
    assert info["metric_crs"] == "EPSG:4539"
    assert grid["features"] == 4 and grid["households"] == 1565
    assert grid["area_km2"] == pytest.approx(4.0, rel=1e-6)
