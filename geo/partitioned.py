"""The check of a dataset part by part, each part measured in its own local zone.

One metric CRS cannot measure a province or a nation: Tibet alone spans 79°E–99°E, and an
area 20° from the central meridian of a Transverse Mercator zone is several percent too
large. So the hierarchy is checked in **parts**: groups of neighbouring top-level units
(streets), never more than one projection zone each, every part in the local metric CRS
of its own extent (:func:`geo.crs.metric_crs_for_bounds`: its CGCS2000 3° Gauss–Krüger
zone in China, its UTM zone elsewhere).

A part is checked with a **halo**: every feature of every layer reaching into the part, and
then every feature touching one of those (its neighbours, parents and children), so that
each defect a part's own features take part in is seen whole. Each finding is then kept by
exactly one part, the one that **owns** it:

- a feature belongs to the part whose streets hold its point on surface (the nearest part
  when none does);
- an overlap belongs to the owner of the smaller of its two codes; a gap inside a parent to
  the owner of the parent; not_nested, parent_mismatch and invalid_geometry to the owner of
  the feature; a hole between top-level units to the owner of the smallest code around it.

Duplicate codes are counted over whole layers (codes are cheap to read). Jurisdictions —
police areas and beats, other departments' grids — are checked over the whole dataset, as
they must be compared with whole streets and their households, and each of their findings
is measured again in the zone of the place it is in.

On a dataset of one zone the parts' findings are those of :func:`geo.checker.check_dataset`
(the tests compare them on the known-answer tilings and the sample).

:func:`check_partitioned` takes a :class:`~geo.dataset.Dataset` (the parts are cut from it
in memory) or a store with ``read_region`` — a GeoPackage (R-tree), PostGIS (GiST index)
or a spatially partitioned GeoParquet folder (:mod:`layers.geoparquet`) — from which each
part reads only its own features, so that a worker's memory is bounded by its part. The
parts run in this process, on a dask ``LocalCluster`` of ``workers`` processes, or on the
cluster whose scheduler ``GRIDMAP_DASK`` names: the same code.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.checker import (
    Report,
    check_dataset,
    jurisdiction_rules,
    layer_facts,
    layer_rules,
    nesting_rules,
    ordered,
)
from geo.crs import to_crs, zone_epsg
from geo.dataset import Dataset
from geo.errors import InputError
from geo.findings import Tolerances, classify, empty_findings, width
from geo.kinds import KINDS, hierarchy, jurisdictions, partitions
from geo.layer_rules import duplicate_code
from geo.progress import step

__all__ = [
    "Part",
    "plan_parts",
    "spans_zones",
    "owners",
    "check_part",
    "check_partitioned",
    "remeasured",
]

#: Metres per degree of latitude (for a halo given in metres around lon/lat parts).
_M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class Part:
    """One part of a partitioned check.

    index : its number (parts are numbered from 0; ownership compares them).
    units : codes of the top-level features (streets) making its core.
    crs : the local metric CRS it is measured in (EPSG code as text, e.g. ``EPSG:4539``).
    bounds : lon/lat (WGS 84) bounds of its core grown by the halo: what it reads.
    """

    index: int
    units: tuple[str, ...]
    crs: str
    bounds: tuple[float, float, float, float]


def _zone(bounds) -> str:
    """``EPSG:…`` of the local metric CRS of the centre of lon/lat ``bounds``."""
    x0, y0, x1, y1 = bounds
    return f"EPSG:{zone_epsg((x0 + x1) / 2, (y0 + y1) / 2)}"


def _zones(points) -> np.ndarray:
    """``EPSG:…`` of the local metric CRS of each lon/lat point."""
    return np.array([f"EPSG:{zone_epsg(x, y)}" for x, y in shapely.get_coordinates(points)])


def plan_parts(top: gpd.GeoDataFrame, *, units_per_part: int = 128, halo: float = 200.0):
    """The parts of a check: ``top`` (the top hierarchy layer, e.g. streets, any
    geographic CRS) grouped into parts of at most ``units_per_part`` neighbouring
    features of one zone each. ``halo``: metres read around each part's core.

    Returns ``(parts, part_of_each_top_feature)``.
    """
    top = to_crs(top, "EPSG:4326")
    geoms = top.geometry.values
    zones = _zones(shapely.point_on_surface(geoms))
    # neighbours close in space close in order: a Hilbert curve over the extent
    order = np.argsort(top.geometry.hilbert_distance().to_numpy(), kind="stable")
    part_of = np.full(len(top), -1)
    parts: list[Part] = []
    codes = top["code"].astype(str).to_numpy()
    for zone in sorted(set(zones.tolist())):
        mine = order[zones[order] == zone]
        for start in range(0, len(mine), units_per_part):
            members = mine[start : start + units_per_part]
            x0, y0, x1, y1 = shapely.total_bounds(geoms[members])
            lat = max(abs(y0), abs(y1))
            dy = halo / _M_PER_DEG
            dx = dy / max(np.cos(np.radians(min(lat, 89.0))), 1e-6)
            part_of[members] = len(parts)
            parts.append(
                Part(
                    index=len(parts),
                    units=tuple(codes[members].tolist()),
                    crs=zone,
                    bounds=(x0 - dx, y0 - dy, x1 + dx, y1 + dy),
                )
            )
    return parts, part_of


def spans_zones(store) -> bool:
    """Whether the top hierarchy layer of a store (or Dataset) lies in more than one
    projection zone: such a dataset must be checked part by part to be measured well."""
    names = store.list_layers() if hasattr(store, "list_layers") else list(store)
    top = next((h for h in hierarchy() if h in names), None)
    if top is None:
        return False
    frame = store.read_layer(top) if hasattr(store, "read_layer") else store[top]
    if not len(frame):
        return False
    return len(set(_zones(shapely.point_on_surface(_lonlat(frame))))) > 1


def owners(frame: gpd.GeoDataFrame, top: gpd.GeoDataFrame, part_of: np.ndarray) -> np.ndarray:
    """The part owning each feature of ``frame``: the part of the top-level feature holding
    its point on surface (the lowest such part if top-level features overlap), else of the
    nearest top-level feature. Both frames in the same geographic CRS."""
    out = np.full(len(frame), np.iinfo(np.int64).max, dtype=np.int64)
    if not len(frame):
        return out
    points = shapely.point_on_surface(frame.geometry.values)
    tree = shapely.STRtree(top.geometry.values)
    p, t = tree.query(points, predicate="within")
    np.minimum.at(out, p, part_of[t])
    lost = np.flatnonzero(out == np.iinfo(np.int64).max)
    if len(lost):
        p, t = tree.query_nearest(points[lost], all_matches=False)
        out[lost[p]] = part_of[t]
    return out


def _owner_of_codes(layers: dict, top, part_of) -> dict[str, dict[str, set[int]]]:
    """``{layer: {code: the parts owning its features}}`` (one part, unless the code is
    duplicated)."""
    out = {}
    for name, gdf in layers.items():
        table: dict[str, set[int]] = {}
        own = owners(to_crs(gdf, top.crs), top, part_of)
        for code, o in zip(gdf["code"].astype(str), own):
            table.setdefault(code, set()).add(int(o))
        out[name] = table
    return out


def _owned(row, codes: dict[str, dict[str, set[int]]], part: int) -> bool:
    """Whether ``part`` owns one finding (see the module's docstring). A duplicated code is
    reported by every part owning one of its features (the reports are merged after)."""
    layer = codes.get(row.layer, {})
    if row.rule == "gap" and isinstance(row.parent, str) and row.parent_layer in codes:
        return min(codes[row.parent_layer].get(row.parent, {-1})) == part
    feats = sorted(str(f) for f in row.features)
    if not feats:
        return False
    if row.rule == "duplicate_code":
        return part in layer.get(feats[0], set())
    first = row.features[0] if row.rule in ("not_nested", "parent_mismatch") else feats[0]
    return min(layer.get(str(first), {-1})) == part


def _merge_duplicates(findings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One duplicate_code finding per layer and code (parts each report the features of a
    duplicated code they own): their points put together."""
    dup = (findings["rule"] == "duplicate_code").to_numpy()
    if not dup.any():
        return findings
    rows = findings[dup]
    key = (rows["layer"] + "\x00" + rows["features"].map(lambda f: str(f[0]))).to_numpy()
    merged = []
    for k in dict.fromkeys(key):
        same = rows[key == k]
        first = same.iloc[0].to_dict()
        first["geometry"] = shapely.union_all(same.geometry.values)
        merged.append(first)
    merged = gpd.GeoDataFrame(merged, geometry="geometry", crs=rows.crs)
    return pd.concat([findings[~dup], merged], ignore_index=True)


def _lonlat(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """The geometries of ``gdf`` in WGS 84 lon/lat (for choosing features, not measuring)."""
    return to_crs(gdf[[gdf.geometry.name]], "EPSG:4326").geometry.values


def _halo(layers: dict[str, gpd.GeoDataFrame], area) -> dict[str, gpd.GeoDataFrame]:
    """The features of each layer (as stored) reaching into ``area`` (a lon/lat polygon:
    the part's streets grown by the halo), and every feature touching one of them in its
    own, its parent's or its children's layer."""
    geoms = {n: _lonlat(gdf) for n, gdf in layers.items()}
    trees = {n: shapely.STRtree(g) for n, g in geoms.items()}
    picked = {n: set(trees[n].query(area, predicate="intersects").tolist()) for n in layers}
    first = {n: geoms[n][sorted(picked[n])] for n in layers}
    for name in layers:
        related = [name, KINDS[name].parent] + [n for n in layers if KINDS[n].parent == name]
        for other in related:
            if other in first and len(first[other]):
                # bounding boxes meeting: a few more features than touch, found cheaply
                _, hit = trees[name].query(first[other])
                picked[name].update(hit.tolist())
    return {n: gdf.iloc[sorted(picked[n])] for n, gdf in layers.items()}


def check_part(
    layers: dict[str, gpd.GeoDataFrame],
    part: Part,
    top: gpd.GeoDataFrame,
    part_of: np.ndarray,
    duplicates: dict[str, dict[str, int]] | None = None,
    tolerances: Tolerances = Tolerances(),
) -> gpd.GeoDataFrame:
    """The findings ``part`` owns, measured in its own zone (``part.crs``).

    layers : the hierarchy and other non-jurisdiction partition layers around the part
        (lon/lat, its halo included: :func:`_halo`).
    top, part_of : the top-level layer (lon/lat) and the part of each of its features, for
        ownership.
    duplicates : ``{layer: {code: features carrying it}}`` over whole layers, for the
        duplicate codes the part owns.
    """
    ds = Dataset({n: g for n, g in layers.items() if len(g)}, metric_crs=part.crs)
    present = ds.present(partitions())
    if not present:
        return empty_findings(part.crs)
    quiet = lambda _m: None  # noqa: E731
    codes = _owner_of_codes(dict(ds.items()), top, part_of)
    owned = {n: {c for c, o in table.items() if min(o) == part.index} for n, table in codes.items()}
    metric, found = layer_rules(ds, present, tolerances, quiet, owned=owned)
    found += nesting_rules(metric, found, tolerances, quiet, owned=owned)
    for name, counted in (duplicates or {}).items():
        if name in metric:
            found.append(duplicate_code(metric[name], name, counted=counted))
    findings = ordered(found, ds.metric_crs)
    mine = [_owned(row, codes, part.index) for row in findings.itertuples()]
    return findings[np.asarray(mine, dtype=bool)] if len(findings) else findings


class _Frames:
    """Reads the features (as stored) of a layer reaching into lon/lat bounds: from a
    Dataset (one spatial index of its lon/lat copy per layer) or from a store
    (``read_region``)."""

    def __init__(self, source):
        self.source = source
        self._trees: dict[str, shapely.STRtree] = {}

    def __call__(self, name: str, bounds) -> gpd.GeoDataFrame:
        if isinstance(self.source, Dataset):
            if name not in self._trees:
                self._trees[name] = shapely.STRtree(self.source.lonlat(name).geometry.values)
            hit = self._trees[name].query(shapely.box(*bounds), predicate="intersects")
            return self.source[name].iloc[np.sort(hit)]
        return self.source.read_region(name, bounds)


def _core(part: Part, top: gpd.GeoDataFrame, part_of: np.ndarray):
    """The part's streets (lon/lat) grown by its halo: the area its own features reach."""
    mine = top.geometry.values[part_of == part.index]
    x0, y0, x1, y1 = part.bounds
    cx0, cy0, cx1, cy1 = shapely.total_bounds(mine)
    grow = max(cx0 - x0, cy0 - y0, x1 - cx1, y1 - cy1, 0.0)  # the halo, in degrees
    return shapely.buffer(shapely.union_all(mine), grow, quad_segs=2)


def _gather(read: _Frames, names, bounds, area) -> dict[str, gpd.GeoDataFrame]:
    """The part's features with their halo (:func:`_halo`): read once for the features
    reaching into ``bounds`` and once more for everything that can touch them."""
    first = {n: read(n, bounds) for n in names}
    near = [_lonlat(f) for f in first.values() if len(f)]
    boxes = [shapely.total_bounds(g[shapely.intersects(g, area)]) for g in near]
    boxes = [b for b in boxes if np.isfinite(b).all()]
    if not boxes:
        return first
    b = np.array(boxes)
    grown = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    return _halo({n: read(n, grown) for n in names}, area)


def _run_part(read: _Frames, part: Part, names, top, part_of, duplicates, tolerances):
    """Read ``part``'s features (with its halo) and check it. Returns its findings in WGS 84
    (parts in different zones are put together in lon/lat) and what it cost: ``{"part",
    "crs", "features" read, "findings", "seconds", "peak_rss_mb"}`` (the peak resident
    memory of the process that ran it, so far)."""
    started = time.perf_counter()
    layers = _gather(read, names, part.bounds, _core(part, top, part_of))
    found = check_part(layers, part, top, part_of, duplicates, tolerances)
    cost = {
        "part": part.index,
        "crs": part.crs,
        "features": int(sum(len(g) for g in layers.values())),
        "findings": len(found),
        "seconds": round(time.perf_counter() - started, 3),
        "peak_rss_mb": _peak_rss_mb(),
    }
    return found.to_crs("EPSG:4326"), cost


def _peak_rss_mb() -> float | None:
    """The peak resident memory of this process (MB): Linux's VmHWM, which a process
    started by fork and exec does not inherit from its parent (``ru_maxrss`` does)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


@contextmanager
def _dask_client(address: str | None, workers: int):
    """A dask client of the cluster at ``address``, or of a ``LocalCluster`` of
    ``workers`` single-threaded processes made for this check and closed after it."""
    from distributed import Client, LocalCluster

    if address:
        with Client(address) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@functools.lru_cache(maxsize=4)
def _open(location: str, version):
    """The store at ``location`` (a GeoParquet folder, a GeoPackage or a PostGIS URL), as
    a worker opens it, once for all the parts of one version it checks (a cluster's
    workers outlive a check): storage is the layers package's (imported here)."""
    from layers.storage import open_source

    return open_source(location)


def _run_part_at(location: str, version, *args):
    """:func:`_run_part` in a worker process: it opens the store itself (at ``version``,
    what the store's ``version()`` said when the check began) and reads only its part."""
    return _run_part(_Frames(_open(location, version)), *args)


def remeasured(findings: gpd.GeoDataFrame, tolerances: Tolerances) -> gpd.GeoDataFrame:
    """``findings`` (any CRS) with the area, width and kind of each area finding measured
    again in the local metric CRS of the place it is in (the zone of its own centre)."""
    out = findings.copy()
    measured = np.flatnonzero(pd.to_numeric(out["area_m2"], errors="coerce").notna().to_numpy())
    if not len(measured):
        return out
    lonlat = to_crs(out.iloc[measured][["geometry"]], "EPSG:4326")
    zones = _zones(shapely.centroid(lonlat.geometry.values))
    area = np.zeros(len(measured))
    wide = np.zeros(len(measured))
    for zone in set(zones.tolist()):
        at = np.flatnonzero(zones == zone)
        local = to_crs(lonlat.iloc[at], zone).geometry.values
        area[at] = shapely.area(local)
        wide[at] = width(local)
    column = out.columns.get_loc
    out.iloc[measured, column("area_m2")] = area
    out.iloc[measured, column("width_m")] = wide
    out.iloc[measured, column("kind")] = classify(wide, tolerances)
    return out


def check_partitioned(
    source,
    *,
    tolerances: Tolerances = Tolerances(),
    units_per_part: int = 128,
    halo: float = 200.0,
    workers: int = 1,
    scheduler: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Check a dataset part by part (see the module's docstring).

    source : a :class:`~geo.dataset.Dataset` (or ``{layer: GeoDataFrame}``), or a store
        (``open_store(...)``; each part then reads its own features by bounding box, in
        its worker process when ``workers`` > 1).
    units_per_part : top-level features (streets) per part.
    halo : metres of features read around each part.
    workers : dask worker processes checking parts side by side on a ``LocalCluster``
        (1: in this process); each reads only its own part from the store.
    scheduler : the address of a dask scheduler (``tcp://host:8786``; default the
        ``GRIDMAP_DASK`` environment variable) to run the parts on a cluster instead; its
        workers must reach the store at the same location.

    Returns a :class:`~geo.checker.Report` whose findings are in the dataset's overall
    metric CRS for drawing, with each area and width as measured in its own part's zone.
    """
    say = progress or (lambda _msg: None)
    store = None if isinstance(source, (Dataset, dict)) else source
    ds = Dataset.of(source) if store is None else None  # its projected copies are kept
    names_all = store.list_layers() if store is not None else list(ds)
    levels = hierarchy()
    top_name = next((h for h in levels if h in names_all), None)
    if top_name is None:  # nothing to cut into parts
        layers = ds if store is None else store.load()
        return check_dataset(layers, tolerances=tolerances, progress=progress)
    top = ds.lonlat(top_name) if store is None else to_crs(store.read_layer(top_name), "EPSG:4326")
    parts, part_of = plan_parts(top, units_per_part=units_per_part, halo=halo)
    juris = set(jurisdictions())
    names = [n for n in partitions() if n in names_all and n not in juris]
    # codes are counted over whole layers (they are cheap to read); the part owning a
    # duplicated code reports it
    code_lists = {n: (ds[n]["code"] if store is None else store.read_codes(n)) for n in names}
    duplicates = {}
    for n in names:
        seen = code_lists[n].astype(str).value_counts()
        duplicates[n] = {str(c): int(k) for c, k in seen[seen > 1].items()}
    say(step("parts", n=len(parts), zones=len({p.crs for p in parts})))
    found, costs = [], []
    address = scheduler or os.environ.get("GRIDMAP_DASK")
    if workers > 1 or address:
        if store is None:
            raise InputError(
                "a partitioned check on workers reads its parts from storage: pass a store "
                "(a GeoPackage, PostGIS or GeoParquet dataset), not layers in memory",
                zh="多进程分片检查从存储读取各分片：请传入数据集（GeoPackage、PostGIS 或 GeoParquet）",
            )
        version = str(store.version()) if hasattr(store, "version") else None
        with _dask_client(address, workers) as client:
            shared = client.scatter([top, part_of, duplicates], broadcast=True)
            jobs = [
                client.submit(_run_part_at, store.location, version, p, names, *shared, tolerances,
                              key=f"gridmap-part-{p.index}-{uuid.uuid4().hex[:8]}")
                for p in parts
            ]  # fmt: skip
            for i, job in enumerate(jobs):
                frame, cost = job.result()
                found.append(frame)
                costs.append(cost)
                say(step("part", i=i + 1, n=len(parts), where=""))
    else:
        read = _Frames(ds if store is None else store)
        for p in parts:
            say(step("part", i=p.index + 1, n=len(parts), where=f" ({p.crs})"))
            frame, cost = _run_part(read, p, names, top, part_of, duplicates, tolerances)
            found.append(frame)
            costs.append(cost)

    # what is not cut into parts: the jurisdictions, over the whole dataset
    juris_present = [n for n in names_all if n in juris]
    if store is None:
        whole = ds
    else:
        needed = juris_present + ([n for n in levels if n in names_all] if juris_present else [])
        needed += [n for n in ("facility",) if juris_present and n in names_all]
        whole = Dataset(store.load(needed), metric_crs=_zone(tuple(top.total_bounds)))
    crs = whole.metric_crs
    found = [f for f in found if len(f)]
    if found:
        joined = gpd.GeoDataFrame(pd.concat(found, ignore_index=True), crs="EPSG:4326")
        found = [_merge_duplicates(joined.to_crs(crs))]
    tables: dict[str, pd.DataFrame] = {}
    present_juris = [n for n in whole.present(partitions()) if n in juris]
    if present_juris:
        say(step("jurisdictions"))
        metric, jfound = layer_rules(whole, present_juris, tolerances, say)
        for name in whole.present(levels):
            metric.setdefault(name, whole.metric(name))
        more, tables = jurisdiction_rules(whole, metric, tolerances, say)
        jfound = [f for f in jfound + more if len(f)]
        found += [remeasured(f, tolerances) for f in jfound]
    facts = layer_facts(whole)
    if store is not None:  # the layers read part by part: their counts and CRS
        for n in names:
            crs_of = store.read_region(n, (0.0, 0.0, 0.0, 0.0)).crs
            facts[n] = {
                "features": len(code_lists[n]),
                "crs": crs_of.to_string() if crs_of else None,
            }
    return Report(crs, facts, ordered(found, crs), tables, tolerances, parts=costs)
