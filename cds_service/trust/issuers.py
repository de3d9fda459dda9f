"""The CDS clients this service trusts (CDS_TRUSTED_ISSUERS): issuer, where its keys are, optional tenant.

Format: a JSON array, inline or in a file named with a leading @:
    [{"iss": "https://sandbox.cds-hooks.org",
      "jwks_url": "https://sandbox.cds-hooks.org/.well-known/jwks.json",   # or "jwks_file": "path"
      "jku": ["https://sandbox.cds-hooks.org/.well-known/jwks.json"],      # jku values allowed in headers
      "tenant": "optional tenant the tokens must carry"}]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


class IssuerConfigError(ValueError):
    pass


@dataclass(frozen=True)
class TrustedIssuer:
    iss: str
    jwks_url: str | None
    jwks_file: str | None
    allowed_jku: tuple[str, ...]
    tenant: str | None


def _named_file(value: str) -> str | None:
    return value[1:] if value.startswith("@") else None


def load_trusted_issuers(value: str) -> dict[str, TrustedIssuer]:
    value = value_given = value.strip()
    if not value:
        return {}
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            value = path.read_text()
        except OSError as error:
            raise IssuerConfigError(f"CDS_TRUSTED_ISSUERS file {path}: {error.strerror}") from None
        base = path.parent
    else:
        base = Path.cwd()
    where = f"CDS_TRUSTED_ISSUERS file {value_path}" if (value_path := _named_file(value_given)) else "CDS_TRUSTED_ISSUERS"
    try:
        entries = json.loads(value)
    except json.JSONDecodeError as error:
        raise IssuerConfigError(f"{where} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}); "
                                "it must be a JSON array of issuers, see deploy/trusted-issuers.sandbox.json") from None
    if not isinstance(entries, list):
        raise IssuerConfigError("CDS_TRUSTED_ISSUERS must be a JSON array of issuers")
    issuers = {}
    for index, entry in enumerate(entries):
        where = f"CDS_TRUSTED_ISSUERS[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("iss"), str) or not entry["iss"]:
            raise IssuerConfigError(f"{where}: needs an 'iss'")
        jwks_url, jwks_file = entry.get("jwks_url"), entry.get("jwks_file")
        if not (jwks_url or jwks_file or entry.get("jku")):
            raise IssuerConfigError(f"{where}: needs 'jwks_url', 'jwks_file' or allowed 'jku' URLs")
        for url in [jwks_url, *(entry.get("jku") or [])]:
            if url is not None and urlsplit(url).scheme != "https":
                raise IssuerConfigError(f"{where}: key set URLs must be https")
        if jwks_file is not None:
            jwks_file = str((base / jwks_file).resolve())
        issuers[entry["iss"]] = TrustedIssuer(
            iss=entry["iss"],
            jwks_url=jwks_url,
            jwks_file=jwks_file,
            allowed_jku=tuple(entry.get("jku") or ()),
            tenant=entry.get("tenant"),
        )
    return issuers
