"""The vector tiles of the served dataset, kept for the version served.

A layer is prepared for tiles (:class:`geo.tiles.TileLayer`) on its first tile request,
and generalised for low zooms in the background (until then low zooms are drawn exact);
the generalisation is kept on disk by its geometry (:mod:`layers.overviews`), so that the
next start — or a worker beside this one — takes it at once, and after saves pause the
generalisation of the layer as saved is kept again.
Each tile is built on first request and kept, raw and gzipped, with its ETag, within a
memory budget (least recently used dropped first). A tile asked for by several clients at
once is built once; at most ``workers`` tiles are built at a time (building holds
Python's lock), and a request that cannot start building within :data:`BUILD_WAIT`
seconds (two minutes: a province's first view queues tiles of seconds each) is
answered 503 :class:`~geo.errors.Busy` with ``Retry-After``: anonymous
clients asking for many cold tiles cannot stall the service. A save drops only the tiles it
touched: the catalog hands over the spliced layer (:meth:`TileCache.splice`); any other
new copy of a layer (a layer written whole, a new check's findings) drops that layer's
tiles.
"""

from __future__ import annotations

import gzip
import logging
import os
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import shapely

from geo.errors import Busy
from geo.tiles import BUFFER, EXACT_FROM, EXTENT, MAX_ZOOM, TMS, TileLayer, tile_window

__all__ = ["Tile", "TileCache", "BUDGET"]

BUDGET = 256 * 2**20  # bytes of tiles kept (raw and gzipped)
BUILD_WAIT = 120.0  # seconds a request waits for its turn to build a tile
SAVES_PAUSE = 2.0  # seconds without a save before the groups saves changed are generalised
SEED_TILES = 32  # a zoom is seeded (built ahead) when this many tiles or fewer cover a layer
log = logging.getLogger("gridmap")


@dataclass(frozen=True)
class Tile:
    """One built tile: MVT bytes, the same gzipped, its ETag (unquoted) and how many
    features."""

    data: bytes
    gzipped: bytes
    etag: str
    features: int

    @property
    def size(self) -> int:
        return len(self.data) + len(self.gzipped)


class _Layer:
    """A layer's tile state: the collection it was made from, the ones it replaced by
    splicing (a request that read the collection just before a save is answered from
    the spliced layer), and its generations (a tile built from an older one is not kept)."""

    def __init__(self, source, layer: TileLayer):
        self.source = source
        self.retired: set[int] = set()
        self.layer = layer
        self.generation = 0  # bumped by a save
        self.generalisation = 0  # bumped when low zooms are generalised anew


