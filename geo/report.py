"""A check report as text a planner can read, in Chinese and English."""

from __future__ import annotations

from geo.check import Report

__all__ = ["RULE_LABELS", "LAYER_LABELS", "text_report"]

RULE_LABELS = {
    "invalid_geometry": "几何无效 invalid geometry",
    "duplicate_code": "编码重复 duplicate code",
    "overlap": "重叠 overlap",
    "gap": "缝隙 gap",
    "not_nested": "越界 not nested in parent",
    "parent_mismatch": "上级编码不符 parent code mismatch",
    "misaligned": "跨界 misaligned",
}
LAYER_LABELS = {"street": "街道 street", "community": "社区 community", "grid": "网格 grid",
                "police_area": "派出所辖区 police area", "police_beat": "社区警务区 police beat"}
_JURISDICTION = {("police_area", "overlap"): "交叉管", ("police_area", "gap"): "三不管",
                 ("police_beat", "overlap"): "交叉管", ("police_beat", "gap"): "三不管"}


def _finding_line(row) -> str:
    label = RULE_LABELS[row.rule]
    extra = _JURISDICTION.get((row.layer, row.rule))
    if extra:
        label = f"{extra} {label}"
    if row.kind == "sliver":
        label += " (碎片 sliver)"
    codes = ", ".join(row.features)
    line = f"  - {label}: {codes}"
    if row.area_m2 is not None and row.area_m2 == row.area_m2:
        line += f" — {row.area_m2:,.1f} m², {row.width_m:,.2f} m wide"
    if row.detail:
        line += f"\n      {row.detail}"
    return line


def text_report(report: Report, dataset: str | None = None) -> str:
    """The report as plain text: layers, summary by rule, each finding, alignment."""
    lines = [f"gridmap check{f' of {dataset}' if dataset else ''}",
             f"measured in {report.metric_crs.name} (EPSG:{report.metric_crs.to_epsg()}); "
             f"noise < {report.tolerances.noise_width} m ignored, slivers < "
             f"{report.tolerances.sliver_width} m wide"]
    lines.append("")
    lines.append("图层 Layers: " + ", ".join(f"{n} {v['features']}" for n, v in report.layers.items()))
    if report.clean:
        lines.append("\n未发现问题 No findings.")
        return "\n".join(lines)
    lines.append("\n汇总 Summary: " + ", ".join(f"{RULE_LABELS[r]} {n}"
                                             for r, n in report.summary().items()))
    for layer, group in report.findings.groupby("layer", sort=False):
        lines.append(f"\n{LAYER_LABELS.get(layer, layer)} — {len(group)} finding(s)")
        lines += [_finding_line(row) for row in group.itertuples(index=False)]
    for name, table in report.alignment.items():
        lines.append(f"\n对齐 Alignment of {LAYER_LABELS[name]} with {table['unit_layer'].iloc[0]}")
        exact = ((table["shared_pct"] >= 100) & (table["unmatched_in_units_m2"] <= 0)
                 & (table["boundary_offset_m"].fillna(0) <= report.tolerances.noise_width))
        for row in table[~exact].itertuples(index=False):
            lines.append(f"  {row.code} {row.name or ''}: matches {', '.join(row.matched) or '—'}; "
                         f"{row.shared_pct:.1f}% inside, {row.mismatched_area_m2:,.0f} m² outside, "
                         f"{row.unmatched_in_units_m2:,.0f} m² of its units not covered, "
                         f"boundary offset {row.boundary_offset_m} m")
        if exact.any():
            lines.append(f"  {int(exact.sum())} other(s) match whole units exactly")
    return "\n".join(lines)
