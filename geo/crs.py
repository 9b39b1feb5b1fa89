"""Choosing a metric CRS for measurement, and checking that coordinates fit their CRS.

Areas, widths and distances are measured in metres in a local projected CRS chosen from
the data: the CGCS2000 3-degree Gauss-Kruger zone (EPSG:4534-4554, central meridians 75E
to 135E, no zone prefix in the easting) for data in China, UTM elsewhere.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import ProjError

from geo._parallel import threaded

__all__ = [
    "CHINA_BOUNDS",
    "CRS84",
    "metric_crs_for_bounds",
    "zone_epsg",
    "metric_crs",
    "coordinate_problems",
    "crs_uri",
    "crs_from_uri",
    "projected",
    "to_crs",
]

log = logging.getLogger(__name__)

# Rough extent of China's territory (lon_min, lat_min, lon_max, lat_max), degrees.
CHINA_BOUNDS = (73.0, 18.0, 135.5, 53.6)

_GK3_FIRST_EPSG = 4534  # CGCS2000 / 3-degree Gauss-Kruger CM 75E
_GK3_FIRST_CM = 75


def metric_crs_for_bounds(lon_min: float, lat_min: float, lon_max: float, lat_max: float) -> CRS:
    """The local metric CRS for data within these WGS 84/CGCS2000 bounds (degrees).

    >>> metric_crs_for_bounds(91.0, 29.6, 91.2, 29.7).to_epsg()   # Lhasa
    4539
    >>> metric_crs_for_bounds(116.2, 39.8, 116.5, 40.0).to_epsg()  # Beijing, CM 117E
    4548
    >>> metric_crs_for_bounds(13.3, 52.4, 13.5, 52.6).to_epsg()   # Berlin, UTM 33N
    32633
    >>> metric_crs_for_bounds(-10.0, 36.0, 30.0, 60.0).to_epsg()  # Europe: its centre, 10°E
    32632
    >>> metric_crs_for_bounds(-58.5, -34.7, -58.3, -34.5).to_epsg()  # Buenos Aires, 21S
    32721
    """
    lon = (lon_min + lon_max) / 2.0
    lat = (lat_min + lat_max) / 2.0
    crs = CRS.from_epsg(zone_epsg(lon, lat))
    log.info("metric CRS for lon %.3f lat %.3f: %s", lon, lat, crs.name)
    return crs


def zone_epsg(lon: float, lat: float) -> int:
    """The EPSG code of the local metric CRS of a place (degrees): its CGCS2000 3-degree
    Gauss-Kruger zone in China, else its UTM zone (the zone of the place itself; for an
    extent, of its centre — not the first zone it touches, which for a layer spanning a
    continent was zone 1, at 180°W).

    >>> zone_epsg(75.99, 39.47), zone_epsg(134.28, 47.72), zone_epsg(-74.0, 40.7)
    (4534, 4554, 32618)
    """
    x0, y0, x1, y1 = CHINA_BOUNDS
    if x0 <= lon <= x1 and y0 <= lat <= y1:
        cm = min(max(int(round(lon / 3.0)) * 3, _GK3_FIRST_CM), 135)
        return _GK3_FIRST_EPSG + (cm - _GK3_FIRST_CM) // 3
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def metric_crs(*frames) -> CRS:
    """The local metric CRS for one or more GeoDataFrames (their joint extent).

    Frames must have a CRS; their bounds are taken in geographic coordinates.
    """
    bounds = []
    for gdf in frames:
        if gdf is None or len(gdf) == 0:
            continue
        if gdf.crs is None:
            raise ValueError("a layer without a CRS cannot be measured; set its CRS first")
        geo = gdf.crs if gdf.crs.is_geographic else gdf.crs.geodetic_crs
        t = Transformer.from_crs(gdf.crs, geo, always_xy=True)
        bounds.append(t.transform_bounds(*gdf.total_bounds))
    if not bounds:
        raise ValueError("no features to choose a metric CRS from")
    b = np.array(bounds)
    return metric_crs_for_bounds(b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())


def coordinate_problems(bounds, crs: CRS) -> list[str]:
    """Reasons why coordinates with these bounds cannot be in ``crs`` (empty if plausible).

    Catches latitude beyond ±90, projected metres labelled as degrees, degrees labelled as
    metres, latitude/longitude swapped, and coordinates far outside the CRS's area of use.

    >>> coordinate_problems((91.0, 29.6, 91.2, 29.7), CRS.from_epsg(4490))
    []
    >>> coordinate_problems((29.6, 91.0, 29.7, 91.2), CRS.from_epsg(4326))[0][:40]
    'latitude 91.2 is beyond ±90: the coordin'
    """
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    if not np.all(np.isfinite([xmin, ymin, xmax, ymax])):
        return ["coordinates are not finite numbers (NaN or infinity)"]
    problems = []
    crs_name = crs.to_string()
    if crs.is_geographic:
        big = max(abs(xmin), abs(xmax), abs(ymin), abs(ymax))
        if big > 360:
            problems.append(
                f"values up to {big:,.0f} cannot be degrees in {crs_name}: they look like "
                "projected metres. Fix: state the projected CRS the file is really in, "
                "e.g. --crs EPSG:4539 (CGCS2000 Gauss-Kruger CM 90E)"
            )
        elif max(abs(ymin), abs(ymax)) > 90:
            lat = ymax if abs(ymax) > abs(ymin) else ymin
            hint = (
                " Longitude and latitude look swapped (latitude first); put longitude first "
                "(x=lon, y=lat)."
                if max(abs(xmin), abs(xmax)) <= 90
                else ""
            )
            problems.append(
                f"latitude {lat:g} is beyond ±90: the coordinates cannot be "
                f"degrees in {crs_name}.{hint}"
            )
        elif max(abs(xmin), abs(xmax)) > 180:
            problems.append(
                f"longitude up to {max(abs(xmin), abs(xmax)):g} is beyond ±180 in {crs_name}"
            )
        else:
            cx0, cy0, cx1, cy1 = CHINA_BOUNDS
            if cy0 <= xmin and xmax <= cy1 and cx0 <= ymin and ymax <= cx1:
                problems.append(
                    f"x runs {xmin:g}..{xmax:g} and y {ymin:g}..{ymax:g}: longitude and "
                    "latitude look swapped (latitude first). Put longitude in x, latitude in y"
                )
        return problems

    if max(abs(xmin), abs(xmax)) <= 360 and max(abs(ymin), abs(ymax)) <= 90:
        problems.append(
            f"values {xmin:g}..{xmax:g}, {ymin:g}..{ymax:g} look like degrees, not the metres "
            f"of {crs_name}. Fix: --crs EPSG:4490 (CGCS2000) or EPSG:4326 (WGS 84)"
        )
        return problems
    aou = crs.area_of_use
    if aou is not None:
        geo = crs.geodetic_crs
        try:
            t = Transformer.from_crs(crs, geo, always_xy=True)
            lon0, lat0, lon1, lat1 = t.transform_bounds(xmin, ymin, xmax, ymax)
        except Exception:  # noqa: BLE001 - a failed projection is itself the finding
            lon0 = lat0 = lon1 = lat1 = float("nan")
        margin = 3.0  # degrees: zones are used a little beyond their nominal strip
        inside = (
            np.isfinite([lon0, lat0, lon1, lat1]).all()
            and lon0 >= aou.west - margin
            and lon1 <= aou.east + margin
            and lat0 >= aou.south - margin
            and lat1 <= aou.north + margin
        )
        if not inside:
            problems.append(
                f"coordinates {xmin:,.0f}..{xmax:,.0f}, {ymin:,.0f}..{ymax:,.0f} fall outside "
                f"where {crs_name} ({crs.name}) is used ({aou.name}). Fix: state the CRS the "
                "file is really in with --crs"
            )
    return problems


# ---------------------------------------------------------------------- CRS identifiers
# OGC API – Features names CRSs by URI. CRS84 is WGS 84 with longitude first (the GeoJSON
# default); EPSG:4326 and EPSG:4490 (CGCS2000) list latitude first, as EPSG defines them.
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"


def crs_uri(crs) -> str:
    """The OGC URI of ``crs`` (anything pyproj reads): CRS84 for lon/lat WGS 84.

    >>> crs_uri("EPSG:4539")
    'http://www.opengis.net/def/crs/EPSG/0/4539'
    >>> crs_uri("OGC:CRS84") == CRS84
    True
    """
    crs = CRS.from_user_input(crs)
    if crs == CRS.from_user_input("OGC:CRS84"):
        return CRS84
    code = crs.to_epsg()
    if code is None:
        raise ValueError(f"{crs.name} has no EPSG code to name it by")
    return f"{_EPSG_URI}{code}"


def crs_from_uri(text: str) -> CRS:
    """The CRS a client names: an OGC URI, a safe CURIE (``[EPSG:4539]``) or ``EPSG:4539``.
    Raises ValueError when it names none.

    >>> crs_from_uri("http://www.opengis.net/def/crs/EPSG/0/4490").to_epsg()
    4490
    >>> crs_from_uri("[OGC:CRS84]").to_string()
    'OGC:CRS84'
    """
    t = text.strip()
    if t.startswith("[") and t.endswith("]"):
        t = t[1:-1]
    for prefix in ("http://www.opengis.net/def/crs/", "https://www.opengis.net/def/crs/"):
        if t.startswith(prefix):
            parts = t[len(prefix) :].split("/")  # authority / version / code
            if len(parts) != 3:
                raise ValueError(f"'{text}' is not a CRS URI")
            t = f"{parts[0]}:{parts[2]}"
    if t.upper() in ("CRS84", "OGC:CRS84"):
        return CRS.from_user_input("OGC:CRS84")
    if not t.upper().startswith(("EPSG:", "OGC:")):
        raise ValueError(f"'{text}' is not a CRS URI")
    try:
        return CRS.from_user_input(t)
    except Exception:  # noqa: BLE001 - pyproj's own error type varies by version
        raise ValueError(f"'{text}' names no known CRS") from None


_TRANSFORMERS = threading.local()  # per thread: a pyproj Transformer is not shared
_PIPELINES: dict[tuple[str, str], str] = {}  # the operation PROJ chose for each pair
_PIPELINES_LOCK = threading.Lock()


def _key(crs) -> str:
    """A cheap cache key for a CRS as given (the same CRS given two ways gets two keys,
    which costs one more Transformer, never a wrong one)."""
    return crs.srs if isinstance(crs, CRS) else str(crs)


def transformer(crs_from, crs_to) -> Transformer:
    """A lon/lat-ordered (``always_xy``) Transformer between two CRSs, made once per
    thread and pair.

    The operation between the two is chosen once per process (``Transformer.from_crs``
    searches PROJ's database for it: milliseconds alone, seconds when many threads of a
    server do it at once) and each further thread makes its Transformer from that
    operation's pipeline, which needs no search and gives the same coordinates."""
    cache = getattr(_TRANSFORMERS, "cache", None)
    if cache is None:
        cache = _TRANSFORMERS.cache = {}
    key = (_key(crs_from), _key(crs_to))
    t = cache.get(key)
    if t is None:
        with _PIPELINES_LOCK:
            pipeline = _PIPELINES.get(key)
            if pipeline is None:
                t = Transformer.from_crs(crs_from, crs_to, always_xy=True)
                pipeline = _PIPELINES[key] = t.definition
        if t is None:
            try:
                t = Transformer.from_pipeline(pipeline)
            except ProjError:  # an operation its own text does not describe whole
                t = Transformer.from_crs(crs_from, crs_to, always_xy=True)
        cache[key] = t
    return t


