"""Login rate limiting: failures per username and per client address in a sliding window."""

from __future__ import annotations

import threading
import time
from collections import deque


class LoginLimiter:
    def __init__(self, max_per_user: int, max_per_ip: int, window: int) -> None:
        self.max_per_user = max_per_user
        self.max_per_ip = max_per_ip
        self.window = window
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, username: str, ip: str, now: float | None = None) -> int:
        """Seconds to wait before another attempt is allowed; 0 when it is allowed now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            waits = []
            for key, cap in ((f"u:{username.lower()}", self.max_per_user), (f"i:{ip}", self.max_per_ip)):
                q = self._recent(key, now)
                if len(q) >= cap:
                    waits.append(int(q[0] + self.window - now) + 1)
            return max(waits, default=0)

    def failed(self, username: str, ip: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in (f"u:{username.lower()}", f"i:{ip}"):
                self._recent(key, now).append(now)
            if len(self._fails) > 100_000:  # bounded memory under a spray of usernames
                for k in [k for k, q in self._fails.items() if not q][:50_000]:
                    del self._fails[k]

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._fails.pop(f"u:{username.lower()}", None)
