"""Writing a layer to a file for desktop GIS users (GeoPackage, GeoJSON, Shapefile)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from layers.errors import InputError

__all__ = [
    "export_layer",
    "export_findings",
    "csv_cell",
    "csv_safe",
    "csv_writer",
    "TABLE_FORMATS",
    "table_bytes",
]

# GDAL's RFC 7946 mode: counter-clockwise exteriors, no "crs" member, 7 decimals.
_RFC7946 = {"RFC7946": "YES", "WRITE_NAME": "NO"}
_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}


# What makes a spreadsheet read a cell as a formula (=HYPERLINK(…), +cmd|…, @SUM(…)).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """``value`` as a CSV cell a spreadsheet shows as text: text that starts like a
    formula gets a leading ``'`` (Excel and LibreOffice hide it); numbers are unchanged.

    >>> csv_cell("=1+2"), csv_cell("@SUM(A1)"), csv_cell("-1"), csv_cell(-1), csv_cell("八廓")
    ("'=1+2", "'@SUM(A1)", "'-1", -1, '八廓')
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell passed through :func:`csv_cell`, for ``to_csv``."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(csv_cell)
    return out


#: The spreadsheet formats :func:`table_bytes` writes.
TABLE_FORMATS = ("csv", "xlsx")


def table_bytes(frame: pd.DataFrame, fmt: str, *, sheet: str = "table") -> bytes:
    r"""``frame`` as a spreadsheet file's bytes: ``csv`` (UTF-8 with a byte-order mark, so
    that Excel shows Chinese text) or ``xlsx`` (one sheet named ``sheet``, by openpyxl).
    Lists in cells are joined by spaces and text that starts like a formula is quoted
    (:func:`csv_safe`) in both.

    >>> table_bytes(pd.DataFrame({"code": ["=1"], "units": [["a", "b"]]}), "csv")[3:]
    b"code,units\n'=1,a b\n"
    """
    if fmt not in TABLE_FORMATS:
        raise InputError(
            f"'{fmt}' is not a table format; must be one of {', '.join(TABLE_FORMATS)}",
            zh=f"“{fmt}”不是表格格式；可用：{', '.join(TABLE_FORMATS)}",
        )
    frame = csv_safe(
        frame.apply(
            lambda col: col.map(lambda v: " ".join(map(str, v)) if isinstance(v, list) else v)
        )
        if len(frame.columns)
        else frame
    )
    if fmt == "csv":
        return ("\ufeff" + frame.to_csv(index=False)).encode("utf-8")
    out = io.BytesIO()
    frame.to_excel(out, sheet_name=sheet[:31], index=False, engine="openpyxl")
    return out.getvalue()


class csv_writer:  # noqa: N801 - used like csv.writer, which it wraps
    """``csv.writer(file)`` whose rows pass through :func:`csv_cell`.

    >>> import io; out = io.StringIO(); _ = csv_writer(out).writerow(["=cmd", 3]); out.getvalue()
    "'=cmd,3\\r\\n"
    """

    def __init__(self, file, **kwargs):
        self._writer = csv.writer(file, **kwargs)

    def writerow(self, row):
        return self._writer.writerow([csv_cell(v) for v in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


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
        raise InputError(
            f"cannot export to '{path.suffix}'; use one of {', '.join(_DRIVERS)}",
            zh=f"不能导出为“{path.suffix}”；可用：{'、'.join(_DRIVERS)}",
        )
    options = {}
    if driver == "GeoJSON":
        gdf = gdf.to_crs("EPSG:4326")
        options.update(_RFC7946)
    if driver == "ESRI Shapefile":
        options["encoding"] = encoding or "UTF-8"
    path.parent.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(gdf, path, layer=layer, driver=driver, **options)
    return path


def export_findings(findings: gpd.GeoDataFrame, path: str | os.PathLike) -> Path:
    """Write checker findings for desktop GIS, in WGS 84 lon/lat.

    A GeoPackage gets the two layers of :func:`geo.report.findings_layers`,
    ``findings_area`` (gaps, overlaps, … as polygons) and ``findings_point`` (invalid
    geometry, duplicate codes, parent mismatches as points); GeoJSON (RFC 7946) gets one
    file with both. Feature codes are joined with ``;``.
    """
    from geo.report import findings_layers

    path = Path(path)
    driver = _DRIVERS.get(path.suffix.lower())
    if driver not in ("GPKG", "GeoJSON"):
        raise InputError(
            f"findings can be exported as .gpkg or .geojson, not '{path.suffix}'",
            zh=f"检查结果可导出为 .gpkg 或 .geojson，不能为“{path.suffix}”",
        )
    parts = findings_layers(findings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    if driver == "GeoJSON":
        both = gpd.GeoDataFrame(pd.concat(parts.values(), ignore_index=True), crs="EPSG:4326")
        pyogrio.write_dataframe(both, path, driver=driver, **_RFC7946)
        return path
    for name, part in parts.items():
        pyogrio.write_dataframe(part, path, layer=name, driver="GPKG")
    return path
