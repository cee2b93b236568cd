"""docker-compose.yml: no Docker engine here, so the file is checked against what the code reads instead."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from chalicelib.settings import Settings
from infra.local.__main__ import LocalSettings
from infra.local.lambda_runtime import PROJECT_DIR

READ_ENV = re.compile(r"""(?:env|environ)(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]+)["']""")
BOTO3_ENV = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())


def names_the_code_reads() -> set[str]:
    sources = [*Path(PROJECT_DIR, "chalicelib").rglob("*.py"), *Path(PROJECT_DIR, "infra", "local").rglob("*.py")]
    return {name for path in sources for name in READ_ENV.findall(path.read_text())} | BOTO3_ENV


def published(service: dict) -> dict[int, tuple[str, int]]:
    """container port -> (host address, host port)"""
    ports = {}
    for spec in service.get("ports", []):
        host, host_port, container_port = spec.split(":")
        ports[int(container_port)] = (host, int(host_port))
    return ports


def test_the_services_and_their_images_are_pinned(compose):
    assert set(compose["services"]) == {"localstack", "postgres", "valkey", "gateway"}
    for name, service in compose["services"].items():
        if "image" in service:
            repository, _, tag = service["image"].partition(":")
            assert re.fullmatch(r"\d+(\.\d+)*", tag), f"{name} is not pinned to a version: {service['image']}"


def test_every_port_is_on_the_hosts_loopback_at_the_local_clouds_defaults(compose, monkeypatch):
    for name in ("HTTP_PORT", "WS_PORT", "AWS_EMULATOR_PORT", "PG_PORT", "REDIS_PORT", "AWS_EMULATOR"):
        monkeypatch.delenv(name, raising=False)
    defaults = LocalSettings.from_env()
    expected = {
        "gateway": {defaults.http_port: ("127.0.0.1", defaults.http_port),
                    defaults.ws_port: ("127.0.0.1", defaults.ws_port)},
        "postgres": {5432: ("127.0.0.1", defaults.pg_port)},
        "valkey": {6379: ("127.0.0.1", defaults.redis_port)},
        "localstack": {4566: ("127.0.0.1", defaults.emulator_port)},
    }
    assert {name: published(service) for name, service in compose["services"].items()} == expected


def test_the_gateways_environment_is_what_the_code_reads_and_points_at_the_services(compose):
    services = compose["services"]
    env = {k: str(v) for k, v in services["gateway"]["environment"].items()}
    assert set(env) <= names_the_code_reads(), set(env) - names_the_code_reads()

    targets = {"DATABASE_URL": "postgres", "REDIS_URL": "valkey", "AWS_ENDPOINT_URL": "localstack"}
    for variable, service in targets.items():
        url = urlsplit(env[variable])
        assert url.hostname == service and url.port in published(services[service]), variable
        assert service in services["gateway"]["depends_on"]
    assert {published(services["gateway"])[p][1] for p in (int(env["HTTP_PORT"]), int(env["WS_PORT"]))} == \
        {int(env["HTTP_PORT"]), int(env["WS_PORT"])}

    settings = Settings.from_env(env)
    assert (settings.database_url, settings.redis_url) == (env["DATABASE_URL"], env["REDIS_URL"])


def test_the_gateway_uses_the_services_instead_of_starting_its_own(compose, monkeypatch):
    for name, value in compose["services"]["gateway"]["environment"].items():
        monkeypatch.setenv(name, str(value))
    settings = LocalSettings.from_env()
    assert settings.external_database and settings.external_redis and settings.external_emulator


def test_the_gateway_image_installs_the_local_clouds_requirements_and_runs_it(compose):
    build = compose["services"]["gateway"]["build"]
    dockerfile = (PROJECT_DIR / build["context"] / build["dockerfile"]).read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements-local.lock" in dockerfile
    assert 'CMD ["python", "-m", "infra.local", "run"]' in dockerfile
    for copied in re.findall(r"^COPY (\S+)", dockerfile, re.MULTILINE):
        assert (PROJECT_DIR / copied).exists(), f"the Dockerfile copies {copied}, which does not exist"
