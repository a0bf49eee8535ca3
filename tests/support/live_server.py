"""The real app under gunicorn, in a subprocess, against its own fresh PostgreSQL database.

For fault tests that the in-process test client cannot express: killed
workers, several worker processes syncing at once, readers racing a sync.
Each LiveServer creates and migrates a database named
``pp_test_<pid>_live<letters>`` (so ``databases.drop_abandoned_databases``
removes it after a killed run), serves it on a free port, and drops it WITH
(FORCE) when closed. Only the standard library, SQLAlchemy and psycopg2.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import signal
import socket
import string
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.databases import drop_abandoned_databases

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("TEST_REQUIRE_POSTGRES", "") not in ("", "0")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
_LOG_TAIL = 6000
_instances = count()
_PR_SET_PDEATHSIG = 1
# Loaded here, not in the forked child, where loading a library is unsafe.
_LIBC = ctypes.CDLL(None, use_errno=True)


# A gthread worker accepts connections while its threads are busy and queues
# them, so concurrent requests can all end up in one worker (two syncs would
# then serialize before they ever contend for the lock). One thread, one
# connection, no keep-alive: a busy worker stops accepting, and the next
# request goes to another process.
ONE_REQUEST_PER_WORKER = {
    "GUNICORN_THREADS": "1",
    "GUNICORN_KEEPALIVE": "0",
    "GUNICORN_CMD_ARGS": "--worker-connections 1",
}


class LiveServerError(RuntimeError):
    """gunicorn did not start, or did not become ready in time; the message holds its log."""


@dataclass(frozen=True)
class HTTPResult:
    """A complete HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _letters(number: int) -> str:
    """0 -> "a", 25 -> "z", 26 -> "ba": database names allow only lowercase suffixes."""
    digits = ""
    while True:
        number, digit = divmod(number, 26)
        digits = string.ascii_lowercase[digit] + digits
        if number == 0:
            return digits


