"""Order-hook cards about a drafted next-line agent: its safety screen and its missing baseline tests."""

from __future__ import annotations

from dataclasses import replace
from typing import TypeGuard

from ..assess.orders import AgentOrder
from ..assess.patient import PatientFactors
from ..knowledge import BaselineTest, Knowledge, OrderTemplate, OverrideKind
from ..recommend.ranking import NextLinePlan
from ..recommend.safety import SafetyFlag
from .drafts import draft_medication_request, draft_service_request, switch_suggestions
from .identity import CardContext
from .model import SUMMARY_LIMIT, Action, Card, Suggestion, fit_summary
from .prescribing import boxed_warning_lines

THERAPY_SAFETY = "therapy-safety"
BASELINE_MONITORING = "baseline-monitoring"


def render_safety(
    drafted: AgentOrder, flags: tuple[SafetyFlag, ...], plan: NextLinePlan, context: CardContext, knowledge: Knowledge,
    patient: PatientFactors,
) -> Card:
    option = knowledge.option(drafted.agent)
    approval = option.approvals.get(plan.region)  # the region's draft order replaces a dose its rules refuse
    regional_order = approval.order.for_patient(patient.age_years, patient.weight_kg) if approval and approval.order else None
    contraindications = [f for f in flags if f.contraindicated]
    indicator = "critical" if contraindications else "warning"
    first = (contraindications or list(flags))[0]
    verdict = "do not start" if contraindications else "caution"
    more = f" (+{len(flags) - 1} more)" if len(flags) > 1 else ""
    head = f"{option.label}: {verdict}: "
    summary = head + fit_summary(first.reason, SUMMARY_LIMIT - len(head) - len(more)) + more
    lines = [f"**{option.label}** is being ordered. Safety screen for this patient:", ""]
    for flag in flags:
        label = "Contraindication" if flag.contraindicated else "Caution"
        lines.append(f"- **{label}**: {flag.text} ({knowledge.evidence(flag.claim)}).")
    suggestions: tuple[Suggestion, ...] = ()
    shown = [option]  # the agents this card names for starting: the drafted one, and the alternatives it offers
    card_key = f"{THERAPY_SAFETY}/{drafted.order.source}"
    if contraindications:
        alternatives = replace(plan, offered=tuple(o for o in plan.offered if o.option.id != drafted.agent))
        suggestions = switch_suggestions(alternatives, card_key, None, context, knowledge, (drafted.order,))
        remove = Suggestion(
            label=f"Remove the draft {option.label} order",
            key="remove",
            uuid=context.suggestion_uuid(card_key, "remove"),
            actions=(Action("delete", f"Remove the draft order {drafted.order.source}", resource_id=drafted.order.source),),
        )
        suggestions = (*suggestions, remove)
        if alternatives.offered:
            lines += ["", "Safer options for this patient, ranked: " + "; ".join(o.option.label for o in alternatives.offered[:5]) + "."]
        shown += [o.option for o in (*alternatives.offered[:5], *alternatives.suggested())]
    elif any(f.dose_rule for f in flags) and _within_dose_limits(regional_order, flags):
        template = regional_order
        replacement = Suggestion(
            label=f"Replace with {template.text}: {template.instruction}",
            key="dose",
            uuid=context.suggestion_uuid(card_key, "dose"),
            actions=(
                Action("delete", f"Remove the draft order {drafted.order.source}", resource_id=drafted.order.source),
                Action("create", f"Draft order: {template.text}, {template.instruction}",
                       resource=draft_medication_request(template, None, context, knowledge)),
            ),
            is_recommended=True,
        )
        suggestions = (replacement,)
    boxed = boxed_warning_lines(shown, knowledge, plan.region)
    if boxed:
        lines += ["", *boxed]
    return context.card(card_key, THERAPY_SAFETY, summary, indicator, "\n".join(lines), OverrideKind.SAFETY, knowledge, suggestions)


def _within_dose_limits(order: OrderTemplate | None, flags: tuple[SafetyFlag, ...]) -> TypeGuard[OrderTemplate]:
    """Whether the region's usual order is a replacement every dose rule accepts (100 mg does not answer '50 mg only')."""
    if order is None or order.dose_mg is None:
        return False
    return all(order.dose_mg <= f.dose_limit_mg for f in flags if f.dose_rule and f.dose_limit_mg is not None)


def render_monitoring(drafted: AgentOrder, missing: tuple[BaselineTest, ...], context: CardContext, knowledge: Knowledge) -> Card:
    option = knowledge.option(drafted.agent)
    monitoring = knowledge.monitoring[drafted.agent]
    names = ", ".join(t.short for t in missing)
    summary = fit_summary(f"{option.label}: {len(missing)} baseline test{'s' if len(missing) != 1 else ''} missing ({names})")
    lines = [
        f"**Baseline tests before {option.label}**: no result on record within each test's window.",
        "",
        *(f"- {t.label}: none in the last {t.lookback_days} days" if t.lookback_days else f"- {t.label}: none on record" for t in missing),
        "",
        "Required before starting: "
        + ", ".join(t.label + (f" ({t.when_label})" if t.when_label else "") for t in monitoring.tests)
        + (f" ({monitoring.note})" if monitoring.note else "") + f" ({knowledge.evidence(monitoring.claim)}).",
        knowledge.monitoring_windows.text,
    ]
    card_key = f"{BASELINE_MONITORING}/{drafted.order.source}"
    suggestions = tuple(
        Suggestion(
            label=f"Order {test.order_text}",
            key=test.id,
            uuid=context.suggestion_uuid(card_key, test.id),
            actions=(Action("create", f"Draft order: {test.order_text}", resource=draft_service_request(test, option, context)),),
            is_recommended=True,
        )
        for test in missing
    )
    return context.card(card_key, BASELINE_MONITORING, summary, "info", "\n".join(lines), OverrideKind.MONITORING, knowledge, suggestions, "any")
