"""Writes the README's configuration table and .env.example from cds_service.settings.SETTINGS_DOC.

    .venv/bin/python tests/settings_docs.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cds_service.settings import SETTINGS_DOC  # noqa: E402

HEADER = "| Variable | Default | What it does |"


def readme_table() -> str:
    rows = [HEADER, "|---|---|---|"]
    for name, (default, description) in SETTINGS_DOC.items():
        shown = f"`{default}`" if default else "(empty)"
        rows.append(f"| `{name}` | {shown} | {description.replace('|', chr(92) + '|')} |")
    return "\n".join(rows)


def env_example() -> str:
    lines = ["# Settings for cds-service. Copy to .env (or export) and change what you need.",
             "# Every setting has the default shown; the service starts with none set.", ""]
    for name, (default, description) in SETTINGS_DOC.items():
        lines += [f"# {description}", f"{name}={default}", ""]
    return "\n".join(lines)


def current_readme() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(HEADER)
    end = text.index("\n\n", start)
    return text[:start] + readme_table() + text[end:]


if __name__ == "__main__":
    (ROOT / "README.md").write_text(current_readme())
    (ROOT / ".env.example").write_text(env_example())
