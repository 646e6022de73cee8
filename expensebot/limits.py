"""Rate limits per key (a psid_hash for AI calls, a client address for report pages), in memory, bounded."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

WINDOW = 60.0  # seconds


class RateLimiter:
    """At most `per_minute` slots per key in any 60 seconds; per process, thread-safe.

    At most `max_keys` keys are remembered: beyond that the least recently used one is forgotten
    (and may take `per_minute` slots again at once), so keep `max_keys` above the keys that use a
    slot within any one minute.
    """

    def __init__(self, per_minute: int, max_keys: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self.max_keys = max_keys
        self.clock = clock
        self._taken: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Take a slot and return 0.0, or return the seconds until one frees (nothing taken)."""
        with self._lock:
            now = self.clock()
            taken = self._taken.setdefault(key, collections.deque())
            self._taken.move_to_end(key)
            while taken and taken[0] <= now - WINDOW:
                taken.popleft()
            if len(taken) >= self.per_minute:
                return taken[0] + WINDOW - now
            taken.append(now)
            while len(self._taken) > self.max_keys:
                self._taken.popitem(last=False)
            return 0.0

    def __len__(self) -> int:
        """How many keys are remembered."""
        return len(self._taken)
