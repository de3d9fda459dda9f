"""The test suite keeps to itself: a process a test starts never sees the caller's CDS_* settings, so it never
writes to the developer's instance/ database or to a database the caller's environment names; and the
markers the fast lane leaves out are the ones pyproject.toml registers."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import SLOW_LANE_MARKERS
from support import ROOT, child_env

TESTS = Path(__file__).resolve().parent
STARTS_A_PROCESS = {"run", "Popen", "call", "check_call", "check_output"}


def test_a_started_process_keeps_its_database_in_tmp_path_and_ignores_the_callers_settings(tmp_path, monkeypatch):
    callers = tmp_path / "caller"
    callers.mkdir()
    monkeypatch.setenv("CDS_DATABASE_URL", f"sqlite:///{callers / 'callers-own.sqlite3'}")  # stands for instance/ or a shared database
    monkeypatch.setenv("CDS_REGION", "Mars")  # a setting every command refuses to start with (exit 64)
    child = tmp_path / "child"
    child.mkdir()
    # `feedback report` opens (and so creates) the store its environment names.
    result = subprocess.run([sys.executable, "-m", "cds_service", "feedback", "report", "--json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env=child_env(child))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert list(callers.iterdir()) == []
    assert [path.name for path in child.iterdir()] == ["child-process.sqlite3"]


def _assigned(tree: ast.AST) -> dict[str, list[ast.expr]]:
    """Every value assigned to a name or attribute (`env = ...`, `self.env = ...`), by that name."""
    found: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                name = target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else None
                if name:
                    found.setdefault(name, []).append(node.value)
    return found


def _own_environment(value: ast.expr) -> bool:
    """child_env(...), or a dict written out here without the caller's os.environ in it."""
    if isinstance(value, ast.Call):
        return isinstance(value.func, ast.Name) and value.func.id == "child_env"
    if isinstance(value, ast.Dict):
        return "os.environ" not in ast.unparse(value)
    return False


def test_every_process_a_test_starts_gets_an_environment_of_its_own():
    """No process a test starts inherits the caller's environment as it is (a new test cannot forget)."""
    unisolated = []
    for path in sorted(TESTS.glob("*.py")):
        tree = ast.parse(path.read_text())
        assigned = _assigned(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in STARTS_A_PROCESS
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "subprocess"):
                continue
            env = next((keyword.value for keyword in node.keywords if keyword.arg == "env"), None)
            if isinstance(env, (ast.Name, ast.Attribute)):
                name = env.id if isinstance(env, ast.Name) else env.attr
                ok = bool(assigned.get(name)) and all(_own_environment(value) for value in assigned[name])
            else:
                ok = env is not None and _own_environment(env)
            if not ok:
                unisolated.append(f"{path.name}:{node.lineno}")
    assert unisolated == []


def test_the_fast_lane_leaves_out_every_registered_marker():
    registered = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert sorted(marker.split(":")[0] for marker in registered) == sorted(SLOW_LANE_MARKERS)


def test_the_package_reaches_nothing_under_tests():
    """cds_service runs without tests/ (the local FHIR server of `cds-service dev` is cds_service/devserver/)."""
    import re

    reaching = [f"{path.relative_to(ROOT)}:{number}"
                for path in sorted((ROOT / "cds_service").rglob("*.py")) if "node_modules" not in path.parts
                for number, line in enumerate(path.read_text().splitlines(), 1)
                if re.search(r"""/\s*["']tests["']|["']tests/""", line)]
    assert reaching == []
    from cds_service.fixtures import FHIR_SERVER_DIR

    assert (FHIR_SERVER_DIR / "server.mjs").exists() and ROOT / "tests" not in FHIR_SERVER_DIR.parents
