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
the revisions of one change share a ``change_id``. Only the changed cells are written
(:meth:`~layers.storage.edits.Edit.write_features`). A crash mid-save leaves the last
good revision (see :meth:`layers.storage.base.LayerStore.edit`).

A service that holds the dataset in memory passes it as ``served`` (a :class:`Served`):
the change is then planned on that copy *before* taking the store's writer lock, so that
a commit does not wait for another change's planning (plans take turns among themselves:
they are CPU-bound, and a crowd of them starves the commit in progress of the interpreter
lock at each of its many system calls). Under the lock the
plan is kept only if nothing it depends on — the cells and communities of its
neighbourhood — was changed since that copy's version (optimistic concurrency); otherwise
it is planned again on the layers as the transaction reads them. Either way what is saved
is exactly what was checked, and the service's copy is brought up to date (``apply``) in
commit order.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import shape

from geo import strict_json
from geo.edits import EDIT_LAYERS, EDITABLE, PreviewBase, feature_json, plan
from geo.errors import EditRejected, InputError, NotFound, StaleEdit
from geo.kinds import KINDS
from geo.realign import aligned_layout, units_for
from geo.reasons import reason_zh
from layers.storage.edits import WHOLE_LAYER, Version, now

__all__ = [
    "Saved",
    "Served",
    "check_base",
    "update_feature",
    "revert_feature",
    "apply_change",
    "revert_change",
    "adopt_layout",
    "REVERTIBLE",
    "reason_zh",
    "replayed",
]


@dataclass(frozen=True)
class Saved:
    """What a committed change wrote to ``layer``: the changed features (stored CRS; an
    empty geometry is a removed feature), their codes, each code's new revision, and the
    dataset's version just before and just after the commit."""

    layer: str
    features: gpd.GeoDataFrame
    codes: list[str]
    revisions: dict[str, int]
    before: Version
    after: Version


def replayed(
    records: list[dict], since: Version, stored: Mapping[str, gpd.GeoDataFrame]
) -> list[Saved] | None:
    """The commits another writer (another worker process, the CLI) made after ``since``,
    as :class:`Saved`, rebuilt from their revision records (``store.revisions_since``,
    oldest first), so that a served copy can show them as it shows its own saves. A
    commit is the records of one change (one ``change_id``); its features are each code's
    ``after`` (none: an empty geometry, the code removed), with the columns and dtypes of
    the layer as ``stored`` holds it. None when the records cannot say the change exactly
    (a layer not held, a code held by several features, a value of another type): read
    the dataset again instead."""
    out, before = [], since
    for _, commit in itertools.groupby(records, key=lambda r: r["change_id"] or r["id"]):
        commit = list(commit)
        layer = commit[0]["layer"]
        held = stored.get(layer)
        if held is None or any(r["layer"] != layer or r["code"] == WHOLE_LAYER for r in commit):
            return None  # another layer, or one written whole: read the dataset again
        codes = [str(r["code"]) for r in commit]
        held_codes = held["code"].astype(str)
        if (held_codes[held_codes.isin(codes)].value_counts() > 1).any():
            return None  # a code held by several features: one after each cannot say which
        features = gpd.GeoDataFrame.from_features(  # a removed code: as it was, emptied
            [r["after"] or {**r["before"], "geometry": None} for r in commit], crs=held.crs
        )
        features["code"] = codes
        features.loc[[r["after"] is None for r in commit], "geometry"] = shapely.Polygon()
        try:
            features = gpd.GeoDataFrame(
                features.reindex(columns=held.columns).astype(
                    held.dtypes.drop(held.geometry.name).to_dict()
                ),
                geometry=held.geometry.name,
                crs=held.crs,
            )
        except (TypeError, ValueError):
            return None
        after = Version(before.layers, commit[-1]["id"])
        out.append(
            Saved(
                layer, features, codes, {c: r["id"] for c, r in zip(codes, commit)}, before, after
            )
        )
        before = after
    return out


class Served(Protocol):
    """The dataset as a service holds it in memory (see the module docstring)."""

    def basis(self) -> tuple[Version, PreviewBase]:
        """The version the in-memory copy shows and its layers as stored, ready to plan
        on (both of the same moment)."""

    def planning(self) -> AbstractContextManager:
        """Held around planning a change on the copy: planning is CPU-bound, so planners
        take turns rather than crowd the interpreter while a commit waits for it."""

    def committing(self) -> AbstractContextManager:
        """Held around a commit and its :meth:`apply`; the copy shows the commit once it
        is released."""

    def apply(self, saved: Saved) -> None:
        """Take a committed change to show (called in commit order)."""


