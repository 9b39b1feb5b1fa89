"""Reading users' files into a conforming layer: GeoPackage, GeoJSON, Shapefile (plain or
zipped), KML (plain or KMZ; never with a DTD), and tables with coordinates or WKT: CSV and Excel workbooks (.xlsx, read with
openpyxl; its XML through defusedxml, so entity expansion is refused).

:func:`read_layer_file` is what both the command line and the web upload call. It finds the
data, fixes the text encoding, maps fields, settles the CRS (refusing a missing or
implausible one), converts GCJ-02/BD-09 points to WGS 84 when asked, and conforms the result
to the layer's schema. Everything it decided is returned in an :class:`ImportReport`.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import threading
import warnings
from dataclasses import dataclass, field
from glob import escape as glob_escape
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from geo import strict_json
from geo.chinacoords import bd09_to_wgs84, gcj02_to_wgs84
from geo.crs import coordinate_problems
from layers.encoding import detect_encoding, garbled_examples, normalise_encoding
from layers.errors import InputError, LayerError
from layers.fields import map_fields
from layers.safezip import ZipLimits, safe_extract
from layers.schema import conform, is_nested, nonfinite_rows, spec
from layers.tempdirs import import_folder
from layers.unreadable import wkb_problem, wkt_problem

__all__ = ["ImportLimits", "ImportReport", "read_layer_file", "parse_crs", "SUPPORTED_SUFFIXES"]

SUPPORTED_SUFFIXES = (
    ".gpkg", ".geojson", ".json", ".shp", ".zip", ".csv", ".txt", ".xlsx", ".kml", ".kmz"
)  # fmt: skip
# archives unpacked before reading (a .kmz is a zipped KML)
_ARCHIVES = (".zip", ".kmz")

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


# The import report's lines in each language (ImportReport.lines)
_REPORT_LINES = {
    "en": {"read": "{r.layer}: {r.features} features from {r.source}", "crs": "  CRS: ",
           "encoding": "  text encoding: ", "fields": "  fields: ", "sep": ", ",
           "note": "  note: ", "warning": "  warning: "},
    "zh": {"read": "{r.layer}：从 {r.source} 读取 {r.features} 个要素", "crs": "  坐标系：",
           "encoding": "  文字编码：", "fields": "  字段：", "sep": "，",
           "note": "  说明：", "warning": "  注意："},
}  # fmt: skip


@dataclass(frozen=True)
class ImportLimits:
    """What one import may bring, the same from the command line and the browser: the
    file's size in bytes (an upload's body; a zip's unpacked members are bounded by
    ``zip``), its features, and the archive limits (members, bytes, compression ratio)."""

    max_bytes: int = 1024**3
    max_features: int = 2_000_000
    zip: ZipLimits = ZipLimits()


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
    warnings: list[str] = field(default_factory=list)
    #: ``notes`` and ``warnings`` in Chinese, one for each (:meth:`note`, :meth:`warn`)
    notes_zh: list[str] = field(default_factory=list)
    warnings_zh: list[str] = field(default_factory=list)
    #: the file's own columns, as read (before they were mapped to fields)
    columns: list[str] = field(default_factory=list)
    #: the sheets of a workbook, the layers of a GeoPackage: what else could be read
    sheets: list[str] = field(default_factory=list)

    def note(self, en: str, zh: str) -> None:
        """Record what the import decided, in English and Chinese."""
        self.notes.append(en)
        self.notes_zh.append(zh)

    def warn(self, en: str, zh: str) -> None:
        """Record what the user should check, in English and Chinese."""
        self.warnings.append(en)
        self.warnings_zh.append(zh)

    def given(self) -> list[str]:
        """The layer's fields the file has: columns named as a field, or mapped to one."""
        fields = [f.name for f in spec(self.layer).fields]
        mapped = set(self.field_map.values())
        return [f for f in fields if f in mapped or f in self.columns]

    def lines(self, lang: str = "en") -> list[str]:
        """The report as lines of text, in ``lang`` ("en" or "zh")."""
        say = _REPORT_LINES[lang]
        out = [say["read"].format(r=self), say["crs"] + str(self.crs)]
        if self.encoding:
            out.append(say["encoding"] + self.encoding)
        if self.field_map:
            out.append(
                say["fields"] + say["sep"].join(f"{k} → {v}" for k, v in self.field_map.items())
            )
        zh = lang == "zh"
        out += [say["note"] + n for n in (self.notes_zh if zh else self.notes)]
        out += [say["warning"] + w for w in (self.warnings_zh if zh else self.warnings)]
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
            "EPSG:4326 (WGS 84), EPSG:4539, GCJ-02 or BD-09",
            zh=f"“{text}”不是坐标系；请给出如 EPSG:4490（CGCS2000）、EPSG:4326（WGS 84）、"
            "EPSG:4539、GCJ-02 或 BD-09",
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


