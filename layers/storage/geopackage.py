"""GeoPackage storage: one SQLite file per dataset, one table per layer.

A write copies the file, writes the layer into the copy and renames the copy over the
original (an atomic rename on POSIX), under an exclusive lock so two writers cannot lose
each other's layers. A writer killed mid-write leaves only a temporary file behind, which
the next writer removes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import tempfile
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pyogrio

from layers.diskspace import estimated_bytes, writing
from layers.errors import StorageError
from layers.schema import conform
from layers.storage.base import LayerStore
from layers.storage.edits import REVISION_COLUMNS, Edit, decode, encode

__all__ = ["GeoPackageStore"]


class GeoPackageStore(LayerStore):
    """A dataset in one GeoPackage file. The file is created on the first write."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.location = str(self.path)
        if self.path.suffix.lower() != ".gpkg":
            raise StorageError(
                f"{self.path}: a dataset file must end in .gpkg (or give a postgresql:// URL)"
            )

    def list_layers(self) -> list[str]:
        if not self.path.exists():
            return []
        try:
            names = pyogrio.list_layers(self.path)[:, 0]
        except Exception as err:  # noqa: BLE001
            raise StorageError(f"{self.path} is not a readable GeoPackage: {err}") from None
        return self._ordered(names)

    def _read(self, layer: str) -> gpd.GeoDataFrame:
        gdf = pyogrio.read_dataframe(self.path, layer=layer)
        if gdf.geometry.name != "geometry":
            gdf = gdf.rename_geometry("geometry")
        return gdf

    @contextmanager
    def _locked_copy(self, copy: bool = True):
        """Yield a private copy of the file (or a fresh path) to write into, then swap it in."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # Under the lock no other writer is active: leftovers are from killed writers.
            for stale in self.path.parent.glob(f".{self.path.name}.tmp-*"):
                stale.unlink(missing_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.path.name}.tmp-", suffix=".gpkg", dir=self.path.parent
            )
            os.close(fd)
            tmp = Path(tmp)
            try:
                if copy and self.path.exists():
                    shutil.copyfile(self.path, tmp)
                else:
                    tmp.unlink()
                yield tmp
                if not tmp.exists():  # nothing left to store
                    self.path.unlink(missing_ok=True)
                    return
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            finally:
                tmp.unlink(missing_ok=True)

    def _write(self, layer: str, gdf: gpd.GeoDataFrame) -> None:
        # Room for the copy and the new layer; a full disk is said as such (layers.diskspace).
        need = (self.path.stat().st_size if self.path.exists() else 0) + estimated_bytes(gdf)
        with writing(self.path, layer, need), self._locked_copy() as tmp:
            pyogrio.write_dataframe(gdf, tmp, layer=layer, driver="GPKG", promote_to_multi=None)

    def delete_layer(self, layer: str) -> None:
        if layer not in self.list_layers():
            return
        keep = [name for name in self.list_layers() if name != layer]
        with self._locked_copy(copy=False) as tmp:
            for name in keep:
                pyogrio.write_dataframe(
                    self._read(name), tmp, layer=name, driver="GPKG", promote_to_multi=None
                )

    @contextmanager
    def edit(self):
        """An edit on a private copy of the file, swapped in only if the block succeeds."""
        with self._locked_copy() as tmp:
            yield _GeoPackageEdit(tmp)

    def revisions(self, layer: str, code: str | None = None) -> list[dict]:
        if not self.path.exists():
            return []
        return _GeoPackageEdit(self.path, writable=False).revisions(layer, code)

    def latest_revisions(self, layer: str) -> dict[str, int]:
        if not self.path.exists():
            return {}
        out = {}
        with _GeoPackageEdit(self.path, writable=False)._db() as con:
            out = dict(
                con.execute(
                    "SELECT code, MAX(id) FROM gridmap_revisions WHERE layer = ? GROUP BY code",
                    (layer,),
                ).fetchall()
            )
        return out

    def users(self) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        return _GeoPackageEdit(self.path, writable=False).users()


_TABLES = """
CREATE TABLE IF NOT EXISTS gridmap_revisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, layer TEXT NOT NULL, code TEXT NOT NULL,
    author TEXT NOT NULL, at TEXT NOT NULL, reason TEXT NOT NULL,
    before TEXT, after TEXT, accepted TEXT, change_id INTEGER);
CREATE INDEX IF NOT EXISTS gridmap_revisions_feature ON gridmap_revisions (layer, code);
CREATE TABLE IF NOT EXISTS gridmap_users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL);
"""


def _columns(con) -> set[str]:
    return {r[1] for r in con.execute("PRAGMA table_info(gridmap_revisions)")}


class _GeoPackageEdit(Edit):
    """Reads and writes one GeoPackage file (the private copy during an edit). Revision and
    user tables are plain SQLite tables beside the layers; GDAL ignores them."""

    def __init__(self, path: Path, *, writable: bool = True):
        self.path = path
        self.writable = writable

    @contextmanager
    def _db(self):
        """A connection: read-only on the live file, read-write on an edit's copy."""
        if self.writable:
            con = sqlite3.connect(self.path)
            con.executescript(_TABLES)
            if "change_id" not in _columns(con):  # datasets edited before change sets
                con.execute("ALTER TABLE gridmap_revisions ADD COLUMN change_id INTEGER")
        else:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        try:
            yield con
            con.commit()
        except sqlite3.OperationalError as err:
            if self.writable or "no such table" not in str(err):
                raise
        finally:
            con.close()

    def read_layer(self, layer):
        gdf = pyogrio.read_dataframe(self.path, layer=layer)
        return gdf.rename_geometry("geometry") if gdf.geometry.name != "geometry" else gdf

    def write_layer(self, layer, gdf):
        pyogrio.write_dataframe(
            conform(gdf, layer), self.path, layer=layer, driver="GPKG", promote_to_multi=None
        )

    def add_revision(self, record):
        with self._db() as con:
            cur = con.execute(
                "INSERT INTO gridmap_revisions (layer, code, author, at, reason, before, after,"
                " accepted, change_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record["layer"],
                    record["code"],
                    record["author"],
                    record["at"],
                    record["reason"],
                    encode(record.get("before")),
                    encode(record.get("after")),
                    record.get("accepted"),
                    record.get("change_id"),
                ),
            )
            rev = int(cur.lastrowid)
            if record.get("change_id") is None:
                con.execute("UPDATE gridmap_revisions SET change_id = id WHERE id = ?", (rev,))
            return rev

    def revisions(self, layer, code=None):
        args = [layer]
        where = "WHERE layer = ?"
        if code is not None:
            where += " AND code = ?"
            args.append(code)
        rows = []
        with self._db() as con:
            present = _columns(con)
            cols = ", ".join(c if c in present else f"NULL AS {c}" for c in REVISION_COLUMNS)
            sql = f"SELECT {cols} FROM gridmap_revisions {where} ORDER BY id"
            rows = [decode(dict(r)) for r in con.execute(sql, args)]
        return rows

    def users(self):
        out = {}
        with self._db() as con:
            out = {
                r["name"]: {"role": r["role"], "password_hash": r["password_hash"]}
                for r in con.execute("SELECT * FROM gridmap_users")
            }
        return out

    def put_user(self, name, role, password_hash):
        with self._db() as con:
            con.execute(
                "INSERT OR REPLACE INTO gridmap_users VALUES (?, ?, ?)", (name, role, password_hash)
            )
