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
from geo.kinds import partitions

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
        self._areas = {}
        for name in partitions():
            gdf = present.get(name)
            if gdf is None:
                continue
            self._areas[name] = (shapely.STRtree(gdf.geometry.values), gdf)
        self._labels = {n: _labels(g) for n, (_, g) in self._areas.items()}
        self._facilities = {}
        fac = present.get("facility")
        if fac is not None and self.crs is not None:
            metric = ds.metric("facility").copy()
            metric["lon"] = shapely.get_x(fac.geometry.values)
            metric["lat"] = shapely.get_y(fac.geometry.values)
            for kind, idx in metric.groupby("kind").groups.items():
                self._facilities[str(kind)] = metric.loc[idx]
        self._layers_crs = next(iter(present.values())).crs if self.crs else None

    def with_area(self, name: str, gdf: gpd.GeoDataFrame) -> Locator:
        """This locator with partition layer ``name`` replaced by ``gdf`` (same CRS): its
        index is built again, everything else is shared (after an edit of one layer)."""
        out = copy.copy(self)
        out._areas = {**self._areas, name: (shapely.STRtree(gdf.geometry.values), gdf)}
        out._labels = {**self._labels, name: _labels(gdf)}
        return out

    @property
    def kinds(self) -> list[str]:
        return sorted(self._facilities)

    def locate(self, lon: float, lat: float) -> dict[str, dict | None]:
        """For each area layer present: ``{"code", "name"}`` of the feature containing the
        point, ``None`` if none does; where features overlap, every one is listed under
        ``"also"``."""
        pt = shapely.Point(lon, lat)
        out: dict[str, dict | None] = {}
        for name, (tree, _) in self._areas.items():
            hits = tree.query(pt, predicate="intersects")
            if len(hits) == 0:
                out[name] = None
                continue
            hits = np.sort(hits)
            codes, names = self._labels[name]
            out[name] = {"code": codes[hits[0]], "name": names[hits[0]]}
            if len(hits) > 1:
                out[name]["also"] = [codes[h] for h in hits[1:]]
        return out

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


def _labels(gdf) -> tuple:
    """Codes and names of a layer as plain arrays of text (read by every lookup)."""
    return gdf["code"].astype(str).to_numpy(), gdf["name"].astype(str).to_numpy()
