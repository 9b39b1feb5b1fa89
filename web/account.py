"""Signing in and out from a browser (``/login``, ``/logout``; see :mod:`web.auth`)."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from werkzeug.exceptions import Forbidden

from web.auth import check_password, csrf_ok, csrf_token
from web.i18n import STRINGS, pick_lang
from web.params import accepts

bp = Blueprint("account", __name__)


def _back() -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    target = request.values.get("next", "")
    return (
        target if target.startswith("/") and not target.startswith("//") else url_for("pages.index")
    )


@bp.route("/login", methods=["GET", "POST"])
@accepts("lang", "next", formats=("html",))
def login():
    """The sign-in page and form."""
    lang = pick_lang(request.args.get("lang"))
    s = STRINGS[lang]
    error = None
    if request.method == "POST":
        if not csrf_ok(request.form.get("csrf")):
            raise Forbidden("the sign-in form expired; reload it")
        store = current_app.extensions["gridmap"].store
        user = check_password(store, request.form.get("name", ""), request.form.get("password", ""))
        if user is not None:
            session.clear()
            session["user"] = user["name"]
            csrf_token()  # a fresh token for the new session
            return redirect(_back())
        error = s["login_failed"]
    response = current_app.make_response(
        render_template("login.html", s=s, lang=lang, csrf=csrf_token(), next=_back(), error=error)
    )
    if error:
        response.status_code = 401
    return response


@bp.post("/logout")
@accepts()
def logout():
    """Sign out."""
    if not csrf_ok(request.form.get("csrf") or request.headers.get("X-CSRF-Token")):
        raise Forbidden("sign-out must come from gridmap's own page")
    session.clear()
    return redirect(url_for("pages.index"))
