"""nginx in front of gunicorn in the same container (`CDS_FRONT_PROXY=nginx`): it reads each request whole,
headers and body, before passing it on, so a client that sends slowly holds a connection of nginx's (cheap)
and never one of gunicorn's few worker threads. Without it about 8 connections sending a byte a second nearly
stopped a replica and 100 stopped it (docs/security.md).

gunicorn listens on a unix socket in a folder of nginx's; nginx listens where gunicorn would have, with the
limits below, and runs as a child of the gunicorn master (which stops it when it stops).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("cds_service.server")

# A client must send its headers within 10 s and keep its body coming (10 s between reads); it gets 30 s to read
# the answer. EHRs send a hook call in milliseconds.
_CONFIG = """\
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}  # a container's usual open-file limit
http {{
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    access_log off;  # the service logs each call (identifiers only)
    server_tokens off;
    keepalive_timeout 65s;
    client_header_timeout 10s;
    client_body_timeout 10s;
    send_timeout 30s;
    client_max_body_size {max_body};  # one byte over the service's limit: the service answers 413 itself
    client_body_buffer_size 64k;  # larger bodies wait in a temporary file, still whole before they go on
    upstream gunicorn {{
        server unix:{socket};
        keepalive 16;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://gunicorn;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_request_buffering on;
            proxy_read_timeout {read_timeout}s;
        }}
    }}
}}
"""


def gunicorn_socket(folder: str) -> str:
    return os.path.join(folder, "gunicorn.sock")


class FrontProxyError(Exception):
    """nginx is wanted but missing or refuses its configuration; one line for the operator."""


def nginx_binary() -> str:
    found = shutil.which("nginx")
    if found is None:
        raise FrontProxyError("CDS_FRONT_PROXY=nginx but nginx is not on PATH; install it (Debian: nginx-light) "
                              "or set CDS_FRONT_PROXY=off behind a proxy that buffers requests")
    return found


def _listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def front_proxy_folder() -> str:
    """nginx's folder (configuration, temporary files, gunicorn's socket). Started as root, nginx's workers run as
    `nobody`: they may pass through the folder (mode 0711), not list it; the temporary folders nginx makes itself."""
    folder = tempfile.mkdtemp(prefix="cds-front-proxy-")
    if os.geteuid() == 0:
        os.chmod(folder, 0o711)
    return folder


def start_front_proxy(folder: str, *, host: str, port: int, max_body_bytes: int, read_timeout: int,
                      workers: int) -> subprocess.Popen:
    """nginx, started and checked: listening on host:port, passing whole requests to gunicorn's socket in `folder`."""
    nginx = nginx_binary()
    prefix = Path(folder)
    socket_path = gunicorn_socket(folder)
    config = prefix / "nginx.conf"
    config.write_text(_CONFIG.format(workers=workers, prefix=prefix, max_body=max_body_bytes + 1, socket=socket_path,
                                     listen=_listen(host, port), read_timeout=read_timeout + 5))
    command = [nginx, "-p", str(prefix), "-e", "stderr", "-c", str(config)]
    checked = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True)
    if checked.returncode != 0:
        raise FrontProxyError(f"nginx refuses the front proxy's configuration: {checked.stderr.strip().splitlines()[-1]}")
    return subprocess.Popen([*command, "-g", "daemon off;"])


def stop_when_it_exits(proxy: subprocess.Popen) -> None:
    """If nginx dies, nothing reaches the service: stop gunicorn too (SIGTERM to the master), so the orchestrator
    restarts the container rather than keep a replica that answers nothing; `check_front_proxy` then says so."""
    master = os.getpid()

    def watch() -> None:
        # No exit code: gunicorn's master reaps any child (waitpid(-1)) and may take nginx's status first, after
        # which wait() answers 0 whatever nginx exited with. nginx's own last line says why it stopped.
        proxy.wait()
        if os.getpid() == master and not stopping.is_set():
            died.set()
            log.error("the front proxy (nginx) stopped; stopping the service")
            os.kill(master, signal.SIGTERM)

    threading.Thread(target=watch, name="front-proxy-watch", daemon=True).start()


def drain_first_on_sigterm(arbiter: Any, proxy: subprocess.Popen, seconds: float) -> None:
    """On SIGTERM nginx stops first: it stops accepting (a load balancer's next connect is refused and goes to another
    replica) and finishes the calls it holds, which gunicorn still serves; then gunicorn stops as usual. The other
    way round, nginx answered 502 to calls it accepted after gunicorn had closed its socket (tests/test_compose.py).
    Replaces the gunicorn master's own SIGTERM handler, which it calls once nginx has exited."""

    def on_sigterm(signum: int, frame: Any) -> None:
        if stopping.is_set():
            return
        stopping.set()  # here, not in the thread: a second SIGTERM does nothing more

        def stop_nginx_then_gunicorn() -> None:
            stop_front_proxy(proxy, seconds)
            arbiter.signal(signal.SIGTERM, None)

        threading.Thread(target=stop_nginx_then_gunicorn, name="front-proxy-drain", daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)


stopping = threading.Event()
died = threading.Event()  # nginx stopped before the service did


def check_front_proxy() -> None:
    """After the service stopped: raise FrontProxyError if that was because nginx had stopped first."""
    if died.is_set():
        raise FrontProxyError("nginx stopped (its reason is on the line above: a port in use?); "
                              "the service stopped with it")


def stop_front_proxy(proxy: subprocess.Popen, seconds: float = 10) -> None:
    """Graceful (SIGQUIT): nginx closes its listening socket and finishes the requests in flight, then exits;
    killed after `seconds`."""
    stopping.set()
    if proxy.poll() is None:
        proxy.send_signal(signal.SIGQUIT)
        try:
            proxy.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proxy.kill()
