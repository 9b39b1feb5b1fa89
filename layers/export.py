"""Writing a layer to a file for desktop GIS users (GeoPackage, GeoJSON, Shapefile)."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pyogrio

from layers.errors import InputError

__all__ = ["export_layer", "export_findings"]

_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}


def export_layer(
    gdf: gpd.GeoDataFrame, path: str | os.PathLike, *, layer: str, encoding: str | None = None
) -> Path:
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


def export_findings(findings: gpd.GeoDataFrame, path: str | os.PathLike) -> Path:
    """Write checker findings for desktop GIS, in WGS 84 lon/lat.

    A GeoPackage gets two layers, ``findings_area`` (gaps, overlaps, … as polygons) and
    ``findings_point`` (invalid geometry, duplicate codes, parent mismatches as points);
    GeoJSON gets one file. Feature codes are joined with ``;``.
    """
    path = Path(path)
    driver = _DRIVERS.get(path.suffix.lower())
    if driver not in ("GPKG", "GeoJSON"):
        raise InputError(f"findings can be exported as .gpkg or .geojson, not '{path.suffix}'")
    out = findings.to_crs("EPSG:4326").copy()
    out["features"] = out["features"].map(lambda codes: ";".join(codes))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    if driver == "GeoJSON":
        pyogrio.write_dataframe(out, path, driver=driver)
        return path
    polygonal = out.geom_type.isin(["Polygon", "MultiPolygon"])
    for name, part in (("findings_area", out[polygonal]), ("findings_point", out[~polygonal])):
        pyogrio.write_dataframe(part, path, layer=name, driver="GPKG")
    return path
