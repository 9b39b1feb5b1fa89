"""Errors of the HTTP API: a status and a message for the user, always sent as JSON."""

from __future__ import annotations

__all__ = ["ApiError"]


class ApiError(Exception):
    """Raise in a view to answer ``{"code": status, "description": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message
