"""`cds-service serve`: the Flask app under gunicorn, configured from Settings."""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication

from .front_proxy import (
    FrontProxyError,
    check_front_proxy,
    drain_first_on_sigterm,
    front_proxy_folder,
    gunicorn_socket,
    start_front_proxy,
    stop_front_proxy,
    stop_when_it_exits,
)
from .logs import gunicorn_logconfig
from .metrics import worker_exited
from .settings import Settings


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any], runtime_dir: str):
        self.settings = settings
        self.options = options
        self.runtime_dir = runtime_dir
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # control_socket_disable: gunicorn 25.1+
                self.cfg.set(key, value)

    def load(self):
        from .api import create_app

        app = create_app(self.settings, workers_state_file=os.path.join(self.runtime_dir, "workers-state.sqlite3"))
        tune_gc()  # in the master before forking: the workers inherit it, and the frozen start-up objects
        return app


def tune_gc() -> None:
    """A large request makes hundreds of thousands of short-lived objects. With the default thresholds the
    cyclic collector runs thousands of times per request and its full collections scan everything alive,
    so cost grew faster than the record (1,000 -> 10,000 resources: x19). Start-up objects are frozen out of
    its scans, and young objects are collected less often; the benchmark checks memory stays flat. (500,000
    was 8-13% faster in process but let a served worker grow ~5 MB per 6,500 calls; 50,000 stays flat.)"""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def gunicorn_options(settings: Settings, *, host: str, port: int, workers: int) -> dict[str, Any]:
    """gunicorn tuned for this service: CPU-bound requests of milliseconds, some waiting on an EHR's FHIR server."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,  # one per core: the work is CPU-bound (docs/operations.md)
        "threads": settings.threads,  # gthread: a worker waiting on a FHIR server still serves others
        "worker_class": "gthread",
        "timeout": settings.timeout_seconds,
        "graceful_timeout": 25,  # finish in-flight calls on SIGTERM (Kubernetes waits 30 s)
        "keepalive": 75,  # longer than load balancers' idle timeouts (nginx upstream keepalive, AWS ALB 60 s)
        # Heartbeat files in memory, not on a container's overlay disk (which can stall them and get
        # healthy workers killed); also works with a read-only root filesystem.
        "worker_tmp_dir": "/dev/shm" if os.access("/dev/shm", os.W_OK) else None,
        "max_requests": settings.max_requests,
        "max_requests_jitter": max(settings.max_requests // 10, 1) if settings.max_requests else 0,
        "accesslog": None,  # the app logs each request (identifiers only)
        "loglevel": settings.log_level.lower(),
        "logconfig_dict": gunicorn_logconfig(settings.log_level, settings.log_format),
        "logger_class": "cds_service.logs.GunicornLogger",
        "preload_app": True,  # load knowledge once, fail before forking if it is broken
        "child_exit": lambda server, worker: worker_exited(worker.pid),
        "when_ready": send_without_delay,
        # gunicornc's control socket goes under $HOME, which a read-only root filesystem refuses; nothing uses it.
        "control_socket_disable": True,
    }


def send_without_delay(server: Any) -> None:
    """TCP_NODELAY on the listening sockets, which the connections they accept inherit (Linux). gunicorn writes a
    response's headers and body separately; with Nagle's algorithm the body waits for the headers' ACK, which a
    proxy on a keep-alive connection delays by up to 40 ms (a 9 KB card through nginx took 44 ms, not 1)."""
    for listener in server.LISTENERS:
        if listener.sock.family in (socket.AF_INET, socket.AF_INET6):
            listener.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def run_server(settings: Settings, *, host: str, port: int, workers: int) -> None:
    # Files the workers share: their metrics (set before prometheus_client is first imported) and,
    # without Redis, the replay cache.
    runtime_dir = tempfile.mkdtemp(prefix="cds-service-")
    folder = settings.metrics_dir or os.path.join(runtime_dir, "metrics")
    os.makedirs(folder, exist_ok=True)
    for stale in os.listdir(folder):
        if stale.endswith(".db"):
            os.unlink(os.path.join(folder, stale))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    master = os.getpid()
    options = gunicorn_options(settings, host=host, port=port, workers=workers)
    proxy_folder = front_proxy_folder() if settings.front_proxy == "nginx" else None
    started: list[subprocess.Popen] = []
    if proxy_folder is not None:
        options["bind"] = f"unix:{gunicorn_socket(proxy_folder)}"

        def when_ready(server: Any) -> None:
            # Once gunicorn's socket exists: nginx never answers 502 for a socket that is not there yet.
            send_without_delay(server)
            try:
                started.append(start_front_proxy(proxy_folder, host=host, port=port, workers=workers,
                                                 max_body_bytes=settings.max_body_bytes, read_timeout=settings.timeout_seconds))
            except FrontProxyError as error:
                server.log.error("%s", error)
                server.halt(exit_status=78)  # EXIT_CONFIG, as the command line says before anything starts
            stop_when_it_exits(started[0])
            drain_first_on_sigterm(server, started[0], seconds=options["graceful_timeout"])

        options["when_ready"] = when_ready
    try:
        _Gunicorn(settings, options, runtime_dir).run()
    finally:
        # Workers are forked inside run() and unwind through here when they exit (e.g. recycled after
        # CDS_MAX_REQUESTS): only the master may remove what the other workers still use.
        if os.getpid() == master:
            for proxy in started:
                stop_front_proxy(proxy)
            shutil.rmtree(runtime_dir, ignore_errors=True)
            if proxy_folder is not None:
                shutil.rmtree(proxy_folder, ignore_errors=True)
            check_front_proxy()  # gunicorn ends with SystemExit(0) on the SIGTERM nginx's watcher sent: say why
