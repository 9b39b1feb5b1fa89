"""Bringing a file's layer into a dataset as one change: replace, append or update by code.

What a mode does is :func:`geo.layerdiff.diff_layer`; this module saves it. For a layer
kind with codes (streets … grid cells, jurisdictions, facilities) only the features the
mode adds, removes or changes are written, in one store transaction, each with a revision
(who, when, why, before and after) sharing one ``change_id``: the upload is listed and
reverted like any edit (:func:`layers.editing.revert_change`). The layer is instead
written whole, as one revision of the layer as a whole that keeps the layer as it was,
and reverts whole (:func:`written_whole` says when and why):

- a layer new to the dataset (or empty): its first features are written at the speed of
  a file copy, not feature by feature; its revert removes the layer;
- a kind without codes (household points, buildings, roads): no feature to compare;
- a replace by a file, or of a layer, whose codes repeat: features cannot be told apart
  (the check then reports the repeated codes as duplicate_code).

An import is refused, with nothing written, when the reason is missing, the mode is not
said for a layer that already holds features, a code repeats, append meets a code already
held, the file changes nothing, or (``basis`` given) the layer changed since the preview
the user saw (:class:`~geo.errors.StaleEdit`).
"""

from __future__ import annotations

from contextlib import nullcontext

import geopandas as gpd
import pandas as pd
import shapely

from geo.edits import feature_json
from geo.errors import InputError, StaleEdit
from geo.kinds import KINDS
from geo.layerdiff import MODES, LayerDiff, diff_layer, repeated_codes
from layers.editing import Saved, _reason
from layers.storage.edits import WHOLE_LAYER, Version, now

__all__ = [
    "dataset_crs",
    "written_whole",
    "held_codes",
    "whole_layer",
    "planned_import",
    "import_layer",
    "cannot_update",
]


#: What each mode did, as a revision's reason says it ("upload (replaced): …";
#: geo.reasons says it in Chinese).
_DONE = {"replace": "replaced", "append": "appended", "update": "updated"}


def dataset_crs(store):
    """The CRS of the dataset's first layer, or None for an empty dataset (a dataset
    keeps one CRS: what comes in is brought to it)."""
    layers = store.list_layers()
    return store.read_layer(layers[0]).crs if layers else None


def has_codes(layer: str) -> bool:
    return KINDS[layer].has_codes


def _fields(layer: str) -> list[str]:
    return [f.name for f in KINDS[layer].fields]


def _refuse_unsaid_mode(layer: str, mode: str | None, held: int) -> str:
    if mode is None and held:
        raise InputError(
            f"the layer {layer} already holds {held} feature(s): say what the file does to "
            "it with --mode replace (the layer becomes the file), append (add its features) "
            "or update (match by code); nothing was stored",
            zh=f"图层 {layer} 已有 {held} 个要素：请用 --mode 说明文件如何处理它：replace（以文件"
            "替换图层）、append（追加）或 update（按编码更新）；未保存任何内容",
        )
    mode = mode or "replace"
    if mode not in MODES:
        raise InputError(
            f"mode must be one of {', '.join(MODES)}, not '{mode}'",
            zh=f"导入方式须为 {', '.join(MODES)} 之一，而不是“{mode}”",
        )
    if mode == "update" and not has_codes(layer):
        raise cannot_update(layer)
    return mode


def cannot_update(layer: str) -> InputError:
    """The refusal of ``update`` for a kind without codes."""
    return InputError(
        f"{KINDS[layer].en_plural.lower()} have no codes, so they cannot be updated by "
        "code: choose replace or append",
        zh=f"{KINDS[layer].zh}没有编码，无法按编码更新：请选择替换或追加",
    )


