"""What bringing a new version of a layer into a dataset changes, feature by feature.

An upload (from the browser or ``python -m layers import``) is one of three modes, each
said by the user, never guessed:

- ``replace``: the layer becomes the file. Features whose code is not in the file are
  removed.
- ``append``: the file's features are added. A code the layer already holds is refused
  (that is an update).
- ``update``: features are matched by ``code``. A matched feature takes the file's
  geometry and the fields the file has (a field the file does not have keeps its stored
  value); a code new to the layer is added; nothing is removed.

:func:`diff_layer` says what a mode does as codes added, removed and changed (unchanged
ones are counted, not written), and gives the rows to write: exactly what
:meth:`layers.storage.edits.Edit.write_features` splices in, so that only the changed
features are written and each gets a revision. Both frames are in the same CRS (the
dataset's geographic CRS); geometry equality is exact to :data:`SAME_WITHIN` degrees
(about 0.1 mm), after normalising ring order and start.

>>> import geopandas as gpd
>>> from shapely import box
>>> old = gpd.GeoDataFrame({"code": ["a", "b"], "name": ["A", "B"]},
...                        geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326)
>>> new = gpd.GeoDataFrame({"code": ["b", "c"], "name": ["B2", "C"]},
...                        geometry=[box(1, 0, 2, 1), box(2, 0, 3, 1)], crs=4326)
>>> d = diff_layer(old, new, "replace", fields=["code", "name"])
>>> d.added, d.removed, d.changed, d.unchanged
(['c'], ['a'], ['b'], 0)
>>> diff_layer(old, new, "update", fields=["code", "name"]).removed
[]
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import InputError

__all__ = ["MODES", "SAME_WITHIN", "LayerDiff", "diff_layer", "repeated_codes"]

#: The upload modes, with what each does in English and Chinese (the one table the CLI,
#: the API and the page read).
MODES = {
    "replace": ("the layer becomes the file: features not in it are removed",
                "以文件替换图层：文件中没有的要素将被删除"),
    "append": ("the file's features are added to the layer",
               "将文件中的要素追加到图层"),
    "update": ("features are matched by code and updated; new codes are added, none removed",
               "按编码匹配并更新要素；新编码将被添加，不删除任何要素"),
}  # fmt: skip

#: Coordinates closer than this (degrees, about 0.1 mm) are the same.
SAME_WITHIN = 1e-9


@dataclass(frozen=True)
class LayerDiff:
    """What a mode does to a layer: codes ``added``, ``removed`` and ``changed``, how many
    are ``unchanged``, and ``rows``: the features to write (the added and changed ones as
    the file has them; a removed code has no row), in the CRS of both frames."""

    mode: str
    added: list[str]
    removed: list[str]
    changed: list[str]
    unchanged: int
    rows: gpd.GeoDataFrame

    @property
    def codes(self) -> list[str]:
        """Every code the change writes (added, changed, removed)."""
        return [*self.added, *self.changed, *self.removed]

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "unchanged": self.unchanged,
        }


def repeated_codes(codes) -> list[str]:
    """The codes that occur more than once, in order of first occurrence.

    >>> repeated_codes(["a", "b", "a", "c", "b", None])
    ['a', 'b']
    """
    s = pd.Series(list(codes), dtype=object).dropna().astype(str)
    return list(dict.fromkeys(s[s.duplicated()]))


def _listed(codes: list[str], shown: int = 10) -> tuple[str, str]:
    """The first ``shown`` codes and how many more, in English and Chinese."""
    more = len(codes) - shown
    return (
        ", ".join(codes[:shown]) + (f" and {more} more" if more > 0 else ""),
        "、".join(codes[:shown]) + (f" 等另 {more} 个" if more > 0 else ""),
    )


def _same_values(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Row by row: equal, or both missing (numbers compared as numbers)."""
    missing_a, missing_b = a.isna().to_numpy(), b.isna().to_numpy()
    try:
        equal = a.astype(float).to_numpy() == b.astype(float).to_numpy()
    except (TypeError, ValueError):
        equal = a.astype(str).to_numpy() == b.astype(str).to_numpy()
    return (missing_a & missing_b) | (~missing_a & ~missing_b & equal)


