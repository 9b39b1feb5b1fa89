"""Editing grid cells: revisions, stale edits, validation, roles — and no lost update."""

import base64
import json
import subprocess
import sys
import threading

import pytest
import shapely
from shapely.geometry import mapping, shape

from geo.errors import EditRejected, StaleEdit
from layers.editing import update_feature
from tests.conftest import ROOT, SAMPLE
from tests.tilings import squares
from web import create_app
from web.auth import add_user


def _fill(store):
    streets, communities, grids = squares()
    for name, gdf in {
        "street": streets,
        "community": communities,
        "grid": grids.drop(columns=["col", "row"]),
    }.items():
        store.write_layer(name, gdf.to_crs(4490))
    return grids


def _feature(store, code, **props):
    grid = store.read_layer("grid").to_crs(4326)
    row = grid[grid["code"] == code].iloc[0]
    return {"type": "Feature", "properties": props, "geometry": mapping(row.geometry)}


def test_an_edit_saves_a_revision_and_a_stale_one_is_refused(store):
    grids = _fill(store)
    code = grids["code"].iloc[5]
    r = update_feature(
        store,
        "grid",
        code,
        _feature(store, code, households=321),
        base_revision=0,
        author="ana",
        reason="survey",
    )
    assert r["revision"] >= 1 and r["before"]["properties"]["households"] != 321
    assert store.read_layer("grid").set_index("code").loc[code, "households"] == 321
    with pytest.raises(StaleEdit) as err:
        update_feature(
            store,
            "grid",
            code,
            _feature(store, code, households=5),
            base_revision=0,
            author="bo",
            reason="old copy",
        )
    assert err.value.latest["author"] == "ana" and err.value.latest["reason"] == "survey"
    assert store.read_layer("grid").set_index("code").loc[code, "households"] == 321
    assert [h["reason"] for h in store.revisions("grid", code)] == ["survey"]


def test_a_change_that_breaks_nesting_needs_an_accepted_reason(store):
    grids = _fill(store)
    code = grids["code"].iloc[0]
    f = _feature(store, code)
    f["geometry"] = mapping(shapely.affinity.translate(shape(f["geometry"]), 0.0003, 0))
    with pytest.raises(EditRejected) as err:
        update_feature(store, "grid", code, f, base_revision=0, author="ana", reason="move")
    assert {x["rule"] for x in err.value.findings} >= {"overlap", "gap"}
    assert store.revisions("grid", code) == []  # nothing saved
    r = update_feature(
        store,
        "grid",
        code,
        f,
        base_revision=0,
        author="ana",
        reason="move",
        accepted="temporary: survey pending",
    )
    assert r["accepted_findings"] and store.revisions("grid", code)[0]["accepted"]


def test_a_crash_mid_edit_leaves_the_last_good_revision(store):
    _fill(store)
    with pytest.raises(RuntimeError):
        with store.edit() as e:
            grid = e.read_layer("grid")
            grid["households"] = 0
            e.write_layer("grid", grid)
            e.add_revision({"layer": "grid", "code": "x", "author": "a", "at": "t", "reason": "r"})
            raise RuntimeError("power cut")
    assert store.read_layer("grid")["households"].min() > 0
    assert store.revisions("grid") == []


