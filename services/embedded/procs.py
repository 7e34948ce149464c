"""Small, typed helpers for owning child processes: free ports, readiness waits, clean stops.

Everything here works on processes this Python process started itself (a ``subprocess.Popen``)
and never looks processes up by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = [
    "ProcessStartError",
    "free_port",
    "log_tail",
    "pid_is_alive",
    "port_is_open",
    "stop_process",
    "wait_for_port",
]


class ProcessStartError(RuntimeError):
    """A child process exited early or did not become ready in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free a moment ago.

    The OS picks it (bind to port 0); there is an unavoidable race until the child binds it,
    which is why readiness waits also check that the child is still alive.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Return True if a TCP connection to ``host:port`` succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path | None, max_lines: int = 40) -> str:
    """Return the last ``max_lines`` lines of a log file, or a note when there is none."""
    if path is None:
        return "(no log file)"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(log {path} unreadable: {exc})"
    lines = text.splitlines()[-max_lines:]
    return "\n".join(lines) if lines else f"(log {path} is empty)"


def _describe(proc: subprocess.Popen[bytes] | None, log_path: Path | None) -> str:
    what = f"pid {proc.pid}, " if proc is not None else ""
    return f"{what}log {log_path}:\n--- log tail ---\n{log_tail(log_path)}\n---"


def wait_for_port(
    host: str,
    port: int,
    *,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    what: str = "process",
) -> None:
    """Block until ``host:port`` accepts TCP connections.

    Raises ProcessStartError as soon as ``proc`` exits (so a crash is not reported as a timeout)
    or when ``timeout`` seconds pass; the message carries the tail of ``log_path``.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ProcessStartError(
                f"{what} exited with code {proc.returncode} before {host}:{port} opened "
                f"({_describe(proc, log_path)})"
            )
        if port_is_open(host, port):
            return
        if time.monotonic() >= deadline:
            raise ProcessStartError(
                f"{what} did not open {host}:{port} within {timeout:.1f}s "
                f"({_describe(proc, log_path)})"
            )
        time.sleep(0.02)


def pid_is_alive(pid: int) -> bool:
    """Return True if a process with this PID exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is dead for every purpose here.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        # The state follows the parenthesised command name, which may itself contain ')'.
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def stop_process(
    proc: subprocess.Popen[bytes],
    *,
    sig: signal.Signals = signal.SIGTERM,
    timeout: float = 10.0,
) -> int:
    """Stop a child we started: send ``sig`` to its PID, wait, then SIGKILL; return its exit code.

    Always reaps the child (``wait()``), so no zombie or ResourceWarning is left behind.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    return proc.wait()
