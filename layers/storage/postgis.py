"""PostGIS storage: one table per layer in a schema of a PostgreSQL database.

Selected with ``DATABASE_URL=postgresql://user@host/db``. A write loads the new layer into
a scratch table and swaps it for the old one in the same transaction (PostgreSQL's DDL is
transactional), under an advisory lock that serialises writers of the dataset; a writer
killed before commit leaves the old table untouched. An edit changes only the rows of the
features it touched, with their revisions, in one transaction under the same lock.
"""

from __future__ import annotations

import re
import uuid
import zlib
from contextlib import contextmanager

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from layers.errors import StorageError
from layers.schema import conform
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

__all__ = ["PostGISStore", "THEME_FIGURES"]

#: The theme figures the service derives for grid cells (:func:`geo.themes.grid_figures`,
#: rounded to 0.1) as a PostGIS tile computes them: property → (stored columns needed, SQL
#: on the table ``t``; ``:metric`` is the dataset's metric CRS). A test holds both equal.
THEME_FIGURES = {
    "density_per_km2": (
        {"population"},
        "round((t.population / NULLIF(ST_Area(ST_Transform(t.geometry, :metric)) / 1e6, 0))"
        "::numeric, 1)::float8",
    ),
    "floating_share_pct": (
        {"population", "floating_population"},
        "round((100.0 * t.floating_population / NULLIF(t.population, 0))::numeric, 1)::float8",
    ),
}

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _engine_url(url: str) -> sa.URL:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


