"""Which format to answer in: ``f=`` when given, else the best match of the ``Accept``
header among the formats a view offers (its first when nothing matches: a client that
accepts none of them still gets an answer it can read the error from)."""

from __future__ import annotations

from flask import current_app, request

__all__ = ["MEDIA_TYPES", "chosen_format"]

# fmt: off
MEDIA_TYPES = {
    "json":    "application/json",
    "geojson": "application/geo+json",
    "html":    "text/html",
    "csv":     "text/csv",
    "openapi": "application/vnd.oai.openapi+json;version=3.0",
    "jsonschema": "application/schema+json",
    "gpkg":    "application/geopackage+sqlite3",
    "zip":     "application/zip",
    "xlsx":    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "mvt":     "application/vnd.mapbox-vector-tile",
}
# fmt: on


def chosen_format() -> str:
    """The format (a key of :data:`MEDIA_TYPES`) the current view should answer in. The
    view's formats come from :func:`web.params.accepts`; ``f`` was checked against them."""
    view = current_app.view_functions[request.endpoint]
    formats = view.formats
    f = request.args.get("f")
    if f is not None:
        return f
    offered = [MEDIA_TYPES[x] for x in formats]
    best = request.accept_mimetypes.best_match(offered)
    return formats[offered.index(best)] if best else formats[0]
