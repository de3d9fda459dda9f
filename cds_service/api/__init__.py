"""The HTTP layer: a Flask application factory over the pipeline. No clinical logic lives here."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Callable

from flask import Flask

from ..feedback.store import FeedbackStore, SQLiteFeedbackStore
from ..pipeline import Engine
from ..settings import Settings
from . import errors, routes
from .cors import install_cors
from .state import ServiceState

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def create_app(
    settings: Settings | None = None,
    *,
    feedback_store: FeedbackStore | None = None,
    clock: Clock = utc_now,
) -> Flask:
    settings = settings or Settings.from_env()
    logging.getLogger("cds_service").setLevel(settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["cds_service"] = ServiceState(
        engine=Engine.from_settings(settings),
        feedback=feedback_store or SQLiteFeedbackStore.from_url(settings.database_url),
        clock=clock,
    )
    app.register_blueprint(routes.blueprint)
    errors.install(app)
    install_cors(app, settings.cors_origins)
    return app
