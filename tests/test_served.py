"""The service's copy after saves is the copy a fresh start reads.

A save is spliced into the served copy (only the changed cells are prepared again: their
lon/lat rows, derived properties, GeoJSON, the indexes and themes), which must come out
exactly as building everything again from the stored dataset would: same features in the
same order, same text, ids, ETags, themes and answers.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import pytest
import shapely
from shapely.geometry import mapping

from layers.editing import apply_change, revert_change, update_feature
from tests.conftest import SAMPLE
from web.catalog import Catalog

CELL = "540102001001002"  # a sample cell of 136 households


@pytest.fixture
def catalog(tmp_path):
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    return Catalog(str(path))


def _same(served: Catalog, fresh: Catalog) -> None:
    assert served.version == fresh.version
    assert list(served.collections) == list(fresh.collections)
    for name, a in served.collections.items():
        b = fresh.collections[name]
        a.prepare(range(len(a)))  # the text of every feature, as served
        b.prepare(range(len(b)))
        assert a.heads == b.heads, name
        assert a.geometries == b.geometries, name
        assert list(a.ids) == list(b.ids) and list(a.codes) == list(b.codes), name
        assert list(a.names) == list(b.names), name
        assert (a.revisions is None) == (b.revisions is None), name
        if a.revisions is not None:
            assert a.revisions.tolist() == b.revisions.tolist(), name
        assert a.bounds == pytest.approx(b.bounds, abs=1e-12) and a.queryables == b.queryables
        assert a.derived == b.derived
        pd.testing.assert_frame_equal(
            pd.DataFrame(a.table.drop(columns="geometry")),
            pd.DataFrame(b.table.drop(columns="geometry")),
        )
        assert shapely.equals_exact(a.table.geometry.values, b.table.geometry.values, 0).all()
        box = shapely.box(*a.bounds).centroid.buffer(0.01).bounds
        assert a.query(box).tolist() == b.query(box).tolist()
    assert served.themes == fresh.themes
    for name in served.stored:
        pd.testing.assert_frame_equal(
            pd.DataFrame(served.stored[name]), pd.DataFrame(fresh.stored[name]), check_like=False
        )
    for lon, lat in (
        fresh.layers["grid"]
        .geometry.representative_point()
        .get_coordinates()[::37]
        .itertuples(index=False)
    ):
        assert served.locator.locate(lon, lat) == fresh.locator.locate(lon, lat)


def _feature(catalog: Catalog, code: str) -> dict:
    """The cell as the service serves it (GeoJSON, lon/lat)."""
    grid = catalog.collections["grid"]
    return json.loads(grid.feature(int(grid.by_code(code)[0])))


def _line_across(catalog: Catalog, code: str) -> dict:
    """A north-south line through the cell's centre (lon/lat)."""
    g = catalog.layers["grid"].set_index("code").geometry[code]
    x = g.centroid.x
    return mapping(shapely.LineString([(x, g.bounds[1] - 0.001), (x, g.bounds[3] + 0.001)]))


def test_saves_spliced_in_equal_a_fresh_read(catalog):
    def rev(code):
        return catalog.revisions().get(code, 0)

    # an update of figures and name, which household units show as their parent's name
    feature = _feature(catalog, CELL)
    feature["properties"] = {"households": 141, "name": "新名字"}
    update_feature(
        catalog.store,
        "grid",
        CELL,
        feature,
        base_revision=rev(CELL),
        author="ana",
        reason="survey",
        served=catalog,
    )
    assert catalog.layers["grid"].set_index("code").at[CELL, "households"] == 141
    units = catalog.collections["household_unit"].table
    assert (units.loc[units["parent_code"] == CELL, "parent_name"] == "新名字").all()
    _same(catalog, Catalog(catalog.location))

    # a split adds a cell at the end; a merge of the two removes one
    split = apply_change(
        catalog.store,
        {"op": "split", "code": CELL, "line": _line_across(catalog, CELL)},
        base={CELL: rev(CELL)},
        author="ana",
        reason="too big",
        served=catalog,
    )
    new = split["cells"][1]["code"]
    assert len(catalog.collections["grid"]) == 652
    assert catalog.collections["grid"].codes[-1] == new
    _same(catalog, Catalog(catalog.location))
    merge = apply_change(
        catalog.store,
        {"op": "merge", "codes": [CELL, new]},
        base={CELL: rev(CELL), new: rev(new)},
        author="ana",
        reason="one again",
        served=catalog,
    )
    assert len(catalog.collections["grid"]) == 651
    _same(catalog, Catalog(catalog.location))

    # a revert puts the removed cell back, at the end
    revert_change(catalog.store, merge["change_id"], author="ana", reason="undo", served=catalog)
    assert len(catalog.collections["grid"]) == 652
    assert new in set(catalog.collections["grid"].codes)
    _same(catalog, Catalog(catalog.location))


