"""Hostile and broken input (issue 17): every bad file is refused with a message naming
the feature and what is wrong (exit status 2, no traceback, nothing stored), a full disk
says "disk full" and leaves the dataset as it was, every JSON written is strict, and no
import leaves its working folder behind."""

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import geopandas as gpd
import pyogrio
import pytest
import shapely

from geo.checker import check_dataset
from layers import cli, tempdirs
from layers.errors import DiskFull, InputError, LayerError
from layers.readers import read_layer_file
from layers.storage import open_store
from tests.conftest import ROOT
from tests.tilings import squares

# Library wording that must never reach a user.
RAW = ("Traceback", "LinearRing", "IllegalArgument", "GEOS", "OVERWRITE", "pyogrio", "Series")
SQUARE = [[91.10, 29.65], [91.11, 29.65], [91.11, 29.66], [91.10, 29.66], [91.10, 29.65]]
CODES = ("540102001001001", "540102001001002")


def _feature(code, ring, **extra):
    props = {"code": code, "name": f"网格{code[-1]}", "parent_code": "540102001001",
             "households": 10, "population": 30, **extra}  # fmt: skip
    return {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def _geojson(path, second_ring=SQUARE, **extra):
    """A two-cell GeoJSON whose second cell has ``second_ring`` and properties ``extra``."""
    feats = [_feature(CODES[0], SQUARE), _feature(CODES[1], second_ring, **extra)]
    # allow_nan: the hostile file holds the NaN a careless exporter writes.
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def _csv(path, wkt):
    path.write_text(
        "code,name,parent_code,households,population,wkt\n"
        f'{CODES[0]},a,540102001001,1,2,"POLYGON ((91.1 29.65, 91.11 29.65, 91.11 29.66, 91.1 29.65))"\n'
        f'{CODES[1]},b,540102001001,1,2,"{wkt}"\n',
        encoding="utf-8",
    )
    return path


LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
{entities}
]>
<ogr:FeatureCollection xmlns:ogr="http://ogr.maptools.org/" xmlns:gml="http://www.opengis.net/gml">
 <gml:featureMember><ogr:grid><ogr:geometryProperty><gml:Polygon><gml:outerBoundaryIs>
 <gml:LinearRing><gml:coordinates>91.1,29.65 91.11,29.65 91.11,29.66 91.1,29.65</gml:coordinates>
 </gml:LinearRing></gml:outerBoundaryIs></gml:Polygon></ogr:geometryProperty>
 <ogr:code>1</ogr:code><ogr:name>&lol9;</ogr:name></ogr:grid></gml:featureMember>
