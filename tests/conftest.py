from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cds_service.api import create_app
from cds_service.settings import Settings

DEFAULT_NOW = datetime(2025, 9, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env({"CDS_DATABASE_URL": f"sqlite:///{tmp_path}/feedback.sqlite3"})


@pytest.fixture
def make_app(settings):
    """Build an app; `now` fixes the clock the assessment uses (scenarios are dated)."""

    def build(now: datetime = DEFAULT_NOW, **overrides):
        app_settings = Settings.from_env(
            {"CDS_DATABASE_URL": settings.database_url, **{k: str(v) for k, v in overrides.items()}}
        )
        app = create_app(app_settings, clock=lambda: now)
        return app

    return build


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()