class _Deferred:
    """The catalog as ``served``, but its commits queued and not yet shown: a burst."""

    def __init__(self, catalog):
        self.catalog = catalog

    def basis(self):
        return self.catalog.basis()

    def planning(self):
        return nullcontext()

    def committing(self):
        return nullcontext()

    def apply(self, saved):
        self.catalog.apply(saved)


def test_a_burst_of_saves_is_shown_in_commit_order(catalog):
    """Several commits queued before one catch-up: each is spliced on the one before."""
    codes = [str(c) for c in catalog.layers["grid"]["code"].drop_duplicates(keep=False)[:5]]
    deferred = _Deferred(catalog)
    for k, code in enumerate([*codes, codes[0]]):
        feature = _feature(catalog, code)
        feature["properties"] = {"households": 1000 + k}
        base = catalog.store.latest_revisions("grid").get(code, 0)
        update_feature(
            catalog.store,
            "grid",
            code,
            feature,
            base_revision=base,
            author="ana",
            reason="survey",
            served=deferred,
        )
    # in the same burst: a split (a cell added at the end) and a merge that removes it
    # again and changes a cell a save before it changed too
    revisions = catalog.store.latest_revisions
    split = apply_change(
        catalog.store,
        {"op": "split", "code": CELL, "line": _line_across(catalog, CELL)},
        base={CELL: revisions("grid").get(CELL, 0)},
        author="ana",
        reason="too big",
        served=deferred,
    )
    new = split["cells"][1]["code"]
    apply_change(
        catalog.store,
        {"op": "merge", "codes": [CELL, new]},
        base={CELL: revisions("grid")[CELL], new: revisions("grid")[new]},
        author="ana",
        reason="one again",
        served=deferred,
    )
    assert len(catalog._pending) == 8
    with catalog._lock:  # as a committer does, once the burst is over
        catalog._catch_up()
    shown = catalog.layers["grid"].set_index("code").loc[codes, "households"]
    assert shown.tolist() == [1005, 1001, 1002, 1003, 1004]
    assert new not in set(catalog.collections["grid"].codes)
    _same(catalog, Catalog(catalog.location))


def test_removing_one_of_two_features_of_a_code_renames_the_other(catalog):
    """The sample holds two cells coded 540102001002001 (ids ``….1`` and ``….2``); a save
    that keeps one leaves it with the plain code as its id, its GeoJSON made again."""
    from layers.editing import Saved
    from layers.storage.edits import Version, now

    dup = "540102001002001"
    grid = catalog.collections["grid"]
    assert list(grid.ids[grid.by_code(dup)]) == [f"{dup}.1", f"{dup}.2"]
    with catalog.committing():
        with catalog.store.edit() as e:
            version = e.version()
            stored = e.read_layer("grid")
            kept = stored[stored["code"] == dup].iloc[:1]
            e.write_features("grid", kept, [dup])
            record = {
                "layer": "grid",
                "code": dup,
                "author": "ana",
                "at": now(),
                "reason": "one of the two",
                "before": None,
                "after": None,
                "change_id": None,
                "accepted": None,
            }
            rid = e.add_revision(record)
        catalog.apply(Saved("grid", kept, [dup], {dup: rid}, version, Version(version.layers, rid)))
    grid = catalog.collections["grid"]
    assert list(grid.ids[grid.by_code(dup)]) == [dup]
    assert f'"id":"{dup}"' in grid.feature(int(grid.by_code(dup)[0]))
    _same(catalog, Catalog(catalog.location))


