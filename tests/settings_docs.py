"""Writes the README's configuration table and .env.example from cds_service.settings.SETTINGS_DOC.

    .venv/bin/python tests/settings_docs.py
"""

from __future__ import annotations

import shlex
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
    """Every setting commented out at its default, quoted for the shell: sourced as it is, the file changes
    nothing (scripts/serve then runs as the README says); uncomment a line to change that setting."""
    lines = ["# Settings for cds-service, each at its default and commented out. Copy to .env, uncomment and change",
             "# what you need, then: set -a; . ./.env; set +a; ./scripts/serve",
             "# Production needs at least CDS_AUTH=required (the service's default; scripts/serve turns it off unless",
             "# set), CDS_TRUSTED_ISSUERS and CDS_PUBLIC_BASE_URL.", ""]
    for name, (default, description) in SETTINGS_DOC.items():
        lines += [f"# {description}", f"#{name}={shlex.quote(default) if default else ''}", ""]
    return "\n".join(lines)


def current_readme() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(HEADER)
    end = text.index("\n\n", start)
    return text[:start] + readme_table() + text[end:]


if __name__ == "__main__":
    (ROOT / "README.md").write_text(current_readme())
    (ROOT / ".env.example").write_text(env_example())
