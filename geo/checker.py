"""The full check of a dataset: every rule on every layer present, measured in metres.

:func:`check_dataset` takes a :class:`geo.dataset.Dataset` (or ``{layer name:
GeoDataFrame}``, any subset of the layers; an unknown name is refused) and returns a
:class:`Report`. Which layers nest in which and which jurisdiction follows which unit
come from the registry of kinds (:mod:`geo.kinds`). Each partition layer is checked on its
own (invalid geometry, duplicate codes, overlaps; later rules run on a repaired copy),
against its parent layer where both are present (not_nested, parent_mismatch, gaps), and
jurisdictions against the hierarchy (交叉管 overlaps, 三不管 gaps, misalignment, alignment table).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd
from pyproj import CRS

from geo.alignment import alignment_table, misaligned, uncovered
from geo.dataset import Dataset
from geo.findings import RULES, Tolerances, empty_findings
from geo.kinds import KINDS, hierarchy, jurisdictions, partitions
from geo.layer_rules import duplicate_code, gap_in_outline, invalid_geometry, overlap, repaired
from geo.nesting import nesting
from geo.progress import step

__all__ = ["Report", "check_dataset"]

#: Told each step of a check (a :class:`geo.progress.Step`: English text, with ``zh``).
Progress = Callable[[str], None]


@dataclass
class Report:
    """The result of a check: findings (metric CRS), alignment tables, layer facts."""

    metric_crs: CRS
    layers: dict[str, dict]
    findings: gpd.GeoDataFrame
    alignment: dict[str, pd.DataFrame] = field(default_factory=dict)
    tolerances: Tolerances = Tolerances()
    #: a partitioned check's parts and what each cost (:mod:`geo.partitioned`)
    parts: list[dict] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return len(self.findings) == 0

    def summary(self) -> dict[str, int]:
        counts = self.findings["rule"].value_counts()
        return {rule: int(counts[rule]) for rule in RULES if rule in counts}

    def findings_lonlat(self) -> gpd.GeoDataFrame:
        """The findings in WGS 84 lon/lat (for GeoJSON and the map)."""
        return self.findings.to_crs("EPSG:4326")

    def to_dict(self, dataset: str | None = None) -> dict:
        """The JSON document of ``python -m geo check --format json`` (see DESIGN.md)."""
        out = self.findings_lonlat()
        geo = json.loads(out.geometry.to_json(drop_id=True)) if len(out) else {"features": []}
        findings = []
        for row, feat in zip(out.itertuples(index=False), geo["features"]):
            item = {
                "rule": row.rule,
                "layer": row.layer,
                "features": list(row.features),
                "area_m2": _num(row.area_m2, 2),
                "width_m": _num(row.width_m, 3),
                "kind": _text(row.kind),
                "detail": _text(row.detail),
                "detail_zh": _text(row.detail_zh),
                "geometry": feat["geometry"],
            }
            if _text(row.parent_layer):
                item["parent_layer"] = row.parent_layer
                item["parent"] = _text(row.parent)
            findings.append(item)
        epsg = self.metric_crs.to_epsg()
        return {
            "dataset": dataset,
            "metric_crs": f"EPSG:{epsg}" if epsg else self.metric_crs.to_string(),
            "tolerances": {
                "noise_width_m": self.tolerances.noise_width,
                "sliver_width_m": self.tolerances.sliver_width,
            },
            "layers": self.layers,
            "findings": findings,
            "summary": self.summary(),
            "alignment": self.alignment_records(),
        } | ({"parts": self.parts} if self.parts else {})

    def alignment_records(self) -> dict[str, list[dict]]:
        """Each jurisdiction layer's alignment table as JSON records (NaN → null): per
        police area or beat, the units it follows, matched units, shared %, mismatched and
        uncovered m², boundary offset in metres."""
        return {
            name: json.loads(t.to_json(orient="records", force_ascii=False))
            for name, t in self.alignment.items()
        }


def _text(v):
    """A text column's value, or None where it is missing (NaN in a findings frame)."""
    return v if isinstance(v, str) else None


def _num(v, digits):
    return None if v is None or pd.isna(v) else round(float(v), digits)


def check_dataset(
    layers: Dataset | dict[str, gpd.GeoDataFrame],
    *,
    tolerances: Tolerances = Tolerances(),
    progress: Progress | None = None,
) -> Report:
    """Check every partition layer present and every pair of related layers.

    Parameters
    ----------
    layers : a :class:`~geo.dataset.Dataset`, or ``{name: GeoDataFrame}`` in any CRS (each
        must have one; an unknown name raises :class:`~geo.errors.UnknownLayer`). Point
        and line layers are not checked here.
    tolerances : noise and sliver widths in metres.
    progress : called with a short description before each step (for terminals).

    Measurements are made in the dataset's metric CRS (``Dataset.metric_crs``); a dataset
    spanning several projection zones is checked part by part, each in its own zone, by
    :func:`geo.partitioned.check_partitioned`.
    """
    ds = Dataset.of(layers)
    say = progress or (lambda _msg: None)
    crs = ds.metric_crs
    present = ds.present(partitions())
    if not present:
        return Report(crs, layer_facts(ds), empty_findings(crs), tolerances=tolerances)
    metric, parts = layer_rules(ds, present, tolerances, say)
    parts += nesting_rules(metric, parts, tolerances, say)
    found, tables = jurisdiction_rules(ds, metric, tolerances, say)
    return Report(crs, layer_facts(ds), ordered(parts + found, crs), tables, tolerances)


