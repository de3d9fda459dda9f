"""SQLite store: the embedded default. One connection per thread; WAL so readers do not block the writer."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import migrations
from .base import (
    BACKGROUND_WAIT_MS,
    REASONS_QUERY,
    REPORT_QUERY,
    REQUEST_WAIT_MS,
    AuditRecord,
    FeedbackReportRow,
    SaveResult,
    StoredFeedback,
    StoreUnavailable,
    audit_record,
    audit_row,
    feedback_row,
    report_rows,
    stored_feedback,
)


class SQLiteStore:
    def __init__(self, path: str | Path):
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate()

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        path = url.removeprefix("sqlite:///")
        if not url.startswith("sqlite:///") or not path or path == ":memory:":
            raise ValueError("CDS_DATABASE_URL must be sqlite:///path/to/file (a file: every worker shares it)")
        return cls(path)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL: a commit survives a crash of the service, and costs no fsync
        # (an audit write per hook call was the largest cost of a small request).
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def _connection(self) -> sqlite3.Connection:
        # Opened lazily per thread, so a store created before gunicorn forks hands no connection to its workers.
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _migrate(self) -> None:
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                for number, script in enumerate(migrations.SQLITE[version:], start=version + 1):
                    for statement in migrations.statements(script):
                        connection.execute(statement)
                    connection.execute(f"PRAGMA user_version = {number}")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        finally:
            connection.close()

    def _begin(self, busy_ms: int) -> sqlite3.Connection:
        """A write transaction, waiting at most `busy_ms` for another writer's lock: a request thread waits
        briefly (feedback answers 503 rather than hold a thread the hook calls need), the audit writer longer."""
        connection = self._connection()
        connection.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        connection.execute("BEGIN IMMEDIATE")
        return connection

    def _write(self, statement: str, rows: Sequence[Sequence[Any]]) -> int:
        connection = self._connection()
        try:
            self._begin(REQUEST_WAIT_MS)
            before = connection.total_changes
            connection.executemany(statement, rows)
            changed = connection.total_changes - before
            connection.execute("COMMIT")
            return changed
        except sqlite3.Error as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise StoreUnavailable(f"SQLite write failed: {type(error).__name__}") from None

    def save_feedback(self, service_id: str, items: Sequence[Mapping[str, Any]]) -> SaveResult:
        received_at = datetime.now(UTC).isoformat(timespec="seconds")
        rows = [feedback_row(service_id, item, received_at) for item in items]
        stored = self._write("INSERT OR IGNORE INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return SaveResult(received=len(rows), stored=stored)

    def record_call(self, record: AuditRecord) -> None:
        self.record_calls([record])

    def record_calls(self, records: Sequence[AuditRecord]) -> None:
        connection = self._connection()
        try:
            self._begin(BACKGROUND_WAIT_MS)
            connection.executemany(
                "INSERT INTO audit (at, service_id, hook, hook_instance, client_issuer, client_tenant, patient, status,"
                " outcome, latency_ms, card_topics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [audit_row(record) for record in records],
            )
            connection.executemany(
                "INSERT OR IGNORE INTO issued_card VALUES (?, ?, ?, ?, ?)",
                [(uuid, topic, r.service_id, r.hook_instance, r.at.isoformat()) for r in records for uuid, topic in r.cards],
            )
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise StoreUnavailable(f"SQLite write failed: {type(error).__name__}") from None

    def feedback_entries(self, service_id: str | None = None) -> list[StoredFeedback]:
        query = "SELECT * FROM feedback"
        args: tuple[str, ...] = ()
        if service_id is not None:
            query, args = query + " WHERE service_id = ?", (service_id,)
        return [stored_feedback(row) for row in self._connection().execute(query + " ORDER BY received_at, id", args)]

    def audit_entries(self) -> list[AuditRecord]:
        rows = self._connection().execute(
            "SELECT at, service_id, hook, hook_instance, client_issuer, client_tenant, patient, status, outcome,"
            " latency_ms, card_topics FROM audit ORDER BY id"
        )
        return [audit_record(row) for row in rows]

    def feedback_report(self) -> list[FeedbackReportRow]:
        connection = self._connection()
        return report_rows(connection.execute(REPORT_QUERY).fetchall(), connection.execute(REASONS_QUERY).fetchall())

    def check(self) -> None:
        """Raise StoreUnavailable unless a write commits now (a file that became read-only, a full disk, a lock
        held longer than a request would wait)."""
        try:
            self._write("INSERT OR REPLACE INTO readiness_probe (id, at) VALUES (?, ?)", [(1, datetime.now(UTC).isoformat())])
        except StoreUnavailable as unavailable:
            raise StoreUnavailable(f"SQLite unavailable for writing: {str(unavailable).removeprefix('SQLite write failed: ')}") from None
