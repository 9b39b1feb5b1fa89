"""The layer model: which layers a dataset holds and the fields each one must have.

A dataset is a set of GeoDataFrames keyed by layer name. Each layer kind is described by a
:class:`LayerSpec`; :func:`conform` checks a GeoDataFrame against its spec, coerces field
types (codes are text, counts are integers) and refuses it with every problem listed.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers.errors import LayerError

__all__ = ["Field", "LayerSpec", "LAYERS", "FACILITY_KINDS", "spec", "conform"]


@dataclass(frozen=True)
class Field:
    """One attribute of a layer: its name, type ('text', 'count' or 'number'), label."""

    name: str
    type: str
    label: str
    required: bool = True


@dataclass(frozen=True)
class LayerSpec:
    """A layer kind: its name, Chinese label, geometry family, fields and parent layer."""

    name: str
    label: str
    geometry: str  # 'polygon', 'point' or 'line'
    fields: tuple[Field, ...]
    parent: str | None = None

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    @property
    def geom_types(self) -> tuple[str, ...]:
        return {
            "polygon": ("Polygon", "MultiPolygon"),
            "point": ("Point", "MultiPoint"),
            "line": ("LineString", "MultiLineString"),
        }[self.geometry]


_CODE = Field("code", "text", "编码")
_NAME = Field("name", "text", "名称")
_PARENT = Field("parent_code", "text", "上级编码")

LAYERS: dict[str, LayerSpec] = {
    s.name: s
    for s in [
        LayerSpec("street", "街道", "polygon",
                  (_CODE, _NAME, Field("parent_code", "text", "上级编码", required=False))),
        LayerSpec("community", "社区", "polygon", (_CODE, _NAME, _PARENT), parent="street"),
        LayerSpec("grid", "网格", "polygon",
                  (_CODE, _NAME, _PARENT,
                   Field("households", "count", "户数"),
                   Field("population", "count", "人口"),
                   Field("floating_population", "count", "流动人口", required=False)),
                  parent="community"),
        LayerSpec("police_area", "派出所辖区", "polygon", (_CODE, _NAME)),
        LayerSpec("police_beat", "社区警务区", "polygon", (_CODE, _NAME, _PARENT),
                  parent="police_area"),
        LayerSpec("facility", "设施", "point",
                  (_CODE, _NAME, Field("kind", "text", "类型"))),
        # Household points (standard addresses, 标准地址) or their counts per building
        # entrance: the finest population data, used to re-count redrawn grid cells.
        LayerSpec("household", "住户", "point",
                  (Field("households", "count", "户数"),
                   Field("population", "count", "人口", required=False))),
        # Building footprints (楼栋) with their households: used when there are no household
        # points; a building cut by a new cell edge is shared by area.
        LayerSpec("building", "楼栋", "polygon",
                  (Field("households", "count", "户数"),
                   Field("population", "count", "人口", required=False))),
        LayerSpec("road", "道路", "line",
                  (Field("name", "text", "名称", required=False),
                   Field("class", "text", "等级", required=False))),
    ]
}

# Facility kinds and the Chinese names users' files give them.
FACILITY_KINDS: dict[str, str] = {
    "police_station": "派出所",
    "police_post": "便民警务站",
    "health_center": "社区卫生服务中心",
    "service_hall": "便民服务大厅",
    "party_service_station": "党群服务站",
    "school": "学校",
}
_KIND_ALIASES = {v: k for k, v in FACILITY_KINDS.items()} | {
    "警务站": "police_post", "卫生服务中心": "health_center", "卫生院": "health_center",
    "服务大厅": "service_hall", "党群服务中心": "party_service_station",
}


def spec(layer: str) -> LayerSpec:
    """The spec of a layer kind; raises LayerError naming the valid kinds."""
    try:
        return LAYERS[layer]
    except KeyError:
        raise LayerError(
            f"'{layer}' is not a layer kind gridmap knows; must be one of "
            f"{', '.join(LAYERS)}"
        ) from None


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
        labels = [str(gdf["code"].iloc[i]) if pd.notna(gdf["code"].iloc[i]) else f"row {i + 1}"
                  for i in rows[:10]]
    else:
        labels = [f"row {i + 1}" for i in rows[:10]]
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    return ", ".join(labels) + more


def conform(gdf: gpd.GeoDataFrame, layer: str, *, renamed: dict[str, str] | None = None
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
                others = [f"{original[c]} (read as {c})" if c in original else str(c)
                          for c in gdf.columns if c != gdf.geometry.name]
                problems.append(
                    f"missing field '{f.name}' ({f.label}); the file has: "
                    f"{', '.join(map(str, others)) or 'no attribute columns'}. Fix: map your "
                    f"column to it, e.g. --field YOUR_COLUMN={f.name}"
                )
            continue
        col = gdf[f.name]
        if f.type == "text":
            gdf[f.name] = _codes_as_text(col) if f.name in ("code", "parent_code") else \
                col.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                        else str(v).strip() or None).astype(object)
        else:
            nums = pd.to_numeric(col, errors="coerce")
            bad = np.flatnonzero(nums.isna() & col.notna())
            if len(bad):
                problems.append(f"field '{f.name}' ({f.label}) is not a number in "
                                f"{_feature_ref(gdf, bad)}")
            if f.type == "count":
                neg = np.flatnonzero((nums < 0) | (nums.notna() & (nums % 1 != 0)))
                if len(neg):
                    problems.append(f"field '{f.name}' ({f.label}) must be a whole number "
                                    f"≥ 0 in {_feature_ref(gdf, neg)}")
                gdf[f.name] = nums.astype("Int64") if nums.isna().any() else nums.astype("int64")
            else:
                gdf[f.name] = nums
        if f.required:
            missing = np.flatnonzero(gdf[f.name].isna())
            if len(missing):
                problems.append(f"field '{f.name}' ({f.label}) is empty in "
                                f"{_feature_ref(gdf, missing)}")

    if "kind" in gdf.columns and layer == "facility":
        kinds = gdf["kind"].map(lambda k: _KIND_ALIASES.get(k, k) if k else k)
        gdf["kind"] = kinds

    geom = gdf.geometry.values
    empty = np.flatnonzero(shapely.is_missing(geom) | shapely.is_empty(geom))
    if len(empty):
        problems.append(f"{len(empty)} feature(s) without geometry: {_feature_ref(gdf, empty)}. "
                        "Fix: draw them or remove them before importing")
    types = gdf.geometry.geom_type
    wrong = np.flatnonzero(~types.isin(s.geom_types) & ~shapely.is_missing(geom)
                           & ~shapely.is_empty(geom))
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