def written_whole(
    layer: str, mode: str, gdf: gpd.GeoDataFrame, held_codes: pd.Series | None
) -> tuple[str, str] | None:
    """Why bringing ``gdf`` into ``layer`` by ``mode`` rewrites it whole, as one revision
    of the layer as a whole (English, Chinese); None when it is a change feature by
    feature (see the module docstring). ``held_codes``: the codes the layer holds, one
    per feature (None for a kind without codes; see :func:`held_codes`), or None when
    there is no such layer."""
    if held_codes is None or not len(held_codes):
        return ("a new layer: written whole, as one change; its revert removes the layer",
                "新图层：整体写入，作为一次修改；撤销即删除此图层")  # fmt: skip
    if not has_codes(layer):
        return ("this layer has no codes: it is rewritten whole, as one change that is "
                "reverted whole", "此图层没有编码：将整体重写，作为一次修改，可整体撤销")  # fmt: skip
    if mode == "replace":
        twice = repeated_codes(gdf["code"]) or repeated_codes(held_codes)
        if twice:
            shown = ", ".join(twice[:5]) + (" …" if len(twice) > 5 else "")
            return (f"codes repeat ({shown}): the layer is rewritten whole, as one change that "
                    "is reverted whole; the check reports them as duplicate codes",
                    f"编码重复（{shown}）：图层将整体重写，作为一次修改，可整体撤销；检查会将其列为编码重复")  # fmt: skip
    return None


def held_codes(current: gpd.GeoDataFrame | None, layer: str) -> pd.Series | None:
    """What :func:`written_whole` needs of a layer as ``current`` holds it."""
    if current is None:
        return None
    return current["code"] if has_codes(layer) else pd.Series([None] * len(current))


def planned_import(
    current: gpd.GeoDataFrame | None,
    gdf: gpd.GeoDataFrame,
    layer: str,
    mode: str,
    given: list[str] | None = None,
) -> LayerDiff | None:
    """What ``mode`` would do to the layer as ``current`` holds it (None: not in the
    dataset): a :class:`~geo.layerdiff.LayerDiff`, or None when the layer is rewritten
    whole (:func:`written_whole`)."""  # fmt: skip
    if mode == "update" and not has_codes(layer):
        raise cannot_update(layer)
    if written_whole(layer, mode, gdf, held_codes(current, layer)):
        return None
    if current is not None and not gdf.crs.equals(current.crs):
        gdf = gdf.to_crs(current.crs)
    return diff_layer(current, gdf, mode, fields=_fields(layer), given=given)


def whole_layer(current: gpd.GeoDataFrame | None, gdf: gpd.GeoDataFrame, mode: str):
    """The layer as a whole-layer write leaves it: the file, or (append) the layer and the
    file's features after it. In ``current``'s CRS."""
    if current is None or mode != "append":
        return gdf
    merged = pd.concat([current, gdf.to_crs(current.crs)], ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry=current.geometry.name, crs=current.crs)


def _whole(store, layer, gdf, mode, held, why, *, author, reason, basis) -> dict:
    """The layer rewritten whole (``why``), recorded as one revision of the layer as a
    whole; refused (StaleEdit) if it changed since ``basis``."""
    seen = store.version()  # what is read here is written back: refused if it moved on
    if basis is not None and seen.layers != basis.layers:
        raise _stale_preview(layer, seen.revision, None)
    current = store.read_layer(layer) if held and mode == "append" else None
    gdf = whole_layer(current, gdf, mode)
    record = {"author": author, "at": now(),
              "reason": f"upload ({_DONE[mode]}, whole layer): {reason}"}  # fmt: skip
    try:
        rev = store.write_layer(layer, gdf, record=record,
                                unchanged_since=(basis or seen).revision)  # fmt: skip
    except StaleEdit as err:
        raise _stale_preview(layer, err.current, err.latest) from None
    return {
        "layer": layer,
        "mode": mode,
        "change_id": rev,
        "revertible": True,
        "added": len(gdf) - (held if mode == "append" else 0),
        "removed": held if mode == "replace" else 0,
        "changed": 0,
        "unchanged": 0,
        "revisions": [{"code": WHOLE_LAYER, "revision": rev}],
        "whole": {"en": why[0], "zh": why[1]},
    }


def _stale_preview(layer: str, current: int, latest: dict | None) -> StaleEdit:
    return StaleEdit(
        current,
        latest,
        f"the layer {layer} changed since the upload was previewed; preview it again",
        zh=f"预览上传后图层 {layer} 已被修改，请重新预览",
    )


