"""Accounts, roles and sign-in: planners may edit, viewers may only look.

Accounts live in the dataset (name, role, password hash by werkzeug's scrypt); they are made
with ``python -m web adduser``. Two ways to sign in:

- Scripts send HTTP Basic credentials with every request; no cookie is involved.
- Browsers sign in on ``/login`` and get a session cookie (signed, ``HttpOnly``,
  ``SameSite=Lax``). Every editing request made with that cookie must also carry the
  session's CSRF token in an ``X-CSRF-Token`` header, which only the service's own pages can
  read (it is written into the page), so a page on another site cannot edit in the
  planner's name. Edits also accept only ``application/json`` bodies and the service sends
  no CORS headers, which holds for Basic credentials a browser may have remembered.

The role is read from the dataset on every request, so a changed role or a removed account
takes effect at once.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from flask import current_app, g, request, session
from werkzeug.security import check_password_hash, generate_password_hash

from geo.errors import Forbidden, InputError, Unauthorised

__all__ = [
    "ROLES",
    "add_user",
    "authenticate",
    "check_password",
    "session_user",
    "planner_required",
    "csrf_token",
    "csrf_ok",
    "secret_key",
]

ROLES = ("planner", "viewer")


def add_user(store, name: str, role: str, password: str) -> None:
    """Create or update an account."""
    if role not in ROLES:
        raise InputError(
            f"role '{role}' must be one of {', '.join(ROLES)}",
            zh=f"角色“{role}”须为 {', '.join(ROLES)} 之一",
        )
    if not name or len(password) < 8:
        raise InputError(
            "a name and a password of at least 8 characters are required",
            zh="须有用户名和至少 8 个字符的密码",
        )
    with store.edit() as e:
        e.put_user(name, role, generate_password_hash(password))


# Passwords already verified against a stored hash, so that a script sending Basic
# credentials with every request pays for scrypt (about 0.1 s by design) once, not every
# time. Keys are (stored hash, SHA-256 of hash and password): no password is kept, and a
# changed password (a new hash) is verified afresh. A pure memo, bounded in size.
_VERIFIED: dict[tuple[str, bytes], bool] = {}


def _password_ok(password_hash: str, password: str) -> bool:
    key = (password_hash, hashlib.sha256(f"{password_hash}\0{password}".encode()).digest())
    if key in _VERIFIED:
        return True
    if not check_password_hash(password_hash, password):
        return False
    if len(_VERIFIED) > 1024:
        _VERIFIED.clear()
    _VERIFIED[key] = True
    return True


def check_password(store, name: str, password: str) -> dict | None:
    """``{"name", "role"}`` when the password is right, else None."""
    user = store.users().get(name or "")
    if user is None or not _password_ok(user["password_hash"], password or ""):
        return None
    return {"name": name, "role": user["role"]}


def authenticate(store, auth) -> dict | None:
    """``{"name", "role"}`` for valid Basic credentials, else None."""
    if auth is None or auth.type != "basic" or not auth.username:
        return None
    return check_password(store, auth.username, auth.password or "")


def session_user(store) -> dict | None:
    """The account signed in with this browser session, with its current role."""
    name = session.get("user")
    user = store.users().get(name) if name else None
    return {"name": name, "role": user["role"]} if user else None


def signed_in_planner() -> dict:
    """The planner making this request: HTTP Basic credentials when sent (scripts),
    otherwise the browser session, whose editing requests must carry its CSRF token in
    ``X-CSRF-Token``. Raises Unauthorised (401) or Forbidden (403)."""
    store = current_app.extensions["gridmap"].store
    if request.authorization is not None:
        user = authenticate(store, request.authorization)
    else:
        user = session_user(store)
        if user is not None and not csrf_ok(request.headers.get("X-CSRF-Token")):
            raise Forbidden(
                "this request did not come from gridmap's own page (missing "
                "or wrong CSRF token); reload the page and try again",
                zh="此请求不是来自 gridmap 自己的页面（缺少或错误的 CSRF 令牌）；请刷新页面后重试",
            )
    if user is None:
        raise Unauthorised(
            "sign in: HTTP Basic credentials of a planner account are required",
            zh="请登录：需要规划员（planner）账号",
        )
    if user["role"] != "planner":
        raise Forbidden(
            f"'{user['name']}' is a {user['role']}: only planners may edit",
            zh=f"“{user['name']}”是查看员，只有规划员可以编辑",
        )
    return user


def planner_required(view):
    """Let only a signed-in planner reach ``view``; the account is ``g.user``."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        g.user = signed_in_planner()
        return view(*args, **kwargs)

    wrapped.planner_only = True  # the OpenAPI document says so
    return wrapped


def csrf_token() -> str:
    """This session's anti-forgery token (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok(sent: str | None) -> bool:
    expected = session.get("csrf")
    return bool(expected and sent) and hmac.compare_digest(expected, sent)


def secret_key(instance: Path) -> bytes:
    """The key that signs session cookies: ``GRIDMAP_SECRET_KEY``, else a random key kept
    in ``instance/secret_key`` (made once, readable by the service's user only), so that
    sign-ins survive a restart."""
    if os.environ.get("GRIDMAP_SECRET_KEY"):
        return os.environ["GRIDMAP_SECRET_KEY"].encode()
    path = Path(instance) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker made it first
            return path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()
