"""Per-layer summaries: feature counts, areas, lengths and household figures, in metres."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from pyproj import CRS

__all__ = ["summarise_layer"]


def summarise_layer(gdf: gpd.GeoDataFrame, *, metric_crs: CRS) -> dict:
    """Figures describing one layer, measured in ``metric_crs`` (metres).

    Returns a dict with ``features``, ``geometry_types``, ``crs``, ``bounds`` (lon/lat as
    stored) and, by geometry family, ``area_km2`` (polygons), ``length_km`` (lines), and
    for layers that have them ``households``/``population`` totals and the
    min/median/max households per feature, and ``kinds`` counts for facilities.

    >>> import shapely
    >>> g = gpd.GeoDataFrame({"households": [100, 300]},
    ...     geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(1000, 0, 2000, 1000)],
    ...     crs="EPSG:4539")
    >>> s = summarise_layer(g, metric_crs=CRS.from_epsg(4539))
    >>> s["area_km2"], s["households"], s["households_per_feature"]["median"]
    (2.0, 400, 200.0)
    """
    out: dict = {
        "features": int(len(gdf)),
        "geometry_types": sorted(set(gdf.geom_type.dropna())),
        "crs": gdf.crs.to_string() if gdf.crs else None,
        "bounds": [round(float(v), 6) for v in gdf.total_bounds] if len(gdf) else None,
    }
    if len(gdf) == 0:
        return out
    metric = gdf.to_crs(metric_crs).geometry
    kinds = set(out["geometry_types"])
    if kinds & {"Polygon", "MultiPolygon"}:
        out["area_km2"] = round(float(metric.area.sum()) / 1e6, 3)
    if kinds & {"LineString", "MultiLineString"}:
        out["length_km"] = round(float(metric.length.sum()) / 1e3, 3)
    for col in ("households", "population", "floating_population"):
        if col in gdf.columns:
            out[col] = int(gdf[col].sum())
    if "households" in gdf.columns:
        hh = gdf["households"].to_numpy(float)
        out["households_per_feature"] = {
            "min": int(np.nanmin(hh)),
            "median": float(np.nanmedian(hh)),
            "max": int(np.nanmax(hh)),
        }
    if "kind" in gdf.columns:
        out["kinds"] = {str(k): int(v) for k, v in gdf["kind"].value_counts().items()}
    return out
