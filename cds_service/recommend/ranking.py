"""Rank the next-line options of the knowledge base for this patient.

Options keep the knowledge base's order (rank group, then the seed's order).
An option not approved for the patient's age or region is not offered; one
whose eligibility cannot be checked is offered with a caution and without a
draft order. The reasons are kept so the card can show them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..assess.findings import Finding, PatientFactors
from ..knowledge import Knowledge, TherapyOption


@dataclass(frozen=True)
class RankedOption:
    option: TherapyOption
    rank: int
    cautions: tuple[str, ...]
    orderable: bool  # eligibility checked and a draft order can be written


@dataclass(frozen=True)
class ExcludedOption:
    option: TherapyOption
    reason: str


@dataclass(frozen=True)
class NextLinePlan:
    offered: tuple[RankedOption, ...]
    excluded: tuple[ExcludedOption, ...]

    def suggested(self) -> tuple[RankedOption, ...]:
        """The orderable options of the best-ranked group that has any: the one-click choices."""
        orderable = [o for o in self.offered if o.orderable]
        if not orderable:
            return ()
        best = orderable[0].option.group_rank
        return tuple(o for o in orderable if o.option.group_rank == best)


def rank_next_line_options(finding: Finding, patient: PatientFactors | None, knowledge: Knowledge, region: str) -> NextLinePlan:
    offered: list[tuple[TherapyOption, list[str], bool]] = []
    excluded: list[ExcludedOption] = []
    age = patient.age_years if patient else None
    for option in sorted(knowledge.therapies, key=lambda o: (o.group_rank, o.position)):
        cautions: list[str] = []
        checked = True
        approval = option.approvals.get(region)
        if approval is None:
            cautions.append(f"approval in {region} not recorded in the knowledge base")
            checked = False
        elif approval.status == "not-approved":
            excluded.append(ExcludedOption(option, approval.note or f"not approved for atopic dermatitis in {region}"))
            continue
        elif approval.status == "off-label":
            cautions.append(f"off-label for atopic dermatitis in {region}")
        if approval is not None and approval.min_age_years is not None:
            if age is None:
                cautions.append(f"approved from {approval.min_age_years:g} years; age not recorded")
                checked = False
            elif age < approval.min_age_years:
                excluded.append(ExcludedOption(option, f"approved from {approval.min_age_years:g} years; patient is {age}"))
                continue
        if approval is not None and approval.min_weight_kg is not None:
            cautions.append(f"approved from {approval.min_weight_kg:g} kg; weight not checked")
            checked = False
        offered.append((option, cautions, checked and option.order is not None))
    return NextLinePlan(
        offered=tuple(RankedOption(o, i + 1, tuple(c), orderable) for i, (o, c, orderable) in enumerate(offered)),
        excluded=tuple(excluded),
    )
