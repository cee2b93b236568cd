"""``python -m infra.local``: start the whole local cloud on 127.0.0.1 and supervise it until Ctrl-C or SIGTERM.

``python -m infra.local token USER`` prints a bearer token for USER.
``python -m infra.local redrive`` moves the orders' dead-lettered messages back to their queue.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .console import CONSOLE_FD, ConsoleRelay
from .event_source import INITIAL_CONCURRENCY, SCALE_UP_PER_S
from .lambda_runtime import PROJECT_DIR, chalice_config, function_timeout
from .processes import Child, PortTaken, Server, ensure_port_free, free_port, port_open, wait_until

STOP_DEADLINE_S = 4.5
CLOUD_FILE = "cloud.json"
EMULATORS = ("moto", "localstack")
GATEWAY_LAYOUTS = ("split", "shared")
FUNCTIONS = ("gateway", "worker")  # the processes that run the app's functions; the rest are servers
CLIENTS = ("market-activity",)  # processes that use the API as its clients do: stopped first


@dataclass(frozen=True)
class LocalSettings:
    http_port: int
    ws_port: int
    emulator_port: int
    pg_port: int
    redis_port: int
    data_dir: Path
    emulator: str
    external_emulator: str | None
    external_database: str | None
    external_redis: str | None
    gateway_processes: int
    gateway_layout: str  # split: each API its own processes; shared: every process serves both (gateway_envs)
    worker_processes: int
    quiet: bool
    market_activity_per_second: float = 0.0

    @classmethod
    def from_env(cls) -> LocalSettings:
        env = os.environ
        emulator = env.get("AWS_EMULATOR", "moto").lower()
        if emulator not in EMULATORS:
            raise ValueError(f"AWS_EMULATOR must be one of {', '.join(EMULATORS)}, not {emulator!r}")
        layout = env.get("GATEWAY_LAYOUT", "split").lower()
        if layout not in GATEWAY_LAYOUTS:
            raise ValueError(f"GATEWAY_LAYOUT must be one of {', '.join(GATEWAY_LAYOUTS)}, not {layout!r}")
        return cls(
            http_port=int(env.get("HTTP_PORT", "8000")),
            ws_port=int(env.get("WS_PORT", "8001")),
            emulator_port=int(env.get("AWS_EMULATOR_PORT", "4566")),
            pg_port=int(env.get("PG_PORT", "5432")),
            redis_port=int(env.get("REDIS_PORT", "6379")),
            data_dir=Path(env.get("LOCAL_DATA_DIR", PROJECT_DIR / ".local")).resolve(),
            emulator=emulator,
            external_emulator=env.get("AWS_ENDPOINT_URL") or None,
            external_database=env.get("DATABASE_URL") or None,
            external_redis=env.get("REDIS_URL") or None,
            gateway_processes=max(1, int(env.get("GATEWAY_PROCESSES") or os.cpu_count() or 1)),
            gateway_layout=layout,
            worker_processes=max(1, int(env.get("WORKER_PROCESSES") or os.cpu_count() or 1)),
            quiet=env.get("LOCAL_QUIET", "0") not in ("", "0"),
            market_activity_per_second=float(env.get("MARKET_ACTIVITY_PER_SECOND") or 0),
        )


def worker_envs(env: dict[str, str], processes: int) -> list[dict[str, str]]:
    """The environment of each worker process. Lambda runs each environment in a process of its own; here the
    worker's environments are threads, spread over ``processes`` processes so that they use every core, with the
    event source's concurrency (its start, its growth and its maximum) and the PostgreSQL pool shared out among
    them. Lambda gives each environment its own connections; here the environments of a process share its pool,
    so the pool is sized for all of them (a record waiting 10 s for a connection fails its delivery). Only the
    first process runs the schedules: EventBridge invokes a scheduled function once."""
    concurrency = int(env.get("WORKER_CONCURRENCY", "32"))
    processes = max(1, min(processes, concurrency))  # WORKER_CONCURRENCY=1 still means one invocation at a time
    shares = {
        "WORKER_CONCURRENCY": _split(concurrency, processes),
        "WORKER_INITIAL_CONCURRENCY": _split(INITIAL_CONCURRENCY, processes),
        "DB_POOL_SIZE": _split(int(env.get("WORKER_DB_POOL_SIZE", "60")), processes),
    }
    return [{**env, **{name: str(max(1, parts[n])) for name, parts in shares.items()},
             "WORKER_SCALE_UP_PER_S": str(SCALE_UP_PER_S / processes), "WORKER_SCHEDULES": "1" if n == 0 else "0"}
            for n in range(processes)]


def gateway_envs(env: dict[str, str], processes: int, management_ports: list[int],
                 layout: str = "split") -> list[dict[str, str]]:
    """The environment of each gateway process. On AWS the REST API and the WebSocket API are two services: a burst
    of REST requests never shares a machine with the WebSocket frames and ``@connections`` posts. In the ``split``
    layout one process serves both when there is one; with more, the first half (rounded down) serves the
    WebSocket API and ``@connections``, the rest the REST API. With two or three processes every connection is in
    one process, so no ``@connections`` request has to cross to another (each crossing cost the two processes about
    0.2 CPU-ms, and half the posts crossed when both of two processes held connections). In the ``shared`` layout
    every process serves both APIs and the connections spread over all of them. The WebSocket processes share the
    WebSocket port and each has a loopback port of its own (from ``management_ports``) where the others pass on
    requests for its connections; the REST processes share the REST port."""
    both = processes == 1 or layout == "shared"
    websocket = processes if both else processes // 2  # the processes holding connections
    ports = ",".join(str(port) for port in management_ports[:websocket]) if websocket > 1 else ""
    return [{**env, "GATEWAY_ROLE": "" if both else "websocket", "GATEWAY_INDEX": str(n),
             "GATEWAY_MANAGEMENT_PORTS": ports} for n in range(websocket)] + [
            {**env, "GATEWAY_ROLE": "rest", "GATEWAY_INDEX": "0", "GATEWAY_MANAGEMENT_PORTS": ""}
            for _ in range(processes - websocket)]


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


class LocalCloud:
    def __init__(self, settings: LocalSettings):
        self.s = settings
        self.log_dir = settings.data_dir / "logs"
        self.children: list[Child] = []
        self.servers: dict[str, Server] = {}  # the servers started here, by their process's name
        self.function_env_used: dict[str, str] = {}
        self.restarts: dict[str, tuple[int, float]] = {}  # name -> (restarts in a row, when last restarted)
        self.console = None if settings.quiet else ConsoleRelay()

    def check_ports(self) -> None:
        ports = {"the REST API": self.s.http_port, "the WebSocket API": self.s.ws_port}
        if not self.s.external_database:
            ports["PostgreSQL"] = self.s.pg_port
        if not self.s.external_redis:
            ports["Valkey"] = self.s.redis_port
        if not self.s.external_emulator:
            ports["the AWS emulator"] = self.s.emulator_port
        for name, port in ports.items():
            ensure_port_free(port, name)

    def start(self) -> dict[str, str]:
        from .servers import LocalStackServer, MotoServer, PostgresServer, ValkeyServer

        self.check_ports()
        # Each dependency given by URL is used as it is; the others start here.
        servers: list = []
        database_url, redis_url, emulator_url = (
            self.s.external_database, self.s.external_redis, self.s.external_emulator
        )
        if not database_url:
            servers.append(PostgresServer(self.s.data_dir / "postgres", self.s.pg_port, self.log_dir))
            database_url = servers[-1].url
        if not redis_url:
            servers.append(ValkeyServer(self.s.data_dir / "valkey", self.s.redis_port, self.log_dir))
            redis_url = servers[-1].url
        if not emulator_url and self.s.emulator == "localstack":
            servers.append(LocalStackServer(self.s.data_dir / "localstack", self.s.emulator_port, self.log_dir))
            emulator_url = servers[-1].url
        elif not emulator_url:
            servers.append(MotoServer(self.s.emulator_port, self.log_dir))
            emulator_url = servers[-1].url
        for server in servers:  # all launched at once, then waited for
            server.launch()
            self.children.append(server.child)
            self.servers[server.child.name] = server
        for server in servers:
            server.wait_ready()

        env = self.function_env(database_url, redis_url, emulator_url)
        self.prepare_resources(env)
        python = sys.executable
        fds: tuple[int, ...] = ()
        if self.console is not None:  # each request and invocation on this terminal
            env[CONSOLE_FD] = str(self.console.write_fd)
            fds = (self.console.write_fd,)
        # The REST and the WebSocket API each have processes of their own, sharing the API's port (gateway_envs).
        management_ports = [free_port() for _ in range(self.s.gateway_processes)]
        gateways = [
            Child(name, [python, "-m", "infra.local.gateway"], self.log_dir / f"{name}.log", env=gateway_env,
                  cwd=PROJECT_DIR, pass_fds=fds).start()
            for name, gateway_env in zip(
                ["gateway"] + [f"gateway-{n}" for n in range(2, self.s.gateway_processes + 1)],
                gateway_envs(env, self.s.gateway_processes, management_ports, self.s.gateway_layout), strict=True)
        ]
        self.children.extend(gateways)
        for n, worker_env in enumerate(worker_envs(env, self.s.worker_processes), start=1):
            name = "worker" if n == 1 else f"worker-{n}"
            self.children.append(Child(name, [python, "-m", "infra.local.worker"], self.log_dir / f"{name}.log",
                                       env=worker_env, cwd=PROJECT_DIR, pass_fds=fds).start())
        for port, serving in ((self.s.http_port, gateways[-1]), (self.s.ws_port, gateways[0])):
            wait_until(functools.partial(port_open, port), 60, "the gateway", serving)
        if self.s.market_activity_per_second > 0:  # other traders, through the public API
            rate = str(self.s.market_activity_per_second)
            self.children.append(Child("market-activity", [python, "-m", "infra.local.market_activity"],
                                       self.log_dir / "market-activity.log",
                                       env={**env, "MARKET_ACTIVITY_PER_SECOND": rate}, cwd=PROJECT_DIR).start())
        self.function_env_used = env
        self.describe()
        return env

    def describe(self) -> None:
        """Writes ``cloud.json`` in the data folder: each process's pid and what the functions connect to, for tools
        that attach to a running cloud (``make bench``)."""
        (self.s.data_dir / CLOUD_FILE).write_text(json.dumps({
            "processes": {"supervisor": os.getpid(), **{c.name: c.process.pid for c in self.children if c.alive()}},
            # What the cloud gives its functions beyond its own environment: the stage's variables and the wiring.
            "env": {k: v for k, v in self.function_env_used.items() if os.environ.get(k) != v},
        }, indent=2))

    def function_env(self, database_url: str, redis_url: str, emulator_url: str) -> dict[str, str]:
        """What the functions see: the stage's variables from .chalice/config.json, then the local wiring."""
        env = dict(os.environ)
        env.update(chalice_config("local").environment_variables)
        env.setdefault("AWS_ACCESS_KEY_ID", "test")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        env.setdefault("AWS_REGION", env["AWS_DEFAULT_REGION"])
        env.update({
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "AWS_ENDPOINT_URL": emulator_url,
            "WEBSOCKET_API_ID": "local",
            "WEBSOCKET_ENDPOINT_URL": f"http://127.0.0.1:{self.s.ws_port}/api",
            "HTTP_PORT": str(self.s.http_port),
            "WS_PORT": str(self.s.ws_port),
            "PYTHONPATH": str(PROJECT_DIR),
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def prepare_resources(self, env: dict[str, str]) -> None:
        """What a deployment's migrate_database function does on AWS, with the same engine the functions build."""
        import dataclasses

        from chalicelib.bootstrap import build_engine
        from chalicelib.settings import Settings

        engine = build_engine(dataclasses.replace(Settings.from_env(env), db_pool_size=2))
        try:
            engine.migrate_database("Create")
        finally:
            engine.close()
        self.prepare_queues(env)

    def prepare_queues(self, env: dict[str, str]) -> None:
        import boto3

        from chalicelib.settings import Settings

        from .aws import ensure_orders_queues

        settings = Settings.from_env(env)
        sqs = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        ).client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"])
        ensure_orders_queues(sqs, settings.orders_queue_name, function_timeout("execute_orders"))
        ensure_orders_queues(sqs, settings.pool_events_queue_name, function_timeout("trigger_limit_orders"))

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if not c.alive()), None)

    def recover(self, exited: Child) -> None:
        """Starts a process that died again, as Lambda replaces a failed environment and a managed service its
        failed server: PostgreSQL replays its write-ahead log, Valkey its append-only file; the emulator, which
        keeps its queues in memory, gets them again (the sweeper re-sends what their messages carried)."""
        server = self.servers.get(exited.name)
        if server is None:
            exited.start()
        else:
            server.launch()
            assert server.child is not None  # launch() started it
            self.children[self.children.index(exited)] = server.child
            server.wait_ready()
            if exited.name in ("moto", "localstack"):
                self.prepare_queues(self.function_env_used)
        self.describe()

    def restart_delay(self, name: str, now: float) -> float:
        """How long to wait before restarting ``name``: at once, unless it keeps dying (then 1, 2, 4 ... 30 s)."""
        count, last = self.restarts.get(name, (0, -1e9))
        count = count + 1 if now - last < 30 else 0
        self.restarts[name] = (count, now)
        return 0.0 if count == 0 else min(30.0, 2.0 ** (count - 1))

    def stop(self) -> None:
        """The API's own clients first, then the functions (they finish what they hold), then the servers they use;
        all within the deadline."""
        deadline = time.monotonic() + STOP_DEADLINE_S
        clients = [c for c in self.children if c.name.startswith(CLIENTS)]
        apps = [c for c in self.children if c.name.startswith(FUNCTIONS)]
        servers = [c for c in self.children if c not in apps and c not in clients]
        for group in (clients, apps, servers):
            for child in group:
                child.signal_stop()
            for child in group:
                child.wait_stopped(deadline if group is servers else deadline - 1.0)