def _same_geometry(a, b) -> np.ndarray:
    """Row by row: the same vertices (within :data:`SAME_WITHIN`, any ring start and
    orientation), or the same point set (a polygon read back as a one-part multipolygon)."""
    same = shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), SAME_WITHIN)
    rest = np.flatnonzero(~same & (shapely.get_type_id(a) != shapely.get_type_id(b)))
    if len(rest):
        same[rest] = shapely.equals(a[rest], b[rest])
    return same


def diff_layer(
    current: gpd.GeoDataFrame | None,
    incoming: gpd.GeoDataFrame,
    mode: str,
    *,
    fields: list[str],
    given: list[str] | None = None,
) -> LayerDiff:
    """What ``mode`` does to ``current`` (None: the layer is not in the dataset yet) when
    ``incoming`` is brought in, comparing ``fields`` (the layer kind's fields, ``code``
    among them) and the geometry. Both frames in the same CRS. ``given``: the fields the
    file has (default: all); in ``update`` a matched feature keeps its stored value of
    the others.

    Raises :class:`~geo.errors.InputError`, naming the codes, when a code repeats in the
    file or in the layer (features are told apart by code), or when ``append`` meets a
    code the layer already holds."""
    if mode not in MODES:
        raise InputError(
            f"mode must be one of {', '.join(MODES)}, not '{mode}'",
            zh=f"导入方式须为 {', '.join(MODES)} 之一，而不是“{mode}”",
        )
    for frame, where, where_zh in ((incoming, "the file", "文件"), (current, "the layer", "图层")):
        twice = repeated_codes(frame["code"]) if frame is not None else []
        if twice:
            en, zh = _listed(twice)
            raise InputError(
                f"codes repeat in {where} ({en}): each feature must have its own code to "
                "be compared and saved with its history. Fix: give them distinct codes",
                zh=f"{where_zh}中编码重复（{zh}）：每个要素须有自己的编码，才能逐个比较并"
                "保存修改记录。修正：改为互不相同的编码",
            )
    if current is None:
        current = incoming.iloc[:0]
    new_codes = incoming["code"].astype(str).to_numpy()
    old_codes = current["code"].astype(str).to_numpy()
    held = pd.Index(old_codes)
    position = held.get_indexer(new_codes)  # -1: not in the layer
    matched = position >= 0
    if mode == "append" and matched.any():
        clash = new_codes[matched].tolist()
        en, zh = _listed(clash)
        raise InputError(
            f"{len(clash)} feature(s) of the file have codes the layer already holds ({en}): "
            "appending would repeat them. Fix: choose update (by code) or replace",
            zh=f"文件中 {len(clash)} 个要素的编码图层中已有（{zh}）：追加会造成编码重复。"
            "修正：改选“按编码更新”或“替换”",
        )
    if mode == "update" and given is not None and matched.any():
        incoming = incoming.copy()
        rows, at = np.flatnonzero(matched), position[matched]
        for f in fields:
            if f not in given and f in current.columns:
                if f not in incoming.columns:
                    incoming[f] = None
                incoming[f] = incoming[f].astype(object)
                incoming.iloc[rows, incoming.columns.get_loc(f)] = current[f].iloc[at].to_numpy()
    same = np.zeros(len(incoming), dtype=bool)
    if matched.any():
        new_rows = incoming.iloc[np.flatnonzero(matched)]
        old_rows = current.iloc[position[matched]]
        equal = _same_geometry(new_rows.geometry.values, old_rows.geometry.values)
        for f in fields:
            if f == "code":
                continue
            a = new_rows[f] if f in new_rows else pd.Series([None] * len(new_rows))
            b = old_rows[f] if f in old_rows else pd.Series([None] * len(old_rows))
            equal &= _same_values(a.reset_index(drop=True), b.reset_index(drop=True))
        same[np.flatnonzero(matched)] = equal
    added = new_codes[~matched].tolist()
    changed = new_codes[matched & ~same].tolist()
    removed = [c for c in old_codes if c not in set(new_codes)] if mode == "replace" else []
    rows = incoming.iloc[np.flatnonzero(~same)]
    return LayerDiff(mode, added, removed, changed, int(same.sum()), rows)
