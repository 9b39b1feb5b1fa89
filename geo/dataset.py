"""A dataset as one object: its layers, checked against the registry of kinds, and the one
policy for the metric CRS every measurement of it uses.

>>> import geopandas as gpd, shapely
>>> cell = gpd.GeoDataFrame({"code": ["1"]}, geometry=[shapely.box(91.1, 29.6, 91.11, 29.61)],
...                         crs="EPSG:4490")
>>> ds = Dataset({"grid": cell})
>>> ds.metric_crs.to_epsg()                   # CGCS2000 Gauss-Kruger CM 90E, for Lhasa
4539
>>> round(float(ds.metric("grid").area.iloc[0]) / 1e6, 3)    # km², measured in metres
1.074
>>> Dataset({"grids": cell})
Traceback (most recent call last):
...
geo.errors.UnknownLayer: 'grids' is not a layer kind gridmap knows (did you mean 'grid'?); must be one of street, community, grid, household_unit, police_area, police_beat, grid_governance, grid_urban, grid_party, grid_police, facility, address, household, building, road
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Iterator, Mapping

import geopandas as gpd
import numpy as np
from pyproj import CRS

from geo.crs import metric_crs as _choose_metric_crs
from geo.crs import to_crs
from geo.errors import LayerError
from geo.kinds import KINDS, kind, population_kinds

__all__ = ["Dataset"]


class Dataset(Mapping):
    """The layers of one dataset (``{kind name: GeoDataFrame}``), read-only.

    Parameters
    ----------
    layers : GeoDataFrames by layer kind (any subset of :data:`geo.kinds.KINDS`), each with
        a CRS. An unknown name raises :class:`geo.errors.UnknownLayer` (a misspelt layer
        must never make a check read as clean); a layer without a CRS raises
        :class:`geo.errors.LayerError`.
    metric_crs : the CRS to measure in; by default chosen once from the joint extent of
        the layers (:func:`geo.crs.metric_crs`: the CGCS2000 3-degree Gauss-Kruger zone
        in China, UTM elsewhere).
    name : where the dataset came from (a path or URL), for reports.

    Projected and lon/lat copies of each layer are made on first use and kept; the object
    is safe to share between threads.
    """

    def __init__(
        self, layers: Mapping[str, gpd.GeoDataFrame], *, metric_crs=None, name: str | None = None
    ):
        for layer in layers:
            kind(layer)  # refuses unknown names, naming the closest kind
        missing = [n for n, g in layers.items() if g.crs is None]
        if missing:
            raise LayerError(
                f"layer(s) {', '.join(missing)} have no CRS; set it first, e.g. "
                "gdf.set_crs('EPSG:4490')",
                zh=f"图层 {', '.join(missing)} 没有坐标系，请先设置（如 EPSG:4490）",
            )
        self._layers = {n: layers[n] for n in KINDS if n in layers}
        self._metric_crs = CRS.from_user_input(metric_crs) if metric_crs is not None else None
        self.name = name
        self._projected: dict[tuple[str, str], gpd.GeoDataFrame] = {}
        self._codes: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, layers) -> Dataset:
        """``layers`` if it is a Dataset already, else a Dataset of the mapping."""
        return layers if isinstance(layers, Dataset) else cls(layers)

    # ------------------------------------------------------------------ the mapping
    def __getitem__(self, layer: str) -> gpd.GeoDataFrame:
        return self._layers[layer]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __repr__(self) -> str:
        inside = ", ".join(f"{n}: {len(g)}" for n, g in self._layers.items())
        return f"<Dataset {self.name or ''} {{{inside}}}>".replace("  ", " ")

    def codes(self, layer: str) -> np.ndarray:
        """``layer``'s codes as an array of text (objects), in row order: made once and
        kept (finding features by code then costs a comparison, not a conversion of the
        column: 150,000 cells, 5 ms). Do not modify it."""
        with self._lock:
            found = self._codes.get(layer)
        if found is None:
            found = self._layers[layer]["code"].astype(str).to_numpy(dtype=object)
            with self._lock:
                found = self._codes.setdefault(layer, found)
        return found

    def present(self, names=None) -> list[str]:
        """The layers (of ``names``, default all) that hold at least one feature."""
        return [n for n in (names or self._layers) if n in self._layers and len(self._layers[n])]

    # ------------------------------------------------------------------ CRS policy
    @property
    def metric_crs(self) -> CRS:
        """The local metric CRS every measurement of this dataset is made in (metres)."""
        if self._metric_crs is None:
            filled = [g for g in self._layers.values() if len(g)]
            # An empty dataset measures nothing; Lhasa's zone keeps reports well-formed.
            crs = _choose_metric_crs(*filled) if filled else CRS.from_epsg(4539)
            with self._lock:
                self._metric_crs = self._metric_crs or crs
        return self._metric_crs

    def _copy_in(self, layer: str, crs, key: str) -> gpd.GeoDataFrame:
        with self._lock:
            found = self._projected.get((layer, key))
        if found is None:
            found = to_crs(self._layers[layer], crs)
            with self._lock:
                found = self._projected.setdefault((layer, key), found)
        return found

    def metric(self, layer: str) -> gpd.GeoDataFrame:
        """``layer`` in :attr:`metric_crs` (metres); made once and kept. Do not modify it."""
        return self._copy_in(layer, self.metric_crs, "metric")

    def carry_metric(self, layer: str, before: Dataset) -> gpd.GeoDataFrame:
        """``layer`` in :attr:`metric_crs`, made from dataset ``before`` (the same CRSs)
        where it can be: a feature whose geometry is the very object ``before`` held keeps
        its metric geometry, the others are projected. After a change of a few features
        this costs the change, not the layer."""
        new = self._layers[layer]
        if (
            layer not in before
            or not before.has_metric(layer)
            or before.metric_crs != self.metric_crs
        ):
            return self.metric(layer)
        old, old_metric = before[layer], before.metric(layer)
        if new is old:
            found = old_metric
        else:
            old_geoms = np.asarray(old.geometry.values, dtype=object)
            geoms = np.asarray(new.geometry.values, dtype=object)
            if len(geoms) == len(old_geoms):  # features changed in place (the usual save)
                kept = np.fromiter(map(operator.is_, geoms, old_geoms), bool, len(geoms))
                moved = ~kept
                out = np.asarray(old_metric.geometry.values, dtype=object).copy()
            else:  # features added or removed: found by identity wherever they went
                known = dict(zip(map(id, old_geoms), np.asarray(old_metric.geometry.values)))
                moved = np.array([id(g) not in known for g in geoms], dtype=bool)
                out = np.array([known.get(id(g)) for g in geoms], dtype=object)
            if moved.any():
                out[moved] = to_crs(
                    new.iloc[np.flatnonzero(moved)], self.metric_crs
                ).geometry.values
            found = new.set_geometry(gpd.array.from_shapely(out, crs=self.metric_crs))
        with self._lock:
            return self._projected.setdefault((layer, "metric"), found)

    def has_metric(self, layer: str) -> bool:
        """Whether ``layer``'s metric copy is made already."""
        with self._lock:
            return (layer, "metric") in self._projected

    def lonlat(self, layer: str) -> gpd.GeoDataFrame:
        """``layer`` in WGS 84 longitude/latitude (EPSG:4326, for GeoJSON and the map)."""
        return self._copy_in(layer, "EPSG:4326", "lonlat")

    # ------------------------------------------------------------------ derived datasets
    def subset(self, layers: Mapping[str, gpd.GeoDataFrame] | None = None, **replace) -> Dataset:
        """A dataset of other frames (e.g. one neighbourhood, or a layer as changed) that
        keeps this one's metric CRS, so that its measurements compare with this one's."""
        frames = dict(self._layers if layers is None else layers)
        frames.update(replace)
        return Dataset(frames, metric_crs=self.metric_crs, name=self.name)

    def population(self) -> str | None:
        """The layer holding the finest household data present: household points, else
        building footprints with households; None when there is neither (figures are then
        spread by area from the grid cells)."""
        return next((n for n in population_kinds() if n in self.present()), None)
