"""The rate budget of outgoing comm traffic: a token bucket in messages per second.

Jupyter Server stops forwarding IOPub messages to the page once more than
``iopub_msg_rate_limit`` (1,000/s) x ``rate_limit_window`` (3 s) arrived within
the window, and counts every message but ``status``, ``comm_open`` and
``execute_input``. The budget keeps the package's own ``comm_msg`` and
``comm_close`` traffic well under that: ``rate`` tokens a second, at most
``BURST_SECONDS`` of them saved up, so any 3 s carry at most 3.5 x ``rate``
messages (1,750 at the default 500/s), leaving room for the cell's other
output and for messages that reach the server bunched up. A message that may
not wait for a merge can go out on credit (``owe``): at most ``DEBT_SECONDS``
of budget, so any 3 s still carry at most 4.5 x ``rate`` (2,250 at 500/s).

The bucket takes no lock: the sender calls it under its own lock on the slow
path, and a lost update from two threads racing on the fast path only makes
the count off by one.
"""

from __future__ import annotations

import time

#: Tokens saved up at most, in seconds of ``rate``.
BURST_SECONDS = 0.5
#: Debt allowed at most, in seconds of ``rate``.
DEBT_SECONDS = 1.0


class RateBudget:
    """How many messages may go out now, refilled at ``rate`` per second."""

    __slots__ = ("_capacity", "_floor", "_stamp", "_tokens", "rate")

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"a rate budget needs a positive rate, not {rate!r}")
        self.rate = float(rate)
        self._capacity = max(1.0, self.rate * BURST_SECONDS)
        self._floor = -self.rate * DEBT_SECONDS
        self._tokens = self._capacity
        self._stamp = time.monotonic()

    def take(self) -> bool:
        """Spend one token if one is there; False (nothing spent) when over budget."""
        now = time.monotonic()
        tokens = self._tokens + (now - self._stamp) * self.rate
        if tokens > self._capacity:  # noqa: PLR1730 (hot path: cheaper than min())
            tokens = self._capacity
        self._stamp = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False

    def owe(self) -> bool:
        """Spend one token on credit; False (nothing spent) once the debt is at its floor.

        Called right after a ``take`` that failed, which did the refill, so
        this costs no clock read.
        """
        tokens = self._tokens - 1.0
        if tokens >= self._floor:
            self._tokens = tokens
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until ``take`` succeeds (0.0: now)."""
        tokens = self._tokens + (time.monotonic() - self._stamp) * self.rate
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
