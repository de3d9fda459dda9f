"""Verifying the JWT a CDS client sends on every call (CDS Hooks 2.0, "Trusting CDS Clients").

Checks, in order: a bearer token; an asymmetric algorithm from the allowed list (never `none` or HMAC);
`typ` JWT when present; an issuer on the allowlist; its key (from the issuer's JWKS, or the `jku` header
when that URL is allowed for the issuer), refreshed once on an unknown `kid`; the signature; `aud` equal
to the exact URL called (under any of the service's public names); `exp` and `iat` with a small leeway
and a bounded lifetime; the tenant when the issuer has one; and a `jti` never seen before (kept for the
token's lifetime, shared across replicas).
Any failure raises AuthFailure: the caller answers 401 with no detail and logs the reason with the
claims, never the token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from .issuers import TrustedIssuer
from .key_sets import KeySets, KeySetUnavailable
from .shared import SharedState

log = logging.getLogger("cds_service.auth")

_SYMMETRIC = {"HS256", "HS384", "HS512"}
_JWKS_REFRESH_INTERVAL = 30  # at most one refetch per key set per 30 s: unknown kids cannot flood the issuer


class AuthFailure(Exception):
    def __init__(self, reason: str, claims: Mapping[str, Any] | None = None, header: Mapping[str, Any] | None = None):
        self.reason = reason
        self.claims = dict(claims or {})
        self.header = dict(header or {})
        super().__init__(reason)

    def log_fields(self) -> dict[str, Any]:
        """What may be logged: the reason, header fields and claims. Never the token."""
        claims: dict[str, Any] = {
            k: self.claims.get(k) for k in ("iss", "sub", "aud", "tenant", "jti", "iat", "exp") if k in self.claims
        }
        header: dict[str, Any] = {k: self.header.get(k) for k in ("alg", "kid", "jku", "typ") if k in self.header}
        return {"reason": self.reason, **header, **claims}


@dataclass(frozen=True)
class ClientIdentity:
    issuer: str
    tenant: str | None
    subject: str | None


class ClientVerifier:
    def __init__(
        self,
        issuers: Mapping[str, TrustedIssuer],
        state: SharedState,
        algorithms: tuple[str, ...],
        leeway_seconds: int,
        max_lifetime_seconds: int,
        clock=time.time,
    ):
        unsafe = [a for a in algorithms if a.upper() in _SYMMETRIC or a.lower() == "none"]
        if unsafe:
            raise ValueError(f"CDS_JWT_ALGORITHMS may not include {unsafe}: only asymmetric algorithms")
        self.issuers = dict(issuers)
        self.state = state
        self.algorithms = algorithms
        self.leeway = leeway_seconds
        self.max_lifetime = max_lifetime_seconds
        self.clock = clock
        self.key_sets = KeySets(state)

    def verify(self, authorization: str | None, audience: str | Sequence[str]) -> ClientIdentity:
        """`audience`: the URL called, or that URL under each name the service is reached by (one must match)."""
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthFailure("no bearer token")
        token = authorization[len("Bearer "):].strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthFailure("malformed token") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise AuthFailure(f"algorithm {alg!r} not allowed", unverified, header)
        if header.get("typ") not in (None, "JWT", "jwt"):
            raise AuthFailure("typ is not JWT", unverified, header)
        if any(not isinstance(v, str) for v in (unverified.get("iss", ""), header.get("kid", ""), header.get("jku", ""))):
            raise AuthFailure("malformed token: iss, kid and jku must be strings", unverified, header)
        issuer = self.issuers.get(unverified.get("iss"))  # type: ignore[arg-type]
        if issuer is None:
            raise AuthFailure("issuer not trusted", unverified, header)
        key = self._key(issuer, header, unverified)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audience if isinstance(audience, str) else list(audience),
                issuer=issuer.iss,
                leeway=self.leeway,
                options={"require": ["iss", "aud", "exp", "iat", "jti"], "verify_iat": True},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailure("expired", unverified, header) from None
        except jwt.InvalidAudienceError:
            raise AuthFailure("audience is not the URL called", unverified, header) from None
        except jwt.ImmatureSignatureError:
            raise AuthFailure("issued in the future", unverified, header) from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthFailure(f"missing claim {error.claim}", unverified, header) from None
        except jwt.PyJWTError as error:
            raise AuthFailure(f"invalid token ({type(error).__name__})", unverified, header) from None
        now = self.clock()
        if claims["exp"] - claims["iat"] > self.max_lifetime:
            raise AuthFailure("token lifetime too long", claims, header)
        if issuer.tenant is not None and claims.get("tenant") != issuer.tenant:
            raise AuthFailure("tenant does not match the issuer's", claims, header)
        ttl = int(claims["exp"] - now + self.leeway) + 1
        if not self.state.add_if_absent(f"jti:{issuer.iss}:{claims['jti']}", ttl):
            raise AuthFailure("jti replayed", claims, header)
        return ClientIdentity(issuer.iss, claims.get("tenant"), claims.get("sub"))

    def key_set_status(self) -> dict[str, str]:
        """For the detailed health view: what is known of each issuer's key set, without fetching any."""
        return {issuer.iss: self.key_sets.status(source) for issuer in self.issuers.values()
                if (source := issuer.jwks_file or issuer.jwks_url) is not None}

    # -- keys ------------------------------------------------------------------------------

    def _key(self, issuer: TrustedIssuer, header: Mapping[str, Any], claims: Mapping[str, Any]) -> Any:
        jku = header.get("jku")
        if issuer.jwks_file is not None:
            source = issuer.jwks_file  # keys configured out of band: they decide, whatever jku says
        elif jku is not None:
            if jku not in issuer.allowed_jku and jku != issuer.jwks_url:
                raise AuthFailure("jku not allowed for this issuer", claims, header)
            source = jku
        elif issuer.jwks_url is not None:
            source = issuer.jwks_url
        else:
            raise AuthFailure("no jku header and no key set configured", claims, header)
        kid = header.get("kid")
        keys = self._key_set(source, refresh=False)
        key = _pick(keys, kid)
        if key is None and self.state.add_if_absent(f"jwks-refresh:{source}", _JWKS_REFRESH_INTERVAL):
            keys = self._key_set(source, refresh=True)
            key = _pick(keys, kid)
        if key is None:
            raise AuthFailure("no key for kid", claims, header)
        return key

    def _key_set(self, source: str, refresh: bool) -> jwt.PyJWKSet:
        try:
            return self.key_sets.keys(source, refresh)
        except KeySetUnavailable as failure:
            raise AuthFailure(f"key set unavailable: {failure}") from None


def _pick(keys: jwt.PyJWKSet, kid: str | None) -> Any:
    """The signing key with this kid (kids may contain '+' and '='); the only key when no kid is given."""
    candidates = [k for k in keys.keys if k.public_key_use in (None, "sig")]
    if kid is None:
        return candidates[0].key if len(candidates) == 1 else None
    return next((k.key for k in candidates if k.key_id == kid), None)
