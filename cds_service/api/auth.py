"""Every CDS Hooks endpoint (discovery included) needs a JWT from a trusted client, unless CDS_AUTH=off.

Failures answer 401 with no detail; the log gets the reason and the claims, never the token.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, request

from .. import metrics
from ..service_state import base_url, state
from ..trust import AuthFailure
from .errors import outcome_response

log = logging.getLogger("cds_service.auth")

PROTECTED_ENDPOINTS = {"cds_hooks.discovery", "cds_hooks.call_service", "cds_hooks.feedback"}


def called_urls() -> list[str]:
    """The exact URL the client called, as the token's `aud` must name it: under each name CDS_PUBLIC_BASE_URL
    lists (behind proxies; localhost and 127.0.0.1 in development), else as the request reached the service."""
    bases = state().engine.settings.public_base_urls or (base_url(),)
    return [base + request.path for base in bases]


def install(app: Flask) -> None:
    @app.before_request
    def authenticate() -> Response | None:
        g.client = None
        if request.method == "OPTIONS" or request.endpoint not in PROTECTED_ENDPOINTS:
            return None  # CORS preflights carry no credentials; operations endpoints are public
        verifier = state().verifier
        if verifier is None:
            return None
        try:
            g.client = verifier.verify(request.headers.get("Authorization"), called_urls())
        except AuthFailure as failure:
            g.outcome = "unauthorised"
            metrics.count_auth_failure(failure.reason)
            log.warning("refused a call to %s: %s", request.path, failure.log_fields())
            response = outcome_response(401, "authentication failed")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return None