# What a file's first bytes say it is, and what each supported suffix must hold.
_SIGNATURES = [
    (b"SQLite format 3\x00", "a GeoPackage (SQLite) database", "SQLite 数据库（GeoPackage）"),
    (b"PK\x03\x04", "a zip archive", "zip 压缩包"),
    (b"\x00\x00\x27\x0a", "a shapefile's .shp", "shapefile 的 .shp 文件"),
    (b"<", "XML (GML, KML or another XML format)", "XML（GML、KML 等）"),
    (b"{", "JSON", "JSON"),
    (b"[", "JSON", "JSON"),
    (b"\x1e", "JSON", "JSON"),
]
_EXPECTED = {
    ".gpkg": ("a GeoPackage (SQLite) database", "GeoPackage", "GeoPackage（SQLite 数据库）"),
    ".shp": ("a shapefile's .shp", "Shapefile", "Shapefile"),
    ".geojson": ("JSON", "GeoJSON", "GeoJSON"),
    ".json": ("JSON", "GeoJSON", "GeoJSON"),
    ".xlsx": ("a zip archive", "an Excel workbook (.xlsx)", "Excel 工作簿（.xlsx）"),
    ".kml": ("XML (GML, KML or another XML format)", "KML", "KML"),
}
# KML is XML: read only without a DTD (where entities are declared, and a "billion laughs"
# file expands to gigabytes); KML itself never needs one
_XML_DECLARATIONS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# what GDAL's LIBKML driver adds to every KML layer, kept only where it holds something
_KML_STYLE_COLUMNS = (
    "id",
    "description",
    "timestamp",
    "begin",
    "end",
    "altitudeMode",
    "tessellate",
    "extrude",
    "visibility",
    "drawOrder",
    "icon",
    "snippet",
)


def _check_content(path: Path, shown: str) -> None:
    """Refuse a file whose content is not what its suffix says, before GDAL opens it.

    GDAL picks a driver by content, so a GML file named ``.geojson`` would be parsed as
    XML, entities and all (a "billion laughs" file expands to gigabytes). gridmap reads
    only the formats it names, each recognised by its first bytes. The only XML it reads
    is KML (a ``.kml`` that says ``<kml``), and only without a DTD: a file declaring a
    DOCTYPE or an ENTITY anywhere is refused before any parser sees it.
    """
    with open(path, "rb") as f:
        head = f.read(64)
    if not head.strip():
        raise InputError(
            f"{shown} is empty; nothing was imported", zh=f"{shown} 是空文件；未导入任何内容"
        )
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip() if head[:1] != b"\x00" else head
    found = next(((en, zh) for sig, en, zh in _SIGNATURES if start.startswith(sig)), None)
    suffix = path.suffix.lower()
    if suffix == ".kml":
        _check_kml(path, shown)
    if suffix in _EXPECTED:
        want, fmt, fmt_zh = _EXPECTED[suffix]
        if found is not None and found[0] == want:
            return
        what, what_zh = found or ("not that format", "不是该格式")
        raise InputError(
            f"{shown} is named '{suffix}' but its content is {what}, not {fmt}; nothing was "
            f"read. Fix: export the layer again as {fmt} (gridmap reads GeoPackage, GeoJSON, "
            "Shapefile, KML, CSV and Excel, recognised by their content, and parses no other "
            "XML such as GML)",
            zh=f"{shown} 的扩展名是 '{suffix}'，但内容是{what_zh}，不是 {fmt_zh}；未读取。修正："
            f"重新导出为 {fmt_zh}（gridmap 按内容识别 GeoPackage、GeoJSON、Shapefile、KML、CSV "
            "和 Excel，不解析 GML 等其他 XML 文件）",
        )
    if suffix in (".csv", ".txt") and found is not None and found[0] != "JSON":
        raise InputError(
            f"{shown} is named '{suffix}' but its content is {found[0]}, not a table of text; "
            "nothing was read. Fix: export the table as CSV",
            zh=f"{shown} 的扩展名是 '{suffix}'，但内容是{found[1]}，不是文本表格；未读取。"
            "修正：将表格导出为 CSV",
        )


