"""Mapbox Vector Tiles of a layer, in the OGC WebMercatorQuad tile matrix set.

A tile ``(z, x, y)`` (zoom, column, row; row 0 at the north) covers a square of Web
Mercator (EPSG:3857) metres; its features are clipped to that square grown by
:data:`BUFFER`, moved to tile units (:data:`EXTENT` per side, y down) and encoded (:mod:`geo.mvt`).

From :data:`EXACT_FROM` up a feature is drawn exactly as stored (rounded to tile units
only). Below it, polygon layers are drawn generalised *as a coverage*: each edge two
neighbours share is simplified once, so generalising opens no gap and makes no overlap
between them (:func:`generalise`). A layer is generalised in groups of neighbouring
features (:data:`GROUP`, in Hilbert order), each group's outer edges kept exact: groups
then agree along their borders, and a save generalises again only the groups it touched.

Tolerances are Web Mercator metres: half a screen pixel of the zoom drawn.
"""

from __future__ import annotations

import functools
import hashlib
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import geopandas as gpd
import mapbox_vector_tile
import morecantile
import numpy as np
import pandas as pd
import shapely

from geo.crs import projected
from geo.mvt import Tags, encode_tile, uniform
from geo.sindex import SplicedIndex

__all__ = [
    "BANDS",
    "BUFFER",
    "EXACT_FROM",
    "EXTENT",
    "MAX_ZOOM",
    "TMS",
    "TileLayer",
    "band",
    "encode",
    "generalise",
    "generalisation_key",
    "pixel_m",
    "tile_bounds",
    "tile_window",
]

TMS = morecantile.tms.get("WebMercatorQuad")
EXTENT = 4096  # tile units per side (the MVT default)
BUFFER = 64  # tile units drawn beyond each side, so that outlines meet across tiles
MAX_ZOOM = 22  # the deepest tile served (about 4 cm a pixel)
EXACT_FROM = 13  # from this zoom up (about 19 m a pixel) features are drawn exact
BANDS = (8, 10, 12)  # a zoom below EXACT_FROM is drawn as the first band at or above it
GROUP = 2000  # features generalised together (see the module's docstring)
SNAP = 0.01  # metres: vertices of neighbouring edges this close are made one first
_EQUATOR = 2 * math.pi * 6378137.0  # Web Mercator metres round the equator
_MAX_LAT = 85.05112878  # where Web Mercator ends


def pixel_m(z: int) -> float:
    """The width of a screen pixel at zoom ``z`` in Web Mercator metres (256-pixel tiles)."""
    return _EQUATOR / (256 * 2**z)


def band(z: int) -> int | None:
    """The generalisation a tile of zoom ``z`` is drawn with (a zoom of :data:`BANDS`),
    None from :data:`EXACT_FROM` up (exact)."""
    if z >= EXACT_FROM:
        return None
    return next(b for b in BANDS if b >= z)


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """``(minx, miny, maxx, maxy)`` of tile ``z/x/y`` in Web Mercator metres."""
    b = TMS.xy_bounds(morecantile.Tile(x, y, z))
    return (b.left, b.bottom, b.right, b.top)


