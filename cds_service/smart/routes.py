"""The SMART app's HTTP endpoints: /smart/launch, /smart/callback."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from flask import Blueprint, Flask, Response, redirect, render_template, request, session
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response as BaseResponse  # what redirect() returns; flask's Response is one

from ..cards import CardContext
from ..gather.prefetch import GatheredData, section_of
from ..hooks.catalog import PREFETCH
from ..pipeline import assess_and_render
from ..record.normalise import build_patient_record
from ..service_state import base_url, state
from .oauth import LaunchError, authorization_url, discover, exchange, pkce_pair
from .view import build_view

log = logging.getLogger("cds_service.smart")
_PREFIX = "/smart"
blueprint = Blueprint("smart", __name__, template_folder="templates", url_prefix=_PREFIX)
_SESSION_KEY = "smart_launch"
_LAUNCH_TTL = 600  # seconds between launch and callback


class LaunchStateSessions(SecureCookieSessionInterface):
    """Only the SMART app has a session (its launch-state cookie). Other requests get Flask's null session
    instead of a signing serialiser built and a cookie read on every hook call (4% of a worker's time)."""

    def open_session(self, app: Flask, request: Any) -> Any:
        if not request.path.startswith(_PREFIX + "/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def _error(message: str, status: int = 400) -> Response:
    response = Response(render_template("error.html", message=message), status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/launch")
def launch() -> BaseResponse:
    """EHR launch (iss + launch) or standalone launch (iss only)."""
    iss, launch_token = request.args.get("iss", ""), request.args.get("launch")
    engine = state().engine
    refusal = engine.fhir.refusal(iss) if iss else "no iss (FHIR server) was given"
    if refusal:
        return _error(f"This FHIR server cannot be used: {refusal}.")
    try:
        configuration = discover(iss)
    except LaunchError as error:
        return _error(str(error) + ".", 502)
    verifier, challenge = pkce_pair()
    launch_state = secrets.token_urlsafe(24)
    session[_SESSION_KEY] = {"state": launch_state, "verifier": verifier, "iss": iss.rstrip("/"),
                             "token_endpoint": configuration.token_endpoint, "at": time.time()}
    return redirect(authorization_url(configuration, client_id=engine.settings.smart_client_id,
                                      redirect_uri=base_url() + "/smart/callback", iss=iss, state=launch_state,
                                      challenge=challenge, launch=launch_token), code=302)


@blueprint.get("/callback")
def callback() -> BaseResponse:
    pending = session.pop(_SESSION_KEY, None)
    refused = request.args.get("error")
    if refused:
        return _error(f"The authorization server refused the launch ({refused[:60]}).", 403)
    if not pending or request.args.get("state") != pending.get("state") or time.time() - pending.get("at", 0) > _LAUNCH_TTL:
        return _error("This launch is unknown or has expired.", 400)
    engine = state().engine
    try:
        token = exchange(pending["token_endpoint"], code=request.args.get("code", ""), verifier=pending["verifier"],
                         client_id=engine.settings.smart_client_id, redirect_uri=base_url() + "/smart/callback")
    except LaunchError as error:
        return _error(str(error) + ".", 502)
    # The token serves the reads of this page view and is then dropped: never stored, logged or put in a URL.
    view = _course_view(pending["iss"], token.access_token, token.patient)
    if isinstance(view, Response):
        return view
    response = Response(render_template("course.html", view=view, app_context=token.app_context), mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:"
    )
    return response


def _course_view(iss: str, access_token: str, patient_id: str) -> Any:
    engine = state().engine
    data = GatheredData()
    for key, template in PREFETCH.items():
        data.unavailable[section_of(template)] = f"'{key}' not yet read"
    deadline = time.monotonic() + max(engine.settings.fhir_time_budget_ms / 1000, 5.0)  # a person waits, not an EHR
    access = engine.fhir.access(iss, {"access_token": access_token}, deadline)
    engine.fhir.complete(data, access, PREFETCH, {"patientId": patient_id})
    required = {"Patient", "Condition", "MedicationStatement", "MedicationRequest", "Observation"}
    failed = {section: reason for section, reason in data.unavailable.items() if section in required}
    if failed:
        log.warning("SMART app could not read %s", sorted(failed))
        return _error("The patient's data could not be read from the FHIR server: " + "; ".join(failed.values()), 502)
    today = state().clock().date()
    record = build_patient_record(patient_id, data.resources, data.unavailable, engine.knowledge.concepts, notes=data.notes)
    context = CardContext(
        hook="patient-view", hook_instance=secrets.token_hex(8), today=today, patient_id=patient_id, user_id=None,
        encounter_id=None, topic_system=engine.settings.card_topic_system,
        override_reason_system=engine.settings.override_reason_system, source_label=engine.settings.source_label,
    )
    assessment, cards, plan = assess_and_render(record, engine, context)
    return build_view(record, assessment, [c.to_json() for c in cards], plan, engine.knowledge, today)
