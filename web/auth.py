"""Accounts, roles and sign-in: planners may edit, viewers may only look.

Accounts live in the dataset (name, role, password hash by werkzeug's scrypt); they are made
with ``python -m web adduser``. Two ways to sign in:

- Scripts send HTTP Basic credentials with every request; no cookie is involved.
- Browsers sign in on ``/login`` and get a session cookie (signed, ``HttpOnly``,
  ``SameSite=Lax``, ``Secure`` with ``GRIDMAP_COOKIE_SECURE``). Every editing request made
  with that cookie must also carry the session's CSRF token in an ``X-CSRF-Token`` header,
  which only the service's own pages can read (it is written into the page), so a page on
  another site cannot edit in the planner's name. Edits also accept only
  ``application/json`` bodies and the service sends no CORS headers, which holds for Basic
  credentials a browser may have remembered.

Both ways are throttled (:class:`web.throttle.Throttle`): too many failures for an account
or from an address lock it for a while (429 with ``Retry-After``). A name that is no
account costs the same scrypt check as a wrong password, so timing does not tell which
names exist.

A session ends when it is older than ``SESSION_HOURS`` (``GRIDMAP_SESSION_HOURS``, 12 by
default), when its account's password or role changes (the cookie carries a stamp of the
stored hash and role, checked on every request), and on signing out, which ends every
session of the account begun before it (:class:`SignedOut`: kept with the service's
secret key in the instance folder, so a restart does not revive them). The role is read
from the dataset on every request, so a changed role or a removed account takes effect at
once.

The state behind all this — the throttle, the memo of verified passwords, the sign-outs —
is one :class:`AuthState` per app, in ``app.extensions["gridmap.auth"]``.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from flask import current_app, g, request, session
from werkzeug.security import check_password_hash, generate_password_hash

from geo.errors import Forbidden, InputError, Unauthorised
from web.throttle import Throttle

__all__ = [
    "ROLES",
    "AuthState",
    "SignedOut",
    "init_app",
    "add_user",
    "authenticate",
    "check_password",
    "sign_in",
    "start_session",
    "end_session",
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


class SignedOut:
    """When each account last signed out: sessions of it begun before then are over.

    Keyed by the account's session stamp (name, password hash and role), so two datasets
    served from one instance folder do not end each other's sessions. Entries older than
    a session's lifetime are dropped (such sessions have expired anyway), so there is at
    most one entry per account. Kept in ``path`` (JSON, replaced atomically) and read
    again when another process changed it; ``path=None`` keeps it in memory only."""

    def __init__(self, path: Path | None, lifetime: float):
        self.path, self.lifetime = path, lifetime
        self._times: dict[str, float] = {}
        self._seen = None  # (mtime_ns, size) of the file last read
        self._lock = threading.Lock()
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        if (st.st_mtime_ns, st.st_size) == self._seen:
            return
        try:
            times = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return  # half-written by another process: the next request reads it
        self._times = {k: float(v) for k, v in times.items() if isinstance(v, (int, float))}
        self._seen = (st.st_mtime_ns, st.st_size)

    def sign_out(self, stamp: str, at: float | None = None) -> None:
        at = time.time() if at is None else at
        with self._lock, self._only_writer():
            self._seen = None
            self._refresh()  # with what other processes wrote
            self._times = {k: t for k, t in self._times.items() if at - t < self.lifetime}
            self._times[stamp] = at
            if self.path is not None:
                tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(self._times))
                os.replace(tmp, self.path)
            self._seen = None

    @contextmanager
    def _only_writer(self):
        """Held while the file is read, added to and written: worker processes share it."""
        if self.path is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{self.path.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def since(self, stamp: str) -> float:
        """When the account of ``stamp`` last signed out (0: never)."""
        with self._lock:
            self._refresh()
            return self._times.get(stamp, 0.0)


class AuthState:
    """One app's sign-in state: the throttle of failed sign-ins, the memo of verified
    passwords, a dummy hash for names that are no account, and the sign-outs."""

    def __init__(self, config: dict, instance: Path):
        from web import share

        self.throttle = Throttle(  # each worker process counts its share of the limits
            account_limit=share(config, "LOGIN_MAX_FAILURES"),
            address_limit=share(config, "LOGIN_MAX_FAILURES_PER_ADDRESS"),
            window=float(config["LOGIN_FAILURE_WINDOW"]),
            lockout=float(config["LOGIN_LOCKOUT"]),
        )
        self.lifetime = float(config["SESSION_HOURS"]) * 3600
        where = config.get("SIGNED_OUT_FILE", instance / "signed_out.json")
        self.signed_out = SignedOut(Path(where) if where else None, self.lifetime)
        # Passwords already verified against a stored hash, so that a script sending Basic
        # credentials with every request pays for scrypt (about 0.1 s by design) once, not
        # every time. Keys are (stored hash, SHA-256 of hash and password): no password is
        # kept, and a changed password (a new hash) is verified afresh. Bounded in size.
        self._verified: set[tuple[str, bytes]] = set()
        self._lock = threading.Lock()
        self._dummy: str | None = None

    def dummy_hash(self) -> str:
        """A hash no password matches, made like real ones (the cost of a real check)."""
        if self._dummy is None:
            self._dummy = generate_password_hash(secrets.token_urlsafe(16))
        return self._dummy

    def password_ok(self, password_hash: str, password: str) -> bool:
        key = (password_hash, hashlib.sha256(f"{password_hash}\0{password}".encode()).digest())
        with self._lock:
            if key in self._verified:
                return True
        if not check_password_hash(password_hash, password):
            return False
        with self._lock:
            if len(self._verified) > 1024:
                self._verified.clear()
            self._verified.add(key)
        return True


def init_app(app) -> None:
    """Give ``app`` its :class:`AuthState` and session-cookie settings."""
    from datetime import timedelta

    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=float(app.config["SESSION_HOURS"]))
    app.extensions["gridmap.auth"] = AuthState(app.config, Path(app.instance_path))


def _state() -> AuthState:
    return current_app.extensions["gridmap.auth"]


def check_password(store, name: str, password: str) -> dict | None:
    """``{"name", "role"}`` when the password is right, else None. A name that is no
    account is checked against a dummy hash, so it takes as long as a wrong password."""
    state = _state()
    user = store.users().get(name or "")
    if user is None:
        check_password_hash(state.dummy_hash(), password or "")
        return None
    if not state.password_ok(user["password_hash"], password or ""):
        return None
    return {"name": name, "role": user["role"]}


def sign_in(store, name: str, password: str) -> dict | None:
    """:func:`check_password`, throttled per account and per client address: raises
    :class:`~geo.errors.TooManyAttempts` while either is locked, right password or not."""
    throttle = _state().throttle
    address = request.remote_addr or ""
    throttle.check(name, address)
    user = check_password(store, name, password)
    if user is None:
        throttle.failed(name, address)
    else:
        throttle.succeeded(name)
    return user


def authenticate(store, auth) -> dict | None:
    """``{"name", "role"}`` for valid Basic credentials, else None (throttled)."""
    if auth is None or auth.type != "basic" or not auth.username:
        return None
    return sign_in(store, auth.username, auth.password or "")


def _stamp(name: str, user: dict) -> str:
    """What a session cookie carries of its account: changes when its password or role
    does, and cannot be made without the secret key."""
    key = current_app.secret_key
    key = key if isinstance(key, bytes) else str(key).encode()
    text = f"{name}\0{user['password_hash']}\0{user['role']}".encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()[:32]


def start_session(store, name: str) -> None:
    """Begin a browser session for account ``name`` (after its password was checked)."""
    session.clear()
    session.permanent = True  # the cookie expires with the session (SESSION_HOURS)
    session["user"] = name
    session["stamp"] = _stamp(name, store.users()[name])
    session["since"] = time.time()
    csrf_token()  # a fresh token for the new session


def end_session(store) -> None:
    """Sign out: this session and every other one of its account begun before now."""
    name, stamp = session.get("user"), session.get("stamp")
    if name and stamp and session_user(store) is not None:
        _state().signed_out.sign_out(stamp)
    session.clear()


def session_user(store) -> dict | None:
    """The account signed in with this browser session, with its current role; None when
    there is none or the session is over (expired, signed out, password or role changed)."""
    return _session(store)[0]


# Why a session a browser still holds is over, as the sign-in request says it (en, zh).
SESSION_OVER = {
    "expired": (
        "your session has ended (sessions last {hours:g} hours): sign in again",
        "会话已结束（每次登录有效 {hours:g} 小时）：请重新登录",
    ),
    "signed_out": (
        "this account signed out (on this or another device): sign in again",
        "该账号已退出登录（在本设备或其他设备上）：请重新登录",
    ),
    "changed": (
        "this account's password or role changed since you signed in: sign in again",
        "登录后该账号的密码或角色已更改：请重新登录",
    ),
}


def _session(store) -> tuple[dict | None, str | None]:
    """(the account of this browser session, or None; and when the browser holds a
    session that is over, why: a key of :data:`SESSION_OVER`)."""
    name = session.get("user")
    if not name:
        # a session cookie the service could not read back: its signature is past the
        # session's lifetime (or the service's key changed)
        sent = request.cookies.get(current_app.config["SESSION_COOKIE_NAME"])
        return None, ("expired" if sent and not session else None)
    user = store.users().get(name)
    stamp, since = session.get("stamp"), session.get("since")
    state = _state()
    why = None
    if user is None or not isinstance(stamp, str) or not isinstance(since, (int, float)):
        why = "changed"
    elif not hmac.compare_digest(stamp, _stamp(name, user)):
        why = "changed"
    elif time.time() - since > state.lifetime:
        why = "expired"
    elif since <= state.signed_out.since(stamp):
        why = "signed_out"
    if why is not None:
        for key in ("user", "stamp", "since"):
            session.pop(key, None)
        return None, why
    return {"name": name, "role": user["role"]}, None


def signed_in_planner() -> dict:
    """The planner making this request: HTTP Basic credentials when sent (scripts),
    otherwise the browser session, whose editing requests must carry its CSRF token in
    ``X-CSRF-Token``. Raises Unauthorised (401) or Forbidden (403)."""
    store = current_app.extensions["gridmap"].store
    why = None
    if request.authorization is not None:
        user = authenticate(store, request.authorization)
    else:
        user, why = _session(store)
        if user is not None and not csrf_ok(request.headers.get("X-CSRF-Token")):
            raise Forbidden(
                "this request did not come from gridmap's own page (missing "
                "or wrong CSRF token); reload the page and try again",
                zh="此请求不是来自 gridmap 自己的页面（缺少或错误的 CSRF 令牌）；请刷新页面后重试",
            )
    if user is None and why is not None:
        en, zh = SESSION_OVER[why]
        hours = _state().lifetime / 3600
        raise Unauthorised(en.format(hours=hours), zh=zh.format(hours=hours))
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
