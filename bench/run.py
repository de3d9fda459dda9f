"""The benchmark: how fast the service is, next to the practical limit of its stack.

    .venv/bin/python bench/run.py [--quick]

1. In-process pipeline time per request (parse, validate, pipeline, serialise) by record size:
   10, 100, 1,000 and 10,000 resources (bench/synthetic.py), beside parsing and returning the same body
   (how much of the growth with size is the parser's and the memory's, not the pipeline's). The time to
   free the request comes in its own column: the server frees it after sending the answer.
2. HTTP against `cds-service serve` on loopback, side by side with the baseline endpoint of the same
   server (POST /bench/echo: parse the body and return it): latency for a 1,000-resource request, and
   throughput of order-select with a 100-resource patient under concurrent load (wrk when installed:
   `apt-get install wrk`; a Python load generator otherwise). Service and baseline run in alternating
   rounds; traffic is cold (cache off), order sessions (with the same or growing draft orders), or the same
   patients again (see over_http).
3. Worker memory over 10,000 requests of order sessions (the patient cache filling and evicting).
4. The FHIR-fallback path (no prefetch) against the test FHIR server (Medplum's engine), with and
   without concurrency.
Prints a table and writes bench/results/latest.json with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.synthetic import hook_request, patient_record  # noqa: E402
from cds_service.hooks.catalog import SERVICES  # noqa: E402
from cds_service.hooks.validation import parse_hook_request  # noqa: E402
from cds_service.pipeline import Engine, evaluate_hook  # noqa: E402
from cds_service.server import tune_gc  # noqa: E402
from cds_service.settings import Settings  # noqa: E402

NOW = datetime(2025, 9, 1, 12, tzinfo=timezone.utc)
SERVICE = {s.hook: s for s in SERVICES}
TARGETS = {"overhead_1000": 0.50, "throughput_100": 0.70, "in_process_10000_ms": 250.0}


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"median": statistics.median(ordered), "p95": pick(0.95), "p99": pick(0.99), "n": len(ordered)}


def body_of(size: int, hook: str = "order-select") -> bytes:
    return orjson.dumps(hook_request(patient_record(size), hook))


def _patients(size: int, count: int) -> list[list[dict[str, Any]]]:
    return [patient_record(size, seed=index, patient_id=f"synth-{size}-{index}") for index in range(count)]


def bodies_of(size: int, patients: int, calls_each: int) -> list[bytes]:
    """Distinct patients, and a new hookInstance for every call, as an EHR sends them."""
    records = _patients(size, patients)
    return [orjson.dumps(hook_request(records[p], "order-select", str(uuid.uuid4())))
            for _ in range(calls_each) for p in range(patients)]


def session_bodies(size: int, patients: int, calls: int, group: int, orders_growing: bool = False,
                   other_selected: bool = False) -> list[bytes]:
    """Order sessions: `calls` order-select calls per patient (same prefetch, a new hookInstance each), patients
    taken `group` at a time; one patient's calls are `group` requests apart, so with fewer connections than
    `group` they are never in flight together (a clinician picks one order after another). With `orders_growing`,
    call k of a session carries k-1 more draft orders besides the selected dupilumab one: no two calls send the
    same draft orders, and the order in focus stays the same (the cards rendered for it are reused). With
    `other_selected`, each call selects an order of another medicine instead: no advice to give."""
    records = _patients(size, patients)

    def request(record: list[dict[str, Any]], call: int) -> dict[str, Any]:
        others = call if orders_growing else 0
        if other_selected:
            others += 1  # the order selected
        return hook_request(record, "order-select", str(uuid.uuid4()), others, select_other=other_selected)

    return [orjson.dumps(request(record, call))
            for start in range(0, patients, group) for call in range(calls) for record in records[start:start + group]]


# -- 1. in process ---------------------------------------------------------------------------


def in_process(sizes: list[int], runs: int, cache: bool = False) -> dict[str, dict[str, float]]:
    """Cold (cache off: every call computes the record and assessment) or warm (the same patient again)."""
    tune_gc()  # as the served workers run
    engine = Engine.from_settings(Settings.from_env({"CDS_AUTH": "off", "CDS_PATIENT_CACHE_RESOURCES": "50000" if cache else "0"}))
    service = SERVICE["order-select"]
    results = {}
    for size in sizes:
        raw = body_of(size)
        count = max(5, runs // max(1, size // 100)) if size >= 1000 else runs
        samples, frees, baseline, baseline_frees = [], [], [], []
        for _ in range(count + 3):
            started = time.perf_counter()
            body = orjson.loads(raw)
            outcome = evaluate_hook(parse_hook_request(body, service.hook), service, engine, NOW)
            orjson.dumps(outcome.response)
            answered = time.perf_counter()
            del body, outcome  # the server frees these after sending the answer: part of the cost, not of the wait
            samples.append((answered - started) * 1000)
            frees.append((time.perf_counter() - answered) * 1000)
            started = time.perf_counter()
            body = orjson.loads(raw)
            orjson.dumps(body)  # the same body parsed and returned: the stack's own cost
            answered = time.perf_counter()
            del body
            baseline.append((answered - started) * 1000)
            baseline_frees.append((time.perf_counter() - answered) * 1000)
        row = percentiles(samples[3:])
        row["free_median"] = statistics.median(frees[3:])
        row["us_per_resource"] = 1000 * (row["median"] + row["free_median"]) / size
        row["baseline_median"] = statistics.median(baseline[3:])
        row["baseline_free_median"] = statistics.median(baseline_frees[3:])
        row["bytes"] = len(raw)
        results[str(size)] = row
    return results


# -- 2 and 3. over HTTP ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, workers: int, extra_env: dict[str, str] | None = None):
        self.port = _free_port()
        self.folder = tempfile.mkdtemp()
        # Workers are not recycled (CDS_MAX_REQUESTS=0), so memory is measured over 10,000 calls in one process.
        env = {**os.environ, "CDS_LOG_LEVEL": "WARNING", "CDS_LOG_FORMAT": "text", "CDS_MAX_REQUESTS": "0",
               "CDS_DATABASE_URL": f"sqlite:///{self.folder}/bench.sqlite3", "CDS_AUTH": "off", "CDS_BENCH_ECHO": "true",
               **(extra_env or {})}
        self.process = subprocess.Popen([sys.executable, "-m", "cds_service", "serve", "--port", str(self.port),
                                         "--workers", str(workers)], env=env, cwd=ROOT)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                requests.get(f"{self.base}/openapi.json", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)

    def workers(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load(url: str, bodies: list[bytes], connections: int, seconds: float, tokens: Path | None = None) -> dict[str, float]:
    """Requests per second and latency percentiles under `connections` concurrent clients, sending the bodies in turn
    (with `tokens`, a file of JWTs, each request carries one never sent before: wrk only)."""
    if tokens is not None and not shutil.which("wrk"):
        raise RuntimeError("sending a new token per request needs wrk (apt-get install wrk)")
    if shutil.which("wrk"):
        folder = tempfile.mkdtemp()
        paths = []
        for index, body in enumerate(bodies):
            paths.append(os.path.join(folder, f"{index}.json"))
            Path(paths[-1]).write_bytes(body)
        listing = os.path.join(folder, "bodies.txt")
        Path(listing).write_text("\n".join(paths) + "\n")
        threads = min(2, connections)
        env = {**os.environ, "BENCH_BODIES": listing, "BENCH_THREADS": str(threads)}
        if tokens is not None:
            env["BENCH_TOKENS"] = str(tokens)
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "30s",
                              "-s", str(ROOT / "bench" / "post.lua"), url], capture_output=True, text=True, env=env).stdout
        shutil.rmtree(folder)
        units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
        latency = {q: float(v) * units[u] for q, v, u in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        return {"requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
                "median": latency.get("50", 0.0), "p90": latency.get("90", 0.0), "p99": latency.get("99", 0.0),
                "errors": int(non2xx.group(1)) if non2xx else 0, "tool": "wrk"}
    sessions = [requests.Session() for _ in range(connections)]
    deadline = time.monotonic() + seconds

    errors = [0] * connections

    def client(index: int) -> list[float]:
        samples = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            body = bodies[(index + len(samples) * connections) % len(bodies)]
            response = sessions[index].post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
            errors[index] += not response.ok  # counted, as wrk counts them (a 412 when a FHIR read ran out of time)
            samples.append((time.perf_counter() - started) * 1000)
        return samples

    started = time.monotonic()
    with ThreadPoolExecutor(connections) as pool:
        samples = [s for batch in pool.map(client, range(connections)) for s in batch]
    row = percentiles(samples)
    return {"requests_per_second": len(samples) / (time.monotonic() - started), "median": row["median"],
            "p90": row["p95"], "p99": row["p99"], "errors": sum(errors), "tool": "python"}


def paired(service: str, baseline: str, bodies: list[bytes], connections: int, seconds: float, rounds: int) -> dict[str, Any]:
    """The service and the baseline endpoint in alternating rounds (service first in even rounds, baseline first
    in odd ones), so a change in the machine's speed during the run falls on both. Figures are medians over the
    rounds; the ratios are taken within each round, and their median and range reported."""
    rows: dict[str, list[dict[str, float]]] = {"service": [], "baseline": []}
    for round_ in range(rounds):
        order = [("service", service), ("baseline", baseline)]
        for name, url in order if round_ % 2 == 0 else reversed(order):
            rows[name].append(load(url, bodies, connections, seconds / rounds))
    fields = ("requests_per_second", "median", "p90", "p99")
    result: dict[str, Any] = {
        name: {**{f: statistics.median(r[f] for r in found) for f in fields}, "errors": sum(r["errors"] for r in found),
               "tool": found[0]["tool"], "rounds": rounds}
        for name, found in rows.items()
    }
    for label, field in (("latency_ratio", "median"), ("throughput_ratio", "requests_per_second")):
        ratios = [s[field] / b[field] for s, b in zip(rows["service"], rows["baseline"])]
        result[label] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    return result


def over_http(seconds: float, workers: int, rounds: int) -> dict[str, Any]:
    """Order-select with full prefetch next to the echo baseline of the same server, on five kinds of traffic:

    - cold: the patient cache off, every call computes the record (the worst case); also with 10-resource
      records, where the pipeline's fixed cost (assessment, ranking, cards) is nearly all of it;
    - order sessions: each patient's calls come one after another, 6 per patient (a clinician picking orders),
      with more patients than the cache holds, so each session starts with a miss in each worker it reaches;
    - order sessions, orders growing: the same, with one more draft order in each call of a session beside the
      selected dupilumab one (every call reads a new set of draft orders; the order in focus stays the same);
    - same patients again: a few patients called over and over (every call after the first hits the cache);
    - order sessions, another medicine selected: the commonest order-select call, about an order this service
      has no advice on (answered without reading the record): the least the service costs over the baseline.
    """
    big = session_bodies(1000, patients=16, calls=6, group=8)
    small = session_bodies(100, patients=192, calls=6, group=32)
    growing = session_bodies(100, patients=192, calls=6, group=32, orders_growing=True)
    tiny = session_bodies(10, patients=192, calls=6, group=32)
    repeated = bodies_of(100, patients=8, calls_each=8)
    other = session_bodies(100, patients=192, calls=6, group=32, other_selected=True)
    results: dict[str, Any] = {}
    traffic = (("cold", "0", (("1000 resources, 1 connection", big, 1), ("100 resources, 16 connections", small, 16),
                              ("10 resources, 16 connections", tiny, 16))),
               ("order sessions", "8000", (("1000 resources, 1 connection", big, 1), ("100 resources, 16 connections", small, 16))),
               ("order sessions, orders growing", "8000", (("100 resources, 16 connections", growing, 16),)),
               ("same patients again", "50000", (("100 resources, 16 connections", repeated, 16),)),
               ("order sessions, another medicine selected", "8000", (("100 resources, 16 connections", other, 16),)))
    for label, cache, runs in traffic:
        server = Server(workers, {"CDS_PATIENT_CACHE_RESOURCES": cache})
        try:
            service = f"{server.base}/cds-services/{SERVICE['order-select'].id}"
            echo = f"{server.base}/bench/echo"
            for _, bodies, _ in runs:
                for url in (service, echo):
                    load(url, bodies, 2, 1)  # warm up every worker on both endpoints
            for name, bodies, connections in runs:
                # One connection sends few requests per round and a burst of this VM's noise moves a whole
                # round: twice the rounds (and time) there.
                more = 2 if connections == 1 else 1
                results[f"{name}, {label}"] = paired(service, echo, bodies, connections, seconds * more, rounds * more)
            if label == "order sessions":  # memory with the cache filling and evicting all along
                pids = server.workers()
                before = {pid: rss_mb(pid) for pid in pids}
                served = 0
                while served < 10_000:
                    row = load(service, small, 8, 5)
                    served += int(row["requests_per_second"] * 5)
                after = {pid: rss_mb(pid) for pid in pids}
                results["memory"] = {"requests": served, "rss_mb_before": sum(before.values()) / len(pids),
                                     "rss_mb_after": sum(after.values()) / len(pids), "workers": len(pids)}
        finally:
            server.stop()
    return results


# -- 4. FHIR fallback ---------------------------------------------------------------------------


def fhir_fallback(seconds: float, workers: int) -> dict[str, dict[str, float]]:
    from cds_service.fixtures import load_fixtures, start_fhir_server

    fhir, fhir_base = start_fhir_server(0)
    server = None
    try:
        load_fixtures(fhir_base)
        with requests.Session() as session:
            direct = []
            for _ in range(20):
                started = time.perf_counter()
                session.get(f"{fhir_base}/Observation?patient=pnr-adult", timeout=10).raise_for_status()
                direct.append((time.perf_counter() - started) * 1000)
        server = Server(workers, {"CDS_FHIR_ALLOWLIST": fhir_base, "CDS_FHIR_ALLOW_HTTP": "true", "CDS_FHIR_TIME_BUDGET_MS": "10000"})
        request = json.loads((ROOT / "fhir_fixtures" / "requests" / "ad-primary-nonresponse-adult.patient-view.json").read_bytes())
        request["fhirServer"] = fhir_base
        del request["prefetch"]
        bodies = [json.dumps({**request, "hookInstance": str(uuid.uuid4())}).encode() for _ in range(32)]
        url = f"{server.base}/cds-services/{SERVICE['patient-view'].id}"
        load(url, bodies, 1, 1)
        direct_row = percentiles(direct)
        return {
            "one FHIR search on the test server": {"median": direct_row["median"], "p90": direct_row["p95"], "p99": direct_row["p99"]},
            "hook call, no prefetch, 1 connection": load(url, bodies, 1, seconds),
            "hook call, no prefetch, 8 connections": load(url, bodies, 8, seconds),
        }
    finally:
        if server is not None:
            server.stop()
        fhir.terminate()
        fhir.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs (for trying the script)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    seconds, rounds = (3, 3) if args.quick else (10, 5)  # seconds per endpoint, split into alternating rounds
    report = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        "workers": args.workers,
        "in_process_ms": in_process([10, 100, 1000, 10000], 40 if args.quick else 200),
        "in_process_warm_ms": in_process([100, 1000], 40 if args.quick else 200, cache=True),
        "http": over_http(seconds, args.workers, rounds),
        "fhir_fallback_ms": fhir_fallback(seconds, args.workers),
    }
    ip, http = report["in_process_ms"], report["http"]

    def ratio(name: str, kind: str) -> str:
        found = http[name][kind]
        as_overhead = kind == "latency_ratio"  # latency: what the pipeline adds; throughput: the share kept
        shown = (lambda r: f"{100 * (r - 1):+.0f}%") if as_overhead else (lambda r: f"{100 * r:.0f}%")
        return f"{shown(found['median'])} (rounds {shown(found['min'])} to {shown(found['max'])})"

    # Growth is of the whole cost of a request (answer and free), the service's and the parser's.
    cost = {size: ip[size]["median"] + ip[size]["free_median"] for size in ("1000", "10000")}
    parse_cost = {size: ip[size]["baseline_median"] + ip[size]["baseline_free_median"] for size in ("1000", "10000")}
    growth = ip["10000"]["us_per_resource"] / ip["1000"]["us_per_resource"]
    parse_growth = (parse_cost["10000"] / 10000) / (parse_cost["1000"] / 1000)
    beyond = ((cost["10000"] - parse_cost["10000"]) / 10000) / ((cost["1000"] - parse_cost["1000"]) / 1000)
    memory = http["memory"]
    report["targets"] = {
        **{f"pipeline overhead on a 1,000-resource request, {label} (<= +50%)": ratio(f"1000 resources, 1 connection, {label}", "latency_ratio")
           for label in ("cold", "order sessions")},
        **{f"order-select throughput vs baseline, 100 resources, {label} (>= 70%)": ratio(f"100 resources, 16 connections, {label}", "throughput_ratio")
           for label in ("cold", "order sessions", "order sessions, orders growing", "same patients again")},
        "  the same, 10 resources, cold (the pipeline's fixed cost)": ratio("10 resources, 16 connections, cold", "throughput_ratio"),
        "  the same, order sessions, another medicine selected (no advice: the service's least cost)":
            ratio("100 resources, 16 connections, order sessions, another medicine selected", "throughput_ratio"),
        "10,000-resource record in process, cold, median time to the answer (< 250 ms)":
            f"{ip['10000']['median']:.0f} ms (and {ip['10000']['free_median']:.0f} ms to free it afterwards)",
        "cost per resource, 10,000 vs 1,000 (<= 1.0 is linear or better)": f"{growth:.2f}",
        "  of which parsing and returning the body alone": f"{parse_growth:.2f}",
        "  the pipeline beyond parsing": f"{beyond:.2f}",
        "worker memory over 10,000 requests": f"{memory['rss_mb_before']:.0f} -> {memory['rss_mb_after']:.0f} MB",
    }
    print(f"\nMachine: {report['machine']['cpus']} CPUs, {report['machine']['platform']}, Python {report['machine']['python']}; "
          f"{args.workers} gunicorn workers")
    for title, rows in (("In process, cold (ms)", ip), ("In process, same patient again (ms)", report["in_process_warm_ms"])):
        print(f"\n{title:40} {'median':>8} {'p95':>8} {'p99':>8} {'free':>8} {'us/res':>8} {'parse+return':>13} {'free':>8}")
        for size, row in rows.items():
            print(f"{size + ' resources':40} {row['median']:8.2f} {row['p95']:8.2f} {row['p99']:8.2f} {row['free_median']:8.2f}"
                  f" {row['us_per_resource']:8.2f} {row['baseline_median']:13.2f} {row['baseline_free_median']:8.2f}")
    print(f"\n{'HTTP, order-select next to the baseline (ms; medians of rounds)':72} {'req/s':>8} {'median':>8} {'p90':>8} {'p99':>8}")
    for name, pair in http.items():
        if name != "memory":
            for side in ("service", "baseline"):
                row = pair[side]
                print(f"{name + ', ' + side:72} {row['requests_per_second']:8.0f} {row['median']:8.2f} {row['p90']:8.2f} {row['p99']:8.2f}")
    print(f"\n{'FHIR fallback (ms)':72} {'req/s':>8} {'median':>8} {'p90':>8} {'p99':>8} {'errors':>8}")
    for name, row in report["fhir_fallback_ms"].items():
        print(f"{name:72} {row.get('requests_per_second', 0):8.0f} {row['median']:8.2f} {row['p90']:8.2f} {row['p99']:8.2f}"
              f" {row.get('errors', 0):8d}")
    print("\nTargets:")
    for name, value in report["targets"].items():
        print(f"  {name}: {value}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
