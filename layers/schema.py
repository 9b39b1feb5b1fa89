"""The layer model: which layers a dataset holds and the fields each one must have.

A dataset is a set of GeoDataFrames keyed by layer name. Each layer kind is described in
the one registry :data:`geo.kinds.KINDS`; :func:`conform` checks a GeoDataFrame against
its kind, coerces field types (codes are text, counts are integers) and refuses it with
every problem listed.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.kinds import KINDS, Field, LayerKind, facility_kind, kind
from layers.errors import LayerError

__all__ = ["Field", "LayerKind", "LAYERS", "spec", "conform", "is_nested", "nonfinite_rows"]

# The layer kinds and their fields live in one table, geo.kinds; this module applies it.
LAYERS = KINDS
spec = kind


def _codes_as_text(values: pd.Series) -> pd.Series:
    """Codes are text: 540102001001.0 read from a numeric column becomes '540102001001'."""

    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return None
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v).strip() or None

    return values.map(one).astype(object)


def is_nested(value) -> bool:
    """Whether a property value is an object or a list (GeoJSON lets a property hold
    either) rather than one value: such a value is no code, name or count."""
    return isinstance(value, (dict, list, tuple, np.ndarray))


def nonfinite_rows(geoms) -> np.ndarray:
    """Positions of the geometries with a NaN or infinite coordinate (x or y)."""
    coords, where = shapely.get_coordinates(np.asarray(geoms), return_index=True)
    return np.unique(where[~np.isfinite(coords).all(axis=1)])


def _feature_ref(gdf: gpd.GeoDataFrame, rows, lang: str = "en") -> str:
    """Name rows by code where the layer has codes, else by row number (1-based)."""
    rows = list(rows)
    row = "第 {} 行" if lang == "zh" else "row {}"
    codes = gdf["code"] if "code" in gdf.columns else pd.Series([None] * len(gdf))
    labels = [
        str(codes.iloc[i])
        if isinstance(codes.iloc[i], str)
        or (pd.notna(codes.iloc[i]) and not is_nested(codes.iloc[i]))
        else row.format(i + 1)
        for i in rows[:10]
    ]
    more = ""
    if len(rows) > 10:
        more = f" 等另 {len(rows) - 10} 个" if lang == "zh" else f" and {len(rows) - 10} more"
    return ("、" if lang == "zh" else ", ").join(labels) + more


def conform(
    gdf: gpd.GeoDataFrame, layer: str, *, renamed: dict[str, str] | None = None
) -> gpd.GeoDataFrame:
    """Check a GeoDataFrame against the spec of ``layer`` and return a tidy copy.

    Required fields must exist and be filled; codes and names become text; counts become
    non-negative integers; facility kinds in Chinese become their English keys; geometry
    must be present, non-empty and of the layer's family. Every problem found is listed in
    one :class:`LayerError`. The CRS is not changed here. ``renamed`` (``{source
    column: field}`` from field mapping) lets messages name the user's own columns.
    """
    original = {v: k for k, v in (renamed or {}).items()}
    s = spec(layer)
    gdf = gdf.copy()
    gdf.index = pd.RangeIndex(len(gdf))
    problems: list[str] = []
    zh: list[str] = []

    def add(en: str, chinese: str) -> None:
        problems.append(en)
        zh.append(chinese)

    def ref(rows, lang="en"):
        return _feature_ref(gdf, rows, lang)

    for f in s.fields:
        if f.name not in gdf.columns:
            if f.required:
                others = [
                    f"{original[c]} (read as {c})" if c in original else str(c)
                    for c in gdf.columns
                    if c != gdf.geometry.name
                ]
                add(
                    f"missing field '{f.name}' ({f.label}); the file has: "
                    f"{', '.join(map(str, others)) or 'no attribute columns'}. Fix: map your "
                    f"column to it, e.g. --field YOUR_COLUMN={f.name}",
                    f"缺少字段 '{f.name}'（{f.label}）；文件中有：{'、'.join(map(str, others)) or '无属性列'}。"
                    f"修正：把您的列对应到它，如 --field 您的列名={f.name}",
                )
            continue
        col = gdf[f.name]
        nested = col.map(is_nested).to_numpy(dtype=bool)
        reported = nested.copy()  # rows already named: not named again as empty
        if nested.any():
            col = gdf[f.name] = col.where(~nested, None)
            rows = np.flatnonzero(nested)
            add(
                f"field '{f.name}' ({f.label}) holds an object or a list, not a single value, "
                f"in {ref(rows)}. Fix: give it plain text or a number",
                f"字段 '{f.name}'（{f.label}）在 {ref(rows, 'zh')} 中是对象或列表，而不是单个值。"
                "修正：填写文本或数字",
            )
        if f.type == "text":
            gdf[f.name] = (
                _codes_as_text(col)
                if f.name in ("code", "parent_code")
                else col.map(
                    lambda v: (
                        None
                        if v is None or (isinstance(v, float) and np.isnan(v))
                        else str(v).strip() or None
                    )
                ).astype(object)
            )
        else:
            nums = pd.to_numeric(col, errors="coerce")
            infinite = np.isinf(nums.astype("float64")).to_numpy()
            nums = nums.mask(infinite)  # ±inf is no count and no measure
            bad = np.flatnonzero(nums.isna() & col.notna())
            reported[bad] = True
            if len(bad):
                add(
                    f"field '{f.name}' ({f.label}) is not a number in {ref(bad)}",
                    f"字段 '{f.name}'（{f.label}）在 {ref(bad, 'zh')} 中不是数字",
                )
            if f.type == "count":
                neg = np.flatnonzero((nums < 0) | (nums.notna() & (nums % 1 != 0)))
                if len(neg):
                    add(
                        f"field '{f.name}' ({f.label}) must be a whole number ≥ 0 in {ref(neg)}",
                        f"字段 '{f.name}'（{f.label}）在 {ref(neg, 'zh')} 中必须是不小于 0 的整数",
                    )
                gdf[f.name] = nums.astype("Int64") if nums.isna().any() else nums.astype("int64")
            else:
                gdf[f.name] = nums
        if f.required:
            missing = np.flatnonzero(gdf[f.name].isna().to_numpy() & ~reported)
            if len(missing):
                add(
                    f"field '{f.name}' ({f.label}) is empty in {ref(missing)}",
                    f"字段 '{f.name}'（{f.label}）在 {ref(missing, 'zh')} 中为空",
                )

    if "kind" in gdf.columns and layer == "facility":
        gdf["kind"] = gdf["kind"].map(lambda k: facility_kind(k) if k else k)

    geom = gdf.geometry.values
    empty = np.flatnonzero(shapely.is_missing(geom) | shapely.is_empty(geom))
    if len(empty):
        add(
            f"{len(empty)} feature(s) without geometry: {ref(empty)}. "
            "Fix: draw them or remove them before importing",
            f"{len(empty)} 个要素没有几何图形：{ref(empty, 'zh')}。修正：导入前补画或删除",
        )
    unplaced = nonfinite_rows(geom)
    if len(unplaced):
        add(
            f"coordinates that are not numbers (NaN) or infinite in {ref(unplaced)}. "
            "Fix: correct or remove those points before importing",
            f"{ref(unplaced, 'zh')} 的坐标不是数字（NaN）或为无穷大。修正：导入前改正或删除这些点",
        )
    types = gdf.geometry.geom_type
    wrong = np.flatnonzero(
        ~types.isin(s.geom_types) & ~shapely.is_missing(geom) & ~shapely.is_empty(geom)
    )
    if len(wrong):
        found = ", ".join(sorted(set(types.iloc[wrong].dropna())))
        add(
            f"geometry must be {' or '.join(s.geom_types)} for a {s.name} ({s.label}) layer, "
            f"found {found} in {ref(wrong)}. Fix: import the file as the right "
            "layer kind, or convert it in your GIS first",
            f"{s.label}图层的几何类型必须是 {' 或 '.join(s.geom_types)}，{ref(wrong, 'zh')} 是 "
            f"{found}。修正：按正确的图层类型导入，或先在 GIS 软件中转换",
        )

    if problems:
        raise LayerError(
            f"Layer '{layer}' ({s.label}) cannot be used:",
            problems,
            zh=f"图层 '{layer}'（{s.label}）无法使用：",
            zh_problems=zh,
        )

    order = [f.name for f in s.fields if f.name in gdf.columns]
    rest = [c for c in gdf.columns if c not in order and c != gdf.geometry.name]
    geom_name = gdf.geometry.name
    gdf = gdf[order + rest + [geom_name]]
    if geom_name != "geometry":
        gdf = gdf.rename_geometry("geometry")
    return gdf
