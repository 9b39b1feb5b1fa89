"""Extract users' zip archives without letting them escape or exhaust the machine.

A member may not name an absolute path, a drive, ``..`` or a symbolic link; the archive
may not hold too many members, too many bytes, or compress suspiciously well (a zip bomb).
Sizes are counted while extracting, not trusted from the archive's own header.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from layers.errors import InputError

__all__ = ["ZipLimits", "safe_extract"]


@dataclass(frozen=True)
class ZipLimits:
    """Limits on an uploaded archive. Sizes in bytes."""

    max_members: int = 1000
    max_total_bytes: int = 2 * 1024**3
    max_ratio: float = 200.0
    # Below this size a member may compress as well as it likes (tiny files often do).
    ratio_floor_bytes: int = 1024**2


def _member_target(dest: Path, info: zipfile.ZipInfo) -> Path:
    name = info.filename.replace("\\", "/")
    p = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in p.parts:
        raise InputError(
            f"the archive member '{info.filename}' points outside the archive "
            "(absolute path or '..'); refusing to extract it",
            zh=f"压缩包中的“{info.filename}”指向压缩包之外（绝对路径或“..”）；拒绝解压",
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise InputError(
            f"the archive member '{info.filename}' is a symbolic link; refusing",
            zh=f"压缩包中的“{info.filename}”是符号链接；拒绝解压",
        )
    target = (dest / Path(*p.parts)).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise InputError(
            f"the archive member '{info.filename}' points outside the archive",
            zh=f"压缩包中的“{info.filename}”指向压缩包之外；拒绝解压",
        )
    return target


def safe_extract(
    archive: str | os.PathLike, dest: str | os.PathLike, limits: ZipLimits = ZipLimits()
) -> list[Path]:
    """Extract ``archive`` into the existing folder ``dest``; return the files written."""
    dest = Path(dest)
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as err:
        raise InputError(
            f"{Path(archive).name} is not a readable zip archive ({err})",
            zh=f"{Path(archive).name} 不是可读取的 zip 压缩包（{err}）",
        ) from None
    written = []
    total = 0
    with zf:
        members = zf.infolist()
        if len(members) > limits.max_members:
            raise InputError(
                f"the archive holds {len(members)} members; at most "
                f"{limits.max_members} are accepted",
                zh=f"压缩包含 {len(members)} 个文件；最多接受 {limits.max_members} 个",
            )
        for info in members:
            target = _member_target(dest, info)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            with zf.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    size += len(chunk)
                    total += len(chunk)
                    if total > limits.max_total_bytes:
                        raise InputError(
                            f"the archive unpacks to more than {limits.max_total_bytes:,} bytes; "
                            "refusing (split it or raise the limit)",
                            zh=f"压缩包解压后超过 {limits.max_total_bytes:,} 字节；拒绝（请拆分）",
                        )
                    if size > limits.ratio_floor_bytes and size > limits.max_ratio * max(
                        info.compress_size, 1
                    ):
                        raise InputError(
                            f"the archive member '{info.filename}' expands more than "
                            f"{limits.max_ratio:g} times; refusing a likely zip bomb",
                            zh=f"压缩包中的“{info.filename}”解压后膨胀超过 {limits.max_ratio:g} "
                            "倍；疑似压缩炸弹，拒绝",
                        )
                    out.write(chunk)
            written.append(target)
    return written
