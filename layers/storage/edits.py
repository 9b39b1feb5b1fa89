"""Edits: read-modify-write of layers with revisions, all or nothing.

``with store.edit() as e:`` holds the dataset's writer lock; ``e.read_layer`` sees the
edit's own writes; ``e.write_layer`` and ``e.add_revision`` take effect together when the
block ends, or not at all if it raises (a crash leaves the last good revision). Revisions
record who, when, why, and the feature before and after (GeoJSON in the stored CRS; no
``before`` for a feature the change created, no ``after`` for one it removed). One change
to several features (a split, a merge, an adopted proposal) writes one revision per feature,
all with the same ``change_id``: the id of the change's first revision.
Users of the service (name, role, password hash) live in the dataset too.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import UTC, datetime

import geopandas as gpd

__all__ = ["Edit", "REVISION_COLUMNS", "now"]

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

    def feature_revision(self, layer: str, code: str) -> int:
        """The id of the last revision that changed this feature (0: never edited)."""
        revs = self.revisions(layer, code)
        return revs[-1]["id"] if revs else 0


def encode(value) -> str | None:
    """A revision's before/after as strict JSON (NaN → null, geo.strict_json)."""
    from geo.strict_json import dumps

    return None if value is None else dumps(value)


def decode(row: dict) -> dict:
    out = dict(row)
    for key in ("before", "after"):
        out[key] = json.loads(out[key]) if out.get(key) else None
    return out
