"""The one place errors become HTTP answers.

Any :class:`geo.errors.GridmapError` raised while answering a request — by a view, by
``geo`` or by ``layers`` — becomes the JSON body of :meth:`GridmapError.to_dict` with its
status (``{"code": status, "error": kind, "description": English, "message": {"zh",
"en"}, …}``); HTTP errors of Flask itself become ``{"code", "description"}``; anything
unexpected is logged and answered 500 without a stack trace. Views raise; none catches.
"""

from __future__ import annotations

from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

from geo.errors import GridmapError, Unauthorised

__all__ = ["register"]


def register(app: Flask) -> None:
    """Install the error handlers on ``app``."""

    @app.errorhandler(GridmapError)
    def gridmap_error(err: GridmapError):
        response = jsonify(err.to_dict())
        if isinstance(err, Unauthorised):
            response.headers["WWW-Authenticate"] = 'Basic realm="gridmap"'
        return response, err.status

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        return jsonify({"code": err.code, "description": err.description}), err.code

    @app.errorhandler(Exception)
    def unexpected(err: Exception):
        current_app.logger.exception("unexpected error")
        return jsonify({"code": 500, "description": "internal error; see the server log"}), 500