def _check_kml(path: Path, shown: str) -> None:
    """Refuse a .kml that is not KML or that declares a DTD or entities (anywhere)."""
    with open(path, "rb") as f:
        head = f.read(4096)
        if b"<kml" not in head:
            raise InputError(
                f"{shown} is named '.kml' but holds no <kml> element; nothing was read",
                zh=f"{shown} 的扩展名是 '.kml'，但其中没有 <kml> 元素；未读取",
            )
        tail = b""
        f.seek(0)
        while chunk := f.read(1 << 20):
            if _XML_DECLARATIONS.search(tail + chunk):
                raise InputError(
                    f"{shown} declares a DTD or entities (<!DOCTYPE or <!ENTITY), which KML "
                    "never needs and which can make a small file expand without bound; "
                    "nothing was read. Fix: export the KML again from your GIS",
                    zh=f"{shown} 声明了 DTD 或实体（<!DOCTYPE 或 <!ENTITY）：KML 不需要它们，"
                    "且它们可使小文件无限膨胀；未读取。修正：从 GIS 软件重新导出 KML",
                )
            tail = chunk[-16:]


def _without_kml_styling(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A KML layer without the display columns GDAL adds to every placemark, where they
    hold nothing (they would only crowd the column mapping)."""
    empty = [c for c in _KML_STYLE_COLUMNS if c in gdf.columns and gdf[c].isna().all()]
    return gdf.drop(columns=empty)


# SHAPE_RESTORE_SHX is a process-wide GDAL setting: one reader at a time sets it.
_SHX_LOCK = threading.Lock()


def _read_frame(path: Path, **kwargs) -> tuple[gpd.GeoDataFrame, dict[int, tuple[str, str]]]:
    """Read with pyogrio, a geometry GEOS cannot build (a ring not closed, too few points)
    read as missing; return the frame and ``{row: (English, Chinese) reason}`` for them."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        # GDAL warns of each unclosed ring, shapely of NaN coordinates: both are reported
        # below, feature by feature, in the user's terms.
        warnings.simplefilter("ignore", RuntimeWarning)
        gdf = pyogrio.read_dataframe(path, on_invalid="ignore", **kwargs)
        absent = np.flatnonzero(shapely.is_missing(gdf.geometry.values))
        unreadable = {}
        if len(absent):
            raw = pyogrio.raw.read(
                path, columns=[], **{k: v for k, v in kwargs.items() if k in ("layer", "encoding")}
            )[2]
            unreadable = {int(i): wkb_problem(raw[i]) for i in absent if raw[i] is not None}
    return gdf, unreadable


def _read_csv(path: Path, encoding: str | None, report: ImportReport) -> gpd.GeoDataFrame:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if encoding is None:
        encoding, how = detect_encoding(raw.splitlines())
        report.note(f"text encoding {encoding}: {how}", f"文字编码 {encoding}（自动识别）")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path.name} is not valid {encoding} text at byte {err.start}; "
            "say the right encoding with --encoding",
            zh=f"{path.name} 在第 {err.start} 字节处不是有效的 {encoding} 文本；请用 --encoding "
            "指定正确的编码",
        ) from None
    report.encoding = encoding
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    return _table_geometry(df, path.name)


def _read_xlsx(
    path: Path, sheet: str | None, report: ImportReport, folder: Path, limits: ZipLimits
) -> gpd.GeoDataFrame:
    """A sheet of an Excel workbook (the first unless ``sheet`` names one) as a table with
    coordinates or WKT, every cell read as text (codes keep their digits). The workbook
    is a zip of XML: it is unpacked under ``limits`` first, so a zip bomb is refused
    before openpyxl reads it."""
    unpacked = folder / "workbook"
    unpacked.mkdir()
    safe_extract(path, unpacked, limits)
    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except Exception:  # noqa: BLE001 - openpyxl's own text would not help the user
        raise InputError(
            f"{path.name} cannot be read as an Excel workbook (.xlsx): it is damaged or was "
            "saved in another format; nothing was imported. Fix: save it again as .xlsx or CSV",
            zh=f"{path.name} 无法作为 Excel 工作簿（.xlsx）读取：文件损坏或为其他格式；未导入。"
            "修正：重新另存为 .xlsx 或 CSV",
        ) from None
    with book:
        sheets = [str(n) for n in book.sheet_names]
        if sheet is not None and sheet not in sheets:
            raise InputError(
                f"{path.name} has no sheet '{sheet}'; it has {', '.join(sheets)}",
                zh=f"{path.name} 中没有工作表“{sheet}”；已有：{'、'.join(sheets)}",
            )
        chosen = sheet or sheets[0]
        df = pd.read_excel(book, sheet_name=chosen, dtype=str, keep_default_na=False,
                           na_values=[""])  # fmt: skip
    df.columns = [str(c).strip() for c in df.columns]
    df = df.dropna(how="all")  # rows Excel keeps only because they were once formatted
    report.source += f" (sheet {chosen})"
    report.sheets = sheets
    if len(sheets) > 1 and sheet is None:
        report.note(
            f"read the first sheet, '{chosen}', of {len(sheets)} ({', '.join(sheets)}); "
            "choose another with --source-layer",
            f"读取了 {len(sheets)} 张工作表（{'、'.join(sheets)}）中的第一张“{chosen}”；可另选",
        )
    return _table_geometry(df, f"{path.name} (sheet {chosen})")


