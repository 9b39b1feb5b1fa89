"""``python -m geo check DATASET [--format json|text] [-o FILE] [--export FINDINGS.gpkg]``
``python -m geo fix DATASET --layer grid [--save] [-o PROPOSAL.gpkg]``
``python -m geo propose DATASET --community CODE | --street CODE [--band 300-500] [-o F]``
(each with ``--lang zh|en``: the report's language; check prints both by default)
``python -m geo align DATASET --layer police_area|police_beat [--band MIN-MAX] [-o FILE]``

The command-line shell of the checker. It is the one part of ``geo`` that touches files:
it loads the dataset through ``layers`` and hands GeoDataFrames to :mod:`geo.checker`.
Exit status of ``check``: 0 clean, 1 findings, 2 unusable input (one-line reason on stderr).
``fix`` shows the proposed repair, re-validates it and saves it only with ``--save`` and
only when the re-validation finds nothing new, as one revertible change of the layer:
0 saved (or nothing to fix), 1 proposal shown but not saved, 2 unusable input or an
unsafe proposal.
``propose`` prints proposed cells per community beside the current ones and writes them
for review (nothing is stored; adopt on the map or through the API): 0 every cell in the
band, 1 the band not met somewhere (the reason printed), 2 unusable input.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import unicodedata

from geo import strict_json
from geo.findings import Tolerances, new_since


def _progress(lang: str | None = None):
    """Progress lines on stderr when it is a terminal (each step in Chinese with ``lang``
    "zh"); silent otherwise."""
    if not sys.stderr.isatty():
        return None
    start = time.perf_counter()

    def say(message: str) -> None:
        if lang == "zh":
            message = getattr(message, "zh", message)
        print(
            f"\r\033[K[{time.perf_counter() - start:6.1f} s] {message}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return say


def _say(args):
    """``say(zh, en)``: the text in the language the command was asked for (--lang)."""
    from geo.report import in_language

    return lambda zh, en: in_language(args.lang, zh, en)


def _pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded to ``width`` terminal columns (a Chinese character takes two)."""
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    fill = " " * max(width - shown, 0)
    return fill + text if right else text + fill


def _fix(args, tolerances) -> int:
    import getpass

    from geo.checker import check_dataset
    from geo.errors import InputError
    from geo.repair import propose_fixes
    from layers.export import export_layer
    from layers.storage import open_store
    from layers.storage.edits import now

    t = _say(args)
    store = open_store(args.dataset)
    layers = store.load()
    if args.layer not in layers:
        raise InputError(f"{store.location} has no layer '{args.layer}'",
                         zh=f"{store.location} 中没有图层“{args.layer}”")  # fmt: skip
    before = check_dataset(layers, tolerances=tolerances)
    metric = layers[args.layer].to_crs(before.metric_crs)
    proposal = propose_fixes(
        metric,
        args.layer,
        before.findings,
        tolerances=tolerances,
        max_overlap_width=args.max_overlap_width,
    )
    left_alone = t("  未处理：", "  left alone: ")
    if not len(proposal.changes):
        print(
            t(
                f"图层 {args.layer} 没有可自动修复的问题",
                f"nothing to fix automatically in '{args.layer}'",
            )
        )
        for s in proposal.skipped:
            print(f"{left_alone}{s}")
        return 0
    print(
        t(
            f"图层 {args.layer} 的修复方案（尚未保存）：",
            f"Proposed repair of '{args.layer}' (not saved yet):",
        )
    )
    for c in proposal.changes.itertuples(index=False):
        print(f"  {c.code}: {c.action} ({c.area_m2:+,.2f} m²) — {c.finding}")
    for s in proposal.skipped:
        print(f"{left_alone}{s}")
    candidate = dict(layers)
    candidate[args.layer] = proposal.layer.to_crs(layers[args.layer].crs)
    after = check_dataset(candidate, tolerances=tolerances)
    new = list(new_since(before.findings, after.findings).itertuples(index=False))
    print(t(f"重新检查：修复前 {len(before.findings)} 个问题，修复后 {len(after.findings)} 个。",
            f"Re-validated: {len(before.findings)} findings before, {len(after.findings)} after."))  # fmt: skip
    for r in new:
        detail = r.detail_zh if args.lang == "zh" and isinstance(r.detail_zh, str) else r.detail
        print(t(f"  新增 {r.rule}（{r.layer}）：{', '.join(r.features)}（{detail}）",
                f"  NEW {r.rule} in {r.layer}: {', '.join(r.features)} ({detail})"))  # fmt: skip
    if args.output:
        export_layer(candidate[args.layer], args.output, layer=args.layer)
        print(t(f"方案已写入 {args.output}", f"proposal written to {args.output}"))
    if new:
        print(t("修复会带来新问题，不能保存。", "The repair would introduce findings; it cannot be saved."),
              file=sys.stderr)  # fmt: skip
        return 2
    if not args.save:
        print(t("加 --save 再运行以保存。", "Run again with --save to store it."))
        return 1
    n = len(proposal.changes)
    change = store.write_layer(  # one change of the layer as a whole: listed, revertible
        args.layer,
        candidate[args.layer],
        record={"author": getpass.getuser(), "at": now(),
                "reason": f"python -m geo fix: {n} repair(s)"},
    )  # fmt: skip
    print(t(f"已保存到 {store.location}，为图层 {args.layer} 的第 {change} 号修改（可撤销）",
            f"saved '{args.layer}' in {store.location} as change {change} (revertible)"))  # fmt: skip
    return 0