def moves_nothing(t: Transformer) -> bool:
    """Whether ``t`` leaves every coordinate as it is (``proj=noop``: CGCS2000 to WGS 84,
    which PROJ treats as the same datum, or a CRS to itself): reprojecting by it is only
    a new label."""
    return t.definition.split(" ", 1)[0] == "proj=noop"


def projected(xy: np.ndarray, crs_from, crs_to) -> np.ndarray:
    """Coordinates ``xy`` (n × 2, or n × 3 with z) from ``crs_from`` to ``crs_to``, through
    each thread's :func:`transformer`. PROJ runs without Python's lock, so a large array
    is projected in parts on the machine's cores (:func:`geo._parallel.threaded`), each
    with its own Transformer: the 3.8 million vertices of a province's 150,000 cells in
    0.33 s on two cores instead of 0.58 s; the parts give the coordinates the whole would."""

    def part(xy):
        return np.column_stack(transformer(crs_from, crs_to).transform(*xy.T))

    return threaded(part, np.asarray(xy, dtype=float))


def reproject(geom, crs_from, crs_to):
    """One shapely geometry from ``crs_from`` to ``crs_to`` (any pyproj input)."""
    t = transformer(crs_from, crs_to)
    if moves_nothing(t):
        return geom
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def to_crs(gdf, crs):
    """``gdf`` (a GeoDataFrame or GeoSeries) in ``crs``, as its ``to_crs`` makes it, but
    through this thread's kept :func:`transformer`: geopandas makes a new Transformer per
    call, whose PROJ set-up costs about a millisecond alone and far more when many threads
    do it at once (a save of one cell reprojects a few rows several times)."""
    import geopandas as gpd

    crs = CRS.from_user_input(crs)
    values = np.asarray(gdf.geometry.values if isinstance(gdf, gpd.GeoDataFrame) else gdf.values)
    t = transformer(gdf.crs, crs)
    if moves_nothing(t):  # a new label, the same coordinates (150,000 cells: 0.5 s saved)
        moved = values
    else:
        moved = shapely.transform(
            values,
            lambda xyz: projected(xyz, gdf.crs, crs),
            include_z=None if shapely.has_z(values).any() else False,
        )
    if isinstance(gdf, gpd.GeoSeries):
        return gpd.GeoSeries(moved, index=gdf.index, crs=crs, name=gdf.name)
    out = gdf.copy()
    out[gdf.geometry.name] = gpd.GeoSeries(moved, index=gdf.index, crs=crs)
    return out
