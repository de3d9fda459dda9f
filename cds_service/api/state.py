"""What the HTTP layer holds for the life of the process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from flask import current_app

from ..feedback.store import FeedbackStore
from ..pipeline import Engine


@dataclass(frozen=True)
class ServiceState:
    engine: Engine
    feedback: FeedbackStore
    clock: Callable[[], datetime]


def state() -> ServiceState:
    return current_app.extensions["cds_service"]
