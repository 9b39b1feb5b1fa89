"""A dataset as spatially partitioned GeoParquet: the exchange format of the check of a
province or a nation part by part (:mod:`geo.partitioned`).

``python -m layers export DATASET --geoparquet DIR`` writes one folder per layer, each a
set of GeoParquet files holding features close together in space (dask-geopandas'
Hilbert shuffle), every file with its bounding box in its GeoParquet metadata. A worker
checking one part reads only the files whose boxes meet its part (:meth:`read_region`),
never the dataset. The folder is read-only to gridmap: it is made from a dataset and checked,
not edited.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq
import shapely

from layers.errors import StorageError
from layers.schema import LAYERS

__all__ = ["export_geoparquet", "GeoParquetDataset", "is_geoparquet"]

#: Features per GeoParquet file (a part reads the files its box meets).
ROWS_PER_FILE = 20_000
#: Files a reader keeps once read (about 20 MB each at 20,000 grid cells).
FILES_KEPT = 8


def export_geoparquet(store, directory, *, rows_per_file: int = ROWS_PER_FILE) -> list[str]:
    """Write every layer of ``store`` into ``directory`` (one folder per layer, spatially
    partitioned GeoParquet files). Returns the layers written. The folder is replaced."""
    import dask_geopandas

    out = Path(directory)
    if out.exists() and not is_geoparquet(out) and any(out.iterdir()):
        raise StorageError(
            f"{out} exists and is not a gridmap GeoParquet folder; not replaced",
            zh=f"{out} 已存在，且不是 gridmap 的 GeoParquet 文件夹；未覆盖",
        )
    tmp = out.with_name(f".{out.name}.writing")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    written = []
    for name in store.list_layers():
        gdf = store.read_layer(name)
        if not len(gdf):
            continue
        parts = max(1, math.ceil(len(gdf) / rows_per_file))
        frame = dask_geopandas.from_geopandas(gdf, npartitions=parts)
        if parts > 1:
            frame = frame.spatial_shuffle(by="hilbert", npartitions=parts)
        frame.to_parquet(tmp / name, write_index=False)
        written.append(name)
    (tmp / "gridmap.json").write_text(json.dumps({"layers": written}), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return written


def is_geoparquet(path) -> bool:
    """Whether ``path`` is a folder written by :func:`export_geoparquet`."""
    return Path(path).is_dir() and (Path(path) / "gridmap.json").is_file()


class GeoParquetDataset:
    """The reading side of a store (``list_layers``, ``read_layer``, ``read_region``,
    ``read_codes``, ``load``) over a folder of :func:`export_geoparquet`."""

    def __init__(self, directory):
        self.path = Path(directory)
        if not is_geoparquet(self.path):
            raise StorageError(
                f"{self.path} is not a GeoParquet folder written by gridmap",
                zh=f"{self.path} 不是 gridmap 写出的 GeoParquet 文件夹",
            )
        self.location = str(self.path)
        meta = json.loads((self.path / "gridmap.json").read_text(encoding="utf-8"))
        self._layers = [n for n in LAYERS if n in meta["layers"]]
        self._boxes: dict[str, list[tuple[Path, tuple]]] = {}
        # neighbouring parts read the same files: the last few files read are kept
        self._read_file = functools.lru_cache(maxsize=FILES_KEPT)(gpd.read_parquet)

    def list_layers(self) -> list[str]:
        return list(self._layers)

    def version(self) -> int:
        """When the folder was written (ns): a rewritten folder is another dataset."""
        return (self.path / "gridmap.json").stat().st_mtime_ns

    def _files(self, layer: str) -> list[Path]:
        if layer not in self._layers:
            present = ", ".join(self._layers) or "no layers"
            raise StorageError(
                f"{self.location} has no layer '{layer}'; it has {present}",
                zh=f"{self.location} 中没有图层“{layer}”；已有：{present}",
            )
        return sorted((self.path / layer).glob("*.parquet"))

    def _file_boxes(self, layer: str) -> list[tuple[Path, tuple]]:
        """Each file of ``layer`` with the bounding box its GeoParquet metadata records."""
        if layer not in self._boxes:
            boxes = []
            for f in self._files(layer):
                geo = json.loads(pq.read_metadata(f).metadata[b"geo"])
                column = geo["columns"][geo["primary_column"]]
                boxes.append((f, tuple(column.get("bbox") or (-180, -90, 180, 90))))
            self._boxes[layer] = boxes
        return self._boxes[layer]

    def read_layer(self, layer: str) -> gpd.GeoDataFrame:
        frames = [gpd.read_parquet(f) for f in self._files(layer)]
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)

    def read_region(self, layer: str, bounds) -> gpd.GeoDataFrame:
        """The features whose boxes meet ``bounds``, from the files whose boxes meet it."""
        area = shapely.box(*bounds)
        files = [f for f, b in self._file_boxes(layer) if shapely.box(*b).intersects(area)]
        if not files:
            empty = gpd.read_parquet(self._files(layer)[0]).iloc[:0]
            return empty.reset_index(drop=True)
        frames = [self._read_file(f) for f in files]
        frame = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
        return frame.iloc[frame.sindex.query(area)].sort_index().reset_index(drop=True)

    def read_codes(self, layer: str) -> pd.Series:
        return pd.concat(
            [pd.read_parquet(f, columns=["code"])["code"] for f in self._files(layer)],
            ignore_index=True,
        )

    def load(self, layers=None) -> dict[str, gpd.GeoDataFrame]:
        return {n: self.read_layer(n) for n in (layers or self._layers)}
