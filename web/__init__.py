"""The gridmap web service: an offline map of every layer and the JSON/GeoJSON API.

``create_app()`` builds the Flask app: configuration from defaults, then the environment
(``DATASET``, ``DATABASE_URL``, ``GRIDMAP_BASEMAP``, ``TIANDITU_KEY``,
``GRIDMAP_PROXY_HOPS``, ``GRIDMAP_CORS_ORIGINS``, and the security settings
``GRIDMAP_COOKIE_SECURE``, ``GRIDMAP_SESSION_HOURS``, ``GRIDMAP_LOGIN_*``,
``GRIDMAP_MAX_CONTENT_LENGTH``, ``GRIDMAP_MAX_JSON_BODY``, the upload limits
``GRIDMAP_MAX_UPLOAD`` and ``GRIDMAP_MAX_UPLOAD_FEATURES``, and the bounds of expensive
analyses ``GRIDMAP_HEAVY_SLOTS``, ``GRIDMAP_HEAVY_QUEUE``, ``GRIDMAP_HEAVY_WAIT``,
``GRIDMAP_PROPOSAL_SECONDS``, and where generalised low zooms are kept between runs,
``GRIDMAP_OVERVIEWS``), then
``test_config``; one
:class:`web.catalog.Catalog` per app; a blueprint per area — map pages, the features API
and its OpenAPI document, analysis (findings, lookup, search, proposals), service sites,
editing, uploads, printing and downloads, sign-in — the query-parameter check of
:func:`web.params.refuse_unknown` and one error handler (:mod:`web.errors`).
"""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, current_app, request

from layers.readers import ImportLimits

_COMPRESSIBLE = (
    "application/json",
    "application/geo+json",
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "lhasa.gpkg"


def compress(response):
    """gzip text answers for clients that accept it: GeoJSON shrinks about fivefold."""
    if (
        response.direct_passthrough
        or response.status_code != 200
        or "gzip" not in request.headers.get("Accept-Encoding", "")
        or response.mimetype not in _COMPRESSIBLE
        or "Content-Encoding" in response.headers
    ):
        return response
    body = response.get_data()
    if len(body) < 1024:
        return response
    response.set_data(gzip.compress(body, compresslevel=1))  # fast; still ~4× smaller
    response.headers["Content-Encoding"] = "gzip"
    response.headers.add("Vary", "Accept-Encoding")
    return response


def share(config, limit: str) -> int:
    """One worker process's share of a limit set for the whole service (``config[limit]``
    over ``config["WORKERS"]``, at least 1)."""
    return max(1, math.ceil(int(config[limit]) / max(1, int(config.get("WORKERS", 1)))))


def default_dataset() -> str:
    """The dataset to serve: ``DATASET``, else ``DATABASE_URL``, else the bundled sample."""
    return os.environ.get("DATASET") or os.environ.get("DATABASE_URL") or str(SAMPLE)


def dataset_name(location: str) -> str:
    """What answers call the dataset: a GeoPackage's file name without folder or suffix, a
    PostGIS database's name — never where it is stored (a path, a host, a user name).

    >>> dataset_name("/srv/data/lhasa.gpkg"), dataset_name("postgresql://u:***@db/city")
    ('lhasa', 'city')
    """
    if "://" in location:
        return urlsplit(location).path.strip("/") or "postgis"
    return Path(location).stem


def _flag(name: str, default: str = "") -> bool:
    """An on/off environment setting: 1, true, yes or on."""
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "on")


