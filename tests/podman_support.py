"""Podman, as root on the test machine: the service's image and stand-ins for the images it runs beside.

Releases build on the real base (python:3.11.13-slim-bookworm) and compose names the official nginx, postgres and
redis images; the registry is out of reach here, so the tests build a stand-in base from Debian's packages with
mmdebstrap (Debian bookworm's Python 3.11, `python` included), pass it as the Dockerfile's PYTHON_IMAGE, and build
stand-ins for the others on it (tests/stand_ins/Containerfile). As root, Podman needs the ulimits below; builds
reach the package indexes through the host's network (and pip through its CA certificates)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from support import ROOT, child_env

STAND_IN_BASE = "localhost/cds-service-stand-in-base:bookworm"
SERVICE_IMAGE = "localhost/cds-service:test"
STAND_INS = {name: f"localhost/cds-stand-in-{name}:bookworm" for name in ("nginx", "postgres", "redis")}
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
BUILD = [*LIMITS, "--network", "host", "--format", "docker"]
HOST_CA = ["--volume", "/etc/ssl/certs:/etc/ssl/certs:ro"]  # pip reaches the package index through the host's CAs
DEBIAN = ["deb http://deb.debian.org/debian bookworm main", "deb http://deb.debian.org/debian bookworm-updates main",
          "deb http://deb.debian.org/debian-security bookworm-security main"]


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=child_env(ROOT))
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])}: {result.stderr[-2000:]}")
    return result


def require_podman() -> None:
    assert shutil.which("podman") and shutil.which("mmdebstrap"), "podman and mmdebstrap are needed (scripts/setup --node)"


def stand_in_base() -> str:
    """Debian bookworm with Python 3.11, built once per machine (the layers on top are rebuilt)."""
    if podman("image", "exists", STAND_IN_BASE, check=False).returncode != 0:
        with tempfile.TemporaryDirectory() as folder:
            tarball = Path(folder) / "base.tar"
            built = subprocess.run(["mmdebstrap", "--quiet", "--mode=root", "--variant=minbase",
                                    "--include=python3,python3-venv,python-is-python3,ca-certificates", "bookworm", str(tarball), *DEBIAN],
                                   capture_output=True, text=True, timeout=600, env=child_env(ROOT))
            assert built.returncode == 0, built.stderr[-2000:]
            podman("import", str(tarball), STAND_IN_BASE, timeout=300)
    return STAND_IN_BASE


def service_image() -> str:
    """deploy/Dockerfile built on the stand-in base (Docker format, which keeps the HEALTHCHECK)."""
    require_podman()
    podman("build", *BUILD, *HOST_CA, "--build-arg", f"PYTHON_IMAGE={stand_in_base()}", "--file", str(ROOT / "deploy" / "Dockerfile"),
           "--tag", SERVICE_IMAGE, str(ROOT), timeout=900)
    return SERVICE_IMAGE


def stand_in_images() -> dict[str, str]:
    """nginx, postgres and redis stand-ins: name -> image."""
    require_podman()
    folder = ROOT / "tests" / "stand_ins"
    for name, image in STAND_INS.items():
        podman("build", *BUILD, "--build-arg", f"BASE={stand_in_base()}", "--target", name, "--file", str(folder / "Containerfile"),
               "--tag", image, str(folder), timeout=900)
    return dict(STAND_INS)
