"""Datasets as a whole: import a file into one, describe its layers."""

from __future__ import annotations

import getpass
import os

import geopandas as gpd

from geo.crs import metric_crs
from geo.summary import summarise_layer
from layers.importing import dataset_crs, import_layer
from layers.readers import ImportReport, read_layer_file
from layers.storage import LayerStore

__all__ = ["import_file", "dataset_crs", "summarise"]


def _who() -> str:
    """The user running the command line, as revisions name an author."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password file
        return "command line"


def import_file(
    store: LayerStore,
    path: str | os.PathLike,
    layer: str,
    *,
    mode: str | None = None,
    author: str | None = None,
    reason: str | None = None,
    **options,
) -> tuple[ImportReport, dict]:
    """Read ``path`` as ``layer`` (see :func:`layers.readers.read_layer_file` for options)
    and bring it into ``store`` by ``mode`` (replace, append or update; required when the
    layer already holds features), as one change with a revision per feature it changes
    (:func:`layers.importing.import_layer`). A dataset keeps one CRS: the new layer is
    brought to the CRS of the layers already there. Nothing is written if anything is
    wrong. Returns the reader's report and what the change did."""
    gdf, report = read_layer_file(path, layer, **options)
    target = dataset_crs(store)
    if target is not None and not gdf.crs.equals(target):
        gdf = gdf.to_crs(target)
        report.note(
            f"converted to the dataset's CRS {target.to_string()}",
            f"已转换为数据集的坐标系 {target.to_string()}",
        )
        report.crs = target.to_string()
    done = import_layer(
        store,
        layer,
        gdf,
        mode=mode,
        author=author or _who(),
        reason=reason or f"imported from {report.source}",
        given=report.given(),
    )
    return report, done


def summarise(layers: dict[str, gpd.GeoDataFrame]) -> dict:
    """``{"metric_crs": ..., "layers": {name: summary}}`` for a loaded dataset."""
    if not layers:
        return {"metric_crs": None, "layers": {}}
    crs = metric_crs(*layers.values())
    return {
        "metric_crs": f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.to_string(),
        "metric_crs_name": crs.name,
        "layers": {name: summarise_layer(gdf, metric_crs=crs) for name, gdf in layers.items()},
    }
