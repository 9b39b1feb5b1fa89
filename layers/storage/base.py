"""The storage interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import geopandas as gpd
import pandas as pd
import shapely

from layers.errors import StorageError
from layers.schema import LAYERS, conform
from layers.storage.edits import Version

__all__ = ["LayerStore"]


class LayerStore(ABC):
    """A dataset: named layers, each a GeoDataFrame in a geographic CRS.

    Writes replace a whole layer atomically: a reader sees the old layer or the new one,
    and a writer killed half way leaves the old one intact. Edits (:meth:`edit`) write only
    the features they change, with the same guarantee.
    """

    #: Human-readable location (file path or URL without password).
    location: str

    @abstractmethod
    def list_layers(self) -> list[str]:
        """Names of the gridmap layers present, in schema order."""

    @abstractmethod
    def _read(self, layer: str) -> gpd.GeoDataFrame: ...

    @abstractmethod
    def _write(
        self, layer: str, gdf: gpd.GeoDataFrame, record: dict | None, unchanged_since: int | None
    ) -> int | None:
        """Replace ``layer`` by ``gdf`` (see :meth:`write_layer`)."""

    @abstractmethod
    def _delete(self, layer: str, record: dict | None, unchanged_since: int | None) -> int | None:
        """Remove ``layer`` (see :meth:`delete_layer`)."""

    @abstractmethod
    def layer_before(self, revision: int) -> gpd.GeoDataFrame | None:
        """The layer as it was before the whole-layer write recorded as ``revision`` (None:
        there was no such layer); StorageError if that revision kept none."""

    def delete_layer(
        self, layer: str, *, record: dict | None = None, unchanged_since: int | None = None
    ) -> int | None:
        """Remove a layer (atomically); missing layers are ignored. ``record`` and
        ``unchanged_since`` as for :meth:`write_layer`."""
        if layer not in self.list_layers():
            return None
        return self._delete(layer, record, unchanged_since)

    @abstractmethod
    def edit(self):
        """Context manager yielding an :class:`layers.storage.edits.Edit`: reads and writes
        of layers, revisions and users that commit together or not at all."""

    @abstractmethod
    def revisions(self, layer: str, code: str | None = None) -> list[dict]:
        """Revisions recorded for a layer or one feature, oldest first."""

    @abstractmethod
    def revisions_since(self, revision: int) -> list[dict]:
        """Every layer's revisions with an id above ``revision``, oldest first: what was
        committed after the dataset stood at that revision (to show it without reading
        the layers again)."""

    @abstractmethod
    def version(self) -> Version:
        """Where the dataset stands now (:class:`layers.storage.edits.Version`)."""

    @abstractmethod
    def users(self) -> dict[str, dict]:
        """The service's accounts: ``{name: {"role", "password_hash"}}``."""

    def read_layer(self, layer: str) -> gpd.GeoDataFrame:
        """One layer as a GeoDataFrame; StorageError naming the layers present if absent."""
        if layer not in self.list_layers():
            present = ", ".join(self.list_layers()) or "no layers"
            raise StorageError(
                f"{self.location} has no layer '{layer}'; it has {present}",
                zh=f"{self.location} 中没有图层“{layer}”；已有：{present}",
            )
        return self._read(layer)

    def read_region(self, layer: str, bounds) -> gpd.GeoDataFrame:
        """The features of ``layer`` whose bounding boxes meet ``bounds`` (lon_min, lat_min,
        lon_max, lat_max in the layer's geographic CRS): what one part of a partitioned
        check reads. Backends read only those from storage; this default reads the layer."""
        gdf = self.read_layer(layer)
        return gdf.iloc[gdf.sindex.query(shapely.box(*bounds))].sort_index()

    def vector_tile(
        self,
        layer: str,
        z,
        x,
        y,
        columns,
        extent: int,
        buffer: int,
        ids_are_codes=False,
        metric_srid: int | None = None,
    ):
        """Tile ``z/x/y`` (WebMercatorQuad) of ``layer`` as a Mapbox Vector Tile built by
        the storage itself, with the stored ``columns`` it has (and those of the theme
        figures it can compute: areas in ``metric_srid``, the dataset's metric CRS) and
        ``id`` (the feature id the service gives: its code, ``code.1``… where codes
        repeat), and the number of features in it; None when the storage builds no tiles
        (the service then encodes them: :mod:`geo.tiles`)."""
        return None

    def read_codes(self, layer: str) -> pd.Series:
        """The ``code`` of every feature of ``layer`` (no geometry), in storage order."""
        return self.read_layer(layer)["code"]

    def write_layer(
        self,
        layer: str,
        gdf: gpd.GeoDataFrame,
        *,
        record: dict | None = None,
        unchanged_since: int | None = None,
    ) -> int | None:
        """Replace ``layer`` with ``gdf`` after checking it against the layer schema.

        The layer must be in a geographic CRS (EPSG:4490 or EPSG:4326 by convention).
        With ``record`` (who, when, why: ``author``, ``at``, ``reason``) the write is
        recorded in the same transaction as one revision of the layer as a whole, with the
        layer as it was kept beside it (:func:`layers.storage.edits.whole_revision`,
        :meth:`layer_before`), and the revision's id is returned; with ``unchanged_since``
        it is refused (StaleEdit) if the layer has a revision after that one.
        """
        if layer not in LAYERS:
            raise StorageError(
                f"'{layer}' is not a gridmap layer; must be one of {', '.join(LAYERS)}",
                zh=f"“{layer}”不是 gridmap 的图层；可用：{', '.join(LAYERS)}",
            )
        if gdf.crs is None:
            raise StorageError(
                f"layer '{layer}' has no CRS; set one before storing it",
                zh=f"图层 {layer} 没有坐标系；保存前请设定",
            )
        if not gdf.crs.is_geographic:
            raise StorageError(
                f"layer '{layer}' is in projected {gdf.crs.to_string()}; store "
                "geographic coordinates: gdf.to_crs(gdf.crs.geodetic_crs)",
                zh=f"图层 {layer} 为投影坐标系 {gdf.crs.to_string()}；请以经纬度保存",
            )
        return self._write(layer, conform(gdf, layer), record, unchanged_since)

    def latest_revisions(self, layer: str) -> dict[str, int]:
        """``{code: id of the last revision that changed it}`` for every edited feature."""
        return {r["code"]: r["id"] for r in self.revisions(layer)}

    def load(self, layers: list[str] | None = None) -> dict[str, gpd.GeoDataFrame]:
        """The dataset as ``{layer name: GeoDataFrame}`` (all layers present by default)."""
        return {name: self._read(name) for name in (layers or self.list_layers())}

    @staticmethod
    def _ordered(names) -> list[str]:
        return [n for n in LAYERS if n in set(names)]
