"""Edits: read-modify-write of layers with revisions, all or nothing.

``with store.edit() as e:`` holds the dataset's writer lock; ``e.read_layer`` sees the
dataset as it was when the edit began (read what you need, then write);
``e.write_features`` (the few features a change touched), ``e.write_layer`` and
``e.add_revision`` take effect together when the block ends, or not at all if it raises
(a crash leaves the last good revision). Revisions
record who, when, why, and the feature before and after (GeoJSON in the stored CRS; no
``before`` for a feature the change created, no ``after`` for one it removed). One change
to several features (a split, a merge, an adopted proposal) writes one revision per feature,
all with the same ``change_id``: the id of the change's first revision.
A layer written whole (an import of a new layer, of a kind without codes, of codes that
repeat; the revert of such a write) is recorded, when the writer asks for it, as one
revision of code :data:`WHOLE_LAYER`, with the layer as it was kept beside it
(:func:`whole_revision`), so that it can be put back like any change.
Users of the service (name, role, password hash) live in the dataset too.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.frames import in_place, taken_rows
from layers.schema import conform

__all__ = [
    "WHOLE_LAYER",
    "whole_revision",
    "from_snapshot",
    "layer_digest",
    "with_digest",
    "Edit",
    "Version",
    "REVISION_COLUMNS",
    "now",
    "Splice",
    "splice",
    "replacements",
    "live_features",
    "sql_value",
]


class Version(NamedTuple):
    """Where a dataset stands: ``layers`` counts the whole-layer writes (imports,
    deletions) it has had, ``revision`` is the id of its last revision (0: none). Two
    reads at the same version saw the same data; edits move ``revision`` on, and which
    features they changed is in the revisions."""

    layers: int
    revision: int


REVISION_COLUMNS = [
    "id",
    "layer",
    "code",
    "author",
    "at",
    "reason",
    "before",
    "after",
    "accepted",
    "change_id",
]


#: The ``code`` of a revision that wrote its layer whole. Its ``before`` and ``after`` say
#: only how many features the layer had (``{"features": n}``; None: no such layer); the
#: layer as it was before is kept whole beside it, as GeoParquet
#: (:meth:`layers.storage.base.LayerStore.layer_before`).
WHOLE_LAYER = "*"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Edit(ABC):
    """One edit of a dataset (see module docstring)."""

    @abstractmethod
    def read_layer(self, layer: str) -> gpd.GeoDataFrame: ...

    @abstractmethod
    def write_layer(self, layer: str, gdf: gpd.GeoDataFrame) -> None: ...

    @abstractmethod
    def add_revision(self, record: dict) -> int:
        """Append a revision; returns its id (increasing across the dataset)."""

    @abstractmethod
    def revisions(self, layer: str, code: str | None = None) -> list[dict]:
        """Revisions of a layer (or one feature), oldest first."""

    @abstractmethod
    def users(self) -> dict[str, dict]:
        """``{name: {"role", "password_hash"}}``."""

    @abstractmethod
    def put_user(self, name: str, role: str, password_hash: str) -> None: ...

    @abstractmethod
    def version(self) -> Version:
        """The dataset's :class:`Version` as this edit sees it."""

    def write_features(self, layer: str, features: gpd.GeoDataFrame, codes: Sequence[str]) -> None:
        """Replace the features of ``layer`` whose code is in ``codes`` by the rows of
        ``features`` with those codes (same CRS as the layer; a row with an empty geometry,
        or a code with no row, removes the feature). Only these rows are written; the rest
        of the layer is not touched. See :func:`replacements` for which row replaces which."""
        self.write_layer(layer, splice(self.read_layer(layer), features, codes))

    def revisions_after(self, layer: str, revision: int) -> list[dict]:
        """Revisions of ``layer`` newer than ``revision``, oldest first."""
        return [r for r in self.revisions(layer) if r["id"] > revision]


def whole_revision(
    reader,
    layer: str,
    before: gpd.GeoDataFrame | None,
    after: int | None,
    record: dict,
    unchanged_since: int | None,
) -> tuple[dict, bytes | None]:
    """The revision recording that ``layer`` is written whole (``after`` features; None:
    deleted) and the layer as it was (``before``; None: there was none) as GeoParquet
    bytes, to keep beside it. ``record``: who, when and why (``author``, ``at``,
    ``reason``, optionally ``accepted``). ``reader`` (an :class:`Edit` of the store as
    last committed, or None for a store not yet made) answers the revisions: with
    ``unchanged_since`` (a revision id) the write is refused (StaleEdit) if the layer has
    a revision after it, unless that revision wrote it whole and it is still as that
    left it (:func:`layer_digest`). Called by a backend under its writer lock; the backend
    adds the digest of the layer as written to ``after`` (:func:`with_digest`)."""
    from geo.errors import StaleEdit

    since = (
        reader.revisions_after(layer, unchanged_since)
        if reader and unchanged_since is not None
        else []
    )
    if since and not _as_left(reader, layer, unchanged_since, before):
        raise StaleEdit(
            since[-1]["id"],
            since[-1],
            f"the layer {layer} changed since (revision {since[-1]['id']}, by "
            f"{since[-1]['author']}: {since[-1]['reason']}); look at it again",
            zh=f"图层 {layer} 此后已被修改（第 {since[-1]['id']} 版，{since[-1]['author']}："
            f"{since[-1]['reason']}）；请重新查看",
        )
    revision = {
        "accepted": None,
        **record,
        "layer": layer,
        "code": WHOLE_LAYER,
        "before": None if before is None else {"features": len(before)},
        "after": None if after is None else {"features": after},
        "change_id": None,
    }
    if before is None:
        return revision, None
    buf = io.BytesIO()
    before.to_parquet(buf, index=False)
    return revision, buf.getvalue()


