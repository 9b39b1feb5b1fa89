"""Both storage backends pass the same suite; a killed writer loses nothing."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import shapely

from layers.errors import StorageError
from layers.storage import GeoPackageStore, open_store
from tests.conftest import PG_URL, ROOT


def test_round_trip_keeps_codes_names_counts_geometry_and_crs(store, grid_layer):
    store.write_layer("grid", grid_layer)
    back = store.read_layer("grid")
    assert back["code"].tolist() == grid_layer["code"].tolist()
    assert back["name"].tolist() == ["八廓第1网格", "八廓第2网格", "鲁固第1网格", "鲁固第2网格"]
    assert back["households"].tolist() == [120, 480, 905, 60]
    assert back.crs.to_epsg() == 4490
    assert shapely.equals_exact(back.geometry.values, grid_layer.geometry.values, 1e-12).all()
    np.testing.assert_allclose(back.to_crs(4539).area, 1e6, rtol=1e-9)


def test_layers_listed_in_schema_order_replaced_and_deleted(store, grid_layer):
    assert store.list_layers() == []
    store.write_layer("grid", grid_layer)
    streets = grid_layer[["code", "name", "geometry"]].iloc[:1]
    store.write_layer("street", streets)
    assert store.list_layers() == ["street", "grid"]
    store.write_layer("grid", grid_layer.iloc[:2])
    assert len(store.read_layer("grid")) == 2
    store.delete_layer("street")
    assert store.list_layers() == ["grid"]
    assert len(store.load()["grid"]) == 2


def test_deleting_a_layer_keeps_accounts_history_and_the_revision_count(store, grid_layer):
    """Deleting one layer leaves everything else of the dataset: the other layers, the
    accounts, every revision (of the deleted layer too), and revision ids go on from the
    last one (an ETag is never reused)."""
    from layers.storage.edits import now
    from web.auth import add_user

    store.write_layer("grid", grid_layer)
    store.write_layer("street", grid_layer[["code", "name", "geometry"]].iloc[:1])
    add_user(store, "ana", "planner", "long-secret")
    record = {
        "layer": "street",
        "code": "x",
        "author": "ana",
        "at": now(),
        "reason": "r",
        "before": None,
        "after": None,
        "change_id": None,
        "accepted": None,
    }
    with store.edit() as e:
        first = e.add_revision(record)
    store.delete_layer("street")
    assert store.list_layers() == ["grid"]
    assert set(store.users()) == {"ana"}
    assert [r["id"] for r in store.revisions("street")] == [first]
    with store.edit() as e:
        assert e.add_revision({**record, "layer": "grid"}) == first + 1


def test_writes_keep_the_files_permissions(tmp_path, grid_layer):
    """A whole-layer write swaps in a private copy (0600); the file keeps the mode it had
    (a shared 0644 dataset stayed readable by the other accounts that read it), and a new
    file gets the umask's."""
    from web.auth import add_user

    path = tmp_path / "city.gpkg"
    store = GeoPackageStore(path)
    store.write_layer("grid", grid_layer)
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    os.chmod(path, 0o640)
    for write in (
        lambda: store.write_layer("grid", grid_layer.iloc[:2]),
        lambda: add_user(store, "ana", "planner", "long-secret-1"),
        lambda: store.write_layer("street", grid_layer.iloc[:1][["code", "name", "geometry"]]),
        lambda: store.delete_layer("street"),
    ):
        write()
        assert path.stat().st_mode & 0o777 == 0o640


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_missing_layer_names_what_is_there(store, grid_layer):
    store.write_layer("grid", grid_layer)
    with pytest.raises(StorageError, match="no layer 'street'; it has grid"):
        store.read_layer("street")


def test_refuses_unknown_layer_projected_or_crs_less_data(store, grid_layer):
    with pytest.raises(StorageError, match="not a gridmap layer"):
        store.write_layer("grids", grid_layer)
    with pytest.raises(StorageError, match="projected EPSG:4539"):
        store.write_layer("grid", grid_layer.to_crs(4539))
    with pytest.raises(StorageError, match="no CRS"):
        store.write_layer("grid", grid_layer.set_crs(None, allow_override=True))
    assert store.list_layers() == []