def test_concurrent_editors_lose_no_edit(store):
    grids = _fill(store)
    same = grids["code"].iloc[10]
    own = list(grids["code"].iloc[20:26])
    saved, errors = [], []

    def editor(n):
        try:
            for k in range(3):  # three edits each of the shared cell, retrying when stale
                while True:
                    base = store.revisions("grid", same)
                    rev = base[-1]["id"] if base else 0
                    try:
                        update_feature(
                            store,
                            "grid",
                            same,
                            _feature(store, same, households=1000 * n + k),
                            base_revision=rev,
                            author=f"p{n}",
                            reason=f"{n}-{k}",
                        )
                        saved.append(1000 * n + k)
                        break
                    except StaleEdit:
                        continue
            update_feature(
                store,
                "grid",
                own[n],
                _feature(store, own[n], households=7000 + n),
                base_revision=0,
                author=f"p{n}",
                reason="own cell",
            )
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(repr(err))

    threads = [threading.Thread(target=editor, args=(n,)) for n in range(len(own))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    history = store.revisions("grid", same)
    assert len(history) == len(saved) == 3 * len(own)
    # every saved edit is in the history, each based on the one before: zero lost edits
    assert sorted(h["after"]["properties"]["households"] for h in history) == sorted(saved)
    for prev, nxt in zip(history, history[1:]):
        assert (
            nxt["before"]["properties"]["households"] == prev["after"]["properties"]["households"]
        )
    final = store.read_layer("grid").set_index("code")
    assert final.loc[same, "households"] == history[-1]["after"]["properties"]["households"]
    assert [final.loc[c, "households"] for c in own] == [7000 + n for n in range(len(own))]


def _basic(name, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def test_http_put_with_etags_roles_and_history(tmp_path):
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    app = create_app({"DATASET": str(path)})
    store = app.extensions["gridmap"].store
    add_user(store, "ana", "planner", "long-secret")
    add_user(store, "vic", "viewer", "long-secret")
    c = app.test_client()
    url = "/collections/grid/items/540102003004003"
    got = c.get(url)
    etag, f = got.headers["ETag"], got.get_json()
    f["properties"] = {"households": 640}
    f["reason"] = "resurvey"
    assert c.put(url, json=f, headers={"If-Match": etag}).status_code == 401
    assert (
        c.put(url, json=f, headers={"If-Match": etag, **_basic("ana", "wrong")}).status_code == 401
    )
    assert (
        c.put(url, json=f, headers={"If-Match": etag, **_basic("vic", "long-secret")}).status_code
        == 403
    )
    assert c.put(url, json=f, headers=_basic("ana", "long-secret")).status_code == 428
    ok = c.put(url, json=f, headers={"If-Match": etag, **_basic("ana", "long-secret")})
    assert ok.status_code == 200 and ok.headers["ETag"] != etag
    assert c.get(url).get_json()["properties"]["households"] == 640  # the map sees it
    stale = c.put(url, json=f, headers={"If-Match": etag, **_basic("ana", "long-secret")})
    assert stale.status_code == 412 and stale.get_json()["latest"]["reason"] == "resurvey"
    assert stale.get_json()["latest"]["reason_zh"] == "resurvey"  # no prefix of ours to say
    moved = dict(f, geometry=mapping(shapely.affinity.translate(shape(f["geometry"]), 0.003, 0)))
    broken = c.put(
        url, json=moved, headers={"If-Match": ok.headers["ETag"], **_basic("ana", "long-secret")}
    )
    assert broken.status_code == 422 and broken.get_json()["findings"]
    # what a cross-site form could send: a form-encoded or text body, not JSON
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        forged = c.post(
            url + "/revert",
            data=json.dumps({"revision": 1, "reason": "x"}),
            content_type=content_type,
            headers={"If-Match": ok.headers["ETag"], **_basic("ana", "long-secret")},
        )
        assert forged.status_code == 400
    assert "Access-Control-Allow-Origin" not in c.get(url).headers
    history = c.get(url + "/history").get_json()["revisions"]
    assert [h["author"] for h in history] == ["ana"]
    assert history[0]["before"]["properties"]["households"] != 640


def test_adduser_stores_a_hash_not_the_password(tmp_path):
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "web",
            "adduser",
            "ana",
            "--role",
            "planner",
            "--password",
            "long-secret",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DATASET": str(path)},
    )
    assert run.returncode == 0, run.stderr
    from layers.storage import open_store

    users = open_store(path).users()
    assert users["ana"]["role"] == "planner"
    assert "long-secret" not in json.dumps(users) and users["ana"]["password_hash"].startswith(
        ("scrypt:", "pbkdf2:")
    )
    bad = subprocess.run(
        [sys.executable, "-m", "web", "adduser", "x", "--role", "planner", "--password", "short"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DATASET": str(path)},
    )
    assert bad.returncode == 2 and "8 characters" in bad.stderr


def test_preview_revert_and_layer_history(tmp_path):
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    app = create_app({"DATASET": str(path)})
    add_user(app.extensions["gridmap"].store, "ana", "planner", "long-secret")
    c = app.test_client()
    auth = _basic("ana", "long-secret")
    url = "/collections/grid/items/540102003004003"
    got = c.get(url)
    original = got.get_json()["properties"]["households"]
    f = dict(got.get_json(), properties={"households": 1}, reason="typo")
    preview = c.post(url + "/preview", json=f, headers=auth).get_json()
    assert preview["after"]["properties"]["households"] == 1 and preview["new_findings"] == []
    assert c.get(url).get_json()["properties"]["households"] == original  # nothing saved
    saved = c.put(url, json=f, headers={"If-Match": got.headers["ETag"], **auth})
    rev = saved.get_json()["revision"]
    back = c.post(
        url + "/revert",
        json={"revision": rev, "reason": "undo"},
        headers={"If-Match": saved.headers["ETag"], **auth},
    )
    assert back.status_code == 200, back.get_json()
    assert c.get(url).get_json()["properties"]["households"] == original
    layer = c.get("/collections/grid/history").get_json()["revisions"]
    assert [r["reason"] for r in layer] == ["typo", f"revert revision {rev}: undo"]
