"""A user's zip cannot write outside its folder or exhaust disk and memory."""

import stat
import zipfile

import pytest

from layers.errors import InputError
from layers.readers import read_layer_file
from layers.safezip import ZipLimits, safe_extract


def _zip(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            if isinstance(name, zipfile.ZipInfo):
                z.writestr(name, data)
            else:
                z.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "name", ["../evil.txt", "a/../../evil.txt", "/tmp/evil.txt", "..\\evil.txt", "C:/evil.txt"]
)
def test_members_escaping_the_folder_are_refused(tmp_path, name):
    dest = tmp_path / "out"
    dest.mkdir()
    archive = _zip(tmp_path / "bad.zip", [(name, b"x")])
    with pytest.raises(InputError, match="outside the archive"):
        safe_extract(archive, dest)
    assert not (tmp_path / "evil.txt").exists()
    assert not any(p.name == "evil.txt" for p in tmp_path.rglob("*") if p.is_file())


def test_symbolic_links_are_refused(tmp_path):
    info = zipfile.ZipInfo("link.shp")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = _zip(tmp_path / "link.zip", [(info, "/etc/passwd")])
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match="symbolic link"):
        safe_extract(archive, tmp_path / "out")


def test_too_many_members(tmp_path):
    archive = _zip(tmp_path / "many.zip", [(f"f{i}.txt", b"x") for i in range(11)])
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match="11 members; at most 10"):
        safe_extract(archive, tmp_path / "out", ZipLimits(max_members=10))


def test_zip_bomb_is_stopped_by_ratio_while_extracting(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", [("grid.dbf", b"\0" * (20 * 1024**2))])
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match="expands more than 200 times"):
        safe_extract(archive, tmp_path / "out")
    # extraction stopped early: far less than the 20 MiB was written
    assert (tmp_path / "out" / "grid.dbf").stat().st_size < 5 * 1024**2


def test_total_size_limit(tmp_path):
    archive = _zip(
        tmp_path / "big.zip", [(f"f{i}.bin", bytes(range(256)) * 4096) for i in range(3)]
    )
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match="more than 2,000,000 bytes"):
        safe_extract(archive, tmp_path / "out", ZipLimits(max_total_bytes=2_000_000))


def test_import_of_unsafe_zip_names_the_problem(tmp_path):
    archive = _zip(tmp_path / "grid.zip", [("../grid.shp", b"x")])
    with pytest.raises(InputError, match="'../grid.shp' points outside"):
        read_layer_file(archive, "grid")


def test_not_a_zip(tmp_path):
    p = tmp_path / "x.zip"
    p.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable zip"):
        read_layer_file(p, "grid")
