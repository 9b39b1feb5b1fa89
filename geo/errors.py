"""The errors gridmap raises on purpose: one tree, each with its HTTP meaning.

Every error is a :class:`GridmapError`. Its class says what kind of problem it is — the
HTTP ``status`` a web client gets and a machine-readable ``code`` — and the instance says
what is wrong in the user's terms: which layer, which feature, how to fix it, in English
(``str(err)``) and, where the raiser gives one, in Chinese (``err.zh``). The web service
turns any of them into one JSON body (:meth:`GridmapError.to_dict`); the command lines
print ``str(err)`` and exit with status 2.

>>> err = NotFound("no feature with code '9' in 'grid'", zh="网格中没有编码为 9 的要素")
>>> err.status, err.code, err.message("zh")
(404, 'not_found', '网格中没有编码为 9 的要素')
>>> isinstance(LayerError("bad"), ValueError)   # input errors are also ValueErrors
True
"""

from __future__ import annotations

__all__ = [
    "GridmapError",
    "InputError",
    "LayerError",
    "UnknownLayer",
    "NotFound",
    "Conflict",
    "Unauthorised",
    "Forbidden",
    "StaleEdit",
    "EditRejected",
    "PreconditionRequired",
    "TooLarge",
    "TooManyAttempts",
    "Busy",
    "TookTooLong",
    "ClientGone",
    "StorageError",
    "DiskFull",
]


class GridmapError(Exception):
    """Base of every error gridmap raises on purpose.

    Parameters
    ----------
    message : what is wrong and how to fix it, in English.
    problems : each problem when several were found at once (listed under the message).
    zh : the same message in Chinese; the English one is used where none is given.
    zh_problems : the problems in Chinese, one for each of ``problems`` (listed under
        ``zh``; ``problems`` themselves where not given).
    details : further JSON-safe facts for clients (e.g. ``findings``, ``latest``).
    """

    status = 400
    code = "error"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None, **kw):
        """``class NotFound(GridmapError, status=404, code="not_found")``: a kind of error
        with its HTTP status and machine-readable code (inherited where not given)."""
        super().__init_subclass__(**kw)
        cls.status = status if status is not None else cls.status
        cls.code = code if code is not None else cls.code

    def __init__(
        self,
        message: str,
        problems: list[str] | None = None,
        *,
        zh: str | None = None,
        zh_problems: list[str] | None = None,
        **details,
    ):
        self.problems = list(problems or [])
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
            if zh:
                listed = zh_problems if zh_problems else self.problems
                zh = zh + "\n" + "\n".join(f"  - {p}" for p in listed)
        super().__init__(message)
        self.zh = zh
        self.details = details

    def message(self, lang: str = "en") -> str:
        """The message in ``lang`` ('zh' or 'en'); English where no Chinese was given."""
        return self.zh if lang == "zh" and self.zh else str(self)

    def to_dict(self) -> dict:
        """The JSON body every client gets: ``code`` (the HTTP status, as always),
        ``error`` (this kind of error), ``description`` (English) and ``message`` in both
        languages, plus the error's details."""
        return {
            "code": self.status,
            "error": self.code,
            "description": str(self),
            "message": {"zh": self.message("zh"), "en": str(self)},
            **self.details,
        }


class InputError(GridmapError, ValueError, code="bad_input"):
    """A request, file or argument cannot be used as given (format, archive, encoding)."""


class LayerError(InputError, code="layer_invalid"):
    """A layer does not fit its schema, its geometry type or its stated CRS."""


class UnknownLayer(LayerError, code="unknown_layer"):
    """A layer name that is no layer kind gridmap knows (a typo must not read as clean)."""


class NotFound(GridmapError, status=404, code="not_found"):
    """No such collection, feature, change or community."""


class Conflict(GridmapError, status=409, code="conflict"):
    """The data cannot answer unambiguously (e.g. two features share the code asked for)."""


class Unauthorised(GridmapError, status=401, code="unauthorised"):
    """No valid credentials: sign in."""


class Forbidden(GridmapError, status=403, code="forbidden"):
    """Signed in, but not allowed (a viewer editing, a request without the CSRF token)."""


class StaleEdit(GridmapError, status=412, code="stale_edit"):
    """A feature changed since the editor read it: the one rule against lost updates.

    ``current`` is its revision now and ``latest`` the revision record that changed it
    (who, when, why), so the editor can see the other change and redo theirs on it.
    """

    def __init__(
        self,
        current: int,
        latest: dict | None,
        message: str | None = None,
        *,
        zh: str | None = None,
    ):
        from geo.reasons import reason_zh

        rec = latest or {}
        who, when, why = rec.get("author", "?"), rec.get("at", "?"), rec.get("reason", "")
        cell = rec.get("code", "?")
        super().__init__(
            message
            or f"cell {cell} was changed by {who} at {when} ({why}) since you read it "
            f"(now revision {current}); look at its new shape and redo your change",
            zh=zh
            or f"网格 {cell} 在您读取后已被 {who} 于 {when} 修改（{reason_zh(why)}），现为第 {current} "
            "版；请查看其新边界后重新修改",
            latest=None if latest is None else {**latest, "reason_zh": reason_zh(why)},
        )
        self.current, self.latest = current, latest


class EditRejected(GridmapError, status=422, code="edit_rejected"):
    """A change would add findings and no reason to accept them was given."""

    def __init__(self, findings: list[dict]):
        super().__init__(
            "the change breaks nesting or leaves a gap or overlap; fix it, or resend with "
            '"accepted": "<reason>"',
            zh=f"此修改将产生 {len(findings)} 个问题（越界、缝隙或重叠）：请修改，或填写接受理由后保存",
            findings=findings,
        )
        self.findings = findings


class PreconditionRequired(GridmapError, status=428, code="precondition_required"):
    """An edit came without the revision it was based on (If-Match)."""


class TooLarge(GridmapError, status=413, code="too_large"):
    """A request body larger than the service takes (``limit``: its size limit in bytes)."""


class TooManyAttempts(GridmapError, status=429, code="too_many_attempts"):
    """Sign-in refused for a while after too many failed attempts; ``retry_after`` is how
    many seconds until it is tried again (the answer's ``Retry-After`` header)."""

    def __init__(self, message: str, *, retry_after: int, zh: str | None = None):
        super().__init__(message, zh=zh, retry_after=retry_after)
        self.retry_after = retry_after


class Busy(GridmapError, status=503, code="busy"):
    """Every slot for expensive analyses is taken and the queue is full; ``retry_after``:
    seconds after which to ask again (the answer's ``Retry-After`` header)."""

    def __init__(self, message: str, *, retry_after: int, zh: str | None = None):
        super().__init__(message, zh=zh, retry_after=retry_after)
        self.retry_after = retry_after


class TookTooLong(GridmapError, status=503, code="took_too_long"):
    """An expensive analysis passed its time limit and was stopped."""


class ClientGone(GridmapError, status=499, code="client_gone"):
    """The client closed its connection before the answer was ready, and the work for it
    was stopped (499: nobody receives this answer; it is for the log)."""


class StorageError(GridmapError, status=500, code="storage_error"):
    """A dataset cannot be opened, read or written."""


class DiskFull(StorageError, status=507, code="disk_full"):
    """The disk holding a dataset has no room for a write; nothing was changed."""
