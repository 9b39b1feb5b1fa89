"""Generalised low zooms kept on disk between runs (layers/overviews.py)."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import shapely

import geo.tiles
from geo.tiles import BANDS, EXACT_FROM, TMS, TileLayer
from layers.editing import update_feature
from layers.overviews import Overviews
from tests.conftest import SAMPLE
from tests.tilings import add_noise, hierarchy
from web.catalog import Catalog


@pytest.fixture(scope="module")
def noisy_city():
    _, _, grids = hierarchy(1200, seed=5)
    return add_noise(grids, seed=5).to_crs(4326)


def _layer(city, kept=None) -> TileLayer:
    return TileLayer.from_lonlat("grid", city, city["code"], city["code"], kept=kept)


def _no_generalising(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("generalised again: the kept overview was not taken")

    monkeypatch.setattr(geo.tiles, "generalise", refuse)


def test_a_kept_generalisation_is_taken_as_made_and_only_for_its_geometry(
    noisy_city, tmp_path, monkeypatch
):
    made = _layer(noisy_city)
    made.generalised()
    kept = Overviews(tmp_path)
    kept.save(made.generalisation_key(), made.groups, made.bands)
    # the three bands of these small cells are one geometry: written once
    assert len(list(tmp_path.glob("*.overview.npz"))) == 1

    _no_generalising(monkeypatch)
    again = _layer(noisy_city, kept=kept.load)
    assert again.key == made.key
    assert (again.groups == made.groups).all()
    for b in BANDS:
        assert shapely.equals_exact(again.bands[b], made.bands[b], 0.0).all()
    assert again.tile(11, *_tile_of(again, 11)) == made.tile(11, *_tile_of(made, 11))

    # one vertex moved by a millimetre: another layer, nothing taken
    moved = noisy_city.copy()
    g = moved.geometry.iloc[7]
    xy = shapely.get_coordinates(g)
    xy[1] += 1e-8
    moved.loc[moved.index[7], "geometry"] = shapely.set_coordinates(g, xy)
    other = _layer(moved, kept=kept.load)
    assert other.key != made.key and not other.bands


def _tile_of(layer: TileLayer, z: int) -> tuple[int, int]:
    """The tile of zoom ``z`` holding the centre of the layer's first feature."""
    from pyproj import Transformer

    x, y = shapely.get_coordinates(shapely.centroid(layer.geoms[:1]))[0]
    t = TMS.tile(*Transformer.from_crs(3857, 4326, always_xy=True).transform(x, y), z)
    return t.x, t.y


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other layer"])
def test_a_damaged_or_foreign_file_counts_as_missing_and_is_removed(noisy_city, tmp_path, damage):
    made = _layer(noisy_city)
    made.generalised()
    kept = Overviews(tmp_path)
    key = made.generalisation_key()
    kept.save(key, made.groups, made.bands)
    (path,) = tmp_path.glob("*.overview.npz")
    if damage == "garbage":
        path.write_bytes(b"not an overview")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:  # a file of another layer under this name
        kept.save(key, made.groups[:10], {b: g[:10] for b, g in made.bands.items()})
    assert kept.load(key, len(made)) is None
    assert not path.exists()
    assert not _layer(noisy_city, kept=kept.load).bands


def test_the_directory_keeps_to_its_budget_least_recently_used_first(tmp_path):
    squares = np.array([shapely.box(i, 0, i + 1, 1) for i in range(200)])
    groups = np.zeros(200, dtype=np.int64)
    kept = Overviews(tmp_path)
    for k in "abc":
        kept.save(k * 64, groups, {12: squares})
    size = (tmp_path / f"{'a' * 64}.overview.npz").stat().st_size
    assert kept.load("a" * 64, 200) is not None  # used: "b" is now the oldest
    kept.budget = 2 * size
    kept.prune()
    names = sorted(p.name[:1] for p in tmp_path.glob("*.overview.npz"))
    assert names == ["a", "c"]
    # what killed writers left half written goes once it is an hour old, not before
    old, new = tmp_path / ".writing-old.npz", tmp_path / ".writing-new.npz"
    for p in (old, new):
        p.write_bytes(b"half")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    kept.prune()
    assert not old.exists() and new.exists()
    with pytest.raises(ValueError):
        kept.load("../../etc/passwd", 1)


def test_a_restart_takes_the_generalisation_of_the_layer_as_saved(tmp_path, monkeypatch):
    """Served, generalised, one cell saved: once saves pause, the generalisation of the
    saved layer is kept, and a new start on the same dataset takes it (nothing is
    generalised again) and draws the same low-zoom tiles."""
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    kept = Overviews(tmp_path / "overviews")
    first = Catalog(str(path), overviews=kept)
    grid = first.collections["grid"]
    first.tiles.layer("grid", grid)
    assert first.tiles.settled(120)
    assert len(list(kept.directory.glob("*.overview.npz"))) == 1

    code = "540102001001002"
    i = int(grid.by_code(code)[0])
    feature = json.loads(grid.feature(i))
    xy = np.asarray(feature["geometry"]["coordinates"][0])
    xy[1:-1] += 2e-5  # its inner vertices moved by about 2 m
    feature["geometry"]["coordinates"][0] = xy.tolist()
    feature["properties"] = {}
    update_feature(
        first.store, "grid", code, feature, base_revision=first.revisions().get(code, 0),
        author="ana", reason="survey", accepted="the new line", served=first,
    )  # fmt: skip
    saved = first.tiles.layer("grid", first.collections["grid"])
    assert saved.dirty  # its group is generalised again once saves pause
    assert first.tiles.settled(120) and not saved.dirty
    assert len(list(kept.directory.glob("*.overview.npz"))) == 2

    _no_generalising(monkeypatch)
    second = Catalog(str(path), overviews=kept)
    restarted = second.tiles.layer("grid", second.collections["grid"])
    assert restarted.key == saved.generalisation_key()
    assert (restarted.groups == saved.groups).all()
    z = EXACT_FROM - 1
    for x, y in [_tile_of(saved, z)]:
        assert restarted.tile(z, x, y) == saved.tile(z, x, y)
