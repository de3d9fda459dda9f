"""`cds-service serve`: the Flask app under gunicorn, configured from Settings."""

from __future__ import annotations

import gc
from typing import Any

from gunicorn.app.base import BaseApplication

from .settings import Settings


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from .api import create_app

        app = create_app(self.settings)
        tune_gc()  # in the master before forking: the workers inherit it, and the frozen start-up objects
        return app


def tune_gc() -> None:
    """A large request makes hundreds of thousands of short-lived objects. With the default thresholds the
    cyclic collector runs thousands of times per request and its full collections scan everything alive,
    so cost grew faster than the record (1,000 -> 10,000 resources: x19). Start-up objects are frozen out of
    its scans, and young objects are collected less often; the benchmark checks memory stays flat."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def run_server(settings: Settings, *, host: str, port: int, workers: int) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": settings.threads,
        "worker_class": "gthread",
        "timeout": settings.timeout_seconds,
        "graceful_timeout": 20,
        "keepalive": 5,
        "accesslog": None,  # the app logs each request without identifiers beyond hookInstance
        "loglevel": settings.log_level.lower(),
        "preload_app": True,  # load knowledge once, fail before forking if it is broken
    }
    _Gunicorn(settings, options).run()
