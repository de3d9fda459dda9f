"""The SMART app's HTTP endpoints: /smart/launch, /smart/callback and /smart/course/<view>.

Each launch keeps its state (PKCE verifier, FHIR server, token endpoint) in its own signed cookie named after
its OAuth `state`, so launches in several tabs never overwrite each other. The callback shows the course and
leaves a signed view cookie behind; reloading /smart/course/<view> (or coming back to it) authorizes again
with what that cookie holds and reads the record afresh. The access token is never stored: not in a cookie,
a URL or a log.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, redirect, render_template, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response as BaseResponse  # what redirect() returns; flask's Response is one

from ..cards import CardContext
from ..gather.prefetch import GatheredData, section_of
from ..pipeline import assess_and_render
from ..record.model import Section
from ..record.normalise import build_patient_record
from ..service_state import base_url, state
from .oauth import READS, LaunchError, authorization_url, discover, exchange, pkce_pair, scopes
from .view import CourseView, build_view

log = logging.getLogger("cds_service.smart")
_PREFIX = "/smart"
blueprint = Blueprint("smart", __name__, template_folder="templates", url_prefix=_PREFIX)
_LAUNCH_COOKIE = "smart-launch-"  # + the OAuth state
_VIEW_COOKIE = "smart-view-"  # + the view id in /smart/course/<view>
# Each cookie is sent only where it is read, so a day of launches never adds up to an oversized request header.
_COOKIE_PATHS = {_LAUNCH_COOKIE: _PREFIX + "/callback", _VIEW_COOKIE: _PREFIX + "/course/"}
_LAUNCH_TTL = 600  # seconds between launch and callback
_VIEW_TTL = 8 * 3600  # how long reloading a course view authorizes again (a clinic session)
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")  # a state or view id we issued: also a valid cookie-name suffix
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'"
_RELAUNCH = "Open the app again from the patient's chart in the EHR."


class LaunchStateSessions(SecureCookieSessionInterface):
    """No request uses Flask's session: the SMART app keeps its state in cookies of its own (one per launch).
    Every request gets the null session, so none builds a signing serialiser or reads a cookie for it."""

    def open_session(self, app: Flask, request: Any) -> Any:
        return self.make_null_session(app)


# -- pages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """An error page: what happened, and what to do next (in order)."""

    title: str
    what: str
    steps: tuple[str, ...]
    status: int = 400
    retry: str | None = None  # a link that tries the same thing again


def _page(html: str, status: int = 200) -> Response:
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _problem(problem: Problem) -> Response:
    return _page(render_template("error.html", problem=problem), problem.status)


# -- signed cookies -----------------------------------------------------------------------------


def _signer(kind: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=f"smart-{kind}")


def _cookie_path(prefix: str, key: str) -> str:
    path = _COOKIE_PATHS[prefix]
    return path + key if path.endswith("/") else path


def _set_cookie(response: BaseResponse, prefix: str, key: str, value: dict[str, Any], ttl: int) -> None:
    response.set_cookie(prefix + key, _signer(prefix).dumps(value), max_age=ttl, path=_cookie_path(prefix, key),
                        secure=base_url().startswith("https:"), httponly=True, samesite="Lax")


def _read_cookie(prefix: str, key: str, ttl: int) -> dict[str, Any] | None:
    """The signed value of the cookie for `key`, or None (no such cookie, forged, or older than `ttl`)."""
    if not _KEY.match(key):
        return None
    raw = request.cookies.get(prefix + key)
    if raw is None:
        return None
    try:
        value = _signer(prefix).loads(raw, max_age=ttl)
    except BadSignature:  # includes SignatureExpired
        return None
    return value if isinstance(value, dict) else None


def _forget(response: BaseResponse, prefix: str, key: str) -> None:
    if _KEY.match(key):
        response.delete_cookie(prefix + key, path=_cookie_path(prefix, key))


# -- endpoints ----------------------------------------------------------------------------------


@blueprint.get("/launch")
def launch() -> BaseResponse:
    """EHR launch (iss + launch) or standalone launch (iss only)."""
    return _authorize(request.args.get("iss", ""), request.args.get("launch"), view=None)


@blueprint.get("/course/<view>")
def course(view: str) -> BaseResponse:
    """A reload of, or a return to, a course shown before: authorize again for the same FHIR server and launch."""
    saved = _read_cookie(_VIEW_COOKIE, view, _VIEW_TTL)
    if saved is None:
        return _problem(Problem(
            "This course view has expired",
            f"The page was opened from a launch that is over (a view can be reloaded for {_VIEW_TTL // 3600} hours, "
            "in the browser that opened it). The record is only read with the EHR's permission, so the app needs a new launch.",
            (_RELAUNCH,), status=410))
    return _authorize(str(saved.get("iss", "")), saved.get("launch"), view=view)


@blueprint.get("/callback")
def callback() -> BaseResponse:
    key = request.args.get("state", "")
    pending = _read_cookie(_LAUNCH_COOKIE, key, _LAUNCH_TTL)
    refused = request.args.get("error")
    if refused:
        response = _problem(_refusal(refused, request.args.get("error_description", ""), pending))
        _forget(response, _LAUNCH_COOKIE, key)
        return response
    if pending is None:
        return _problem(Problem(
            "This launch is unknown or has expired",
            f"A launch must be finished within {_LAUNCH_TTL // 60} minutes, in the browser where it started: "
            "the app keeps the launch in a cookie for that time. This one was not found (too old, already used, "
            "or the browser did not keep the cookie).",
            (_RELAUNCH, f"If this happens every time, the browser (or the EHR's embedded browser) must accept "
                        f"cookies from {urlsplit(base_url()).netloc}.")))
    engine = state().engine
    view = str(pending.get("view") or secrets.token_urlsafe(12))
    try:
        token = exchange(pending["token_endpoint"], code=request.args.get("code", ""), verifier=pending["verifier"],
                         client_id=engine.settings.smart_client_id, redirect_uri=base_url() + "/smart/callback")
    except LaunchError as error:
        response = _problem(Problem(
            "The authorization server gave no access", f"The exchange of the authorization code failed: {error}.",
            (_RELAUNCH, _registration_step()), status=502))
    else:
        # The token serves the reads of this page view and is then dropped: never stored, logged or put in a URL.
        shown = _course_view(pending["iss"], token.access_token, token.patient, token.app_context, view)
        response = shown if isinstance(shown, Response) else _page(render_template("course.html", view=shown))
    _forget(response, _LAUNCH_COOKIE, key)
    # Kept even when the reads failed, so that "Try again" (the course address) can authorize again.
    _set_cookie(response, _VIEW_COOKIE, view, {"iss": pending["iss"], "launch": pending.get("launch")}, _VIEW_TTL)
    return response


@blueprint.get("/")
@blueprint.get("/course")
@blueprint.get("/<path:anything>")
def elsewhere(anything: str = "") -> BaseResponse:
    return _problem(Problem(
        "There is no page here",
        "The dupilumab course app opens from a patient's chart: the EHR starts it at /smart/launch with the FHIR "
        "server's address and a launch.", (_RELAUNCH,), status=404))


# -- launching ----------------------------------------------------------------------------------


def _authorize(iss: str, launch_token: Any, view: str | None) -> BaseResponse:
    """Discover the FHIR server's SMART endpoints and send the browser to its authorization server."""
    engine = state().engine
    if not iss:
        return _problem(Problem(
            "The app was opened without a FHIR server",
            "The address has no iss parameter: the FHIR server whose patient to show.",
            (_RELAUNCH, f"A SMART launcher (for testing) launches {base_url()}/smart/launch with iss and launch.")))
    refusal = engine.fhir.refusal(iss)
    if refusal:
        return _problem(Problem("This FHIR server cannot be used", f"The EHR asked the app to read {iss}, but {refusal}.",
                                _allowlist_steps(iss, refusal)))
    try:
        configuration = discover(iss)
    except LaunchError as error:
        return _problem(Problem(
            "The FHIR server's SMART configuration could not be read", f"Reading {iss}/.well-known/smart-configuration: {error}.",
            ("Try again in a moment.",
             "If it keeps failing, the EHR's SMART setup must publish its authorization and token endpoints there."),
            status=502, retry=request.full_path))
    launch_token = launch_token if isinstance(launch_token, str) and launch_token else None
    verifier, challenge = pkce_pair()
    key = secrets.token_urlsafe(24)
    response = redirect(authorization_url(configuration, client_id=engine.settings.smart_client_id,
                                          redirect_uri=base_url() + "/smart/callback", iss=iss, state=key,
                                          challenge=challenge, launch=launch_token), code=302)
    _set_cookie(response, _LAUNCH_COOKIE, key, {"verifier": verifier, "iss": iss.rstrip("/"), "launch": launch_token,
                                                "token_endpoint": configuration.token_endpoint, "view": view,
                                                "scope": scopes(configuration, launch_token is not None)}, _LAUNCH_TTL)
    response.headers["Cache-Control"] = "no-store"
    return response


