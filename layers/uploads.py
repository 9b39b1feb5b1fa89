"""Files uploaded from the browser, kept while the user maps, previews and commits them.

An upload is one or more files (a zipped shapefile, a GeoPackage, or a shapefile's
parts chosen together) saved in a private folder of its own, named by a random id, owned
by the user who sent it: another user cannot read, commit or remove it. An upload is
removed when committed, when its owner drops it, or :data:`KEEP_FOR` seconds after it
was sent; a user keeps at most :data:`PER_USER` at once (the oldest goes first).

Names are kept as the user gave them (Chinese included) but only as names: no folder,
no leading dot, no character a file system would read as a path.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from geo.errors import InputError, NotFound, TooLarge
from layers.readers import SUPPORTED_SUFFIXES

__all__ = ["KEEP_FOR", "PER_USER", "Upload", "UploadArea", "safe_name"]

#: Seconds an upload is kept before it is removed uncommitted.
KEEP_FOR = 3600.0
#: Uploads one user keeps at once.
PER_USER = 4
# a shapefile's parts, chosen together in the browser
_PARTS = {".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".qmd", ".xml"}
_UNSAFE = re.compile(r'[\x00-\x1f/\\:*?"<>|]')


def safe_name(name: str) -> str:
    """A user's file name as a plain name in one folder.

    >>> safe_name("../../etc/社区 边界.shp"), safe_name(".hidden.csv"), safe_name("a\\\\b:c.zip")
    ('社区 边界.shp', 'hidden.csv', 'b_c.zip')
    """
    base = re.split(r"[/\\]", str(name))[-1]
    base = _UNSAFE.sub("_", base).lstrip(". ").strip()
    stem, dot, suffix = base.rpartition(".")
    if dot and len(base) > 120:
        base = stem[: 119 - len(suffix)] + "." + suffix
    return base[:120] or "upload"


@dataclass(frozen=True)
class Upload:
    """One upload: its id, owner, folder, the data file to read, and when it came."""

    id: str
    owner: str
    folder: Path
    path: Path
    at: float

    @property
    def name(self) -> str:
        return self.path.name


class UploadArea:
    """The uploads of one service, in a private folder (``root``; a new temporary one by
    default, removed with the service)."""

    def __init__(self, root: str | os.PathLike | None = None, *, keep_for: float = KEEP_FOR,
                 per_user: int = PER_USER):  # fmt: skip
        self.root = Path(root or tempfile.mkdtemp(prefix="gridmap-uploads-"))
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keep_for, self.per_user = keep_for, per_user
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()

    def put(self, owner: str, files: list[tuple[str, object]], max_bytes: int) -> Upload:
        """Save ``files`` (``(name, binary stream)``) as one upload of ``owner``; at most
        ``max_bytes`` in all (:class:`~geo.errors.TooLarge`, nothing kept, beyond)."""
        self.expire()
        if not files:
            raise InputError("choose a file to upload", zh="请选择要上传的文件")
        uid = secrets.token_urlsafe(12)
        folder = self.root / uid
        folder.mkdir(mode=0o700)
        try:
            names, total = [], 0
            for name, stream in files:
                name = safe_name(name)
                if name in names:
                    raise InputError(f"two files are named {name}", zh=f"有两个文件都名为 {name}")
                with open(folder / name, "wb") as out:
                    while chunk := stream.read(1 << 20):
                        total += len(chunk)
                        if total > max_bytes:
                            raise TooLarge(
                                f"the upload is over {max_bytes:,} bytes; nothing was kept",
                                zh=f"上传文件超过 {max_bytes:,} 字节；未保存",
                            )
                        out.write(chunk)
                names.append(name)
            upload = Upload(uid, owner, folder, folder / _data_file(names), time.time())
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        with self._lock:
            mine = sorted((u for u in self._uploads.values() if u.owner == owner),
                          key=lambda u: u.at)  # fmt: skip
            for old in mine[: max(0, len(mine) - self.per_user + 1)]:
                self._remove(old.id)
            self._uploads[uid] = upload
        return upload

    def get(self, owner: str, uid: str) -> Upload:
        """``owner``'s upload ``uid``; :class:`~geo.errors.NotFound` if there is none (it
        expired, was committed, or is someone else's)."""
        self.expire()
        with self._lock:
            upload = self._uploads.get(uid)
        if upload is None or upload.owner != owner:
            raise NotFound(
                f"no upload {uid}: it was committed, removed or kept too long "
                f"(uploads are kept {self.keep_for / 60:.0f} minutes); upload the file again",
                zh=f"没有上传 {uid}：已提交、已删除或已过期（上传文件保留 {self.keep_for / 60:.0f} "
                "分钟）；请重新上传",
            )
        return upload

    def drop(self, owner: str, uid: str) -> None:
        """Remove ``owner``'s upload ``uid``."""
        self.get(owner, uid)
        with self._lock:
            self._remove(uid)

    def expire(self) -> None:
        """Remove the uploads kept longer than ``keep_for``."""
        now = time.time()
        with self._lock:
            for uid in [u.id for u in self._uploads.values() if now - u.at > self.keep_for]:
                self._remove(uid)

    def _remove(self, uid: str) -> None:
        upload = self._uploads.pop(uid, None)
        if upload is not None:
            shutil.rmtree(upload.folder, ignore_errors=True)


def _data_file(names: list[str]) -> str:
    """Which of an upload's files holds the data: the one a reader starts from (a
    shapefile's .shp among its parts)."""
    data = [n for n in names if Path(n).suffix.lower() in SUPPORTED_SUFFIXES]
    extra = [n for n in names if n not in data and Path(n).suffix.lower() not in _PARTS]
    if extra:
        raise InputError(
            f"{', '.join(extra)}: not a file gridmap reads (it reads "
            f"{', '.join(SUPPORTED_SUFFIXES)} and a shapefile's parts)",
            zh=f"{'、'.join(extra)}：gridmap 不读取此类文件（可读取 {'、'.join(SUPPORTED_SUFFIXES)} "
            "及 shapefile 的各组成文件）",
        )
    if len(data) != 1:
        raise InputError(
            "send one data file (a .zip holding a shapefile, a .gpkg, .geojson, .csv or "
            f".xlsx), or a shapefile's parts together; got {', '.join(names) or 'none'}",
            zh="请上传一个数据文件（含 shapefile 的 .zip、.gpkg、.geojson、.csv 或 .xlsx），"
            f"或同时上传 shapefile 的各组成文件；收到：{'、'.join(names) or '无'}",
        )
    return data[0]