def _as_left(reader, layer: str, revision: int, now: gpd.GeoDataFrame | None) -> bool:
    """Whether the layer (``now``; None: absent) is as the whole-layer write ``revision``
    left it (by its digest), though revisions came after it (say, a write and its revert)."""
    rec = next((r for r in reader.revisions(layer, WHOLE_LAYER) if r["id"] == revision), None)
    if rec is None:
        return False
    if rec["after"] is None or now is None:
        return rec["after"] is None and now is None
    return rec["after"].get("digest") == layer_digest(now)


def layer_digest(gdf: gpd.GeoDataFrame) -> str:
    """A fingerprint of a layer as a store reads it: its columns, attribute values and
    geometries (WKB), in order. Two reads from the same store of the same data agree."""
    h = hashlib.sha256(",".join(map(str, gdf.columns)).encode())
    attrs = gdf.drop(columns=gdf.geometry.name)
    if len(attrs.columns):
        h.update(pd.util.hash_pandas_object(attrs, index=False).to_numpy().tobytes())
    h.update(b"".join(w or b"" for w in shapely.to_wkb(gdf.geometry.values)))
    return h.hexdigest()


def with_digest(revision: dict, written: gpd.GeoDataFrame | None) -> dict:
    """``revision`` (:func:`whole_revision`) with the digest of the layer as the store
    reads it back once written (None: deleted)."""
    if written is None:
        return revision
    return {**revision, "after": {**revision["after"], "digest": layer_digest(written)}}


def from_snapshot(revision: int, row) -> gpd.GeoDataFrame | None:
    """The layer kept with ``revision`` by :func:`whole_revision` (None: there was none),
    from its stored ``row`` (``(data,)``; None: that revision kept nothing)."""
    from layers.errors import StorageError

    if row is None:
        raise StorageError(
            f"revision {revision} did not write a layer whole: no layer was kept with it",
            zh=f"第 {revision} 版不是整层写入，没有保留修改前的图层",
        )
    return None if row[0] is None else gpd.read_parquet(io.BytesIO(bytes(row[0])))


def encode(value) -> str | None:
    """A revision's before/after as strict JSON (NaN → null, geo.strict_json)."""
    from geo.strict_json import dumps

    return None if value is None else dumps(value)


def decode(row: dict) -> dict:
    out = dict(row)
    for key in ("before", "after"):
        out[key] = json.loads(out[key]) if out.get(key) else None
    return out


def _text(codes) -> np.ndarray:
    """Codes as an array of text objects: as given when they are one already (a served
    layer's codes; converting 150,000 to fixed-width text costs 10 ms)."""
    codes = np.asarray(codes)
    if codes.dtype == object and pd.api.types.infer_dtype(codes, skipna=False) == "string":
        return codes
    return codes.astype(str).astype(object)


def _live(geoms) -> np.ndarray:
    """Which geometries are features (not missing, not empty: an empty one is a removal)."""
    return ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))


def replacements(
    old: dict[str, list[int]], features: gpd.GeoDataFrame, codes: Sequence[str]
) -> Iterator[tuple[str, int | None, int | None]]:
    """How :meth:`Edit.write_features` changes a layer, given the stored features of each
    code (``old``: ``{code: [row key, …]}`` in stored order): ``(action, row key, position
    in features)`` with action ``"update"`` (the i-th stored feature of a code takes the
    i-th new one, keeping its place), ``"delete"`` (stored features beyond the new ones) or
    ``"insert"`` (new ones beyond the stored, appended at the end)."""
    fcodes = features["code"].astype(str).to_numpy()
    live = _live(features.geometry.values)
    for code in dict.fromkeys(str(c) for c in codes):
        new = np.flatnonzero((fcodes == code) & live)
        keys = old.get(code, [])
        for key, pos in zip(keys, new):
            yield "update", key, int(pos)
        for key in keys[len(new) :]:
            yield "delete", key, None
        for pos in new[len(keys) :]:
            yield "insert", None, int(pos)


