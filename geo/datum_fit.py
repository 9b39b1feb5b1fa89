"""Which datum a new layer's lon/lat fit best: WGS 84, or China's offset web datums.

Points copied from AMap or Tencent maps are in GCJ-02, from Baidu maps in BD-09: both
a few hundred metres off WGS 84 in a smooth, place-dependent way (see
:mod:`geo.chinacoords`). A file does not say so, and its coordinates are plausible lon/lat
either way; what gives it away is how it sits against layers already trusted. Each
hypothesis (the file is WGS 84, is GCJ-02, is BD-09) converts the file's positions to WGS
84 and measures, in metres in the dataset's metric CRS:

- against **the same features** already stored (same codes): the median distance
  between a feature's stored and new representative points (an update re-sent from
  another map);
- else against **the roads**: the median distance from the new positions to the nearest
  road (facilities and addresses stand along roads).

A datum other than WGS 84 is suggested only when it fits clearly better: its median is
at most half that of WGS 84 and at least :data:`MIN_GAIN_M` metres less (the offsets are
100–700 m; a gain of a few metres is noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.chinacoords import bd09_to_wgs84, gcj02_to_wgs84

__all__ = ["DatumFit", "MIN_GAIN_M", "SAMPLE", "datum_fit"]

#: A datum is suggested only if it brings the features at least this close (metres).
MIN_GAIN_M = 50.0
#: At most this many features are measured (a random but fixed sample).
SAMPLE = 2000

_TO_WGS84 = {"wgs84": None, "gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}


@dataclass(frozen=True)
class DatumFit:
    """``median_m``: for each hypothesis (wgs84, gcj02, bd09), the median distance in
    metres to what it was measured ``against`` ("stored features" or "roads");
    ``suggested``: the datum that fits clearly better than WGS 84, or None."""

    against: str
    median_m: dict[str, float]
    suggested: str | None

    def to_dict(self) -> dict:
        return {
            "against": self.against,
            "median_m": {k: round(v, 1) for k, v in self.median_m.items()},
            "suggested": self.suggested,
        }


def _positions(geoms) -> np.ndarray:
    """A point on each geometry (points themselves; a point inside each polygon)."""
    return shapely.point_on_surface(geoms)


def _converted(points, to_wgs84) -> np.ndarray:
    if to_wgs84 is None:
        return points
    xy = shapely.get_coordinates(points)
    lon, lat = to_wgs84(xy[:, 0], xy[:, 1])
    return shapely.points(np.asarray(lon), np.asarray(lat))


def datum_fit(
    incoming: gpd.GeoDataFrame,
    reference: dict[str, gpd.GeoDataFrame],
    layer: str,
    metric_crs,
) -> DatumFit | None:
    """How ``incoming`` (lon/lat, read as WGS 84 or CGCS2000, which agree to a metre)
    fits the dataset's layers ``reference`` (``{name: frame}``, any geographic CRS) under
    each datum hypothesis; None when there is nothing to measure against (no stored
    feature of ``layer`` with the same code, no road). ``metric_crs``: the dataset's local
    metric CRS, in which distances are measured."""
    live = incoming[~(incoming.geometry.isna() | incoming.geometry.is_empty)]
    if len(live) > SAMPLE:
        live = live.sample(SAMPLE, random_state=0)
    if not len(live):
        return None
    held = reference.get(layer)
    target = None
    if held is not None and "code" in held.columns and "code" in live.columns:
        codes = pd.Index(held["code"].astype(str))
        at = codes.get_indexer(live["code"].astype(str))
        if (at >= 0).sum() >= 3:
            live = live[at >= 0]
            stored = held.iloc[at[at >= 0]].to_crs(metric_crs)
            target = ("stored features", _positions(stored.geometry.values))
    roads = reference.get("road")
    if target is None and roads is not None and len(roads):
        target = ("roads", shapely.STRtree(roads.to_crs(metric_crs).geometry.values))
    if target is None:
        return None
    against, ref = target
    points = _positions(live.to_crs(4326).geometry.values)
    median = {}
    for datum, to_wgs84 in _TO_WGS84.items():
        moved = gpd.GeoSeries(_converted(points, to_wgs84), crs=4326).to_crs(metric_crs).values
        if isinstance(ref, shapely.STRtree):
            _, dist = ref.query_nearest(moved, return_distance=True, all_matches=False)
        else:
            dist = shapely.distance(moved, ref)
        median[datum] = float(np.median(dist))
    best = min(median, key=median.get)
    plain = median["wgs84"]
    suggested = (
        best
        if best != "wgs84" and median[best] <= plain / 2 and plain - median[best] >= MIN_GAIN_M
        else None
    )
    return DatumFit(against, median, suggested)
