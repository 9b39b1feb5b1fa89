"""Writing a layer to a file for desktop GIS users (GeoPackage, GeoJSON, Shapefile)."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pyogrio

from layers.errors import InputError

__all__ = ["export_layer"]

_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}


def export_layer(gdf: gpd.GeoDataFrame, path: str | os.PathLike, *, layer: str,
                 encoding: str | None = None) -> Path:
    """Write ``gdf`` to ``path``; the format follows the suffix.

    GeoJSON is written in WGS 84 lon/lat (RFC 7946). A shapefile gets a ``.cpg`` naming its
    encoding (UTF-8 unless ``encoding``, e.g. ``gbk`` for older desktop tools); its field
    names are cut to 10 bytes by GDAL.
    """
    path = Path(path)
    driver = _DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise InputError(f"cannot export to '{path.suffix}'; use one of {', '.join(_DRIVERS)}")
    options = {}
    if driver == "GeoJSON":
        gdf = gdf.to_crs("EPSG:4326")
    if driver == "ESRI Shapefile":
        options["encoding"] = encoding or "UTF-8"
    path.parent.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(gdf, path, layer=layer, driver=driver, **options)
    return path
