"""The HTTP layer: a Flask application factory over the pipeline. No clinical logic lives here."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask

from ..pipeline import Engine
from ..service_state import ServiceState
from ..settings import Settings
from ..smart import routes as smart_routes
from ..storage import Store, open_store
from ..storage.audit import AuditWriter, spool_folder
from ..trust import ClientVerifier
from ..trust.issuers import load_trusted_issuers
from ..trust.shared import shared_state
from . import auth, errors, operations, routes
from .cors import install_cors

Clock = Callable[[], datetime]
log = logging.getLogger("cds_service")

_AUTH_OFF_WARNING = (
    "\n" + "!" * 78 + "\n"
    "!!  AUTHENTICATION IS OFF (CDS_AUTH=off): anyone who can reach this service can call it.\n"
    "!!  Development only. In production set CDS_AUTH=required and CDS_TRUSTED_ISSUERS.\n"
    + "!" * 78
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings | None = None, *, store: Store | None = None, clock: Clock | None = None,
               workers_state_file: str | None = None) -> Flask:
    """`workers_state_file`: where the gunicorn workers of one replica share the replay cache when
    there is no Redis (`cds-service serve` passes it). `clock`: the tests'; else CDS_DEV_NOW, else the clock."""
    settings = settings or Settings.from_env()
    if clock is None:
        pinned = settings.dev_now
        clock = (lambda: pinned) if pinned is not None else utc_now
        if pinned is not None:
            log.warning("CDS_DEV_NOW: answering as of %s, not the clock (development only)", pinned.isoformat())
    logging.getLogger("cds_service").setLevel(settings.log_level)
    shared = shared_state(settings.redis_url, settings.redis_prefix, workers_state_file)
    verifier = None
    if settings.auth_required:
        verifier = ClientVerifier(
            load_trusted_issuers(settings.trusted_issuers),
            shared,
            settings.jwt_algorithms,
            settings.jwt_leeway_seconds,
            settings.jwt_max_lifetime_seconds,
        )
        if not verifier.issuers:
            log.warning("CDS_AUTH=required but CDS_TRUSTED_ISSUERS is empty: every call will be refused (401)")
    else:
        log.warning(_AUTH_OFF_WARNING)
    app = Flask(__name__)
    # One byte over the limit: a chunked body (no Content-Length) is then read far enough to tell one that is too
    # large (413, routes._body_bytes) from one exactly at the limit.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1
    # The SMART app keeps its launch state (PKCE verifier, state) in a signed cookie, never the token.
    app.secret_key = settings.secret_key or secrets.token_urlsafe(32)
    app.session_interface = smart_routes.LaunchStateSessions()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"))
    store = store or open_store(settings.database_url)
    app.extensions["cds_service"] = ServiceState(
        engine=Engine.from_settings(settings),
        store=store,
        audit=AuditWriter(store, spool_folder(settings.database_url)),
        clock=clock,
        verifier=verifier,
        shared=shared,
        feedback_writers=threading.BoundedSemaphore(max(1, settings.threads // 2)),
    )
    app.register_blueprint(routes.blueprint)  # first: its request id and timer cover refused calls too
    app.register_blueprint(smart_routes.blueprint)
    app.register_blueprint(operations.blueprint)
    auth.install(app)
    if settings.bench_echo:
        app.register_blueprint(routes.bench_blueprint)
    errors.install(app)
    install_cors(app, settings.cors_origins)
    return app
