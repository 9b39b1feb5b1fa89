"""The check of a dataset after grid cells changed, made from the check before it.

A province's check takes minutes; a planner's save changes a few cells. What a change of
cells can change is found near them: their overlaps, the nesting and the gaps of their
communities, the household units inside them. So the dataset's neighbourhood of the
change (:func:`affected`) is checked as it was and as it is, and the report before gains
what only the second check finds and loses what only the first found. A finding the
neighbourhood shows wrongly for want of what lies outside it (a cell of a community left
out, say) is shown the same way before and after, and cancels out.

The neighbourhood: the communities the changed cells touch (before or after) and those
holding a cell they touch, every cell reaching into any of them, and every household unit
reaching into those cells. A finding about a cell nearby that did not change is found the
same way in both checks; one that the change alters involves a changed cell, a cell it
touches or a community holding one, all in the neighbourhood. What is counted over whole
layers is counted again over them: duplicate codes of the grid, the layers' feature
counts and the alignment tables (their households and people come from the cells).
Streets and jurisdictions do not change with cells: their findings are kept.

:func:`rechecked` gives the same findings as checking the whole dataset again (the tests
compare both over random saves on the known-answer tilings and the sample); a dataset
spanning several projection zones is checked part by part in each part's zone, and is
left to the whole check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from geo.checker import Report, check_dataset, layer_facts, ordered
from geo.dataset import Dataset
from geo.findings import Tolerances
from geo.kinds import KINDS, jurisdictions
from geo.layer_rules import duplicate_code, repaired

__all__ = ["affected", "applies", "rechecked"]

# the layers whose findings a change of grid cells can change (their own, and their
# nesting in their parents)
_NEAR = ("grid", "household_unit")


def applies(layers: Dataset) -> bool:
    """Whether a change of cells of ``layers`` can be checked by :func:`rechecked`: not
    when the dataset spans projection zones (checked part by part, each in its own), nor
    when a jurisdiction follows the grid itself (another department's grid: its 跨界
    findings would change with the cells anywhere it reaches)."""
    from geo.partitioned import spans_zones

    if "grid" not in layers or "code" not in layers["grid"]:
        return False
    if any(KINDS[n].follows == "grid" for n in layers.present()):
        return False
    return not spans_zones(layers)


def affected(layers: Dataset, region) -> dict:
    """The neighbourhood of ``region`` (geometries in the CRS of ``layers``, as stored):
    the communities it touches or that hold a cell it touches, the cells reaching into
    any of them or into ``region``, and the household units reaching into those cells."""
    area = shapely.union_all(np.asarray(region, dtype=object))
    grid = layers["grid"]
    cells = set(grid.sindex.query(area, predicate="intersects").tolist())
    out = {}
    comm = layers.get("community")
    if comm is not None and len(comm):
        near = set(comm.sindex.query(area, predicate="intersects").tolist())
        held = grid["parent_code"].astype(str).iloc[sorted(cells)] if cells else []
        near |= set(np.flatnonzero(comm["code"].astype(str).isin(set(held))).tolist())
        comms = comm.iloc[sorted(near)]
        out["community"] = comms
        inside = grid.sindex.query(comms.geometry.values, predicate="intersects")[1]
        cells |= set(inside.tolist())
    out["grid"] = grid.iloc[sorted(cells)]
    units = layers.get("household_unit")
    if units is not None and len(units) and len(out["grid"]):
        hit = units.sindex.query(out["grid"].geometry.values, predicate="intersects")[1]
        out["household_unit"] = units.iloc[np.unique(hit)]
    return out


def _keys(findings) -> pd.Series:
    """Each finding as text that is the same for the same finding of another check: its
    rule, layer, features (sorted), parent, and area and width to the centimetre."""

    def text(row):
        area = "" if pd.isna(row.area_m2) else f"{float(row.area_m2):.2f}"
        width = "" if pd.isna(row.width_m) else f"{float(row.width_m):.2f}"
        parent = row.parent if isinstance(row.parent, str) else ""
        feats = ",".join(sorted(str(f) for f in row.features))
        return "\x1f".join([row.rule, row.layer, feats, parent, area, width])

    return pd.Series([text(r) for r in findings.itertuples(index=False)], dtype=object)


def rechecked(
    before: Report,
    old: Dataset,
    new: Dataset,
    codes,
    *,
    tolerances: Tolerances | None = None,
) -> Report:
    """The check of ``new``, made from ``before`` (the check of ``old``) where ``new``
    differs from ``old`` only in the grid cells of ``codes`` (changed, added or removed).
    Both datasets in the same CRS and measured in ``before``'s metric CRS; for a dataset
    :func:`applies` to."""
    tolerances = tolerances or before.tolerances
    crs = before.metric_crs
    wanted = list(dict.fromkeys(map(str, codes)))
    region = [
        g
        for ds in (old, new)
        for g in ds["grid"].geometry.values[np.isin(ds.codes("grid"), wanted)]
        if g is not None and not g.is_empty
    ]
    findings = before.findings
    if region:
        hood_old, hood_new = affected(old, region), affected(new, region)
        was = _local(check_dataset(old.subset(hood_old), tolerances=tolerances).findings)
        now = _local(check_dataset(new.subset(hood_new), tolerances=tolerances).findings)
        was_keys, now_keys = set(_keys(was)), _keys(now)
        gone = was_keys - set(now_keys)
        keep = ~_keys(findings).isin(gone).to_numpy() if len(findings) else []
        fresh = now[~now_keys.isin(was_keys).to_numpy()] if len(now) else now
        findings = pd.concat([findings[keep], fresh.to_crs(crs)], ignore_index=True)
    # counted over whole layers: the grid's duplicate codes
    dup = (findings["rule"] == "duplicate_code") & (findings["layer"] == "grid")
    findings = findings[~dup.to_numpy()]
    grid_codes = new.codes("grid")
    counts = pd.Series(grid_codes).value_counts()
    repeated = counts[counts > 1]
    if len(repeated):
        rows = new["grid"][np.isin(grid_codes, repeated.index.to_numpy())]
        findings = pd.concat(
            [findings, duplicate_code(rows.to_crs(crs), "grid", counted=repeated.to_dict())],
            ignore_index=True,
        )
    findings = ordered([findings], crs)
    return Report(crs, layer_facts(new), findings, _tables(before, old, new, findings), tolerances)


def _local(findings):
    """The findings a change of cells can change (of the layers near it), without the
    grid's duplicate codes (counted over the whole layer instead)."""
    near = findings["layer"].isin(_NEAR).to_numpy()
    dup = (findings["rule"] == "duplicate_code").to_numpy()
    return findings[near & ~dup]


