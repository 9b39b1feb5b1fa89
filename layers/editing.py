"""Saving edits of grid cells: one store transaction per change, the one rule against lost
updates, and a revision for every changed cell.

The change itself is planned by :func:`geo.edits.plan` (pure analysis) inside the
transaction, on the layers as the transaction reads them, so what is saved is exactly
what was checked. A save is refused, and nothing is written, when

- a cell's revision moved on since the editor read it (:class:`~geo.errors.StaleEdit`,
  the rule of :func:`check_base`, the only place it is written);
- the change would add findings and no reason to accept them is given
  (:class:`~geo.errors.EditRejected`);
- no reason for the change is given, or the operation cannot be done
  (:class:`~geo.errors.InputError`).

Every changed cell gets a revision (who, when, why, before and after in the stored CRS);
the revisions of one change share a ``change_id``. A crash mid-save leaves the last good
revision (see :meth:`layers.storage.base.LayerStore.edit`).
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import pandas as pd

from geo.edits import EDIT_LAYERS, EDITABLE, feature_json, plan
from geo.errors import EditRejected, InputError, NotFound, StaleEdit
from layers.storage.edits import now

__all__ = ["check_base", "update_feature", "revert_feature", "apply_change", "revert_change"]

RESTORING = "restoring an earlier revision"


def check_base(edit, layer: str, base: Mapping[str, int]) -> None:
    """Refuse the edit unless every feature's revision as the editor read it (``base``:
    ``{code: revision}``, 0 for never edited) is still its latest revision in ``edit``.
    Raises :class:`~geo.errors.StaleEdit` naming who changed it, when and why."""
    for code, rev in base.items():
        current = edit.feature_revision(layer, code)
        if current != int(rev):
            history = edit.revisions(layer, code)
            raise StaleEdit(current, history[-1] if history else None)


def _reason(reason: str | None) -> str:
    if reason is not None and not isinstance(reason, str):
        raise InputError(
            "reason must be text: why the change is made", zh="reason 须为文字：修改的原因"
        )
    if not reason or not reason.strip():
        raise InputError(
            "say why: a reason is required for every change",
            zh="请填写修改原因：每次修改都须说明理由",
        )
    return reason.strip()


def _save(
    store,
    op: dict,
    base: Mapping[str, int],
    *,
    author: str,
    reason: str,
    accepted: str | None,
    label: str,
) -> tuple[list[dict], object]:
    """Plan and save ``op`` in one transaction; the revision records written (each with
    its ``id``) and the plan."""
    if accepted is not None and not isinstance(accepted, str):
        raise InputError(
            "accepted must be text: why the findings the change adds are accepted",
            zh="accepted 须为文字：接受新问题的理由",
        )
    with store.edit() as e:
        check_base(e, "grid", base)  # first what the editor saw: stale → say so
        present = store.list_layers()
        layers = {n: e.read_layer(n) for n in EDIT_LAYERS if n in present}
        if "grid" not in layers:
            raise NotFound("this dataset has no grid layer", zh="该数据集没有网格图层")
        planned = plan(layers, op)
        grid = layers["grid"]
        codes = grid["code"].astype(str).to_numpy()
        existing = set(codes)
        # an existing cell the change reaches that the editor did not read is stale too
        check_base(e, "grid", {c: base.get(c, -1) for c in planned.codes if c in existing})
        new = planned.new_findings
        if new and not (accepted and accepted.strip()):
            raise EditRejected(new)
        e.write_layer("grid", planned.grid)
        after_codes = planned.grid["code"].astype(str).to_numpy()
        change_id, records = None, []
        for code in planned.codes:
            was = (codes == code).nonzero()[0]
            now_ = (after_codes == code).nonzero()[0]
            record = {
                "layer": "grid",
                "code": code,
                "author": author,
                "at": now(),
                "reason": label + reason,
                "before": feature_json(grid, int(was[0])) if len(was) else None,
                "after": feature_json(planned.grid, int(now_[0])) if len(now_) else None,
                "change_id": change_id,
                "accepted": accepted.strip() if new and accepted else None,
            }
            record["id"] = e.add_revision(record)
            change_id = change_id or record["id"]
            records.append(record)
    return records, planned


def apply_change(
    store,
    op: dict,
    *,
    base: Mapping[str, int],
    author: str,
    reason: str,
    accepted: str | None = None,
) -> dict:
    """Save an operation of :func:`geo.edits.plan` as one change (a revision per changed
    cell, one ``change_id``). ``base``: ``{code: revision}`` as the planner read them."""
    reason = _reason(reason)
    records, planned = _save(
        store, op, base, author=author, reason=reason, accepted=accepted, label=f"{op.get('op')}: "
    )
    return {
        "change_id": records[0]["id"] if records else None,
        "revisions": [{"code": r["code"], "revision": r["id"]} for r in records],
        "cells": planned.cells,
        "method": planned.method,
        "accepted_findings": planned.new_findings,
    }


def update_feature(
    store,
    layer: str,
    code: str,
    feature: dict,
    *,
    base_revision: int,
    author: str,
    reason: str,
    accepted: str | None = None,
) -> dict:
    """Replace a grid cell's geometry and editable attributes (:data:`geo.edits.EDITABLE`)
    from a GeoJSON Feature (lon/lat WGS 84): the ``update`` operation, one cell.
    Returns ``{"revision", "before", "after", "accepted_findings"}``."""
    if layer != "grid":
        raise InputError("only grid cells can be edited here", zh="只能在此编辑网格")
    reason = _reason(reason)
    records, planned = _save(
        store,
        {"op": "update", "code": code, "feature": feature},
        {code: base_revision},
        author=author,
        reason=reason,
        accepted=accepted,
        label="",
    )
    record = records[0]
    return {
        "revision": record["id"],
        "before": record["before"],
        "after": record["after"],
        "accepted_findings": planned.new_findings,
    }


def revert_feature(
    store, layer: str, code: str, revision: int, *, base_revision: int, author: str, reason: str
) -> dict:
    """Put a cell back as it was before ``revision`` (itself recorded as a new revision)."""
    old = [r for r in store.revisions(layer, code) if r["id"] == revision]
    if not old:
        raise NotFound(
            f"no revision {revision} of '{code}'", zh=f"网格 {code} 没有第 {revision} 版修改"
        )
    before = old[0]["before"]
    gdf = gpd.GeoDataFrame.from_features([before], crs=store.read_layer(layer).crs)
    feature = {
        "type": "Feature",
        "properties": {
            k: before["properties"].get(k) for k in EDITABLE if k in before["properties"]
        },
        "geometry": gdf.to_crs("EPSG:4326").geometry.iloc[0].__geo_interface__,
    }
    return update_feature(
        store,
        layer,
        code,
        feature,
        base_revision=base_revision,
        author=author,
        reason=f"revert revision {revision}: {reason}",
        accepted=RESTORING,
    )


def revert_change(store, change_id: int, *, author: str, reason: str) -> dict:
    """Undo a whole change: every cell it touched goes back to its ``before`` (cells it
    created are removed), as a new change. Refused (StaleEdit) if any of those cells has
    changed since."""
    revs = [r for r in store.revisions("grid") if r.get("change_id") == change_id]
    if not revs:
        raise NotFound(f"no change {change_id}", zh=f"没有第 {change_id} 号修改")
    reason = _reason(reason)
    with store.edit() as e:
        check_base(e, "grid", {r["code"]: r["id"] for r in revs})
        grid = e.read_layer("grid")
        codes = grid["code"].astype(str)
        restored = [
            gpd.GeoDataFrame.from_features([r["before"]], crs=grid.crs) for r in revs if r["before"]
        ]
        keep = grid[~codes.isin([r["code"] for r in revs])]
        new_grid = pd.concat([keep, *restored], ignore_index=True)
        new_grid = gpd.GeoDataFrame(new_grid[grid.columns], geometry="geometry", crs=grid.crs)
        e.write_layer("grid", new_grid)
        change, out = None, []
        for r in revs:
            rev = e.add_revision(
                {
                    "layer": "grid",
                    "code": r["code"],
                    "author": author,
                    "at": now(),
                    "reason": f"revert change {change_id}: {reason}",
                    "before": r["after"],
                    "after": r["before"],
                    "change_id": change,
                    "accepted": RESTORING,
                }
            )
            change = change or rev
            out.append({"code": r["code"], "revision": rev})
    return {"change_id": change, "revisions": out}
