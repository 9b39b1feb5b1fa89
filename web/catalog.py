"""The dataset a running service serves: layers in WGS 84, spatial indexes, pre-serialised
GeoJSON features, population themes, lookups and the (lazily computed) check report.

One :class:`Catalog` is built by the app factory and kept on ``app.extensions``; views ask
it for data and serialise nothing themselves beyond joining prepared strings.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.access import Access
from geo.checker import Report, check_dataset
from geo.dataset import Dataset
from geo.errors import NotFound
from geo.filters import queryables
from geo.kinds import FACILITY_KINDS, KINDS, hierarchy, jurisdictions, partitions
from geo.locator import Locator
from geo.report import FINDINGS_LAYERS, findings_layers
from geo.themes import NO_DATA, THEMES, classify, grid_figures
from layers.storage import open_store

__all__ = ["Collection", "Catalog", "plain"]


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


def rfc7946_geometries(geoms, grid: float = 1e-7) -> np.ndarray:
    """``geoms`` as RFC 7946 asks: exterior rings counter-clockwise, holes clockwise, and
    coordinates on a ``grid`` (1e-7 degree, about 1 cm: finer than any boundary we hold,
    and seven decimals). Rounded first, then oriented, so rounding cannot flip a ring."""
    rounded = shapely.set_precision(geoms, grid, mode="pointwise")
    return shapely.orient_polygons(rounded, exterior_cw=False)


@dataclass
class Collection:
    """One layer ready to serve: its features (lon/lat) as a table for filters, each
    feature's GeoJSON prepared up to its geometry (``heads``) and its geometry
    (``geometries``, RFC 7946), unique ids, a spatial index, codes and names.

    ``derived`` names the properties the service computes (a cell's density, the police
    area holding it, …): served and queryable, never stored or edited.
    """

    name: str
    table: gpd.GeoDataFrame
    heads: list[str]
    geometries: list[str]
    ids: np.ndarray
    codes: np.ndarray
    tree: shapely.STRtree
    bounds: tuple[float, float, float, float]
    names: np.ndarray
    derived: tuple[str, ...] = ()
    queryables: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, name: str, gdf: gpd.GeoDataFrame, extra: pd.DataFrame | None = None):
        """``gdf`` in WGS 84; ``extra`` holds derived per-feature properties."""
        derived = tuple(extra.columns) if extra is not None else ()
        table = gdf if extra is None else gdf.join(extra)
        geoms = gdf.geometry.values
        columns = [c for c in table.columns if c != table.geometry.name]
        records = table[columns].to_dict("records")
        codes = (
            gdf["code"].astype(str).to_numpy()
            if "code" in gdf
            else np.array([str(i) for i in range(1, len(gdf) + 1)], dtype=object)
        )
        ids = feature_ids(codes)
        heads = [
            f'{{"type":"Feature","id":{json_text(fid)},'
            f'"properties":{json_text({k: plain(v) for k, v in rec.items()})},"geometry":'
            for fid, rec in zip(ids, records)
        ]
        names = (
            gdf["name"].astype(str).to_numpy()
            if "name" in gdf
            else np.array([""] * len(gdf), dtype=object)
        )
        b = gdf.total_bounds if len(gdf) else (0.0, 0.0, 0.0, 0.0)
        return cls(
            name,
            table,
            heads,
            list(shapely.to_geojson(rfc7946_geometries(geoms))),
            ids,
            codes,
            shapely.STRtree(geoms),
            tuple(map(float, b)),
            names,
            derived,
            queryables(table),
        )

    def __len__(self) -> int:
        return len(self.heads)

    def feature(self, i: int, geometry: str | None = None) -> str:
        """Feature ``i`` as GeoJSON text; ``geometry``: its geometry in another CRS."""
        return self.heads[i] + (self.geometries[i] if geometry is None else geometry) + "}"

    def query(self, bbox=None) -> np.ndarray:
        """Positions of the features intersecting ``bbox`` (lon/lat), in layer order."""
        if bbox is None:
            return np.arange(len(self))
        return np.sort(self.tree.query(shapely.box(*bbox), predicate="intersects"))

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


class Catalog:
    """Everything the service shows about one dataset (a GeoPackage path or PostGIS URL)."""

    def __init__(self, dataset: str):
        self.store = open_store(dataset)
        self.location = self.store.location
        self._lock = threading.Lock()
        self._load()

    def preview_base(self):
        """Layers as stored, prepared for edit previews (:class:`geo.edits.PreviewBase`)."""
        from geo.edits import EDIT_LAYERS, PreviewBase

        base = self._preview_base
        if base is None:
            layers = {n: self.stored[n] for n in EDIT_LAYERS if n in self.stored}
            base = self._preview_base = PreviewBase(layers)
        return base

    def reload(self) -> None:
        """Read the dataset again after an edit (layers, indexes, findings, access); the
        check runs again in the background."""
        with self._lock:
            self._load()

    def _load(self, start_check: bool = True) -> None:
        raw = self.store.load()
        self.store_crs = next(iter(raw.values())).crs if raw else None
        self.stored = raw  # as stored (geographic CRS of the dataset), for edits
        self._preview_base = None
        stored = Dataset(raw, name=self.location)
        # the served Dataset: WGS 84 lon/lat, measured in the stored dataset's metric CRS
        self.layers = Dataset(
            {n: stored.lonlat(n) for n in stored},
            metric_crs=stored.metric_crs if len(stored) else None,
            name=self.location,
        )
        self.locator = Locator(self.layers)
        self.themes: dict[str, dict] = {}
        extras = self._extras()
        self.collections = {
            n: Collection.from_frame(n, g, extras.get(n)) for n, g in self.layers.items()
        }
        self._report: Report | None = None
        self._access: Access | None = None
        self._findings_json: list[str] | None = None
        if start_check:  # check in the background now, so the first visitor does not wait
            threading.Thread(target=self.report, name="gridmap-check", daemon=True).start()

    # ------------------------------------------------------------------ derived properties
    def _responsible(self, gdf: gpd.GeoDataFrame) -> pd.DataFrame:
        """Police area and police beat holding each feature's representative point."""
        out = pd.DataFrame(index=gdf.index)
        pts = gdf.geometry.representative_point().values
        for layer in jurisdictions():
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

    def _extras(self) -> dict[str, pd.DataFrame]:
        extras: dict[str, pd.DataFrame] = {}
        parent_names = {
            n: dict(zip(g["code"].astype(str), g["name"].astype(str)))
            for n, g in self.layers.items()
            if "code" in g and "name" in g
        }
        # every level of the hierarchy below the top: its parent's name, and the police
        # area and beat responsible for it
        for name in hierarchy()[1:]:
            gdf = self.layers.get(name)
            if gdf is None:
                continue
            ex = self._responsible(gdf)
            parent = KINDS[name].parent
            ex["parent_name"] = (
                gdf["parent_code"].astype(str).map(parent_names.get(parent, {})).to_numpy()
            )
            extras[name] = ex
        grid = self.layers.get("grid")
        if grid is not None:
            figures = grid_figures(grid, metric_crs=self.layers.metric_crs)
            ex = extras["grid"]
            for theme, prop in THEME_PROPERTIES.items():
                if prop not in grid:
                    ex[prop] = figures[theme].to_numpy()
                _, legend = classify(figures[theme])
                zh, en, unit = THEMES[theme]
                self.themes[theme] = {
                    **legend,
                    "property": prop,
                    "noData": NO_DATA,
                    "label_zh": zh,
                    "label_en": en,
                    "unit": unit,
                }
        facility = self.layers.get("facility")
        if facility is not None:
            extras["facility"] = pd.DataFrame(
                {
                    "kind_zh": facility["kind"]
                    .map({k: f.zh for k, f in FACILITY_KINDS.items()})
                    .fillna(facility["kind"])
                },
                index=facility.index,
            )
        return extras

    # ------------------------------------------------------------------ findings
    def report(self) -> Report:
        """The check report, computed on first use and kept."""
        with self._lock:
            if self._report is None:
                report = check_dataset(self.layers)
                self._findings_json = self._serialise_findings(report)
                self._findings_collections = {
                    name: Collection.from_frame(name, gdf)
                    for name, gdf in findings_layers(report.findings).items()
                }
                self._report = report
            return self._report

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
            self.report()
            return self._findings_collections[name]
        return None

    def queryables(self, name: str) -> dict[str, str]:
        """Property → JSON type of what a filter on collection ``name`` may name."""
        col = self.collection(name)
        return col.queryables if col is not None else {}

    @staticmethod
    def _serialise_findings(report: Report) -> list[str]:
        lonlat = report.findings_lonlat()
        out = []
        for i, row in enumerate(lonlat.itertuples(index=False)):
            props = plain(
                {
                    "id": i,
                    "rule": row.rule,
                    "layer": row.layer,
                    "features": list(row.features),
                    "area_m2": row.area_m2,
                    "width_m": row.width_m,
                    "kind": row.kind,
                    "detail": row.detail,
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
        report = self.report()
        keep = np.ones(len(report.findings), dtype=bool)
        if rule:
            keep &= (report.findings["rule"] == rule).to_numpy()
        if layer:
            keep &= (report.findings["layer"] == layer).to_numpy()
        return [f for f, k in zip(self._findings_json, keep) if k]

    # ------------------------------------------------------------------ service sites
    def has_access(self) -> bool:
        """Whether service-site analysis can run: it needs facilities and grid cells."""
        return "facility" in self.layers and "grid" in self.layers

    def access(self) -> Access:
        """Network (or straight-line) access analysis, built on first use and kept."""
        if not self.has_access():
            raise NotFound(
                "service-site analysis needs a facility and a grid layer",
                zh="服务设施分析需要设施图层和网格图层",
            )
        with self._lock:
            if self._access is None:
                self._access = Access(self.layers)
            return self._access

    # ------------------------------------------------------------------ search
    def search(self, text: str, limit: int = 20) -> list[dict]:
        """Features whose name or code contains ``text`` (case-insensitive), exact code
        matches first, across the area layers and facilities."""
        text = text.strip().lower()
        if not text:
            return []
        hits = []
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
        return hits[:limit]
