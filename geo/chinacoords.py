"""Conversions between WGS 84 and China's obfuscated web-map datums GCJ-02 and BD-09.

Points copied from AMap/Gaode or Tencent maps are in GCJ-02 ("Mars coordinates"); points
from Baidu maps are in BD-09. Both are offsets of a few hundred metres from WGS 84 that
PROJ does not model, so they are computed here. The forward GCJ-02 transform is the
published polynomial on the Krasovsky 1940 ellipsoid; its inverse has no closed form and
is solved by fixed-point iteration to better than 1e-9 degrees (~0.1 mm); so is the
inverse of BD-09.

Outside mainland China GCJ-02 equals WGS 84, and the functions leave points unchanged.

All functions take and return longitude/latitude in degrees and accept scalars or NumPy
arrays.

>>> lon, lat = wgs84_to_gcj02(116.404, 39.915)   # Beijing
>>> round(float(lon), 6), round(float(lat), 6)
(116.410244, 39.916404)
>>> back = gcj02_to_wgs84(lon, lat)
>>> round(float(back[0]), 7), round(float(back[1]), 7)
(116.404, 39.915)
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "wgs84_to_bd09",
    "in_mainland_china",
]

# Krasovsky 1940 semi-major axis (m) and first eccentricity squared, as used by GCJ-02.
_A = 6378245.0
_EE = 0.00669342162296594323
# BD-09 constant: pi * 3000 / 180.
_X_PI = np.pi * 3000.0 / 180.0


def in_mainland_china(lon, lat):
    """True where a point lies in the rough box in which GCJ-02 applies."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon > 72.004) & (lon < 137.8347) & (lat > 0.8293) & (lat < 55.8271)


def _delta_lat(x, y):
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _delta_lon(x, y):
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _gcj02_offset(lon, lat):
    """Offset (dlon, dlat) in degrees that GCJ-02 adds to a WGS 84 point."""
    dlat = _delta_lat(lon - 105.0, lat - 35.0)
    dlon = _delta_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = in_mainland_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon, lat):
    """WGS 84 longitude/latitude (degrees) to GCJ-02."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _gcj02_offset(lon, lat)
    return lon + dlon, lat + dlat


def _invert(forward, lon, lat, start, *, tolerance=1e-10, max_iter=20):
    """Solve ``forward(x, y) == (lon, lat)`` by fixed-point iteration from ``start``.

    Works because each datum shift is a small, smooth offset (its derivative is close to
    the identity), so subtracting the residual converges in a few steps.
    """
    x, y = start
    for _ in range(max_iter):
        flon, flat = forward(x, y)
        elon, elat = flon - lon, flat - lat
        x, y = x - elon, y - elat
        if np.all(np.abs(elon) < tolerance) and np.all(np.abs(elat) < tolerance):
            break
    return x, y


def gcj02_to_wgs84(lon, lat):
    """GCJ-02 longitude/latitude (degrees) to WGS 84, by fixed-point iteration."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return _invert(wgs84_to_gcj02, lon, lat, (lon, lat))


def gcj02_to_bd09(lon, lat):
    """GCJ-02 longitude/latitude (degrees) to Baidu BD-09."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon, lat):
    """Baidu BD-09 longitude/latitude (degrees) to GCJ-02.

    The usual closed-form inverse is off by up to ~1e-7 degrees (1 cm); it is the
    starting point here, refined by fixed-point iteration on :func:`gcj02_to_bd09`.
    """
    blon = np.asarray(lon, dtype=float)
    blat = np.asarray(lat, dtype=float)
    x, y = blon - 0.0065, blat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _invert(gcj02_to_bd09, blon, blat, (z * np.cos(theta), z * np.sin(theta)))


def bd09_to_wgs84(lon, lat):
    """Baidu BD-09 longitude/latitude (degrees) to WGS 84."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def wgs84_to_bd09(lon, lat):
    """WGS 84 longitude/latitude (degrees) to Baidu BD-09."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))