class PostGISStore(LayerStore):
    """A dataset in a PostGIS database; ``schema`` holds its layer tables.

    The schema may also be given in the URL: ``postgresql://host/db?schema=lhasa``.
    """

    def __init__(self, url: str, *, schema: str | None = None):
        parsed = make_url(url)
        schema = schema or parsed.query.get("schema") or "public"
        url = parsed.difference_update_query(["schema"]).render_as_string(hide_password=False)
        if not _IDENT.match(schema):
            raise StorageError(
                f"schema name '{schema}' must be lower-case letters, digits, _",
                zh=f"模式名“{schema}”只能由小写字母、数字和下划线组成",
            )
        self.schema = schema
        self._columns: dict[str, set[str]] = {}  # table columns of each layer, for tiles
        self._indexed: set[str] = set()  # layers whose rows are indexed (_index_rows)
        # connections enough for a threaded service's requests at once (waitress: 16)
        self.engine = sa.create_engine(
            _engine_url(url), pool_pre_ping=True, pool_size=8, max_overflow=24
        )
        self.location = _engine_url(url).render_as_string(hide_password=True)
        try:
            with self.engine.begin() as con:
                has = con.execute(
                    sa.text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")
                ).scalar()
                if not has:
                    con.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
                self._lock(con)  # concurrent CREATE ... IF NOT EXISTS can still collide
                con.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                con.execute(
                    sa.text(
                        f'CREATE TABLE IF NOT EXISTS "{schema}".gridmap_revisions ('
                        "id BIGSERIAL PRIMARY KEY, layer TEXT NOT NULL, code TEXT NOT NULL, "
                        "author TEXT NOT NULL, at TEXT NOT NULL, reason TEXT NOT NULL, "
                        "before TEXT, after TEXT, accepted TEXT, change_id BIGINT)"
                    )
                )
                con.execute(
                    sa.text(  # datasets edited before change sets
                        f'ALTER TABLE "{schema}".gridmap_revisions '
                        "ADD COLUMN IF NOT EXISTS change_id BIGINT"
                    )
                )
                con.execute(
                    sa.text(
                        f'CREATE TABLE IF NOT EXISTS "{schema}".gridmap_users ('
                        "name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL)"
                    )
                )
                con.execute(
                    sa.text(
                        f'CREATE TABLE IF NOT EXISTS "{schema}".gridmap_meta ('
                        "key TEXT PRIMARY KEY, value BIGINT NOT NULL)"
                    )
                )
                con.execute(
                    sa.text(  # layers as they were before a recorded whole-layer write
                        f'CREATE TABLE IF NOT EXISTS "{schema}".gridmap_snapshots ('
                        "revision BIGINT PRIMARY KEY, layer TEXT NOT NULL, data BYTEA)"
                    )
                )
        except sa.exc.SQLAlchemyError as err:
            raise StorageError(
                f"cannot open PostGIS dataset {self.location}: "
                f"{err.orig if hasattr(err, 'orig') else err}",
                zh=f"无法打开 PostGIS 数据集 {self.location}："
                f"{err.orig if hasattr(err, 'orig') else err}",
            ) from None

    def list_layers(self) -> list[str]:
        with self.engine.connect() as con:
            names = (
                con.execute(
                    sa.text("SELECT f_table_name FROM geometry_columns WHERE f_table_schema = :s"),
                    {"s": self.schema},
                )
                .scalars()
                .all()
            )
        return self._ordered(names)

    def _read(self, layer: str) -> gpd.GeoDataFrame:
        with self.engine.connect() as con:
            return _features(con, self.schema, layer)

    def read_region(self, layer: str, bounds) -> gpd.GeoDataFrame:
        """Only the features meeting ``bounds``, found by the table's GiST index."""
        if layer not in self.list_layers():
            return self.read_layer(layer)  # the StorageError naming the layers present
        x0, y0, x1, y1 = (float(b) for b in bounds)
        table = f'"{self.schema}"."{layer}"'
        where = (
            f"geometry && ST_MakeEnvelope(:x0, :y0, :x1, :y1, "
            f"(SELECT ST_SRID(geometry) FROM {table} LIMIT 1))"
        )
        with self.engine.connect() as con:
            return _features(
                con, self.schema, layer, where, {"x0": x0, "y0": y0, "x1": x1, "y1": y1}
            )

    def vector_tile(
        self, layer, z, x, y, columns, extent, buffer, ids_are_codes=False, metric_srid=None
    ):
        """PostGIS builds the tile: ``ST_AsMVTGeom`` clips each feature met by the tile
        (grown by ``buffer`` units; found by the table's GiST index) to it and moves it to
        tile units, ``ST_AsMVT`` encodes them, in stored order. ``ids_are_codes``: no code
        repeats in the layer (the ids need no numbering)."""
        try:
            return self._vector_tile(layer, z, x, y, columns, extent, buffer, ids_are_codes,
                                     metric_srid)  # fmt: skip
        except sa.exc.ProgrammingError:  # the layer rewritten elsewhere: its columns again
            self._columns.pop(layer, None)
            return self._vector_tile(layer, z, x, y, columns, extent, buffer, ids_are_codes,
                                     metric_srid)  # fmt: skip

    def _table_columns(self, con, layer: str) -> set[str]:
        """The columns of ``layer``'s table, read once per table (a tile asks for them:
        one round trip fewer per tile); forgotten when this store rewrites the layer."""
        if layer in self._columns:
            return self._columns[layer]
        have = set(
            con.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = :s AND table_name = :t"
                ),
                {"s": self.schema, "t": layer},
            ).scalars()
        )
        if have:  # a table not there (yet) is asked about again
            self._columns[layer] = have
        return have

    def _vector_tile(self, layer, z, x, y, columns, extent, buffer, ids_are_codes, metric_srid):
        table = f'"{self.schema}"."{layer}"'
        with self.engine.connect() as con:
            have = self._table_columns(con, layer)
            if "geometry" not in have or "code" not in have:
                return None  # no such layer here (a findings layer: the service's own)
            cols = ["code"] + [
                c for c in columns if c in have and c not in ("geometry", "_row", "id", "code")
            ]
            picked = "".join(f', t."{c}"' for c in cols)
            for c, (needs, sql) in THEME_FIGURES.items():  # derived, as the service does
                if c in columns and c not in have and needs <= have and metric_srid:
                    cols.append(c)
                    picked += f', {sql} AS "{c}"'
            picked = picked.replace(":metric", str(int(metric_srid or 0)))
            if ids_are_codes:  # the id is the code: nothing to join (a tenth of the query)
                named, source, fid = "", "hit", "hit.code AS id"
            else:  # a repeated code's features numbered in stored order, as the service does
                named = (
                    "named AS (SELECT _row, CASE WHEN count(*) OVER (PARTITION BY code) > 1 "
                    "THEN code || '.' || row_number() OVER (PARTITION BY code ORDER BY _row) "
                    f"ELSE code END AS id FROM {table} WHERE code IN (SELECT code FROM hit)),"
                )
                source, fid = "hit JOIN named USING (_row)", "named.id"
            carried = "".join(f', hit."{c}"' for c in cols)
            row = con.execute(
                sa.text(
                    f"""
                    WITH tile AS (SELECT ST_TileEnvelope(:z, :x, :y) AS box),
                    wide AS (
                        SELECT box, ST_Transform(
                            ST_Expand(box, (ST_XMax(box) - ST_XMin(box)) * :buffer / :extent),
                            (SELECT ST_SRID(geometry) FROM {table} LIMIT 1)) AS area
                        FROM tile),
                    hit AS (
                        SELECT t._row, t.geometry{picked}
                        FROM {table} t, wide WHERE t.geometry && wide.area),
                    {named}
                    features AS (
                        SELECT ST_AsMVTGeom(ST_Transform(hit.geometry, 3857), wide.box,
                                            :extent, :buffer, true) AS geom,
                               {fid}{carried}
                        FROM {source}, wide ORDER BY hit._row)
                    SELECT ST_AsMVT(features.*, :name, :extent, 'geom'), count(*)
                    FROM features WHERE geom IS NOT NULL
                    """
                ),
                {"z": z, "x": x, "y": y, "buffer": buffer, "extent": extent, "name": layer},
            ).one()
        return bytes(row[0] or b""), int(row[1])

    def read_codes(self, layer: str):
        if layer not in self.list_layers():
            return super().read_codes(layer)
        with self.engine.connect() as con:
            rows = con.execute(sa.text(f'SELECT code FROM "{self.schema}"."{layer}" ORDER BY _row'))
            return pd.Series([r[0] for r in rows], name="code", dtype=object)

    def _lock(self, con) -> None:
        """Serialise writers of this dataset (released when the transaction ends)."""
        con.execute(
            sa.text("SELECT pg_advisory_xact_lock(:k)"),
            {"k": zlib.crc32(f"gridmap:{self.schema}".encode())},
        )

    def _swap(self, con, layer: str, gdf: gpd.GeoDataFrame | None) -> None:
        """Load ``gdf`` into a scratch table and put it in place of ``layer`` (or drop the
        layer when ``gdf`` is None), inside the caller's transaction."""
        self._columns.pop(layer, None)
        scratch = f"_{layer}_new_{uuid.uuid4().hex[:8]}"
        if gdf is not None:
            gdf = gdf.copy()
            gdf.insert(0, "_row", range(len(gdf)))
            gdf.to_postgis(scratch, con, schema=self.schema, index=False, chunksize=10_000)
        con.execute(sa.text(f'DROP TABLE IF EXISTS "{self.schema}"."{layer}"'))
        con.execute(
            sa.text(
                f"INSERT INTO \"{self.schema}\".gridmap_meta VALUES ('layers_written', 1) "
                "ON CONFLICT (key) DO UPDATE SET value = gridmap_meta.value + 1"
            )
        )
        if gdf is not None:
            con.execute(sa.text(f'ALTER TABLE "{self.schema}"."{scratch}" RENAME TO "{layer}"'))
            con.execute(
                sa.text(
                    f'ALTER INDEX IF EXISTS "{self.schema}"."idx_{scratch}_geometry" '
                    f'RENAME TO "idx_{layer}_geometry"'
                )
            )
            _index_rows(con, self.schema, layer, "code" in gdf)

    def _write(self, layer, gdf, record, unchanged_since):
        with self.engine.begin() as con:
            self._lock(con)
            kept = self._as_was(con, layer, len(gdf), record, unchanged_since)
            self._swap(con, layer, gdf)
            return self._record(con, kept, layer)

    def _delete(self, layer, record, unchanged_since):
        with self.engine.begin() as con:
            self._lock(con)
            kept = self._as_was(con, layer, None, record, unchanged_since)
            self._swap(con, layer, None)
            return self._record(con, kept, None)

    def _as_was(self, con, layer, after, record, unchanged_since):
        """Under the writer lock: the revision recording a whole-layer write and the layer
        as it was (:func:`~layers.storage.edits.whole_revision`); None without ``record``."""
        if record is None:
            return None
        e = _PostGISEdit(self, con)
        before = e.read_layer(layer) if layer in self.list_layers() else None
        return whole_revision(e, layer, before, after, record, unchanged_since)

    def _record(self, con, kept, layer: str | None) -> int | None:
        """Write ``kept`` (:meth:`_as_was`) in the transaction that wrote ``layer``
        (None: deleted it)."""
        if kept is None:
            return None
        revision, data = kept
        e = _PostGISEdit(self, con)
        revision = with_digest(revision, e.read_layer(layer) if layer else None)
        rev = e.add_revision(revision)
        con.execute(
            sa.text(f'INSERT INTO "{self.schema}".gridmap_snapshots VALUES (:r, :l, :d)'),
            {"r": rev, "l": revision["layer"], "d": data},
        )
        return rev

    def layer_before(self, revision: int) -> gpd.GeoDataFrame | None:
        with self.engine.begin() as con:
            row = con.execute(
                sa.text(f'SELECT data FROM "{self.schema}".gridmap_snapshots WHERE revision = :r'),
                {"r": revision},
            ).first()
        return from_snapshot(revision, row)

    @contextmanager
    def edit(self):
        """An edit in one transaction under the dataset's advisory lock."""
        with self.engine.begin() as con:
            self._lock(con)
            yield _PostGISEdit(self, con)

    def revisions(self, layer: str, code: str | None = None) -> list[dict]:
        with self.engine.begin() as con:
            return _PostGISEdit(self, con).revisions(layer, code)

    def revisions_since(self, revision: int) -> list[dict]:
        with self.engine.begin() as con:
            return _PostGISEdit(self, con)._select_revisions("id > :rev", {"rev": revision})

    def version(self) -> Version:
        with self.engine.begin() as con:
            return _PostGISEdit(self, con).version()

    def latest_revisions(self, layer: str) -> dict[str, int]:
        with self.engine.begin() as con:
            rows = con.execute(
                sa.text(
                    f'SELECT code, MAX(id) FROM "{self.schema}".gridmap_revisions '
                    "WHERE layer = :layer GROUP BY code"
                ),
                {"layer": layer},
            ).all()
        return {code: int(rev) for code, rev in rows}

    def users(self) -> dict[str, dict]:
        with self.engine.begin() as con:
            return _PostGISEdit(self, con).users()