def _table_geometry(df: pd.DataFrame, name: str) -> tuple[gpd.GeoDataFrame, dict]:
    """A table of text with coordinate columns (lon/lat, 经度/纬度, x/y) or a WKT column
    as a GeoDataFrame without CRS, and ``{row: (English, Chinese) reason}`` for the rows
    whose geometry cannot be read."""
    unreadable: dict[int, tuple[str, str]] = {}
    wkt = _pick(df.columns, _WKT)
    lon, lat = _pick(df.columns, _LON), _pick(df.columns, _LAT)
    if wkt is not None:
        texts = df[wkt].fillna("").replace("", None).to_numpy()
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            geom = shapely.from_wkt(texts, on_invalid="ignore")
        for i in np.flatnonzero(shapely.is_missing(geom) & pd.notna(texts)):
            unreadable[int(i)] = wkt_problem(texts[i]) or (
                f"column '{wkt}' does not hold WKT text (it starts '{str(texts[i])[:30]}')",
                f"'{wkt}' 列不是 WKT 文本（开头为 '{str(texts[i])[:30]}'）",
            )
        df = df.drop(columns=[wkt])
    elif lon is not None and lat is not None:
        x = pd.to_numeric(df[lon], errors="coerce")
        y = pd.to_numeric(df[lat], errors="coerce")
        bad = np.flatnonzero((x.isna() & df[lon].notna()) | (y.isna() & df[lat].notna()))
        if len(bad):
            lines = ", ".join(str(i + 1) for i in bad[:10])
            raise InputError(
                f"{name}: '{lon}'/'{lat}' are not numbers on data line(s) {lines}",
                zh=f"{name}：第 {lines} 条数据的“{lon}”/“{lat}”不是数字",
            )
        geom = shapely.points(x.to_numpy(), y.to_numpy())
        geom[x.isna().to_numpy() | y.isna().to_numpy()] = None
        df = df.drop(columns=[lon, lat])
    else:
        columns = ", ".join(map(str, df.columns))
        raise InputError(
            f"{name} has no coordinates: give columns lon/lat (or 经度/纬度, x/y) or a "
            f"WKT column named wkt; its columns are {columns}",
            zh=f"{name} 没有坐标：须有经度/纬度（lon/lat、x/y）列或名为 wkt 的 WKT 列；"
            f"现有列：{columns}",
        )
    return gpd.GeoDataFrame(df.reset_index(drop=True), geometry=geom, crs=None), unreadable


def _sidecar(path: Path, suffix: str) -> Path | None:
    """The file beside ``path`` with its stem and ``suffix``, in any letter case."""
    for other in path.parent.glob(f"{glob_escape(path.stem)}.*"):
        if other.stem == path.stem and other.suffix.lower() == suffix:
            return other
    return None


def _restore_shx(path: Path, folder: Path, report: ImportReport) -> Path:
    """A shapefile without its .shx index, in ``folder`` with the index rebuilt by GDAL
    (SHAPE_RESTORE_SHX) from the .shp itself; the user's folder is not written to."""
    if path.parent.resolve() != folder.resolve():
        linked = folder / "restored"
        linked.mkdir()
        for part in path.parent.glob(f"{glob_escape(path.stem)}.*"):
            if part.stem == path.stem:
                try:
                    (linked / part.name).symlink_to(part.resolve())
                except OSError:
                    shutil.copyfile(part, linked / part.name)
        path = linked / path.name
    with _SHX_LOCK:
        before = pyogrio.get_gdal_config_option("SHAPE_RESTORE_SHX")
        pyogrio.set_gdal_config_options({"SHAPE_RESTORE_SHX": True})
        try:
            pyogrio.read_info(path)
        except Exception:  # noqa: BLE001 - said in the user's terms below
            raise InputError(
                f"{path.name} has no .shx index and it could not be rebuilt from the .shp; "
                "nothing was imported. Fix: add the .shx file (it comes with the .shp)",
                zh=f"{path.name} 缺少 .shx 索引文件，且无法从 .shp 重建；未导入。修正：补上与 "
                ".shp 一同提供的 .shx 文件",
            ) from None
        finally:
            pyogrio.set_gdal_config_options({"SHAPE_RESTORE_SHX": before})
    report.warn(
        f"{path.stem}.shx (the index of {path.name}) was missing; it was rebuilt from the "
        ".shp. Check that the feature count is what you expect, and keep the .shx with the "
        "file next time",
        f"缺少 {path.stem}.shx（{path.name} 的索引），已从 .shp 重建。请核对要素数量，下次请"
        "连同 .shx 一起提供",
    )
    return path