def run() -> int:
    from .servers import LocalStackUnavailable, Unavailable

    try:
        settings = LocalSettings.from_env()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cloud = LocalCloud(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    try:
        cloud.start()
    except (PortTaken, LocalStackUnavailable, Unavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        cloud.stop()
        return 2
    except PermissionError as error:
        print(f"error: the local cloud could not start: permission denied on {error.filename}; its servers run as "
              f"you{' (PostgreSQL as nobody)' if os.geteuid() == 0 else ''}: make it reachable by them, or set "
              f"LOCAL_DATA_DIR to a folder of yours (logs: {cloud.log_dir})", file=sys.stderr)
        cloud.stop()
        return 1
    except OSError as error:
        print(f"error: the local cloud could not start: {error.strerror}: {error.filename}; its data and logs go "
              f"under LOCAL_DATA_DIR ({settings.data_dir}): point it at a folder you can write", file=sys.stderr)
        cloud.stop()
        return 1
    except Exception as error:
        print(f"error: the local cloud could not start: {error} (logs: {cloud.log_dir})", file=sys.stderr)
        cloud.stop()
        return 1
    emulator = settings.external_emulator or f"http://127.0.0.1:{settings.emulator_port} ({settings.emulator})"
    database = settings.external_database or f"postgresql://postgres@127.0.0.1:{settings.pg_port}/postgres"
    redis_url = settings.external_redis or f"redis://127.0.0.1:{settings.redis_port}/0 (Valkey)"
    print(
        f"local cloud ready in {time.monotonic() - started:.1f} s\n"
        f"  REST API        http://127.0.0.1:{settings.http_port}\n"
        f"  WebSocket API   ws://127.0.0.1:{settings.ws_port}/api\n"
        f"  @connections    http://127.0.0.1:{settings.ws_port}/api/@connections/{{id}}\n"
        f"  AWS emulator    {emulator}\n"
        f"  PostgreSQL      {database}\n"
        f"  Redis           {redis_url}\n"
        f"  logs            {cloud.log_dir}\n"
        f"Ctrl-C stops everything.",
        flush=True,
    )
    while not stop.wait(0.5):
        exited = cloud.first_exited()
        if exited is None:
            continue
        delay = cloud.restart_delay(exited.name, time.monotonic())
        print(f"warning: {exited.name} exited with code {exited.process.returncode}; starting it again"
              f"{f' in {delay:.0f} s' if delay else ''} (see {exited.log_path})", file=sys.stderr, flush=True)
        if stop.wait(delay):
            break
        try:
            cloud.recover(exited)
        except Exception as error:  # tried again on the next turn, later and later
            print(f"warning: {exited.name} did not start again: {error}", file=sys.stderr, flush=True)
    print("stopping...", flush=True)
    cloud.stop()
    print("stopped", flush=True)
    return 0


def token(user: str, scope: str | None = None) -> int:
    from chalicelib.auth import issue_token
    from chalicelib.settings import Settings

    secret = Settings.from_env().jwt_secret
    if not secret:
        print("error: set JWT_SECRET", file=sys.stderr)
        return 2
    print(issue_token(user, secret, scope=scope or None))
    return 0


def redrive_dead_letters() -> int:
    import boto3

    from chalicelib.settings import Settings

    from .aws import redrive

    env = os.environ
    session = boto3.session.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "test"),
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    endpoint = env.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{env.get('AWS_EMULATOR_PORT', '4566')}"
    sqs = session.client("sqs", endpoint_url=endpoint)
    name = Settings.from_env().orders_queue_name
    moved = redrive(sqs, sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"],
                    sqs.get_queue_url(QueueName=name)["QueueUrl"])
    print(f"moved {moved} messages from {name}-dlq back to {name}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="start the local cloud (the default)")
    token_parser = commands.add_parser("token", help="print a bearer token for a user")
    token_parser.add_argument("user")
    token_parser.add_argument("--scope", help='space-separated scopes, e.g. "metrics:read" for an operator '
                                              '(default: none, a trader\'s token)')
    commands.add_parser("redrive", help="move dead-lettered order messages back to the orders queue")
    commands.add_parser("clean", help="forget the local cloud's data, wherever PostgreSQL had to keep it")
    args = parser.parse_args()
    if args.command == "token":
        return token(args.user, args.scope)
    if args.command == "redrive":
        return redrive_dead_letters()
    if args.command == "clean":
        from .servers import forget_postgres_data

        forget_postgres_data(LocalSettings.from_env().data_dir / "postgres")
        return 0
    return run()


if __name__ == "__main__":
    sys.exit(main())