</ogr:FeatureCollection>
"""


def _laughs(path):
    ents = "\n".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    path.write_text(LAUGHS.format(entities=ents))
    return path


HOSTILE = {
    # name: (make the file, words the message must hold)
    "two-point ring": (
        lambda d: _geojson(d / "grid.geojson", [[91.1, 29.65], [91.11, 29.65]]),
        [CODES[1], "ring 1 has 2 points", "not closed"],
    ),
    "unclosed ring": (
        lambda d: _geojson(d / "grid.geojson", SQUARE[:-1]),
        [CODES[1], "not closed"],
    ),
    "unclosed ring in CSV WKT": (
        lambda d: _csv(d / "grid.csv", "POLYGON ((91.1 29.65, 91.11 29.65, 91.11 29.66))"),
        ["feature 2", CODES[1], "not closed"],
    ),
    "NaN coordinate": (
        lambda d: _geojson(d / "grid.geojson", [[91.1, 29.65], [float("nan"), 29.65]] + SQUARE[2:]),
        [CODES[1], "NaN"],
    ),
    "NaN coordinate in CSV WKT": (
        lambda d: _csv(
            d / "grid.csv", "POLYGON ((91.1 29.65, nan 29.65, 91.11 29.66, 91.1 29.65))"
        ),
        [CODES[1], "NaN"],
    ),
    "zero-area polygon": (
        lambda d: _geojson(
            d / "grid.geojson", [[91.1, 29.65], [91.11, 29.65], [91.12, 29.65], [91.1, 29.65]]
        ),
        [CODES[1], "no area"],
    ),
    "object as a name": (
        lambda d: _geojson(d / "grid.geojson", name={"zh": "网格", "en": "grid"}),
        ["'name'", "object or a list", CODES[1]],
    ),
    "infinite households": (
        lambda d: _geojson(d / "grid.geojson", households=float("inf")),
        ["'households'", "not a number", CODES[1]],
    ),
    "GML billion laughs named .geojson": (
        lambda d: _laughs(d / "grid.geojson"),
        ["grid.geojson", "XML", "not GeoJSON"],
    ),
    "GML named .gpkg": (
        lambda d: _laughs(d / "grid.gpkg"),
        ["grid.gpkg", "XML", "not GeoPackage"],
    ),
}


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "layers", *args], cwd=ROOT, capture_output=True, text=True
    )


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def dataset(tmp_path, grid_layer):
    """A GeoPackage holding a good grid layer, to show a refused import leaves it alone."""
    path = tmp_path / "city.gpkg"
    open_store(path).write_layer("grid", grid_layer)
    return path


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file_is_refused_naming_feature_and_problem(case, tmp_path, dataset):
    make, words = HOSTILE[case]
    src = make(tmp_path)
    before = _digest(dataset)
    started = time.perf_counter()
    run = _run("import", str(dataset), str(src), "--layer", "grid", "--crs", "EPSG:4490")
    assert time.perf_counter() - started < 30  # refused, not expanded or hung
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith("error: ")
    for word in words:
        assert word in run.stderr, (word, run.stderr)
    for raw in RAW:
        assert raw not in run.stderr, (raw, run.stderr)
    assert _digest(dataset) == before  # nothing stored


def test_refusals_read_in_chinese_too(tmp_path):
    src = _geojson(tmp_path / "grid.geojson", [[91.1, 29.65], [91.11, 29.65]])
    with pytest.raises(LayerError) as err:
        read_layer_file(src, "grid")
    zh = err.value.message("zh")
    assert CODES[1] in zh and "未闭合" in zh and "未导入" in zh
    src = _geojson(tmp_path / "grid.geojson", name={"zh": "网格"})
    with pytest.raises(LayerError) as err:
        read_layer_file(src, "grid")
    assert "对象或列表" in err.value.message("zh") and CODES[1] in err.value.message("zh")
    with pytest.raises(InputError) as err:
        read_layer_file(_laughs(tmp_path / "x.geojson"), "grid")
    assert "XML" in err.value.message("zh") and "不解析" in err.value.message("zh")


def test_polygon_zm_from_csv_wkt_is_stored_flat_with_a_note(tmp_path):
    src = _csv(
        tmp_path / "grid.csv",
        "POLYGON ZM ((91.1 29.65 3700 1, 91.11 29.65 3700 2, 91.11 29.66 3700 3, 91.1 29.65 3700 1))",
    )
    dataset = tmp_path / "city.gpkg"
    run = _run("import", str(dataset), str(src), "--layer", "grid", "--crs", "EPSG:4490")
    assert run.returncode == 0, run.stderr
    assert "dropped the heights (Z) and measures (M) of 1 feature(s)" in run.stdout
    stored = open_store(dataset).read_layer("grid")
    assert len(stored) == 2
    assert not shapely.has_z(stored.geometry.values).any()
    assert not shapely.has_m(stored.geometry.values).any()


def _shapefile_without_shx(folder, grid_layer):
    folder.mkdir()
    path = folder / "grid.shp"
    with pytest.warns(UserWarning):  # long column names are cut by the format
        grid_layer.to_file(path, encoding="utf-8")
    (folder / "grid.shx").unlink()
    return path


def test_missing_shx_is_restored_with_a_warning(tmp_path, grid_layer):
    src = _shapefile_without_shx(tmp_path / "user", grid_layer)
    before = sorted(p.name for p in src.parent.iterdir())
    dataset = tmp_path / "city.gpkg"
    run = _run(
        "import", str(dataset), str(src), "--layer", "grid", "--field", "parent_cod=parent_code"
    )
    assert run.returncode == 0, run.stderr
    assert "warning: grid.shx" in run.stdout and "rebuilt" in run.stdout
    assert sorted(p.name for p in src.parent.iterdir()) == before  # the user's folder untouched
    assert open_store(dataset).read_layer("grid")["code"].tolist() == grid_layer["code"].tolist()

    archive = tmp_path / "grid.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", src.parent)
    gdf, report = read_layer_file(archive, "grid", field_map={"parent_cod": "parent_code"})
    assert len(gdf) == len(grid_layer) and any(".shx" in w for w in report.warnings)


def test_nested_values_of_other_columns_are_kept_as_json_with_a_note(tmp_path):
    src = _geojson(tmp_path / "grid.geojson", tags={"楼栋": [1, 2]})
    gdf, report = read_layer_file(src, "grid")
    assert any("column 'tags'" in n and CODES[1] in n for n in report.notes)
    assert json.loads(gdf["tags"].iloc[1]) == {"楼栋": [1, 2]}


def test_zero_area_polygon_stored_elsewhere_is_invalid_in_the_check(tmp_path, grid_layer):
    """Validity is judged on the stored lon/lat: projected, the collinear points move off
    their line and the polygon would pass as a valid sliver."""
    flat = shapely.Polygon([(91.1, 29.65), (91.11, 29.66), (91.12, 29.67), (91.1, 29.65)])
    grid = grid_layer.copy()
    grid.loc[1, "geometry"] = flat
    report = check_dataset({"grid": grid})
    invalid = report.findings[report.findings["rule"] == "invalid_geometry"]
    assert [f for fs in invalid["features"] for f in fs] == [grid_layer["code"].iloc[1]]
    # It is drawn where it lies, in the report's metric CRS.
    where = gpd.GeoSeries(invalid.geometry.values, crs=report.metric_crs).to_crs(4490)
    assert where.iloc[0].distance(flat) < 1e-6


def _strict(text):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_check_json_is_strict_when_findings_have_missing_values(tmp_path):
    streets, communities, grids = squares(4, block=2)
    grids.loc[0, "parent_code"] = communities["code"].iloc[-1]  # a parent_mismatch …
    grids.loc[5, "geometry"] = grids.geometry.iloc[5].buffer(-5)  # … beside a gap: kind NaN
    store = open_store(tmp_path / "city.gpkg")
    for name, gdf in (("street", streets), ("community", communities), ("grid", grids)):
        store.write_layer(name, gdf.drop(columns=["col", "row"], errors="ignore").to_crs(4490))
    assert check_dataset(store.load()).findings["kind"].isna().any()
    run = subprocess.run(
        [sys.executable, "-m", "geo", "check", str(tmp_path / "city.gpkg"), "--format", "json"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    body = _strict(run.stdout)
    mismatch = [f for f in body["findings"] if f["rule"] == "parent_mismatch"]
    assert mismatch and mismatch[0]["kind"] is None
    summary = _run("summary", str(tmp_path / "city.gpkg"), "--format", "json")
    assert _strict(summary.stdout)["layers"]["grid"]["features"] == len(grids)


def test_revision_records_are_strict_json():
    from layers.storage.edits import encode

    assert _strict(encode({"households": float("nan"), "area": [float("inf"), 1.0]})) == {
        "households": None,
        "area": [None, 1.0],
    }


# ----------------------------------------------------------------------------- disk full


def _fail_like_gdal_on_a_full_disk(*args, **kwargs):
    raise pyogrio.errors.DataLayerError(
        "Layer grid already exists, CreateLayer failed. Use the layer creation option "
        "OVERWRITE=YES to replace it."
    )


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failure", ["gdal", "enospc"])
def test_full_disk_says_disk_full_and_keeps_the_dataset(
    failure, tmp_path, dataset, grid_layer, monkeypatch, capsys
):
    from layers import diskspace
    from layers.storage import geopackage

    src = tmp_path / "grid.geojson"
    src.write_text(grid_layer.to_crs(4326).to_json(), encoding="utf-8")
    before = _digest(dataset)
    if failure == "gdal":
        # What GDAL says when SQLite runs out of room deleting the old layer; the disk
        # then has less room than the write needs.
        monkeypatch.setattr(geopackage.pyogrio, "write_dataframe", _fail_like_gdal_on_a_full_disk)
        monkeypatch.setattr(diskspace, "free_bytes", lambda path: 4096)
    else:
        monkeypatch.setattr(geopackage.pyogrio, "write_dataframe", _enospc)
    # a new layer (another department's grid drawn like the base grid) is written whole
    assert cli.main(["import", str(dataset), str(src), "--layer", "grid_urban"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: disk full") and "unchanged" in err and str(dataset) in err
    assert "OVERWRITE" not in err and "already exists" not in err
    assert _digest(dataset) == before
    assert not list(dataset.parent.glob(f".{dataset.name}.tmp-*"))


def test_disk_full_error_has_chinese_and_its_own_status(tmp_path, grid_layer, monkeypatch):
    from layers.storage import geopackage

    monkeypatch.setattr(geopackage.pyogrio, "write_dataframe", _enospc)
    with pytest.raises(DiskFull) as err:
        open_store(tmp_path / "city.gpkg").write_layer("grid", grid_layer)
    assert err.value.status == 507 and err.value.code == "disk_full"
    assert err.value.message("zh").startswith("磁盘已满")
    assert not (tmp_path / "city.gpkg").exists()


def _can_mount_tmpfs():
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs unshare to mount a small tmpfs")
def test_really_full_disk(tmp_path, grid_layer):
    """On a real 700 KB file system: the second import of a 651-cell grid (a replace,
    written whole: the sample repeats codes) does not fit beside the copy, GDAL fails with its misleading 'already exists', the user reads 'disk
    full' and the stored file is unchanged."""
    sample = pyogrio.read_dataframe(ROOT / "data" / "lhasa.gpkg", layer="grid")
    src = tmp_path / "grid.geojson"
    src.write_text(sample.to_json(), encoding="utf-8")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = textwrap.dedent(f"""
        mount -t tmpfs -o size=700k tmpfs {mnt} || exit 99
        {sys.executable} -m layers import {mnt}/c.gpkg {src} --layer grid > /dev/null || exit 98
        sha256sum {mnt}/c.gpkg
        {sys.executable} -m layers import {mnt}/c.gpkg {src} --layer grid --mode replace
        echo "rc=$?"
        sha256sum {mnt}/c.gpkg
        ls -a {mnt}
    """)
    run = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True
    )
    out = run.stdout.splitlines()
    assert "rc=2" in out, run.stdout + run.stderr
    assert out[0].split()[0] == out[out.index("rc=2") + 1].split()[0]  # unchanged
    assert run.stderr.startswith("error: disk full"), run.stderr
    assert "OVERWRITE" not in run.stderr and "Traceback" not in run.stderr
    assert not [n for n in out if ".tmp-" in n]