def test_a_copy_keeps_up_with_another_writer_by_its_revisions(sample_dataset, monkeypatch):
    """Two copies of one dataset, as two worker processes hold it: saves through the
    first (an update, a split, a merge, a revert) are shown by the second from their
    revision records — spliced, the dataset not read again — and it then equals a fresh
    read; a save through the second on a copy behind shows the other's commits first."""
    catalog, other = Catalog(sample_dataset), Catalog(sample_dataset)
    reads = []
    monkeypatch.setattr(other, "_load", lambda: reads.append(1) or Catalog._load(other))

    def rev(code):
        return catalog.store.latest_revisions("grid").get(code, 0)

    feature = _feature(catalog, CELL)
    feature["properties"] = {"households": 141, "name": "新名字"}
    update_feature(
        catalog.store, "grid", CELL, feature, base_revision=rev(CELL), author="ana",
        reason="survey", served=catalog,
    )  # fmt: skip
    split = apply_change(
        catalog.store,
        {"op": "split", "code": CELL, "line": _line_across(catalog, CELL)},
        base={CELL: rev(CELL)}, author="ana", reason="too big", served=catalog,
    )  # fmt: skip
    new = split["cells"][1]["code"]
    assert other.keep_up() is True
    assert len(other.collections["grid"]) == 652 and other.collections["grid"].codes[-1] == new
    _same(other, Catalog(sample_dataset))
    assert other.keep_up() is False  # nothing new
    merge = apply_change(
        catalog.store,
        {"op": "merge", "codes": [CELL, new]},
        base={CELL: rev(CELL), new: rev(new)}, author="ana", reason="one again", served=catalog,
    )  # fmt: skip
    revert_change(catalog.store, merge["change_id"], author="ana", reason="undo", served=catalog)
    assert other.keep_up() is True
    _same(other, Catalog(sample_dataset))
    # the second saves on a copy that has not seen the first's latest save
    code = str(other.layers["grid"]["code"].drop_duplicates(keep=False).iloc[3])
    feature = _feature(catalog, code)
    feature["properties"] = {"households": 999}
    update_feature(
        catalog.store, "grid", code, feature, base_revision=rev(code), author="ana",
        reason="survey", served=catalog,
    )  # fmt: skip
    mine = _feature(other, CELL)
    mine["properties"] = {"households": 7}
    update_feature(
        other.store, "grid", CELL, mine, base_revision=rev(CELL), author="bo",
        reason="survey", served=other,
    )  # fmt: skip
    assert other.layers["grid"].set_index("code").at[code, "households"] == 999
    _same(other, Catalog(sample_dataset))
    assert reads == [], "the dataset was read again instead of the revisions"


def test_a_whole_layer_write_elsewhere_is_read_again(catalog):
    """An import by another writer (a whole-layer write, no revisions) is read whole."""
    other = Catalog(catalog.location)
    facilities = catalog.store.read_layer("facility").iloc[:10]
    catalog.store.write_layer("facility", facilities)
    assert other.keep_up() is True
    assert len(other.layers["facility"]) == 10
    _same(other, Catalog(catalog.location))


def test_a_dataset_restored_from_a_copy_is_read_again(catalog, tmp_path):
    """The GeoPackage put back from a copy made before a save (its revisions end before
    the version shown): the copy reads it again, not a replay of revisions it lacks."""
    backup = tmp_path / "backup.gpkg"
    backup.write_bytes(Path(catalog.location).read_bytes())
    feature = _feature(catalog, CELL)
    feature["properties"] = {"households": 141}
    update_feature(
        catalog.store, "grid", CELL, feature, base_revision=0, author="ana",
        reason="survey", served=catalog,
    )  # fmt: skip
    Path(catalog.location).write_bytes(backup.read_bytes())
    assert catalog.keep_up() is True
    assert catalog.layers["grid"].set_index("code").at[CELL, "households"] == 136
    _same(catalog, Catalog(catalog.location))


def test_ids_numbered_again_after_a_change_are_the_ids_of_the_whole_layer():
    """A save numbers again only the features of the codes it changed (code, code.1, …):
    over random changes of a layer whose codes repeat, the same ids as numbering the
    whole layer afresh."""
    import numpy as np

    from web.catalog import feature_ids, renumbered

    rng = np.random.default_rng(0)
    for _ in range(300):
        codes = rng.choice([f"c{i}" for i in range(30)], size=60).astype(object)
        ids = feature_ids(codes)
        changed = set(rng.choice(sorted(set(codes)), 3))
        keep = np.array([not (c in changed and rng.random() < 0.5) for c in codes])
        new = np.concatenate([codes[keep], rng.choice(sorted(changed), 2).astype(object)])
        carried = np.concatenate([ids[keep], [None, None]]).astype(object)
        assert (renumbered(new, carried, changed) == feature_ids(new)).all()