def _propose(args) -> int:
    from geo.proposals import propose_for
    from geo.redraw import METHODS_ZH
    from layers.export import csv_safe, export_layer
    from layers.storage import open_store

    t = _say(args)
    lo, hi = _band(args.band)
    store = open_store(args.dataset)
    layers = store.load()
    result = propose_for(
        layers, community=args.community, street=args.street, band=(lo, hi), seed=args.seed
    )
    m, cur = result.metrics, result.current
    scope = {"community": "社区", "street": "街道"}.get(result.scope, result.scope)
    print(t(
        f"{scope} {result.code} 的网格方案，每格 {lo:.0f}-{hi:.0f} 户（户数来自："
        f"{METHODS_ZH.get(m['figures_from'], m['figures_from'])}；"
        f"{m['seconds']} 秒）",
        f"Proposal for {result.scope} {result.code}, {lo:.0f}-{hi:.0f} households per cell "
        f"(households from: {m['figures_from']}; {m['seconds']} s)",
    ))  # fmt: skip
    for code, p in result.communities.items():
        if p.cells is None:
            print(t(f"  {code}：无方案：{p.reason}", f"  {code}: no proposal: {p.reason}"))
            continue
        pm = p.metrics
        print(t(
            f"  {code}：{pm['cells']} 格，{pm['min_households']:.0f}-{pm['max_households']:.0f} 户，"
            f"调整 {pm['households_moved']:.0f} 户",
            f"  {code}: {pm['cells']} cells, {pm['min_households']:.0f}-"
            f"{pm['max_households']:.0f} households, {pm['households_moved']:.0f} moved",
        ) + ("" if p.feasible else f" — {p.reason}"))  # fmt: skip
    print(f"  {'':24}{_pad(t('现状', 'current'), 8, right=True)}"
          f"{_pad(t('方案', 'proposed'), 10, right=True)}")  # fmt: skip
    for zh, en, key in (
        ("网格数", "cells", "cells"),
        ("户数在范围内的网格", "cells within the band", "cells_in_band"),
        ("户数标准差", "spread (std, households)", "spread_households"),
        ("平均 Polsby-Popper 紧凑度", "mean Polsby-Popper", "mean_polsby_popper"),
    ):
        print(
            f"  {_pad(t(zh, en), 24)}{cur[key] if cur[key] is not None else '-':>8}"
            f"{m[key] if m[key] is not None else '-':>10}"
        )
    print(t(f"  调整户数：{m['households_moved']:.0f}，涉及 {len(result.moves)} 个单元",
            f"  households moved: {m['households_moved']:.0f} in {len(result.moves)} units"))  # fmt: skip
    if args.output and result.cells is not None:
        out = result.cells.to_crs(layers["grid"].crs)
        path = export_layer(out, args.output, layer="grid")
        moves = path.with_name(path.stem + "_moves.csv")
        csv_safe(result.moves).to_csv(moves, index=False, encoding="utf-8-sig")
        print(t(f"方案网格已写入 {path}，调整清单（单元、原网格、新网格）写入 {moves}",
                f"proposed cells written to {path}, moves (unit, old cell, new cell) to {moves}"))  # fmt: skip
    return 0 if result.feasible else 1


def _band(text: str | None):
    """``MIN-MAX`` as a pair of numbers (None: no band)."""
    from geo.errors import InputError

    if not text:
        return None
    try:
        lo, hi = (int(v) for v in text.split("-"))
    except ValueError:
        raise InputError(
            f"--band must look like 300-500 (whole households); got '{text}'",
            zh=f"--band 须形如 300-500（整户数），而不是“{text}”",
        ) from None
    return lo, hi


