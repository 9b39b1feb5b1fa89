"""Errors raised where data enters gridmap: the names layers' code raises, from the one
error tree in :mod:`geo.errors`."""

from geo.errors import (
    DiskFull,
    GridmapError,
    InputError,
    LayerError,
    StorageError,
    UnknownLayer,
)

__all__ = ["GridmapError", "LayerError", "InputError", "StorageError", "DiskFull", "UnknownLayer"]
