"""Which draft orders an order hook's advice is about (order-select: the selected ones; order-sign: all)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..knowledge import Knowledge, vocabulary
from ..record.model import DraftOrder


@dataclass(frozen=True)
class AgentOrder:
    """A draft order for one of the next-line options."""

    order: DraftOrder
    agent: str  # option id in knowledge/therapies.toml


@dataclass(frozen=True)
class OrderFocus:
    dupilumab: tuple[DraftOrder, ...]
    next_line: tuple[AgentOrder, ...]

    def __bool__(self) -> bool:
        return bool(self.dupilumab or self.next_line)


def orders_in_focus(draft_orders: Iterable[DraftOrder], knowledge: Knowledge) -> OrderFocus:
    """Read from the draft orders alone: a call about none of ours is answered before the record is read."""
    options = {o.id for o in knowledge.therapies}
    dupilumab, next_line = [], []
    for order in draft_orders:
        if not order.selected:
            continue
        if order.is_a(vocabulary.DUPILUMAB):
            dupilumab.append(order)
            continue
        agent = next((m.concept for m in order.matches if m.concept in options), None)
        if agent is not None:
            next_line.append(AgentOrder(order, agent))
    return OrderFocus(tuple(dupilumab), tuple(next_line))