def layer_facts(ds: Dataset) -> dict[str, dict]:
    """``{layer: {"features", "crs"}}`` of a report."""
    return {
        n: {"features": int(len(g)), "crs": g.crs.to_string() if g.crs else None}
        for n, g in ds.items()
    }


def layer_rules(ds: Dataset, names, tolerances: Tolerances, say: Progress, owned=None):
    """Invalid geometry, duplicate codes and overlaps of each layer of ``names``.

    owned : ``{layer: codes}`` a part of a partitioned check owns (overlaps of the others
        are left to their own parts).
    Returns ``({layer: metric frame, invalid polygons repaired}, [findings frames])``.
    """
    crs = ds.metric_crs
    parts = []
    metric: dict[str, gpd.GeoDataFrame] = {}
    for name in names:
        say(step("validity", layer=name))
        projected = ds.metric(name)
        # Validity is judged on the coordinates as stored: reprojection moves collinear
        # points off their line, so a zero-area polygon would look like a valid sliver.
        stored = ds[name]
        invalid = invalid_geometry(stored, name).to_crs(crs)
        parts.append(invalid)
        parts.append(duplicate_code(projected, name))
        metric[name] = repaired(stored).to_crs(crs) if len(invalid) else projected
        say(step("overlaps", layer=name, n=len(projected)))
        mine = None if owned is None else owned.get(name, set())
        parts.append(overlap(metric[name], name, tolerances, owned=mine))
    return metric, parts


def nesting_rules(
    metric: dict, found: list, tolerances: Tolerances, say: Progress, owned=None
) -> list:
    """not_nested, parent_mismatch and gaps of each layer of ``metric`` in its parent layer
    (or the holes in its outline when it has none); the features of ``found`` (findings
    frames) already defective are examined exactly. ``owned``: as for :func:`layer_rules`."""
    suspects: dict[str, set[str]] = {n: set() for n in metric}
    for part in found:
        for layer, feats in zip(part["layer"], part["features"]):
            if layer in suspects:
                suspects[layer].update(feats)
    parts = []
    levels = hierarchy()
    for name, gdf in metric.items():
        parent = KINDS[name].parent
        if parent in metric:
            say(step("nesting", layer=name, parent=parent))
            parts.append(
                nesting(
                    gdf,
                    name,
                    metric[parent],
                    parent,
                    tolerances,
                    suspects=suspects[name],
                    covers_parent=KINDS[name].covers_parent,
                    owned=None
                    if owned is None
                    else (owned.get(name, set()), owned.get(parent, set())),
                )
            )
        elif name in levels or not any(u in metric for u in levels):
            say(step("gaps", layer=name))
            parts.append(gap_in_outline(gdf, name, tolerances))
    return parts


def jurisdiction_rules(ds: Dataset, metric: dict, tolerances: Tolerances, say: Progress):
    """交叉管 overlaps are found by :func:`layer_rules`; here, for each jurisdiction layer
    of ``metric``: 三不管 gaps in the extent of the hierarchy, 跨界 pieces and the
    alignment table. Returns ``([findings frames], {layer: alignment table})``."""
    levels = hierarchy()
    top = next((h for h in levels if h in metric), None)
    parts, tables = [], {}
    facilities = ds.metric("facility") if "facility" in ds else None  # counted per station
    for name, unit_layer in jurisdictions().items():
        if name not in metric or top is None:
            continue
        say(step("alignment", layer=name))
        extent = metric[top].geometry.union_all()
        parts.append(uncovered(metric[name], name, extent, top, tolerances))
        units = unit_layer if unit_layer in metric else top
        parts.append(misaligned(metric[name], name, metric[units], units, tolerances))
        tables[name] = alignment_table(metric[name], metric[units], metric.get("grid"), facilities)
        tables[name].insert(2, "unit_layer", units)
    return parts, tables


def ordered(parts: list, crs) -> gpd.GeoDataFrame:
    """The findings frames as one, in report order: by layer, rule, then area (largest
    first)."""
    findings = (
        pd.concat([p for p in parts if len(p)], ignore_index=True)
        if any(len(p) for p in parts)
        else empty_findings(crs)
    )
    findings = gpd.GeoDataFrame(findings, geometry="geometry", crs=crs)
    order = {r: i for i, r in enumerate(RULES)}
    layer_order = {n: i for i, n in enumerate(partitions())}
    return findings.sort_values(
        by=["layer", "rule", "area_m2"],
        key=lambda s: (
            s.map(layer_order)
            if s.name == "layer"
            else (s.map(order) if s.name == "rule" else -s.fillna(0))
        ),
    ).reset_index(drop=True)
