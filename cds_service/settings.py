"""Settings, read once from environment variables prefixed ``CDS_``.

Every setting has a safe embedded default so the service starts with no
external database, cache or network. `.env.example` documents each one; the
README's configuration table is checked against `SETTINGS_DOC` by a test.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

PREFIX = "CDS_"

# name -> (default, description). The single list of settings the service reads.
SETTINGS_DOC: dict[str, tuple[str, str]] = {
    "CDS_DATABASE_URL": (
        "sqlite:///instance/cds-service.sqlite3",
        "Where feedback and the audit trail are stored: `sqlite:///relative/path`, `sqlite:////absolute/path`, "
        "or `postgresql://user@host/db` (several replicas).",
    ),
    "CDS_REDIS_URL": (
        "",
        "Redis shared by replicas for the JWT replay and key-set caches, e.g. `redis://host:6379/0`. "
        "Empty: shared by the workers of one replica only (a local file), so several replicas need it.",
    ),
    "CDS_REDIS_PREFIX": ("cds:", "Prefix of this service's Redis keys."),
    "CDS_AUTH": ("required", "`required`: every call needs a JWT from a trusted issuer. `off`: development only (warns loudly)."),
    "CDS_TRUSTED_ISSUERS": (
        "",
        "Trusted CDS clients: a JSON array, or `@path/to/file.json` (see deploy/trusted-issuers.sandbox.json).",
    ),
    "CDS_PUBLIC_BASE_URL": (
        "",
        "The base URL clients call (for the JWT `aud` check behind proxies), e.g. `https://cds.example.org`. Several may "
        "be listed, comma-separated (`http://127.0.0.1:8080,http://localhost:8080`): the first is the one links and the "
        "SMART redirect URI use; a token for any of them is accepted.",
    ),
    "CDS_JWT_ALGORITHMS": ("ES384,RS384", "Asymmetric JWT algorithms accepted (never `none` or HMAC)."),
    "CDS_JWT_LEEWAY_SECONDS": ("60", "Clock leeway for `exp` and `iat`."),
    "CDS_JWT_MAX_LIFETIME_SECONDS": ("3600", "Longest token lifetime (`exp` - `iat`) accepted."),
    "CDS_MAX_BODY_BYTES": ("5000000", "Largest request body accepted; larger bodies get 413."),
    "CDS_CORS_ORIGINS": ("*", "Comma-separated origins allowed by CORS (`*` for any, as the public sandbox needs)."),
    "CDS_REGION": ("US", "Regulatory region whose approvals, doses, draft-order codes and label rules apply (`US` or `EU`)."),
    "CDS_CARD_TOPIC_SYSTEM": (
        "http://example.org/fhir/CodeSystem/dupilumab-cds-card-topic",
        "Coding system of `card.source.topic`; set it to your organisation's canonical URL.",
    ),
    "CDS_OVERRIDE_REASON_SYSTEM": (
        "http://example.org/fhir/CodeSystem/dupilumab-cds-override-reason",
        "Coding system of the override reasons cards offer.",
    ),
    "CDS_SOURCE_LABEL": ("Dupilumab next-line CDS", "`card.source.label` shown to clinicians."),
    "CDS_SCORE_CODES": (
        "",
        "Local codes for AD severity scores, e.g. `EASI=http://hospital.example/codes|easi;IGA=|iga-ad`.",
    ),
    "CDS_KNOWLEDGE_DIR": (
        "",
        "Folder of knowledge files to use instead of the packaged ones (check them first with `cds-service knowledge check "
        "FOLDER`). Empty: the packaged knowledge base.",
    ),
    "CDS_FHIR_ALLOWLIST": (
        "",
        "Comma-separated patterns (`*` wildcards) of FHIR server base URLs the service may read from when prefetch "
        "lacks data, e.g. `https://fhir.example.org/r4,https://*.sandbox.example.org/fhir`. Empty: never read.",
    ),
    "CDS_FHIR_ALLOW_HTTP": ("false", "Allow plain-http FHIR servers (development only)."),
    "CDS_FHIR_TIME_BUDGET_MS": ("800", "Time allowed per hook call for reading the FHIR server, all queries together."),
    "CDS_FHIR_MAX_PAGES": ("20", "Most searchset pages followed per query."),
    "CDS_FHIR_MAX_RESOURCES": ("20000", "Most resources read per query."),
    "CDS_FHIR_MAX_RESPONSE_BYTES": ("20000000", "Largest FHIR server response read."),
    "CDS_FHIR_CONCURRENCY": ("8", "Concurrent FHIR queries per worker process."),
    "CDS_VALIDATE_RESOURCES": (
        "off",
        "`read`: also validate every resource the rules read against the FHIR R4 models and note each defect "
        "(slower; for diagnosing a client). `off`: the readers type-check each element they read.",
    ),
    "CDS_PATIENT_CACHE_RESOURCES": (
        "50000",
        "Resources of recent patients each worker keeps, so repeated hook calls with the same prefetch "
        "(order-select on every order picked) reuse the record, the assessment and the rendered cards. 0 turns it off.",
    ),
    "CDS_SMART_CLIENT_ID": ("dupilumab-cds", "Client id of the SMART app (/smart/launch) at the EHR's authorization server."),
    "CDS_SECRET_KEY": (
        "", "Signs the SMART app's launch and view cookies. Empty: random at start, shared by the workers of one `cds-service serve` "
        "(set one shared value for several replicas, or for a WSGI server that loads the app per worker)."
    ),
    "CDS_BENCH_ECHO": (
        "false", "Serve POST /bench/echo (parse and return the body): the benchmark's baseline. Off in production."
    ),
    "CDS_DEV_NOW": (
        "",
        "Development only: answer as of this ISO date or date-time (e.g. `2025-09-01T12:00:00Z`) instead of the clock. "
        "Refused with `CDS_AUTH=required`. Empty: the clock.",
    ),
    "CDS_LOG_LEVEL": ("INFO", "Python log level."),
    "CDS_LOG_FORMAT": ("json", "`json`: one JSON object per line (request id, hookInstance); `text` for reading by eye."),
    "CDS_MAX_REQUESTS": ("2000", "A gunicorn worker is replaced after this many requests (with jitter), bounding any slow leak."),
    "CDS_METRICS_DIR": ("", "Folder where gunicorn workers write their metrics for /metrics. Empty: a new temporary folder."),
    "CDS_HOST": ("127.0.0.1", "Address `cds-service serve` binds to."),
    "CDS_FRONT_PROXY": (
        "off",
        "`nginx`: `serve` runs nginx in front of gunicorn (same container), reading each request whole before a worker "
        "sees it, so slow clients cannot tie up worker threads; the image sets it. `off`: gunicorn answers directly "
        "(development, or behind your own buffering proxy such as `deploy/nginx`).",
    ),
    "CDS_PORT": ("8080", "Port `cds-service serve` binds to."),
    "CDS_WORKERS": ("2", "gunicorn worker processes for `cds-service serve`."),
    "CDS_THREADS": ("4", "Threads per gunicorn worker (FHIR reads wait on the network)."),
    "CDS_TIMEOUT_SECONDS": ("30", "gunicorn worker timeout."),
}


class SettingsError(ValueError):
    """A setting has a value the service cannot use; raised at start-up."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    redis_prefix: str
    auth_required: bool
    trusted_issuers: str
    public_base_url: str  # the first of public_base_urls, or empty
    public_base_urls: tuple[str, ...]
    jwt_algorithms: tuple[str, ...]
    jwt_leeway_seconds: int
    jwt_max_lifetime_seconds: int
    max_body_bytes: int
    cors_origins: tuple[str, ...]
    region: str
    card_topic_system: str
    override_reason_system: str
    source_label: str
    score_codes: Mapping[str, tuple[tuple[str, str], ...]]
    knowledge_dir: str
    fhir_allowlist: tuple[str, ...]
    fhir_allow_http: bool
    fhir_time_budget_ms: int
    fhir_max_pages: int
    fhir_max_resources: int
    fhir_max_response_bytes: int
    fhir_concurrency: int
    validate_resources: bool
    patient_cache_resources: int
    smart_client_id: str
    secret_key: str
    bench_echo: bool
    dev_now: datetime | None
    log_level: str
    log_format: str
    front_proxy: str
    max_requests: int
    metrics_dir: str
    host: str
    port: int
    workers: int
    threads: int
    timeout_seconds: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ

        def raw(name: str) -> str:
            return env.get(name, SETTINGS_DOC[name][0]).strip()

        public_base_urls = _base_urls(raw("CDS_PUBLIC_BASE_URL"))
        values: dict[str, object] = {
            "database_url": _database_url(raw("CDS_DATABASE_URL")),
            "redis_url": raw("CDS_REDIS_URL"),
            "redis_prefix": raw("CDS_REDIS_PREFIX"),
            "auth_required": _auth(raw("CDS_AUTH")),
            "trusted_issuers": raw("CDS_TRUSTED_ISSUERS"),
            "public_base_url": public_base_urls[0] if public_base_urls else "",
            "public_base_urls": public_base_urls,
            "jwt_algorithms": _jwt_algorithms(raw("CDS_JWT_ALGORITHMS")),
            "jwt_leeway_seconds": _positive_int(raw("CDS_JWT_LEEWAY_SECONDS"), "CDS_JWT_LEEWAY_SECONDS"),
            "jwt_max_lifetime_seconds": _positive_int(raw("CDS_JWT_MAX_LIFETIME_SECONDS"), "CDS_JWT_MAX_LIFETIME_SECONDS"),
            "max_body_bytes": _positive_int(raw("CDS_MAX_BODY_BYTES"), "CDS_MAX_BODY_BYTES"),
            "cors_origins": tuple(o.strip() for o in raw("CDS_CORS_ORIGINS").split(",") if o.strip()),
            "region": _region(raw("CDS_REGION")),
            "card_topic_system": raw("CDS_CARD_TOPIC_SYSTEM"),
            "override_reason_system": raw("CDS_OVERRIDE_REASON_SYSTEM"),
            "source_label": raw("CDS_SOURCE_LABEL"),
            "score_codes": parse_score_codes(raw("CDS_SCORE_CODES")),
            "knowledge_dir": _folder(raw("CDS_KNOWLEDGE_DIR"), "CDS_KNOWLEDGE_DIR"),
            "fhir_allowlist": tuple(p.strip() for p in raw("CDS_FHIR_ALLOWLIST").split(",") if p.strip()),
            "fhir_allow_http": _flag(raw("CDS_FHIR_ALLOW_HTTP"), "CDS_FHIR_ALLOW_HTTP"),
            "fhir_time_budget_ms": _positive_int(raw("CDS_FHIR_TIME_BUDGET_MS"), "CDS_FHIR_TIME_BUDGET_MS"),
            "fhir_max_pages": _positive_int(raw("CDS_FHIR_MAX_PAGES"), "CDS_FHIR_MAX_PAGES"),
            "fhir_max_resources": _positive_int(raw("CDS_FHIR_MAX_RESOURCES"), "CDS_FHIR_MAX_RESOURCES"),
            "fhir_max_response_bytes": _positive_int(raw("CDS_FHIR_MAX_RESPONSE_BYTES"), "CDS_FHIR_MAX_RESPONSE_BYTES"),
            "fhir_concurrency": _positive_int(raw("CDS_FHIR_CONCURRENCY"), "CDS_FHIR_CONCURRENCY"),
            "validate_resources": _choice(raw("CDS_VALIDATE_RESOURCES"), "CDS_VALIDATE_RESOURCES", {"off": False, "read": True}),
            "smart_client_id": raw("CDS_SMART_CLIENT_ID"),
            "secret_key": raw("CDS_SECRET_KEY"),
            "patient_cache_resources": _count(raw("CDS_PATIENT_CACHE_RESOURCES"), "CDS_PATIENT_CACHE_RESOURCES"),
            "bench_echo": _flag(raw("CDS_BENCH_ECHO"), "CDS_BENCH_ECHO"),
            "dev_now": _dev_now(raw("CDS_DEV_NOW"), _auth(raw("CDS_AUTH"))),
            "log_level": str(_choice(raw("CDS_LOG_LEVEL"), "CDS_LOG_LEVEL", {n.lower(): n for n in LOG_LEVELS})),
            "log_format": _choice(raw("CDS_LOG_FORMAT"), "CDS_LOG_FORMAT", {"json": "json", "text": "text"}),
            "front_proxy": str(_choice(raw("CDS_FRONT_PROXY"), "CDS_FRONT_PROXY", {"nginx": "nginx", "off": "off"})),
            "max_requests": _count(raw("CDS_MAX_REQUESTS"), "CDS_MAX_REQUESTS"),
            "metrics_dir": raw("CDS_METRICS_DIR"),
            "host": raw("CDS_HOST"),
            "port": _positive_int(raw("CDS_PORT"), "CDS_PORT"),
            "workers": _positive_int(raw("CDS_WORKERS"), "CDS_WORKERS"),
            "threads": _positive_int(raw("CDS_THREADS"), "CDS_THREADS"),
            "timeout_seconds": _positive_int(raw("CDS_TIMEOUT_SECONDS"), "CDS_TIMEOUT_SECONDS"),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _dev_now(value: str, auth_required: bool) -> datetime | None:
    if not value:
        return None
    if auth_required:
        raise SettingsError("CDS_DEV_NOW pins the clock for development only and is refused with CDS_AUTH=required; unset it")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(f"CDS_DEV_NOW must be an ISO date or date-time such as 2025-09-01T12:00:00Z, got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _folder(value: str, name: str) -> str:
    if value and not os.path.isdir(value):
        raise SettingsError(f"{name} {value!r} is not a folder; name a folder of knowledge files, or leave it empty")
    return os.path.abspath(value) if value else ""


def _base_urls(value: str) -> tuple[str, ...]:
    """CDS_PUBLIC_BASE_URL: one base URL or several, comma-separated (the first is canonical)."""
    urls = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        try:
            parts = urlsplit(item)
            usable = parts.scheme in {"http", "https"} and bool(parts.hostname) and (parts.port is None or parts.port > 0)
        except ValueError:  # a port that is not a number, a malformed IPv6 address
            usable = False
        if not usable or parts.username or parts.query or parts.fragment:
            raise SettingsError(
                f"CDS_PUBLIC_BASE_URL {item!r} is not a base URL such as https://cds.example.org (several: separate them with commas)"
            )
        urls.append(item.rstrip("/"))
    return tuple(dict.fromkeys(urls))


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Signatures with a public key only: a shared-secret (HMAC) or `none` token could be forged by anyone who can
# read a configuration that holds the secret, so neither can be switched on.
ASYMMETRIC_JWT_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA")


def _database_url(value: str) -> str:
    if value.startswith(("sqlite:///", "postgresql://", "postgres://")):
        return value
    scheme = value.split("://")[0] + "://" if "://" in value else value[:20]  # never the rest: it may hold a password
    raise SettingsError(
        f"CDS_DATABASE_URL must start with sqlite:/// (a file) or postgresql:// (a server), got one starting {scheme!r}"
    )


def _jwt_algorithms(value: str) -> tuple[str, ...]:
    algorithms = tuple(a.strip() for a in value.split(",") if a.strip())
    unknown = [a for a in algorithms if a not in ASYMMETRIC_JWT_ALGORITHMS]
    if unknown or not algorithms:
        raise SettingsError(
            f"CDS_JWT_ALGORITHMS may list only asymmetric algorithms ({', '.join(ASYMMETRIC_JWT_ALGORITHMS)}); "
            f"{'got ' + ', '.join(unknown) if unknown else 'it is empty'}"
        )
    return algorithms


def _positive_int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {value!r}") from None
    if number <= 0:
        raise SettingsError(f"{name} must be positive, got {number}")
    return number


def _choice(value: str, name: str, choices: Mapping[str, object]) -> object:
    if value.lower() not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return choices[value.lower()]


def _auth(value: str) -> bool:
    if value.lower() not in {"required", "off"}:
        raise SettingsError(f"CDS_AUTH must be required or off, got {value!r}")
    return value.lower() == "required"


def _flag(value: str, name: str) -> bool:
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}")


def _count(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {value!r}") from None
    if number < 0:
        raise SettingsError(f"{name} must not be negative, got {number}")
    return number


def _region(value: str) -> str:
    """A region code; whether the knowledge base holds it is checked when the knowledge loads (check_region)."""
    region = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{2,3}", region):
        raise SettingsError(f"CDS_REGION must be a region code of the knowledge base, such as US or EU; got {value!r}")
    return region


def check_region(region: str, known: Iterable[str]) -> None:
    """CDS_REGION must name a region of the knowledge base (therapies.toml [region])."""
    known = sorted(known)
    if region not in known:
        raise SettingsError(f"CDS_REGION={region} is not a region of the knowledge base; set it to one of {', '.join(known)}")


def parse_score_codes(value: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """Parse ``INSTRUMENT=system|code,system|code;INSTRUMENT=...``.

    An empty system (``|code``) matches the code in any system, for EHRs that
    send local codes without one.
    """
    result: dict[str, list[tuple[str, str]]] = {}
    for part in filter(None, (p.strip() for p in value.split(";"))):
        instrument, sep, codes = part.partition("=")
        if not sep or not instrument.strip():
            raise SettingsError(f"CDS_SCORE_CODES entry {part!r} is not INSTRUMENT=system|code")
        for token in filter(None, (c.strip() for c in codes.split(","))):
            system, bar, code = token.rpartition("|")
            if not bar or not code:
                raise SettingsError(f"CDS_SCORE_CODES code {token!r} is not system|code")
            result.setdefault(instrument.strip().upper(), []).append((system, code))
    return {k: tuple(v) for k, v in result.items()}
