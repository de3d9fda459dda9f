"""State several replicas must share: the jti replay cache and the JWKS cache.

In Redis when CDS_REDIS_URL is set (several replicas). Without it, `cds-service serve` shares a
SQLite file among its gunicorn workers, so a token replayed to another worker of the same replica is
still refused; in memory for a single process (tests, `evaluate`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Protocol


class SharedState(Protocol):
    def add_if_absent(self, key: str, ttl_seconds: int) -> bool:
        """Record `key` for `ttl_seconds`; False if it was already there (atomic)."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    def delete(self, key: str) -> None: ...

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

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

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
        value = self.client.get(self.prefix + key)
        return value if isinstance(value, bytes) else None  # bytes: the client does not decode responses

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self.client.set(self.prefix + key, value, ex=max(ttl_seconds, 1))

    def delete(self, key: str) -> None:
        self.client.delete(self.prefix + key)

    def ping(self) -> None:
        self.client.ping()


class WorkersState:
    """One SQLite file for the workers of one replica (wall-clock expiry: the processes share it)."""

    _PURGE_EVERY = 1000

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()
        self._writes = 0
        self._connection().execute(
            "CREATE TABLE IF NOT EXISTS shared_items (key TEXT PRIMARY KEY, expires REAL NOT NULL, value BLOB NOT NULL)")

    def _connection(self) -> sqlite3.Connection:
        # One connection per process and thread: a connection must not cross gunicorn's fork.
        connection = getattr(self._local, "connection", None)
        if connection is None or self._local.pid != os.getpid():
            connection = sqlite3.connect(self.path, timeout=5, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    def _write(self, sql: str, parameters: tuple) -> int:
        connection = self._connection()
        now = time.time()
        self._writes += 1
        if self._writes % self._PURGE_EVERY == 0:
            connection.execute("DELETE FROM shared_items WHERE expires <= ?", (now,))
        return connection.execute(sql, parameters).rowcount

    def add_if_absent(self, key: str, ttl_seconds: int) -> bool:
        now = time.time()
        # One statement: an expired entry is replaced, a live one is kept (atomic across processes).
        changed = self._write(
            "INSERT INTO shared_items (key, expires, value) VALUES (?, ?, x'31') "
            "ON CONFLICT(key) DO UPDATE SET expires = excluded.expires WHERE shared_items.expires <= ?",
            (key, now + ttl_seconds, now))
        return changed == 1

    def get(self, key: str) -> bytes | None:
        row = self._connection().execute(
            "SELECT value FROM shared_items WHERE key = ? AND expires > ?", (key, time.time())).fetchone()
        return bytes(row[0]) if row else None

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self._write("INSERT INTO shared_items (key, expires, value) VALUES (?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET expires = excluded.expires, value = excluded.value",
                    (key, time.time() + ttl_seconds, value))

    def delete(self, key: str) -> None:
        self._write("DELETE FROM shared_items WHERE key = ?", (key,))

    def ping(self) -> None:
        self._connection().execute("SELECT 1").fetchone()


def shared_state(redis_url: str, prefix: str, workers_file: str | None = None) -> SharedState:
    if redis_url:
        return RedisState(redis_url, prefix)
    return WorkersState(workers_file) if workers_file else MemoryState()
