"""Prometheus metrics that add up across gunicorn workers.

prometheus_client is imported on first use, after `cds-service serve` has pointed
PROMETHEUS_MULTIPROC_DIR at a shared folder: each worker writes its own files there and /metrics
sums them. Labels are bounded (service ids, status codes, card topics, FHIR sections, failure kinds).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("cds_service.metrics")
_F = TypeVar("_F", bound=Callable[..., None])

_lock = threading.Lock()
_metrics: dict[str, Any] = {}
# (metric, *labels) -> labelled child: labels() costs 3x the increment. Threads racing to add one store the
# same child (labels() returns one object per label set), so no lock.
_children: dict[tuple[str, ...], Any] = {}

# AuthFailure reasons (cds_service/trust/verify.py) by how they start -> the bounded label they count under.
_AUTH_REASONS = (
    ("no bearer token", "no bearer token"), ("malformed token", "malformed token"), ("invalid token", "invalid token"),
    ("algorithm", "algorithm"), ("typ", "typ"), ("issuer not trusted", "issuer not trusted"), ("expired", "expired"),
    ("audience", "audience"), ("issued in the future", "issued in the future"), ("missing claim", "missing claim"),
    ("token lifetime too long", "token lifetime too long"), ("tenant", "tenant"), ("jti replayed", "jti replayed"),
    ("no key for kid", "no key for kid"), ("jku not allowed", "jku not allowed"), ("key set", "key set"),
    ("the issuer's key", "key set"), ("no jku header", "key set"),
)


def _get() -> dict[str, Any]:
    with _lock:
        if not _metrics:
            from prometheus_client import Counter, Histogram

            _metrics.update(
                requests=Counter(
                    "cds_requests_total", "HTTP requests by endpoint, service and status", ["endpoint", "service", "status"]
                ),
                latency=Histogram(
                    "cds_request_duration_seconds", "HTTP request duration by endpoint and service", ["endpoint", "service"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
                ),
                cards=Counter("cds_cards_total", "Cards returned, by topic", ["topic"]),
                fhir=Counter(
                    "cds_fhir_reads_total", "Reads from EHR FHIR servers when prefetch lacked data", ["section", "outcome"]
                ),
                auth=Counter("cds_auth_failures_total", "Refused client tokens, by reason", ["reason"]),
                audit=Counter("cds_audit_records_total", "Audit records by fate: written, spooled at exit for the next "
                              "process, dropped", ["result"]),
                key_sets=Counter("cds_key_set_fetches_total", "Fetches of trusted issuers' key sets, by result", ["result"]),
                patient_cache=Counter("cds_patient_cache_lookups_total", "Hook calls whose patient was (hit) or was not (miss) "
                                      "in this worker's cache", ["result"]),
            )
        return _metrics


def _child(metric: str, *labels: str) -> Any:
    """The labelled series, looked up once per label set (the label sets are bounded, see above)."""
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = _get()[metric].labels(*labels)
    return child


def _never_fails(record: _F) -> _F:
    """A metric that cannot be written (its folder gone, a full disk) must not fail the call it counts."""

    @functools.wraps(record)
    def safely(*args: Any) -> None:
        try:
            record(*args)
        except Exception as error:  # noqa: BLE001 - any failure of the metrics library
            if not getattr(safely, "warned", False):
                safely.warned = True  # type: ignore[attr-defined]
                log.warning("metrics could not be recorded (%s: %s); calls are still answered", type(error).__name__, error)

    return safely  # type: ignore[return-value]


@_never_fails
def observe_request(endpoint: str, service: str, status: int, seconds: float) -> None:
    _child("requests", endpoint, service, str(status)).inc()
    _child("latency", endpoint, service).observe(seconds)


@_never_fails
def count_cards(topics: list[str]) -> None:
    for topic in topics:
        _child("cards", topic).inc()


@_never_fails
def count_fhir_read(section: str, ok: bool) -> None:
    _child("fhir", section, "ok" if ok else "failed").inc()


@_never_fails
def count_patient_cache_lookup(hit: bool) -> None:
    _child("patient_cache", "hit" if hit else "miss").inc()


@_never_fails
def count_auth_failure(reason: str) -> None:
    kind = next((label for start, label in _AUTH_REASONS if reason.startswith(start)), "other")
    _child("auth", kind).inc()


@_never_fails
def count_audit_records(result: str, count: int) -> None:
    _child("audit", result).inc(count)


@_never_fails
def count_key_set_fetch(ok: bool) -> None:
    _child("key_sets", "ok" if ok else "failed").inc()


def exposition() -> tuple[bytes, str]:
    """The text format of every metric, summed over the workers when running under gunicorn."""
    _get()
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
