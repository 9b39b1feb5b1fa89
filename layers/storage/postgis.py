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

import geopandas as gpd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from layers.errors import StorageError
from layers.storage.base import LayerStore

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
                has = con.execute(sa.text(
                    "SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).scalar()
                if not has:
                    con.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
                con.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        except sa.exc.SQLAlchemyError as err:
            raise StorageError(f"cannot open PostGIS dataset {self.location}: "
                               f"{err.orig if hasattr(err, 'orig') else err}") from None

    def list_layers(self) -> list[str]:
        with self.engine.connect() as con:
            names = con.execute(sa.text(
                "SELECT f_table_name FROM geometry_columns WHERE f_table_schema = :s"),
                {"s": self.schema}).scalars().all()
        return self._ordered(names)

    def _read(self, layer: str) -> gpd.GeoDataFrame:
        with self.engine.connect() as con:
            gdf = gpd.read_postgis(
                sa.text(f'SELECT * FROM "{self.schema}"."{layer}" ORDER BY _row'),
                con, geom_col="geometry")
        return gdf.drop(columns="_row")

    def _swap(self, layer: str, fill) -> None:
        """Run ``fill(con, scratch_table)`` then replace ``layer`` by it, in one transaction."""
        scratch = f"_{layer}_new_{uuid.uuid4().hex[:8]}"
        with self.engine.begin() as con:
            con.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                        {"k": zlib.crc32(f"gridmap:{self.schema}.{layer}".encode())})
            if fill is not None:
                fill(con, scratch)
            con.execute(sa.text(f'DROP TABLE IF EXISTS "{self.schema}"."{layer}"'))
            if fill is not None:
                con.execute(sa.text(
                    f'ALTER TABLE "{self.schema}"."{scratch}" RENAME TO "{layer}"'))
                con.execute(sa.text(
                    f'ALTER INDEX IF EXISTS "{self.schema}"."idx_{scratch}_geometry" '
                    f'RENAME TO "idx_{layer}_geometry"'))

    def _write(self, layer: str, gdf: gpd.GeoDataFrame) -> None:
        gdf = gdf.copy()
        gdf.insert(0, "_row", range(len(gdf)))

        def fill(con, scratch):
            gdf.to_postgis(scratch, con, schema=self.schema, index=False,
                           chunksize=10_000)

        self._swap(layer, fill)

    def delete_layer(self, layer: str) -> None:
        self._swap(layer, None)