def test_schema_is_checked_before_anything_is_written(store, grid_layer):
    store.write_layer("grid", grid_layer)
    with pytest.raises(Exception, match="households"):
        store.write_layer("grid", grid_layer.drop(columns="households"))
    assert store.read_layer("grid")["households"].sum() == 1565


# --------------------------------------------------------------------------- killed writer

_WRITER = textwrap.dedent("""
    import sys, geopandas as gpd, numpy as np, shapely
    from layers.storage import open_store
    dataset, schema, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(dataset, **({"schema": schema} if schema != "-" else {}))
    x = np.arange(n) % 1000 * 0.0001 + 91.0
    y = np.arange(n) // 1000 * 0.0001 + 29.6
    gdf = gpd.GeoDataFrame({"code": [f"p{i}" for i in range(n)], "name": ["p"] * n},
                           geometry=shapely.points(x, y), crs=4490)
    for version in range(1, 1000):
        gdf["kind"] = f"v{version}"
        print("start", version, flush=True)
        store.write_layer("facility", gdf)
        print("done", version, flush=True)
""")


def _kill_mid_write(dataset, schema, n, delay, script=None):
    """Run a writer that rewrites a layer in a loop; SIGKILL it ``delay`` s into write 2."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script or _WRITER, str(dataset), schema, str(n)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = []
    while not lines or lines[-1] != "start 2":
        lines.append(proc.stdout.readline().strip())
        assert lines[-1], "writer died before starting"
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return [ln for ln in lines + proc.stdout.read().split("\n") if ln]


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.8])
def test_killed_writer_leaves_the_previous_layer_readable(store, delay):
    n = 60_000
    if isinstance(store, GeoPackageStore):
        dataset, schema = store.path, "-"
    else:
        dataset, schema = PG_URL, store.schema
    log = _kill_mid_write(dataset, schema, n, delay)
    done = max(int(ln.split()[1]) for ln in log if ln.startswith("done"))
    started = max(int(ln.split()[1]) for ln in log if ln.startswith("start"))
    assert started == done + 1, f"the writer was not killed during a write: {log}"

    layer = store.read_layer("facility")
    versions = set(layer["kind"])
    assert len(versions) == 1, f"a mix of versions was stored: {versions}"
    assert len(layer) == n
    # the last completed version, or the killed one if it died after committing
    assert int(versions.pop()[1:]) in (done, started)

    # the next writer works normally and clears any temporary copy left behind
    store.write_layer("facility", layer.iloc[:10])
    assert len(store.read_layer("facility")) == 10
    if isinstance(store, GeoPackageStore):
        assert not list(store.path.parent.glob(f".{store.path.name}.tmp-*"))


_EDITOR = textwrap.dedent("""
    import sys, geopandas as gpd, numpy as np, shapely
    from layers.storage import open_store
    dataset, schema, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(dataset, **({"schema": schema} if schema != "-" else {}))
    x = np.arange(n) % 1000 * 0.0001 + 91.0
    y = np.arange(n) // 1000 * 0.0001 + 29.6
    gdf = gpd.GeoDataFrame({"code": [f"p{i}" for i in range(n)], "name": ["p"] * n,
                            "kind": "v0"}, geometry=shapely.points(x, y), crs=4490)
    store.write_layer("facility", gdf)
    for version in range(1, 1000):
        gdf["kind"] = f"v{version}"
        print("start", version, flush=True)
        with store.edit() as e:  # every feature changed, in place, with a revision
            e.write_features("facility", gdf, list(gdf["code"]))
            e.add_revision({"layer": "facility", "code": "p0", "author": "k", "at": "now",
                            "reason": f"v{version}", "before": None, "after": None})
        print("done", version, flush=True)
