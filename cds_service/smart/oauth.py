"""SMART App Launch: discovery, the authorization request with PKCE, and the token exchange."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from ..gather.prefetch import section_of
from ..hooks.catalog import PREFETCH

# What the app reads: the queries of the CDS service's prefetch. The scopes it asks for are made from the same
# queries, so they cannot drift apart: one patient-level read scope per resource type read, nothing else.
READS: Mapping[str, str] = PREFETCH
RESOURCES = tuple(dict.fromkeys(section_of(query) for query in READS.values()))
_TIMEOUT = 5
_MAX_BYTES = 1_000_000


class LaunchError(Exception):
    """Something about the launch is wrong; shown to the user as is (it carries no secret)."""


@dataclass(frozen=True)
class SmartConfiguration:
    authorization_endpoint: str
    token_endpoint: str
    v2_scopes: bool


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    patient: str
    app_context: str | None
    scope: str


def discover(iss: str) -> SmartConfiguration:
    """Read {iss}/.well-known/smart-configuration (the caller has checked `iss` against the allowlist)."""
    document = _get_json(iss.rstrip("/") + "/.well-known/smart-configuration")
    try:
        authorize, token = document["authorization_endpoint"], document["token_endpoint"]
    except (KeyError, TypeError):
        raise LaunchError("the FHIR server's SMART configuration names no authorization or token endpoint") from None
    for url in (authorize, token):
        if not isinstance(url, str) or urlsplit(url).scheme not in {"https", "http"}:
            raise LaunchError("the FHIR server's SMART configuration has an unusable endpoint")
    scopes = document.get("scopes_supported") or []
    capabilities = document.get("capabilities") or []
    v2 = "permission-v2" in capabilities or any(isinstance(s, str) and s.endswith(".rs") for s in scopes)
    return SmartConfiguration(authorize, token, v2)


def scopes(configuration: SmartConfiguration, ehr_launch: bool) -> str:
    """The launch context and a read scope per resource type read; no openid or fhirUser (the app never reads who
    the user is), in the SMART v2 form (.rs) when the server supports it, else v1 (.read)."""
    suffix = "rs" if configuration.v2_scopes else "read"
    parts = ["launch" if ehr_launch else "launch/patient"]
    parts += [f"patient/{resource}.{suffix}" for resource in RESOURCES]
    return " ".join(parts)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_url(configuration: SmartConfiguration, *, client_id: str, redirect_uri: str, iss: str, state: str,
                      challenge: str, launch: str | None) -> str:
    parameters = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scopes(configuration, launch is not None),
        "state": state,
        "aud": iss,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if launch is not None:
        parameters["launch"] = launch
    separator = "&" if "?" in configuration.authorization_endpoint else "?"
    return configuration.authorization_endpoint + separator + urlencode(parameters)


def exchange(token_endpoint: str, *, code: str, verifier: str, client_id: str, redirect_uri: str) -> TokenResponse:
    try:
        response = requests.post(
            token_endpoint,
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                  "client_id": client_id, "code_verifier": verifier},
            headers={"Accept": "application/json"}, timeout=_TIMEOUT, allow_redirects=False,
        )
    except requests.RequestException:
        raise LaunchError("the authorization server could not be reached") from None
    if response.status_code != 200:
        raise LaunchError(f"the authorization server refused the code (HTTP {response.status_code})")
    document = _json(response)
    token, patient = document.get("access_token"), document.get("patient")
    if not isinstance(token, str) or not token:
        raise LaunchError("the authorization server sent no access token")
    if not isinstance(patient, str) or not patient:
        raise LaunchError("the launch has no patient in context")
    context = document.get("appContext")
    if context is not None and not isinstance(context, str):
        context = None
    return TokenResponse(token, patient, context, str(document.get("scope", "")))


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = requests.get(url, headers={"Accept": "application/json"}, timeout=_TIMEOUT, allow_redirects=False)
    except requests.RequestException:
        raise LaunchError("the FHIR server's SMART configuration could not be read") from None
    if response.status_code != 200:
        raise LaunchError(f"the FHIR server's SMART configuration answered HTTP {response.status_code}")
    return _json(response)


def _json(response: requests.Response) -> dict[str, Any]:
    if len(response.content) > _MAX_BYTES:
        raise LaunchError("the answer is too large")
    try:
        document = response.json()
    except ValueError:
        raise LaunchError("the answer is not JSON") from None
    if not isinstance(document, dict):
        raise LaunchError("the answer is not a JSON object")
    return document
