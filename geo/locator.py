"""Who is responsible for a place: the feature of each partition layer (street, community,
grid cell, joint-household unit, police area, police beat — :func:`geo.kinds.partitions`)
containing a point, and the nearest facility of each kind (straight-line metres).

A :class:`Locator` is built once per dataset (spatial indexes) and answers many queries.
Points are WGS 84/CGCS2000 longitude and latitude; distances are measured in the dataset's
local metric CRS.
"""

from __future__ import annotations

import copy

import geopandas as gpd
import numpy as np
import shapely

from geo.crs import transformer
from geo.dataset import Dataset
from geo.kinds import KINDS, extent_layer, partitions

__all__ = ["Locator"]


class Locator:
    """Point-in-polygon and nearest-facility queries on one dataset.

    Parameters
    ----------
    layers : a :class:`~geo.dataset.Dataset` or ``{name: GeoDataFrame}`` in a geographic
        CRS; its partition layers and an optional ``facility`` point layer are used.
    """

    def __init__(self, layers: Dataset | dict[str, gpd.GeoDataFrame]):
        ds = Dataset.of(layers)
        present = {n: ds[n] for n in ds.present()}
        self.crs = ds.metric_crs if present else None
        self._areas = {n: present[n] for n in partitions() if n in present}
        self._extents = {n: extent_layer(n, self._areas) for n in self._areas}
        self._labels: dict[str, tuple] = {}  # made on first lookup: see _labels_of
        self._outlines: dict[str, object] = {}
        self._applies: dict[str, set] = {}
        self._index(self._areas)
        self._facilities = {}
        fac = present.get("facility")
        if fac is not None and self.crs is not None:
            metric = ds.metric("facility").copy()
            metric["lon"] = shapely.get_x(fac.geometry.values)
            metric["lat"] = shapely.get_y(fac.geometry.values)
            for kind, idx in metric.groupby("kind").groups.items():
                self._facilities[str(kind)] = metric.loc[idx]
        self._layers_crs = next(iter(present.values())).crs if self.crs else None

    def _index(self, changed) -> None:
        """One spatial index over every area layer (a lookup is one query) and, for the
        ``changed`` layers, their codes and names and what tells a gap at a point: the
        outline of a layer whose extent is its own, the parents that hold features of a
        kind kept only where it applies."""
        geoms = [gdf.geometry.values for gdf in self._areas.values()]
        self._all_areas = np.concatenate(geoms) if geoms else np.array([])
        self._built = None  # the index: built on first lookup (an edit does not wait)
        self._layer_of = np.repeat(np.arange(len(geoms)), [len(g) for g in geoms])
        self._first = dict(zip(self._areas, np.cumsum([0] + [len(g) for g in geoms[:-1]]).tolist()))
        for name in changed:
            gdf = self._areas[name]
            self._labels.pop(name, None)
            if self._extents[name] is None:
                self._outlines[name] = _outline(gdf.geometry.values)
            if not KINDS[name].covers_parent and "parent_code" in gdf:
                self._applies[name] = set(gdf["parent_code"].astype(str))
            else:
                self._applies.pop(name, None)

    def _labels_of(self, name: str) -> tuple:
        """Layer ``name``'s codes and names as plain arrays of text, made on first lookup
        (an edit does not wait: 150,000 cells, 17 ms) and kept."""
        found = self._labels.get(name)
        if found is None:
            gdf = self._areas[name]
            found = self._labels[name] = (
                gdf["code"].astype(str).to_numpy(),
                gdf["name"].astype(str).to_numpy(),
            )
        return found

    def _tree(self) -> shapely.STRtree:
        """The index over every area layer's features (150,000 cells: 70 ms to build)."""
        if self._built is None:
            self._built = shapely.STRtree(self._all_areas)
        return self._built

    def with_area(self, name: str, gdf: gpd.GeoDataFrame) -> Locator:
        """This locator with partition layer ``name`` replaced by ``gdf`` (same CRS): the
        index is built again, the other layers' labels and outlines and the facilities are
        shared (after an edit of one layer)."""
        out = copy.copy(self)
        out._areas = {**self._areas, name: gdf}
        out._labels, out._outlines = dict(self._labels), dict(self._outlines)
        out._applies = dict(self._applies)
        out._index([name])
        return out

    @property
    def kinds(self) -> list[str]:
        return sorted(self._facilities)

    def locate(self, lon: float, lat: float) -> dict[str, dict]:
        """Who is responsible at a point, for each area layer present: ``{"status",
        "holders"}`` — every feature holding the point, ``[{"code", "name"}]`` in stored
        order — and, when one holds it, its ``code`` and ``name`` (and the others' codes
        under ``also``). ``status``: ``one``; ``overlap`` (交叉管: two or more in charge);
        ``gap`` (三不管: none, inside the layer's extent — :func:`geo.kinds.extent_layer`);
        ``none`` (none, and none is needed there: outside the extent)."""
        hits = np.sort(self._tree().query(shapely.Point(lon, lat), predicate="intersects"))
        layer_of = self._layer_of[hits]
        out: dict[str, dict] = {}
        for k, name in enumerate(self._areas):
            codes, names = self._labels_of(name)
            mine = hits[layer_of == k] - self._first[name]
            holders = [{"code": codes[i], "name": names[i]} for i in mine]
            out[name] = {"status": "overlap" if len(holders) > 1 else "one", "holders": holders}
            if holders:
                out[name].update(holders[0])
                if len(holders) > 1:
                    out[name]["also"] = [h["code"] for h in holders[1:]]
        for name, answer in out.items():
            if not answer["holders"]:
                answer["status"] = "gap" if self._must_hold(name, out, lon, lat) else "none"
        return out

    def _must_hold(self, name: str, found: dict[str, dict], lon: float, lat: float) -> bool:
        """Whether some feature of ``name`` should hold the point (see :meth:`locate`)."""
        extent = self._extents[name]
        if extent is None:
            return bool(shapely.intersects_xy(self._outlines[name], lon, lat))
        holders = found[extent]["holders"]
        if name in self._applies:  # only parents that have some must be tiled by them
            return any(h["code"] in self._applies[name] for h in holders)
        return bool(holders)

    def nearest(self, lon: float, lat: float, *, kind: str | None = None, k: int = 1) -> list[dict]:
        """The ``k`` nearest facilities (of ``kind``, or of each kind when None), nearest
        first: ``{code, name, kind, distance_m, method: "straight", lon, lat}``."""
        if self._layers_crs is None:
            return []
        x, y = transformer(self._layers_crs, self.crs).transform(lon, lat)
        pt = shapely.Point(x, y)
        kinds = [kind] if kind else self.kinds
        out = []
        for kd in kinds:
            if kd not in self._facilities:
                continue
            sub = self._facilities[kd]
            n = min(k, len(sub))
            dist = shapely.distance(sub.geometry.values, pt)
            order = np.argsort(dist, kind="stable")[:n]
            for i in order:
                out.append(
                    {
                        "code": str(sub["code"].iloc[i]),
                        "name": str(sub["name"].iloc[i]),
                        "kind": kd,
                        "distance_m": round(float(dist[i]), 1),
                        "method": "straight",
                        "lon": float(sub["lon"].iloc[i]),
                        "lat": float(sub["lat"].iloc[i]),
                    }
                )
        return sorted(out, key=lambda r: (r["kind"] if not kind else "", r["distance_m"]))


def _outline(geoms):
    """The layer's own outline: its union with the holes filled (prepared for queries)."""
    union = shapely.union_all(geoms)
    parts = shapely.get_parts(union)
    filled = shapely.union_all(shapely.polygons(shapely.get_exterior_ring(parts)))
    shapely.prepare(filled)
    return filled
