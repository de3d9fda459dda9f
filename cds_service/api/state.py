"""What the HTTP layer holds for the life of the process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from flask import current_app

from ..pipeline import Engine
from ..storage import Store
from ..storage.audit import AuditWriter
from ..trust import ClientVerifier
from ..trust.shared import SharedState


@dataclass(frozen=True)
class ServiceState:
    engine: Engine
    store: Store
    audit: AuditWriter
    clock: Callable[[], datetime]
    verifier: ClientVerifier | None  # None: authentication is off (development)
    shared: SharedState


def state() -> ServiceState:
    return current_app.extensions["cds_service"]
