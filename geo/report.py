"""A check report as text a planner can read, in Chinese and English."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from geo.checker import Report
from geo.findings import RULES, SLIVER
from geo.kinds import KINDS, jurisdictions

__all__ = ["FINDINGS_LAYERS", "rule_label", "layer_label", "findings_layers", "text_report"]

# The findings as layers a desktop GIS loads (the service's collections, the export's
# GeoPackage layers): name → (Chinese title, English title).
FINDINGS_LAYERS = {
    "findings_area": ("问题（面）", "findings: areas (gaps, overlaps, …)"),
    "findings_point": ("问题（点）", "findings: points (invalid geometry, duplicate codes, …)"),
}


def rule_label(rule: str, layer: str | None = None) -> str:
    """'重叠 Overlap', or on a jurisdiction layer '交叉管 重叠 Overlap' (both languages)."""
    r = RULES[rule]
    label = f"{r.zh} {r.en}"
    if layer in jurisdictions() and r.zh_jurisdiction:
        label = f"{r.zh_jurisdiction} {label}"
    return label


def layer_label(layer: str) -> str:
    """'派出所辖区 police area'."""
    k = KINDS.get(layer)
    return f"{k.zh} {k.en}" if k else layer


def findings_layers(findings: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    """``findings`` (a report's) as the :data:`FINDINGS_LAYERS`, in WGS 84 lon/lat: the
    polygonal ones in ``findings_area``, the others (points) in ``findings_point``. Each
    row names its rule in Chinese (``rule_zh``); the codes it concerns are joined with
    ``;`` (``features``), as desktop GIS tables hold text, not lists."""
    out = findings.to_crs("EPSG:4326").copy()
    out["features"] = out["features"].map(";".join)
    out.insert(out.columns.get_loc("rule") + 1, "rule_zh", out["rule"].map(lambda r: RULES[r].zh))
    polygonal = out.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    area, point = FINDINGS_LAYERS
    return {
        area: out[polygonal].reset_index(drop=True),
        point: out[~polygonal].reset_index(drop=True),
    }


def _finding_line(row) -> str:
    label = rule_label(row.rule, row.layer)
    if row.kind == "sliver":
        label += f" ({SLIVER['zh']} {SLIVER['en']})"
    codes = ", ".join(row.features)
    line = f"  - {label}: {codes}"
    if pd.notna(row.area_m2):
        line += f" — {row.area_m2:,.1f} m²"
        if pd.notna(row.width_m):
            line += f", {row.width_m:,.2f} m wide"
    if row.detail:
        line += f"\n      {row.detail}"
    if isinstance(row.detail_zh, str) and row.detail_zh and row.detail_zh != row.detail:
        line += f"\n      {row.detail_zh}"
    return line


def text_report(report: Report, dataset: str | None = None) -> str:
    """The report as plain text: layers, summary by rule, each finding, alignment."""
    lines = [
        f"gridmap check{f' of {dataset}' if dataset else ''}",
        f"measured in {report.metric_crs.name} (EPSG:{report.metric_crs.to_epsg()}); "
        f"noise < {report.tolerances.noise_width} m ignored, slivers < "
        f"{report.tolerances.sliver_width} m wide",
    ]
    lines.append("")
    lines.append(
        "图层 Layers: " + ", ".join(f"{n} {v['features']}" for n, v in report.layers.items())
    )
    if report.clean:
        lines.append("\n未发现问题 No findings.")
        return "\n".join(lines)
    lines.append(
        "\n汇总 Summary: " + ", ".join(f"{rule_label(r)} {n}" for r, n in report.summary().items())
    )
    for layer, group in report.findings.groupby("layer", sort=False):
        lines.append(f"\n{layer_label(layer)} — {len(group)} finding(s)")
        lines += [_finding_line(row) for row in group.itertuples(index=False)]
    for name, table in report.alignment.items():
        lines.append(
            f"\n对齐 Alignment of {layer_label(name)} with {layer_label(table['unit_layer'].iloc[0])}"
        )
        exact = (
            (table["shared_pct"] >= 100)
            & (table["unmatched_in_units_m2"] <= 0)
            & (table["boundary_offset_m"].fillna(0) <= report.tolerances.noise_width)
        )
        for row in table[~exact].itertuples(index=False):
            lines.append(
                f"  {row.code} {row.name or ''}: matches {', '.join(row.matched) or '—'}; "
                f"{row.shared_pct:.1f}% inside, {row.mismatched_area_m2:,.0f} m² outside, "
                f"{row.unmatched_in_units_m2:,.0f} m² of its units not covered, "
                f"boundary offset {row.boundary_offset_m} m"
            )
        if exact.any():
            lines.append(f"  {int(exact.sum())} other(s) match whole units exactly")
    return "\n".join(lines)
