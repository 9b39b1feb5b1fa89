"""Throttling failed sign-ins, per account and per client address.

After ``limit`` failures of one key (an account name, or a client address) within
``window`` seconds the key is locked for ``lockout`` seconds: every sign-in with it is
refused with :class:`~geo.errors.TooManyAttempts` (429, ``Retry-After``) without a password
being checked, the right password included. Names that are no account count like real ones,
so a lockout says nothing about which names exist. A success forgets the account's
failures, not the address's (one valid account must not reset a guesser's count).

The state is one small record per key, in at most ``max_keys`` records (the least recently
touched are dropped first), behind one lock: safe for the threads of one server process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from geo.errors import TooManyAttempts

__all__ = ["Throttle"]


@dataclass
class _Record:
    failures: int
    since: float  # start of the current counting window
    locked_until: float = 0.0


class Throttle:
    """Failed sign-ins by key, with lockouts; see the module docstring.

    >>> t = Throttle(account_limit=2, address_limit=10, window=60, lockout=30)
    >>> t.failed("ana", "10.0.0.1"); t.failed("ana", "10.0.0.1")
    >>> try:
    ...     t.check("ana", "10.0.0.2")
    ... except TooManyAttempts as err:
    ...     err.status, 0 < err.retry_after <= 30
    (429, True)
    """

    def __init__(
        self,
        *,
        account_limit: int = 5,
        address_limit: int = 20,
        window: float = 900.0,
        lockout: float = 300.0,
        max_keys: int = 10_000,
        clock=time.monotonic,
    ):
        self.limits = {"account": account_limit, "address": address_limit}
        self.window, self.lockout, self.max_keys, self.clock = window, lockout, max_keys, clock
        self._records: OrderedDict[tuple[str, str], _Record] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, name: str, address: str) -> None:
        """Raise TooManyAttempts if the account or the address is locked now."""
        now = self.clock()
        with self._lock:
            waits = {
                kind: rec.locked_until - now
                for kind, key in (("account", name), ("address", address))
                if (rec := self._records.get((kind, key))) is not None and rec.locked_until > now
            }
        if not waits:
            return
        wait = max(1, math.ceil(max(waits.values())))
        if "account" in waits:
            raise TooManyAttempts(
                f"too many failed sign-ins for '{name}': try again in {wait} s",
                zh=f"账号“{name}”登录失败次数过多，请 {wait} 秒后再试",
                retry_after=wait,
            )
        raise TooManyAttempts(
            f"too many failed sign-ins from this address: try again in {wait} s",
            zh=f"此地址登录失败次数过多，请 {wait} 秒后再试",
            retry_after=wait,
        )

    def failed(self, name: str, address: str) -> None:
        """Count a failed sign-in against the account and the address."""
        now = self.clock()
        with self._lock:
            for kind, key in (("account", name), ("address", address)):
                rec = self._records.pop((kind, key), None)
                if rec is None or now - rec.since > self.window:
                    rec = _Record(0, now, rec.locked_until if rec else 0.0)
                rec.failures += 1
                if rec.failures >= self.limits[kind]:
                    rec.locked_until = now + self.lockout
                    rec.failures, rec.since = 0, now
                self._records[(kind, key)] = rec  # most recently touched last
            while len(self._records) > self.max_keys:
                self._records.popitem(last=False)

    def succeeded(self, name: str) -> None:
        """Forget the account's failures (a right password outside a lockout)."""
        with self._lock:
            self._records.pop(("account", name), None)

    def __len__(self) -> int:
        return len(self._records)