# ------------------------------------------------------------------- import working folders


@pytest.fixture
def tmpdir_of_imports(tmp_path, monkeypatch):
    """The system temporary directory, for this test a folder of its own."""
    folder = tmp_path / "systemtmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _stale(parent, pid, age=3600):
    folder = parent / f"{tempdirs.PREFIX}{pid}-abc123"
    (folder / "grid").mkdir(parents=True)
    (folder / "grid" / "grid.shp").write_bytes(b"\0" * 1000)
    old = time.time() - age
    os.utime(folder, (old, old))
    return folder


def test_stale_import_folders_are_removed_by_the_next_import(
    tmpdir_of_imports, tmp_path, grid_layer
):
    dead = _stale(tmpdir_of_imports, _dead_pid())
    young = _stale(tmpdir_of_imports, _dead_pid(), age=10)  # may still be starting
    alive = _stale(tmpdir_of_imports, os.getppid())  # its process is running
    src = tmp_path / "grid.geojson"
    src.write_text(grid_layer.to_crs(4326).to_json(), encoding="utf-8")
    read_layer_file(src, "grid")
    assert not dead.exists()
    assert young.exists() and alive.exists()
    # The import's own folder is gone too: only the two kept ones are left.
    assert sorted(tmpdir_of_imports.iterdir()) == sorted([young, alive])


