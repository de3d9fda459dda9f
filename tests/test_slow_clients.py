"""Slow clients cannot deny service to a replica exposed directly: with CDS_FRONT_PROXY=nginx (as the image runs)
a request reaches a gunicorn thread only once it has arrived whole, so 100 connections sending a byte a second
(in their headers, or in their bodies) hold nothing but nginx connections while normal calls are answered."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from support import ROOT, child_env, free_port, hook_request, load_scenario, service_url, wait_until_up

pytestmark = [pytest.mark.server, pytest.mark.nginx]

SLOW_CLIENTS = 100
PATIENT_VIEW = service_url("patient-view")


def slow_client(port: int, mode: str, stop: threading.Event, connected: list) -> None:
    """A client that sends one byte a second: of its headers ("header") or of a 100 kB body ("body")."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return
    connected.append(sock)
    head = f"POST {PATIENT_VIEW} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    sock.sendall(head.encode() if mode == "header" else (head + "Content-Length: 100000\r\n\r\n{").encode())
    while not stop.wait(1.0):
        try:
            sock.sendall(b"X-Slow: 1\r\n" if mode == "header" else b" ")
        except OSError:
            return  # the server gave up on it (its timeouts): that is allowed


@pytest.fixture(scope="module")
def served_behind_its_front_proxy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slow")
    port = free_port()
    env = child_env(folder, CDS_AUTH="off", CDS_FRONT_PROXY="nginx", CDS_LOG_LEVEL="WARNING", CDS_LOG_FORMAT="text")
    log = folder / "service.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", "2"],
                                   cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz/live", process, require_ok=True)
        yield port, process, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


@pytest.mark.parametrize("mode", ["header", "body"])
def test_normal_calls_are_answered_within_a_second_while_100_slow_clients_are_connected(served_behind_its_front_proxy, mode):
    port, process, _ = served_behind_its_front_proxy
    stop, connected = threading.Event(), []
    clients = [threading.Thread(target=slow_client, args=(port, mode, stop, connected), daemon=True) for _ in range(SLOW_CLIENTS)]
    for client in clients:
        client.start()
    body = hook_request(load_scenario("ad-primary-nonresponse-adult"))
    try:
        time.sleep(3)  # every slow client connected and trickling
        assert len(connected) == SLOW_CLIENTS
        answered = []
        for _ in range(12):
            started = time.monotonic()
            response = requests.post(f"http://127.0.0.1:{port}{PATIENT_VIEW}", json=body, timeout=10)
            answered.append((response.status_code, len(response.json()["cards"]), round(time.monotonic() - started, 3)))
        assert all(status == 200 and cards == 1 and seconds < 1.0 for status, cards, seconds in answered), answered
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=5)
        for sock in connected:
            sock.close()
    assert process.poll() is None


def test_the_front_proxy_stops_with_the_service_and_a_missing_nginx_is_one_line(served_behind_its_front_proxy, tmp_path):
    port, process, log = served_behind_its_front_proxy
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "nginx still listens after the service stopped"
    assert "Traceback" not in log.read_text()
    env = child_env(tmp_path, CDS_AUTH="off", CDS_FRONT_PROXY="nginx", PATH="/nonexistent")
    result = subprocess.run([sys.executable, "-m", "cds_service", "serve", "--port", str(free_port())], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 78
    assert result.stderr.strip().splitlines() == [
        "cds-service: CDS_FRONT_PROXY=nginx but nginx is not on PATH; install it (Debian: nginx-light) or set "
        "CDS_FRONT_PROXY=off behind a proxy that buffers requests"]


def test_when_nginx_cannot_listen_the_service_stops_and_says_why(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = child_env(tmp_path, CDS_AUTH="off", CDS_FRONT_PROXY="nginx", CDS_LOG_FORMAT="text")
        result = subprocess.run([sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", "1"], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 3, lines
    assert "Address already in use" in result.stderr
    assert lines[-1].startswith("cds-service: nginx stopped (its reason is on the line above") and "Traceback" not in result.stderr
