"""Mapbox Vector Tile encoding, the geometry of all features at once.

``mapbox-vector-tile`` encodes feature by feature, coordinate by coordinate, in Python:
about 45 µs a grid cell, so the 55,000 cells of one zoom-9 tile of a province take
2.5 s and its first view many more. The encoding itself is simple arithmetic on
coordinate arrays (MVT 2.1, §4.3): each ring a MoveTo, a LineTo of its other vertices
and a ClosePath, every coordinate a zigzag-encoded delta from the one before, every
number a protobuf varint. Here that arithmetic runs on all the tile's vertices at once
(NumPy, from shapely's ragged arrays), and so do the varints of the features and of the
values; the layer's name and keys are written by the tile schema ``mapbox-vector-tile``
ships. A decoder reads the same features from these tiles as from the library's: the
same commands, the same deltas, repeated vertices left out the same way (tests decode
both, with the library and with GDAL). The zoom-9 tile above: 0.9 s.

:func:`encode_layer` takes geometries already in tile units, y down, clipped and
oriented, of one family (polygons, lines or points); :func:`encode_tile` puts layers
into one tile. Anything else (a layer mixing families) goes to ``mapbox-vector-tile``.
"""

from __future__ import annotations

import operator

import numpy as np
import pandas as pd
import shapely
from mapbox_vector_tile.Mapbox import vector_tile_pb2

__all__ = ["Tags", "encode_layer", "encode_tile", "uniform"]

_MOVE_TO, _LINE_TO, _CLOSE_PATH = 1, 2, 7
_SCALAR = (str, bool, int, float)  # what a tile's values hold; other properties are left out
_POINT, _LINESTRING, _POLYGON = 1, 2, 3
_FAMILY = {  # shapely type id -> MVT geometry type
    0: _POINT, 4: _POINT,
    1: _LINESTRING, 5: _LINESTRING,
    3: _POLYGON, 6: _POLYGON,
}  # fmt: skip


def uniform(geoms) -> bool:
    """Whether ``geoms`` are all of one MVT family (all polygonal, linear or puntal) and
    not empty: what :func:`encode_layer` encodes."""
    types = shapely.get_type_id(np.asarray(geoms, dtype=object))
    families = {_FAMILY.get(int(t)) for t in np.unique(types)}
    return len(geoms) > 0 and len(families) == 1 and None not in families