def test_finished_and_failed_imports_leave_no_folder(tmpdir_of_imports, tmp_path, grid_layer):
    good = tmp_path / "grid.zip"
    with pytest.warns(UserWarning):
        grid_layer.to_file(tmp_path / "grid.shp")
    shutil.make_archive(str(good.with_suffix("")), "zip", tmp_path, base_dir=None)
    read_layer_file(good, "grid", field_map={"parent_cod": "parent_code"}, source_layer="grid")
    assert list(tmpdir_of_imports.iterdir()) == []
    bad = _geojson(tmp_path / "bad.geojson", SQUARE[:-1])
    with pytest.raises(LayerError):
        read_layer_file(bad, "grid")
    assert list(tmpdir_of_imports.iterdir()) == []


def test_a_killed_import_is_cleaned_up_by_the_next(tmpdir_of_imports, tmp_path, grid_layer):
    code = (
        "import sys, time, tempfile; tempfile.tempdir = sys.argv[1]\n"
        "from layers.tempdirs import import_folder\n"
        "with import_folder() as d:\n"
        "    (d / 'grid.shp').write_bytes(b'x' * 100000); print(d, flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmpdir_of_imports)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    left = tmpdir_of_imports / os.path.basename(proc.stdout.readline().strip())
    proc.kill()  # SIGKILL: no finally runs
    proc.wait()
    assert left.exists()
    old = time.time() - 2 * tempdirs.STALE_AFTER
    os.utime(left, (old, old))
    src = tmp_path / "grid.geojson"
    src.write_text(grid_layer.to_crs(4326).to_json(), encoding="utf-8")
    read_layer_file(src, "grid")
    assert not left.exists() and list(tmpdir_of_imports.iterdir()) == []
