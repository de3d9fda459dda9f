"""Which draft orders an order hook's advice is about."""

from __future__ import annotations

from ..record.model import DraftOrder, PatientRecord
from .course import DUPILUMAB


def dupilumab_orders_in_focus(record: PatientRecord) -> tuple[DraftOrder, ...]:
    """Draft dupilumab orders the clinician is acting on (order-select: selected; order-sign: all)."""
    return tuple(o for o in record.draft_orders if o.selected and o.is_a(DUPILUMAB))
