"""Developer tools: upload the fixture patients to a FHIR server, and run a local demo stack.

    cds-service fixtures load --fhir-server URL [--bearer TOKEN] [--fixtures DIR]
    cds-service dev [--port 8080] [--fhir-port 8081] [--require-fhir-token]
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from .demo_requests import load_materialised, scenario_names
from .fixture_dates import service_today

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fhir_fixtures" / "scenarios"
SHARED = REPO / "fhir_fixtures" / "shared"
# The local FHIR server (Node: Medplum's engine behind a small adapter) of `cds-service dev`, the tests and the
# benchmark. It sits beside this module in the source checkout and is not package data: installs leave it out.
FHIR_SERVER_DIR = Path(__file__).resolve().parent / "devserver"
SANDBOX = "https://sandbox.cds-hooks.org/"


class FixtureError(Exception):
    pass


class PortBusy(FixtureError):
    """A port `cds-service dev` needs is taken; nothing was started."""


def scenario_bundles(directory: Path = FIXTURES, as_of: date | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every scenario's bundle; with `as_of`, its dates moved so that its story is told as of that day
    (fixture_dates.py). Without it, as written (the tests compare with their expected answers as written)."""
    bundles = []
    for name in scenario_names(directory):
        if as_of is None:
            bundles.append((name, json.loads((directory / f"{name}.json").read_text())))
        else:
            bundles.append((name, load_materialised(name, as_of, directory)[0]))
    return bundles


def describe_scenarios(topics: Mapping[str, str], region: str, directory: Path = FIXTURES) -> list[tuple[str, str, str]]:
    """(patient id, scenario, what its cards show) of every scenario, as `dev` prints them."""
    described = []
    for name, bundle in scenario_bundles(directory):
        expected = json.loads((directory / f"{name}.expected.json").read_text())
        patient = next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        described.append((patient, name, what_it_shows(expected, topics, region)))
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
        _post_shared(session, base, headers, [patient for _, patient in loaded], timeout)
    return loaded


def _post_shared(session: requests.Session, base: str, headers: dict[str, str], patients: list[str], timeout: float) -> None:
    entries = shared_bundle(patients)["entry"]
    for start in range(0, len(entries), 40):  # servers cap transaction sizes (Medplum: 50 updates)
        _post_transaction(session, base, headers, transaction([("shared", {"entry": entries[start:start + 40]})]), "shared", timeout)


def shared_bundle(patients: Iterable[str], today: date | None = None) -> dict[str, Any]:
    """The clinician of fhir_fixtures/shared/ and, per patient, an outpatient encounter in progress today: the user
    and encounter a SMART launch or the CDS Hooks sandbox has in context."""
    entries = []
    for path in sorted(SHARED.glob("*.json")):
        entries += json.loads(path.read_text())["entry"]
    practitioner = next(e["resource"]["id"] for e in entries if e["resource"]["resourceType"] == "Practitioner")
    day = (today or service_today()).isoformat()
    for patient in patients:
        entries.append({"resource": {
            "resourceType": "Encounter", "id": f"enc-{patient}", "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
            "type": [{"text": "Dermatology outpatient visit"}],
            "subject": {"reference": f"Patient/{patient}"},
            "participant": [{"individual": {"reference": f"Practitioner/{practitioner}"}}],
            "period": {"start": day},
        }})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


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


