"""Errors raised where data enters gridmap, each with a message in the user's terms."""

__all__ = ["GridmapError", "LayerError", "InputError", "StorageError"]


class GridmapError(Exception):
    """Base of every error gridmap raises on purpose.

    ``str(err)`` is a message for the user: which layer, which feature, what is wrong and
    how to fix it. ``problems`` lists each problem when several were found at once.
    """

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = list(problems or [])
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class LayerError(GridmapError, ValueError):
    """A layer does not fit its schema, its geometry type or its stated CRS."""


class InputError(GridmapError, ValueError):
    """A file cannot be read safely or correctly (format, archive, encoding)."""


class StorageError(GridmapError):
    """A dataset cannot be opened, read or written."""