def _align(args) -> int:
    from geo.dataset import Dataset
    from geo.kinds import KINDS
    from geo.realign import aligned_layout, propose_for_layer
    from layers.export import export_layer, table_bytes
    from layers.storage import open_store

    store = open_store(args.dataset)
    stored = store.load()
    r = propose_for_layer(Dataset(stored), args.layer, unit=args.unit, band=_band(args.band),
                          time_limit=args.time_limit)  # fmt: skip
    zh = args.lang == "zh"
    m = r.summary
    head = (f"{args.layer} 按整{KINDS[r.follows].zh}调整方案：" if zh
            else f"Aligned layout of {args.layer} as whole {KINDS[r.follows].en_plural.lower()}: ")  # fmt: skip
    print(head + {"optimal": ("最优" if zh else "optimal"),
                  "feasible": ("可行（未证明最优）" if zh else "feasible, not proved optimal"),
                  "infeasible": ("无可行方案" if zh else "no layout")}[r.status]
          + f" ({m['solver']}, {m['seconds']} s)")  # fmt: skip
    for reason in r.reasons:
        print("  " + reason["zh" if zh else "en"])
    if r.status == "infeasible":
        return 1
    print(
        f"  调整 {m['households_moved']:,.1f} 户、{m['population_moved']:,.1f} 人、"
        f"{m['area_moved_m2']:,.0f} m²，{m['pieces']} 块（另有碎片 {m['slivers']} 块），"
        f"警务站 {m['posts_moved']} 个；最少可能 {m['households_moved_fewest']:,.1f} 户"
        if zh else
        f"  moves {m['households_moved']:,.1f} households, {m['population_moved']:,.1f} people, "
        f"{m['area_moved_m2']:,.0f} m² in {m['pieces']} pieces (and {m['slivers']} slivers), "
        f"{m['posts_moved']} police posts; the fewest possible {m['households_moved_fewest']:,.1f}"
    )  # fmt: skip
    for t in r.transfers[r.transfers["kind"] == "real"].itertuples(index=False):
        src = (
            t.from_name
            if isinstance(t.from_name, str)
            else ("无（三不管）" if zh else "nobody (三不管)")
        )
        posts = (
            f" 警务站 {'、'.join(t.post_names)}"
            if zh and t.posts
            else (f" posts {', '.join(t.post_names)}" if t.posts else "")
        )
        print(f"  {t.unit_name} {t.unit}: {src} → {t.to_name}, {t.area_m2:,.0f} m², "
              f"{t.households:,.1f} {'户' if zh else 'households'}{posts}")  # fmt: skip
    for s in r.stations.itertuples(index=False):
        if s.units_before == s.units_after and s.households_before == s.households_after:
            continue  # only the stations the layout changes
        print(f"  {s.name} {s.code}: {s.households_before:,.0f} → {s.households_after:,.0f} "
              f"{'户' if zh else 'households'}, {len(s.units_after)} "
              f"{('个单元' if zh else 'units')}")  # fmt: skip
    if args.output:
        path = args.output
        suffix = path.rsplit(".", 1)[-1].lower()
        if suffix in ("csv", "xlsx"):
            with open(path, "wb") as f:
                f.write(table_bytes(r.transfer_list(), suffix, sheet="transfers"))
            print(f"transfer list written to {path}")
        elif suffix == "json":
            with open(path, "w", encoding="utf-8") as f:
                f.write(strict_json.dumps(r.to_dict(), indent=1))
            print(f"proposal written to {path}")
        else:  # the new outlines from the stored units themselves (no reprojection)
            layout = aligned_layout(stored[args.layer], stored[r.follows], r.assignment)
            export_layer(layout, path, layer=args.layer)
            print(f"proposed {args.layer} written to {path}")
    return 0