RESTORING = "restoring an earlier revision"


def check_base(edit, layer: str, base: Mapping[str, int]) -> None:
    """Refuse the edit unless every feature's revision as the editor read it (``base``:
    ``{code: revision}``, 0 for never edited) is still its latest revision in ``edit`` (an
    edit, or the store itself for an early answer outside the lock).
    Raises :class:`~geo.errors.StaleEdit` naming who changed it, when and why."""
    for code, rev in base.items():
        history = edit.revisions(layer, code)
        current = history[-1]["id"] if history else 0
        if current != int(rev):
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


def _overtaken(revisions: list[dict], planned) -> bool:
    """Whether any of these revisions (made since a plan's basis) touched what the plan
    depends on: a cell of its neighbourhood, or any place inside its envelope."""
    for r in revisions:
        if r["code"] in planned.depends:
            return True
        for side in (r.get("before"), r.get("after")):
            if planned.envelope is not None and side and side.get("geometry"):
                if shapely.intersects(shape(side["geometry"]), planned.envelope):
                    return True
    return False


def _save(
    store,
    op: dict,
    base: Mapping[str, int],
    *,
    author: str,
    reason: str,
    accepted: str | None,
    label: str,
    served: Served | None = None,
) -> tuple[list[dict], object]:
    """Plan and save ``op`` in one transaction; the revision records written (each with
    its ``id``) and the plan."""
    if accepted is not None and not isinstance(accepted, str):
        raise InputError(
            "accepted must be text: why the findings the change adds are accepted",
            zh="accepted 须为文字：接受新问题的理由",
        )
    basis = planned = None
    if served is not None:  # plan outside the lock, on the in-memory copy
        check_base(store, "grid", base)  # a stale editor is told so before any planning
        with served.planning():
            basis, preview = served.basis()
            try:
                planned = plan(preview.layers, op, preview)
            except (InputError, NotFound):
                if store.version() == basis:
                    raise
                planned = None  # the copy is behind the store: planned again under the lock
    with served.committing() if served is not None else nullcontext():
        with store.edit() as e:
            check_base(e, "grid", base)  # first what the editor saw: stale → say so
            version = e.version()
            if (
                planned is None
                or version.layers != basis.layers
                or _overtaken(e.revisions_after("grid", basis.revision), planned)
            ):
                present = store.list_layers()
                layers = {n: e.read_layer(n) for n in EDIT_LAYERS if n in present}
                if "grid" not in layers:
                    raise NotFound("this dataset has no grid layer", zh="该数据集没有网格图层")
                planned = plan(layers, op)
            grid, codes = planned.before, planned.before_codes
            existing = [c for c in planned.codes if (codes == c).any()]
            # an existing cell the change reaches that the editor did not read is stale too
            check_base(e, "grid", {c: base.get(c, -1) for c in existing})
            new = planned.new_findings
            if new and not (accepted and accepted.strip()):
                raise EditRejected(new)
            e.write_features("grid", planned.changed, planned.codes)
            after_codes = planned.grid_codes
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
        if served is not None:
            last = records[-1]["id"] if records else version.revision
            served.apply(
                Saved(
                    "grid",
                    planned.changed,
                    planned.codes,
                    {r["code"]: r["id"] for r in records},
                    version,
                    Version(version.layers, last),
                )
            )
    return records, planned


def apply_change(
    store,
    op: dict,
    *,
    base: Mapping[str, int],
    author: str,
    reason: str,
    accepted: str | None = None,
    served: Served | None = None,
) -> dict:
    """Save an operation of :func:`geo.edits.plan` as one change (a revision per changed
    cell, one ``change_id``). ``base``: ``{code: revision}`` as the planner read them."""
    reason = _reason(reason)
    records, planned = _save(
        store,
        op,
        base,
        author=author,
        reason=reason,
        accepted=accepted,
        label=f"{op.get('op')}: ",
        served=served,
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
    served: Served | None = None,
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
        served=served,
    )
    record = records[0]
    return {
        "revision": record["id"],
        "before": record["before"],
        "after": record["after"],
        "accepted_findings": planned.new_findings,
    }


