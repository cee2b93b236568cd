"""Secrets Manager: on AWS the functions get secret ARNs, never secrets, in their environment.

``JWT_SECRET_ARN`` holds the token signing secret as a plain string. ``DATABASE_SECRET_ARN`` holds the database
credentials as RDS writes them (a JSON object with ``username``, ``password``, ``port`` and ``dbname``); the
functions connect to ``DATABASE_HOST``, the RDS Proxy endpoint, rather than to the ``host`` in the secret.
Locally, ``JWT_SECRET`` and ``DATABASE_URL`` are given directly and nothing is fetched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

SecretReader = Callable[[str], str]


def resolve_secrets(env: Mapping[str, str], read_secret: SecretReader) -> dict[str, str]:
    """The environment with ``JWT_SECRET`` and ``DATABASE_URL`` filled in from the secrets their ARNs name;
    a value given directly wins, and a function given no ARN fetches nothing (and needs no right to)."""
    resolved = dict(env)
    if env.get("JWT_SECRET_ARN") and not env.get("JWT_SECRET"):
        resolved["JWT_SECRET"] = read_secret(env["JWT_SECRET_ARN"])
    if env.get("DATABASE_SECRET_ARN") and not env.get("DATABASE_URL"):
        resolved["DATABASE_URL"] = database_url(json.loads(read_secret(env["DATABASE_SECRET_ARN"])),
                                                env.get("DATABASE_HOST"))
    return resolved


def database_url(credentials: Mapping[str, object], host: str | None = None) -> str:
    """A libpq connection string; TLS is required because RDS Proxy and RDS both offer it."""
    from psycopg.conninfo import make_conninfo  # here: the authorizer, which reads only the JWT secret, needs no driver

    return make_conninfo(
        host=host or str(credentials["host"]),
        port=str(credentials.get("port", 5432)),
        dbname=str(credentials.get("dbname", "postgres")),
        user=str(credentials["username"]),
        password=str(credentials["password"]),
        sslmode="require",
        connect_timeout="5",
    )


def secrets_manager_reader(max_age_seconds: int = 300) -> SecretReader:
    """Reads through Powertools' parameters utility, which caches each value for ``max_age_seconds``."""

    def read(arn: str) -> str:
        from aws_lambda_powertools.utilities import parameters  # only where a secret is read: it loads boto3

        return str(parameters.get_secret(arn, max_age=max_age_seconds))

    return read
