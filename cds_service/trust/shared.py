"""State several replicas must share: the jti replay cache and the JWKS cache.

In memory by default (one process); in Redis when CDS_REDIS_URL is set. Gunicorn runs several
workers per replica, so a production deployment sets CDS_REDIS_URL even for one replica.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class SharedState(Protocol):
    def add_if_absent(self, key: str, ttl_seconds: int) -> bool:
        """Record `key` for `ttl_seconds`; False if it was already there (atomic)."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    def ping(self) -> None: ...


class MemoryState:
    def __init__(self) -> None:
        self._items: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def _purge(self, now: float) -> None:
        if len(self._items) > 10_000:
            self._items = {k: v for k, v in self._items.items() if v[0] > now}

    def add_if_absent(self, key: str, ttl_seconds: int) -> bool:
        now = time.monotonic()
        with self._lock:
            self._purge(now)
            current = self._items.get(key)
            if current and current[0] > now:
                return False
            self._items[key] = (now + ttl_seconds, b"1")
            return True

    def get(self, key: str) -> bytes | None:
        with self._lock:
            current = self._items.get(key)
            return current[1] if current and current[0] > time.monotonic() else None

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + ttl_seconds, value)

    def ping(self) -> None:
        return None


class RedisState:
    def __init__(self, url: str, prefix: str):
        import redis

        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def add_if_absent(self, key: str, ttl_seconds: int) -> bool:
        return bool(self.client.set(self.prefix + key, b"1", nx=True, ex=max(ttl_seconds, 1)))

    def get(self, key: str) -> bytes | None:
        return self.client.get(self.prefix + key)

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self.client.set(self.prefix + key, value, ex=max(ttl_seconds, 1))

    def ping(self) -> None:
        self.client.ping()


def shared_state(redis_url: str, prefix: str) -> SharedState:
    return RedisState(redis_url, prefix) if redis_url else MemoryState()
