"""Reading users' files into a conforming layer: GeoPackage, GeoJSON, Shapefile (plain or
zipped) and CSV with coordinates or WKT.

:func:`read_layer_file` is what both the command line and the web upload call. It finds the
data, fixes the text encoding, maps fields, settles the CRS (refusing a missing or
implausible one), converts GCJ-02/BD-09 points to WGS 84 when asked, and conforms the result
to the layer's schema. Everything it decided is returned in an :class:`ImportReport`.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from geo.chinacoords import bd09_to_wgs84, gcj02_to_wgs84
from geo.crs import coordinate_problems
from layers.encoding import detect_encoding, garbled_examples, normalise_encoding
from layers.errors import InputError, LayerError
from layers.fields import map_fields
from layers.safezip import ZipLimits, safe_extract
from layers.schema import conform, spec

__all__ = ["ImportReport", "read_layer_file", "parse_crs", "SUPPORTED_SUFFIXES"]

SUPPORTED_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".zip", ".csv", ".txt")

# Pseudo-CRS names for China's web-map datums: the points are lon/lat, offset.
_DATUMS = {
    "gcj02": "gcj02",
    "gcj": "gcj02",
    "amap": "gcj02",
    "gaode": "gcj02",
    "tencent": "gcj02",
    "bd09": "bd09",
    "bd09ll": "bd09",
    "baidu": "bd09",
}
_LON = ["lon", "lng", "long", "longitude", "x", "经度", "东经"]
_LAT = ["lat", "latitude", "y", "纬度", "北纬"]
_WKT = ["wkt", "geometry", "geom", "the_geom", "shape"]


@dataclass
class ImportReport:
    """What an import did: source, feature count, CRS, encoding, field mapping, notes."""

    layer: str
    source: str
    features: int = 0
    crs: str | None = None
    encoding: str | None = None
    field_map: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{self.layer}: {self.features} features from {self.source}", f"  CRS: {self.crs}"]
        if self.encoding:
            out.append(f"  text encoding: {self.encoding}")
        if self.field_map:
            out.append("  fields: " + ", ".join(f"{k} → {v}" for k, v in self.field_map.items()))
        out += [f"  note: {n}" for n in self.notes]
        return out


def parse_crs(text: str) -> tuple[CRS, str | None]:
    """A user's CRS option → (CRS, datum) where datum is 'gcj02', 'bd09' or None.

    >>> parse_crs("EPSG:4490")[0].to_epsg(), parse_crs("GCJ-02")[1]
    (4490, 'gcj02')
    """
    key = text.strip().lower().replace("-", "").replace("_", "")
    if key in _DATUMS:
        return CRS.from_epsg(4326), _DATUMS[key]
    try:
        return CRS.from_user_input(text.strip()), None
    except CRSError:
        raise InputError(
            f"'{text}' is not a CRS; give e.g. EPSG:4490 (CGCS2000), "
            "EPSG:4326 (WGS 84), EPSG:4539, GCJ-02 or BD-09"
        ) from None


def _text_columns(gdf) -> list:
    return [
        c
        for c in gdf.columns
        if c != gdf.geometry.name
        and (gdf[c].dtype == object or pd.api.types.is_string_dtype(gdf[c].dtype))
    ]


def _pick(columns, names):
    lower = {str(c).strip().lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def _read_csv(path: Path, encoding: str | None, report: ImportReport) -> gpd.GeoDataFrame:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if encoding is None:
        encoding, how = detect_encoding(raw.splitlines())
        report.notes.append(f"text encoding {encoding}: {how}")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path.name} is not valid {encoding} text at byte {err.start}; "
            "say the right encoding with --encoding"
        ) from None
    report.encoding = encoding
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    wkt = _pick(df.columns, _WKT)
    lon, lat = _pick(df.columns, _LON), _pick(df.columns, _LAT)
    if wkt is not None:
        try:
            geom = shapely.from_wkt(
                df[wkt].fillna("").replace("", None).to_numpy(), on_invalid="raise"
            )
        except shapely.errors.GEOSException as err:
            raise InputError(
                f"{path.name}: column '{wkt}' holds text that is not WKT ({err})"
            ) from None
        df = df.drop(columns=[wkt])
    elif lon is not None and lat is not None:
        x = pd.to_numeric(df[lon], errors="coerce")
        y = pd.to_numeric(df[lat], errors="coerce")
        bad = np.flatnonzero((x.isna() & df[lon].notna()) | (y.isna() & df[lat].notna()))
        if len(bad):
            raise InputError(
                f"{path.name}: '{lon}'/'{lat}' are not numbers on data line(s) "
                f"{', '.join(str(i + 1) for i in bad[:10])}"
            )
        geom = shapely.points(x.to_numpy(), y.to_numpy())
        geom[x.isna().to_numpy() | y.isna().to_numpy()] = None
        df = df.drop(columns=[lon, lat])
    else:
        raise InputError(
            f"{path.name} has no coordinates: give columns lon/lat (or 经度/纬度, x/y) or a "
            f"WKT column named wkt; its columns are {', '.join(map(str, df.columns))}"
        )
    return gpd.GeoDataFrame(df, geometry=geom, crs=None)


def _read_shapefile(path: Path, encoding: str | None, report: ImportReport) -> gpd.GeoDataFrame:
    """Read a shapefile byte-faithfully, then decode its text in the right encoding."""
    cpg = path.with_suffix(".cpg")
    if encoding is None and cpg.exists():
        encoding = normalise_encoding(cpg.read_text(errors="replace").strip())
        report.notes.append(f"text encoding {encoding} from {cpg.name}")
    # Latin-1 maps bytes to code points one to one, so the raw bytes can be recovered.
    gdf = pyogrio.read_dataframe(path, encoding="ISO-8859-1")  # GDAL spelling of Latin-1
    text_cols = _text_columns(gdf)
    raw_values = [v.encode("latin-1") for c in text_cols for v in gdf[c] if isinstance(v, str)]
    raw_names = [str(c).encode("latin-1") for c in gdf.columns if c != gdf.geometry.name]
    if encoding is None:
        encoding, how = detect_encoding(raw_names + raw_values)
        note = f"text encoding {encoding}: {how}"
        if encoding != "utf-8":
            note += " (the file has no .cpg; add one to say so)"
        report.notes.append(note)

    def decode(v, where):
        if not isinstance(v, str):
            return v
        try:
            return v.encode("latin-1").decode(encoding)
        except UnicodeDecodeError:
            raise InputError(
                f"{path.name}: {where} is not valid {encoding} text; say the right "
                "encoding with --encoding (e.g. gbk, gb18030, utf-8)"
            ) from None

    def decode_name(c):
        # GDAL cuts field names at 10 bytes, which can split a UTF-8 character: drop the
        # partial character rather than refuse the file.
        raw = c.encode("latin-1")
        for cut in range(0, 4 if len(raw) == 10 else 1):
            try:
                return raw[: len(raw) - cut].decode(encoding)
            except UnicodeDecodeError:
                continue
        return decode(c, f"column name '{c}'")

    renames = {c: decode_name(c) for c in gdf.columns if c != gdf.geometry.name}
    for c in text_cols:
        gdf[c] = [
            decode(v, f"a value of column '{renames[c]}' (row {i + 1})")
            for i, v in enumerate(gdf[c])
        ]
    report.encoding = encoding
    return gdf.rename(columns=renames)


def _read_ogr(
    path: Path, source_layer: str | None, layer: str, report: ImportReport, encoding: str | None
) -> gpd.GeoDataFrame:
    try:
        available = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except Exception as err:  # noqa: BLE001 - GDAL's reason is the message
        raise InputError(f"{path.name} cannot be read as a GIS file: {err}") from None
    if source_layer is None:
        if len(available) == 1:
            source_layer = available[0]
        elif layer in available:
            source_layer = layer
        else:
            raise InputError(
                f"{path.name} holds several layers ({', '.join(available)}); "
                "say which with --source-layer NAME"
            )
    elif source_layer not in available:
        raise InputError(
            f"{path.name} has no layer '{source_layer}'; it has {', '.join(available)}"
        )
    report.source += f" (layer {source_layer})" if len(available) > 1 else ""
    kwargs = {"encoding": encoding} if encoding else {}
    return pyogrio.read_dataframe(path, layer=source_layer, **kwargs)


def _find_data_file(files: list[Path], source_layer: str | None) -> Path:
    data = [
        f
        for f in files
        if f.suffix.lower() in SUPPORTED_SUFFIXES
        and f.suffix != ".zip"
        and not f.name.startswith(("._", "."))
    ]
    if source_layer:
        named = [f for f in data if f.stem == source_layer or f.name == source_layer]
        if named:
            return named[0]
    if len(data) == 1:
        return data[0]
    if not data:
        raise InputError("the archive holds no .shp, .gpkg, .geojson or .csv file")
    raise InputError(
        "the archive holds several data files ("
        + ", ".join(f.name for f in data)
        + "); say which with --source-layer NAME"
    )


def _to_wgs84_from(datum: str, gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    convert = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}[datum]

    def fn(coords):
        lon, lat = convert(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    out = gdf.copy()
    out.geometry = shapely.transform(gdf.geometry.values, fn)
    return out


def read_layer_file(
    path: str | os.PathLike,
    layer: str,
    *,
    source_layer: str | None = None,
    encoding: str | None = None,
    crs: str | None = None,
    field_map: dict[str, str] | None = None,
    zip_limits: ZipLimits = ZipLimits(),
) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """Read a user's file as gridmap layer ``layer``.

    Parameters
    ----------
    path : a .gpkg, .geojson/.json, .shp (with its sidecars), .zip (holding one of these)
        or .csv/.txt (lon/lat, 经度/纬度, x/y or WKT columns).
    layer : the layer kind to import as (street, community, grid, …).
    source_layer : which layer or member of a multi-layer file or archive.
    encoding : text encoding of a shapefile or CSV (gbk, gb18030, utf-8…); detected if
        omitted.
    crs : the CRS the coordinates are in, overriding the file's; required when the file
        has none (CSV, shapefile without .prj). ``GCJ-02`` or ``BD-09`` converts the
        coordinates to WGS 84.
    field_map : ``{your_column: field}`` applied before the built-in aliases.

    Returns
    -------
    The conformed GeoDataFrame in a geographic CRS (a projected input is converted to its
    geographic base CRS, e.g. EPSG:4539 to EPSG:4490), and an :class:`ImportReport`.
    """
    spec(layer)
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    report = ImportReport(layer=layer, source=path.name)
    if encoding:
        encoding = normalise_encoding(encoding)
    with tempfile.TemporaryDirectory(prefix="gridmap-import-") as tmp:
        data_path = path
        if path.suffix.lower() == ".zip":
            data_path = _find_data_file(safe_extract(path, tmp, zip_limits), source_layer)
            report.source = f"{path.name}!{data_path.name}"
            source_layer = None if data_path.suffix.lower() != ".gpkg" else source_layer
        suffix = data_path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            raise InputError(
                f"{path.name}: files ending in '{suffix}' are not supported; use "
                + ", ".join(SUPPORTED_SUFFIXES)
            )
        if suffix in (".csv", ".txt"):
            gdf = _read_csv(data_path, encoding, report)
        elif suffix == ".shp":
            gdf = _read_shapefile(data_path, encoding, report)
        else:
            gdf = _read_ogr(data_path, source_layer, layer, report, encoding)

    columns = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    texts = columns + [v for c in _text_columns(gdf) for v in gdf[c]]
    garbled = garbled_examples(texts)
    if garbled:
        raise InputError(
            f"{report.source}: text looks garbled ({', '.join(repr(g) for g in garbled)}): "
            "Chinese read in the wrong encoding. Fix: say the encoding with --encoding gbk "
            "(or gb18030, utf-8); nothing was imported"
        )

    gdf, applied = map_fields(gdf, layer, field_map)
    report.field_map = applied

    datum = None
    if crs:
        stated, datum = parse_crs(crs)
        if gdf.crs is not None and not gdf.crs.equals(stated):
            report.notes.append(f"the file says {gdf.crs.to_string()}; using {crs} as stated")
        gdf = gdf.set_crs(stated, allow_override=True)
    elif gdf.crs is None:
        raise LayerError(
            f"{report.source} has no coordinate reference system, so its coordinates cannot "
            "be placed. Fix: state it, e.g. --crs EPSG:4490 (CGCS2000 lon/lat), EPSG:4326 "
            "(WGS 84 / GPS), EPSG:4539 (CGCS2000 Gauss-Kruger CM 90E, metres), or GCJ-02 / "
            "BD-09 for points copied from AMap, Tencent or Baidu maps"
        )
    present = gdf.geometry[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    if len(present):
        problems = coordinate_problems(present.total_bounds, gdf.crs)
        if problems:
            raise LayerError(
                f"{report.source}: coordinates do not fit {gdf.crs.to_string()}:", problems
            )
    if datum:
        gdf = _to_wgs84_from(datum, gdf)
        report.notes.append(f"converted {datum.upper()} coordinates to WGS 84")
    if gdf.crs.is_projected:
        base = gdf.crs.geodetic_crs
        gdf = gdf.to_crs(base)
        report.notes.append(f"reprojected to {base.name} ({base.to_string()}) for storage")

    gdf = conform(gdf, layer, renamed=applied)
    report.features = len(gdf)
    report.crs = gdf.crs.to_string()
    return gdf, report
