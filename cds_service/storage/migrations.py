"""Schema migrations, one list per backend: each entry moves the schema one version up.

A migration is applied once, in a transaction, under a lock (several replicas may start together).
Never edit an applied migration; add the next one. Migrations only add (tables, indexes, nullable
columns), so the previous release still runs on the new schema: a rollback needs no down-migration.
"""

from __future__ import annotations

SQLITE: tuple[str, ...] = (
    # 1: feedback
    """
    CREATE TABLE IF NOT EXISTS feedback (
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
    CREATE INDEX IF NOT EXISTS feedback_by_card ON feedback (card);
    """,
    # 2: audit trail and the cards issued (for the feedback report)
    """
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        service_id TEXT NOT NULL,
        hook TEXT NOT NULL,
        hook_instance TEXT,
        client_issuer TEXT,
        client_tenant TEXT,
        patient TEXT,
        status INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        latency_ms REAL NOT NULL,
        card_topics TEXT NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (at);
    CREATE TABLE issued_card (
        uuid TEXT PRIMARY KEY,
        topic TEXT NOT NULL,
        service_id TEXT NOT NULL,
        hook_instance TEXT,
        at TEXT NOT NULL
    );
    """,
    # 3: one row readiness rewrites, to prove the database takes writes (a SELECT 1 never touches the file)
    """
    CREATE TABLE readiness_probe (id INTEGER PRIMARY KEY, at TEXT NOT NULL);
    """,
)

POSTGRES: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS feedback (
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
    CREATE INDEX IF NOT EXISTS feedback_by_card ON feedback (card);
    """,
    """
    CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY,
        at TEXT NOT NULL,
        service_id TEXT NOT NULL,
        hook TEXT NOT NULL,
        hook_instance TEXT,
        client_issuer TEXT,
        client_tenant TEXT,
        patient TEXT,
        status INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        latency_ms DOUBLE PRECISION NOT NULL,
        card_topics TEXT NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (at);
    CREATE TABLE issued_card (
        uuid TEXT PRIMARY KEY,
        topic TEXT NOT NULL,
        service_id TEXT NOT NULL,
        hook_instance TEXT,
        at TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE readiness_probe (id INTEGER PRIMARY KEY, at TEXT NOT NULL);
    """,
)


def statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
