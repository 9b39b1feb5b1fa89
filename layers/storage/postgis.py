"""PostGIS storage: one table per layer in a schema of a PostgreSQL database.

Selected with ``DATABASE_URL=postgresql://user@host/db``. A write loads the new layer into
a scratch table and swaps it for the old one in the same transaction (PostgreSQL's DDL is
transactional), under an advisory lock that serialises writers of the same layer; a writer
killed before commit leaves the old table untouched.
"""

from __future__ import annotations

import re
import uuid
import zlib
from contextlib import contextmanager

import geopandas as gpd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from layers.errors import StorageError
from layers.schema import conform
from layers.storage.base import LayerStore
from layers.storage.edits import REVISION_COLUMNS, Edit, decode, encode

__all__ = ["PostGISStore"]

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
            raise StorageError(f"schema name '{schema}' must be lower-case letters, digits, _")
        self.schema = schema
        self.engine = sa.create_engine(_engine_url(url), pool_pre_ping=True)
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
        except sa.exc.SQLAlchemyError as err:
            raise StorageError(
                f"cannot open PostGIS dataset {self.location}: "
                f"{err.orig if hasattr(err, 'orig') else err}"
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
            gdf = gpd.read_postgis(
                sa.text(f'SELECT * FROM "{self.schema}"."{layer}" ORDER BY _row'),
                con,
                geom_col="geometry",
            )
        return gdf.drop(columns="_row")

    def _lock(self, con) -> None:
        """Serialise writers of this dataset (released when the transaction ends)."""
        con.execute(
            sa.text("SELECT pg_advisory_xact_lock(:k)"),
            {"k": zlib.crc32(f"gridmap:{self.schema}".encode())},
        )

    def _swap(self, con, layer: str, gdf: gpd.GeoDataFrame | None) -> None:
        """Load ``gdf`` into a scratch table and put it in place of ``layer`` (or drop the
        layer when ``gdf`` is None), inside the caller's transaction."""
        scratch = f"_{layer}_new_{uuid.uuid4().hex[:8]}"
        if gdf is not None:
            gdf = gdf.copy()
            gdf.insert(0, "_row", range(len(gdf)))
            gdf.to_postgis(scratch, con, schema=self.schema, index=False, chunksize=10_000)
        con.execute(sa.text(f'DROP TABLE IF EXISTS "{self.schema}"."{layer}"'))
        if gdf is not None:
            con.execute(sa.text(f'ALTER TABLE "{self.schema}"."{scratch}" RENAME TO "{layer}"'))
            con.execute(
                sa.text(
                    f'ALTER INDEX IF EXISTS "{self.schema}"."idx_{scratch}_geometry" '
                    f'RENAME TO "idx_{layer}_geometry"'
                )
            )

    def _write(self, layer: str, gdf: gpd.GeoDataFrame) -> None:
        with self.engine.begin() as con:
            self._lock(con)
            self._swap(con, layer, gdf)

    def delete_layer(self, layer: str) -> None:
        with self.engine.begin() as con:
            self._lock(con)
            self._swap(con, layer, None)

    @contextmanager
    def edit(self):
        """An edit in one transaction under the dataset's advisory lock."""
        with self.engine.begin() as con:
            self._lock(con)
            yield _PostGISEdit(self, con)

    def revisions(self, layer: str, code: str | None = None) -> list[dict]:
        with self.engine.begin() as con:
            return _PostGISEdit(self, con).revisions(layer, code)

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


class _PostGISEdit(Edit):
    def __init__(self, store: PostGISStore, con):
        self.store, self.con, self.s = store, con, store.schema

    def read_layer(self, layer):
        gdf = gpd.read_postgis(
            sa.text(f'SELECT * FROM "{self.s}"."{layer}" ORDER BY _row'),
            self.con,
            geom_col="geometry",
        )
        return gdf.drop(columns="_row")

    def write_layer(self, layer, gdf):
        self.store._swap(self.con, layer, conform(gdf, layer))

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
        sql = (
            f'SELECT {", ".join(REVISION_COLUMNS)} FROM "{self.s}".gridmap_revisions '
            "WHERE layer = :layer"
            + (" AND code = :code" if code is not None else "")
            + " ORDER BY id"
        )
        rows = self.con.execute(sa.text(sql), {"layer": layer, "code": code}).mappings()
        return [decode(dict(r)) for r in rows]

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
