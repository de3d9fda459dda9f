"""Writes the scenario and request tables of fhir_fixtures/README.md from the expected-outcome files.

    .venv/bin/python tests/fixture_index.py      # after adding or changing a scenario
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import REQUESTS, ROOT, load_scenario, scenario_names  # noqa: E402

README = ROOT / "fhir_fixtures" / "README.md"
MARKER = "## Scenarios"


def _answer(cards: list[dict]) -> str:
    if not cards:
        return "no card"
    parts = []
    for card in cards:
        text = f"`{card['topic']}` ({card['indicator']})"
        if card.get("suggested"):
            text += ": " + ", ".join(card["suggested"])
        parts.append(text)
    return "; ".join(parts)


def tables() -> str:
    lines = [MARKER, "", "| Scenario | What it is | The service must answer |", "|---|---|---|"]
    for name in scenario_names():
        expected = load_scenario(name).expected
        answer = _answer(expected["cards"])
        for order in expected.get("orders", []):
            answer += f"<br>order `{order['draft']['text']}`: " + _answer(order["cards"])
        region = f"**{expected['region']}**: " if "region" in expected else ""
        lines.append(f"| `{name}` | {region}{expected['description']} | {answer} |")
    lines += ["", "## Requests", "", "| Request | Hook | Scenario |", "|---|---|---|"]
    for path in sorted(REQUESTS.glob("*.json")):
        scenario, hook, _ = path.name.rsplit(".", 2)
        lines.append(f"| `requests/{path.name}` | {hook} | `{scenario}` |")
    return "\n".join(lines) + "\n"


def current_readme() -> str:
    head = README.read_text().split(MARKER)[0]
    return head + tables()


if __name__ == "__main__":
    README.write_text(current_readme())
