"""Clinical knowledge held as data files (TOML), each entry with its source and evidence status.

`load_knowledge()` reads and checks them once (loader.py; schemas/ holds their JSON Schemas); the rest
of the service reads the typed view (model.py). A file that fails its checks stops the service at
start-up with every problem named by file, entry and key, never in a card.
"""

from __future__ import annotations

from .concepts import ConceptDefinition, ConceptMatcher
from .loader import KnowledgeError, KnowledgeProblem, check_knowledge, load_knowledge, predicates
from .model import (
    Advice,
    AgentMonitoring,
    Approval,
    ApprovalDecision,
    BaselineTest,
    Claim,
    CriterionRule,
    DrosdGrade,
    DrosdKnowledge,
    DrugWarning,
    Effect,
    EvidenceStatus,
    Knowledge,
    OrderTemplate,
    OrderVariant,
    OverrideKind,
    Region,
    ResponseCriterion,
    SafetyRule,
    TherapyOption,
    WarningKind,
)

__all__ = [
    "Advice",
    "AgentMonitoring",
    "Approval",
    "ApprovalDecision",
    "BaselineTest",
    "Claim",
    "ConceptDefinition",
    "ConceptMatcher",
    "CriterionRule",
    "DrosdGrade",
    "DrosdKnowledge",
    "DrugWarning",
    "Effect",
    "EvidenceStatus",
    "Knowledge",
    "KnowledgeError",
    "KnowledgeProblem",
    "OrderTemplate",
    "OrderVariant",
    "Region",
    "OverrideKind",
    "ResponseCriterion",
    "SafetyRule",
    "TherapyOption",
    "WarningKind",
    "check_knowledge",
    "load_knowledge",
    "predicates",
]
