"""The dataset a running service serves: layers in WGS 84, spatial indexes, pre-serialised
GeoJSON features, population themes, lookups and the (lazily computed) check report.

One :class:`Catalog` is built by the app factory and kept on ``app.extensions``; views ask
it for data and serialise nothing themselves beyond joining prepared strings.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

import geo
from geo import recheck
from geo.access import Access
from geo.checker import Report
from geo.crs import to_crs
from geo.dataset import Dataset
from geo.errors import NotFound
from geo.filters import queryables
from geo.kinds import (
    FACILITY_KINDS,
    KINDS,
    department_grids,
    hierarchy,
    jurisdictions,
    partitions,
)
from geo.locator import Locator
from geo.progress import step
from geo.report import FINDINGS_LAYERS, findings_layers
from geo.sindex import SplicedIndex
from geo.themes import NO_DATA, THEMES, classify, grid_figures
from layers.storage import open_store
from web.tilecache import TileCache

__all__ = ["Collection", "Catalog", "plain"]

# Seconds without saves before the dataset is checked again after one.
CHECK_DELAY = 2.0
# Seconds the first check waits at most for the map to be made ready (Catalog.warm).
WARM_WAIT = 60.0
# Seconds at most a committed save waits for a later one of the same burst to show both.
SHOW_WAIT = 0.5


def follow(catalog: Catalog, every: float = 0.25) -> threading.Thread:
    """Keep ``catalog`` up with other writers (:meth:`Catalog.keep_up`) every ``every``
    seconds, in a daemon thread: how ``python -m web`` serves changes that other worker
    processes or the CLI commit."""

    def run():
        while True:
            time.sleep(every)
            try:
                catalog.keep_up()
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                logging.getLogger("gridmap").exception("could not keep up with the dataset")

    thread = threading.Thread(target=run, name="gridmap-follow", daemon=True)
    thread.start()
    return thread


def plain(v):
    """A JSON-safe Python value (NaN → None, NumPy scalars → Python)."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v if isinstance(v, (int, str, bool)) else str(v)


def json_text(obj) -> str:
    """Compact JSON; NaN is refused (it is not JSON and breaks browsers' parsers)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def feature_ids(codes: np.ndarray) -> np.ndarray:
    """A unique, stable id per feature: its code where the code is unique in the layer,
    ``code.1``, ``code.2``, … (in stored order) where several features share it — the code
    stays a property, and a duplicate_code finding does not hide a feature from a client
    that keys features by id."""
    ids = codes.astype(object).copy()
    values, inverse, counts = np.unique(codes.astype(str), return_inverse=True, return_counts=True)
    for group in np.flatnonzero(counts > 1):
        where = np.flatnonzero(inverse == group)
        ids[where] = [f"{values[group]}.{k}" for k in range(1, len(where) + 1)]
    return ids


def renumbered(codes: np.ndarray, ids: np.ndarray, changed: set[str]) -> np.ndarray:
    """:func:`feature_ids` of ``codes`` after a change of the features of the ``changed``
    codes, given ``ids`` (each feature's id before it; any value for a new one): only
    those codes' features are numbered again (the others' order among themselves is
    kept), at the cost of the change rather than of sorting every code."""
    out = ids.copy()
    hit = np.flatnonzero(np.isin(codes, list(changed)))  # a few codes: compared in turn
    for code, where in pd.Series(hit).groupby(codes[hit].astype(str)).groups.items():
        where = hit[np.asarray(where)]
        out[where] = (
            [code] if len(where) == 1 else [f"{code}.{k}" for k in range(1, len(where) + 1)]
        )
    return out


def _names(gdf) -> np.ndarray:
    """The features' names as text ("" for a layer without names)."""
    if "name" in gdf:
        return gdf["name"].astype(str).to_numpy()
    return np.array([""] * len(gdf), dtype=object)


def _bounds(gdf) -> tuple[float, float, float, float]:
    """The layer's lon/lat bounds (zeros for an empty layer)."""
    return tuple(map(float, gdf.total_bounds)) if len(gdf) else (0.0, 0.0, 0.0, 0.0)


def _head(fid, record: dict) -> str:
    """A feature's GeoJSON text up to its geometry."""
    return (
        f'{{"type":"Feature","id":{json_text(fid)},'
        f'"properties":{json_text({k: plain(v) for k, v in record.items()})},"geometry":'
    )


def rfc7946_geometries(geoms, grid: float = 1e-7) -> np.ndarray:
    """``geoms`` as RFC 7946 asks: exterior rings counter-clockwise, holes clockwise, and
    coordinates on a ``grid`` (1e-7 degree, about 1 cm: finer than any boundary we hold,
    and seven decimals). Rounded first, then oriented, so rounding cannot flip a ring."""
    rounded = shapely.set_precision(geoms, grid, mode="pointwise")
    return shapely.orient_polygons(rounded, exterior_cw=False)


