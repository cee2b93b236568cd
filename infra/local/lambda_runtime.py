"""Lambda-like execution environments for the Chalice app.

Each environment imports ``app.py`` afresh (a cold start) and runs one invocation at a time, as a Lambda
execution environment does; Chalice keeps ``current_request`` on the app object, so sharing one app between
threads would mix requests. Environments are reused while warm and created on demand up to a limit.

Editing ``app.py``, ``chalicelib/`` or ``.chalice/config.json`` is a deployment: the next invocations run in new
environments that import the new code, while those already running finish on the old one.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from chalice.config import Config
from chalice.local import LocalGateway

from ..chalice_config import PROJECT_DIR, chalice_config, function_timeout
from .authorizer_cache import AuthorizerCache, CachingAuthorizer
from .console import Console, invocation_line
from .ledger import LAMBDA, Ledger

__all__ = ["PROJECT_DIR", "EnvironmentPool", "chalice_config", "function_timeout"]
_ids = itertools.count(1)


class LambdaContext:
    """The context object Lambda passes to a handler."""

    def __init__(self, function_name: str, timeout_s: int, memory_mb: int):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class CodeVersion:
    """Which version of the app's code is on disk: the names and modification times of its files, looked at no
    more than every ``every_s`` (about 60 files: a few hundred microseconds)."""

    def __init__(self, root: Path = PROJECT_DIR, every_s: float = 0.5, clock: Callable[[], float] = time.monotonic,
                 package: str = "chalicelib"):
        self._root = root
        self._package = package
        self._every_s = every_s
        self._clock = clock
        self._checked_at = -1e9
        self._version: tuple = ()
        self._lock = threading.Lock()

    def files(self) -> list[Path]:
        package = self._root / self._package
        return [self._root / "app.py", self._root / ".chalice" / "config.json",
                *sorted(package.rglob("*.py")), *sorted(package.rglob("*.sql"))]

    def current(self) -> tuple:
        now = self._clock()
        if now - self._checked_at >= self._every_s:
            with self._lock:
                self._checked_at = now
                self._version = tuple(filter(None, (_stamp(f) for f in self.files())))
        return self._version


def _stamp(path: Path) -> tuple[str, int] | None:
    try:
        return str(path), path.stat().st_mtime_ns
    except FileNotFoundError:  # gone between the listing and the look (an editor saving by rename)
        return None


_loaded_versions: dict[str, tuple] = {}
_loading = threading.Lock()


def load_version(package: str, version: tuple) -> None:
    """Forgets the process's imported modules of ``package`` when the code changed, so that new environments import
    the new code. Process-wide, as ``sys.modules`` is: every pool of the process shares one version. The clients
    the old code built (its database pool, its Redis connections) are closed once its invocations can have ended."""
    with _loading:
        loaded = _loaded_versions.setdefault(package, version)
        if version == loaded:
            return
        _loaded_versions[package] = version
        old = {name: module for name, module in sys.modules.items() if name == package or
               name.startswith(f"{package}.")}
        for name in old:
            del sys.modules[name]
    bootstrap = old.get(f"{package}.bootstrap")
    close = getattr(bootstrap, "close_engine", None)
    if close is not None:
        timer = threading.Timer(function_timeout("execute_orders") + 5, close)
        timer.daemon = True
        timer.start()


class Environment:
    def __init__(self, app_file: Path, config: Config, version: tuple = (),
                 authorizer_cache: AuthorizerCache | None = None, ledger: Ledger | None = None):
        self.version = version
        self.invocations = 0
        name = f"chalice_app_env_{next(_ids)}"
        spec = importlib.util.spec_from_file_location(name, app_file)
        assert spec is not None and spec.loader is not None, f"{app_file} is not a Python module"
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.module: ModuleType = module
        self.app = module.app
        self.config = config
        # Scoped as the deployed REST function is: its context then has that function's timeout (Powertools'
        # idempotency uses it to expire the in-progress record of a request that died), not Lambda's 900 s.
        self.gateway = LocalGateway(self.app, config.scope(config.chalice_stage, "api_handler"))
        # API Gateway caches a token authorizer's policy for its TTL: so does the local one (Chalice's runs the
        # authorizer on every request; its authorizer is a private part of LocalGateway, replaced here).
        self.gateway._authorizer = CachingAuthorizer(self.app, authorizer_cache or AuthorizerCache(), ledger)

    def handler(self, function_name: str) -> Any:
        return getattr(self.module, function_name)

    def context(self, function_name: str) -> LambdaContext:
        timeout, memory = self._limits(function_name)
        return LambdaContext(f"{self.app.app_name}-{function_name}", timeout, memory)

    @functools.cache  # noqa: B019  # one per function, for the environment's life: the config does not change in it
    def _limits(self, function_name: str) -> tuple[int, int]:
        scoped = self.config.scope(self.config.chalice_stage, function_name)
        return scoped.lambda_timeout or 60, scoped.lambda_memory_size or 128

    def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        return self.handler(function_name)(event, self.context(function_name))


class EnvironmentPool:
    def __init__(self, app_file: Path = PROJECT_DIR / "app.py", config: Config | None = None, max_size: int = 10,
                 code: CodeVersion | None = None, console: Console | None = None, package: str = "chalicelib",
                 ledger: Ledger | None = None):
        self.max_size = max_size
        self._app_file = app_file
        self._config = config or chalice_config()
        self._code = code  # None: the code never changes under this pool (tests)
        self._package = package  # the app's own modules, imported afresh after a change
        self._config_version: tuple | None = None  # the code version self._config was read for
        self.console = console or Console(None)
        self.ledger = ledger or Ledger(None)  # what AWS would bill, for make bench
        self._idle: list[Environment] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_size)
        self.authorizer_cache = AuthorizerCache()  # the API's, shared by its environments

    @contextmanager
    def environment(self) -> Iterator[Environment]:
        with self._slots:
            version = self._code.current() if self._code else ()
            with self._lock:
                if self._idle and self._idle[-1].version != version:
                    self._idle.clear()  # the old code's environments end; the new code's start cold
                    self.authorizer_cache.clear()  # a deployment flushes API Gateway's authorizer cache
                env = self._idle.pop() if self._idle else None
            if env is None:
                load_version(self._package, version)
                if self._code is not None and version != self._config_version:
                    self._config = chalice_config(self._config.chalice_stage)  # a deployment reads it again
                    self._config_version = version
                env = Environment(self._app_file, self._config, version, self.authorizer_cache, self.ledger)
            try:
                yield env
            finally:
                env.invocations += 1
                with self._lock:
                    if env.version == version and (not self._code or version == self._code.current()):
                        self._idle.append(env)

    def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        """One invocation in a free environment, reported on the ``make run`` terminal."""
        with self.environment() as env:
            cold = env.invocations == 0
            started = time.perf_counter()
            result = None
            try:
                result = env.invoke(function_name, event)
                return result
            finally:
                ms = (time.perf_counter() - started) * 1000
                self.ledger.record(LAMBDA, function_name, ms)
                if self.console.enabled:
                    self.console.line(invocation_line(function_name, cold, ms, event, result))

    def warm_up(self) -> Environment:
        """Create one environment now, so the first request does not pay the import."""
        with self.environment() as env:
            return env
