"""A check report as text a planner can read, in Chinese and English."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from geo.checker import Report
from geo.findings import RULES, SLIVER
from geo.kinds import KINDS, jurisdictions

__all__ = [
    "FINDINGS_LAYERS",
    "in_language",
    "rule_label",
    "layer_label",
    "findings_layers",
    "text_report",
]

# The findings as layers a desktop GIS loads (the service's collections, the export's
# GeoPackage layers): name → (Chinese title, English title).
FINDINGS_LAYERS = {
    "findings_area": ("问题（面）", "findings: areas (gaps, overlaps, …)"),
    "findings_point": ("问题（点）", "findings: points (invalid geometry, duplicate codes, …)"),
}


def in_language(lang: str | None, zh: str, en: str, both: str | None = None) -> str:
    """``zh`` or ``en`` for a report in that language; for None (both languages) ``both``,
    or by default the two, Chinese first ('重叠 Overlap'). A sentence that would read
    twice gives its own ``both`` (the English one, as the report wrote it before it had a
    language)."""
    return {"zh": zh, "en": en}.get(lang, f"{zh} {en}" if both is None else both)


def _head(lang: str | None, zh: str, en: str) -> str:
    """A heading before a list: '汇总：', 'Summary: ' or '汇总 Summary: '."""
    return {"zh": f"{zh}：", "en": f"{en}: "}.get(lang, f"{zh} {en}: ")


def rule_label(rule: str, layer: str | None = None, lang: str | None = None) -> str:
    """'重叠 Overlap', or on a jurisdiction layer '交叉管 重叠 Overlap' (``lang`` None: both
    languages; "zh" or "en": that one)."""
    r = RULES[rule]
    zh = r.zh
    if layer in jurisdictions() and r.zh_jurisdiction:
        zh = f"{r.zh_jurisdiction} {zh}"
    return in_language(lang, zh, r.en)


def layer_label(layer: str, lang: str | None = None) -> str:
    """'派出所辖区 police area' (``lang`` as for :func:`rule_label`)."""
    k = KINDS.get(layer)
    return in_language(lang, k.zh, k.en) if k else layer


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


def _finding_line(row, lang: str | None) -> str:
    label = rule_label(row.rule, row.layer, lang)
    if row.kind == "sliver":
        label += f" ({in_language(lang, SLIVER['zh'], SLIVER['en'])})"
    codes = ", ".join(row.features)
    line = f"  - {label}{'：' if lang == 'zh' else ': '}{codes}"
    if pd.notna(row.area_m2):
        line += f" — {row.area_m2:,.1f} m²"
        if pd.notna(row.width_m):
            wide = f", {row.width_m:,.2f} m wide"
            line += in_language(lang, f"，宽 {row.width_m:,.2f} m", wide, both=wide)
    zh = row.detail_zh if isinstance(row.detail_zh, str) and row.detail_zh else None
    details = {"en": [row.detail], "zh": [zh or row.detail]}.get(
        lang, [row.detail] + ([zh] if zh and zh != row.detail else [])
    )
    return line + "".join(f"\n      {d}" for d in details if d)


def text_report(report: Report, dataset: str | None = None, lang: str | None = None) -> str:
    """The report as plain text: layers, summary by rule, each finding, alignment; in
    ``lang`` ("zh" or "en"), or both (None)."""
    crs = f"{report.metric_crs.name} (EPSG:{report.metric_crs.to_epsg()})"
    tol = report.tolerances
    heading = {  # both languages: Chinese line, then English line
        "zh": [f"gridmap 检查{f'：{dataset}' if dataset else ''}",
               f"量测坐标系 {crs}；忽略窄于 {tol.noise_width} m 的噪声，窄于 "
               f"{tol.sliver_width} m 的为碎片"],
        "en": [f"gridmap check{f' of {dataset}' if dataset else ''}",
               f"measured in {crs}; noise < {tol.noise_width} m ignored, slivers < "
               f"{tol.sliver_width} m wide"],
    }  # fmt: skip
    lines = heading.get(lang) or heading["en"]
    lines = [*lines, ""]
    layers = ", ".join(f"{n} {v['features']}" for n, v in report.layers.items())
    lines.append(f"{_head(lang, '图层', 'Layers')}{layers}")
    if report.clean:
        lines.append(
            "\n" + in_language(lang, "未发现问题。", "No findings.", "未发现问题 No findings.")
        )
        return "\n".join(lines)
    summary = ", ".join(f"{rule_label(r, lang=lang)} {n}" for r, n in report.summary().items())
    lines.append(f"\n{_head(lang, '汇总', 'Summary')}{summary}")
    for layer, group in report.findings.groupby("layer", sort=False):
        n = len(group)
        count = in_language(lang, f"{n} 个问题", f"{n} finding(s)", both=f"{n} finding(s)")
        lines.append(f"\n{layer_label(layer, lang)} — {count}")
        lines += [_finding_line(row, lang) for row in group.itertuples(index=False)]
    for name, table in report.alignment.items():
        unit = table["unit_layer"].iloc[0]
        lines.append("\n" + in_language(
            lang,
            f"对齐：{layer_label(name, 'zh')}与{layer_label(unit, 'zh')}",
            f"Alignment of {layer_label(name, 'en')} with {layer_label(unit, 'en')}",
            both=f"对齐 Alignment of {layer_label(name)} with {layer_label(unit)}",
        ))  # fmt: skip
        exact = (
            (table["shared_pct"] >= 100)
            & (table["unmatched_in_units_m2"] <= 0)
            & (table["boundary_offset_m"].fillna(0) <= tol.noise_width)
        )
        for row in table[~exact].itertuples(index=False):
            matched = ", ".join(row.matched) or "—"
            zh = (
                f"  {row.code} {row.name or ''}：对应 {matched}；{row.shared_pct:.1f}% 在内，"
                f"{row.mismatched_area_m2:,.0f} m² 在外，所含单元有 "
                f"{row.unmatched_in_units_m2:,.0f} m² 未覆盖，边界偏移 {row.boundary_offset_m} m"
            )
            en = (f"  {row.code} {row.name or ''}: matches {matched}; "
                  f"{row.shared_pct:.1f}% inside, {row.mismatched_area_m2:,.0f} m² outside, "
                  f"{row.unmatched_in_units_m2:,.0f} m² of its units not covered, "
                  f"boundary offset {row.boundary_offset_m} m")  # fmt: skip
            lines.append(in_language(lang, zh, en, both=en))
        if exact.any():
            k = int(exact.sum())
            en = f"  {k} other(s) match whole units exactly"
            lines.append(in_language(lang, f"  其余 {k} 个与单元完全吻合", en, both=en))
    return "\n".join(lines)
