"""The trusted issuers' key sets (JWKS): read from a file or fetched over https, cached in the shared state.

An issuer's key server is outside this service's control. Whatever it does, a call waits at most a short
bound for it, and other issuers' calls not at all:
- one fetch at a time per key set: the first call fetches (in every process and replica, through a lease in
  the shared state); the others wait for its result up to WAIT_SECONDS, then use the last good keys or fail;
- a fetch gives up after FETCH_SECONDS in all (plus at most one read's READ_SECONDS), however slowly the
  server answers;
- a failed fetch is remembered with a growing back-off (BACKOFF_SECONDS, doubling up to BACKOFF_MAX_SECONDS):
  until then calls fail at once (or use the last good keys), with no fetch;
- the last keys fetched stay usable for LAST_GOOD_SECONDS, so an outage of the key server shorter than that
  costs nothing while the issuer keeps its key.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import requests
import urllib3

from .. import metrics
from .shared import SharedState

log = logging.getLogger("cds_service.auth")

FRESH_SECONDS = 3600  # a key set is fetched again after an hour
LAST_GOOD_SECONDS = 24 * 3600
FETCH_SECONDS = 1.5
READ_SECONDS = 0.5  # each read from the key server; a server that trickles bytes is cut off at FETCH_SECONDS
WAIT_SECONDS = 2.0
BACKOFF_SECONDS = 5
BACKOFF_MAX_SECONDS = 300
MAX_BYTES = 1_000_000


class KeySetUnavailable(Exception):
    """The key set could not be had; the reason is logged with the refused call (never shown to the caller)."""


class KeySets:
    def __init__(self, state: SharedState, fetch: Callable[[str, float], bytes] | None = None):
        self.state = state
        self._fetch = fetch or fetch_key_set
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def keys(self, source: str, refresh: bool = False) -> jwt.PyJWKSet:
        """The key set at `source` (an https URL or a file): cached, or fetched now; `refresh` after an unknown kid."""
        if not refresh:
            cached = self.state.get(f"jwks:{source}")
            if cached is not None:
                return _parse(cached)
        raw = self._fetch_once(source, refresh)
        return _parse(raw)

    def status(self, source: str) -> str:
        """What the shared state knows of a key set, without fetching it (the detailed health view)."""
        if self.state.get(f"jwks:{source}") is not None:
            return "ok"
        failed = self.state.get(f"jwks-failed:{source}")
        last = self.state.get(f"jwks-last:{source}") is not None
        if failed is not None:
            return f"failing ({failed.decode(errors='replace')}){'; using the last keys fetched' if last else ''}"
        return "stale: the last keys fetched" if last else "not fetched yet"

    def _lock(self, source: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(source, threading.Lock())

    def _fetch_once(self, source: str, refresh: bool) -> bytes:
        failed = self.state.get(f"jwks-failed:{source}")
        if failed is not None:  # backing off: no fetch
            return self._last_good(source, failed.decode(errors="replace"))
        lock = self._lock(source)
        waited = not lock.acquire(blocking=False)  # another thread of this process is fetching it
        if waited and not lock.acquire(timeout=WAIT_SECONDS):
            return self._cached_or_last_good(source, "another fetch of it is still running")
        try:
            if waited or not refresh:  # another thread fetched, or failed to, while this one waited
                settled = self._settled(source)
                if settled is not None:
                    return settled
            if not self.state.add_if_absent(f"jwks-fetching:{source}", int(FETCH_SECONDS + READ_SECONDS) + 1):
                return self._wait_for_other_process(source)
            try:
                return self._fetch_and_remember(source)
            finally:
                self.state.delete(f"jwks-fetching:{source}")
        finally:
            lock.release()

    def _fetch_and_remember(self, source: str) -> bytes:
        try:
            raw = self._fetch(source, FETCH_SECONDS)
            _parse(raw)
        except KeySetUnavailable as failure:
            failures = int(self.state.get(f"jwks-failures:{source}") or b"0") + 1
            backoff = min(BACKOFF_SECONDS * 2 ** (failures - 1), BACKOFF_MAX_SECONDS)
            self.state.set(f"jwks-failures:{source}", str(failures).encode(), BACKOFF_MAX_SECONDS * 2)
            self.state.set(f"jwks-failed:{source}", str(failure).encode(), backoff)
            metrics.count_key_set_fetch(False)
            log.warning("key set %s: %s; next fetch in %d s", source, failure, backoff)
            return self._last_good(source, str(failure))
        self.state.set(f"jwks:{source}", raw, FRESH_SECONDS)
        self.state.set(f"jwks-last:{source}", raw, LAST_GOOD_SECONDS)
        self.state.delete(f"jwks-failures:{source}")
        metrics.count_key_set_fetch(True)
        return raw

    def _wait_for_other_process(self, source: str) -> bytes:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.05)
            settled = self._settled(source)
            if settled is not None:
                return settled
        return self._cached_or_last_good(source, "another process's fetch of it did not finish in time")

    def _settled(self, source: str) -> bytes | None:
        """What another fetch has just settled: the fresh key set, or after its failure the last good one (or
        KeySetUnavailable); None while nothing is settled."""
        cached = self.state.get(f"jwks:{source}")
        if cached is not None:
            return cached
        failed = self.state.get(f"jwks-failed:{source}")
        return None if failed is None else self._last_good(source, failed.decode(errors="replace"))

    def _cached_or_last_good(self, source: str, reason: str) -> bytes:
        cached = self.state.get(f"jwks:{source}")
        return cached if cached is not None else self._last_good(source, reason)

    def _last_good(self, source: str, reason: str) -> bytes:
        last = self.state.get(f"jwks-last:{source}")
        if last is None:
            raise KeySetUnavailable(reason)
        return last


def _parse(raw: bytes) -> jwt.PyJWKSet:
    try:
        return jwt.PyJWKSet.from_dict(json.loads(raw))
    except (ValueError, jwt.PyJWTError):
        raise KeySetUnavailable("the issuer's key set is unreadable") from None


def fetch_key_set(source: str, seconds: float) -> bytes:
    """The bytes of a key set: a file, or an https URL read in at most `seconds` in all and MAX_BYTES."""
    if not source.startswith("https://"):
        try:
            return Path(source).read_bytes()
        except OSError:
            raise KeySetUnavailable("the issuer's key file is unreadable") from None
    if urlsplit(source).scheme != "https":
        raise KeySetUnavailable("key set URL is not https")
    deadline = time.monotonic() + seconds
    try:
        with requests.get(source, timeout=(seconds, READ_SECONDS), allow_redirects=False, stream=True) as response:
            if response.status_code != 200:
                raise KeySetUnavailable(f"key set fetch answered HTTP {response.status_code}")
            body = b""
            while chunk := response.raw.read1(65536, decode_content=True):  # what has arrived, not a full buffer: the deadline is checked
                body += chunk
                if len(body) > MAX_BYTES:
                    raise KeySetUnavailable("key set too large")
                if time.monotonic() > deadline:
                    raise KeySetUnavailable(f"key set fetch took longer than {seconds:g} s")
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as error:
        timed_out = isinstance(error, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError))
        kind = "timed out" if timed_out else "could not be fetched"
        raise KeySetUnavailable(f"key set {kind}") from None
    return body
