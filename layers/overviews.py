"""Generalised geometry of served layers, kept on disk between runs (overviews).

Generalising a province's grid for the map's low zooms
(:meth:`geo.tiles.TileLayer.generalised`) takes both cores for half a minute, and its
result depends only on the layer's geometry and the generalisation's settings. It is kept
in a directory, one file per result, named by a digest of exactly those inputs
(:func:`geo.tiles.generalisation_key`): a restart, another worker or another copy of the
same data finds it at once, and a file can never be stale — a layer whose geometry
changed has another name. As GDAL keeps a raster's overviews beside it, these are derived
data: deleting the directory loses nothing but time.

A file holds the features' generalisation groups and each band's geometry as WKB (NumPy
``.npz``, no pickles; a band equal to another is stored once). It is written to a
temporary name and renamed, so a killed writer leaves no half file; a file that cannot be
read, or does not fit the layer, is removed and counts as missing. The directory is kept
under a size budget, the least recently used files removed first.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import shapely

__all__ = ["BUDGET", "Overviews"]

BUDGET = 2 * 2**30  # bytes of overview files kept in one directory
_SUFFIX = ".overview.npz"
_ABANDONED_AFTER = 3600  # seconds after which a file being written was left by a killed writer
log = logging.getLogger("gridmap")


class Overviews:
    """The overview files in ``directory`` (made when first needed), at most ``budget``
    bytes of them."""

    def __init__(self, directory: str | os.PathLike, budget: int = BUDGET):
        self.directory = Path(directory)
        self.budget = budget

    def _path(self, key: str) -> Path:
        if not key.isalnum():  # a digest: no path can be smuggled in
            raise ValueError(f"not an overview key: {key!r}")
        return self.directory / f"{key}{_SUFFIX}"

    def __contains__(self, key: str) -> bool:
        return self._path(key).exists()

    def load(self, key: str, n: int) -> tuple[np.ndarray, dict[int, np.ndarray]] | None:
        """The groups (one per feature) and the generalised geometry of each band kept
        under ``key`` for a layer of ``n`` features; None if none is kept (or what is kept
        cannot be read or is not of ``n`` features: then it is removed)."""
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as kept:
                groups = kept["groups"].astype(np.int64)
                bands: dict[int, np.ndarray] = {}
                for b in kept["bands"].tolist():
                    same = int(kept[f"same_{b}"])
                    if same != b:
                        bands[b] = bands[same]
                        continue
                    blob, ends = kept[f"wkb_{b}"].tobytes(), kept[f"ends_{b}"].tolist()
                    starts = [0] + ends[:-1]
                    wkb = np.array([blob[s:e] or None for s, e in zip(starts, ends)], dtype=object)
                    bands[b] = shapely.from_wkb(wkb)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, shapely.errors.GEOSException):
            log.warning("overview %s cannot be read; it is made again", path.name)
            path.unlink(missing_ok=True)
            return None
        if len(groups) != n or any(len(g) != n for g in bands.values()):
            log.warning("overview %s is not of a layer of %d features; made again", path.name, n)
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # recently used: pruned last
        return groups, bands

    def save(self, key: str, groups: np.ndarray, bands: dict[int, np.ndarray]) -> None:
        """Keep ``groups`` and ``bands`` ({band: geometry per feature}) under ``key``, then
        prune the directory to its budget."""
        arrays: dict[str, np.ndarray] = {
            "groups": np.asarray(groups, dtype=np.int64),
            "bands": np.array(sorted(bands), dtype=np.int64),
        }
        written: dict[int, list] = {}
        for b in sorted(bands):
            wkb = shapely.to_wkb(np.asarray(bands[b], dtype=object)).tolist()
            same = next((o for o, w in written.items() if w == wkb), b)
            arrays[f"same_{b}"] = np.array(same, dtype=np.int64)
            if same != b:
                continue
            written[b] = wkb
            pieces = [w or b"" for w in wkb]
            arrays[f"wkb_{b}"] = np.frombuffer(b"".join(pieces), dtype=np.uint8)
            arrays[f"ends_{b}"] = np.cumsum([len(p) for p in pieces], dtype=np.int64)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".writing-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as out:
                np.savez(out, **arrays)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self._path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.prune()

    def prune(self) -> None:
        """Remove the least recently used files until the rest fit the budget, and the
        files killed writers left half written."""
        now = time.time()
        for path in self.directory.glob(".writing-*"):
            try:
                if now - path.stat().st_mtime > _ABANDONED_AFTER:
                    path.unlink(missing_ok=True)
            except FileNotFoundError:
                continue
        files = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            try:
                st = path.stat()
            except FileNotFoundError:  # removed by another worker meanwhile
                continue
            files.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.budget:
                break
            path.unlink(missing_ok=True)
            total -= size