def main(argv=None) -> int:
    from geo.kinds import hierarchy, jurisdictions, partitions

    ap = argparse.ArgumentParser(prog="python -m geo", description="Check a gridmap dataset.")
    sub = ap.add_subparsers(dest="command", required=True)
    fx = sub.add_parser(
        "fix", help="propose (and with --save store) repairs of slivers and small overlaps"
    )
    fx.add_argument("dataset")
    fx.add_argument("--layer", required=True, choices=partitions())
    fx.add_argument("--save", action="store_true", help="store the repair if re-validation passes")
    fx.add_argument(
        "--max-overlap-width",
        type=float,
        default=None,
        help="fix overlaps narrower than this many metres (default: sliver width)",
    )
    fx.add_argument("-o", "--output", help="write the repaired layer to this file for review")
    fx.add_argument("--lang", choices=["zh", "en"], default="en", help="the report's language")
    for p in (fx,):
        p.add_argument("--noise-width", type=float, default=Tolerances.noise_width)
        p.add_argument("--sliver-width", type=float, default=Tolerances.sliver_width)
    pr = sub.add_parser(
        "propose",
        help="propose grid cells within a household band for a community or a whole street",
    )
    pr.add_argument("dataset")
    which = pr.add_mutually_exclusive_group(required=True)
    which.add_argument("--community", help="a community code")
    which.add_argument("--street", help="a street code: each of its communities in turn")
    pr.add_argument(
        "--band", default="300-500", help="households per cell, MIN-MAX (default 300-500)"
    )
    pr.add_argument("--seed", type=int, default=0, help="random seed of max-p (default 0)")
    pr.add_argument("--lang", choices=["zh", "en"], default="en", help="the report's language")
    pr.add_argument(
        "-o",
        "--output",
        help="write the proposed cells here (.gpkg, .geojson, .shp) and the moves beside it as CSV",
    )
    al = sub.add_parser(
        "align",
        help="propose police areas of whole streets (beats of whole communities) moving the "
        "fewest households",
    )
    al.add_argument("dataset")
    al.add_argument("--layer", required=True, choices=list(jurisdictions()))
    al.add_argument("--unit", choices=hierarchy(),
                    help="the units to follow (default: the layer kind's own)")  # fmt: skip
    al.add_argument("--band", help="households per station after the change, MIN-MAX")
    al.add_argument("--time-limit", type=float, default=60.0,
                    help="seconds the solver may take (default 60)")  # fmt: skip
    al.add_argument("--lang", choices=["zh", "en"], default="zh")
    al.add_argument(
        "-o", "--output",
        help="write the proposed layer (.gpkg, .geojson, .shp), the transfer list (.csv, "
        ".xlsx) or the whole proposal (.json)",
    )  # fmt: skip
    c = sub.add_parser("check", help="validate every layer of a dataset")
    c.add_argument(
        "dataset",
        help="a .gpkg file, a postgresql:// URL or a GeoParquet folder "
        "(python -m layers export DATASET --geoparquet DIR)",
    )
    c.add_argument("--format", choices=["text", "json"], default="text")
    c.add_argument(
        "--lang",
        choices=["zh", "en"],
        help="the text report in Chinese or English only (default: both)",
    )
    c.add_argument("-o", "--output", help="write the report here instead of standard output")
    c.add_argument(
        "--export",
        metavar="FILE",
        help="also write the findings as a GIS layer (.gpkg or .geojson) for QGIS",
    )
    c.add_argument(
        "--noise-width",
        type=float,
        default=Tolerances.noise_width,
        help="pieces narrower than this many metres are ignored (default 0.01)",
    )
    c.add_argument(
        "--sliver-width",
        type=float,
        default=Tolerances.sliver_width,
        help="pieces narrower than this many metres are slivers (default 1)",
    )
    c.add_argument(
        "--workers",
        type=int,
        default=1,
        help="check part by part on this many dask worker processes (a LocalCluster; "
        "GRIDMAP_DASK=tcp://host:8786 for a cluster's scheduler), each reading its own part",
    )
    c.add_argument(
        "--parts",
        action="store_true",
        help="check part by part (groups of streets, each measured in its own zone) even "
        "when the dataset lies in one zone; a dataset spanning several zones always is",
    )
    args = ap.parse_args(argv)

    from geo.checker import check_dataset
    from geo.partitioned import check_partitioned, spans_zones
    from geo.report import text_report
    from layers.errors import GridmapError
    from layers.export import export_findings
    from layers.storage import open_source

    try:
        if args.command == "propose":
            return _propose(args)
        if args.command == "align":
            return _align(args)
        tolerances = Tolerances(args.noise_width, args.sliver_width)
        if args.command == "fix":
            return _fix(args, tolerances)
        store = open_source(args.dataset)
        if not store.list_layers():
            raise GridmapError(
                f"{store.location} holds no gridmap layers (or does not exist)",
                zh=f"{store.location} 中没有 gridmap 图层（或不存在）",
            )
        say = _progress(args.lang)
        if args.parts or args.workers > 1 or os.environ.get("GRIDMAP_DASK") or spans_zones(store):
            report = check_partitioned(
                store, tolerances=tolerances, workers=max(args.workers, 1), progress=say
            )
        else:
            report = check_dataset(store.load(), tolerances=tolerances, progress=say)
        if say:
            print("\r\033[K", end="", file=sys.stderr)
        if args.export:
            export_findings(report.findings, args.export)
    except (GridmapError, ValueError, OSError) as err:
        said = err.message(args.lang) if isinstance(err, GridmapError) else str(err)
        label = "错误：" if args.lang == "zh" else "error: "
        print(label + " ".join(line.strip() for line in said.splitlines()), file=sys.stderr)
        return 2
    if args.format == "json":
        text = strict_json.dumps(report.to_dict(store.location), indent=1)
    else:
        text = text_report(report, store.location, lang=args.lang)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