# The local Node server reads slowly on a busy machine: with prefetch off, 1 call in 3 ran past the service's 800 ms
# default (412); 40 calls at load 12 took 1.7 s (median) to 3.3 s (max).
DEV_FHIR_TIME_BUDGET_MS = "10000"
DEV_SMART_PATIENT = "pnr-adult"  # the patient of a standalone SMART launch on the dev FHIR server
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something already listens on host:port (port 0, any free port, is never taken)."""
    if port == 0:
        return False
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: a closed port in TIME_WAIT is free
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(port: int, fhir_port: int, host: str = "127.0.0.1") -> None:
    """Raise PortBusy, in one line, when `dev` could not bind both ports."""
    if port == fhir_port:
        raise PortBusy(f"--port and --fhir-port are both {port}; give them different ports")
    busy = [f"{number} ({what}, {flag})" for number, what, flag, where in (
        (port, "the service", "--port", host), (fhir_port, "the FHIR server", "--fhir-port", "127.0.0.1")) if port_taken(number, where)]
    if busy:
        raise PortBusy(f"port {' and '.join(busy)} {'is' if len(busy) == 1 else 'are'} in use; stop what uses it or choose another port")


def dev_environment(environ: Mapping[str, str], *, port: int, host: str, fhir_port: int) -> dict[str, str]:
    """The service's environment under `dev`: the caller's settings, with the dev FHIR server (under both loopback
    names) added to the servers it may read and a FHIR time budget for a local server, unless the caller set one."""
    dev_servers = [f"http://{name}:{fhir_port}/fhir" for name in LOOPBACK_NAMES]
    theirs = [pattern.strip() for pattern in environ.get("CDS_FHIR_ALLOWLIST", "").split(",") if pattern.strip()]
    return {
        **environ,
        "CDS_FHIR_ALLOWLIST": ",".join(dict.fromkeys(dev_servers + theirs)),
        "CDS_FHIR_ALLOW_HTTP": "true",
        "CDS_FHIR_TIME_BUDGET_MS": environ.get("CDS_FHIR_TIME_BUDGET_MS", "").strip() or DEV_FHIR_TIME_BUDGET_MS,
        # the sandbox may be opened on either name: tokens for both are accepted, links use the first
        "CDS_PUBLIC_BASE_URL": environ.get("CDS_PUBLIC_BASE_URL", "").strip() or ",".join(f"http://{n}:{port}" for n in LOOPBACK_NAMES),
        "CDS_AUTH": environ.get("CDS_AUTH", "off"),  # the sandbox's tokens need its key; see README
        "CDS_LOG_FORMAT": environ.get("CDS_LOG_FORMAT", "text"),  # a developer reads these
        "CDS_PORT": str(port),
        "CDS_HOST": host,
    }


def what_it_shows(expected: Mapping[str, Any], topics: Mapping[str, str], region: str) -> str:
    """A few words on the cards a scenario's patient gets (its .expected.json), for the list `dev` prints."""
    shown = "; ".join(f"{topics.get(c['topic'], c['topic'])} ({c['indicator']})" for c in expected.get("cards", [])) or "no card"
    on_order = sorted({c["topic"].replace("-", " ") for o in expected.get("orders", []) for c in o.get("cards", [])})
    if on_order:
        shown += "; on ordering: " + ", ".join(on_order)
    scenario_region = expected.get("region", "US")
    if scenario_region != region:
        shown += f" [with CDS_REGION={scenario_region}]"
    return shown


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FixtureError(f"the service stopped at start (exit code {process.returncode}); its log is above")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise FixtureError(f"the service did not answer {url} within {seconds:.0f} s")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def run_dev(port: int, fhir_port: int, host: str = "127.0.0.1", require_fhir_token: bool = False) -> int:
    """A local SMART-enabled FHIR server with the fixtures, and the service allowed to read it; prints where to
    open the sandbox on each patient. Raises PortBusy before starting anything if a port is taken."""
    from .knowledge import load_knowledge
    from .settings import Settings

    check_ports(port, fhir_port, host)
    signal.signal(signal.SIGTERM, _interrupt)  # stop both servers on SIGTERM too, even while still starting
    fhir_env = {"SMART_DEFAULT_PATIENT": DEV_SMART_PATIENT}
    loader = None
    if require_fhir_token:  # reads need a token the server issued; the fixtures go in with one of their own
        loader = secrets.token_urlsafe(24)
        fhir_env.update(REQUIRE_ISSUED_TOKEN="1", REQUIRE_TOKEN=loader)
    fhir, base = start_fhir_server(fhir_port, env=fhir_env)
    service = None
    try:
        loaded = load_fixtures(base, loader, as_of=service_today())
        fhir_port = urlsplit(base).port or fhir_port  # the port it took when asked for any (0)
        env = dev_environment(os.environ, port=port, host=host, fhir_port=fhir_port)
        settings = Settings.from_env(env)
        public = settings.public_base_url
        name = urlsplit(public).hostname
        fhir_base = f"http://{name if name in LOOPBACK_NAMES else '127.0.0.1'}:{fhir_port}/fhir"
        topics = load_knowledge(folder=settings.knowledge_dir or None).cards.topics
        service = subprocess.Popen([sys.executable, "-m", "cds_service", "serve"], env=env)
        _wait_until_up(f"http://{'127.0.0.1' if host in {'0.0.0.0', '::', ''} else host}:{port}/healthz/live", service)
        discovery = f"{public}/cds-services"
        print(f"FHIR server:  {fhir_base}  ({len(loaded)} fixture patients, a clinician, an encounter each; SMART-enabled"
              + (", FHIR reads need a token it issued" if require_fhir_token else "") + ")")
        print(f"CDS service:  {discovery}")
        print("Open the public CDS Hooks sandbox on a patient (patient id, what the cards show, link):")
        shows = {patient: shown for patient, _, shown in describe_scenarios(topics, settings.region)}
        id_width, shows_width = max(map(len, shows)), max(map(len, shows.values()))
        for _, patient in loaded:
            print(f"  {patient:<{id_width}}  {shows[patient]:<{shows_width}}  {sandbox_url(fhir_base, discovery, patient)}")
        print("SMART app:    in the sandbox, a card's course-timeline link launches it on that patient; or open")
        print(f"              {public}/smart/launch?iss={fhir_base}  (a standalone launch, on {DEV_SMART_PATIENT})")
        print("Stop with Ctrl-C.")
        sys.stdout.flush()
        return service.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for process in (service, fhir):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