def _allowlist_steps(iss: str, refusal: str) -> tuple[str, ...]:
    if "CDS_FHIR_ALLOW_HTTP" in refusal:
        return (f"If {iss} is a test server, an administrator of this service sets CDS_FHIR_ALLOW_HTTP=true and restarts it; "
                "a production EHR must use https.", "Then open the app again from the EHR.")
    if "CDS_FHIR_ALLOWLIST" in refusal:
        return (f"If the app should read this server, an administrator of this service adds {iss.rstrip('/')} to "
                "CDS_FHIR_ALLOWLIST (comma-separated base URLs) and restarts it.", "Then open the app again from the EHR.")
    return ("The EHR's SMART launch gave an unusable FHIR address: its administrator checks the app's launch setup.",)


def _registration_step() -> str:
    return (f"If it fails every time, the EHR's administrator checks the app's registration: client id "
            f"{state().engine.settings.smart_client_id!r} (CDS_SMART_CLIENT_ID), redirect URI {base_url()}/smart/callback.")


def _refusal(error: str, description: str, pending: dict[str, Any] | None) -> Problem:
    said = error[:60] + (f": {description[:200]}" if description else "")
    if error == "access_denied":
        return Problem("Access was not granted", f"The authorization server answered {said}.",
                       ("To see the course, open the app again from the patient's chart and allow it to read the "
                        "patient's record (conditions, medications and observations).",), status=403)
    steps = [_RELAUNCH]
    if pending is not None and pending.get("view") and pending.get("launch"):
        steps[0] = ("Reloading the course authorizes again with the EHR's launch, and some EHRs accept a launch only "
                    "once. " + _RELAUNCH)
    if error == "invalid_scope" and pending is not None:
        steps.append(f"The EHR did not grant what the app asks for ({pending.get('scope', '')}): its administrator "
                     "allows these read scopes for the app.")
    steps.append(_registration_step())
    return Problem("The authorization server refused the launch", f"It answered {said}.", tuple(steps), status=403)