@dataclass
class LiveServer:
    """gunicorn serving wsgi:app against a fresh, migrated PostgreSQL database.

    ``env`` is merged over os.environ for both the migration and gunicorn, so
    a caller sets GUNICORN_WORKERS, SYNC_LOCK_TIMEOUT, tokens and the like.
    ``headers`` are sent with every request made through :meth:`request`
    (an Authorization header, typically). Use :meth:`start`, then
    :meth:`close` (or the ``live_server_factory`` fixture, which does both).
    """

    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    admin_url: str = ADMIN_URL
    database_name: str = field(init=False)
    database_url: str = field(init=False)
    port: int = field(init=False, default=0)
    process: subprocess.Popen[bytes] | None = field(init=False, default=None)
    _engine: sa.Engine | None = field(init=False, default=None)
    _database_created: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.database_name = f"pp_test_{os.getpid()}_live{_letters(next(_instances))}"
        self.database_url = (
            sa.make_url(self.admin_url)
            .set(database=self.database_name)
            .render_as_string(hide_password=False)
        )

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    @property
    def master_pid(self) -> int:
        """The gunicorn master's pid."""
        assert self.process is not None, "the server was not started"
        return self.process.pid

    @property
    def engine(self) -> sa.Engine:
        """An engine on the server's database, for checking its content directly.

        AUTOCOMMIT: every statement sees the latest committed state (and
        pg_stat_activity is not frozen in a transaction's stats snapshot).
        """
        if self._engine is None:
            self._engine = sa.create_engine(
                self.database_url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT"
            )
        return self._engine

    def start(self, ready_timeout: float = READY_TIMEOUT) -> LiveServer:
        """Create and migrate the database, start gunicorn, and wait until /readyz is 200."""
        self._create_database()
        environment = self._environment()
        migration = subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if migration.returncode != 0:
            raise LiveServerError(
                f"flask db upgrade failed ({migration.returncode}):\n"
                f"{migration.stdout}{migration.stderr}"
            )
        self.port = free_port()
        with self.log_path.open("ab") as log:
            # gunicorn inherits its own copy of the descriptor; ours can close now.
            self.process = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "--config",
                    "gunicorn.conf.py",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "wsgi:app",
                ],
                cwd=ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_terminate_with_parent,
            )
        self._wait_until_ready(ready_timeout)
        return self

    def _environment(self) -> dict[str, str]:
        # The caller's settings win, except the database, which is this server's own.
        return {**os.environ, **self.env, "DATABASE_URL": self.database_url}

    def _admin(self) -> sa.Engine:
        return sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)

    def _create_database(self) -> None:
        admin = self._admin()
        try:
            with admin.connect() as connection:
                connection.execute(
                    sa.text(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
                )
                connection.execute(sa.text(f'CREATE DATABASE "{self.database_name}"'))
        finally:
            admin.dispose()
        self._database_created = True

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise LiveServerError(
                    f"gunicorn exited with {self.process.returncode} before "
                    f"it was ready; its log:\n{self.log_tail()}"
                )
            try:
                result = self.request("GET", "/readyz", timeout=2)
            except OSError as error:
                last = repr(error)
            else:
                if result.status == 200:
                    return
                last = f"{result.status} {result.body[:300]!r}"
            time.sleep(0.1)
        raise LiveServerError(
            f"GET /readyz was not 200 within {timeout:g} s (last: {last}); "
            f"gunicorn's log:\n{self.log_tail()}"
        )

    def log_text(self) -> str:
        """Everything gunicorn (master, workers, app) wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = _LOG_TAIL) -> str:
        """The end of :meth:`log_text`, for failure messages."""
        return self.log_text()[-chars:]

    def worker_pids(self) -> list[int]:
        """The pids of the master's children, i.e. its workers, right now."""
        try:
            children = Path(f"/proc/{self.master_pid}/task/{self.master_pid}/children")
            return sorted(int(pid) for pid in children.read_text().split())
        except FileNotFoundError:
            return []

    def wait_for_workers(
        self, number: int, timeout: float, exclude: Iterable[int] = ()
    ) -> list[int]:
        """Poll until ``number`` workers run, none of them in ``exclude``; return their pids."""
        excluded = set(exclude)
        deadline = time.monotonic() + timeout
        while True:
            pids = self.worker_pids()
            if len(pids) == number and not excluded.intersection(pids):
                return pids
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"expected {number} workers other than {sorted(excluded)} within "
                    f"{timeout:g} s, have {pids}; gunicorn's log:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60,
    ) -> HTTPResult:
        """One HTTP request on a fresh connection; raises OSError (and http.client errors)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers={**self.headers, **(headers or {})})
            response = connection.getresponse()
            return HTTPResult(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def get_json(self, path: str, timeout: float = 60) -> Any:
        """GET ``path``, require 200, and return the parsed body."""
        result = self.request("GET", path, timeout=timeout)
        assert result.status == 200, f"GET {path}: {result.status} {result.body[:500]!r}"
        return result.json()

    def post_snapshot(
        self,
        entity: str,
        body: bytes,
        *,
        gzipped: bool = False,
        query: str = "",
        timeout: float = 120,
    ) -> HTTPResult:
        """POST a snapshot body (already JSON; gzip-compressed when ``gzipped``)."""
        headers = {"Content-Type": "application/json"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        return self.request(
            "POST", f"/{entity}{query}", body=body, headers=headers, timeout=timeout
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM gunicorn and wait for it; SIGKILL it (and its workers) if it lingers."""
        process = self.process
        if process is None or process.poll() is not None:
            if process is not None:
                process.wait()
            return
        workers = self.worker_pids()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for pid in [*workers, *self.worker_pids()]:
                _kill_quietly(pid)
            process.kill()
            process.wait(timeout=timeout)

    def close(self) -> None:
        """Stop gunicorn, then drop the database WITH (FORCE). Safe to call twice."""
        try:
            self.stop()
        finally:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
            if self._database_created:
                admin = self._admin()
                try:
                    with admin.connect() as connection:
                        connection.execute(
                            sa.text(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
                        )
                finally:
                    admin.dispose()
                self._database_created = False


def _terminate_with_parent() -> None:
    """In gunicorn's process before exec: SIGTERM it if the test process dies first.

    Otherwise a killed test run would leave its gunicorn masters running; the
    databases they served are dropped by the next run (conftest), not the processes.
    """
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def require_postgres(admin_url: str = ADMIN_URL) -> None:
    """Skip (or, with TEST_REQUIRE_POSTGRES, fail) the test when PostgreSQL is unreachable.

    Also drops the databases of killed test runs, as the postgres_url fixture
    does: a run of this file alone does not use that fixture.
    """

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as connection:
            drop_abandoned_databases(connection)
    except sa.exc.OperationalError as error:
        message = f"PostgreSQL is not reachable at {admin_url}: {error.orig}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    finally:
        admin.dispose()


LiveServerFactory = Callable[..., LiveServer]


@pytest.fixture
def live_server_factory(tmp_path: Path) -> Iterator[LiveServerFactory]:
    """Start LiveServers: ``factory(env={...}, headers={...})``; all are closed at teardown.

    Skips (fails with TEST_REQUIRE_POSTGRES) when PostgreSQL is unreachable.
    Each server's log is ``tmp_path/gunicorn-<n>.log``.
    """
    require_postgres()
    servers: list[LiveServer] = []

    def start(
        env: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> LiveServer:
        server = LiveServer(
            tmp_path / f"gunicorn-{len(servers)}.log", dict(env or {}), dict(headers or {})
        )
        servers.append(server)
        return server.start(ready_timeout)

    yield start
    errors: list[BaseException] = []
    for server in reversed(servers):
        try:
            server.close()
        except Exception as error:  # one server failing to close must not leak the others
            errors.append(error)
    if errors:
        raise errors[0]