@dataclass(frozen=True)
class Splice:
    """Where each feature of a layer goes when :meth:`Edit.write_features` replaces the
    features of ``codes``, as positions, so that anything kept in step with the layer's rows
    (a lon/lat copy, prepared GeoJSON, derived figures) can follow it without being made
    again: ``added`` are the positions in ``features`` of the rows that enter the layer,
    and row ``i`` of the result is row ``order[i]`` of the stored rows followed by the
    added ones."""

    added: np.ndarray
    order: np.ndarray

    @classmethod
    def of(cls, stored_codes, features: gpd.GeoDataFrame, codes) -> Splice:
        """The splice of ``features`` (their ``codes``) into a layer whose rows have
        ``stored_codes``, by the rule of :func:`replacements`."""
        scodes = _text(stored_codes)
        wanted = list(dict.fromkeys(map(str, codes)))
        old: dict[str, list[int]] = {}
        for i in np.flatnonzero(np.isin(scodes, wanted)):  # a few codes: compared in turn
            old.setdefault(scodes[i], []).append(int(i))
        updated, dropped, inserted = {}, [], []
        for action, key, pos in replacements(old, features, codes):
            if action == "update":
                updated[key] = pos
            elif action == "delete":
                dropped.append(key)
            else:
                inserted.append(pos)
        n = len(scodes)
        order = np.arange(n)
        order[list(updated)] = n + np.arange(len(updated))
        keep = np.ones(n, dtype=bool)
        keep[dropped] = False
        order = np.concatenate([order[keep], n + len(updated) + np.arange(len(inserted))])
        return cls(np.array([*updated.values(), *inserted], dtype=np.int64), order)

    @classmethod
    def chain(cls, stored_codes, changes) -> tuple[Splice, list[np.ndarray]]:
        """Several changes (``(features, codes)`` in commit order) made one after another,
        as one splice: and for each change, the positions of its features that enter; the
        splice's added rows are those of every change in turn (a row a later change
        replaced again is among them, and is not in the order)."""
        codes = _text(stored_codes)
        order = np.arange(len(codes))
        n, entered = len(codes), []
        for features, changed in changes:
            step = cls.of(codes, features, changed)
            new = _text(features["code"])[step.added]
            codes = np.concatenate([codes, new])[step.order]
            order = np.concatenate([order, n + np.arange(len(new))])[step.order]
            n += len(new)
            entered.append(step.added)
        return cls(np.arange(n - len(stored_codes)), order), entered

    def rows(self, stored: pd.DataFrame, added: pd.DataFrame) -> pd.DataFrame:
        """``stored`` with the ``added`` rows (one per :attr:`added`, same columns) spliced
        in; a fresh RangeIndex; a GeoDataFrame if ``stored`` is one."""
        return taken_rows(stored, added, self.order)

    def items(self, stored, added) -> list:
        """The same for plain sequences (``added``: one item per :attr:`added`)."""
        replaced = in_place(self.order, len(stored))
        if replaced is None:
            return list(self.array(stored, added))
        out, added = list(stored), list(added)
        for at, row in zip(*replaced):
            out[at] = added[row]
        return out

    def array(self, stored, added) -> np.ndarray:
        """The same as a NumPy array (of objects unless both are arrays of one dtype)."""
        if isinstance(stored, np.ndarray) and isinstance(added, np.ndarray):
            if stored.dtype == added.dtype:
                replaced = in_place(self.order, len(stored))
                if replaced is not None:
                    out = stored.copy()
                    out[replaced[0]] = added[replaced[1]]
                    return out
                return np.concatenate([stored, added])[self.order]
        combined = np.empty(len(stored) + len(added), dtype=object)
        combined[: len(stored)] = stored if len(stored) else []
        combined[len(stored) :] = added if len(added) else []
        return combined[self.order]


def splice(stored: gpd.GeoDataFrame, features: gpd.GeoDataFrame, codes) -> gpd.GeoDataFrame:
    """``stored`` after :meth:`Edit.write_features` (``features`` in its CRS, with its
    columns): the same rule, on a frame in memory."""
    plan = Splice.of(stored["code"].to_numpy(), features, codes)
    added = features.reindex(columns=stored.columns).iloc[plan.added]
    out = plan.rows(stored, added)
    return gpd.GeoDataFrame(out, geometry=stored.geometry.name, crs=stored.crs)


def live_features(features: gpd.GeoDataFrame, layer: str) -> gpd.GeoDataFrame:
    """The features that remain (non-empty geometry), checked against the layer schema
    (:func:`layers.schema.conform`); those with an empty geometry are removals."""
    kept = features[_live(features.geometry.values)]
    return conform(kept, layer) if len(kept) else kept


def sql_value(v):
    """A value as a database driver takes it: NaN and missing → None, NumPy → Python."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


_MULTI = {
    "Point": shapely.MultiPoint,
    "LineString": shapely.MultiLineString,
    "Polygon": shapely.MultiPolygon,
}


def as_column_type(geom, type_name: str):
    """``geom`` as a column of ``type_name`` (e.g. MULTIPOLYGON) holds it: a single
    geometry becomes a one-part multi-geometry there."""
    if geom is not None and type_name.upper().startswith("MULTI") and geom.geom_type in _MULTI:
        return _MULTI[geom.geom_type]([geom])
    return geom