def _features(con, schema: str, layer: str, where: str = "TRUE", params=None) -> gpd.GeoDataFrame:
    """The features of ``layer`` (``where`` holds, with ``params``) in stored order, as
    :func:`geopandas.read_postgis` reads them: the geometry as WKB parsed all at once
    (``read_postgis`` parses each row's hex text in Python: 150,000 cells, 5 s of a 6 s
    read), the CRS of the table's geometry column."""
    columns = (
        con.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
            ),
            {"s": schema, "t": layer},
        )
        .scalars()
        .all()
    )
    srid = con.execute(
        sa.text(
            "SELECT srid FROM geometry_columns WHERE f_table_schema = :s "
            "AND f_table_name = :t AND f_geometry_column = 'geometry'"
        ),
        {"s": schema, "t": layer},
    ).scalar()
    others = [f'"{c}"' for c in columns if c not in ("geometry", "_row")]
    result = con.execute(
        sa.text(
            f"SELECT {', '.join([*others, 'ST_AsBinary(geometry) AS geometry'])} "
            f'FROM "{schema}"."{layer}" WHERE {where} ORDER BY _row'
        ),
        params or {},
    )
    keys = list(result.keys())
    rows = [tuple(row) for row in result.fetchall()]  # plain tuples: pandas reads SQLAlchemy
    # rows one attribute look-up at a time (150,000 cells: 1.1 s of the read)
    frame = pd.DataFrame.from_records(rows, columns=keys, coerce_float=True)
    wkb = np.array([None if g is None else bytes(g) for g in frame.pop("geometry")], dtype=object)
    return gpd.GeoDataFrame(
        frame, geometry=shapely.from_wkb(wkb), crs=srid if srid and srid > 0 else None
    )


