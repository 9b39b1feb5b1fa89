"""Command line for datasets: ``python -m layers summary|import|export``.

Exit status: 0 done, 2 unusable input (the reason on stderr, in English and, where it has
one, Chinese; never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import unicodedata

from geo import strict_json
from geo.layerdiff import MODES
from layers.dataset import import_file, summarise
from layers.errors import GridmapError
from layers.export import export_layer
from layers.fields import parse_field_options
from layers.schema import LAYERS
from layers.storage import open_store

__all__ = ["main"]


def _pad(text: str, width: int) -> str:
    """Left-justify to ``width`` terminal columns; Chinese characters take two."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - used, 0)


def _print_summary(info: dict, dataset: str) -> None:
    print(f"Dataset {dataset}")
    print(f"  measured in {info['metric_crs']} ({info.get('metric_crs_name', '')})")
    for name, s in info["layers"].items():
        label = LAYERS[name].label
        line = f"  {name:12s} {_pad(label, 10)} {s['features']:6d} features"
        if "area_km2" in s:
            line += f"  {s['area_km2']:9.2f} km²"
        if "length_km" in s:
            line += f"  {s['length_km']:9.1f} km"
        print(line)
        if "households" in s:
            h = s["households_per_feature"]
            print(
                f"  {'':25s} households {s['households']:,} (per feature {h['min']}–"
                f"{h['max']}, median {h['median']:g}); population {s['population']:,}"
            )
        if "kinds" in s:
            print(f"  {'':25s} " + ", ".join(f"{k} {v}" for k, v in s["kinds"].items()))


def _summary(args) -> int:
    store = open_store(args.dataset)
    layers = store.load()
    if not layers:
        raise GridmapError(
            f"{store.location} holds no gridmap layers (or does not exist)",
            zh=f"{store.location} 中没有 gridmap 图层（或不存在）",
        )
    info = summarise(layers)
    if args.format == "json":
        print(strict_json.dumps({"dataset": store.location, **info}, indent=2))
    else:
        _print_summary(info, store.location)
    return 0


def _import(args) -> int:
    store = open_store(args.dataset)
    report, done = import_file(
        store,
        args.file,
        args.layer,
        mode=args.mode,
        reason=args.reason,
        source_layer=args.source_layer,
        encoding=args.encoding,
        crs=args.crs,
        field_map=parse_field_options(args.field),
    )
    print("\n".join(report.lines(args.lang)))
    counts, stored, sep = _IMPORTED[args.lang]
    whole = sep + done["whole"][args.lang] if done.get("whole") else ""
    print(counts.format(**done))
    print(stored.format(**{**done, "where": store.location, "whole": whole}))
    return 0


# What an import says it did, in each language: the counts, where it is stored (and, for
# a layer written whole, why), and the separator before that why.
_IMPORTED = {
    "en": ("{mode}: {added} added, {changed} changed, {removed} removed, {unchanged} unchanged",
           "stored in {where} as change {change_id} (revertible{whole})", "; "),
    "zh": ("{mode}：新增 {added}，修改 {changed}，删除 {removed}，不变 {unchanged}",
           "已保存到 {where}，为第 {change_id} 号修改（可撤销{whole}）", "；"),
}  # fmt: skip


def _export(args) -> int:
    store = open_store(args.dataset)
    if args.geoparquet:
        from layers.geoparquet import export_geoparquet

        written = export_geoparquet(store, args.geoparquet)
        print(f"{', '.join(written)} → {args.geoparquet} (spatially partitioned GeoParquet)")
        return 0
    if not args.layer or not args.output:
        raise GridmapError(
            "say which layer to write where (LAYER OUTPUT), or --geoparquet DIR",
            zh="请说明把哪个图层写到哪里（图层 输出文件），或用 --geoparquet 文件夹",
        )
    out = export_layer(
        store.read_layer(args.layer), args.output, layer=args.layer, encoding=args.encoding
    )
    print(f"{args.layer} → {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m layers", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summary", help="list the layers of a dataset with their figures")
    s.add_argument("dataset", help="a .gpkg file or a postgresql:// URL")
    s.add_argument("--format", choices=["text", "json"], default="text")
    s.set_defaults(run=_summary)

    i = sub.add_parser("import", help="import a file as one layer of a dataset")
    i.add_argument("dataset", help="a .gpkg file (created if missing) or a postgresql:// URL")
    i.add_argument("file", help=".gpkg, .geojson, .shp, .zip (shapefile inside), .csv or .xlsx")
    i.add_argument("--layer", required=True, choices=list(LAYERS))
    i.add_argument(
        "--mode",
        choices=list(MODES),
        help="what the file does to a layer that already holds features: "
        + "; ".join(f"{m}: {en}" for m, (en, _) in MODES.items())
        + " (required then; a new layer is created)",
    )
    i.add_argument("--reason", help="why, recorded with the change (default: the file's name)")
    i.add_argument("--lang", choices=["en", "zh"], default="en", help="language of the report")
    i.add_argument(
        "--source-layer",
        help="layer, archive member or spreadsheet sheet to read (default: the only one)",
    )
    i.add_argument(
        "--encoding", help="text encoding, e.g. gbk, gb18030, utf-8 (detected if omitted)"
    )
    i.add_argument(
        "--crs",
        help="CRS of the coordinates: EPSG:4490, EPSG:4326, EPSG:4539, "
        "GCJ-02 or BD-09 (converted to WGS 84)",
    )
    i.add_argument(
        "--field",
        action="append",
        metavar="COLUMN=FIELD",
        help="map a column to a field, e.g. --field 户数=households (repeatable)",
    )
    i.set_defaults(run=_import)

    e = sub.add_parser("export", help="write one layer to a GIS file, or the dataset as GeoParquet")
    e.add_argument("dataset")
    e.add_argument("layer", nargs="?", choices=list(LAYERS))
    e.add_argument("output", nargs="?", help=".gpkg, .geojson or .shp")
    e.add_argument(
        "--geoparquet",
        metavar="DIR",
        help="write every layer as spatially partitioned GeoParquet into DIR (what "
        "python -m geo check DIR --workers N reads part by part)",
    )
    e.add_argument(
        "--encoding",
        default=None,
        help="shapefile text encoding (default UTF-8; gbk for older desktop GIS)",
    )
    e.set_defaults(run=_export)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except GridmapError as err:
        print(f"error: {err}", file=sys.stderr)
        if err.zh and err.zh != str(err):
            print(f"错误：{err.zh}", file=sys.stderr)
    except OSError as err:  # a file the system would not let us read or write
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
    except Exception as err:  # noqa: BLE001 - never a traceback for a user's file
        if os.environ.get("GRIDMAP_DEBUG"):
            raise
        print(
            f"error: {args.command} failed unexpectedly ({type(err).__name__}); nothing was "
            "stored. This is a gridmap bug: please report it with the file "
            "(GRIDMAP_DEBUG=1 shows the details)",
            file=sys.stderr,
        )
    return 2