def import_layer(
    store,
    layer: str,
    gdf: gpd.GeoDataFrame,
    *,
    mode: str | None,
    author: str,
    reason: str,
    basis: Version | None = None,
    served=None,
    given: list[str] | None = None,
) -> dict:
    """Save ``gdf`` (a conformed layer, as :func:`layers.readers.read_layer_file` returns
    it) into ``store`` as ``layer`` by ``mode`` (None: only for a layer not yet holding
    features). ``basis``: the dataset version the user previewed the upload at; the import
    is refused if the layer changed since. ``served``: the service's in-memory copy
    (:class:`layers.editing.Served`), shown the change once committed. ``given``: the
    fields the file has (:meth:`layers.readers.ImportReport.given`); in update, the
    others keep their stored values.

    Returns ``{"layer", "mode", "change_id", "revertible", "added", "removed", "changed",
    "unchanged", "revisions"}`` (counts of features; ``revisions``: ``[{code,
    revision}]``)."""
    reason = _reason(reason)
    if layer not in store.list_layers():
        codes = None
    elif has_codes(layer):
        codes = store.read_codes(layer)  # without reading the geometry
    else:
        codes = pd.Series([None] * len(store.read_layer(layer)))
    held = 0 if codes is None else len(codes)
    mode = _refuse_unsaid_mode(layer, mode, held)
    target = dataset_crs(store)
    if target is not None and not gdf.crs.equals(target):
        gdf = gdf.to_crs(target)
    why = written_whole(layer, mode, gdf, codes)
    if why:
        with served.committing() if served is not None else nullcontext():
            result = _whole(store, layer, gdf, mode, held, why, author=author, reason=reason,
                            basis=basis)  # fmt: skip
            if served is not None:
                # a whole-layer write: the copy, which cannot follow it from revisions
                # (none were written), reads the dataset again on being shown a change
                # that starts from a version it has not seen
                after = store.version()
                served.apply(Saved(layer, gdf.iloc[:0], [], {}, after, after))
        return result
    with served.committing() if served is not None else nullcontext():
        with store.edit() as e:
            version = e.version()
            if basis is not None:
                since = e.revisions_after(layer, basis.revision)
                if version.layers != basis.layers or since:
                    raise _stale_preview(layer, since[-1]["id"] if since else version.revision,
                                         since[-1] if since else None)  # fmt: skip
            current = e.read_layer(layer)
            diff = diff_layer(current, gdf, mode, fields=_fields(layer), given=given)
            if not diff.codes:
                raise InputError(
                    f"the file changes nothing: its {diff.unchanged} feature(s) are already "
                    f"in the layer {layer} as they are",
                    zh=f"文件没有带来任何修改：其中 {diff.unchanged} 个要素与图层 {layer} 中的完全相同",
                )
            removed = current[current["code"].astype(str).isin(diff.removed)]
            removed = removed.set_geometry(  # an empty geometry: the feature is removed
                gpd.GeoSeries([shapely.Polygon()] * len(removed), index=removed.index),
                crs=current.crs,
            )
            written = pd.concat([diff.rows.reindex(columns=current.columns), removed],
                                ignore_index=True)  # fmt: skip
            written = gpd.GeoDataFrame(written, geometry=current.geometry.name, crs=current.crs)
            e.write_features(layer, written, diff.codes)
            before = {c: i for i, c in enumerate(current["code"].astype(str))}
            after = {c: i for i, c in enumerate(diff.rows["code"].astype(str))}
            change_id, out = None, []
            for code in diff.codes:
                rev = e.add_revision(
                    {
                        "layer": layer,
                        "code": code,
                        "author": author,
                        "at": now(),
                        "reason": f"upload ({_DONE[mode]}): {reason}",
                        "before": feature_json(current, before[code]) if code in before else None,
                        "after": feature_json(diff.rows, after[code]) if code in after else None,
                        "change_id": change_id,
                        "accepted": None,
                    }
                )
                change_id = change_id or rev
                out.append({"code": code, "revision": rev})
        if served is not None:
            served.apply(
                Saved(
                    layer,
                    written,
                    diff.codes,
                    {o["code"]: o["revision"] for o in out},
                    version,
                    Version(version.layers, out[-1]["revision"]),
                )
            )
    return {
        "layer": layer,
        "mode": mode,
        "change_id": change_id,
        "revertible": True,
        **diff.counts(),
        "revisions": out,
    }
