"""What a prescriber must see beside the next-line options: the boxed warning of the agents a card offers,
suggests or screens, stated once per card (therapies.toml [boxed_on_cards]).

The sentences and their sources come from the knowledge files; this module only arranges them.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..knowledge import Knowledge
from ..knowledge.model import Claim, TherapyOption, WarningKind


def boxed_warning_lines(options: Iterable[TherapyOption], knowledge: Knowledge, region: str) -> list[str]:
    """One line per distinct boxed (US) or special (EU SmPC) warning stated in the region, of the options whose rank
    group is in [boxed_on_cards], in the order the options come: two JAK inhibitors with the same warning give one
    line, not two."""
    found: dict[tuple[str, WarningKind, str, Claim], None] = {}  # the brief text on cards; the full one is in the app
    for option in options:
        named = knowledge.boxed_on_cards.get(option.rank_group)
        if named is None:
            continue
        for warning in option.warnings:
            if warning.kind in _STATED_ONCE and warning.stated_in(region):
                found.setdefault((named.label, warning.kind, warning.brief or warning.text, warning.claim), None)
    return [knowledge.cards.text("plan", _STATED_ONCE[kind], agents=label, text=text, source=knowledge.evidence(claim))
            for label, kind, text, claim in found]


_STATED_ONCE = {WarningKind.BOXED: "boxed_warning", WarningKind.SPECIAL: "special_warning"}  # kind -> cards.toml [plan] line
