"""A request costs bounded CPU and memory whatever it holds: a 5 MB body is refused or answered within one
CPU-second and 200 MB (a pod is limited to 512 Mi). Bounds, not timings: the cost before was 51 CPU-seconds
and 8.7 GB for one invalid body, and 10 CPU-seconds for one long condition text."""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest

from support import hook_request, load_scenario, service_url

PATIENT_VIEW = service_url("patient-view")
FIVE_MB = 5_000_000
CPU_SECONDS = 1.0
PEAK_BYTES = 200 * 2**20


def cost(client, raw: bytes):
    """(response, CPU-seconds, peak bytes allocated) of one call, in this process (the test client)."""
    started = time.thread_time()  # the request runs in this thread; other threads (an audit writer per app) are not its cost
    response = client.post(PATIENT_VIEW, data=raw, content_type="application/json")
    cpu = time.thread_time() - started
    tracemalloc.start()
    try:
        again = client.post(PATIENT_VIEW, data=raw, content_type="application/json")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert again.status_code == response.status_code
    return response, cpu, peak


def filled(prefix: str, item: str, suffix: str) -> bytes:
    """`prefix` + as many `item`s (comma-separated) as fit in about 5 MB + `suffix`."""
    count = (FIVE_MB - len(prefix) - len(suffix) - 100) // (len(item) + 1)
    return (prefix + ",".join([item] * count) + suffix).encode()


def prefetch_of_numbers() -> bytes:
    """A prefetch of about 600,000 keys, each a number where a resource belongs: one error each."""
    head = '{"hook": "patient-view", "hookInstance": "x", "context": {"userId": "Practitioner/1", "patientId": "p"}, "prefetch": {'
    keys, size, number = [], len(head) + 2, 0
    while size < FIVE_MB - 20:
        key = f'"{number:x}":1'
        keys.append(key)
        size += len(key) + 1
        number += 1
    return (head + ",".join(keys) + "}}").encode()


def hostile_bodies() -> dict[str, bytes]:
    return {
        # a million prefetch keys, each the wrong type: a million schema errors
        "600,000 errors": prefetch_of_numbers(),
        "a wrongly typed member holding 5 MB": filled('{"hook": "patient-view", "hookInstance": [', '{"a": 1}', "]}"),
        "a million empty arrays": filled('{"hook": "patient-view", "hookInstance": "x", "context": [', "[]", "]}"),
    }


@pytest.mark.parametrize("name", list(hostile_bodies()))
def test_a_5_mb_invalid_body_is_refused_within_a_cpu_second_and_200_mb(make_app, name):
    raw = hostile_bodies()[name]
    assert 4_900_000 < len(raw) <= FIVE_MB
    response, cpu, peak = cost(make_app().test_client(), raw)
    assert response.status_code == 400
    assert len(response.get_json()["issue"]) <= 10
    assert cpu < CPU_SECONDS, f"{cpu:.2f} CPU-seconds"
    assert peak < PEAK_BYTES, f"{peak / 2**20:.0f} MB"


def test_a_condition_text_of_4_mb_is_read_to_its_first_1000_characters(make_app):
    """Free text is read to a limit (docs/security.md): the diagnosis named at the start still counts."""
    body = hook_request(load_scenario("ad-primary-nonresponse-adult"))
    (atopic,) = [e["resource"] for e in body["prefetch"]["Condition"]["entry"] if e["resource"]["code"].get("text") == "Atopic dermatitis"]
    atopic["code"] = {"text": "Atopic dermatitis" + " (moderate to severe)" * 200_000}
    raw = json.dumps(body).encode()
    assert len(raw) > 4_000_000
    response, cpu, peak = cost(make_app().test_client(), raw)
    assert response.status_code == 200
    assert [c["source"]["topic"]["code"] for c in response.get_json()["cards"]] == ["dupilumab-inadequate-response"]
    assert cpu < CPU_SECONDS, f"{cpu:.2f} CPU-seconds"
    assert peak < PEAK_BYTES, f"{peak / 2**20:.0f} MB"