class TileCache:
    """Tiles of every served layer (see the module's docstring)."""

    def __init__(
        self,
        columns=None,
        store=None,
        budget: int = BUDGET,
        workers: int = 2,
        metric=None,
        overviews=None,
    ):
        """``columns(name, collection)``: the properties a layer's tiles carry (all by
        default); ``store``: the dataset's storage, which builds the exact tiles of its
        layers where it can (PostGIS: ``ST_AsMVT``; see
        :meth:`layers.storage.base.LayerStore.vector_tile`); ``metric()``: the EPSG code
        of the dataset's metric CRS, in which the storage measures the theme figures;
        ``overviews``: where generalisations are kept between runs
        (:class:`layers.overviews.Overviews`), if anywhere."""
        self.overviews = overviews
        self.columns = columns or (lambda name, collection: None)
        self.store = store
        self.metric = metric or (lambda: None)
        self.budget = budget
        self.workers = workers
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self._layers: dict[str, _Layer] = {}
        self._tiles: OrderedDict[tuple, Tile] = OrderedDict()
        self._bytes = 0
        self._generalising: set[str] = set()
        self._slots = threading.BoundedSemaphore(max(1, workers))
        self._inflight: dict[tuple, threading.Event] = {}
        self._seeded: set[str] = set()  # layers whose whole-layer zooms are built ahead
        self.built = 0  # tiles built (not taken from the cache) since start

    # ------------------------------------------------------------------ reading
    def tile(self, name: str, collection, z: int, x: int, y: int) -> Tile:
        """Tile ``z/x/y`` of layer ``name`` as served now (``collection``: the catalog's
        :class:`~web.catalog.Collection` of it)."""
        key = (name, z, x, y)
        state = self._state(name, collection)
        while True:
            with self._lock:
                hit = self._tiles.get(key)
                if hit is not None and self._layers.get(name) is state:
                    self._tiles.move_to_end(key)
                    return hit
                building = self._inflight.get(key)
                if building is None:  # this request builds it; others wait for it
                    building = self._inflight[key] = threading.Event()
                    break
            if not building.wait(BUILD_WAIT):
                raise self._busy()
        try:
            return self._build(key, state)
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            building.set()

    def _build(self, key, state: _Layer) -> Tile:
        name, z, x, y = key
        with self._lock:
            layer, generation = state.layer, self._generation(state, z)
        built = None
        if self.store is not None and z >= EXACT_FROM:  # the database's own (its pool bounds it)
            built = self.store.vector_tile(
                name, z, x, y, layer.columns, EXTENT, BUFFER, ids_are_codes=layer.unique_codes,
                metric_srid=self.metric(),
            )  # fmt: skip
        if built is None:
            if not self._slots.acquire(timeout=BUILD_WAIT):
                raise self._busy()
            try:
                built = layer.tile(z, x, y)
            finally:
                self._slots.release()
        data, count = built
        gz = gzip.compress(data, compresslevel=1) if data else b""
        tile = Tile(data, gz, f"{name}-{z}-{x}-{y}-{zlib.crc32(data):08x}", count)
        with self._lock:
            self.built += 1
            if self._layers.get(name) is state and self._generation(state, z) == generation:
                self._put(key, tile)
        return tile

    @staticmethod
    def _busy() -> Busy:
        return Busy(
            "every tile builder is busy; ask again shortly",
            zh="瓦片正在生成中，请稍后再试",
            retry_after=5,
        )

    @staticmethod
    def _generation(state: _Layer, z: int) -> tuple[int, int]:
        return (state.generation, state.generalisation if z < EXACT_FROM else 0)

    def seed(self, name: str, collection) -> int:
        """Build ahead the tiles that show layer ``name`` whole, as a tile cache is seeded:
        at each zoom below :data:`EXACT_FROM` whose tiles covering the layer number at most
        :data:`SEED_TILES`, the deepest first (a province: its 20 tiles of zoom 11, then 6
        of zoom 10, …, 44 in all), so that the first map views find them made. A polygon
        layer is seeded once generalised (its low zooms are drawn anew then), now if it
        is, else when its generalisation ends. How many tiles were asked for."""
        layer = self.layer(name, collection)
        with self._lock:
            self._seeded.add(name)
        if (layer.generalises and not layer.bands) or not len(layer):
            return 0
        asked = 0
        for z in range(EXACT_FROM - 1, -1, -1):
            tiles = list(TMS.tiles(*collection.bounds, zooms=[z]))
            if len(tiles) > SEED_TILES:
                continue
            for t in tiles:
                try:
                    self.tile(name, collection, z, t.x, t.y)
                except Busy:  # the builders are taken by requests: they come first
                    return asked
                asked += 1
        return asked

    def cached(self, name: str) -> set[tuple[int, int, int]]:
        """The ``(z, x, y)`` of the tiles of ``name`` kept now."""
        with self._lock:
            return {k[1:] for k in self._tiles if k[0] == name}

    def settled(self, timeout: float = 60.0) -> bool:
        """Wait until no layer is being generalised (True), or ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._generalising:
                    return True
            time.sleep(0.02)
        return False

    def layer(self, name: str, collection) -> TileLayer:
        """The tile layer of ``name`` as served now."""
        return self._state(name, collection).layer

    def _state(self, name: str, collection) -> _Layer:
        with self._lock:
            state = self._layers.get(name)
            if state is not None and (
                state.source is collection or id(collection) in state.retired
            ):
                return state
            building = self._building.setdefault(name, threading.Lock())
        with building:  # one build of a layer at a time; the others wait for it
            with self._lock:
                state = self._layers.get(name)
                if state is not None and state.source is collection:
                    return state
            made = TileLayer.from_lonlat(
                name,
                collection.table,
                collection.ids,
                collection.codes,
                self.columns(name, collection),
                kept=self.overviews.load if self.overviews is not None else None,
            )
            with self._lock:
                self._drop(lambda key: key[0] == name)
                state = self._layers[name] = _Layer(collection, made)
        self._generalise_later(name)
        return state

    # ------------------------------------------------------------------ changes
    def splice(self, name: str, old, new, plan, added) -> None:
        """Layer ``name`` changed from collection ``old`` to ``new`` by a save (``plan``,
        ``added``: see :meth:`geo.tiles.TileLayer.spliced`): splice its tile layer and drop
        the tiles the save touched. Nothing to do if no tile of it was asked for yet."""
        with self._lock:
            state = self._layers.get(name)
        if state is None or state.source is not old:
            self.forget(name)
            return
        layer, boxes = state.layer.spliced(plan, added, new.ids, new.codes)
        with self._lock:
            if self._layers.get(name) is not state:
                return
            state.retired.add(id(old))
            state.source, state.layer = new, layer
            state.generation += 1
            self._drop_touching(name, boxes, zooms=range(0, MAX_ZOOM + 1))
        if layer.dirty:
            self._generalise_later(name, quiet=SAVES_PAUSE)

    def forget(self, name: str | None = None) -> None:
        """Drop layer ``name``'s tiles and tile layer (every layer's when None)."""
        with self._lock:
            self._drop(lambda key: name is None or key[0] == name)
            for n in [name] if name is not None else list(self._layers):
                self._layers.pop(n, None)

    # ------------------------------------------------------------------ background
    def _generalise_later(self, name: str, quiet: float = 0.0) -> None:
        """Generalise layer ``name`` (or the groups a save changed) in the background, and
        then drop the low-zoom tiles that were drawn before it or that it changes;
        ``quiet``: first wait until no save came for that many seconds (the groups a
        burst of saves changed are generalised once, and not while the saves go on)."""
        with self._lock:
            if name in self._generalising:
                return
            self._generalising.add(name)
        threading.Thread(
            target=self._generalise, args=(name, quiet), name="gridmap-generalise", daemon=True
        ).start()

    def _generalise(self, name: str, quiet: float = 0.0) -> None:
        try:
            seen = None
            while quiet:  # until saves pause
                with self._lock:
                    state = self._layers.get(name)
                    now = None if state is None else (id(state), state.generation)
                if now == seen:
                    break
                seen = now
                time.sleep(quiet)
            while True:
                with self._lock:
                    state = self._layers.get(name)
                    if state is None or not state.layer.generalises:
                        return
                    layer = state.layer
                    done = bool(layer.bands) and not layer.dirty
                if done:
                    self._to_disk(layer)
                    with self._lock:  # a save meanwhile: go round again
                        state = self._layers.get(name)
                        if state is None or state.layer is layer:
                            return
                    continue
                if not layer.bands:
                    # saves made while an older copy was being generalised: take its bands
                    # (the groups they changed are generalised again next round)
                    if not layer.inherit_bands():
                        layer.generalised(self.workers, initializer=_in_background)
                    with self._lock:
                        if self._layers.get(name) is state and state.layer is layer:
                            state.generalisation += 1
                            self._drop(lambda key: key[0] == name and key[1] < EXACT_FROM)
                        seed = name in self._seeded
                    if seed:  # drawn anew: built ahead again
                        self.seed(name, state.source)
                else:
                    boxes = layer.regeneralised(initializer=_in_background)
                    with self._lock:
                        if self._layers.get(name) is state:
                            state.generalisation += 1
                            self._drop_touching(name, boxes, zooms=range(0, EXACT_FROM))
        except Exception:  # noqa: BLE001 - logged; low zooms stay drawn exact
            log.exception("could not generalise layer %s for tiles", name)
        finally:
            with self._lock:
                self._generalising.discard(name)

    # ------------------------------------------------------------------ overviews
    def _to_disk(self, layer: TileLayer) -> None:
        """Keep ``layer``'s generalisation on disk, unless it is already."""
        if self.overviews is None or not layer.generalises:
            return
        key = layer.generalisation_key()
        if key in self.overviews:
            return
        try:
            self.overviews.save(key, layer.groups, layer.bands)
        except OSError as err:  # a full disk: the next start generalises again
            log.warning("could not keep the generalised layer %s: %s", layer.name, err)

    # ------------------------------------------------------------------ the store
    def _put(self, key, tile: Tile) -> None:
        old = self._tiles.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        self._tiles[key] = tile
        self._bytes += tile.size
        while self._bytes > self.budget and len(self._tiles) > 1:
            _, dropped = self._tiles.popitem(last=False)
            self._bytes -= dropped.size

    def _drop(self, which) -> None:
        for key in [k for k in self._tiles if which(k)]:
            self._bytes -= self._tiles.pop(key).size

    def _drop_touching(self, name: str, boxes: np.ndarray, zooms) -> None:
        """Drop the tiles of ``name`` at ``zooms`` that ``boxes`` reach (with buffers)."""
        if not len(boxes):
            return
        wanted = set(zooms)
        tree = shapely.STRtree(shapely.box(*np.asarray(boxes, dtype=float).T))
        self._drop(lambda k: k[0] == name and k[1] in wanted and _reached(tree, *k[1:]))


def _in_background() -> None:
    """Lower this thread's priority (Linux: a thread's own nice value): generalising a
    province's low zooms takes both cores for half a minute after its first tile, and
    the tiles and pages people wait for go first (cold tiles at 50 clients, p95: 1.25 s
    with it at full priority, 0.63 s with it done)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _BACKGROUND_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: the same, only slower
        pass


_BACKGROUND_NICE = 10


def _reached(tree: shapely.STRtree, z: int, x: int, y: int) -> bool:
    """Whether any box in ``tree`` reaches tile ``z/x/y`` grown by its buffer."""
    return len(tree.query(shapely.box(*tile_window(z, x, y)))) > 0