def _index_rows(con, schema: str, layer: str, coded: bool) -> None:
    """Index a layer's row keys and codes, by which a save finds the features it replaces
    (without them each save scans the table: 150,000 cells, tens of ms)."""
    t = f'"{schema}"."{layer}"'
    con.execute(sa.text(f'CREATE INDEX IF NOT EXISTS "idx_{layer}_row" ON {t} (_row)'))
    if coded:
        con.execute(sa.text(f'CREATE INDEX IF NOT EXISTS "idx_{layer}_code" ON {t} (code)'))


class _PostGISEdit(Edit):
    def __init__(self, store: PostGISStore, con):
        self.store, self.con, self.s = store, con, store.schema

    def read_layer(self, layer):
        return _features(self.con, self.s, layer)

    def write_layer(self, layer, gdf):
        self.store._swap(self.con, layer, conform(gdf, layer))

    def version(self):
        layers = self.con.execute(
            sa.text(f"SELECT value FROM \"{self.s}\".gridmap_meta WHERE key = 'layers_written'")
        ).scalar()
        revision = self.con.execute(
            sa.text(f'SELECT MAX(id) FROM "{self.s}".gridmap_revisions')
        ).scalar()
        return Version(int(layers or 0), int(revision or 0))

    def write_features(self, layer, features, codes):
        """Update, delete and insert only the rows of these codes (``_row`` keeps the
        stored order: an updated feature keeps its place, a new one goes last)."""
        t = f'"{self.s}"."{layer}"'
        kind = self.con.execute(
            sa.text(
                "SELECT type, srid FROM geometry_columns WHERE f_table_schema = :s "
                "AND f_table_name = :t AND f_geometry_column = 'geometry'"
            ),
            {"s": self.s, "t": layer},
        ).first()
        if kind is None:
            raise StorageError(
                f"{self.store.location} has no layer '{layer}' to write into",
                zh=f"{self.store.location} 中没有可写入的图层“{layer}”",
            )
        type_name, srid = kind
        features = _live(features, layer)
        table = {
            r[0]
            for r in self.con.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = :s AND table_name = :t"
                ),
                {"s": self.s, "t": layer},
            )
        }
        cols = [c for c in features.columns if c != features.geometry.name and c in table]
        codes = [str(c) for c in dict.fromkeys(codes)]
        if layer not in self.store._indexed:  # a layer stored before indexes were made
            _index_rows(self.con, self.s, layer, "code" in table)
            self.store._indexed.add(layer)
        old: dict[str, list[int]] = {}
        rows = self.con.execute(
            sa.text(f"SELECT _row, code FROM {t} WHERE code = ANY(:codes) ORDER BY _row"),
            {"codes": codes},
        )
        for key, code in rows:
            old.setdefault(str(code), []).append(int(key))
        values = features[cols].to_numpy(dtype=object)
        geoms = features.geometry.values
        params = {f"c{k}": c for k, c in enumerate(cols)}
        geom_sql = "ST_SetSRID(ST_GeomFromWKB(:geometry), :srid)"
        sets = ", ".join([*(f'"{c}" = :{p}' for p, c in params.items()), f"geometry = {geom_sql}"])
        names = ", ".join(["_row", *(f'"{c}"' for c in cols), "geometry"])
        marks = ", ".join([":_row", *(f":{p}" for p in params), geom_sql])
        last = self.con.execute(sa.text(f"SELECT coalesce(max(_row), -1) FROM {t}")).scalar()

        def row(pos):
            geom = as_column_type(geoms[pos], type_name)
            return {
                **{p: sql_value(v) for p, v in zip(params, values[pos])},
                "geometry": None if geom is None else geom.wkb,
                "srid": srid,
            }

        for action, key, pos in replacements(old, features, codes):
            if action == "update":
                self.con.execute(
                    sa.text(f"UPDATE {t} SET {sets} WHERE _row = :_row"), {**row(pos), "_row": key}
                )
            elif action == "delete":
                self.con.execute(sa.text(f"DELETE FROM {t} WHERE _row = :_row"), {"_row": key})
            else:
                last += 1
                self.con.execute(
                    sa.text(f"INSERT INTO {t} ({names}) VALUES ({marks})"),
                    {**row(pos), "_row": last},
                )

    def revisions_after(self, layer, revision):
        return self._select_revisions(
            "layer = :layer AND id > :rev", {"layer": layer, "rev": revision}
        )

    def _select_revisions(self, where: str, params: dict) -> list[dict]:
        """The revisions ``where`` holds (SQL with ``params``), oldest first."""
        sql = (
            f'SELECT {", ".join(REVISION_COLUMNS)} FROM "{self.s}".gridmap_revisions '
            f"WHERE {where} ORDER BY id"
        )
        return [decode(dict(r)) for r in self.con.execute(sa.text(sql), params).mappings()]

    def add_revision(self, record):
        rev = self.con.execute(
            sa.text(
                f'INSERT INTO "{self.s}".gridmap_revisions (layer, code, author, at, reason, '
                "before, after, accepted, change_id) VALUES (:layer, :code, :author, :at, :reason, "
                ":before, :after, :accepted, :change_id) RETURNING id"
            ),
            {
                **{
                    k: record.get(k)
                    for k in ("layer", "code", "author", "at", "reason", "accepted", "change_id")
                },
                "before": encode(record.get("before")),
                "after": encode(record.get("after")),
            },
        ).scalar()
        if record.get("change_id") is None:
            self.con.execute(
                sa.text(f'UPDATE "{self.s}".gridmap_revisions SET change_id = id WHERE id = :id'),
                {"id": rev},
            )
        return int(rev)

    def revisions(self, layer, code=None):
        where = "layer = :layer" + (" AND code = :code" if code is not None else "")
        return self._select_revisions(where, {"layer": layer, "code": code})

    def users(self):
        rows = self.con.execute(sa.text(f'SELECT * FROM "{self.s}".gridmap_users')).mappings()
        return {r["name"]: {"role": r["role"], "password_hash": r["password_hash"]} for r in rows}

    def put_user(self, name, role, password_hash):
        self.con.execute(
            sa.text(
                f'INSERT INTO "{self.s}".gridmap_users VALUES (:n, :r, :h) '
                "ON CONFLICT (name) DO UPDATE SET role = :r, password_hash = :h"
            ),
            {"n": name, "r": role, "h": password_hash},
        )