@dataclass
class CheckRun:
    """A check under way: when it started, the steps it has begun and the last of them
    (a :class:`geo.progress.Step`), as its progress callback is told."""

    started: float
    steps: int = 0
    step: str | None = None

    def told(self, step: str) -> None:
        self.step, self.steps = step, self.steps + 1


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


@dataclass
class Collection:
    """One layer ready to serve: its features (lon/lat) as a table for filters, each
    feature's GeoJSON prepared up to its geometry (``heads``) and its geometry
    (``geometries``, RFC 7946) once first served (None until then: :meth:`prepare`),
    unique ids, a spatial index, codes and names.

    ``derived`` names the properties the service computes (a cell's density, the police
    area holding it, …): served and queryable, never stored or edited. ``revisions``: each
    feature's last revision as this copy holds it (0: never edited; its ETag), so that a
    feature and its ETag always come from the same version.
    """

    name: str
    table: gpd.GeoDataFrame
    heads: list[str]
    geometries: list[str]
    ids: np.ndarray
    codes: np.ndarray
    names: np.ndarray
    derived: tuple[str, ...] = ()
    queryables: dict[str, str] = field(default_factory=dict)
    revisions: np.ndarray | None = None

    @classmethod
    def from_frame(
        cls,
        name: str,
        gdf: gpd.GeoDataFrame,
        extra: pd.DataFrame | None = None,
        revisions: dict[str, int] | None = None,
    ):
        """``gdf`` in WGS 84; ``extra`` holds derived per-feature properties;
        ``revisions`` each edited feature's last revision by code."""
        derived = tuple(extra.columns) if extra is not None else ()
        table = gdf if extra is None else gdf.join(extra)
        codes = (
            gdf["code"].astype(str).to_numpy()
            if "code" in gdf
            else np.array([str(i) for i in range(1, len(gdf) + 1)], dtype=object)
        )
        # each feature's GeoJSON text is prepared when it is first served (prepare)
        return cls(
            name,
            table,
            [None] * len(gdf),
            [None] * len(gdf),
            feature_ids(codes),
            codes,
            _names(gdf),
            derived,
            queryables(table),
            None
            if revisions is None
            else np.array([revisions.get(c, 0) for c in codes], dtype=np.int64),
        )

    @functools.cached_property
    def bounds(self) -> tuple[float, float, float, float]:
        """The layer's lon/lat bounds (zeros for an empty layer), made on first use."""
        return _bounds(self.table)

    @functools.cached_property
    def tree(self) -> SplicedIndex:
        """The features' spatial index, built at the first bbox query (150,000 cells:
        45 ms) and carried through saves (:meth:`spliced`)."""
        return SplicedIndex(self.table.geometry.values)

    def prepare(self, positions) -> None:
        """Prepare the GeoJSON text of the features at ``positions`` not prepared yet
        (their properties up to the geometry, and the geometry), in one batch. Done on
        first use rather than at start: a province's 150,000 cells took 11 s to prepare."""
        missing = [int(i) for i in positions if self.heads[i] is None]
        if not missing:
            return
        columns = [c for c in self.table.columns if c != self.table.geometry.name]
        # the rows first: selecting columns first copies every row (150,000: 14 ms)
        records = self.table.iloc[missing][columns].to_dict("records")
        geojson = shapely.to_geojson(rfc7946_geometries(self.table.geometry.values[missing]))
        for i, record, text in zip(missing, records, geojson):
            self.geometries[i] = text
            self.heads[i] = _head(self.ids[i], record)

    def spliced(self, splice, added: gpd.GeoDataFrame, revisions: dict[str, int]):
        """This collection after a save (:class:`layers.storage.edits.Splice`): ``added``
        are the rows that enter it (lon/lat, with this collection's columns, derived ones
        included), ``revisions`` the new revision of each changed code. The added features,
        and those whose id changed with them (``code.1``, …), are prepared again when
        served; the same as :meth:`from_frame` on the whole layer after the save."""
        added = added.reindex(columns=self.table.columns)
        table = splice.rows(self.table, added)  # a GeoDataFrame, as the table is
        entering = added["code"].astype(str).to_numpy(dtype=object)
        codes = splice.array(self.codes, entering)
        carried = splice.array(self.ids, np.full(len(added), None, dtype=object))
        ids = renumbered(codes, carried, set(revisions) | set(entering))
        heads = splice.items(self.heads, [None] * len(added))
        # a feature whose id changed with them (code.1, …) is prepared again when served
        for i in np.flatnonzero(ids != carried):
            heads[i] = None
        added_geojson = shapely.to_geojson(rfc7946_geometries(added.geometry.values))
        revs = None
        if self.revisions is not None:
            revs = splice.array(self.revisions, np.zeros(len(added), dtype=np.int64))
            for code, rev in revisions.items():
                revs[codes == code] = rev
        out = Collection(
            self.name,
            table,
            heads,
            splice.items(self.geometries, list(added_geojson)),
            ids,
            codes,
            splice.array(self.names, _names(added)),
            self.derived,
            queryables(table),
            revs,
        )
        index = self.__dict__.get("tree")  # made already: carried (cached_property's slot)
        if index is not None:
            out.__dict__["tree"] = index.spliced(splice.order, table.geometry.values)
        return out

    def __len__(self) -> int:
        return len(self.heads)

    def feature(self, i: int, geometry: str | None = None) -> str:
        """Feature ``i`` as GeoJSON text; ``geometry``: its geometry in another CRS."""
        if self.heads[i] is None:
            self.prepare([i])
        return self.heads[i] + (self.geometries[i] if geometry is None else geometry) + "}"

    def query(self, bbox=None) -> np.ndarray:
        """Positions of the features intersecting ``bbox`` (lon/lat), in layer order."""
        if bbox is None:
            return np.arange(len(self))
        return np.sort(self.tree.query(shapely.box(*bbox), predicate="intersects"))

    def etag(self, i: int) -> str | None:
        """The ETag of feature ``i``: ``"layer:code:revision"`` (None: not editable)."""
        if self.revisions is None:
            return None
        return f'"{self.name}:{self.codes[i]}:{int(self.revisions[i])}"'

    def by_code(self, code: str) -> np.ndarray:
        return np.flatnonzero(self.codes == code)

    def by_id(self, fid: str) -> np.ndarray:
        return np.flatnonzero(self.ids == fid)


