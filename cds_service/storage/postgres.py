"""PostgreSQL store, for several replicas sharing one database. A connection pool per worker process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool

from . import migrations
from .base import (
    BACKGROUND_WAIT_MS,
    REASONS_QUERY,
    REPORT_QUERY,
    REPORT_WAIT_MS,
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

log = logging.getLogger("cds_service.storage")
_MIGRATION_LOCK = 7_140_202_611  # pg_advisory_xact_lock key: one replica migrates at a time


def _reason(error: Exception) -> str:
    """The error's kind and libpq's reason ("Connection refused", "timeout expired", 'role "x" does not exist')."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = lines[0].split("failed: ")[-1].removeprefix("FATAL:").strip() if lines else ""
    return f"{type(error).__name__}: {detail[:120]}" if detail else type(error).__name__


class PostgresStore:
    def __init__(self, url: str, pool_size: int = 4):
        self.url = url
        self.pool_size = pool_size
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._migrate()

    def _migrate(self) -> None:
        try:
            with psycopg.connect(self.url, connect_timeout=5) as connection, connection.transaction():
                connection.execute(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                (version,) = connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone() or (0,)
                if version > len(migrations.POSTGRES):
                    # A rollback: migrations only add, so this release still runs on the newer schema.
                    log.warning("database schema version %d is newer than this release's %d (a rollback?): running on it",
                                version, len(migrations.POSTGRES))
                for number, script in enumerate(migrations.POSTGRES[version:], start=version + 1):
                    for statement in migrations.statements(script):
                        connection.execute(statement)
                    connection.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))
        except psycopg.Error as error:
            raise StoreUnavailable(f"PostgreSQL at {self.where} unavailable: {_reason(error)}") from None

    @property
    def where(self) -> str:
        """host:port/database of the URL: never the user or password."""
        parts = urlsplit(self.url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"

    def _pool_(self) -> ConnectionPool:
        # Opened lazily, so a store created before gunicorn forks hands no pool threads to its workers.
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(self.url, min_size=1, max_size=self.pool_size, timeout=5,
                                            kwargs={"connect_timeout": 5}, open=True)
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def _run(self, work, wait_ms: int = REQUEST_WAIT_MS):
        """`work` in a transaction; waiting at most `wait_ms` for a pooled connection and for each statement
        (locks included): a request thread gets a quick StoreUnavailable from a slow or locked database."""
        try:
            with self._pool_().connection(timeout=wait_ms / 1000) as connection:
                with connection.transaction():
                    connection.execute(f"SET LOCAL statement_timeout = {int(wait_ms)}")
                    return work(connection)
        except (psycopg.Error, TimeoutError) as error:
            raise StoreUnavailable(f"PostgreSQL at {self.where} unavailable: {_reason(error)}") from None

    def save_feedback(self, service_id: str, items: Sequence[Mapping[str, Any]]) -> SaveResult:
        received_at = datetime.now(UTC).isoformat(timespec="seconds")
        rows = [feedback_row(service_id, item, received_at) for item in items]

        def insert(connection: psycopg.Connection) -> int:
            stored = 0
            for row in rows:
                cursor = connection.execute(
                    "INSERT INTO feedback VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING", row
                )
                stored += cursor.rowcount
            return stored

        return SaveResult(received=len(rows), stored=self._run(insert))

    def record_call(self, record: AuditRecord) -> None:
        self.record_calls([record])

    def record_calls(self, records: Sequence[AuditRecord]) -> None:
        def insert(connection: psycopg.Connection) -> None:
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO audit (at, service_id, hook, hook_instance, client_issuer, client_tenant, patient, status,"
                    " outcome, latency_ms, card_topics) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [audit_row(record) for record in records],
                )
                cards = [
                    (uuid, topic, r.service_id, r.hook_instance, r.at.isoformat()) for r in records for uuid, topic in r.cards
                ]
                if cards:
                    cursor.executemany("INSERT INTO issued_card VALUES (%s, %s, %s, %s, %s) ON CONFLICT (uuid) DO NOTHING", cards)

        self._run(insert, BACKGROUND_WAIT_MS)

    def feedback_entries(self, service_id: str | None = None) -> list[StoredFeedback]:
        def select(connection: psycopg.Connection) -> list[StoredFeedback]:
            if service_id is None:
                rows = connection.execute("SELECT * FROM feedback ORDER BY received_at, id").fetchall()
            else:
                rows = connection.execute(
                    "SELECT * FROM feedback WHERE service_id = %s ORDER BY received_at, id", (service_id,)
                ).fetchall()
            return [stored_feedback(row) for row in rows]

        return self._run(select, REPORT_WAIT_MS)

    def audit_entries(self) -> list[AuditRecord]:
        return self._run(lambda c: [audit_record(row) for row in c.execute(
            "SELECT at, service_id, hook, hook_instance, client_issuer, client_tenant, patient, status, outcome,"
            " latency_ms, card_topics FROM audit ORDER BY id").fetchall()], REPORT_WAIT_MS)

    def feedback_report(self) -> list[FeedbackReportRow]:
        return self._run(lambda c: report_rows(c.execute(REPORT_QUERY).fetchall(), c.execute(REASONS_QUERY).fetchall()),
                         REPORT_WAIT_MS)

    def check(self) -> None:
        """Raise StoreUnavailable unless a write commits now (readiness)."""
        self._run(lambda c: c.execute(
            "INSERT INTO readiness_probe (id, at) VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
            (datetime.now(UTC).isoformat(),)))