def revert_feature(
    store,
    layer: str,
    code: str,
    revision: int,
    *,
    base_revision: int,
    author: str,
    reason: str,
    served: Served | None = None,
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
        served=served,
    )


def revert_change(
    store,
    change_id: int,
    *,
    author: str,
    reason: str,
    served: Served | None = None,
    layer: str = "grid",
) -> dict:
    """Undo a whole change of ``layer`` (grid cells, or a jurisdiction layer's adopted
    layout): every feature it touched goes back to its ``before`` (features it created
    are removed), as a new change. Refused (StaleEdit) if any of them has changed since."""
    revs = [r for r in store.revisions(layer) if r.get("change_id") == change_id]
    if not revs:
        raise NotFound(
            f"no change {change_id} of {layer}",
            zh=f"{KINDS[layer].zh if layer in KINDS else layer}没有第 {change_id} 号修改",
        )
    reason = _reason(reason)
    if revs[0]["code"] == WHOLE_LAYER:
        return _revert_whole(store, revs[0], author=author, reason=reason, served=served)
    with served.committing() if served is not None else nullcontext():
        with store.edit() as e:
            check_base(e, layer, {r["code"]: r["id"] for r in revs})
            _still_as_left(e, layer, revs)
            version = e.version()
            crs = e.read_layer(layer).crs
            codes = [r["code"] for r in revs]
            restored = gpd.GeoDataFrame.from_features(
                [r["before"] or {**r["after"], "geometry": None} for r in revs], crs=crs
            )
            restored["code"] = codes
            restored.loc[[not r["before"] for r in revs], "geometry"] = shapely.Polygon()
            e.write_features(layer, restored, codes)
            change, out = None, []
            for r in revs:
                rev = e.add_revision(
                    {
                        "layer": layer,
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
        if served is not None:
            served.apply(
                Saved(
                    layer,
                    restored,
                    codes,
                    {o["code"]: o["revision"] for o in out},
                    version,
                    Version(version.layers, out[-1]["revision"]),
                )
            )
    return {"change_id": change, "revisions": out}


def _still_as_left(edit, layer: str, revs: list[dict]) -> None:
    """Refuse to revert the change ``revs`` when the layer was written whole after it
    and its features are no longer as the change left them (a whole-layer write has no
    revision per feature for :func:`check_base` to see; one reverted since left them as
    they were)."""
    whole = [r for r in edit.revisions(layer, WHOLE_LAYER) if r["id"] > revs[0]["id"]]
    if not whole:
        return
    current = edit.read_layer(layer)
    codes = current["code"].astype(str).to_numpy()
    for r in revs:
        rows = np.flatnonzero(codes == str(r["code"]))
        if r["after"] is None:
            same = not len(rows)
        else:
            same = len(rows) == 1 and _same_feature(feature_json(current, rows[0]), r["after"])
        if not same:
            raise _rewritten(layer, whole[-1])


def _same_feature(a: dict, b: dict) -> bool:
    """Two GeoJSON features in one CRS alike: properties equal, geometry within 1e-9."""
    if json.loads(strict_json.dumps(a["properties"])) != b["properties"]:
        return False
    if a["geometry"] is None or b["geometry"] is None:
        return a["geometry"] is b["geometry"]
    return shape(a["geometry"]).equals_exact(shape(b["geometry"]), 1e-9)


def _rewritten(layer: str, latest: dict) -> StaleEdit:
    return StaleEdit(
        latest["id"],
        latest,
        f"the layer {layer} was written whole since (change {latest['id']} by "
        f"{latest['author']}: {latest['reason']}); revert that change first",
        zh=f"此后图层 {layer} 已被整体重写（第 {latest['id']} 号修改，{latest['author']}："
        f"{latest['reason']}）；请先撤销那次修改",
    )


def _revert_whole(store, rev: dict, *, author: str, reason: str, served: Served | None) -> dict:
    """Put a layer written whole (revision ``rev``, :data:`WHOLE_LAYER`) back as it was
    before (removed, if there was none), itself a whole-layer write. Refused (StaleEdit)
    if the layer has changed since."""
    layer, change_id = rev["layer"], rev["id"]
    before = store.layer_before(change_id)
    record = {"author": author, "at": now(), "reason": f"revert change {change_id}: {reason}",
              "accepted": RESTORING}  # fmt: skip
    with served.committing() if served is not None else nullcontext():
        try:
            if before is None:
                new = store.delete_layer(layer, record=record, unchanged_since=change_id)
            else:
                new = store.write_layer(layer, before, record=record, unchanged_since=change_id)
        except StaleEdit as err:
            raise StaleEdit(
                err.current,
                err.latest,
                f"the layer {layer} changed since change {change_id} (revision {err.current}"
                f" by {err.latest['author']}: {err.latest['reason']}); revert that first",
                zh=f"第 {change_id} 号修改之后图层 {layer} 又被修改（第 {err.current} 版，"
                f"{err.latest['author']}：{err.latest['reason']}）；请先撤销那次修改",
            ) from None
        if served is not None:  # the copy reads the dataset again (no feature to follow)
            after = store.version()
            served.apply(
                Saved(layer, gpd.GeoDataFrame(geometry=[], crs=None), [], {}, after, after)
            )
    return {"change_id": new, "revisions": [{"code": WHOLE_LAYER, "revision": new}]}


#: The layers whose changes can be listed and reverted: every kind — grid cells (edited
#: cell by cell), the jurisdictions (changed by an adopted layout) and any layer changed,
#: or written whole, by an upload (:mod:`layers.importing`).
REVERTIBLE = tuple(KINDS)


def adopt_layout(
    store,
    layer: str,
    assignment: Mapping[str, str],
    *,
    basis: Version,
    author: str,
    reason: str,
    served: Served | None = None,
    unit: str | None = None,
) -> dict:
    """Save an aligned layout of jurisdiction layer ``layer`` (``assignment``: ``{unit
    code: jurisdiction code}``, units of ``unit`` or of the layer's kind's ``follows``, as
    :func:`geo.realign.propose_alignment` proposed it) as
    one change: each jurisdiction's outline becomes the union of its units as stored
    (their own vertices: no reprojection), a revision for each outline that changes, all
    with one ``change_id``, revertible with :func:`revert_change`.

    ``basis`` is the dataset version the proposal was made at: the layout is refused
    (:class:`~geo.errors.StaleEdit`, nothing written) when the jurisdictions or the units
    changed since, or a layer was written whole. Returns ``{"change_id", "revisions"}``."""
    follows = units_for(layer, unit)
    if not isinstance(assignment, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in assignment.items()
    ):
        raise InputError(
            'send "assignment": {unit code: station code} as the proposal gave it',
            zh='请按调整方案发送 "assignment": {单元编码: 辖区编码}',
        )
    reason = _reason(reason)
    with served.committing() if served is not None else nullcontext():
        with store.edit() as e:
            version = e.version()
            since = [*e.revisions_after(layer, basis.revision),
                     *e.revisions_after(follows, basis.revision)]  # fmt: skip
            if version.layers != basis.layers or since:
                latest = max(since, key=lambda r: r["id"]) if since else None
                raise StaleEdit(
                    since[-1]["id"] if since else version.revision,
                    latest,
                    f"the {KINDS[layer].en_plural.lower()} or {KINDS[follows].en_plural.lower()} "
                    "changed since the proposal was made; make the proposal again",
                    zh=f"调整方案生成后{KINDS[layer].zh}或{KINDS[follows].zh}已被修改，请重新生成方案",
                )
            current = e.read_layer(layer)
            layout = aligned_layout(current, e.read_layer(follows), dict(assignment))
            moved = ~shapely.equals(current.geometry.values, layout.geometry.values)
            changed = layout[moved]
            codes = changed["code"].astype(str).tolist()
            if not codes:
                raise InputError(
                    "the layout changes nothing: every jurisdiction is already its units",
                    zh="该方案不改变任何辖区：各辖区已与其单元一致",
                )
            e.write_features(layer, changed, codes)
            change, out = None, []
            for i in (int(k) for k in moved.nonzero()[0]):
                rev = e.add_revision(
                    {
                        "layer": layer,
                        "code": str(layout["code"].iloc[i]),
                        "author": author,
                        "at": now(),
                        "reason": f"aligned layout: {reason}",
                        "before": feature_json(current, i),
                        "after": feature_json(layout, i),
                        "change_id": change,
                        "accepted": None,
                    }
                )
                change = change or rev
                out.append({"code": str(layout["code"].iloc[i]), "revision": rev})
        if served is not None:
            served.apply(
                Saved(
                    layer,
                    changed,
                    codes,
                    {o["code"]: o["revision"] for o in out},
                    version,
                    Version(version.layers, out[-1]["revision"]),
                )
            )
    return {"change_id": change, "revisions": out}
