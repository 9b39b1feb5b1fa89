"""Where datasets live: one GeoPackage file (default) or a PostGIS database.

``open_store("data/lhasa.gpkg")`` or ``open_store("postgresql://localhost/city")``.
"""

from __future__ import annotations

import os

from layers.storage.base import LayerStore
from layers.storage.geopackage import GeoPackageStore

__all__ = ["LayerStore", "GeoPackageStore", "open_store", "open_source"]


def open_store(dataset: str | os.PathLike, **options) -> LayerStore:
    """Open a dataset: a ``postgresql://`` URL selects PostGIS, anything else is a
    GeoPackage path (created on first write)."""
    text = os.fspath(dataset)
    if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from layers.storage.postgis import PostGISStore

        return PostGISStore(text, **options)
    return GeoPackageStore(text, **options)


def open_source(dataset: str | os.PathLike):
    """A dataset to read and check: a GeoParquet folder of ``python -m layers export
    --geoparquet`` (read-only), else :func:`open_store`."""
    from layers.geoparquet import GeoParquetDataset, is_geoparquet

    if is_geoparquet(dataset):
        return GeoParquetDataset(dataset)
    return open_store(dataset)
