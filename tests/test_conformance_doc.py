"""docs/conformance.md covers every CDS Hooks 2.0 requirement on the service, and names real tests."""

from __future__ import annotations

import csv
import re

from support import EXTERNAL, ROOT

DOC = ROOT / "docs" / "conformance.md"


def service_requirement_ids() -> set[str]:
    with open(EXTERNAL / "cds-hooks-2.0-requirements.csv", newline="") as handle:
        return {row["id"] for row in csv.DictReader(handle) if "Service" in row["actors"]}


def documented_rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"\| (\d+) \|", line)
        if match:
            rows[match.group(1)] = line
    return rows


def test_the_table_is_current():
    """Regenerate with: .venv/bin/python tests/conformance_table.py"""
    from conformance_table import render

    assert DOC.read_text() == render()


def test_every_service_requirement_is_in_the_table():
    assert set(documented_rows()) == service_requirement_ids()


def test_every_test_the_table_names_exists():
    for requirement, line in documented_rows().items():
        for reference in re.findall(r"`(tests/[^`]+)`", line):
            path, _, name = reference.partition("::")
            source = (ROOT / path).read_text()
            assert re.search(rf"^def {re.escape(name)}\(", source, re.MULTILINE), f"REQ {requirement}: {reference} not found"
