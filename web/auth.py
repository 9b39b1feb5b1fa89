"""Accounts and roles: planners may edit, viewers may only look.

Accounts live in the dataset (name, role, password hash by werkzeug's scrypt). Scripts
authenticate with HTTP Basic auth on every request; no session cookie is set. Browsers may
still remember Basic credentials, so edits are also guarded against cross-site requests:
they accept only ``application/json`` bodies (PUT, or POST with that content type), and the
service sends no CORS headers — a page on another site can only send plain form or text
bodies, which are refused, and cannot make the browser send JSON or PUT without a CORS
preflight that this service does not grant.
"""

from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

__all__ = ["ROLES", "add_user", "authenticate"]

ROLES = ("planner", "viewer")


def add_user(store, name: str, role: str, password: str) -> None:
    """Create or update an account."""
    if role not in ROLES:
        raise ValueError(f"role '{role}' must be one of {', '.join(ROLES)}")
    if not name or len(password) < 8:
        raise ValueError("a name and a password of at least 8 characters are required")
    with store.edit() as e:
        e.put_user(name, role, generate_password_hash(password))


def authenticate(store, auth) -> dict | None:
    """``{"name", "role"}`` for valid Basic credentials, else None."""
    if auth is None or auth.type != "basic" or not auth.username:
        return None
    user = store.users().get(auth.username)
    if user is None or not check_password_hash(user["password_hash"], auth.password or ""):
        return None
    return {"name": auth.username, "role": user["role"]}
