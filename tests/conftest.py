"""Shared fixtures: the real embedded servers, started once per test session on free ports."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.local.lambda_runtime import PROJECT_DIR
from infra.local.processes import free_port

TEST_JWT_SECRET = "integration-tests-secret-at-least-32-bytes"


def scratch_dir(prefix: str) -> Path:
    """A folder PostgreSQL can use when it runs as ``nobody``: pytest's own temp dirs are private to root."""
    root = PROJECT_DIR / ".local" / "tests"
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    os.chmod(path, 0o755)
    return path


@dataclass
class Servers:
    database_url: str
    redis_url: str
    aws_endpoint: str
    base: Path


@pytest.fixture(scope="session")
def servers() -> Servers:
    from infra.local.servers import MotoServer, PostgresServer, ValkeyServer

    base = scratch_dir("servers-")
    logs = base / "logs"
    running = [
        PostgresServer(base / "postgres", free_port(), logs),
        ValkeyServer(base / "valkey", free_port(), logs),
        MotoServer(free_port(), logs),
    ]
    for server in running:
        server.launch()
    try:
        for server in running:
            server.wait_ready()
        pg, valkey, moto = running
        yield Servers(pg.url, valkey.url, moto.url, base)
    finally:
        for server in running:
            if server.child:
                server.child.stop()
        shutil.rmtree(running[0].data_dir, ignore_errors=True)  # PostgreSQL's may live outside ``base``
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session", params=["moto", "localstack"])
def emulator(request: pytest.FixtureRequest, servers: Servers) -> str:
    """The AWS emulator's endpoint: every test that uses SQS runs against moto, then against LocalStack."""
    if request.param == "moto":
        return servers.aws_endpoint
    return request.getfixturevalue("localstack_endpoint")


@pytest.fixture(scope="session")
def localstack_endpoint(servers: Servers) -> str:
    from infra.local.servers import LocalStackServer, LocalStackUnavailable

    server = LocalStackServer(servers.base / "localstack", free_port(), servers.base / "logs")
    try:
        server.launch()
    except LocalStackUnavailable as error:
        pytest.skip(f"LocalStack run skipped: {error}")
    try:
        server.wait_ready()
        yield server.url
    finally:
        server.child.stop()


@pytest.fixture(scope="session")
def aws_env(servers: Servers, emulator: str) -> dict[str, str]:
    """Points this process's boto3 and the app's settings at the test servers."""
    env = {
        "AWS_ENDPOINT_URL": emulator,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "DATABASE_URL": servers.database_url,
        "REDIS_URL": servers.redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "STAGE": "local",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if "e2e" in parts or "faults" in parts:
            item.add_marker(pytest.mark.e2e)
        if "deployment" in parts:
            item.add_marker(pytest.mark.deployment)
            if "template" in item.fixturenames or "template_path" in item.fixturenames or \
                    "prod_template" in item.fixturenames:
                item.add_marker(pytest.mark.slow)  # each stage's synthesis takes 10-20 s
