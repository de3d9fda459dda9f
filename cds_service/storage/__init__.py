"""Where feedback and the audit trail live: SQLite by default, PostgreSQL when CDS_DATABASE_URL says so.

Both stores implement `Store` (base.py) with the same schema, migrated forward on start.
"""

from __future__ import annotations

from .base import AuditRecord, FeedbackReportRow, SaveResult, Store, StoredFeedback, StoreUnavailable


def open_store(url: str) -> Store:
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError("CDS_DATABASE_URL must start with sqlite:/// or postgresql://")


__all__ = ["AuditRecord", "FeedbackReportRow", "SaveResult", "Store", "StoreUnavailable", "StoredFeedback", "open_store"]
