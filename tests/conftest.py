"""Shared fixtures: the sample dataset, and a store per backend (GeoPackage, PostGIS)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

ROOT = Path(__file__).resolve().parents[1]
# Debian's chromium, headless, with no calls home (this machine, like users' intranets,
# has no internet)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# What a browser sends: "/" answers it with the map page (other clients get the OGC API
# landing page as JSON).
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SAMPLE = ROOT / "data" / "lhasa.gpkg"
DEFECTS = ROOT / "data" / "lhasa_defects.csv"


@pytest.fixture(scope="session", autouse=True)
def _overviews_of_this_run(tmp_path_factory):
    """The services the tests start keep generalised low zooms in a folder of this run,
    not in the checkout's instance folder (subprocesses inherit the setting)."""
    old = os.environ.get("GRIDMAP_OVERVIEWS")
    os.environ["GRIDMAP_OVERVIEWS"] = str(tmp_path_factory.mktemp("overviews"))
    yield
    if old is None:
        os.environ.pop("GRIDMAP_OVERVIEWS", None)
    else:
        os.environ["GRIDMAP_OVERVIEWS"] = old


# The PostGIS server the tests use. By default the local server's socket, database "test",
# as the current OS user (Debian's peer authentication); .ci/setup prepares it.
PG_URL = os.environ.get("GRIDMAP_TEST_DATABASE_URL", "postgresql:///test?host=/var/run/postgresql")


def _postgis_unavailable() -> str | None:
    try:
        import sqlalchemy as sa

        from layers.storage.postgis import _engine_url

        engine = sa.create_engine(_engine_url(PG_URL))
        with engine.begin() as con:
            con.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
            con.execute(sa.text("SELECT postgis_version()"))
        engine.dispose()
        return None
    except Exception as err:  # noqa: BLE001 - any failure is the reason to report
        return f"no PostGIS server at {PG_URL}: {str(err).splitlines()[0]}"


@pytest.fixture(scope="session")
def postgis_url():
    """URL of a reachable PostGIS database; skip without one, fail under CI=true."""
    reason = _postgis_unavailable()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostGIS tests must run under CI: {reason}")
        pytest.skip(reason)
    return PG_URL


@pytest.fixture
def pg_schema(postgis_url):
    """A fresh schema name, dropped afterwards."""
    import sqlalchemy as sa

    from layers.storage.postgis import _engine_url

    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    engine = sa.create_engine(_engine_url(postgis_url))
    with engine.begin() as con:
        con.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    engine.dispose()


def schema_url(schema: str) -> str:
    """The test database's URL for one schema of it."""
    return f"{PG_URL}&schema={schema}" if "?" in PG_URL else f"{PG_URL}?schema={schema}"


def copy_sample(url: str) -> str:
    """The bundled sample's layers written into the (empty) dataset at ``url``."""
    from layers.storage import open_store

    sample, target = open_store(SAMPLE), open_store(url)
    for name in sample.list_layers():
        target.write_layer(name, sample.read_layer(name))
    return url


@pytest.fixture(params=["geopackage", pytest.param("postgis", marks=pytest.mark.postgis)])
def sample_dataset(request, tmp_path) -> str:
    """A copy of the sample on each backend: where it is (a GeoPackage path, a URL)."""
    if request.param == "geopackage":
        path = tmp_path / "city.gpkg"
        path.write_bytes(SAMPLE.read_bytes())
        return str(path)
    request.getfixturevalue("postgis_url")
    return copy_sample(schema_url(request.getfixturevalue("pg_schema")))


@pytest.fixture(params=["geopackage", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request, tmp_path):
    """An empty dataset on each backend."""
    from layers.storage import open_store

    if request.param == "geopackage":
        return open_store(tmp_path / "dataset.gpkg")
    url = request.getfixturevalue("postgis_url")
    schema = request.getfixturevalue("pg_schema")
    return open_store(url, schema=schema)


@pytest.fixture
def grid_layer():
    """Four 1 km × 1 km grid cells around Lhasa, in EPSG:4490, built in EPSG:4539."""
    cells = [
        shapely.box(x, y, x + 1000, y + 1000)
        for x, y in [(500000, 3280000), (501000, 3280000), (500000, 3281000), (501000, 3281000)]
    ]
    gdf = gpd.GeoDataFrame(
        {
            "code": ["540102001001001", "540102001001002", "540102001001003", "540102001001004"],
            "name": ["八廓第1网格", "八廓第2网格", "鲁固第1网格", "鲁固第2网格"],
            "parent_code": ["540102001001"] * 4,
            "households": [120, 480, 905, 60],
            "population": [350, 1500, 2800, 170],
        },
        geometry=cells,
        crs="EPSG:4539",
    )
    return gdf.to_crs("EPSG:4490")


# Property tests explore new random cases on developers' machines and replay a fixed,
# reproducible set under CI, so a CI run's verdict does not depend on luck.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() == "true":
    _hypothesis_settings.load_profile("ci")


# --------------------------------------------------------------------------- web service
import threading  # noqa: E402

import pytest as _pytest  # noqa: E402


@_pytest.fixture(scope="session")
def sample_app():
    """The service on the bundled sample, as ``python -m web`` serves it."""
    from web import create_app

    return create_app({"DATASET": str(SAMPLE), "TESTING": True})


@_pytest.fixture
def client(sample_app):
    return sample_app.test_client()


def http_call(method, url, body=None, headers=None):
    """(status, headers, parsed JSON body) of one HTTP request with a JSON ``body``."""
    import json
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read() or b"null")


def serve_in_thread(app, threads: int = 8):
    """Serve ``app`` with waitress on a free loopback port; returns (url, server)."""
    from waitress import create_server

    from web.__main__ import server_options

    server = create_server(app, host="127.0.0.1", port=0, **server_options(app, threads))
    threading.Thread(target=server.run, daemon=True).start()
    return f"http://127.0.0.1:{server.effective_port}", server


@_pytest.fixture(scope="session")
def live_sample(sample_app):
    url, server = serve_in_thread(sample_app)
    yield url
    server.close()


class _ChineseFirst:
    """The browser as our users' are set: Chinese first (the page follows Accept-Language;
    headless Chromium alone says en-US). Pages may still ask for another ``locale``."""

    def __init__(self, browser):
        self._browser = browser

    def new_page(self, **options):
        return self._browser.new_page(**{"locale": "zh-CN", **options})

    def __getattr__(self, name):
        return getattr(self._browser, name)


@_pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Playwright; skipped without it, except under CI."""
    import shutil

    exe = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        reason = f"playwright not installed: {err}"
    else:
        if os.path.exists(exe):
            with sync_playwright() as p:
                b = p.chromium.launch(
                    executable_path=exe,
                    args=CHROMIUM_ARGS,
                )
                yield _ChineseFirst(b)
                b.close()
            return
        reason = "Debian's chromium is not installed"
    if os.environ.get("CI", "").lower() == "true":
        _pytest.fail(f"browser tests must run under CI: {reason}")
    _pytest.skip(reason)
