"""Protocol errors and the FHIR OperationOutcome every non-2xx answer carries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: where (a dotted path into the body) and what."""

    where: str
    message: str


class InvalidRequest(Exception):
    """The request breaks the CDS Hooks protocol; answered with 400."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.where}: {p.message}" for p in self.problems))


# HTTP status -> OperationOutcome issue type (http://hl7.org/fhir/issue-type)
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    412: "not-found",
    413: "too-long",
    415: "not-supported",
    500: "exception",
    503: "transient",
}


def operation_outcome(status: int, diagnostics: str, problems: Iterable[Problem] = ()) -> dict[str, Any]:
    code = ISSUE_CODES.get(status, "processing")
    issues = [
        {
            "severity": "error",
            "code": code,
            "diagnostics": f"{p.where}: {p.message}" if p.where else p.message,
            "expression": [p.where],
        }
        if p.where
        else {"severity": "error", "code": code, "diagnostics": p.message}
        for p in problems
    ]
    if not issues:
        issues = [{"severity": "error", "code": code, "diagnostics": diagnostics}]
    return {"resourceType": "OperationOutcome", "issue": issues}
