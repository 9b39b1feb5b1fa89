"""The one place errors become HTTP answers.

Any :class:`geo.errors.GridmapError` raised while answering a request — by a view, by
``geo`` or by ``layers`` — becomes the JSON body of :meth:`GridmapError.to_dict` with its
status (``{"code": status, "error": kind, "description": English, "message": {"zh",
"en"}, …}``); HTTP errors of Flask itself become ``{"code", "description"}``, a body
over the size limit a :class:`~geo.errors.TooLarge` (413) naming the limit; anything
unexpected is logged and answered 500 without a stack trace. The dataset's file path or
database URL never appears in an answer: messages name the dataset by
:func:`web.dataset_name`. Views raise; none catches.
"""

from __future__ import annotations

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from geo.errors import Busy, GridmapError, TooLarge, TooManyAttempts, Unauthorised

__all__ = ["register", "too_large"]


def too_large(limit: int | None = None) -> TooLarge:
    """The 413 for a request body over ``limit`` bytes (this request's limit by default)."""
    limit = limit or request.max_content_length or current_app.config["MAX_CONTENT_LENGTH"]
    size = f"{limit / 1048576:g} MiB" if limit >= 1048576 else f"{limit / 1024:g} KiB"
    return TooLarge(
        f"the request body is larger than this resource takes ({size}); send less "
        "(the service's limits are set by GRIDMAP_MAX_CONTENT_LENGTH and GRIDMAP_MAX_JSON_BODY)",
        zh=f"请求体超过此资源的上限（{size}）；请减少发送的数据",
        limit=limit,
    )


def _public(body: dict) -> dict:
    """``body`` with the dataset's location (a file path, a database URL) replaced by its
    name: anonymous clients are not told where the data lives."""
    from web import dataset_name

    catalog = current_app.extensions.get("gridmap")
    where = getattr(catalog, "location", None)
    if not where:
        return body
    name = dataset_name(where)

    def scrub(value):
        if isinstance(value, str):
            return value.replace(where, name)
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return scrub(body)


def register(app: Flask) -> None:
    """Install the error handlers on ``app``."""

    @app.errorhandler(GridmapError)
    def gridmap_error(err: GridmapError):
        response = jsonify(_public(err.to_dict()))
        if isinstance(err, Unauthorised):
            response.headers["WWW-Authenticate"] = 'Basic realm="gridmap"'
        if isinstance(err, (TooManyAttempts, Busy)):
            response.headers["Retry-After"] = str(err.retry_after)
        return response, err.status

    @app.errorhandler(RequestEntityTooLarge)
    def body_too_large(err: RequestEntityTooLarge):
        return gridmap_error(too_large())

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        return jsonify({"code": err.code, "description": err.description}), err.code

    @app.errorhandler(Exception)
    def unexpected(err: Exception):
        current_app.logger.exception("unexpected error")
        return jsonify({"code": 500, "description": "internal error; see the server log"}), 500
