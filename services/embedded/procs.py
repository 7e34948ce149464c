"""Small, typed helpers for owning child processes: free ports, readiness waits, clean stops,
and the file permissions a child run as an unprivileged user needs.

Everything here acts on processes this Python process started itself (a ``subprocess.Popen``)
or on a PID read from a file we own; nothing looks processes up by name.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = [
    "ProcessStartError",
    "free_port",
    "log_tail",
    "make_readable_tree",
    "make_traversable",
    "pid_is_alive",
    "pid_listens_on",
    "port_is_open",
    "process_cmdline",
    "run_as_kwargs",
    "shm_attach_count",
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


def pid_listens_on(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds a TCP socket listening on ``port`` (None: cannot tell).

    A plain connect can reach somebody else's server when a "free" port was taken in the
    meantime; this tells our child's listener from another one (Linux /proc only).
    """
    inodes: set[str] = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                # local_address is HEXIP:HEXPORT; state 0A is LISTEN.
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(fields[9])
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except (OSError, IndexError, ValueError):
        return None
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
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
    """Block until ``host:port`` accepts TCP connections, from ``proc`` itself if given.

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
        if port_is_open(host, port) and (
            proc is None or pid_listens_on(proc.pid, port) is not False
        ):
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


def process_cmdline(pid: int) -> list[str]:
    """The argv of a live process (from /proc), or an empty list if it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _open_up(path: Path, mode_bits: int) -> None:
    mode = path.stat().st_mode
    if mode & mode_bits != mode_bits:
        path.chmod(mode | mode_bits)


def make_traversable(path: Path) -> None:
    """Let other users pass through every ancestor of ``path`` (pytest tmp dirs are 0700)."""
    for ancestor in path.parents:
        _open_up(ancestor, stat.S_IXGRP | stat.S_IXOTH)


def make_readable_tree(root: Path) -> None:
    """Make a tree readable, and its executables runnable, by every user.

    A child run as an unprivileged user must be able to read files a root install created.
    """
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    make_traversable(root)
    for dirpath, _dirnames, filenames in os.walk(root):
        _open_up(Path(dirpath), read | execute)
        for name in filenames:
            file = Path(dirpath) / name
            if file.is_symlink():
                continue
            executable = file.stat().st_mode & stat.S_IXUSR
            _open_up(file, read | execute if executable else read)


def run_as_kwargs(user: pwd.struct_passwd | None) -> dict[str, Any]:
    """``subprocess`` keyword arguments that run a child as ``user`` (nothing for None)."""
    if user is None:
        return {}
    # extra_groups=[] drops root's supplementary groups as well.
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def shm_attach_count(shmid: int) -> int:
    """How many processes have SysV shared memory segment ``shmid`` attached (0 if gone)."""
    try:
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return 0
    for row in rows:
        fields = row.split()
        if len(fields) > 6 and fields[1] == str(shmid):
            return int(fields[6])
    return 0


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


def spawn_logged(cmd: list[str], log_path: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """Start a child we own, appending its stdout and stderr to ``log_path``.

    The child gets its own session: a terminal's Ctrl-C goes to the whole foreground process
    group, and the owner must stop its children itself, in order (the processor before the
    database it commits to).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        # The child keeps its own copy of the descriptor; ours closes with the block.
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **popen,
        )
