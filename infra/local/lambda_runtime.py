"""Lambda-like execution environments for the Chalice app.

Each environment imports ``app.py`` afresh (a cold start) and runs one invocation at a time, as a Lambda
execution environment does; Chalice keeps ``current_request`` on the app object, so sharing one app between
threads would mix requests. Environments are reused while warm and created on demand up to a limit.
"""

from __future__ import annotations

import importlib.util
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from chalice.config import Config
from chalice.local import LocalGateway

from ..chalice_config import PROJECT_DIR, chalice_config, function_timeout

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


class Environment:
    def __init__(self, app_file: Path, config: Config):
        name = f"chalice_app_env_{next(_ids)}"
        spec = importlib.util.spec_from_file_location(name, app_file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.module: ModuleType = module
        self.app = module.app
        self.config = config
        # Scoped as the deployed REST function is: its context then has that function's timeout (Powertools'
        # idempotency uses it to expire the in-progress record of a request that died), not Lambda's 900 s.
        self.gateway = LocalGateway(self.app, config.scope(config.chalice_stage, "api_handler"))

    def handler(self, function_name: str) -> Any:
        return getattr(self.module, function_name)

    def context(self, function_name: str) -> LambdaContext:
        scoped = self.config.scope(self.config.chalice_stage, function_name)
        return LambdaContext(f"{self.app.app_name}-{function_name}", scoped.lambda_timeout or 60,
                             scoped.lambda_memory_size or 128)

    def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        return self.handler(function_name)(event, self.context(function_name))


class EnvironmentPool:
    def __init__(self, app_file: Path = PROJECT_DIR / "app.py", config: Config | None = None, max_size: int = 10):
        self.max_size = max_size
        self._app_file = app_file
        self._config = config or chalice_config()
        self._idle: list[Environment] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_size)

    @contextmanager
    def environment(self) -> Iterator[Environment]:
        with self._slots:
            with self._lock:
                env = self._idle.pop() if self._idle else None
            if env is None:
                env = Environment(self._app_file, self._config)
            try:
                yield env
            finally:
                with self._lock:
                    self._idle.append(env)

    def warm_up(self) -> Environment:
        """Create one environment now, so the first request does not pay the import."""
        with self.environment() as env:
            return env