# -- reading the record -------------------------------------------------------------------------


def _course_view(iss: str, access_token: str, patient_id: str, app_context: str | None, view: str) -> CourseView | Response:
    engine = state().engine
    data = GatheredData()
    data.unavailable = {section_of(template): "" for template in READS.values()}
    deadline = time.monotonic() + max(engine.settings.fhir_time_budget_ms / 1000, 5.0)  # a person waits, not an EHR
    access = engine.fhir.access(iss, {"access_token": access_token}, deadline)
    for _ in range(2):  # a person waits: a read that failed (a dropped connection) is tried once more
        data.unavailable = dict.fromkeys(data.unavailable, "")  # each attempt says why it failed
        engine.fhir.complete(data, access, READS, {"patientId": patient_id})
        if not data.unavailable:
            break
    failed = {section: _reason(why) for section, why in data.unavailable.items() if not Section(section).optional}
    if failed:
        log.warning("SMART app could not read %s", sorted(failed))
        return _problem(Problem(
            "The patient's record could not be read",
            "These reads from the FHIR server failed: " + "; ".join(f"{section} ({why})" for section, why in failed.items()) + ".",
            ("Try again: the record is read afresh.",
             "If a read is refused (HTTP 401 or 403) every time, the EHR does not let the app read that resource type: "
             "its administrator grants the app's read scopes.", _RELAUNCH),
            status=502, retry=f"{_PREFIX}/course/{view}"))
    unread = {section: _reason(why) for section, why in data.unavailable.items()}
    today = state().clock().date()
    record = build_patient_record(patient_id, data.resources, data.unavailable, engine.knowledge.concepts, notes=data.notes)
    context = CardContext(
        hook="patient-view", hook_instance=secrets.token_hex(8), today=today, patient_id=patient_id, user_id=None,
        encounter_id=None, topic_system=engine.settings.card_topic_system,
        override_reason_system=engine.settings.override_reason_system, source_label=engine.settings.source_label,
    )
    assessment, cards, plan = assess_and_render(record, engine, context)
    patients = data.resources.get("Patient") or [{}]
    return build_view(record, assessment, [c.to_json() for c in cards], plan, engine.knowledge, today,
                      patient=patients[0], topic=_topic(app_context, patient_id), view_id=view, unread=unread)


def _reason(why: str) -> str:
    """What the reader wrote about a failed read, without its leading separator."""
    return why.strip("; ").removeprefix("reading it from the FHIR server failed: ") or "not read"


def _topic(app_context: str | None, patient_id: str) -> str | None:
    """The card topic the app was opened from (the card link's appContext, returned with the token)."""
    try:
        context = json.loads(app_context) if app_context else None
    except ValueError:
        return None
    if not isinstance(context, dict) or context.get("patientId") not in (None, patient_id):
        return None  # about another patient: nothing to point at
    topic = context.get("topic")
    return topic if isinstance(topic, str) else None
