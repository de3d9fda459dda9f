"""What a card knows about the call it answers, and the per-call identity of cards rendered once.

Cards about the same data, day, caller and orders in focus read the same; only their uuids (and the
hookInstance in SMART links' appContext) differ per call. They are rendered once and issued to each
call with its own identifiers.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from ..knowledge import Knowledge, OverrideKind
from .model import Card, Coding, Link, Suggestion

_CARD_NAMESPACE = uuid.UUID("8f0f6f0e-3c55-4a36-9a55-0d6d2c6a3f1e").bytes


@dataclass(frozen=True)
class CardContext:
    """What a card needs to know about the call it answers."""

    hook: str
    hook_instance: str
    today: date
    patient_id: str
    user_id: str | None
    encounter_id: str | None
    topic_system: str
    override_reason_system: str
    source_label: str
    app_url: str | None = None  # the SMART app's launch URL: finding cards link to it

    def card_uuid(self, key: str) -> str:
        """Stable for one hook call, unique across calls: feedback can name the card."""
        return _uuid_text(self._card_uuid(key))

    def suggestion_uuid(self, card_key: str, name: str, card: bytes | None = None) -> str:
        """`card`: the card's uuid as bytes, when the caller has it already."""
        return _uuid_text(name_based_uuid(card or self._card_uuid(card_key), name))

    def _card_uuid(self, key: str) -> bytes:
        return name_based_uuid(_CARD_NAMESPACE, f"{self.hook_instance}/{key}")

    def card(self, key: str, topic: str, summary: str, indicator: str, detail: str, override_kind: OverrideKind,
             knowledge: Knowledge, suggestions: tuple[Suggestion, ...] = (), selection: str = "at-most-one",
             links: tuple[Link, ...] = ()) -> Card:
        return Card(
            key=key,
            uuid=self.card_uuid(key),
            summary=summary,
            indicator=indicator,
            source_label=self.source_label,
            topic=Coding(self.topic_system, topic, knowledge.cards.topics[topic]),
            detail=detail,
            suggestions=suggestions,
            selection_behavior=selection if suggestions else None,
            override_reasons=tuple(
                Coding(self.override_reason_system, code, display)
                for code, display in knowledge.override_reasons[override_kind].items()
            ),
            links=links,
        )

    def course_link(self, topic: str, label: str) -> tuple[Link, ...]:
        """A SMART link to the course timeline; appContext tells the app what the card was about."""
        if not self.app_url:
            return ()
        context = orjson.dumps({"topic": topic, "hookInstance": self.hook_instance, "patientId": self.patient_id}).decode()
        return (Link(label, self.app_url, "smart", context),)


@dataclass(frozen=True)
class IssuedCards:
    """Cards as JSON, rendered once, issued to each hook call with that call's identifiers: card and
    suggestion uuids and the hookInstance in SMART links' appContext are the only parts that depend on it."""

    cards: tuple[tuple[str, dict[str, Any], tuple[str, ...]], ...]  # (card key, JSON, suggestion keys)

    @classmethod
    def of(cls, cards: Iterable[Card]) -> IssuedCards:
        return cls(tuple((c.key, c.to_json(), tuple(s.key for s in c.suggestions)) for c in cards))

    def issue(self, context: CardContext) -> list[dict[str, Any]]:
        """The cards for the call `context` describes (new objects where identifiers change; the rest shared)."""
        issued = []
        for key, template, suggestion_keys in self.cards:
            card_uuid = context._card_uuid(key)
            card = {**template, "uuid": _uuid_text(card_uuid)}
            if "suggestions" in card:
                card["suggestions"] = [
                    {**s, "uuid": context.suggestion_uuid(key, name, card_uuid)} for s, name in zip(card["suggestions"], suggestion_keys, strict=True)
                ]
            if "links" in card:
                card["links"] = [_issued_link(link, context.hook_instance) for link in card["links"]]
            issued.append(card)
        return issued


def _issued_link(link: dict[str, Any], hook_instance: str) -> dict[str, Any]:
    if "appContext" not in link:
        return link
    app_context = orjson.loads(link["appContext"])
    if "hookInstance" not in app_context:
        return link
    app_context["hookInstance"] = hook_instance
    return {**link, "appContext": orjson.dumps(app_context).decode()}


def name_based_uuid(namespace: bytes, name: str) -> bytes:
    """RFC 4122 version 5 (SHA-1, name-based), as `uuid.uuid5(UUID(bytes=namespace), name).bytes`; several are
    made per card issued, and building UUID objects cost more than the hashing."""
    digest = bytearray(hashlib.sha1(namespace + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(digest)


def _uuid_text(value: bytes) -> str:
    h = value.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