""")


@pytest.mark.parametrize("delay", [0.02, 0.2])
def test_killed_editor_leaves_the_last_committed_edit(store, delay):
    """The incremental save (features written in place, in one transaction) killed at
    any moment: the layer is wholly one version, and its revisions match it."""
    n = 5_000
    if isinstance(store, GeoPackageStore):
        dataset, schema = store.path, "-"
    else:
        dataset, schema = PG_URL, store.schema
    log = _kill_mid_write(dataset, schema, n, delay, _EDITOR)
    done = max(int(ln.split()[1]) for ln in log if ln.startswith("done"))
    started = max(int(ln.split()[1]) for ln in log if ln.startswith("start"))
    assert started == done + 1, f"the editor was not killed during an edit: {log}"
    layer = store.read_layer("facility")
    versions = set(layer["kind"])
    assert len(versions) == 1, f"a mix of versions was stored: {sorted(versions)[:5]}"
    assert len(layer) == n
    version = int(versions.pop()[1:])
    assert version in (done, started)
    # the revisions committed with the features: one per stored version, no more
    assert [r["reason"] for r in store.revisions("facility")][-1] == f"v{version}"
    assert len(store.revisions("facility")) == version
    # and the next edit works
    with store.edit() as e:
        e.write_features("facility", layer.iloc[:1].assign(kind="after"), ["p0"])
    assert store.read_layer("facility").set_index("code").loc["p0", "kind"] == "after"


def test_open_store_picks_backend_by_url(tmp_path):
    assert type(open_store(tmp_path / "a.gpkg")).__name__ == "GeoPackageStore"
    with pytest.raises(StorageError, match="must end in .gpkg"):
        open_store(tmp_path / "a.sqlite")


@pytest.mark.postgis
def test_postgis_url_selects_postgis(postgis_url, pg_schema):
    store = open_store(postgis_url, schema=pg_schema)
    assert type(store).__name__ == "PostGISStore"
    from layers.storage.postgis import _engine_url

    shown = _engine_url("postgresql://root:secret@db.example/x").render_as_string(
        hide_password=True
    )
    assert "secret" not in shown and "***" in shown


def test_unreachable_postgis_is_a_clear_error():
    with pytest.raises(StorageError, match="cannot open PostGIS dataset"):
        open_store("postgresql://nobody@127.0.0.1:1/none")


def _finds_by_index(store, layer: str) -> bool:
    """Whether the database's own planner finds ``layer``'s features by code through an
    index (as a save does), rather than by reading the whole table."""
    if isinstance(store, GeoPackageStore):
        import sqlite3

        with sqlite3.connect(store.path) as con:
            plan = con.execute(
                f'EXPLAIN QUERY PLAN SELECT fid FROM "{layer}" WHERE code IN (?)', ["x"]
            ).fetchall()
        return any("INDEX" in step[-1] for step in plan)  # USING (COVERING) INDEX
    import sqlalchemy as sa

    with store.engine.begin() as con:
        con.execute(sa.text("SET LOCAL enable_seqscan = off"))  # a 4-row table: ask anyway
        plan = con.execute(
            sa.text(f'EXPLAIN SELECT _row FROM "{store.schema}"."{layer}" WHERE code = \'x\'')
        ).fetchall()
    return any("Index" in row[0] for row in plan)


def _drop_code_index(store, layer: str) -> None:
    if isinstance(store, GeoPackageStore):
        import sqlite3

        with sqlite3.connect(store.path) as con:
            con.execute(f'DROP INDEX "gridmap_{layer}_code"')
        return
    import sqlalchemy as sa

    with store.engine.begin() as con:
        con.execute(sa.text(f'DROP INDEX "{store.schema}"."idx_{layer}_code"'))
    store._indexed.clear()


def test_a_save_finds_its_features_by_index_not_by_scanning_the_layer(store, grid_layer):
    """150,000 cells: a scan costs each save tens of milliseconds. A layer written whole
    is indexed by code; one stored without the index gets it at its first save."""
    store.write_layer("grid", grid_layer)
    assert _finds_by_index(store, "grid")
    _drop_code_index(store, "grid")
    assert not _finds_by_index(store, "grid")
    changed = grid_layer.iloc[[1]].copy()
    changed["households"] = 481
    with store.edit() as e:
        e.write_features("grid", changed, ["540102001001002"])
    assert _finds_by_index(store, "grid")
    assert store.read_layer("grid")["households"].tolist() == [120, 481, 905, 60]
