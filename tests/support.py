"""Helpers the tests share: fixture scenarios, hook requests built from them, the external material."""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cds_service.demo_requests import draft_order, load_materialised, searchset  # noqa: F401 (tests import them from here)
from cds_service.demo_requests import full_prefetch as demo_full_prefetch
from cds_service.hooks.catalog import SERVICES

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "fhir_fixtures" / "scenarios"
REQUESTS = ROOT / "fhir_fixtures" / "requests"
EXTERNAL = Path(__file__).resolve().parent / "external"

SERVICE_FOR_HOOK = {s.hook: s.id for s in SERVICES}


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Scenario:
    name: str
    bundle: dict[str, Any]
    expected: dict[str, Any]

    @property
    def resources(self) -> list[dict[str, Any]]:
        return [e["resource"] for e in self.bundle["entry"]]

    @property
    def patient_id(self) -> str:
        return next(r["id"] for r in self.resources if r["resourceType"] == "Patient")

    @property
    def evaluate_at(self) -> datetime:
        return datetime.fromisoformat(self.expected["evaluate_at"].replace("Z", "+00:00"))

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["resourceType"] == resource_type]


def scenario_names() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in SCENARIOS.glob("*.json") if not p.name.endswith(".expected.json"))


def load_scenario(name: str, as_of: date | None = None) -> Scenario:
    """The scenario as written (dated as of its evaluate_at), or with `as_of` its story told as of that day: every
    date of the bundle and of the expected answer moved by the same number of days (cds_service/fixture_dates.py)."""
    if as_of is not None:
        bundle, expected = load_materialised(name, as_of, SCENARIOS)
        return Scenario(name, bundle, expected)
    return Scenario(name, load_json(SCENARIOS / f"{name}.json"), load_json(SCENARIOS / f"{name}.expected.json"))


def full_prefetch(scenario: Scenario) -> dict[str, Any]:
    """What a client that fulfils every template would send (null where there is no data)."""
    return demo_full_prefetch(scenario.resources)


def dupilumab_draft_order(patient_id: str, order_id: str = "draft-dupilumab") -> dict[str, Any]:
    order = draft_order(patient_id, order_id, "Dupixent 300 mg/2 mL pen")
    order["dosageInstruction"] = [{"text": "300 mg subcutaneously every 2 weeks"}]
    return order


def unrelated_draft_order(patient_id: str, order_id: str = "draft-cetirizine") -> dict[str, Any]:
    return draft_order(patient_id, order_id, "cetirizine 10 mg tablet")


def hook_request(
    scenario: Scenario,
    hook: str = "patient-view",
    *,
    prefetch: dict[str, Any] | None = None,
    draft_orders: list[dict[str, Any]] | None = None,
    selections: list[str] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": scenario.patient_id, "encounterId": "enc-1"}
    if hook in {"order-select", "order-sign"}:
        orders = draft_orders if draft_orders is not None else [dupilumab_draft_order(scenario.patient_id)]
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": o} for o in orders]}
        if hook == "order-select":
            context["selections"] = selections or [f"MedicationRequest/{orders[0]['id']}"]
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://fhir.example.org/r4",
        "context": context,
        "prefetch": copy.deepcopy(prefetch if prefetch is not None else full_prefetch(scenario)),
    }


def service_url(hook: str) -> str:
    return f"/cds-services/{SERVICE_FOR_HOOK[hook]}"


def walk(value: Any, path: str = "") -> Iterable[tuple[str, Any]]:
    """Every (path, value) inside a JSON document."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")


def child_env(folder: Path, **settings: str) -> dict[str, str]:
    """The environment of a process a test starts: the caller's without any CDS_* setting, the database a file
    in `folder` (a tmp_path, never instance/ nor a database the caller's environment names), then `settings`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CDS_")}
    env["CDS_DATABASE_URL"] = f"sqlite:///{Path(folder) / 'child-process.sqlite3'}"
    env.update(settings)
    return env


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: Any = None, seconds: float = 30, require_ok: bool = False) -> Any:
    """Poll `url` until the started process answers (with 200 when `require_ok`); its response.
    Fails at once if the process has exited, and after `seconds`."""
    import time

    import requests

    deadline = time.monotonic() + seconds
    while True:
        try:
            response = requests.get(url, timeout=1)
            if response.status_code == 200 or not require_ok:
                return response
        except requests.ConnectionError:
            pass
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{url}: the process exited with {process.returncode} before answering")
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: no answer within {seconds:g} s")
        time.sleep(0.05)


def load_deploy_check():
    """deploy/check.py as a module (it is a script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("deploy_check", ROOT / "deploy" / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metric_samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A served process's /metrics: (sample name, sorted labels) -> value."""
    import requests

    response = requests.get(f"{base}/metrics", timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    return parse_metric_samples(response.text)


def parse_metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus's text format: (sample name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def replaced(body: dict, dotted: str, value: Any) -> dict:
    """A deep copy of `body` with the member at the dotted path ("overrideReason.reason.display") set to `value`."""
    body = copy.deepcopy(body)
    *parents, last = dotted.split(".")
    target = body
    for part in parents:
        target = target[part]
    target[last] = value
    return body
