"""Feedback storage behind a small interface; SQLite is the embedded default.

Clients may send the same feedback more than once: each item is keyed by a
hash of the service id and the item's canonical JSON, so a repeat is a no-op.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

import orjson


@dataclass(frozen=True)
class SaveResult:
    received: int
    stored: int  # new items; received - stored were repeats


@dataclass(frozen=True)
class StoredFeedback:
    id: str
    service_id: str
    card: str
    outcome: str
    outcome_timestamp: str
    accepted_suggestions: tuple[str, ...]
    override_reason_system: str | None
    override_reason_code: str | None
    override_reason_display: str | None
    user_comment: str | None
    received_at: str


class FeedbackStore(Protocol):
    def save(self, service_id: str, items: Sequence[Mapping[str, Any]]) -> SaveResult: ...

    def entries(self, service_id: str | None = None) -> list[StoredFeedback]: ...


def feedback_key(service_id: str, item: Mapping[str, Any]) -> str:
    canonical = orjson.dumps({"service": service_id, "item": item}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


# Each entry moves the schema one version up; PRAGMA user_version records where a database is.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE feedback (
        id TEXT PRIMARY KEY,
        service_id TEXT NOT NULL,
        card TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
        outcome_timestamp TEXT NOT NULL,
        accepted_suggestions TEXT NOT NULL,
        override_reason_system TEXT,
        override_reason_code TEXT,
        override_reason_display TEXT,
        user_comment TEXT,
        received_at TEXT NOT NULL
    );
    CREATE INDEX feedback_by_card ON feedback (card);
    """,
)


class SQLiteFeedbackStore:
    def __init__(self, path: str | Path):
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate()

    @classmethod
    def from_url(cls, url: str) -> "SQLiteFeedbackStore":
        path = url.removeprefix("sqlite:///")
        if not url.startswith("sqlite:///") or not path or path == ":memory:":
            raise ValueError("CDS_DATABASE_URL must be sqlite:///path/to/file (a file: every worker shares it)")
        return cls(path)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=True)
        connection.execute("PRAGMA busy_timeout=10000")
        connection.execute("PRAGMA journal_mode=WAL")
        return connection

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread (gunicorn's threaded workers share the store), opened lazily so
        # that a store created before gunicorn forks hands no connection to its workers.
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    def _migrate(self) -> None:
        connection = self._connect()
        try:
            self._apply_migrations(connection)
        finally:
            connection.close()

    def _apply_migrations(self, connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {number}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def save(self, service_id: str, items: Sequence[Mapping[str, Any]]) -> SaveResult:
        received_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows = [_row(service_id, item, received_at) for item in items]
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            before = connection.total_changes
            connection.executemany(
                "INSERT OR IGNORE INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            stored = connection.total_changes - before
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return SaveResult(received=len(rows), stored=stored)

    def entries(self, service_id: str | None = None) -> list[StoredFeedback]:
        query = "SELECT * FROM feedback"
        args: Iterable[Any] = ()
        if service_id is not None:
            query += " WHERE service_id = ?"
            args = (service_id,)
        rows = self._connection().execute(query + " ORDER BY received_at, id", tuple(args)).fetchall()
        return [
            StoredFeedback(
                id=row[0],
                service_id=row[1],
                card=row[2],
                outcome=row[3],
                outcome_timestamp=row[4],
                accepted_suggestions=tuple(orjson.loads(row[5])),
                override_reason_system=row[6],
                override_reason_code=row[7],
                override_reason_display=row[8],
                user_comment=row[9],
                received_at=row[10],
            )
            for row in rows
        ]


def _row(service_id: str, item: Mapping[str, Any], received_at: str) -> tuple[Any, ...]:
    override = item.get("overrideReason") or {}
    reason = override.get("reason") or {}
    return (
        feedback_key(service_id, item),
        service_id,
        item["card"],
        item["outcome"],
        item["outcomeTimestamp"],
        orjson.dumps([s["id"] for s in item.get("acceptedSuggestions", ())]).decode(),
        reason.get("system"),
        reason.get("code"),
        reason.get("display"),
        override.get("userComment"),
        received_at,
    )
