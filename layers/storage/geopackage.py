"""GeoPackage storage: one SQLite file per dataset, one table per layer.

Two ways to write, both under an exclusive lock beside the file (``.name.gpkg.lock``) so
that no two writers lose each other's work:

- A whole layer (an import, :meth:`GeoPackageStore.write_layer`) is written by GDAL into a
  copy of the file, which is then renamed over the original (atomic on POSIX). A writer
  killed mid-write leaves only a temporary file behind, which the next writer removes.
- An edit (:meth:`GeoPackageStore.edit`) changes the file in place in one SQLite
  transaction: only the features it touched, their revisions, the layer's R-tree and its
  metadata. SQLite's journal makes it all or nothing; a writer killed mid-edit leaves a
  journal that the next reader rolls back. Its cost is the change, not the file.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from layers.diskspace import estimated_bytes, writing
from layers.errors import StorageError
from layers.storage import gpkg_binary
from layers.storage.base import LayerStore
from layers.storage.edits import (
    REVISION_COLUMNS,
    Edit,
    Version,
    as_column_type,
    decode,
    encode,
    from_snapshot,
    replacements,
    sql_value,
    whole_revision,
    with_digest,
)
from layers.storage.edits import (
    live_features as _live,
)

# How long a writer or reader waits for another one's transaction, in seconds.
BUSY_TIMEOUT = 120

__all__ = ["GeoPackageStore"]


class GeoPackageStore(LayerStore):
    """A dataset in one GeoPackage file. The file is created on the first write."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.location = str(self.path)
        if self.path.suffix.lower() != ".gpkg":
            raise StorageError(
                f"{self.path}: a dataset file must end in .gpkg (or give a postgresql:// URL)",
                zh=f"{self.path}：数据集文件须以 .gpkg 结尾（或给出 postgresql:// 地址）",
            )

    def list_layers(self) -> list[str]:
        if not self.path.exists():
            return []
        try:
            names = pyogrio.list_layers(self.path)[:, 0]
        except Exception as err:  # noqa: BLE001
            raise StorageError(
                f"{self.path} is not a readable GeoPackage: {err}",
                zh=f"{self.path} 不是可读取的 GeoPackage：{err}",
            ) from None
        return self._ordered(names)

    def _read(self, layer: str, **filters) -> gpd.GeoDataFrame:
        gdf = pyogrio.read_dataframe(self.path, layer=layer, **filters)
        if gdf.geometry.name != "geometry":
            gdf = gdf.rename_geometry("geometry")
        return gdf

    def read_region(self, layer: str, bounds) -> gpd.GeoDataFrame:
        """Only the features meeting ``bounds``, found by the GeoPackage's R-tree."""
        if layer not in self.list_layers():
            return self.read_layer(layer)  # the StorageError naming the layers present
        return self._read(layer, bbox=tuple(float(b) for b in bounds))

    def read_codes(self, layer: str) -> pd.Series:
        if layer not in self.list_layers():
            return super().read_codes(layer)
        frame = pyogrio.read_dataframe(
            self.path, layer=layer, columns=["code"], read_geometry=False
        )
        return frame["code"]

    @contextmanager
    def _writer_lock(self):
        """Hold the dataset's writer lock; clear what killed writers left behind."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # Under the lock no other writer is active: leftovers are from killed writers.
            for stale in self.path.parent.glob(f".{self.path.name}.tmp-*"):
                stale.unlink(missing_ok=True)
            yield

    @contextmanager
    def _locked_copy(self, copy: bool = True):
        """Yield a private copy of the file (or a fresh path) to write into, then swap it in
        with the dataset's layer-write count moved on."""
        with self._writer_lock():
            layers_written = self.version().layers
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
                with _connect(tmp) as con:
                    _set_meta(con, "layers_written", layers_written + 1)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                # the file keeps its permissions (the copy is made private, 0600)
                if self.path.exists():
                    shutil.copymode(self.path, tmp)
                else:
                    os.chmod(tmp, 0o666 & ~_umask())
                os.replace(tmp, self.path)
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            finally:
                tmp.unlink(missing_ok=True)

    def _write(self, layer, gdf, record, unchanged_since):
        # Room for the copy and the new layer; a full disk is said as such (layers.diskspace).
        need = (self.path.stat().st_size if self.path.exists() else 0) + estimated_bytes(gdf)
        with writing(self.path, layer, need), self._locked_copy() as tmp:
            kept = self._as_was(layer, len(gdf), record, unchanged_since)
            pyogrio.write_dataframe(gdf, tmp, layer=layer, driver="GPKG", promote_to_multi=None)
            if "code" in gdf:
                with _connect(tmp) as con:
                    _index_codes(con, layer)
            return self._record(tmp, kept, layer)

    def _delete(self, layer, record, unchanged_since):
        keep = [name for name in self.list_layers() if name != layer]
        with self._locked_copy(copy=False) as tmp:
            kept = self._as_was(layer, None, record, unchanged_since)
            for name in keep:
                pyogrio.write_dataframe(
                    self._read(name), tmp, layer=name, driver="GPKG", promote_to_multi=None
                )
            if tmp.exists():  # and all that is not a layer: accounts, revisions, version
                with _connect(tmp) as con:
                    _copy_tables(con, self.path)
                return self._record(tmp, kept, None)
            return None  # the last layer gone: no dataset left to hold a revision

    def _as_was(self, layer, after, record, unchanged_since):
        """Under the writer lock: the revision recording a whole-layer write and the layer
        as it was (:func:`~layers.storage.edits.whole_revision`); None without ``record``."""
        if record is None:
            return None
        before = self._read(layer) if layer in self.list_layers() else None
        with self._reading() as r:
            return whole_revision(r, layer, before, after, record, unchanged_since)

    @staticmethod
    def _record(tmp: Path, kept, layer: str | None) -> int | None:
        """Write ``kept`` (:meth:`_as_was`) into the copy about to replace the file, in
        which ``layer`` was written (None: deleted)."""
        if kept is None:
            return None
        revision, data = kept
        written = None
        if layer is not None:
            written = pyogrio.read_dataframe(tmp, layer=layer)
            if written.geometry.name != "geometry":
                written = written.rename_geometry("geometry")
        revision = with_digest(revision, written)
        with _connect(tmp) as con:
            rev = _GeoPackageEdit(tmp, con).add_revision(revision)
            con.execute("INSERT INTO gridmap_snapshots VALUES (?, ?, ?)",
                        (rev, revision["layer"], data))  # fmt: skip
        return rev

    def layer_before(self, revision: int) -> gpd.GeoDataFrame | None:
        with self._reading() as r:
            row = None
            if r is not None and r.has("gridmap_snapshots"):
                row = r.con.execute(
                    "SELECT data FROM gridmap_snapshots WHERE revision = ?", (revision,)
                ).fetchone()
        return from_snapshot(revision, row)

    @contextmanager
    def edit(self):
        """An edit of the file in place, in one SQLite transaction: committed if the block
        succeeds, rolled back if it raises (or the process dies)."""
        with self._writer_lock():
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            try:
                con.row_factory = sqlite3.Row
                gpkg_binary.register(con)
                _create_tables(con)
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield _GeoPackageEdit(self.path, con)
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            finally:
                con.close()

    @contextmanager
    def _reading(self):
        """A read-only connection to the file (None when there is no file yet)."""
        if not self.path.exists():
            yield None
            return
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT)
        con.row_factory = sqlite3.Row
        try:
            yield _GeoPackageEdit(self.path, con)
        finally:
            con.close()

    def version(self) -> Version:
        with self._reading() as r:
            return r.version() if r else Version(0, 0)

    def revisions(self, layer: str, code: str | None = None) -> list[dict]:
        with self._reading() as r:
            return r.revisions(layer, code) if r else []

    def revisions_since(self, revision: int) -> list[dict]:
        with self._reading() as r:
            return r._select_revisions("WHERE id > ?", (revision,)) if r else []

    def latest_revisions(self, layer: str) -> dict[str, int]:
        with self._reading() as r:
            if r is None or not r.has("gridmap_revisions"):
                return {}
            return dict(
                r.con.execute(
                    "SELECT code, MAX(id) FROM gridmap_revisions WHERE layer = ? GROUP BY code",
                    (layer,),
                ).fetchall()
            )

    def users(self) -> dict[str, dict]:
        with self._reading() as r:
            return r.users() if r else {}


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` sets it, for every
    thread, while it reads); 0o022 where /proc does not say."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


_TABLES = """
CREATE TABLE IF NOT EXISTS gridmap_revisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, layer TEXT NOT NULL, code TEXT NOT NULL,
    author TEXT NOT NULL, at TEXT NOT NULL, reason TEXT NOT NULL,
    before TEXT, after TEXT, accepted TEXT, change_id INTEGER);
CREATE INDEX IF NOT EXISTS gridmap_revisions_feature ON gridmap_revisions (layer, code);
CREATE TABLE IF NOT EXISTS gridmap_users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gridmap_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS gridmap_snapshots (
    revision INTEGER PRIMARY KEY, layer TEXT NOT NULL, data BLOB);
"""


def _columns(con, table: str = "gridmap_revisions") -> list[str]:
    return [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]


def _create_tables(con) -> None:
    """The revision, user, version and kept-layer tables (GDAL ignores them), made on
    first edit."""
    con.executescript(_TABLES)
    if "change_id" not in _columns(con):  # datasets edited before change sets
        con.execute("ALTER TABLE gridmap_revisions ADD COLUMN change_id INTEGER")


def _copy_tables(con, source: Path) -> None:
    """Copy gridmap's own tables (accounts, revisions with their ids, version) from the
    GeoPackage ``source`` into the one ``con`` is open on (a rewritten copy of it)."""
    con.execute("ATTACH DATABASE ? AS source", (str(source),))
    try:
        present = {r[0] for r in con.execute("SELECT name FROM source.sqlite_master")}
        for table in ("gridmap_revisions", "gridmap_users", "gridmap_meta", "gridmap_snapshots"):
            if table in present:  # the columns both have (older files lack change_id)
                theirs = [r[1] for r in con.execute(f'PRAGMA source.table_info("{table}")')]
                cols = ", ".join(f'"{c}"' for c in _columns(con, table) if c in theirs)
                con.execute(
                    f"INSERT OR REPLACE INTO {table} ({cols}) SELECT {cols} FROM source.{table}"
                )
        con.commit()
    finally:
        con.execute("DETACH DATABASE source")


@contextmanager
def _connect(path: Path):
    """A read-write connection that commits when the block ends."""
    con = sqlite3.connect(path, timeout=BUSY_TIMEOUT)
    try:
        _create_tables(con)
        yield con
        con.commit()
    finally:
        con.close()


def _index_codes(con, layer: str) -> None:
    """Index a layer's codes, by which a save finds the features it replaces (without it,
    each save scans the table: 150,000 cells, 33 ms). Made once, kept in the file."""
    con.execute(f'CREATE INDEX IF NOT EXISTS "gridmap_{layer}_code" ON "{layer}" (code)')


def _set_meta(con, key: str, value: int) -> None:
    con.execute("INSERT OR REPLACE INTO gridmap_meta VALUES (?, ?)", (key, value))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


class _GeoPackageEdit(Edit):
    """Reads and writes of one GeoPackage through one SQLite connection (an edit's, in a
    transaction, or a read-only one). Layers are read by GDAL (the file as last committed)
    and their features written here, as GeoPackage blobs; revisions and users are plain
    SQLite tables beside the layers."""

    def __init__(self, path: Path, con: sqlite3.Connection):
        self.path, self.con = path, con
        self._written: set[str] = set()

    def has(self, table: str) -> bool:
        return bool(
            self.con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
        )

    def version(self) -> Version:
        layers = revision = 0
        if self.has("gridmap_meta"):
            row = self.con.execute(
                "SELECT value FROM gridmap_meta WHERE key = 'layers_written'"
            ).fetchone()
            layers = row[0] if row else 0
        if self.has("gridmap_revisions"):
            revision = self.con.execute("SELECT MAX(id) FROM gridmap_revisions").fetchone()[0]
        return Version(int(layers), int(revision or 0))

    def read_layer(self, layer):
        if layer in self._written:
            raise StorageError(
                f"read '{layer}' before writing it in the same edit",
                zh=f"同一次编辑中须先读取图层 {layer} 再写入",
            )
        gdf = pyogrio.read_dataframe(self.path, layer=layer)
        return gdf.rename_geometry("geometry") if gdf.geometry.name != "geometry" else gdf

    def _geometry_column(self, layer: str) -> tuple[str, str, int]:
        row = self.con.execute(
            "SELECT column_name, geometry_type_name, srs_id FROM gpkg_geometry_columns "
            "WHERE lower(table_name) = lower(?)",
            (layer,),
        ).fetchone()
        if row is None:
            raise StorageError(
                f"{self.path} has no layer '{layer}' to write features into",
                zh=f"{self.path} 中没有可写入要素的图层“{layer}”",
            )
        return row[0], row[1], int(row[2])

    def write_features(self, layer, features, codes):
        geom_col, type_name, srs_id = self._geometry_column(layer)
        features = _live(features, layer)
        table = set(_columns(self.con, layer))
        cols = [c for c in features.columns if c != features.geometry.name and c in table]
        codes = [str(c) for c in dict.fromkeys(codes)]
        if "code" in table:
            _index_codes(self.con, layer)
        old: dict[str, list[int]] = {}
        for chunk in range(0, len(codes), 500):
            part = codes[chunk : chunk + 500]
            marks = ",".join("?" * len(part))
            for fid, code in self.con.execute(
                f'SELECT fid, code FROM "{layer}" WHERE code IN ({marks}) ORDER BY fid', part
            ):
                old.setdefault(str(code), []).append(int(fid))
        values = features[cols].to_numpy(dtype=object)
        geoms = features.geometry.values
        names = ", ".join(f'"{c}"' for c in [*cols, geom_col])
        marks = ", ".join("?" * (len(cols) + 1))
        sets = ", ".join(f'"{c}" = ?' for c in [*cols, geom_col])

        def row(pos):
            blob = gpkg_binary.encode(as_column_type(geoms[pos], type_name), srs_id)
            return [sql_value(v) for v in values[pos]] + [blob]

        for action, fid, pos in replacements(old, features, codes):
            if action == "update":
                self.con.execute(f'UPDATE "{layer}" SET {sets} WHERE fid = ?', [*row(pos), fid])
            elif action == "delete":
                self.con.execute(f'DELETE FROM "{layer}" WHERE fid = ?', (fid,))
            else:
                self.con.execute(f'INSERT INTO "{layer}" ({names}) VALUES ({marks})', row(pos))
        self._touched(layer, features)

    def _touched(self, layer: str, features) -> None:
        """Record the change in the layer's metadata: its time, and its extent grown to
        hold the new features (GeoPackage ``gpkg_contents``)."""
        self._written.add(layer)
        live = features.geometry[~features.geometry.is_empty & features.geometry.notna()]
        self.con.execute(
            "UPDATE gpkg_contents SET last_change = ? WHERE lower(table_name) = lower(?)",
            (_now(), layer),
        )
        if len(live):
            x0, y0, x1, y1 = (float(v) for v in live.total_bounds)
            self.con.execute(
                "UPDATE gpkg_contents SET min_x = min(coalesce(min_x, ?), ?), "
                "min_y = min(coalesce(min_y, ?), ?), max_x = max(coalesce(max_x, ?), ?), "
                "max_y = max(coalesce(max_y, ?), ?) WHERE lower(table_name) = lower(?)",
                (x0, x0, y0, y0, x1, x1, y1, y1, layer),
            )

    def write_layer(self, layer, gdf):
        """The whole layer replaced, feature by feature, inside the edit's transaction
        (the layer must exist; new layers are written by :meth:`GeoPackageStore.write_layer`)."""
        self._geometry_column(layer)
        self.con.execute(f'DELETE FROM "{layer}"')
        self.write_features(layer, gdf, list(gdf["code"].astype(str)))

    def add_revision(self, record):
        cur = self.con.execute(
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
            self.con.execute("UPDATE gridmap_revisions SET change_id = id WHERE id = ?", (rev,))
        return rev

    def _select_revisions(self, where: str, args) -> list[dict]:
        if not self.has("gridmap_revisions"):
            return []
        present = set(_columns(self.con))
        cols = ", ".join(c if c in present else f"NULL AS {c}" for c in REVISION_COLUMNS)
        sql = f"SELECT {cols} FROM gridmap_revisions {where} ORDER BY id"
        return [decode(dict(r)) for r in self.con.execute(sql, args)]

    def revisions(self, layer, code=None):
        if code is None:
            return self._select_revisions("WHERE layer = ?", (layer,))
        return self._select_revisions("WHERE layer = ? AND code = ?", (layer, code))

    def revisions_after(self, layer, revision):
        return self._select_revisions("WHERE layer = ? AND id > ?", (layer, revision))

    def users(self):
        if not self.has("gridmap_users"):
            return {}
        return {
            r["name"]: {"role": r["role"], "password_hash": r["password_hash"]}
            for r in self.con.execute("SELECT * FROM gridmap_users")
        }

    def put_user(self, name, role, password_hash):
        self.con.execute(
            "INSERT OR REPLACE INTO gridmap_users VALUES (?, ?, ?)", (name, role, password_hash)
        )
