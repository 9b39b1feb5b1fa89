"""Signing in and out from a browser (``/login``, ``/logout``; see :mod:`web.auth`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from werkzeug.exceptions import Forbidden

from geo.errors import TooManyAttempts
from web.auth import csrf_ok, csrf_token, end_session, sign_in, start_session
from web.i18n import STRINGS, pick_lang
from web.params import accepts

bp = Blueprint("account", __name__)

# The sign-in and sign-out forms are a few short fields: a larger body is no form of ours.
FORM_LIMIT = 16 * 1024


def safe_next(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirect).

    Only a relative path from the site's root passes: no scheme, no host, no ``//`` or
    backslash (browsers read ``/\\evil.example`` as another host), no control characters.

    >>> safe_next("/?lang=en", "/"), safe_next("//evil.example", "/")
    ('/?lang=en', '/')
    >>> safe_next("/\\\\evil.example/", "/"), safe_next("https://evil.example/", "/")
    ('/', '/')
    """
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 32 or ord(c) == 127 for c in target)
    ):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def _back() -> str:
    """Where to go after signing in: a path on this site only."""
    return safe_next(request.values.get("next"), url_for("pages.index"))


@bp.route("/login", methods=["GET", "POST"])
@accepts("lang", "next", formats=("html",))
def login():
    """The sign-in page and form."""
    lang = pick_lang(request.args.get("lang"), request.accept_languages)
    s = STRINGS[lang]
    error, status, retry = None, 200, None
    if request.method == "POST":
        request.max_content_length = FORM_LIMIT
        if not csrf_ok(request.form.get("csrf")):
            raise Forbidden("the sign-in form expired; reload it / 登录表单已过期，请刷新页面")
        store = current_app.extensions["gridmap"].store
        name = request.form.get("name", "")
        try:
            user = sign_in(store, name, request.form.get("password", ""))
        except TooManyAttempts as err:
            error, status, retry = err.message(lang), err.status, err.retry_after
        else:
            if user is not None:
                start_session(store, user["name"])
                return redirect(_back())
            error, status = s["login_failed"], 401
    response = current_app.make_response(
        render_template("login.html", s=s, lang=lang, csrf=csrf_token(), next=_back(), error=error)
    )
    response.status_code = status
    if retry is not None:
        response.headers["Retry-After"] = str(retry)
    return response


@bp.post("/logout")
@accepts()
def logout():
    """Sign out (every session of the account begun before now ends)."""
    request.max_content_length = FORM_LIMIT
    if not csrf_ok(request.form.get("csrf") or request.headers.get("X-CSRF-Token")):
        raise Forbidden("sign-out must come from gridmap's own page / 退出须来自 gridmap 的页面")
    end_session(current_app.extensions["gridmap"].store)
    return redirect(url_for("pages.index"))
