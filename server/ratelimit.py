"""Login rate limiting: failures per (username, address) with a growing wait, and per address.

- **Per username and address.** The first ``free`` failures of a username from one address cost
  nothing; after that, each attempt of that pair must wait twice as long as the one before (2 s,
  4 s, 8 s … up to the window). Only that pair waits: guessing from elsewhere never locks the
  user out of their own phone or office, which a per-username lock let anybody do to anybody. The
  count is forgotten on the right password from that address, or after a whole window without a
  failure.
- **Per address.** ``max_per_ip`` failures from one address within the window, whatever the
  usernames (password spraying), and that address waits until the oldest leaves the window.

The counters live in the database (migration 0004, the store's ``login_*`` methods), not in
process memory: every worker process of a server (``gridbook serve --workers N``) and every
server on the same database count the same failures, so N workers do not give a guesser N times
the attempts. A restart keeps them. Times are the wall clock (``time.time()``), which servers on
different machines share; the monotonic clock is per machine. The address is the one the server
sees: forwarded headers count only from ``trusted_proxies`` (``Settings.proxy_options``).

Reads go through the caller's reader store; failures and forgetting are written in their own short
transaction on the writer store (not through the sync engine's group commit: a sign-in is not a
push, and must not wait behind a queue of them longer than the one write lock).
"""

from __future__ import annotations

import math
import time
from typing import Callable

from sync.storage import Store

MAX_ENTRIES = 100_000   # rows kept of each kind: bounded under a spray from many addresses


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class LoginLimiter:
    def __init__(self, writer: Store, reader: Callable[[], Store], free_per_user: int, max_per_ip: int,
                 window: int) -> None:
        self.writer = writer
        self.reader = reader
        self.free_per_user = free_per_user
        self.max_per_ip = max_per_ip
        self.window = window

    def delay(self, failures: int) -> int:
        """Seconds between attempts after ``failures`` failures of one username from one address."""
        if failures < self.free_per_user:
            return 0
        return min(2 ** min(failures - self.free_per_user + 1, 30), self.window)

    def retry_after(self, username: str, ip: str, now: float | None = None) -> int:
        """Seconds to wait before another attempt is allowed; 0 when it is allowed now."""
        now = time.time() if now is None else now
        store = self.reader()
        # A pair whose last failure is more than a window ago is forgotten (read as none).
        count, last_ms = store.login_failures(username.lower(), ip, _ms(now - self.window))
        wait = last_ms / 1000 + self.delay(count) - now if count else 0.0
        recent = store.login_address_failures(ip, _ms(now - self.window))
        if len(recent) >= self.max_per_ip:
            wait = max(wait, recent[len(recent) - self.max_per_ip] / 1000 + self.window - now)
        # Never more than a window, even if some server's clock was ahead when it counted.
        wait = min(wait, float(self.window))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str, ip: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        since = _ms(now - self.window)
        with self.writer.transaction():
            self.writer.login_failed(username.lower(), ip, _ms(now), since, self.max_per_ip)
            self.writer.login_expire(since, MAX_ENTRIES)

    def succeeded(self, username: str, ip: str) -> None:
        """The right password from this address: its failures are forgotten (not the address's)."""
        if self.reader().login_failures(username.lower(), ip, 0) == (0, 0):
            return   # nothing to forget: no write (every sign-in comes here)
        with self.writer.transaction():
            self.writer.login_forget(username.lower(), ip)