class Tags:
    """A layer's properties as MVT tags, worked out once for all its features: the keys,
    each feature's value per key (an index into the values, -1 where it has none) and
    each distinct value written once as wire bytes. A tile then only picks its features'
    rows. Values are str, int, float and bool, each kept with its type (the library
    writes 1.0 as the int 1 when it has seen 1 first); others are left out, as it does.
    Tables made by :meth:`added` share the values with the table they came from (the
    values only ever grow). Indexes are 32-bit: a save copies half as much."""

    def __init__(self, keys, ids: np.ndarray, values: list[bytes], index: dict):
        self.keys, self.ids = list(keys), ids
        self.values, self._index = values, index  # index: (type, value) -> its position

    @classmethod
    def of(cls, props: list[dict]) -> Tags:
        """The table of ``props`` (one dict per feature)."""
        return cls.from_columns(_columns_of(props), len(props))

    @classmethod
    def from_columns(cls, columns: dict, n: int) -> Tags:
        """The table of ``n`` features whose values are ``columns`` ({key: one value per
        feature, None where it has none})."""
        empty = cls([], np.full((0, 0), -1, dtype=np.int32), [], {})
        return empty.added(columns, n)

    def __len__(self) -> int:
        return len(self.ids)

    def added(self, columns: dict, n: int) -> Tags:
        """This table with rows for ``n`` more features after its own, their values in
        ``columns`` ({key: one value per feature})."""
        keys, ids, rows = self._grown(columns, n)
        return Tags(keys, np.concatenate([ids, rows]), self.values, self._index)

    def spliced(self, plan, columns: dict, n: int) -> Tags:
        """The table after a save: ``plan`` (:class:`layers.storage.edits.Splice`) says
        which of this table's rows and of the ``n`` entering features' (values in
        ``columns``) come where; a save that only replaces features costs a copy."""
        keys, ids, rows = self._grown(columns, n)
        return Tags(keys, plan.array(ids, rows), self.values, self._index)

    def _grown(self, columns: dict, n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The keys with those of ``columns`` added, this table's rows for them, and the
        rows of ``n`` features whose values are ``columns``: their new values are added
        to :attr:`values`."""
        keys = self.keys + [k for k in columns if k not in self.keys]
        ids = self.ids
        if len(keys) > len(self.keys):
            ids = np.pad(ids, ((0, 0), (0, len(keys) - len(self.keys))), constant_values=-1)
        rows = np.full((n, len(keys)), -1, dtype=np.int32)
        fresh: list[tuple[type, object]] = []
        for j, k in enumerate(keys):
            if k not in columns:
                continue
            codes, uniques = _factorized(columns[k])
            tags = list(zip(map(type, uniques), uniques))  # 1 and 1.0 apart: types kept
            found = list(map(self._index.get, tags))
            new = [t for t, f in zip(tags, found) if f is None]  # (a column's uniques
            if new:  # differ: each new one numbered once)
                first = len(self._index)
                self._index.update(zip(new, range(first, first + len(new))))
                fresh.extend(new)
                if len(new) == len(tags):  # all new (a column seen first): in order
                    found = list(range(first, first + len(new)))
                else:
                    found = list(map(self._index.get, tags))
            at = np.array(found + [-1], dtype=np.int32)  # at[-1]: missing
            rows[:, j] = at[codes]
        self.values.extend(_values(fresh))
        return keys, ids, rows

    def records(self, rows) -> list[dict]:
        """The properties of the features at ``rows``, one dict each (for the rare tile
        the library encodes: it reads the values back from the index, in its order)."""
        value = [v for _, v in self._index]
        return [
            {k: value[i] for k, i in zip(self.keys, row) if i >= 0}
            for row in self.ids[np.asarray(rows, dtype=np.int64)].tolist()
        ]

    def for_tile(self, rows) -> tuple[list[str], bytes, np.ndarray, np.ndarray]:
        """What the features at ``rows`` need in one tile: the keys they use, those values
        (wire bytes), and their tags (key, value, … renumbered for the tile) with each
        feature's count."""
        sub = self.ids[np.asarray(rows, dtype=np.int64)]
        present = sub >= 0
        used_keys = present.any(axis=0)
        key_no = np.cumsum(used_keys) - 1
        used, first, local = np.unique(sub[present], return_index=True, return_inverse=True)
        # values in the order the tile's features first use them, as the library writes
        # them: the same tile whatever else the table holds
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        used, local = used[order], rank[local]
        pairs = np.stack([np.broadcast_to(key_no, sub.shape)[present], local], axis=1).ravel()
        keys = [k for k, u in zip(self.keys, used_keys) if u]
        picked = used.tolist()
        if len(picked) > 1:  # picked in C: a tile of 230 cells uses 700 values
            values = b"".join(operator.itemgetter(*picked)(self.values))
        else:
            values = b"".join(self.values[i] for i in picked)
        return keys, values, pairs, 2 * present.sum(axis=1)


def _columns_of(props: list[dict]) -> dict[str, list]:
    """Dicts (one per feature) as columns: {key: one value per feature, None where none}."""
    keys: dict[str, None] = {}
    for p in props:
        keys.update(dict.fromkeys(k for k in p if isinstance(k, str)))
    return {k: [p.get(k) for p in props] for k in keys}


def _factorized(values) -> tuple[np.ndarray, list]:
    """``(codes, uniques)`` of one column: -1 where a value is missing or not one a tile
    holds (str, int, float, bool; NaN counts as missing), uniques as Python values."""
    if isinstance(values, pd.Series) and values.dtype.kind in "biuf":  # NaN for none
        codes, uniques = pd.factorize(values)
        return codes, uniques.tolist()
    if (isinstance(values, np.ndarray) and values.dtype.kind == "U") or (
        isinstance(values, pd.Series) and isinstance(values.dtype, pd.StringDtype)
    ):  # text and nothing else (missing: -1): no value to look at one by one
        codes, uniques = pd.factorize(values)
        return codes, np.asarray(uniques, dtype=object).tolist()
    if isinstance(values, pd.Series):
        values = values.tolist()
    column = np.empty(len(values), dtype=object)  # as given: [1, None] stays ints
    column[:] = [v if isinstance(v, _SCALAR) else None for v in values]
    codes, uniques = pd.factorize(column)  # None (and NaN) -> -1
    if len({isinstance(v, bool) for v in uniques}) > 1:  # True and 1: one key to a hash
        column[:] = [None if v is None else (type(v), v) for v in column]  # table
        codes, uniques = pd.factorize(column)
        return codes, [v for _, v in uniques]
    return codes, list(uniques)


def encode_tile(layers, extent: int = 4096) -> bytes:
    """An MVT of ``layers``: ``(name, geometries, properties)`` each, each as
    :func:`encode_layer` takes them."""
    out = []
    for name, geoms, props in layers:
        if len(geoms):
            body = encode_layer(name, geoms, props, extent)
            out.append(_field_header(3, len(body)) + body)  # tile.layers = 3
    return b"".join(out)


def encode_layer(name: str, geoms, props, extent: int = 4096) -> bytes:
    """One ``tile.layer`` message: a feature per geometry that keeps any vertex (a ring
    or line left with fewer than two distinct vertices is dropped, a polygon with its
    outer ring, as the library does), with its properties: ``props``, one dict per
    geometry, or ``(tags, rows)``, a :class:`Tags` table and each geometry's row in it.
    ``geoms``: tile units, y down, integers (rounded), of one family (:func:`uniform`).

    The layer's name and keys are written by the schema's own classes; the values and
    the features, most of the bytes, straight as protobuf wire bytes, all at once."""
    geoms = np.asarray(geoms, dtype=object)
    kind, stream, starts = _geometry(geoms)
    alive = np.flatnonzero(starts[1:] > starts[:-1])  # features that kept a vertex
    if isinstance(props, tuple):
        table, rows = props
        rows = np.asarray(rows, dtype=np.int64)[alive]
    else:
        table, rows = Tags.of([props[i] for i in alive]), np.arange(len(alive))
    keys, values, tags, tag_counts = table.for_tile(rows)
    head = vector_tile_pb2.tile.layer()
    head.name, head.version, head.extent = name, 2, extent
    head.keys.extend(keys)
    g_lengths = np.diff(starts)[alive]  # the others have none in the stream
    features = _features(kind, tags, tag_counts, stream, g_lengths)
    return head.SerializeToString() + values + features  # fields may come in any order


def _values(order: list[tuple[type, object]]) -> list[bytes]:
    """Each of ``order`` (``(type, value)``) as a ``layer.values`` entry: strings (field 1),
    doubles (field 3) and non-negative integers below 2^35 (field 4, varint) written all
    at once; bools and other integers by the schema's class."""
    pieces = np.empty(len(order), dtype=object)
    strings, doubles, counts, others = [], [], [], []
    for i, (t, v) in enumerate(order):
        if t is str:
            strings.append(i)
        elif t is float:
            doubles.append(i)
        elif t is int and 0 <= v < 2**35:
            counts.append(i)
        else:
            others.append(i)
    if strings:
        encoded = [order[i][1].encode() for i in strings]
        lengths = np.array([len(e) for e in encoded], dtype=np.int64)
        pieces[strings] = _messages(b"".join(encoded), lengths)
    if doubles:  # [0x22 0x09 0x19 <8 bytes, little-endian>]
        raw = np.array([order[i][1] for i in doubles], dtype="<f8").view(np.uint8).reshape(-1, 8)
        out = np.hstack(
            [np.tile(np.array([0x22, 0x09, 0x19], dtype=np.uint8), (len(doubles), 1)), raw]
        )
        pieces[doubles] = [row.tobytes() for row in out]
    if counts:  # [0x22 len 0x20 <varint>]
        var, sizes = _varints(np.array([order[i][1] for i in counts]))
        starts = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        blob = var.tobytes()
        pieces[counts] = [
            bytes((0x22, n + 1, 0x20)) + blob[a:b]
            for n, a, b in zip(sizes.tolist(), starts[:-1], starts[1:])
        ]
    for i in others:
        value = vector_tile_pb2.tile.value()
        _set_value(value, order[i][1])
        body = value.SerializeToString()
        pieces[i] = _field_header(4, len(body)) + body
    return pieces.tolist()


def _messages(data: bytes, lengths) -> list[bytes]:
    """Runs of ``data`` (``lengths`` bytes of UTF-8 each), each a ``value`` message with
    the run as its ``string_value`` (field 1), as ``layer.values`` (field 4) holds it."""
    outer, inner = 4, 1
    raw = np.frombuffer(data, dtype=np.uint8)
    len_bytes, len_sizes = _varints(lengths)
    body = 1 + len_sizes + lengths
    out_len_bytes, out_len_sizes = _varints(body)
    size = 1 + out_len_sizes + body
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    out = np.empty(int(size.sum()), dtype=np.uint8)
    out[start] = (outer << 3) | 2
    _scatter(out, out_len_bytes, out_len_sizes, start + 1)
    at = start + 1 + out_len_sizes
    out[at] = (inner << 3) | 2
    _scatter(out, len_bytes, len_sizes, at + 1)
    _scatter(out, raw, lengths, at + 1 + len_sizes)
    ends = np.cumsum(size)
    blob = out.tobytes()
    return [blob[a:b] for a, b in zip(start.tolist(), ends.tolist())]


def _set_value(value, v) -> None:
    if isinstance(v, bool):
        value.bool_value = v
    elif isinstance(v, str):
        value.string_value = v
    elif isinstance(v, int):
        value.int_value = v
    else:
        value.double_value = v


# ----------------------------------------------------------------------- wire bytes
def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Protobuf varints of non-negative ``values`` (< 2^35): ``(bytes, size of each)``."""
    v = np.asarray(values, dtype=np.uint64)
    size = 1 + sum((v >= np.uint64(1 << (7 * j))).astype(np.int64) for j in range(1, 5))
    out = np.empty(int(size.sum()), dtype=np.uint8)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    for j in range(5):
        has = size > j
        byte = (v[has] >> np.uint64(7 * j)) & np.uint64(0x7F)
        more = (size[has] > j + 1).astype(np.uint64) << np.uint64(7)
        out[start[has] + j] = (byte | more).astype(np.uint8)
    return out, size


def _field_header(field: int, length: int) -> bytes:
    """The key and length of a length-delimited field (wire type 2)."""
    body, _ = _varints(np.array([(field << 3) | 2, length]))
    return body.tobytes()


def _features(kind: int, tags, tag_counts, geometry, geom_counts) -> bytes:
    """``layer.features`` (field 2), one message per feature: its packed ``tags``
    (field 2, left out when it has none), ``type`` (field 3) and packed ``geometry``
    (field 4). ``tags`` and ``geometry`` hold all features' numbers in a row, with each
    feature's count."""
    n = len(geom_counts)
    if not n:
        return b""
    tag_bytes, tag_sizes = _varints(tags)
    geom_bytes, geom_sizes = _varints(geometry)
    tag_len = _per_feature(tag_sizes, tag_counts)
    geom_len = _per_feature(geom_sizes, geom_counts)
    has_tags = tag_len > 0
    # a feature: [0x12 len tags] 0x18 type 0x22 len geometry
    tag_len_bytes, tag_len_sizes = _varints(tag_len)
    geom_len_bytes, geom_len_sizes = _varints(geom_len)
    inner = np.where(has_tags, 1 + tag_len_sizes + tag_len, 0) + 2 + 1 + geom_len_sizes + geom_len
    outer_len_bytes, outer_len_sizes = _varints(inner)
    size = 1 + outer_len_sizes + inner
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    out = np.empty(int(size.sum()), dtype=np.uint8)
    out[start] = 0x12  # layer.features
    at = start + 1
    _scatter(out, outer_len_bytes, outer_len_sizes, at)
    at = at + outer_len_sizes
    out[at[has_tags]] = 0x12  # feature.tags
    _scatter(
        out,
        tag_len_bytes[np.repeat(has_tags, tag_len_sizes)],  # the bytes of those with tags
        tag_len_sizes[has_tags],
        at[has_tags] + 1,
    )
    _scatter(out, tag_bytes, tag_len, np.where(has_tags, at + 1 + tag_len_sizes, at))
    at = at + np.where(has_tags, 1 + tag_len_sizes + tag_len, 0)
    out[at] = 0x18  # feature.type
    out[at + 1] = kind
    out[at + 2] = 0x22  # feature.geometry
    _scatter(out, geom_len_bytes, geom_len_sizes, at + 3)
    _scatter(out, geom_bytes, geom_len, at + 3 + geom_len_sizes)
    return out.tobytes()


def _per_feature(sizes, counts) -> np.ndarray:
    """Bytes of each feature's run of ``counts`` numbers whose varints have ``sizes``."""
    ends = np.cumsum(sizes)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    total = np.concatenate([[0], ends])
    return total[bounds[1:]] - total[bounds[:-1]]


def _scatter(out, data, lengths, dest) -> None:
    """Copy ``data`` (runs of ``lengths`` bytes one after another) to ``out``, each run
    starting at its ``dest``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if not len(data):
        return
    src_start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    shift = np.repeat(np.asarray(dest, dtype=np.int64) - src_start, lengths)
    out[np.arange(len(data)) + shift] = data


def _geometry(geoms) -> tuple[int, np.ndarray, np.ndarray]:
    """``(type, stream, starts)``: the command stream of all features as one array, feature
    ``i`` being ``stream[starts[i]:starts[i + 1]]`` (empty when nothing of it is left)."""
    kind = _FAMILY[int(shapely.get_type_id(geoms[0]))]
    # shapely's ragged arrays: coordinates, then offsets from the innermost level out
    _, coords, offsets = shapely.to_ragged_array(geoms)
    xy = np.rint(coords).astype(np.int64)
    if kind == _POINT:
        parts = offsets[0] if offsets else np.arange(len(geoms) + 1)
        return kind, *_points(xy, parts, len(geoms))
    if kind == _LINESTRING:
        lines, of_feature = (
            offsets if len(offsets) == 2 else (offsets[0], np.arange(len(geoms) + 1))
        )
        return kind, *_paths(xy, lines, of_feature, closed=False)
    rings, polygons, of_feature = (
        offsets if len(offsets) == 3 else (*offsets, np.arange(len(geoms) + 1))
    )
    return kind, *_paths(xy, rings, polygons, closed=True, of_feature=of_feature)


def _zigzag(d: np.ndarray) -> np.ndarray:
    return (d << 1) ^ (d >> 63)


def _command(cmd: int, count) -> np.ndarray:
    return (np.asarray(count, dtype=np.int64) << 3) | cmd


def _points(xy, parts, n_features):
    """MultiPoints: one MoveTo of all a feature's points (no repeated-point removal, as
    the library)."""
    counts = np.diff(parts)
    feature = np.repeat(np.arange(n_features), counts)
    first = np.zeros(len(xy), dtype=bool)
    first[parts[:-1][counts > 0]] = True
    delta = xy - np.vstack([[0, 0], xy[:-1]])
    delta[first] = xy[first]
    lengths = np.where(counts > 0, 1 + 2 * counts, 0)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    out = np.empty(starts[-1], dtype=np.int64)
    has = counts > 0
    out[starts[:-1][has]] = _command(_MOVE_TO, counts[has])
    # point k of feature f sits at starts[f] + 1 + 2k
    k = np.arange(len(xy)) - np.repeat(parts[:-1], counts)
    at = starts[:-1][feature] + 1 + 2 * k
    out[at] = _zigzag(delta[:, 0])
    out[at + 1] = _zigzag(delta[:, 1])
    return out, starts


def _paths(xy, paths, groups, *, closed: bool, of_feature=None):
    """Lines (``closed=False``; ``groups`` are the features' offsets into ``paths``) or
    polygon rings (``closed``; ``groups`` are the polygons' offsets into ``paths``,
    ``of_feature`` the features' into polygons), as MVT command streams."""
    n_paths = len(paths) - 1
    counts = np.diff(paths)
    path_of = np.repeat(np.arange(n_paths), counts)
    keep = np.ones(len(xy), dtype=bool)
    if closed:  # a ring's closing vertex is not written (ClosePath closes it)
        keep[paths[1:][counts > 0] - 1] = False
    # a vertex equal to the one before it on its path is left out
    same = np.zeros(len(xy), dtype=bool)
    same[1:] = (xy[1:] == xy[:-1]).all(axis=1) & (path_of[1:] == path_of[:-1])
    keep &= ~same
    kept = np.bincount(path_of[keep], minlength=n_paths)
    ok = kept >= 2  # a MoveTo and at least one LineTo
    if closed:  # a polygon whose outer ring is dropped is dropped with its holes
        polygon_of = np.repeat(np.arange(len(groups) - 1), np.diff(groups))
        outer = groups[:-1][np.diff(groups) > 0]
        outer_ok = np.zeros(len(groups) - 1, dtype=bool)
        outer_ok[np.diff(groups) > 0] = ok[outer]
        ok &= outer_ok[polygon_of]
        feature_of_path = np.repeat(np.arange(len(of_feature) - 1), np.diff(of_feature))[polygon_of]
    else:
        feature_of_path = np.repeat(np.arange(len(groups) - 1), np.diff(groups))
    n_features = (len(of_feature) if closed else len(groups)) - 1
    use = keep & ok[path_of]
    pts = xy[use]
    p_path = path_of[use]
    p_feature = feature_of_path[p_path]
    # deltas from the vertex before, across paths of one feature; from (0, 0) at its start
    delta = np.diff(pts, axis=0, prepend=[[0, 0]])
    first_of_feature = np.ones(len(pts), dtype=bool)
    first_of_feature[1:] = p_feature[1:] != p_feature[:-1]
    delta[first_of_feature] = pts[first_of_feature]
    # each path: MoveTo, 2 numbers, LineTo, 2 per other vertex (+ ClosePath)
    n = np.where(ok, kept, 0)
    length = np.where(ok, 2 * n + 2 + int(closed), 0)
    path_start = np.concatenate([[0], np.cumsum(length)])
    out = np.empty(path_start[-1], dtype=np.int64)
    live = np.flatnonzero(ok)
    out[path_start[live]] = _command(_MOVE_TO, 1)
    out[path_start[live] + 3] = _command(_LINE_TO, n[live] - 1)
    if closed:
        out[path_start[live + 1] - 1] = _command(_CLOSE_PATH, 1)
    first_of_path = np.ones(len(pts), dtype=bool)
    first_of_path[1:] = p_path[1:] != p_path[:-1]
    k = np.arange(len(pts)) - np.flatnonzero(first_of_path)[np.cumsum(first_of_path) - 1]
    at = path_start[p_path] + 1 + 2 * k + (k > 0)  # vertex 0 after MoveTo, the rest after LineTo
    out[at] = _zigzag(delta[:, 0])
    out[at + 1] = _zigzag(delta[:, 1])
    per_feature = np.bincount(feature_of_path, weights=length, minlength=n_features).astype(
        np.int64
    )
    starts = np.concatenate([[0], np.cumsum(per_feature)])
    return out, starts
