"""Developer tools: upload the fixture patients to a FHIR server, and run a local demo stack.

    cds-service fixtures load --fhir-server URL [--bearer TOKEN] [--fixtures DIR]
    cds-service dev [--port 8080] [--fhir-port 8081]
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from .demo_requests import load_materialised, scenario_names

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fhir_fixtures" / "scenarios"
# The local FHIR server (Node: Medplum's engine behind a small adapter) of `cds-service dev`, the tests and the
# benchmark. It sits beside this module in the source checkout and is not package data: installs leave it out.
FHIR_SERVER_DIR = Path(__file__).resolve().parent / "devserver"
SANDBOX = "https://sandbox.cds-hooks.org/"


class FixtureError(Exception):
    pass


def scenario_bundles(directory: Path = FIXTURES, as_of: date | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every scenario's bundle; with `as_of`, its dates moved so that its story is told as of that day
    (fixture_dates.py). Without it, as written (the tests compare with their expected answers as written)."""
    bundles = []
    for name in scenario_names(directory):
        bundle = json.loads((directory / f"{name}.json").read_text())
        if as_of is not None:
            bundle, _ = load_materialised(name, as_of, directory)
        bundles.append((name, bundle))
    return bundles


def describe_scenarios(directory: Path = FIXTURES) -> list[tuple[str, str, str]]:
    """(patient id, scenario, what its patient-view cards show) of every scenario."""
    described = []
    for name, bundle in scenario_bundles(directory):
        expected = json.loads((directory / f"{name}.expected.json").read_text())
        patient = next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        topics = ", ".join(f"{c['topic']} ({c['indicator']})" for c in expected["cards"]) or "no card"
        region = f"[{expected['region']} region] " if "region" in expected else ""
        described.append((patient, name, region + topics))
    return described


def transaction(bundles: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One transaction that PUTs every resource at its own id: loading twice changes nothing."""
    entries = []
    for _, bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            entries.append({
                "fullUrl": f"{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
            })
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def load_fixtures(base: str, bearer: str | None = None, directory: Path = FIXTURES, timeout: float = 60,
                  as_of: date | None = None) -> list[tuple[str, str]]:
    """Upload every scenario, one transaction each (servers cap transaction sizes); return (scenario, patient id).
    `as_of`: tell each story as of that day (demos: today); None: the dates as written (tests)."""
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    loaded = []
    with requests.Session() as session:
        for name, bundle in scenario_bundles(directory, as_of):
            _post_transaction(session, base, headers, transaction([(name, bundle)]), name, timeout)
            patient = next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
            loaded.append((name, patient))
    return loaded


def _post_transaction(session: requests.Session, base: str, headers: dict[str, str], body: dict[str, Any], name: str, timeout: float) -> None:
    try:
        response = session.post(base.rstrip("/"), data=json.dumps(body), headers=headers, timeout=timeout)
    except requests.RequestException as error:
        raise FixtureError(f"could not reach {base}: {type(error).__name__}") from None
    if response.status_code >= 300:
        raise FixtureError(f"{name}: {base} answered HTTP {response.status_code}: {response.text[:300]}")
    try:
        answer = response.json()
    except ValueError:
        raise FixtureError(f"{name}: {base} did not answer with JSON") from None
    failed = [
        str(e.get("response", {}).get("status", "?"))
        for e in answer.get("entry", [])
        if not str(e.get("response", {}).get("status", "")).startswith("2")
    ]
    if failed:
        raise FixtureError(f"{name}: {len(failed)} resources were refused (statuses {sorted(set(failed))})")


def sandbox_url(fhir_base: str, discovery: str, patient_id: str) -> str:
    return SANDBOX + "?" + urlencode({"fhirServiceUrl": fhir_base, "serviceDiscoveryURL": discovery, "patientId": patient_id})


def ensure_fhir_server_packages() -> None:
    if not (FHIR_SERVER_DIR / "server.mjs").exists():
        raise FixtureError(f"the local FHIR server comes with the source checkout ({FHIR_SERVER_DIR} is missing)")
    if (FHIR_SERVER_DIR / "node_modules" / "@medplum" / "fhir-router").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise FixtureError("npm is needed for the local FHIR server (Node.js 20+)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FHIR_SERVER_DIR, check=True)


def start_fhir_server(port: int, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start the Medplum-based FHIR server; return the process and its base URL."""
    ensure_fhir_server_packages()
    node = shutil.which("node")
    if node is None:
        raise FixtureError("node is needed for the local FHIR server (Node.js 20+)")
    process = subprocess.Popen(
        [node, "server.mjs", str(port)], cwd=FHIR_SERVER_DIR, stdout=subprocess.PIPE, env={**os.environ, **(env or {})}
    )
    line = process.stdout.readline() if process.stdout else b""
    try:
        actual = json.loads(line)["port"]
    except (ValueError, KeyError):
        process.kill()
        raise FixtureError("the local FHIR server did not start") from None
    return process, f"http://127.0.0.1:{actual}/fhir"


def run_dev(port: int, fhir_port: int, host: str = "127.0.0.1") -> int:
    """A local FHIR server with the fixtures, and the service allowed to read it."""
    fhir, base = start_fhir_server(fhir_port)
    try:
        loaded = load_fixtures(base, as_of=date.today())
        env = {
            **os.environ,
            "CDS_FHIR_ALLOWLIST": base,
            "CDS_FHIR_ALLOW_HTTP": "true",
            "CDS_AUTH": os.environ.get("CDS_AUTH", "off"),  # the sandbox's tokens need its key; see README
            "CDS_LOG_FORMAT": os.environ.get("CDS_LOG_FORMAT", "text"),  # a developer reads these
            "CDS_PORT": str(port),
            "CDS_HOST": host,
        }
        service = subprocess.Popen([sys.executable, "-m", "cds_service", "serve"], env=env)
        discovery = f"http://127.0.0.1:{port}/cds-services"
        time.sleep(1.5)
        print(f"FHIR server:  {base}  ({len(loaded)} fixture patients)")
        print(f"CDS service:  {discovery}")
        print("Open the public CDS Hooks sandbox on a fixture patient:")
        for name, patient in loaded:
            if name in {"ad-primary-nonresponse-adult", "drosd-severe-persistent", "jak-contra-neutropenia"}:
                print(f"  {name}: {sandbox_url(base, discovery, patient)}")
        print("Other patients: " + ", ".join(patient for _, patient in loaded))
        print("Stop with Ctrl-C.")
        sys.stdout.flush()
        signal.signal(signal.SIGTERM, lambda *_: service.terminate())
        return service.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for process in (locals().get("service"), fhir):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