def _read_shapefile(
    path: Path, encoding: str | None, report: ImportReport, folder: Path
) -> gpd.GeoDataFrame:
    """Read a shapefile byte-faithfully, then decode its text in the right encoding."""
    cpg = _sidecar(path, ".cpg")
    if encoding is None and cpg is not None:
        encoding = normalise_encoding(cpg.read_text(errors="replace").strip())
        report.note(
            f"text encoding {encoding} from {cpg.name}", f"文字编码 {encoding}（据 {cpg.name}）"
        )
    if _sidecar(path, ".shx") is None:
        path = _restore_shx(path, folder, report)
    # Latin-1 maps bytes to code points one to one, so the raw bytes can be recovered.
    gdf, unreadable = _read_frame(path, encoding="ISO-8859-1")  # GDAL spelling of Latin-1
    text_cols = _text_columns(gdf)
    raw_values = [v.encode("latin-1") for c in text_cols for v in gdf[c] if isinstance(v, str)]
    raw_names = [str(c).encode("latin-1") for c in gdf.columns if c != gdf.geometry.name]
    if encoding is None:
        encoding, how = detect_encoding(raw_names + raw_values)
        note = f"text encoding {encoding}: {how}"
        note_zh = f"文字编码 {encoding}（自动识别）"
        if encoding != "utf-8":
            note += " (the file has no .cpg; add one to say so)"
            note_zh += "；文件没有 .cpg，可添加以注明编码"
        report.note(note, note_zh)

    def decode(v, where):
        if not isinstance(v, str):
            return v
        try:
            return v.encode("latin-1").decode(encoding)
        except UnicodeDecodeError:
            raise InputError(
                f"{path.name}: {where} is not valid {encoding} text; say the right "
                "encoding with --encoding (e.g. gbk, gb18030, utf-8)",
                zh=f"{path.name}：{where} 不是有效的 {encoding} 文本；请用 --encoding 指定正确"
                "的编码（如 gbk、gb18030、utf-8）",
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
    return gdf.rename(columns=renames), unreadable


def _read_ogr(
    path: Path, source_layer: str | None, layer: str, report: ImportReport, encoding: str | None
) -> gpd.GeoDataFrame:
    try:
        available = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except Exception:  # noqa: BLE001 - GDAL's own text would not help the user
        raise InputError(
            f"{path.name} cannot be read as a GIS file: it is damaged, incomplete or not in "
            "the format its name says; nothing was imported. Fix: export it again",
            zh=f"{path.name} 无法作为 GIS 文件读取：文件损坏、不完整或与扩展名所示格式不符；"
            "未导入。修正：重新导出该文件",
        ) from None
    report.sheets = available  # what the user may choose from, refused or not
    if source_layer is None:
        if len(available) == 1:
            source_layer = available[0]
        elif layer in available:
            source_layer = layer
        else:
            raise InputError(
                f"{path.name} holds several layers ({', '.join(available)}); "
                "say which with --source-layer NAME",
                zh=f"{path.name} 含多个图层（{'、'.join(available)}）；请选择其中一个"
                "（命令行：--source-layer 图层名）",
            )
    elif source_layer not in available:
        raise InputError(
            f"{path.name} has no layer '{source_layer}'; it has {', '.join(available)}",
            zh=f"{path.name} 中没有图层“{source_layer}”；已有：{'、'.join(available)}",
        )
    report.source += f" (layer {source_layer})" if len(available) > 1 else ""
    kwargs = {"encoding": encoding} if encoding else {}
    return _read_frame(path, layer=source_layer, **kwargs)


def _feature(gdf: gpd.GeoDataFrame, i: int) -> tuple[str, str]:
    """How a message names row ``i``: by number (1-based, as in the file) and code."""
    code = gdf["code"].iloc[i] if "code" in gdf.columns else None
    if isinstance(code, (str, int, np.integer)) and str(code).strip():
        return f"feature {i + 1} (code {code})", f"第 {i + 1} 个要素（编码 {code}）"
    return f"feature {i + 1}", f"第 {i + 1} 个要素"


def _flat(gdf: gpd.GeoDataFrame, report: ImportReport) -> gpd.GeoDataFrame:
    """Drop heights (Z) and measures (M): gridmap keeps plane coordinates, and GDAL's
    GeoPackage writer cannot store measures."""
    geoms = gdf.geometry.values
    extra = shapely.has_z(geoms) | shapely.has_m(geoms)
    if not extra.any():
        return gdf
    what = " and ".join(
        w for w, has in (("heights (Z)", shapely.has_z(geoms).any()),
                         ("measures (M)", shapely.has_m(geoms).any())) if has
    )  # fmt: skip
    report.note(
        f"dropped the {what} of {int(extra.sum())} feature(s): gridmap keeps x/y coordinates",
        f"去掉了 {int(extra.sum())} 个要素的高程（Z）或量测值（M）：gridmap 只保留平面坐标",
    )
    gdf = gdf.copy()
    gdf.geometry = shapely.force_2d(geoms)
    return gdf


def _refuse_unusable_geometry(
    gdf: gpd.GeoDataFrame, unreadable: dict[int, tuple[str, str]], source: str
) -> None:
    """Refuse the file, naming each feature, when a geometry could not be read (a ring
    not closed or too short) or has a coordinate that is not a number (NaN) or infinite."""
    rows = dict(unreadable)
    nan = "a coordinate is not a number (NaN) or is infinite"
    for i in nonfinite_rows(gdf.geometry.values):
        rows.setdefault(int(i), (nan, "有坐标不是数字（NaN）或为无穷大"))
    if not rows:
        return
    order = sorted(rows)
    shown = order[:20]
    en = [f"{_feature(gdf, i)[0]}: {rows[i][0]}" for i in shown]
    zh = [f"{_feature(gdf, i)[1]}：{rows[i][1]}" for i in shown]
    if len(order) > len(shown):
        en.append(f"and {len(order) - len(shown)} more")
        zh.append(f"另有 {len(order) - len(shown)} 个")
    raise LayerError(
        f"{source}: {len(order)} feature(s) have geometry that cannot be used; nothing was "
        "imported. Fix: correct or remove them in your GIS (QGIS: Vector › Geometry Tools › "
        "Check Validity) and import again:",
        en,
        zh=f"{source}：{len(order)} 个要素的几何图形无法使用；未导入。修正：在 GIS 软件中改正或删除"
        "这些要素后重新导入：",
        zh_problems=zh,
    )


def _objects_from_json_text(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """GeoJSON properties that are objects or lists in some features and plain values in
    others reach us from GDAL as JSON text: turn that text back into the object, so it is
    refused or kept as JSON like any other object, never stored as a name."""

    def parsed(v):
        if isinstance(v, str) and v[:1] in "{[" and v.rstrip()[-1:] in "}]":
            try:
                obj = json.loads(v)
            except ValueError:
                return v
            return obj if isinstance(obj, (dict, list)) else v
        return v

    for c in _text_columns(gdf):
        gdf[c] = gdf[c].astype(object).map(parsed)
    return gdf


def _nested_as_json(gdf: gpd.GeoDataFrame, layer: str, report: ImportReport) -> gpd.GeoDataFrame:
    """Columns gridmap does not use whose values are objects or lists (GeoJSON allows
    them) are kept as JSON text, and the import says so; in gridmap's own fields they are
    refused by :func:`layers.schema.conform`."""
    own = {f.name for f in spec(layer).fields}
    for c in gdf.columns:
        if c == gdf.geometry.name or c in own or gdf[c].dtype != object:
            continue
        nested = gdf[c].map(is_nested).to_numpy(dtype=bool)
        if nested.any():
            where = ", ".join(_feature(gdf, i)[0] for i in np.flatnonzero(nested)[:5])
            more = f" and {int(nested.sum()) - 5} more" if nested.sum() > 5 else ""
            report.note(
                f"column '{c}' holds objects or lists ({where}{more}); kept as JSON text",
                f"“{c}”列含对象或列表；以 JSON 文本保存",
            )
            gdf[c] = [strict_json.dumps(v) if n else v for v, n in zip(gdf[c], nested)]
    return gdf


def _judge_polygons(gdf: gpd.GeoDataFrame, layer: str, report: ImportReport) -> None:
    """On the coordinates as they will be stored: refuse polygons without area (every
    point on one line); note the other invalid ones, which the check reports."""
    if "Polygon" not in spec(layer).geom_types:
        return
    geoms = gdf.geometry.values
    flat = np.flatnonzero(shapely.area(geoms) == 0)
    if len(flat):
        en = [
            f"{_feature(gdf, i)[0]}: it has no area (its points lie on one line)" for i in flat[:20]
        ]
        zh = [f"{_feature(gdf, i)[1]}：面积为零（所有点在一条直线上）" for i in flat[:20]]
        raise LayerError(
            f"{report.source}: {len(flat)} polygon(s) have no area; nothing was imported. "
            "Fix: redraw or remove them:",
            en,
            zh=f"{report.source}：{len(flat)} 个面要素面积为零；未导入。修正：重画或删除：",
            zh_problems=zh,
        )
    invalid = np.flatnonzero(~shapely.is_valid(geoms))
    if len(invalid):
        examples = "; ".join(
            f"{_feature(gdf, i)[0]}: {shapely.is_valid_reason(geoms[i]).split('[')[0]}"
            for i in invalid[:3]
        )
        report.warn(
            f"{len(invalid)} feature(s) are not valid polygons ({examples}"
            f"{' …' if len(invalid) > 3 else ''}); stored as drawn: `python -m geo check` "
            "reports them as invalid_geometry and checks a repaired copy",
            f"{len(invalid)} 个要素不是有效的面（{examples}{' …' if len(invalid) > 3 else ''}）；"
            "按原样保存：检查会将其列为几何无效，并检查修复后的副本",
        )


def _find_data_file(files: list[Path], source_layer: str | None) -> Path:
    data = [
        f
        for f in files
        if f.suffix.lower() in SUPPORTED_SUFFIXES
        and f.suffix.lower() not in _ARCHIVES
        and not f.name.startswith(("._", "."))
    ]
    if source_layer:
        named = [f for f in data if f.stem == source_layer or f.name == source_layer]
        if named:
            return named[0]
    if len(data) == 1:
        return data[0]
    if not data:
        raise InputError(
            "the archive holds no .shp, .gpkg, .geojson, .kml, .csv or .xlsx file",
            zh="压缩包中没有 .shp、.gpkg、.geojson、.kml、.csv 或 .xlsx 文件",
        )
    raise InputError(
        "the archive holds several data files ("
        + ", ".join(f.name for f in data)
        + "); say which with --source-layer NAME",
        zh="压缩包含多个数据文件（" + "、".join(f.name for f in data) + "）；请指定其中一个"
        "（命令行：--source-layer 名称）",
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
    limits: ImportLimits = ImportLimits(),
    report: ImportReport | None = None,
) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """Read a user's file as gridmap layer ``layer``.

    Parameters
    ----------
    path : a .gpkg, .geojson/.json, .shp (with its sidecars), .kml, .zip or .kmz (holding
        one of these)
        or a table: .csv/.txt or .xlsx (lon/lat, 经度/纬度, x/y or WKT columns).
    layer : the layer kind to import as (street, community, grid, …).
    source_layer : which layer or member of a multi-layer file or archive, or which
        sheet of a workbook (the first by default).
    encoding : text encoding of a shapefile or CSV (gbk, gb18030, utf-8…); detected if
        omitted.
    crs : the CRS the coordinates are in, overriding the file's; required when the file
        has none (CSV, shapefile without .prj). ``GCJ-02`` or ``BD-09`` converts the
        coordinates to WGS 84.
    field_map : ``{your_column: field}`` applied before the built-in aliases.
    limits : what the file may hold (:class:`ImportLimits`); refused beyond them.
    report : the :class:`ImportReport` to fill (a new one by default); when the file is
        refused, it says what was found before (columns, sheets, encoding), for a user
        to map the columns and read again.

    Returns
    -------
    The conformed GeoDataFrame in a geographic CRS (a projected input is converted to its
    geographic base CRS, e.g. EPSG:4539 to EPSG:4490), and an :class:`ImportReport`.
    """
    spec(layer)
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist", zh=f"{path} 不存在")
    if path.stat().st_size > limits.max_bytes:
        raise InputError(
            f"{path.name} is {path.stat().st_size:,} bytes, more than the {limits.max_bytes:,} "
            "one import may bring; nothing was imported",
            zh=f"{path.name} 大小为 {path.stat().st_size:,} 字节，超过单次导入上限 "
            f"{limits.max_bytes:,} 字节；未导入",
        )
    report = report or ImportReport(layer=layer, source=path.name)
    if encoding:
        encoding = normalise_encoding(encoding)
    with import_folder() as tmp:
        data_path = path
        if path.suffix.lower() in _ARCHIVES:
            data_path = _find_data_file(safe_extract(path, tmp, limits.zip), source_layer)
            report.source = f"{path.name}!{data_path.name}"
            source_layer = None if data_path.suffix.lower() != ".gpkg" else source_layer
        suffix = data_path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            raise InputError(
                f"{path.name}: files ending in '{suffix}' are not supported; use "
                + ", ".join(SUPPORTED_SUFFIXES),
                zh=f"{path.name}：不支持扩展名为“{suffix}”的文件；可用："
                + "、".join(SUPPORTED_SUFFIXES),
            )
        _check_content(data_path, report.source)
        if suffix in (".csv", ".txt"):
            gdf, unreadable = _read_csv(data_path, encoding, report)
        elif suffix == ".xlsx":
            gdf, unreadable = _read_xlsx(data_path, source_layer, report, tmp, limits.zip)
        elif suffix == ".shp":
            gdf, unreadable = _read_shapefile(data_path, encoding, report, tmp)
        else:
            gdf, unreadable = _read_ogr(data_path, source_layer, layer, report, encoding)
            if suffix in (".geojson", ".json"):
                gdf = _objects_from_json_text(gdf)
            if suffix == ".kml":
                gdf = _without_kml_styling(gdf)
    if len(gdf) > limits.max_features:
        raise InputError(
            f"{report.source} holds {len(gdf):,} features, more than the {limits.max_features:,} "
            "one import may bring; nothing was imported. Fix: split the file (by street, say)",
            zh=f"{report.source} 含 {len(gdf):,} 个要素，超过单次导入上限 {limits.max_features:,}；"
            "未导入。修正：拆分文件（例如按街道）",
        )
    gdf = _flat(gdf, report)

    columns = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    texts = columns + [v for c in _text_columns(gdf) for v in gdf[c]]
    garbled = garbled_examples(texts)
    if garbled:
        raise InputError(
            f"{report.source}: text looks garbled ({', '.join(repr(g) for g in garbled)}): "
            "Chinese read in the wrong encoding. Fix: say the encoding with --encoding gbk "
            "(or gb18030, utf-8); nothing was imported",
            zh=f"{report.source}：文字似为乱码（{', '.join(repr(g) for g in garbled)}），中文按错误"
            "编码读取。修正：指定文字编码 gbk（或 gb18030、utf-8）；未导入",
        )

    report.columns = columns
    gdf, applied = map_fields(gdf, layer, field_map)
    report.field_map = applied
    _refuse_unusable_geometry(gdf, unreadable, report.source)
    gdf = _nested_as_json(gdf, layer, report)

    datum = None
    if crs:
        stated, datum = parse_crs(crs)
        if gdf.crs is not None and not gdf.crs.equals(stated):
            report.note(
                f"the file says {gdf.crs.to_string()}; using {crs} as stated",
                f"文件所述坐标系为 {gdf.crs.to_string()}；按指定的 {crs} 使用",
            )
        gdf = gdf.set_crs(stated, allow_override=True)
    elif gdf.crs is None:
        raise LayerError(
            f"{report.source} has no coordinate reference system, so its coordinates cannot "
            "be placed. Fix: state it, e.g. --crs EPSG:4490 (CGCS2000 lon/lat), EPSG:4326 "
            "(WGS 84 / GPS), EPSG:4539 (CGCS2000 Gauss-Kruger CM 90E, metres), or GCJ-02 / "
            "BD-09 for points copied from AMap, Tencent or Baidu maps",
            zh=f"{report.source} 没有坐标系，无法确定坐标位置。修正：指定坐标系，如 EPSG:4490"
            "（CGCS2000 经纬度）、EPSG:4326（WGS 84 / GPS）、EPSG:4539（CGCS2000 高斯-克吕格 "
            "90°E，米），或从高德、腾讯、百度地图复制的点用 GCJ-02 / BD-09",
        )
    present = gdf.geometry[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    if len(present):
        problems = coordinate_problems(present.total_bounds, gdf.crs)
        if problems:
            raise LayerError(
                f"{report.source}: coordinates do not fit {gdf.crs.to_string()}:",
                problems,
                zh=f"{report.source}：坐标与 {gdf.crs.to_string()} 不符：",
            )
    if datum:
        gdf = _to_wgs84_from(datum, gdf)
        report.note(
            f"converted {datum.upper()} coordinates to WGS 84",
            f"已将 {datum.upper()} 坐标转换为 WGS 84",
        )
    if gdf.crs.is_projected:
        base = gdf.crs.geodetic_crs
        gdf = gdf.to_crs(base)
        report.note(
            f"reprojected to {base.name} ({base.to_string()}) for storage",
            f"已转换为 {base.name}（{base.to_string()}）保存",
        )

    gdf = conform(gdf, layer, renamed=applied)
    _judge_polygons(gdf, layer, report)
    report.features = len(gdf)
    report.crs = gdf.crs.to_string()
    return gdf, report