# The grid property each population theme classifies (the map colours a cell by looking
# its value up in the theme's bins: styling never travels as a feature property).
THEME_PROPERTIES = {
    "households": "households",
    "population": "population",
    "density": "density_per_km2",
    "floating_share": "floating_share_pct",
}


@dataclass(frozen=True)
class Checked:
    """A check of the served layers: the report, each finding as GeoJSON text, the
    findings collections, and the layers checked (the next check, after saves of cells,
    is made from this one: :func:`geo.recheck.rechecked`)."""

    report: Report
    features: list[str]
    collections: dict[str, Collection]
    layers: Dataset


class Catalog:
    """Everything the service shows about one dataset (a GeoPackage path or PostGIS URL).

    The copy it holds is always the dataset at one :class:`~layers.storage.edits.Version`
    (``version``): it is read consistently at start, and each save made through it
    (:mod:`layers.editing`, with the catalog as ``served``) updates it in commit order —
    saved grid cells are spliced in (their rows alone prepared again, a burst of saves at
    once), another layer's collection is built again — and the check runs again in the
    background.
    """

    def __init__(self, dataset: str, overviews=None, warmed_first: bool = False):
        """``dataset``: a GeoPackage path or PostGIS URL; ``overviews``: where generalised
        low zooms are kept between runs (:class:`layers.overviews.Overviews`), if anywhere;
        ``warmed_first``: :meth:`warm` will be called (``python -m web`` does, in the
        background), and the first check waits for it (at most :data:`WARM_WAIT` s): both
        take the cores, and the map's first view waits for the one (a province's first
        view after a restart: 4.5 s with the check running beside it, 2 s without)."""
        self._warmed = threading.Event()
        if not warmed_first:
            self._warmed.set()
        self.store = open_store(dataset)
        self.location = self.store.location
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # one commit at a time
        self._pending: deque = deque()  # commits not yet shown, in commit order
        self._committers = 0  # requests committing or waiting to (under _lock)
        self._applied = self._shown_upto = 0  # commits queued / shown so far
        self._showing = threading.Condition(self._lock)
        self._checking = threading.Lock()  # one check at a time
        self._running: CheckRun | None = None  # what the check under way is doing
        self._kept: Checked | None = None  # the last check kept (of an earlier version)
        self._epsg_of: tuple | None = None  # (metric CRS, its EPSG code): _metric_epsg
        self._cells_since: list[str] | None = None  # cells saved since it (None: more)
        self._last_check_s: float | None = None  # how long the last check took
        self._planning = threading.Lock()  # edits planned and previewed one at a time
        self._building_access = threading.Lock()
        self.tiles = TileCache(columns=self._tile_columns, store=self.store,
                               metric=self._metric_epsg, overviews=overviews)  # fmt: skip
        self._lock_themes = threading.Lock()
        self._figures, self._classes = None, {}
        self._lock_addresses = threading.Lock()
        self._addresses = None  # (the address layer indexed, its AddressIndex)
        self._load()

    def _metric_epsg(self) -> int | None:
        """The EPSG code of the served layers' metric CRS, asked by every exact tile: kept
        with the CRS it is of (pyproj's ``to_epsg`` takes 0.2 ms)."""
        crs = self.layers.metric_crs
        known = self._epsg_of
        if known is None or known[0] is not crs:
            known = self._epsg_of = (crs, crs.to_epsg())
        return known[1]

    def warm(self) -> None:
        """Prepare what the first map view and the first save would otherwise wait for:
        the grid's tile layer (150,000 cells: 1.5 s; with its generalisation when kept on
        disk) and the tiles that show it whole (:meth:`TileCache.seed`), then the base
        edits are planned on (:meth:`preview_base`). The first check starts once the
        tiles are made."""
        try:
            grid = self.collection("grid")
            if grid is not None:
                self.tiles.seed("grid", grid)
        finally:
            self._warmed.set()
        self.preview_base()

    def preview_base(self):
        """Layers as stored, prepared for edit previews (:class:`geo.edits.PreviewBase`)."""
        return self.basis()[1]

    def basis(self):
        """The version this copy shows and its layers as stored, prepared for planning
        edits (:class:`geo.edits.PreviewBase`): see :class:`layers.editing.Served`."""
        from geo.edits import EDIT_LAYERS, PreviewBase

        while True:
            with self._lock:
                version, base = self.version, self._preview_base
                if base is not None:
                    return version, base
                layers = {n: self.stored[n] for n in EDIT_LAYERS if n in self.stored}
            # made outside the lock (the grid's metric copy: 150,000 cells, 1 s)
            built = PreviewBase(layers)
            with self._lock:
                if self.version == version:  # else made again for the version now
                    if self._preview_base is None:
                        self._preview_base = built
                    return version, self._preview_base

    def revisions(self) -> dict[str, int]:
        """``{code: last revision}`` of the grid cells as this copy shows them."""
        return self._revisions

    def planning(self):
        """Held around planning or previewing an edit (see :class:`layers.editing.Served`)."""
        return self._planning

    @contextmanager
    def committing(self):
        """Held around a commit (one at a time); when it is released, the commit is shown
        before the request goes on. A burst of saves is shown at once: a committer that
        others wait behind leaves the showing to the last of them (waiting at most
        :data:`SHOW_WAIT` seconds), so that the copy is spliced once per burst."""
        with self._lock:
            self._committers += 1
        try:
            with self._writing:
                yield
                with self._lock:
                    ticket = self._applied
        finally:
            with self._lock:
                self._committers -= 1
                self._showing.notify_all()
        deadline = time.monotonic() + SHOW_WAIT
        with self._lock:
            while self._shown_upto < ticket:
                left = deadline - time.monotonic()
                if self._committers and left > 0:
                    self._showing.wait(left)
                else:
                    self._catch_up()

    def apply(self, saved) -> None:
        """Queue a committed change (:class:`layers.editing.Saved`) to be shown; called
        under :meth:`committing`, so the queue is in commit order."""
        with self._lock:
            self._pending.append(saved)
            self._applied += 1

    def _catch_up(self) -> None:
        """Show the queued changes, in order (called with ``_lock`` held). Where one does
        not start from the version shown, another writer changed the dataset in between:
        its commits are shown first (:meth:`keep_up`)."""
        version = self.version
        saves = list(self._pending)
        self._pending.clear()
        self._shown_upto = self._applied
        self._showing.notify_all()  # waiters see it once the lock is released: shown
        if not saves:
            return
        chain = self._chained(version, saves)
        if chain is None:
            self._load()
        else:
            self._show(chain)

    def keep_up(self) -> bool:
        """Show what other writers (other worker processes of the service, the CLI)
        committed since the version shown, as this copy shows its own saves: rebuilt from
        their revisions and spliced in (the dataset is read again only after a
        whole-layer write, or where revisions cannot say a change exactly). True when the
        copy changed. Called every few tenths of a second by :func:`follow`."""
        if self.store.version() == self.version:
            return False
        with self._lock:
            if self._committers or self._pending:  # a commit of ours will show it all
                return False
            version = self.version
            now = self.store.version()
            if now == version:
                return False
            chain = self._replayed(version, now)
            if chain is None:
                self._load()
            else:
                self._show(chain)
            return True

    def _replayed(self, since, upto) -> list | None:
        """Other writers' commits after version ``since`` up to version ``upto``, as
        :class:`~layers.editing.Saved` (see :func:`layers.editing.replayed`); None when
        revisions cannot lead from one to the other (a whole-layer write between them, a
        file restored from an older copy)."""
        from layers.editing import replayed

        if upto.layers != since.layers:
            return None
        records = [
            r for r in self.store.revisions_since(since.revision) if r["id"] <= upto.revision
        ]
        chain = replayed(records, since, self.stored)
        if not chain or chain[-1].after != upto:
            return None
        return chain

    def _chained(self, version, saves) -> list | None:
        """``saves`` (in commit order) with, before any that does not start where the one
        before it ended, the commits other writers made in between (None when they cannot
        be rebuilt: read the dataset again)."""
        chain = []
        for saved in saves:
            if saved.before != version:
                between = self._replayed(version, saved.before)
                if between is None:
                    return None
                chain.extend(between)
            chain.append(saved)
            version = saved.after
        return chain

    def _show(self, saves) -> None:
        """Show committed changes that follow on one another from the version shown."""
        from geo.edits import EDIT_LAYERS, PreviewBase
        from layers.storage.edits import splice

        codes = []
        old_base = self._preview_base
        # consecutive saves of grid cells are spliced in together (one splice of the
        # burst), any other layer's is built again
        runs = itertools.groupby(saves, key=lambda saved: saved.layer)
        for layer, run in ((layer, list(run)) for layer, run in runs):
            if layer == "grid":
                self._splice_grid(run)
            else:
                for saved in run:
                    raw = {
                        **self.stored,
                        layer: splice(self.stored[layer], saved.features, saved.codes),
                    }
                    revisions = {**self._revisions, **saved.revisions}
                    self._build(raw, saved.after, revisions, changed=layer)
            codes.extend(c for saved in run for c in saved.codes)
        self._shown(saves[-1].after, after_save=True)
        if old_base is not None:
            layers = {n: self.stored[n] for n in EDIT_LAYERS if n in self.stored}
            self._preview_base = PreviewBase(layers, keep=old_base, changed=codes)

    def _splice_grid(self, saves) -> None:
        """Show committed changes of grid cells (in commit order) by splicing only their
        rows into everything kept in step with the grid (as stored, lon/lat, derived
        figures, the served collection, the locator): the same as building them again
        from the stored grid, at the cost of the changes rather than of the layer, and
        of a burst of saves once."""
        from layers.storage.edits import Splice

        stored = self.stored["grid"]
        plan, entered = Splice.chain(  # the served codes: the stored grid's, as text
            self.collections["grid"].codes, [(saved.features, saved.codes) for saved in saves]
        )
        added = pd.concat(
            [
                saved.features.reindex(columns=stored.columns).iloc[rows]
                for saved, rows in zip(saves, entered)
            ],
            ignore_index=True,
        )
        added = gpd.GeoDataFrame(added, geometry=stored.geometry.name, crs=stored.crs)
        revisions = {code: rev for saved in saves for code, rev in saved.revisions.items()}
        changed = {str(code) for saved in saves for code in saved.codes}
        grid = plan.rows(stored, added)
        self.stored = {**self.stored, "grid": grid}
        added = to_crs(added, "EPSG:4326")
        lonlat = plan.rows(self.layers["grid"], added)
        self.layers = self.layers.subset(grid=lonlat)
        if self._cells_since is not None:  # the next check is made near them
            self._cells_since.extend(changed)
        self.locator = self.locator.with_area("grid", lonlat)
        figures = grid_figures(added, metric_crs=self.layers.metric_crs)
        self._figures = plan.rows(self._figures, figures)
        self._classes = None
        collections = dict(self.collections)
        entering = added.join(self._derived("grid", added, figures))
        collections["grid"] = collections["grid"].spliced(plan, entering, revisions)
        self.tiles.splice("grid", self.collections["grid"], collections["grid"], plan, entering)
        below = self.layers.get("household_unit")
        if below is not None and "household_unit" in collections:
            # the household units of the changed cells: their parent's name may be new
            hit = np.flatnonzero(below["parent_code"].astype(str).isin(changed).to_numpy())
            if len(hit):
                order = np.arange(len(below))
                order[hit] = len(below) + np.arange(len(hit))
                rows = below.iloc[hit]
                collections["household_unit"] = collections["household_unit"].spliced(
                    Splice(np.arange(len(hit)), order),
                    rows.join(self._derived("household_unit", rows)),
                    {},
                )
        self.collections = collections
        self._revisions = {**self._revisions, **revisions}

    def _load(self) -> None:
        """Read the dataset at one version: the layers and their revisions, read again
        until no commit came between the two reads."""
        for _ in range(10):
            version = self.store.version()
            raw = self.store.load()
            revisions = self.store.latest_revisions("grid") if "grid" in raw else {}
            if self.store.version() == version:
                break
        self.tiles.forget()
        self._build(raw, version, revisions)
        self._shown(version)

    def _build(self, raw, version, revisions, changed: str | None = None) -> None:
        """Prepare ``raw`` (as stored) to serve. ``changed``: the one layer that differs
        from what is served now (the others are kept as they are)."""
        self.store_crs = next(iter(raw.values())).crs if raw else None
        self.stored = raw  # as stored (geographic CRS of the dataset), for edits
        stored = Dataset(raw, name=self.location)
        keep = changed is not None
        # the served Dataset: WGS 84 lon/lat, measured in the stored dataset's metric CRS
        layers = Dataset(
            {
                n: self.layers[n]
                if keep and n != changed and n in self.layers
                else stored.lonlat(n)
                for n in stored
            },
            metric_crs=(self.layers.metric_crs if keep else stored.metric_crs)
            if len(stored)
            else None,
            name=self.location,
        )
        self.layers = layers
        self._cells_since = None  # not only cells changed: the next check is whole
        if keep and changed in partitions():
            self.locator = self.locator.with_area(changed, layers[changed])
        elif keep and changed != "facility":
            pass  # the locator holds partitions and facilities only
        else:
            self.locator = Locator(layers)
        extras = self._extras(only=changed)
        collections = {
            n: self.collections[n]
            if keep and n != changed and n in self.collections
            else Collection.from_frame(n, g, extras.get(n), revisions if n == "grid" else None)
            for n, g in layers.items()
        }
        self.collections = collections
        self._revisions = revisions
        if not keep:
            self._access: Access | None = None

    def _shown(self, version, after_save: bool = False) -> None:
        """The copy now shows ``version``: its check is to be made again, in the
        background so that the first visitor does not wait; after a save, once saves have
        paused (a burst of saves is checked once, and does not wait for it)."""
        self._preview_base = None
        self.version = version
        self._check: Checked | None = None
        threading.Thread(
            target=self._check_when_quiet,
            args=(version, CHECK_DELAY if after_save else 0.0),
            name="gridmap-check",
            daemon=True,
        ).start()

    @staticmethod
    def _tile_columns(name: str, collection: Collection) -> list[str]:
        """The properties a layer's tiles carry: what it stores and what the map paints
        by (theme figures), not the rest of what the service derives (who is in charge:
        a click asks the feature for it). Each property costs encoding time."""
        painted = set(THEME_PROPERTIES.values())
        table = collection.table
        return [
            c
            for c in table.columns
            if c != table.geometry.name and (c not in collection.derived or c in painted)
        ]

    def _check_when_quiet(self, version, delay: float) -> None:
        time.sleep(delay)
        if self.version == version:
            self._checked(wanted=version)

    # ------------------------------------------------------------------ derived properties
    def _responsible(self, gdf: gpd.GeoDataFrame) -> pd.DataFrame:
        """Police area and police beat holding each feature's representative point (not
        the other departments' grids: their lookup answers that)."""
        out = pd.DataFrame(index=gdf.index)
        pts = gdf.geometry.representative_point().values
        for layer in (n for n in jurisdictions() if n not in department_grids()):
            target = self.layers.get(layer)
            if target is None:
                continue
            idx_pt, idx_t = shapely.STRtree(target.geometry.values).query(pts, predicate="within")
            code = np.full(len(gdf), None, dtype=object)
            name = np.full(len(gdf), None, dtype=object)
            code[idx_pt] = target["code"].astype(str).to_numpy()[idx_t]
            name[idx_pt] = target["name"].astype(str).to_numpy()[idx_t]
            out[f"{layer}_code"] = code
            out[f"{layer}_name"] = name
        return out

    def _derived(self, name: str, gdf: gpd.GeoDataFrame, figures=None) -> pd.DataFrame:
        """The derived properties of features ``gdf`` (lon/lat) of layer ``name``, row by
        row (so a change's rows get theirs alone): for a level of the hierarchy below the
        top, its parent's name and the police area and beat responsible for it; for a
        cell, also the theme figures it does not store (``figures``: its rows of
        :func:`geo.themes.grid_figures`); for a facility, its kind in Chinese."""
        if name == "facility":
            return pd.DataFrame(
                {
                    "kind_zh": gdf["kind"]
                    .map({k: f.zh for k, f in FACILITY_KINDS.items()})
                    .fillna(gdf["kind"])
                },
                index=gdf.index,
            )
        ex = self._responsible(gdf)
        parent = self.layers.get(KINDS[name].parent)
        wanted = gdf["parent_code"].astype(str)
        names = {}
        if parent is not None and "code" in parent and "name" in parent:
            # the parents of these features only: a save's cell needs one of 12,000
            hit = parent[parent["code"].astype(str).isin(wanted.unique())]
            names = dict(zip(hit["code"].astype(str), hit["name"].astype(str)))
        ex["parent_name"] = wanted.map(names).to_numpy()
        if name == "grid":
            for theme, prop in THEME_PROPERTIES.items():
                if prop not in gdf:
                    ex[prop] = figures[theme].to_numpy()
        return ex

    @staticmethod
    def _themes(figures: pd.DataFrame) -> dict[str, dict]:
        """Each population theme's classes and colours over the cells' ``figures``."""
        themes = {}
        for theme, prop in THEME_PROPERTIES.items():
            _, legend = classify(figures[theme])
            zh, en, unit = THEMES[theme]
            themes[theme] = {
                **legend,
                "property": prop,
                "noData": NO_DATA,
                "label_zh": zh,
                "label_en": en,
                "unit": unit,
            }
        return themes

    def _extras(self, only: str | None = None) -> dict[str, pd.DataFrame]:
        """Derived properties per layer (of ``only``, when one layer changed) and the
        population themes. A saved cell's household units are brought up to date by
        :meth:`_splice_grid`."""
        extras: dict[str, pd.DataFrame] = {}
        for name in (*hierarchy()[1:], "facility"):
            gdf = self.layers.get(name)
            if gdf is None or only not in (None, name):
                continue
            figures = None
            if name == "grid":
                # measured on the dataset's kept metric copy, which the check then uses
                metric = self.layers.metric("grid")
                figures = self._figures = grid_figures(metric, metric_crs=self.layers.metric_crs)
                self._classes = None
            extras[name] = self._derived(name, gdf, figures)
        if only in (None, "grid") and "grid" not in self.layers:
            self._figures, self._classes = None, {}
        return extras

    @property
    def themes(self) -> dict[str, dict]:
        """The population themes of the cells served (classes, colours, legend), classified
        on first use after a change (not by the save: a burst of saves classifies once)."""
        with self._lock_themes:
            if self._classes is None:
                self._classes = self._themes(self._figures)
            return self._classes

    # ------------------------------------------------------------------ findings
    def report(self) -> Report:
        """The check report of the layers served now, computed on first use and kept."""
        return self._checked().report

    def _checked(self, wanted=None) -> Checked | None:
        """The check of the layers served now with its findings prepared to serve. One
        check runs at a time, outside the catalog's lock (saves and reads go on); if a save
        lands meanwhile, that check is answered but not kept (the save's follows).
        ``wanted``: check only if the copy is still at this version (a background check
        that waited its turn while saves went on is not needed any more: None). A check
        asked for (a page's findings) or due while the service warms up waits for it."""
        self._warmed.wait(WARM_WAIT)
        with self._checking:
            with self._lock:
                if self._check is not None:
                    return self._check
                if wanted is not None and self.version != wanted:
                    return None
                layers, version = self.layers, self.version
                kept, cells = self._kept, self._cells_since
                cells = None if cells is None else list(cells)
            run = self._running = CheckRun(time.monotonic())
            try:
                if kept is not None and cells is not None and recheck.applies(layers):
                    # only grid cells changed since the check kept: checked near them
                    run.told(step("recheck", n=len(set(cells))))
                    report = recheck.rechecked(kept.report, kept.layers, layers, cells)
                else:
                    report = geo.check(layers, progress=run.told)
            finally:
                self._running = None
            self._last_check_s = time.monotonic() - run.started
            checked = Checked(
                report,
                self._serialise_findings(report, layers),
                {
                    name: Collection.from_frame(name, gdf)
                    for name, gdf in findings_layers(report.findings).items()
                },
                layers,
            )
            with self._lock:
                # kept if no save came meanwhile (a save replaces the layers before it
                # counts its cells in _cells_since: see _splice_grid)
                if self.version == version and self.layers is layers:
                    self._check = self._kept = checked
                    self._cells_since = []
            return checked

    def check_status(self) -> dict:
        """Where the check of the layers served now stands: ``{"state": "done", "seconds",
        "findings"}``; ``{"state": "running", "elapsed_s", "steps_done", "step": {"en",
        "zh"}, "last_s"}`` (``last_s``: how long the last check took, None before one);
        or ``{"state": "waiting"}`` (after a save, until saves pause)."""
        checked, run = self._check, self._running
        if checked is not None:
            return {"state": "done", "seconds": _rounded(self._last_check_s),
                    "findings": len(checked.report.findings)}  # fmt: skip
        if run is None:
            return {"state": "waiting", "last_s": _rounded(self._last_check_s)}
        step = run.step
        return {
            "state": "running",
            "elapsed_s": _rounded(time.monotonic() - run.started),
            "steps_done": run.steps,
            "step": None if step is None else {"en": str(step), "zh": getattr(step, "zh", step)},
            "last_s": _rounded(self._last_check_s),
        }

    def extent(self) -> tuple[float, float, float, float]:
        """lon/lat bounds of every layer holding features (the findings lie within)."""
        b = np.array([c.bounds for n, c in self.collections.items() if n in KINDS and len(c)])
        return tuple(map(float, (*b[:, :2].min(axis=0), *b[:, 2:].max(axis=0))))

    def collection_names(self) -> list[str]:
        """The collections served: every layer, then the findings layers."""
        return [*self.collections, *FINDINGS_LAYERS]

    def collection(self, name: str) -> Collection | None:
        """The collection ``name`` (a findings layer waits for the check), or None."""
        if name in self.collections:
            return self.collections[name]
        if name in FINDINGS_LAYERS:
            return self._checked().collections[name]
        return None

    def queryables(self, name: str) -> dict[str, str]:
        """Property → JSON type of what a filter on collection ``name`` may name."""
        col = self.collection(name)
        return col.queryables if col is not None else {}

    @staticmethod
    def _serialise_findings(report: Report, layers) -> list[str]:
        """The findings as GeoJSON features (lon/lat), each with the ``names`` of the
        features it concerns beside their codes (looked up in the finding's layer, then
        its parent layer, then any layer: a misaligned station names its street)."""
        lonlat = report.findings_lonlat()
        named = sorted({str(c) for feats in lonlat["features"] for c in feats})
        names = {}  # the names of the features findings concern, not of every feature
        for n, g in layers.items():
            if "code" in g.columns and "name" in g.columns:
                hit = g[g["code"].astype(str).isin(named).to_numpy()]
                names[n] = dict(zip(hit["code"].astype(str), hit["name"].astype(str)))

        def name_of(code, *prefer):
            for n in [*prefer, *names]:
                if n in names and code in names[n]:
                    return names[n][code]
            return None

        out = []
        for i, row in enumerate(lonlat.itertuples(index=False)):
            props = plain(
                {
                    "id": i,
                    "rule": row.rule,
                    "layer": row.layer,
                    "features": list(row.features),
                    "names": [name_of(c, row.layer, row.parent_layer) for c in row.features],
                    "area_m2": row.area_m2,
                    "width_m": row.width_m,
                    "kind": row.kind,
                    "detail": row.detail,
                    "detail_zh": row.detail_zh,
                    "parent_layer": row.parent_layer,
                    "parent": row.parent,
                }
            )
            geom = shapely.to_geojson(row.geometry) if row.geometry is not None else "null"
            out.append(
                f'{{"type":"Feature","id":{i},"properties":{json_text(props)},"geometry":{geom}}}'
            )
        return out

    def findings(self, *, rule: str | None = None, layer: str | None = None) -> list[str]:
        checked = self._checked()
        report = checked.report
        keep = np.ones(len(report.findings), dtype=bool)
        if rule:
            keep &= (report.findings["rule"] == rule).to_numpy()
        if layer:
            keep &= (report.findings["layer"] == layer).to_numpy()
        return [f for f, k in zip(checked.features, keep) if k]

    # ------------------------------------------------------------------ service sites
    def has_access(self) -> bool:
        """Whether service-site analysis can run: it needs facilities and grid cells."""
        return "facility" in self.layers and "grid" in self.layers

    def access(self, demand: bool = True) -> Access:
        """Network (or straight-line) access analysis, built on first use and kept; built
        again for the grid served now when ``demand`` (coverage and siting count the
        cells' people; the nearest facility does not)."""
        if not self.has_access():
            raise NotFound(
                "service-site analysis needs a facility and a grid layer",
                zh="服务设施分析需要设施图层和网格图层",
            )
        with self._building_access:
            access, (layers, version) = self._access, (self.layers, self.version)
            if access is None or (demand and access.version != version):
                access = Access(layers)
                access.version = version
                with self._lock:
                    self._access = access
            return access

    # ------------------------------------------------------------------ search
    def _address_index(self):
        """The served address layer (lon/lat) and its :class:`geo.addresses.AddressIndex`,
        built on first use after the layer changed; (None, None) without addresses."""
        from geo.addresses import AddressIndex

        gdf = self.layers.get("address")
        if gdf is None:
            return None, None
        with self._lock_addresses:
            if self._addresses is None or self._addresses[0] is not gdf:
                self._addresses = (gdf, AddressIndex(gdf))
            return self._addresses

    def find_addresses(self, text: str, limit: int = 10) -> list[dict]:
        """Standard addresses matching ``text`` (every word, any order; best first), each
        with who is responsible there (:meth:`geo.locator.Locator.locate`: the feature of
        every area layer holding it) and the nearest facility of each kind (straight-line
        metres)."""
        gdf, index = self._address_index()
        if index is None:
            return []
        out = []
        for i in index.search(text, limit):
            row = gdf.iloc[i]
            lon, lat = float(row.geometry.x), float(row.geometry.y)
            out.append(
                {
                    "code": str(row["code"]),
                    "address": str(row["address"]),
                    "door": None if pd.isna(row.get("door")) else str(row.get("door")),
                    "households": None
                    if pd.isna(row.get("households"))
                    else int(row.get("households")),
                    "lon": round(lon, 7),
                    "lat": round(lat, 7),
                    "areas": self.locator.locate(lon, lat),
                    "nearest": self.locator.nearest(lon, lat),
                }
            )
        return out

    def search(self, text: str, limit: int = 20) -> list[dict]:
        """Features whose name or code contains ``text`` (case-insensitive), exact code
        matches first, across the area layers and facilities; then standard addresses
        holding every word of it."""
        text = text.strip().lower()
        if not text:
            return []
        hits, places = [], []
        gdf, addresses = self._address_index()
        for i in addresses.search(text, 5) if addresses is not None else []:
            x, y = float(gdf.geometry.values[i].x), float(gdf.geometry.values[i].y)
            places.append(
                {
                    "layer": "address",
                    "code": str(gdf["code"].iloc[i]),
                    "name": str(gdf["address"].iloc[i]),
                    "bbox": [round(x, 7), round(y, 7), round(x, 7), round(y, 7)],
                    "exact": False,
                }
            )
        for name in (*partitions(), "facility"):
            col = self.collections.get(name)
            if col is None:
                continue
            codes = np.char.lower(col.codes.astype(str))
            names = np.char.lower(col.names.astype(str))
            match = np.flatnonzero(
                (np.char.find(codes, text) >= 0) | (np.char.find(names, text) >= 0)
            )
            gdf = self.layers[name]
            for i in match:
                b = shapely.bounds(gdf.geometry.values[i])
                hits.append(
                    {
                        "layer": name,
                        "code": str(col.codes[i]),
                        "name": str(col.names[i]),
                        "bbox": [round(float(v), 7) for v in b],
                        "exact": codes[i] == text,
                    }
                )
        hits.sort(key=lambda h: (not h["exact"], len(h["name"])))
        return hits[: limit - len(places)] + places
