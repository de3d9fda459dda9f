"""The README's configuration table and .env.example list exactly the settings the service reads.
Regenerate both with: .venv/bin/python tests/settings_docs.py"""

from __future__ import annotations

import subprocess

from cds_service.settings import SETTINGS_DOC, Settings
from settings_docs import current_readme, env_example
from support import ROOT, child_env


def test_the_readme_documents_every_setting_with_its_default():
    assert (ROOT / "README.md").read_text() == current_readme()


def sourced(script: str) -> dict[str, str]:
    """The CDS_* variables bash exports after running `script` (with `set -a`), from an environment without any."""
    result = subprocess.run(["bash", "-c", f"set -euo pipefail; unset CDS_DATABASE_URL; set -a; {script}; set +a; env -0"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30, env=child_env(ROOT))
    assert result.returncode == 0, result.stderr
    pairs = (item.split("=", 1) for item in result.stdout.split("\0") if item.startswith("CDS_"))
    return dict(pairs)


def test_env_example_sourced_as_it_is_changes_nothing_and_uncommented_sets_every_default():
    assert (ROOT / ".env.example").read_text() == env_example()
    assert sourced(". ./.env.example") == {}
    uncommented = sourced("""eval "$(sed 's/^#CDS_/CDS_/' .env.example)\"""")
    assert uncommented == {name: default for name, (default, _) in SETTINGS_DOC.items()}
    assert Settings.from_env(uncommented) == Settings.from_env({})


def test_the_readme_quick_start_is_the_two_scripts():
    readme = (ROOT / "README.md").read_text()
    assert "./scripts/serve" in readme and "./scripts/test" in readme
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec scripts/test")
