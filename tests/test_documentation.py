"""The README's configuration table and .env.example list exactly the settings the service reads.
Regenerate both with: .venv/bin/python tests/settings_docs.py"""

from __future__ import annotations

from cds_service.settings import SETTINGS_DOC, Settings
from settings_docs import current_readme, env_example
from support import ROOT


def test_the_readme_documents_every_setting_with_its_default():
    assert (ROOT / "README.md").read_text() == current_readme()


def test_env_example_sets_every_setting_to_its_default_and_the_service_accepts_it():
    assert (ROOT / ".env.example").read_text() == env_example()
    values = dict(
        line.split("=", 1) for line in env_example().splitlines() if line and not line.startswith("#")
    )
    assert values == {name: default for name, (default, _) in SETTINGS_DOC.items()}
    assert Settings.from_env(values) == Settings.from_env({})


def test_the_readme_quick_start_is_the_two_scripts():
    readme = (ROOT / "README.md").read_text()
    assert "./scripts/serve" in readme and "./scripts/test" in readme
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec scripts/test")
