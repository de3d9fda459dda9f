"""Audit records leave the request path: a background thread writes them in batches.

A hook call only appends to a queue; the writer commits whatever has queued, at most every 0.2 s,
in one transaction (one commit per batch instead of one per call). The queue is flushed when the
process exits (gunicorn stops workers gracefully), so only a hard crash can lose the last 0.2 s.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading

from .base import AuditRecord, Store, StoreUnavailable

log = logging.getLogger("cds_service.audit")

_INTERVAL = 0.2
_MAX_QUEUE = 100_000  # beyond this (database down for long), records are dropped and counted, never blocking calls


class AuditWriter:
    def __init__(self, store: Store):
        self.store = store
        self._queue: queue.Queue[AuditRecord] = queue.Queue(maxsize=_MAX_QUEUE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.dropped = 0

    def record(self, record: AuditRecord) -> None:
        self._start()
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            log.error("audit queue full (database unavailable?): %d records dropped", self.dropped)

    def flush(self) -> None:
        """Write everything queued now (tests, shutdown)."""
        with self._flush_lock:
            batch = []
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not batch:
                return
            try:
                self.store.record_calls(batch)
            except StoreUnavailable:
                log.error("%d audit records could not be written; kept for the next try", len(batch))
                for record in batch:
                    try:
                        self._queue.put_nowait(record)
                    except queue.Full:
                        self.dropped += 1

    def _start(self) -> None:
        # Started on first use, in the worker process (a thread does not survive gunicorn's fork).
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()
                atexit.register(self.flush)

    def _run(self) -> None:
        event = threading.Event()
        while True:
            event.wait(_INTERVAL)
            try:
                self.flush()
            except Exception:  # the writer must outlive any single failure
                log.exception("audit writer failed")