def test_a_splice_in_place_and_a_splice_that_moves_rows_take_the_same_rows():
    """A save that only replaces rows is spliced by copying and overwriting them; one that
    adds or removes rows by joining and taking. Over random splices of both kinds, every
    kind of column (arrays of objects and numbers, lists, tag rows, frames with text,
    numbers and geometry, a column whose added dtype differs) comes out as taking the rows
    one by one."""
    import geopandas as gpd
    import numpy as np

    from layers.storage.edits import Splice

    rng = np.random.default_rng(1)
    for _ in range(200):
        n, k = int(rng.integers(1, 12)), int(rng.integers(0, 4))
        if rng.random() < 0.5 and k <= n:  # in place: k rows replaced
            order = np.arange(n)
            order[rng.choice(n, k, replace=False)] = n + np.arange(k)
        else:  # rows removed, replaced and added, in any order
            order = rng.permutation(n + k)[: int(rng.integers(0, n + k + 1))]
        plan = Splice(np.arange(k), order)
        objs, new_objs = (
            np.array([f"s{i}" for i in range(n)], dtype=object),
            np.array([f"a{i}" for i in range(k)], dtype=object),
        )
        want = [[*objs, *new_objs][i] for i in order]
        assert plan.array(objs, new_objs).tolist() == want
        assert plan.items(list(objs), list(new_objs)) == want
        nums = np.arange(n * 3).reshape(n, 3)
        new_nums = -np.arange(1, k * 3 + 1).reshape(k, 3)
        assert (
            plan.array(nums, new_nums).tolist() == np.concatenate([nums, new_nums])[order].tolist()
        )
        frame = gpd.GeoDataFrame(
            {"code": [f"c{i}" for i in range(n)], "households": np.arange(n)},
            geometry=[shapely.Point(i, 0) for i in range(n)],
            crs="EPSG:4490",
        )
        added = gpd.GeoDataFrame(
            {
                "code": pd.Series([f"n{i}" for i in range(k)], dtype="str"),
                "households": np.arange(k) + 0.5,
            },
            geometry=[shapely.Point(i, 9) for i in range(k)],
            crs="EPSG:4490",
        )
        out = plan.rows(frame, added)
        whole = pd.concat([frame, added], ignore_index=True).iloc[order].reset_index(drop=True)
        assert isinstance(out, gpd.GeoDataFrame) and out.crs == frame.crs
        pd.testing.assert_frame_equal(pd.DataFrame(out), pd.DataFrame(whole))


def test_the_check_after_saves_of_cells_is_made_near_them_as_the_whole_check_finds(
    catalog, monkeypatch
):
    """Once the dataset is checked, a save of cells is checked again near them only
    (geo.recheck): the whole check does not run again, and the report is what it finds."""
    import geo
    from geo.checker import check_dataset
    from geo.recheck import _keys

    def rev(code):
        return catalog.revisions().get(code, 0)

    first = set(_keys(catalog.report().findings))  # the first check: the whole dataset

    def whole(*_a, **_k):
        raise AssertionError("the whole dataset was checked again")

    monkeypatch.setattr(geo, "check", whole)
    feature = _feature(catalog, CELL)  # pushed 30 m into its neighbours: overlaps
    grown = shapely.buffer(shapely.geometry.shape(feature["geometry"]), 0.0003)
    feature["geometry"], feature["properties"] = mapping(grown), {}
    update_feature(catalog.store, "grid", CELL, feature, base_revision=rev(CELL),
                   author="ana", reason="survey", accepted="checked", served=catalog)  # fmt: skip
    got, want = catalog.report(), check_dataset(catalog.layers)
    assert sorted(_keys(got.findings)) == sorted(_keys(want.findings))
    assert any(CELL in k for k in set(_keys(got.findings)) - first)  # its new overlaps
    apply_change(catalog.store, {"op": "split", "code": CELL, "line": _line_across(catalog, CELL)},
                 base={CELL: rev(CELL)}, author="ana", reason="too big", accepted="checked",
                 served=catalog)  # fmt: skip
    got, want = catalog.report(), check_dataset(catalog.layers)
    assert sorted(_keys(got.findings)) == sorted(_keys(want.findings))
    for name, table in want.alignment.items():
        pd.testing.assert_frame_equal(got.alignment[name], table, rtol=1e-9)


def test_the_first_check_of_a_warmed_service_waits_for_its_map(tmp_path):
    """``python -m web`` makes the grid's tiles ready first (Catalog.warm): its first
    check — due, or asked for by a page's findings — starts only then (both take the
    cores; the first map view waits for the one), and does start then."""
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    import threading

    catalog = Catalog(str(path), warmed_first=True)
    found = []  # a page asking for the findings meanwhile waits too
    asking = threading.Thread(target=lambda: found.append(catalog.findings()))
    asking.start()
    time.sleep(2.5)  # the sample's whole check: about 1 s
    assert catalog.check_status()["state"] != "done" and catalog._running is None
    assert not found and not catalog.tiles.cached("grid")
    catalog.warm()
    asking.join(60)
    assert found and found[0]
    assert catalog.tiles.settled(60)
    assert catalog.tiles.cached("grid")  # the whole-grid zooms, built ahead once generalised
    deadline = time.monotonic() + 60
    while catalog.check_status()["state"] != "done" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert catalog.check_status()["state"] == "done"
