"""The storage interface, its records, and what both database backends share."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson

from ..hooks.validation import feedback_instant

# How long a write may wait for the database (a lock, a pool connection): briefly on a request's thread, so a
# locked or slow database costs feedback a quick 503 and never holds the threads hook calls need; longer for
# the background audit writer, which nobody waits for.
REQUEST_WAIT_MS = 1000
BACKGROUND_WAIT_MS = 5000
REPORT_WAIT_MS = 120_000  # an operator's report over the whole feedback table


class StoreUnavailable(Exception):
    """The database cannot be reached or refused the write; feedback answers 503 so the client retries."""


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


@dataclass(frozen=True)
class AuditRecord:
    """One hook call: who asked, about whom, what was answered. No tokens, no clinical free text."""

    at: datetime
    service_id: str
    hook: str
    hook_instance: str | None
    client_issuer: str | None
    client_tenant: str | None
    patient: str | None
    status: int
    outcome: str
    latency_ms: float
    cards: tuple[tuple[str, str], ...] = field(default=())  # (card uuid, topic code)


@dataclass(frozen=True)
class FeedbackReportRow:
    topic: str
    cards_issued: int
    feedback: int
    accepted: int
    overridden: int
    override_reasons: tuple[tuple[str, int], ...]  # (reason display or code, count), most frequent first

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.feedback if self.feedback else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.feedback if self.feedback else None


class Store(Protocol):
    def save_feedback(self, service_id: str, items: Sequence[Mapping[str, Any]]) -> SaveResult: ...

    def feedback_entries(self, service_id: str | None = None) -> list[StoredFeedback]: ...

    def record_call(self, record: AuditRecord) -> None: ...

    def record_calls(self, records: Sequence[AuditRecord]) -> None: ...

    def audit_entries(self) -> list[AuditRecord]: ...

    def feedback_report(self) -> list[FeedbackReportRow]: ...

    def check(self) -> None:
        """Raise StoreUnavailable when the database cannot be used (readiness)."""

    def close(self) -> None:
        """Release connections (a PostgreSQL pool runs threads of its own)."""


def feedback_key(service_id: str, item: Mapping[str, Any]) -> str:
    """Feedback's identity (docs/operations.md): the service, the card, the outcome, the instant of the outcome (in
    UTC: `.000Z` and `+00:00` name the same one), the accepted suggestions as a set, the override reason's system
    and code, and the comment. Members outside these (a reason's display, extensions) do not make it another
    piece of feedback, so a re-send that differs only there is stored once."""
    instant = feedback_instant(item["outcomeTimestamp"])
    override = item.get("overrideReason") or {}
    reason = override.get("reason") or {}
    identity = [
        service_id,
        item["card"],
        item["outcome"],
        instant.isoformat() if instant else item["outcomeTimestamp"],
        sorted({s["id"] for s in item.get("acceptedSuggestions", ())}),
        reason.get("system"),
        reason.get("code"),
        override.get("userComment"),
    ]
    return hashlib.sha256(orjson.dumps(identity)).hexdigest()


def feedback_row(service_id: str, item: Mapping[str, Any], received_at: str) -> tuple[Any, ...]:
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


def stored_feedback(row: Sequence[Any]) -> StoredFeedback:
    return StoredFeedback(
        id=row[0], service_id=row[1], card=row[2], outcome=row[3], outcome_timestamp=row[4],
        accepted_suggestions=tuple(orjson.loads(row[5])), override_reason_system=row[6], override_reason_code=row[7],
        override_reason_display=row[8], user_comment=row[9], received_at=str(row[10]),
    )


def audit_row(record: AuditRecord) -> tuple[Any, ...]:
    return (
        record.at.isoformat(), record.service_id, record.hook, record.hook_instance, record.client_issuer,
        record.client_tenant, record.patient, record.status, record.outcome, round(record.latency_ms, 2),
        orjson.dumps([topic for _, topic in record.cards]).decode(),
    )


def audit_record(row: Sequence[Any]) -> AuditRecord:
    return AuditRecord(
        at=datetime.fromisoformat(str(row[0])), service_id=row[1], hook=row[2], hook_instance=row[3], client_issuer=row[4],
        client_tenant=row[5], patient=row[6], status=row[7], outcome=row[8], latency_ms=float(row[9]),
        cards=tuple(("", topic) for topic in orjson.loads(row[10])),
    )


# One query for both backends (standard SQL): per topic, cards issued and what feedback said of them.
REPORT_QUERY = """
SELECT c.topic, COUNT(DISTINCT c.uuid), COUNT(f.id),
       SUM(CASE WHEN f.outcome = 'accepted' THEN 1 ELSE 0 END),
       SUM(CASE WHEN f.outcome = 'overridden' THEN 1 ELSE 0 END)
FROM issued_card c LEFT JOIN feedback f ON f.card = c.uuid
GROUP BY c.topic ORDER BY c.topic
"""
REASONS_QUERY = """
SELECT c.topic, COALESCE(f.override_reason_display, f.override_reason_code, '(no reason given)'), COUNT(*)
FROM feedback f JOIN issued_card c ON f.card = c.uuid
WHERE f.outcome = 'overridden'
GROUP BY c.topic, COALESCE(f.override_reason_display, f.override_reason_code, '(no reason given)')
ORDER BY c.topic, COUNT(*) DESC
"""


def report_rows(counts: Sequence[Sequence[Any]], reasons: Sequence[Sequence[Any]]) -> list[FeedbackReportRow]:
    by_topic: dict[str, list[tuple[str, int]]] = {}
    for topic, reason, count in reasons:
        by_topic.setdefault(topic, []).append((reason, int(count)))
    return [
        FeedbackReportRow(
            topic, int(issued), int(feedback), int(accepted or 0), int(overridden or 0), tuple(by_topic.get(topic, ()))
        )
        for topic, issued, feedback, accepted, overridden in counts
    ]
