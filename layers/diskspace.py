"""A write that fails for want of disk space says "disk full", and nothing else.

When the disk fills during a GeoPackage write, GDAL does not say so: SQLite's "database
or disk is full" is swallowed, and what surfaces is a later, misleading error ("Layer grid
already exists, CreateLayer failed. Use the layer creation option OVERWRITE=YES …").
:func:`writing` turns any failure of a write into a :class:`~geo.errors.DiskFull` when
the disk is out of room for it (an ``ENOSPC`` error, or less space free than the write
needs) and into a plain :class:`~geo.errors.StorageError` otherwise; the library's own
text stays in the exception chain, not in the message.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from layers.errors import DiskFull, GridmapError, StorageError

__all__ = ["estimated_bytes", "free_bytes", "writing"]


# A GeoPackage's own tables and SQLite's journal take this much beyond the data.
_OVERHEAD = 256 * 1024


def estimated_bytes(gdf: gpd.GeoDataFrame) -> int:
    """A rough size of ``gdf`` written to a GeoPackage: coordinates, attributes, index,
    and the file's own tables."""
    coords = int(np.sum(shapely.get_num_coordinates(gdf.geometry.values)))
    return _OVERHEAD + 16 * coords + 64 * len(gdf) * max(len(gdf.columns), 1)


def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.1f} MB" if n >= 1024**2 else f"{n / 1024:,.0f} KB"


@contextmanager
def writing(path: str | os.PathLike, layer: str, need: int) -> Iterator[None]:
    """Around a write of ``layer`` into the dataset file ``path`` that needs about
    ``need`` bytes free: failures come out as DiskFull or StorageError, in both languages."""
    try:
        yield
    except GridmapError:
        raise
    except Exception as err:
        free = free_bytes(path)
        full = getattr(err, "errno", None) == errno.ENOSPC or free < need
        if full:
            raise DiskFull(
                f"disk full: the disk holding {path} has {_mb(free)} free, and writing layer "
                f"'{layer}' needs about {_mb(need)}; nothing was written and the dataset is "
                "unchanged. Fix: free some space (or store the dataset on another disk) and "
                "try again",
                zh=f"磁盘已满：{path} 所在磁盘仅剩 {_mb(free)}，写入图层 '{layer}' 约需 {_mb(need)}；"
                "未写入任何内容，数据集保持不变。修正：清理磁盘空间（或将数据集放到其他磁盘）后重试",
            ) from err
        raise StorageError(
            f"writing layer '{layer}' into {path} failed; nothing was written and the dataset "
            "is unchanged",
            zh=f"写入图层 '{layer}' 到 {path} 失败；未写入任何内容，数据集保持不变",
        ) from err
