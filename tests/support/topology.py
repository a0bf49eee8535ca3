"""A PostgreSQL 15 primary and a hot standby streaming from it, built from the Debian binaries.

For the replica tests (tests/topology/): ``initdb`` a primary on a free port,
``pg_basebackup -R -X stream`` a standby from it, both run by ``pg_ctl`` as
the ``postgres`` OS user in a temporary directory it owns (the servers
refuse to run as root). ``Topology.close`` stops both (immediate) and
removes the directory; it is also registered with atexit, so a run that
dies in between leaves no server behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

PG_BIN = Path(os.environ.get("TOPOLOGY_PG_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"
DATABASE = "pp"
START_TIMEOUT = 60


def available() -> str | None:
    """Why a topology cannot be built here, or None if it can."""
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL binaries in {PG_BIN}"
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        return f"no {OS_USER} OS user"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != OS_USER:
        return "must run as root or as postgres"
    return None


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_postgres(*command: str | Path) -> list[str]:
    args = [str(part) for part in command]
    return args if os.geteuid() != 0 else ["runuser", "-u", OS_USER, "--", *args]


def _run(*command: str | Path) -> None:
    subprocess.run(_as_postgres(*command), check=True, capture_output=True, timeout=START_TIMEOUT)


@dataclass
class Server:
    """One PostgreSQL server of the topology: its data directory and port."""

    name: str
    data: Path
    port: int

    @property
    def url(self) -> str:
        """The app database on this server."""
        return f"postgresql://{OS_USER}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        _run(
            PG_BIN / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.data.parent / f"{self.name}.log",
            "-o",
            f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1",
            "-w",
            "-t",
            str(START_TIMEOUT),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (quietly, if it is not running)."""
        subprocess.run(
            _as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"),
            capture_output=True,
            timeout=START_TIMEOUT,
        )

    def running(self) -> bool:
        """Whether the server's postmaster runs."""
        status = subprocess.run(
            _as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "status"), capture_output=True
        )
        return status.returncode == 0

    def execute(self, statement: str) -> object:
        """Run one statement on this server's app database (autocommit); its first value."""
        engine = sa.create_engine(self.url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                result = connection.exec_driver_sql(statement)
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()


class Topology:
    """A primary and one hot standby streaming from it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pp_topology_"))
        if os.geteuid() == 0:
            shutil.chown(self.root, OS_USER, OS_USER)
        self.primary = Server("primary", self.root / "primary", free_port())
        self.standby = Server("standby", self.root / "standby", free_port())
        atexit.register(self.close)

    def build(self) -> Topology:
        """initdb the primary, create the app database, clone and start the standby."""
        _run(
            PG_BIN / "initdb", "-D", self.primary.data, "-U", OS_USER, "--auth=trust", "-E", "UTF8"
        )
        with open(self.primary.data / "postgresql.conf", "a") as conf:
            # Small and quick: a test cluster, not a tuned one.
            conf.write("shared_buffers = 32MB\nfsync = off\nwal_keep_size = 256MB\n")
        self.primary.start()
        _run(
            PG_BIN / "createdb",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary.port),
            "-U",
            OS_USER,
            DATABASE,
        )
        return self

    def clone_standby(self) -> None:
        """pg_basebackup -R -X stream the standby from the primary, and start it."""
        _run(
            PG_BIN / "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary.port),
            "-U",
            OS_USER,
            "-D",
            self.standby.data,
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",  # a spread checkpoint would take minutes
        )
        with open(self.standby.data / "postgresql.conf", "a") as conf:
            # Let a paused or slow replay never cancel the tests' reads.
            conf.write("max_standby_streaming_delay = -1\nhot_standby_feedback = on\n")
        self.standby.start()

    def wait_for_replay(self, timeout: float = 30) -> None:
        """Until the standby has replayed everything the primary has flushed."""
        target = self.primary.execute("SELECT pg_current_wal_flush_lsn()::text")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(sa.exc.OperationalError):
                behind = self.standby.execute(
                    f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn()) > 0"
                )
                if behind is False:
                    return
            time.sleep(0.05)
        raise TimeoutError("the standby did not catch up with the primary")

    def pause_replay(self) -> None:
        """Stop the standby replaying WAL (it keeps receiving it)."""
        self.standby.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        """Let the standby replay again."""
        self.standby.execute("SELECT pg_wal_replay_resume()")

    def heal(self) -> None:
        """Both servers running, replay resumed and caught up: the state each test starts in."""
        for server in (self.primary, self.standby):
            if not server.running():
                server.start()
        self.resume_replay()
        self.wait_for_replay()

    def close(self) -> None:
        """Stop both servers and remove everything (safe to call twice)."""
        for server in (self.standby, self.primary):
            if server.data.exists():
                server.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