def tile_window(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The bounds of tile ``z/x/y`` grown by its :data:`BUFFER`: what the tile draws
    (Web Mercator metres)."""
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    pad = (maxx - minx) * BUFFER / EXTENT
    return (minx - pad, miny - pad, maxx + pad, maxy + pad)


def to_web_mercator(geoms: np.ndarray) -> np.ndarray:
    """Lon/lat (WGS 84) geometries in Web Mercator metres (latitudes beyond ±85.05°, where
    the projection ends, held at its edge)."""

    def move(xy):
        np.clip(xy[:, 1], -_MAX_LAT, _MAX_LAT, out=xy[:, 1])  # a copy shapely made
        return projected(xy, "EPSG:4326", "EPSG:3857")

    return shapely.transform(np.asarray(geoms), move)


def generalise(geoms: np.ndarray, tolerances: dict[int, float]) -> dict[int, np.ndarray]:
    """One group of a polygon layer generalised at each of ``tolerances`` ({band: metres}),
    as a coverage whose outer edges stay exact: the group is first cleaned (vertices of
    neighbouring edges a centimetre apart made one, so that shared edges match), then each
    shared edge is simplified once (Visvalingam–Whyatt, GEOS). A feature the cleaning
    cannot keep (one another covers) is drawn exact."""
    geoms = np.asarray(geoms)
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6)) & ~shapely.is_empty(geoms)
    out = {b: geoms.copy() for b in tolerances}
    if polygonal.sum() < 2:
        return out
    part = geoms[polygonal]
    cleaned = shapely.coverage_clean(part, snapping_distance=SNAP)
    lost = shapely.is_empty(cleaned) | ~shapely.is_valid(cleaned)
    cleaned[lost] = part[lost]
    for b, tolerance in tolerances.items():
        simple = shapely.coverage_simplify(cleaned, tolerance, simplify_boundary=False)
        bad = shapely.is_empty(simple)
        simple[bad] = part[bad]
        out[b][polygonal] = simple
    return out


def generalisation_key(geoms: np.ndarray) -> str:
    """A name for what :meth:`TileLayer.generalised` makes of ``geoms`` (Web Mercator, in
    layer order): a SHA-256 of their WKB and of everything else the result depends on
    (bands, tolerances, group size, snapping, GEOS's version). Equal names, equal result:
    what is kept under this name can never be of another geometry (150,000 cells: 0.2 s)."""
    h = hashlib.sha256(
        f"gridmap-generalised-1 {BANDS} {GROUP} {SNAP} {shapely.geos_version}".encode()
    )
    wkb = shapely.to_wkb(np.asarray(geoms, dtype=object)).tolist()
    h.update(b"".join(b"-" if w is None else w for w in wkb))  # "-": no geometry; hashed
    # at once, without Python's lock (the tiles' properties are tabled meanwhile)
    return h.hexdigest()


def _clipped(geoms: np.ndarray, window) -> np.ndarray:
    """``geoms`` cut to the rectangle ``window``: GEOS's fast rectangle clip, or where it
    fails on a degenerate piece (a ring it leaves with three points), the exact
    intersection of that geometry."""
    try:
        return shapely.clip_by_rect(geoms, *window)
    except shapely.errors.GEOSException:
        box = shapely.box(*window)
        out = np.empty(len(geoms), dtype=object)
        for i, g in enumerate(geoms):
            try:
                out[i] = shapely.clip_by_rect(g, *window)
            except shapely.errors.GEOSException:
                out[i] = shapely.intersection(shapely.make_valid(g), box)
        return out


def encode(layers: list[tuple[str, np.ndarray, list[dict]]]) -> bytes:
    """An MVT of ``layers``: ``(name, geometries in tile units, properties)`` each, the
    geometries already clipped, rounded and oriented (:meth:`TileLayer.tile_geometries`).
    Layers of one geometry family each are encoded by :mod:`geo.mvt` (all vertices at
    once), a tile with a layer mixing families by ``mapbox-vector-tile``."""
    if all(uniform(geoms) for _, geoms, _ in layers if len(geoms)):
        return encode_tile(layers, EXTENT)  # the same message, all vertices at once
    spec = [
        {
            "name": name,
            "features": [{"geometry": g, "properties": p} for g, p in zip(geoms, props)],
        }
        for name, geoms, props in layers
        if len(geoms)
    ]
    if not spec:
        return b""
    options = {
        "quantize_bounds": None,
        "extents": EXTENT,
        "check_winding_order": False,
        "y_coord_down": True,
    }
    return mapbox_vector_tile.encode(spec, default_options=options)


def _columns(table: gpd.GeoDataFrame, ids: np.ndarray, columns) -> dict:
    """The tile properties of each feature by column: its id (as text) as ``id``, then
    the scalar ``columns`` (numbers, bools, text; anything else written as text, and
    lists, dicts and missing values left out: MVT has no nulls)."""
    out = {"id": ids.astype(str)}
    for c in columns:
        if c not in table or table[c].dtype.kind not in "biufOUS":
            continue
        values = table[c]
        if values.dtype.kind in "OUS" and pd.api.types.infer_dtype(values) != "string":
            values = [_scalar(v) for v in values.tolist()]  # not all text: look at each
        out[c] = values
    return out


def _scalar(v):
    """A property value as a tile holds it, or None."""
    if v is None or isinstance(v, (list, tuple, dict, np.ndarray)):
        return None
    if not isinstance(v, str) and pd.isna(v):  # NaN, NaT, pd.NA
        return None
    if isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


@dataclass
class TileLayer:
    """One layer ready to be cut into tiles: its features in Web Mercator metres with a
    spatial index, each one's tile properties, its generalisation group and, once
    :meth:`generalised` has run, its generalised geometry per band."""

    name: str
    geoms: np.ndarray
    columns: tuple[str, ...]
    tags: Tags  # each feature's tile properties (its id as ``id``, then ``columns``)
    codes: np.ndarray
    groups: np.ndarray
    polygonal: bool
    bands: dict[int, np.ndarray] = field(default_factory=dict)
    dirty: set[int] = field(default_factory=set)
    # spliced from a layer still being generalised: (that layer, the splice, what entered)
    origin: tuple | None = None
    # the features' spatial index, built at the first tile (150,000 cells: 45-60 ms) and
    # carried through saves (geo.sindex)
    tree: SplicedIndex | None = None
    key: str | None = None  # generalisation_key(geoms), once asked for

    def generalisation_key(self) -> str:
        """:func:`generalisation_key` of this layer's geometry (worked out once)."""
        if self.key is None:
            self.key = generalisation_key(self.geoms)
        return self.key

    def __post_init__(self):
        if self.tree is None:
            self.tree = SplicedIndex(self.geoms)

    @classmethod
    def from_lonlat(
        cls, name: str, table: gpd.GeoDataFrame, ids, codes, columns=None, kept=None
    ) -> TileLayer:
        """``table`` in WGS 84 lon/lat; ``ids`` and ``codes`` per feature; ``columns``: the
        properties the tiles carry (every column by default: each costs encoding time);
        ``kept(key, n)``: the groups and bands kept for a layer of ``n`` features whose
        :func:`generalisation_key` is ``key``, or None (a polygon layer takes them).

        The properties are tabled (Python) in a thread of their own while the geometry is
        projected and looked up (PROJ and GEOS, mostly without Python's lock)."""
        if columns is None:
            columns = [c for c in table.columns if c != table.geometry.name]
        with ThreadPoolExecutor(1) as pool:
            tags = pool.submit(
                lambda: Tags.from_columns(_columns(table, np.asarray(ids), columns), len(table))
            )
            geoms = to_web_mercator(table.geometry.values)
            types = shapely.get_type_id(geoms)
            polygonal = bool(len(geoms)) and bool(np.isin(types, (3, 6)).all())
            key, found = None, None
            if polygonal and kept is not None:
                key = generalisation_key(geoms)
                found = kept(key, len(geoms))
            if found is not None:
                groups, bands = found
            else:
                order = np.argsort(
                    gpd.GeoSeries(geoms).hilbert_distance().to_numpy(), kind="stable"
                )
                groups = np.empty(len(geoms), dtype=np.int64)
                groups[order] = np.arange(len(geoms)) // GROUP
                bands = {}
            return cls(
                name,
                geoms,
                tuple(columns),
                tags.result(),
                np.asarray(codes, dtype=object),
                groups,
                polygonal,
                bands,
                key=key,
            )

    def __len__(self) -> int:
        return len(self.geoms)

    @functools.cached_property
    def unique_codes(self) -> bool:
        """Whether no code repeats (each feature's id is then its code)."""
        return len(set(self.codes)) == len(self.codes)

    @property
    def generalises(self) -> bool:
        """Whether low zooms draw this layer generalised (polygon layers)."""
        return self.polygonal

    def generalised(self, workers: int = 2, only=None, initializer=None) -> None:
        """Generalise the layer at every band (the groups numbered in ``only``, all by
        default), ``workers`` groups at a time (GEOS runs without Python's lock), each
        worker thread first running ``initializer`` if given."""
        if not self.polygonal:
            return
        tolerances = {b: pixel_m(b) / 2 for b in BANDS}
        wanted = np.unique(self.groups) if only is None else np.asarray(sorted(only))
        bands = {b: self.bands[b].copy() if b in self.bands else self.geoms.copy() for b in BANDS}

        def run(g):
            where = np.flatnonzero(self.groups == g)
            return where, generalise(self.geoms[where], tolerances)

        with ThreadPoolExecutor(max(1, workers), initializer=initializer) as pool:
            for where, out in pool.map(run, wanted):
                for b in BANDS:
                    bands[b][where] = out[b]
        self.bands = bands

    def geometries(self, z: int) -> np.ndarray:
        """The geometry drawn at zoom ``z``: generalised below :data:`EXACT_FROM` once
        :meth:`generalised` has run, else exact."""
        b = band(z)
        if b is None or b not in self.bands:
            return self.geoms
        return self.bands[b]

    def tile_geometries(self, z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the features tile ``z/x/y`` draws and their geometries in tile
        units: clipped to the tile and its buffer, on the integer grid, exterior rings
        with positive area as MVT asks (clockwise on screen), nothing empty."""
        minx, miny, maxx, maxy = tile_bounds(z, x, y)
        scale = EXTENT / (maxx - minx)
        window = tile_window(z, x, y)
        hit = np.sort(self.tree.query(shapely.box(*window)))
        if not len(hit):
            return hit, np.array([], dtype=object)
        clipped = _clipped(self.geometries(z)[hit], window)

        def to_tile(xy):  # rounded half up, as GEOS's pointwise precision (at a third of
            # its cost: 20 tiles of a province's first view, 0.55 s against 0.2 s)
            moved = np.column_stack([(xy[:, 0] - minx) * scale, (maxy - xy[:, 1]) * scale])
            return np.floor(moved + 0.5)

        moved = shapely.transform(clipped, to_tile)
        if self.polygonal:
            moved = shapely.orient_polygons(moved, exterior_cw=False)
            keep = shapely.area(moved) > 0
        else:
            keep = ~shapely.is_empty(moved)
        return hit[keep], moved[keep]

    def tile(self, z: int, x: int, y: int) -> tuple[bytes, int]:
        """Tile ``z/x/y`` of this layer as MVT bytes, and how many features it holds."""
        hit, geoms = self.tile_geometries(z, x, y)
        if uniform(geoms):
            return encode_tile([(self.name, geoms, (self.tags, hit))], EXTENT), len(hit)
        return encode([(self.name, geoms, self.tags.records(hit))]), len(hit)

    def spliced(self, plan, added: gpd.GeoDataFrame, ids, codes) -> tuple[TileLayer, np.ndarray]:
        """This layer after a save, at the cost of the change: ``plan`` says where each
        feature goes (:class:`layers.storage.edits.Splice`: row ``i`` is row
        ``plan.order[i]`` of this layer followed by ``added``), ``added`` the entering
        features (lon/lat, with the tile properties), ``ids`` and ``codes`` of the layer
        after it. An entering feature joins the generalisation group of the feature it
        overlaps most, else a group of its own; the groups changed are generalised again
        (their bands hold the entering features exact until then).

        Returns the new layer and the boxes (Web Mercator metres) of what left and what
        entered: the tiles they reach are the tiles the save touched."""
        n = len(self.geoms)
        new_geoms = to_web_mercator(added.geometry.values)
        gone = np.ones(n, dtype=bool)
        gone[plan.order[plan.order < n]] = False
        left = np.flatnonzero(gone)  # the features the save took out
        groups = np.empty(len(new_geoms), dtype=np.int64)
        fresh = int(self.groups.max()) + 1 if n else 0
        for k, g in enumerate(new_geoms):
            near = self.tree.query(g, predicate="intersects")
            if len(near):
                shared = shapely.area(shapely.intersection(self.geoms[near], g))
                groups[k] = self.groups[near[int(np.argmax(shared))]]
            else:
                groups[k] = fresh
                fresh += 1

        def spliced(old, new):
            return plan.array(np.asarray(old, dtype=object), np.asarray(new, dtype=object))

        ids = np.asarray(ids)
        entering = np.full(len(new_geoms), "", dtype=object)
        placed = np.flatnonzero(plan.order >= n)
        entering[plan.order[placed] - n] = ids[placed]
        geoms = spliced(self.geoms, new_geoms)
        tags = self.tags.spliced(plan, _columns(added, entering, self.columns), len(added))
        layer = TileLayer(
            self.name,
            geoms,
            self.columns,
            tags,
            np.asarray(codes, dtype=object),
            plan.array(self.groups, groups),
            self.polygonal,
            {b: spliced(g, new_geoms) for b, g in self.bands.items()},
            self.dirty | set(np.unique(self.groups[left]).tolist()) | set(groups.tolist()),
            None if self.bands else (self, plan, new_geoms),
            self.tree.spliced(plan.order, geoms),
        )
        changed = np.concatenate([self.geoms[left], new_geoms])
        return layer, shapely.bounds(changed).reshape(-1, 4)

    def inherit_bands(self) -> bool:
        """Take the bands of the layer this one was spliced from (by saves made while that
        one was being generalised) once it has them, spliced the same way; the groups the
        saves changed stay :attr:`dirty`. True when it took them."""
        chain, layer = [], self
        while not layer.bands and layer.origin is not None:
            chain.append(layer)
            layer = layer.origin[0]
        if layer is self or not layer.bands:
            return False
        bands = layer.bands
        for step in reversed(chain):
            _, plan, entered = step.origin
            entering = np.asarray(entered, dtype=object)
            bands = {b: plan.array(np.asarray(g, dtype=object), entering) for b, g in bands.items()}
        self.bands, self.origin = bands, None
        return True

    def regeneralised(self, initializer=None) -> np.ndarray:
        """Generalise again the groups a save changed (:attr:`dirty`); the boxes (Web
        Mercator metres) of the features whose generalised geometry moved: a neighbour
        whose shared edge was simplified anew is drawn anew."""
        dirty, self.dirty = self.dirty, set()
        if not dirty or not self.bands:
            return np.empty((0, 4))
        rows = np.flatnonzero(np.isin(self.groups, list(dirty)))  # only these can move
        before = {b: g[rows] for b, g in self.bands.items()}
        self.generalised(only=dirty, initializer=initializer)
        moved = np.zeros(len(rows), dtype=bool)
        for b, g in before.items():
            moved |= ~shapely.equals_exact(g, self.bands[b][rows], 0.0)
        return shapely.bounds(self.geoms[rows[moved]]).reshape(-1, 4)
