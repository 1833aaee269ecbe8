"""A real PostgreSQL server on loopback for the store's tests (initdb + pg_ctl as `postgres`)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN_CANDIDATES = [
    Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
]


def _pg_bin() -> Path | None:
    return next((p for p in PG_BIN_CANDIDATES if (p / "initdb").exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


class PostgresCluster:
    """A throw-away cluster that a test may also kill -9 and start again."""

    def __init__(self) -> None:
        binaries = _pg_bin()
        if binaries is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
        self.binaries = binaries
        self.folder = Path(tempfile.mkdtemp(prefix="riskiturva-pg-"))
        self.data = self.folder / "data"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self.port = _free_port()
        subprocess.run(
            _as_postgres(
                str(binaries / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "riskiturva"
            ),
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://riskiturva@127.0.0.1:{self.port}/riskiturva"

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.folder}"
        )
        subprocess.run(
            _as_postgres(
                str(self.binaries / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.folder / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
        )

    def create_database(self, name: str = "riskiturva") -> str:
        """Create a database; its SQLAlchemy URL."""
        subprocess.run(
            _as_postgres(
                str(self.binaries / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "riskiturva",
                name,
            ),
            check=True,
            capture_output=True,
        )
        return f"postgresql+psycopg://riskiturva@127.0.0.1:{self.port}/{name}"

    def new_database(self) -> str:
        return self.create_database(f"t_{uuid.uuid4().hex[:12]}")

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would, and wait until its backends are gone."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self._processes():
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL's backends outlived their killed postmaster")
            time.sleep(0.1)

    def _processes(self) -> list[int]:
        """The server's processes: every one works in the data directory."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "cwd") == str(self.data):
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def stop(self) -> None:
        subprocess.run(
            _as_postgres(
                str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"
            ),
            capture_output=True,
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A started cluster with the database `riskiturva`; stopped and removed afterwards."""
    cluster = PostgresCluster()
    try:
        cluster.start()
        cluster.create_database()
        yield cluster
    finally:
        cluster.remove()


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throw-away cluster; yield its SQLAlchemy URL; stop and remove it."""
    with postgres_cluster() as cluster:
        yield cluster.url
