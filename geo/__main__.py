"""``python -m geo check DATASET [--format json|text] [-o FILE] [--export FINDINGS.gpkg]``

The command-line shell of the checker. It is the one part of ``geo`` that touches files:
it loads the dataset through ``layers`` and hands GeoDataFrames to :mod:`geo.check`.
Exit status: 0 clean, 1 findings, 2 unusable input (one-line reason on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from geo.findings import Tolerances


def _progress():
    """Progress lines on stderr when it is a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        return None
    start = time.perf_counter()

    def say(message: str) -> None:
        print(f"\r\033[K[{time.perf_counter() - start:6.1f} s] {message}", end="",
              file=sys.stderr, flush=True)

    return say


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m geo", description="Check a gridmap dataset.")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="validate every layer of a dataset")
    c.add_argument("dataset", help="a .gpkg file or a postgresql:// URL")
    c.add_argument("--format", choices=["text", "json"], default="text")
    c.add_argument("-o", "--output", help="write the report here instead of standard output")
    c.add_argument("--export", metavar="FILE",
                   help="also write the findings as a GIS layer (.gpkg or .geojson) for QGIS")
    c.add_argument("--noise-width", type=float, default=Tolerances.noise_width,
                   help="pieces narrower than this many metres are ignored (default 0.01)")
    c.add_argument("--sliver-width", type=float, default=Tolerances.sliver_width,
                   help="pieces narrower than this many metres are slivers (default 1)")
    args = ap.parse_args(argv)

    from geo.check import check_dataset
    from geo.report import text_report
    from layers.errors import GridmapError
    from layers.export import export_findings
    from layers.storage import open_store

    try:
        tolerances = Tolerances(args.noise_width, args.sliver_width)
        store = open_store(args.dataset)
        layers = store.load()
        if not layers:
            raise GridmapError(f"{store.location} holds no gridmap layers (or does not exist)")
        say = _progress()
        report = check_dataset(layers, tolerances=tolerances, progress=say)
        if say:
            print("\r\033[K", end="", file=sys.stderr)
        if args.export:
            export_findings(report.findings, args.export)
    except (GridmapError, ValueError, OSError) as err:
        print("error: " + " ".join(line.strip() for line in str(err).splitlines()),
              file=sys.stderr)
        return 2
    if args.format == "json":
        text = json.dumps(report.to_dict(store.location), ensure_ascii=False, indent=1)
    else:
        text = text_report(report, store.location)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
