"""Private working folders for imports, and the removal of those a killed import left.

An import unpacks an archive (or links a shapefile's parts) into a folder of its own in
the system's temporary directory, named ``gridmap-import-<pid>-<random>``, and removes it
when it ends, however it ends. A process killed outright (SIGKILL, a power cut) cannot
clean up, so every import first removes the folders whose process is gone and which have
not been touched for :data:`STALE_AFTER` seconds (the age guards a folder of an import
running in another PID namespace sharing the directory).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PREFIX", "STALE_AFTER", "import_folder", "remove_stale"]

PREFIX = "gridmap-import-"
#: Seconds since a dead import's folder last changed before it is removed.
STALE_AFTER = 15 * 60
#: Folders of older versions carry no process id: removed when this old.
_UNOWNED_AFTER = 24 * 3600
_NAME = re.compile(re.escape(PREFIX) + r"(\d+)-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale(
    parent: str | os.PathLike | None = None, *, older_than: float = STALE_AFTER
) -> list[Path]:
    """Remove the import folders in ``parent`` (the system's temporary directory by
    default) whose process has ended and that are older than ``older_than`` seconds;
    return those removed."""
    parent = Path(parent or tempfile.gettempdir())
    now = time.time()
    removed = []
    for folder in parent.glob(PREFIX + "*"):
        try:
            age = now - folder.lstat().st_mtime
        except FileNotFoundError:
            continue
        if not folder.is_dir() or folder.is_symlink():
            continue
        match = _NAME.match(folder.name)
        if match:
            pid = int(match.group(1))
            stale = pid != os.getpid() and age > older_than and not _alive(pid)
        else:
            stale = age > max(older_than, _UNOWNED_AFTER)
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextmanager
def import_folder(parent: str | os.PathLike | None = None) -> Iterator[Path]:
    """A new private folder for one import, removed when the block ends; stale folders of
    killed imports are removed first."""
    remove_stale(parent)
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
