from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cds_service.api import create_app
from cds_service.settings import Settings

DEFAULT_NOW = datetime(2025, 9, 1, 12, 0, tzinfo=timezone.utc)

# What a test needs beyond Python, as pytest markers (registered in pyproject.toml). A test using one of these
# fixtures, directly or through another fixture, is marked here; a test that starts such a process itself is
# marked where it is written. `pytest --fast` (the fast lane, `scripts/test --fast`) leaves out every test
# carrying one of SLOW_LANE_MARKERS.
MARKER_OF_FIXTURE = {
    "fhir_server": "node",
    "postgres_url": "postgres",
    "own_postgres_url": "postgres",
    "redis_prefix": "redis",
}
SLOW_LANE_MARKERS = ("server", "node", "postgres", "redis", "browser", "nginx", "compose", "container")


def pytest_addoption(parser):
    parser.addoption("--fast", action="store_true",
                     help="the fast lane: leave out tests marked " + ", ".join(SLOW_LANE_MARKERS) + " (no servers, databases, Node, browser or nginx)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture in sorted(MARKER_OF_FIXTURE.keys() & set(getattr(item, "fixturenames", ()))):
            item.add_marker(MARKER_OF_FIXTURE[fixture])
    if config.getoption("fast"):
        kept, left_out = [], []
        for item in items:
            (left_out if any(item.get_closest_marker(name) for name in SLOW_LANE_MARKERS) else kept).append(item)
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = kept


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env({"CDS_DATABASE_URL": f"sqlite:///{tmp_path}/feedback.sqlite3", "CDS_AUTH": "off"})


def app_builder(database_url: str):
    """Build an app on `database_url`; `now` fixes the clock the assessment uses (scenarios are dated)."""

    def build(now: datetime = DEFAULT_NOW, **overrides):
        """Authentication is off unless a test turns it on (tests/test_auth.py)."""
        app_settings = Settings.from_env(
            {"CDS_DATABASE_URL": database_url, "CDS_AUTH": "off", **{k: str(v) for k, v in overrides.items()}}
        )
        app = create_app(app_settings, clock=lambda: now)
        return app

    return build


@pytest.fixture
def make_app(settings):
    """Build an app on this test's database (app_builder)."""
    return app_builder(settings.database_url)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def scenario_clients(build):
    """scenario_client for apps made by `build` (make_app, fhir_app, app_builder(...))."""
    from support import load_scenario

    def open_scenario(name: str, **settings):
        scenario = load_scenario(name)
        if "region" in scenario.expected:  # a scenario for another region is answered by a service started in it
            settings.setdefault("CDS_REGION", scenario.expected["region"])
        return scenario, build(scenario.evaluate_at, **settings).test_client()

    return open_scenario


@pytest.fixture
def scenario_client(make_app):
    """`scenario, client = scenario_client(name, **settings)`: the fixture scenario `name` and a test client of an
    app whose clock is the scenario's evaluate_at and whose CDS_REGION is the scenario's `region` (default US), with
    `settings` as make_app takes them (the app: client.application)."""
    return scenario_clients(make_app)


FHIR_TOKEN = "test-fhir-token-0b7e"  # the test FHIR server refuses any other bearer token
# Tests that compare answers read from the test FHIR server get a generous time budget, so a slow machine
# cannot turn them into 412s (the budget itself is tested with the fault server, tests/test_fhir_faults.py).
ANSWER_TEST_FHIR_BUDGET_MS = "10000"


@pytest.fixture(scope="session")
def fhir_server():
    """A real FHIR server (Medplum's engine) holding every fixture scenario; its base URL."""
    from cds_service.fixtures import load_fixtures, start_fhir_server

    process, base = start_fhir_server(0, env={"REQUIRE_TOKEN": FHIR_TOKEN})
    try:
        load_fixtures(base, FHIR_TOKEN)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def fhir_app(make_app, fhir_server):
    """Build an app allowed to read the test FHIR server over plain http, with ANSWER_TEST_FHIR_BUDGET_MS."""

    def build(now: datetime = DEFAULT_NOW, **overrides):
        settings = {"CDS_FHIR_ALLOWLIST": "http://127.0.0.1:*/fhir", "CDS_FHIR_ALLOW_HTTP": "true",
                    "CDS_FHIR_TIME_BUDGET_MS": ANSWER_TEST_FHIR_BUDGET_MS}
        return make_app(now, **{**settings, **overrides})

    return build


@pytest.fixture
def fhir_scenario_client(fhir_app):
    """scenario_client with an app allowed to read the test FHIR server (fhir_app)."""
    return scenario_clients(fhir_app)


POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _postgres_database():
    """A new PostgreSQL database on the local server, dropped afterwards."""
    import uuid

    import psycopg

    name = f"cds_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh PostgreSQL database shared by the session's tests."""
    yield from _postgres_database()


@pytest.fixture
def own_postgres_url():
    """A PostgreSQL database of this test alone (it may drop it, or fill it)."""
    yield from _postgres_database()


@pytest.fixture
def redis_prefix():
    """A Redis key prefix of this test alone, removed afterwards."""
    import uuid

    import redis

    prefix = f"cds-test-{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
