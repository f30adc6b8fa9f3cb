"""Login rate limiting: failures per (username, address) with a growing wait, and per address.

- **Per username and address.** The first ``free`` failures of a username from one address cost
  nothing; after that, each attempt of that pair must wait twice as long as the one before (2 s,
  4 s, 8 s … up to the window). Only that pair waits: guessing from elsewhere never locks the
  user out of their own phone or office, which a per-username lock let anybody do to anybody. The
  count is forgotten on the right password from that address, or after a whole window without a
  failure.
- **Per address.** ``max_per_ip`` failures from one address within the window, whatever the
  usernames (password spraying), and that address waits until the oldest leaves the window.

Counters live in memory (a restart clears them). The address is the one the server sees:
forwarded headers count only from ``trusted_proxies`` (``Settings.proxy_options``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

MAX_ENTRIES = 100_000


class LoginLimiter:
    def __init__(self, free_per_user: int, max_per_ip: int, window: int) -> None:
        self.free_per_user = free_per_user
        self.max_per_ip = max_per_ip
        self.window = window
        self._pairs: dict[tuple[str, str], tuple[int, float]] = {}  # (username, address) -> (failures, last)
        self._addresses: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def delay(self, failures: int) -> int:
        """Seconds between attempts after ``failures`` failures of one username from one address."""
        if failures < self.free_per_user:
            return 0
        return min(2 ** min(failures - self.free_per_user + 1, 30), self.window)

    def _pair(self, username: str, ip: str, now: float) -> tuple[int, float]:
        key = (username.lower(), ip)
        count, last = self._pairs.get(key, (0, 0.0))
        if count and now - last > self.window:   # a whole window without a failure: forgotten
            self._pairs.pop(key, None)
            return 0, 0.0
        return count, last

    def _address(self, ip: str, now: float) -> deque[float]:
        q = self._addresses.setdefault(ip, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, username: str, ip: str, now: float | None = None) -> int:
        """Seconds to wait before another attempt is allowed; 0 when it is allowed now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            count, last = self._pair(username, ip, now)
            wait = last + self.delay(count) - now if count else 0.0
            q = self._address(ip, now)
            if len(q) >= self.max_per_ip:
                wait = max(wait, q[len(q) - self.max_per_ip] + self.window - now)
            return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str, ip: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            count, _ = self._pair(username, ip, now)
            self._pairs[(username.lower(), ip)] = (count + 1, now)
            q = self._address(ip, now)
            q.append(now)
            while len(q) > self.max_per_ip:
                q.popleft()
            if len(self._pairs) + len(self._addresses) > MAX_ENTRIES:  # bounded memory under a spray
                for k in [k for k, (_, last) in self._pairs.items() if now - last > self.window]:
                    del self._pairs[k]
                for ip_ in [a for a, d in self._addresses.items() if not d or d[-1] <= now - self.window]:
                    del self._addresses[ip_]
                if len(self._pairs) > MAX_ENTRIES // 2:  # still full of recent ones: the oldest go
                    for k in sorted(self._pairs, key=lambda k: self._pairs[k][1])[:len(self._pairs) // 2]:
                        del self._pairs[k]

    def succeeded(self, username: str, ip: str) -> None:
        """The right password from this address: its failures are forgotten (not the address's)."""
        with self._lock:
            self._pairs.pop((username.lower(), ip), None)