def _tables(before: Report, old: Dataset, new: Dataset, findings) -> dict:
    """The alignment tables of ``new`` (``findings``: its check's): made again, their
    households and people coming from the cells (the grid's metric copy carried from
    ``old``, at the cost of the change)."""
    if not before.alignment:
        return {}
    from geo.alignment import alignment_table

    grid = _as_measured(new, "grid", findings, new.carry_metric("grid", old))
    facilities = new.metric("facility") if "facility" in new else None
    tables = {}
    for name, table in before.alignment.items():
        units = table["unit_layer"].iloc[0] if len(table) else jurisdictions()[name]
        made = alignment_table(
            _as_measured(new, name, findings),
            _as_measured(new, units, findings),
            grid,
            facilities,
        )
        made.insert(2, "unit_layer", units)
        tables[name] = made
    return tables


def _as_measured(layers: Dataset, name: str, findings, metric=None):
    """Layer ``name`` in the metric CRS as the check measures it (``metric``: its metric
    copy, made if not given): the features ``findings`` say are invalid made valid first
    (:func:`geo.layer_rules.repaired`), as :func:`geo.checker.layer_rules` does."""
    frame = layers.metric(name) if metric is None else metric
    bad = findings[(findings["rule"] == "invalid_geometry") & (findings["layer"] == name)]
    if not len(bad):
        return frame
    codes = {str(f) for feats in bad["features"] for f in feats}
    rows = np.isin(layers.codes(name), list(codes))
    fixed = repaired(layers[name][rows]).to_crs(frame.crs)
    frame = frame.copy()
    geoms = frame.geometry.values.copy()
    geoms[rows] = fixed.geometry.values
    frame.geometry = geoms
    return frame
