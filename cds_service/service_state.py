"""What the HTTP layer holds for the life of the process, and where the client reached it.

A leaf module of its own, not part of `api`: both the CDS Hooks routes (`api`) and the SMART app
(`smart`) read it, and `api.create_app` registers the SMART blueprint, so keeping it inside `api`
made the two packages import each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from flask import current_app, request
from werkzeug.sansio.utils import get_current_url

from .pipeline import Engine
from .storage import Store
from .storage.audit import AuditWriter
from .trust import ClientVerifier
from .trust.shared import SharedState


@dataclass(frozen=True)
class ServiceState:
    engine: Engine
    store: Store
    audit: AuditWriter
    clock: Callable[[], datetime]
    verifier: ClientVerifier | None  # None: authentication is off (development)
    shared: SharedState
    # Feedback writes waiting on the database at once in this process: at most half its threads, so a slow or
    # locked database never takes the threads hook calls need (more feedback waits FEEDBACK_SLOT_WAIT_SECONDS for
    # a slot, then gets a 503; a healthy database frees slots in milliseconds).
    feedback_writers: threading.BoundedSemaphore


def state() -> ServiceState:
    return current_app.extensions["cds_service"]


def base_url() -> str:
    """Where the client reached this service: CDS_PUBLIC_BASE_URL behind proxies, else the request's scheme and host."""
    return state().engine.settings.public_base_url or _host_url(request.scheme, request.host)


@lru_cache(maxsize=64)  # bounded: the Host header is the client's; decoding it was 2% of a worker's time
def _host_url(scheme: str, host: str) -> str:
    return get_current_url(scheme, host).rstrip("/")
