"""Cards: findings (findings.py), order checks (order_checks.py), the resources suggestions create
(drafts.py), and the per-call identity of cards rendered once (identity.py)."""

from .findings import render_finding
from .identity import CardContext, IssuedCards
from .order_checks import BASELINE_MONITORING, THERAPY_SAFETY, render_monitoring, render_safety

__all__ = ["BASELINE_MONITORING", "THERAPY_SAFETY", "CardContext", "IssuedCards", "render_finding", "render_monitoring", "render_safety"]
