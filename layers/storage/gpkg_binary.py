"""GeoPackage geometry blobs and the SQL functions its R-tree triggers call, so that a
save can change a few rows of a GeoPackage in one SQLite transaction without GDAL.

A GeoPackage stores each geometry as a small header — ``b"GP"``, version, flags, the
``srs_id`` and an envelope — followed by the geometry as standard WKB (OGC GeoPackage
1.3, §2.1.3). The spatial index of a layer is an R-tree kept current by triggers that
GDAL writes into the file; they call ``ST_IsEmpty``, ``ST_MinX``, ``ST_MaxX``, ``ST_MinY``
and ``ST_MaxY``, which SQLite does not have: :func:`register` provides them on a
connection, as the GeoPackage R-tree extension (§F.3) expects of any writer.
"""

from __future__ import annotations

import sqlite3
import struct

import shapely

__all__ = ["encode", "decode", "register"]

_EMPTY = 0b1_0000  # flags: the geometry is empty
_LITTLE = 0b1  # flags: header numbers are little-endian
_ENVELOPE_XY = 0b10  # flags: envelope [minx, maxx, miny, maxy]
_ENVELOPE_SIZE = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def encode(geom, srs_id: int) -> bytes | None:
    """A GeoPackage geometry blob of ``geom`` (None stays NULL), with its xy envelope."""
    if geom is None:
        return None
    wkb = shapely.to_wkb(geom, byte_order=1, flavor="iso")
    if geom.is_empty:
        return b"GP" + struct.pack("<BBi", 0, _EMPTY | _LITTLE, srs_id) + wkb
    minx, miny, maxx, maxy = geom.bounds
    head = struct.pack("<BBi4d", 0, _ENVELOPE_XY | _LITTLE, srs_id, minx, maxx, miny, maxy)
    return b"GP" + head + wkb


def _header(blob: bytes) -> tuple[int, int]:
    """(flags, header length) of a GeoPackage blob; ValueError if it is not one."""
    if blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry")
    flags = blob[3]
    return flags, 8 + _ENVELOPE_SIZE[(flags >> 1) & 0b111]


def decode(blob: bytes | None):
    """The shapely geometry of a GeoPackage blob (None for NULL)."""
    if blob is None:
        return None
    _, size = _header(blob)
    return shapely.from_wkb(blob[size:])


def _bounds(blob) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) from the header's envelope, else from the WKB."""
    if blob is None:
        return None
    flags, size = _header(blob)
    if flags & _EMPTY:
        return None
    if (flags >> 1) & 0b111:
        order = "<" if flags & _LITTLE else ">"
        return struct.unpack(order + "4d", blob[8:40])
    minx, miny, maxx, maxy = shapely.from_wkb(blob[size:]).bounds
    return minx, maxx, miny, maxy


def _is_empty(blob) -> int | None:
    if blob is None:
        return None
    flags, size = _header(blob)
    return int(bool(flags & _EMPTY) or shapely.from_wkb(blob[size:]).is_empty)


def _edge(k: int):
    def edge(blob):
        b = _bounds(blob)
        return None if b is None else b[k]

    return edge


def register(con: sqlite3.Connection) -> None:
    """Give ``con`` the functions GeoPackage R-tree triggers call."""
    con.create_function("ST_IsEmpty", 1, _is_empty, deterministic=True)
    for k, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        con.create_function(name, 1, _edge(k), deterministic=True)
