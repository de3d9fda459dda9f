"""Audit records leave the request path: a background thread writes them in batches.

A hook call only appends to a queue and wakes the writer, which waits 0.2 s for more and commits whatever has
queued in one transaction; an idle writer sleeps until the next record. While the database refuses writes the
records stay queued (up to _MAX_QUEUE, then they are dropped and counted) and are tried again every 0.2 s.
When the process exits (a worker stopped or recycled) whatever still cannot be written goes to a spool file,
which the next writer of the same database loads and writes with its next batch once the database takes
writes again. Only a hard crash (SIGKILL, out of memory) loses what was queued.
Every record's fate is counted (`cds_audit_records_total`) and every failure logged with its count.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import queue
import tempfile
import threading
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import orjson

from .. import metrics
from .base import AuditRecord, Store, StoreUnavailable

log = logging.getLogger("cds_service.audit")

_INTERVAL = 0.2
_MAX_QUEUE = 100_000  # beyond this (database down for long), records are dropped and counted, never blocking calls
_SPOOL_CHECK_SECONDS = 5.0
_QUEUE_FULL = "the queue is full (the database has refused writes for long)"


def spool_folder(database_url: str) -> Path:
    """Where records of this database wait when a process exits during an outage: one folder per database (so a
    record never lands in another database), under the temporary folder (a volume in the container)."""
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "cds-service-audit-spool" / digest


class AuditWriter:
    def __init__(self, store: Store, spool: Path | None = None):
        self.store = store
        self.spool = spool
        self._queue: queue.Queue[AuditRecord] = queue.Queue(maxsize=_MAX_QUEUE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._failing = False
        self._spool_checked = 0.0
        self.dropped = 0

    def record(self, record: AuditRecord) -> None:
        self._start()
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._drop(1, _QUEUE_FULL)
        self._wake.set()

    def flush(self) -> None:
        """Write everything queued now (the writer thread, tests); what the database refuses stays queued."""
        with self._flush_lock:
            batch = self._take_all()
            if batch:
                self._write(batch)
            if not self._failing and self.spool is not None and time.monotonic() - self._spool_checked > _SPOOL_CHECK_SECONDS:
                self._spool_checked = time.monotonic()
                self._load_spooled()

    def close(self) -> None:
        """At exit: write what is queued, or spool it for the next writer of this database."""
        with self._flush_lock:
            batch = self._take_all()
            if not batch or self._write(batch):
                return
            batch = self._take_all()  # _write queued them again
            if self.spool is None:
                self._drop(len(batch), "the process is exiting and no spool folder is set")
                return
            try:
                # Audit records name patients: the folders and the file are this user's alone.
                self.spool.parent.mkdir(mode=0o700, exist_ok=True)
                self.spool.mkdir(mode=0o700, exist_ok=True)
                path = self.spool / f"{time.time_ns()}-{os.getpid()}.jsonl"
                temporary = path.with_suffix(".part")
                descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(b"".join(orjson.dumps(asdict(r)) + b"\n" for r in batch))
                temporary.rename(path)
            except OSError as error:
                self._drop(len(batch), f"the spool folder could not be written ({error.strerror})")
                return
            metrics.count_audit_records("spooled", len(batch))
            log.warning("%d audit records the database refused were spooled to %s for the next process to write",
                        len(batch), path)

    def _take_all(self) -> list[AuditRecord]:
        batch = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return batch

    def _write(self, batch: list[AuditRecord]) -> bool:
        try:
            self.store.record_calls(batch)
        except StoreUnavailable as error:
            if not self._failing:
                log.error("audit records cannot be written (%s): %d queued in memory and retried every %.1f s",
                          error, len(batch), _INTERVAL)
            self._failing = True
            kept = 0
            for record in batch:
                try:
                    self._queue.put_nowait(record)
                    kept += 1
                except queue.Full:
                    pass
            if kept < len(batch):
                self._drop(len(batch) - kept, _QUEUE_FULL)
            return False
        if self._failing:
            log.warning("audit records are written again (%d in this batch)", len(batch))
        self._failing = False
        metrics.count_audit_records("written", len(batch))
        return True

    def _load_spooled(self) -> None:
        """Write the records other processes spooled for this database; each file is claimed by one writer."""
        assert self.spool is not None
        try:
            files = sorted(self.spool.glob("*.jsonl"))
        except OSError:
            return
        for path in files:
            claimed = path.with_suffix(f".claimed-{os.getpid()}")
            try:
                path.rename(claimed)
                records = [_record(orjson.loads(line)) for line in claimed.read_bytes().splitlines() if line]
            except (OSError, ValueError, TypeError, KeyError):
                continue  # another writer claimed it, or it is unreadable (left for a person to look at)
            try:
                self.store.record_calls(records)
            except StoreUnavailable:
                claimed.rename(path)  # for the next try
                return
            claimed.unlink()
            metrics.count_audit_records("written", len(records))
            log.info("%d spooled audit records written from %s", len(records), path.name)

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        metrics.count_audit_records("dropped", count)
        log.error("%d audit records dropped: %s (%d dropped by this process)", count, why, self.dropped)

    def _start(self) -> None:
        # Started on first use, in the worker process (a thread does not survive gunicorn's fork).
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()
                atexit.register(self.close)

    def _run(self) -> None:
        while True:
            if not self._failing or self._queue.empty():
                self._wake.wait()  # idle until a record comes (records the database refused are retried without one)
            time.sleep(_INTERVAL)  # let a batch gather
            self._wake.clear()  # before flush takes the queue, so a record put after it wakes the next round
            try:
                self.flush()
            except Exception:  # the writer must outlive any single failure
                log.exception("audit writer failed")


def _record(fields: dict) -> AuditRecord:
    return AuditRecord(**{**fields, "at": datetime.fromisoformat(fields["at"]),
                          "cards": tuple(tuple(card) for card in fields["cards"])})
