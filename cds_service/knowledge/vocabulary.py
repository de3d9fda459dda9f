"""The concepts of concepts.toml the service's code names, and the kind each must have (checked at load).

Every other concept is reached through the knowledge files (rules, groups, options)."""

from __future__ import annotations

DUPILUMAB = "dupilumab"
ATOPIC_DERMATITIS = "atopic_dermatitis"
KERATITIS = "keratitis"
OPHTHALMIC_CORTICOSTEROID = "ophthalmic_corticosteroid"
BODY_WEIGHT = "body_weight"

# Stop-reason concepts -> what a stop for that reason means to the assessment.
STOP_OCULAR = "stop_ocular"
STOP_ADVERSE = "stop_adverse"
STOP_LOSS_OF_RESPONSE = "stop_loss_of_response"
STOP_INEFFICACY = "stop_inefficacy"

# Concept groups the rules read.
EYE = "eye"
EYE_RED_FLAG = "eye-red-flag"
EYE_SIGHT_THREAT = "eye-sight-threat"
OCULAR_TREATMENT = "ocular"
CONFOUNDER = "confounder"
HEAD_NECK = "head-neck"

CONCEPTS_NAMED_IN_CODE = {
    DUPILUMAB: "drug",
    ATOPIC_DERMATITIS: "condition",
    KERATITIS: "condition",
    OPHTHALMIC_CORTICOSTEROID: "drug",
    BODY_WEIGHT: "vital",
    STOP_OCULAR: "stop-reason",
    STOP_ADVERSE: "stop-reason",
    STOP_LOSS_OF_RESPONSE: "stop-reason",
    STOP_INEFFICACY: "stop-reason",
}
