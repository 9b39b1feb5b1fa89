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

__all__ = ["Field", "LayerKind", "LAYERS", "spec", "conform"]

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


def _feature_ref(gdf: gpd.GeoDataFrame, rows) -> str:
    """Name rows by code where the layer has codes, else by row number (1-based)."""
    rows = list(rows)
    if "code" in gdf.columns:
        labels = [
            str(gdf["code"].iloc[i]) if pd.notna(gdf["code"].iloc[i]) else f"row {i + 1}"
            for i in rows[:10]
        ]
    else:
        labels = [f"row {i + 1}" for i in rows[:10]]
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    return ", ".join(labels) + more


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

    for f in s.fields:
        if f.name not in gdf.columns:
            if f.required:
                others = [
                    f"{original[c]} (read as {c})" if c in original else str(c)
                    for c in gdf.columns
                    if c != gdf.geometry.name
                ]
                problems.append(
                    f"missing field '{f.name}' ({f.label}); the file has: "
                    f"{', '.join(map(str, others)) or 'no attribute columns'}. Fix: map your "
                    f"column to it, e.g. --field YOUR_COLUMN={f.name}"
                )
            continue
        col = gdf[f.name]
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
            bad = np.flatnonzero(nums.isna() & col.notna())
            if len(bad):
                problems.append(
                    f"field '{f.name}' ({f.label}) is not a number in {_feature_ref(gdf, bad)}"
                )
            if f.type == "count":
                neg = np.flatnonzero((nums < 0) | (nums.notna() & (nums % 1 != 0)))
                if len(neg):
                    problems.append(
                        f"field '{f.name}' ({f.label}) must be a whole number "
                        f"≥ 0 in {_feature_ref(gdf, neg)}"
                    )
                gdf[f.name] = nums.astype("Int64") if nums.isna().any() else nums.astype("int64")
            else:
                gdf[f.name] = nums
        if f.required:
            missing = np.flatnonzero(gdf[f.name].isna())
            if len(missing):
                problems.append(
                    f"field '{f.name}' ({f.label}) is empty in {_feature_ref(gdf, missing)}"
                )

    if "kind" in gdf.columns and layer == "facility":
        gdf["kind"] = gdf["kind"].map(lambda k: facility_kind(k) if k else k)

    geom = gdf.geometry.values
    empty = np.flatnonzero(shapely.is_missing(geom) | shapely.is_empty(geom))
    if len(empty):
        problems.append(
            f"{len(empty)} feature(s) without geometry: {_feature_ref(gdf, empty)}. "
            "Fix: draw them or remove them before importing"
        )
    types = gdf.geometry.geom_type
    wrong = np.flatnonzero(
        ~types.isin(s.geom_types) & ~shapely.is_missing(geom) & ~shapely.is_empty(geom)
    )
    if len(wrong):
        found = ", ".join(sorted(set(types.iloc[wrong].dropna())))
        problems.append(
            f"geometry must be {' or '.join(s.geom_types)} for a {s.name} ({s.label}) layer, "
            f"found {found} in {_feature_ref(gdf, wrong)}. Fix: import the file as the right "
            "layer kind, or convert it in your GIS first"
        )

    if problems:
        raise LayerError(f"Layer '{layer}' ({s.label}) cannot be used:", problems)

    order = [f.name for f in s.fields if f.name in gdf.columns]
    rest = [c for c in gdf.columns if c not in order and c != gdf.geometry.name]
    geom_name = gdf.geometry.name
    gdf = gdf[order + rest + [geom_name]]
    if geom_name != "geometry":
        gdf = gdf.rename_geometry("geometry")
    return gdf