def refuse_large_body():
    """Before any view: 413 for a body whose declared size is over the service's limit,
    before a byte of it is parsed (bodies of unknown size are cut off while read)."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.endpoint == "upload.create":
        limit = current_app.config["MAX_UPLOAD"]
    if limit and (request.content_length or 0) > limit:
        from web.errors import too_large

        raise too_large(limit)


def household_band(text: str) -> tuple[int, int]:
    """``"300-500"`` → (300, 500): the households a grid cell should hold."""
    try:
        lo, hi = (int(v) for v in text.replace("–", "-").split("-"))
    except ValueError:
        raise ValueError(f"GRIDMAP_HOUSEHOLDS must look like 300-500, got '{text}'") from None
    if not 0 < lo <= hi:
        raise ValueError(f"GRIDMAP_HOUSEHOLDS needs 0 < minimum ≤ maximum, got '{text}'")
    return lo, hi


def overviews(app: Flask):
    """Where the app keeps generalised low zooms (:class:`layers.overviews.Overviews`),
    or None (``OVERVIEWS`` = "off")."""
    from layers.overviews import Overviews

    where = app.config["OVERVIEWS"]
    if where.strip().lower() == "off":
        return None
    return Overviews(where or Path(app.instance_path) / "overviews")


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        DATASET=default_dataset(),
        # none (boundaries and roads are the map), osm, tianditu, or an XYZ URL template
        BASEMAP=os.environ.get("GRIDMAP_BASEMAP", "none"),
        TIANDITU_KEY=os.environ.get("TIANDITU_KEY", ""),
        # households per grid cell that proposals aim for: GRIDMAP_HOUSEHOLDS=300-500
        HOUSEHOLD_BAND=household_band(os.environ.get("GRIDMAP_HOUSEHOLDS", "300-500")),
        # reverse proxies in front whose X-Forwarded-Proto/Host/Prefix/For are trusted (the
        # service's links use them); 0 when clients reach the service directly
        PROXY_HOPS=int(os.environ.get("GRIDMAP_PROXY_HOPS", "0")),
        # origins whose pages may read the API (GET only): "*" or a comma-separated list
        CORS_ORIGINS=os.environ.get("GRIDMAP_CORS_ORIGINS", ""),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # the session cookie only over https (set it when the service is behind https)
        SESSION_COOKIE_SECURE=_flag("GRIDMAP_COOKIE_SECURE"),
        # a browser session ends this many hours after signing in
        SESSION_HOURS=float(os.environ.get("GRIDMAP_SESSION_HOURS", "12")),
        # worker processes serving the dataset together (python -m web --workers): the
        # limits below hold for the service as a whole, each worker keeping its share
        WORKERS=int(os.environ.get("GRIDMAP_WORKERS", "1")),
        # expensive analyses (siting, coverage, proposals): how many run at once, how many
        # may wait for a slot, and for how long (seconds) — see web/heavy.py
        HEAVY_SLOTS=int(os.environ.get("GRIDMAP_HEAVY_SLOTS", "2")),
        HEAVY_QUEUE=int(os.environ.get("GRIDMAP_HEAVY_QUEUE", "4")),
        HEAVY_WAIT=float(os.environ.get("GRIDMAP_HEAVY_WAIT", "30")),
        # seconds a proposal (cells for a street, an aligned layout) may take in all
        PROPOSAL_SECONDS=float(os.environ.get("GRIDMAP_PROPOSAL_SECONDS", "120")),
        # failed sign-ins: this many for one account (or from one address) within the
        # window (seconds) lock it for the lockout (seconds)
        LOGIN_MAX_FAILURES=int(os.environ.get("GRIDMAP_LOGIN_MAX_FAILURES", "5")),
        LOGIN_MAX_FAILURES_PER_ADDRESS=int(
            os.environ.get("GRIDMAP_LOGIN_MAX_FAILURES_PER_ADDRESS", "20")
        ),
        LOGIN_FAILURE_WINDOW=float(os.environ.get("GRIDMAP_LOGIN_FAILURE_WINDOW", "900")),
        LOGIN_LOCKOUT=float(os.environ.get("GRIDMAP_LOGIN_LOCKOUT", "300")),
        # request bodies (bytes): any request, and a JSON body (edits, what-if sites)
        MAX_CONTENT_LENGTH=int(os.environ.get("GRIDMAP_MAX_CONTENT_LENGTH", str(8 << 20))),
        MAX_JSON_BODY=int(os.environ.get("GRIDMAP_MAX_JSON_BODY", str(2 << 20))),
        # an uploaded layer (bytes, features): the command line's limits unless set
        MAX_UPLOAD=int(os.environ.get("GRIDMAP_MAX_UPLOAD", str(ImportLimits().max_bytes))),
        MAX_UPLOAD_FEATURES=int(
            os.environ.get("GRIDMAP_MAX_UPLOAD_FEATURES", str(ImportLimits().max_features))
        ),
        # the directory where the map's generalised low zooms are kept between runs
        # (layers/overviews.py): "" for the app's instance folder, "off" for none
        OVERVIEWS=os.environ.get("GRIDMAP_OVERVIEWS", ""),
        # the server calls the catalog's warm() at start; the first check waits for it
        WARMED_FIRST=False,
    )
    app.json.ensure_ascii = False  # Chinese names as text, not \u escapes
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        from web.auth import secret_key

        app.config["SECRET_KEY"] = secret_key(Path(app.instance_path))

    from layers.uploads import UploadArea
    from web import (
        account,
        analysis,
        auth,
        editing,
        errors,
        features,
        openapi,
        pages,
        printing,
        sites,
        tiles,
        uploads,
    )
    from web.catalog import Catalog
    from web.heavy import HeavyJobs
    from web.params import refuse_unknown

    pages.check_basemap(app.config["BASEMAP"])
    app.extensions["gridmap"] = Catalog(
        app.config["DATASET"], overviews=overviews(app), warmed_first=app.config["WARMED_FIRST"]
    )
    app.extensions["gridmap.heavy"] = HeavyJobs(
        share(app.config, "HEAVY_SLOTS"), share(app.config, "HEAVY_QUEUE"), app.config["HEAVY_WAIT"]
    )
    app.extensions["gridmap.uploads"] = UploadArea()
    app.extensions["gridmap.import_limits"] = ImportLimits(
        max_bytes=app.config["MAX_UPLOAD"], max_features=app.config["MAX_UPLOAD_FEATURES"]
    )
    # one blueprint per area of the service
    areas = (pages, features, tiles, openapi, analysis, sites, editing, uploads, printing, account)
    for area in areas:
        app.register_blueprint(area.bp)
    auth.init_app(app)
    app.before_request(refuse_large_body)
    app.before_request(refuse_unknown)
    errors.register(app)
    hops = app.config["PROXY_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)
    origins = [o.strip() for o in app.config["CORS_ORIGINS"].split(",") if o.strip()]
    if origins:
        from flask_cors import CORS

        CORS(
            app,
            origins="*" if "*" in origins else origins,
            send_wildcard="*" in origins,
            methods=["GET", "HEAD", "OPTIONS"],
            expose_headers=["ETag", "Content-Crs"],
        )

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    app.after_request(compress)

    return app
