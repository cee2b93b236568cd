"""How the functions find their settings on AWS: secrets by ARN, the RDS Proxy host, a clustered Valkey."""

import json

import psycopg.conninfo

from chalicelib.adapters.secrets import resolve_secrets
from chalicelib.settings import Settings

JWT_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:order-engine-dev-jwt-AbCdEf"
DB_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:order-engine-dev-db-GhIjKl"
CREDENTIALS = {"username": "engine", "password": "p@ss word;'x", "host": "cluster.internal", "port": 5432,
               "dbname": "orders", "engine": "postgres"}


class SecretsManagerFake:
    def __init__(self, values: dict[str, str]):
        self.values = values
        self.reads: list[str] = []

    def __call__(self, arn: str) -> str:
        self.reads.append(arn)
        return self.values[arn]


def test_secrets_named_by_arn_fill_in_the_jwt_secret_and_a_url_to_the_proxy():
    secrets = SecretsManagerFake({JWT_ARN: "s" * 48, DB_ARN: json.dumps(CREDENTIALS)})
    env = resolve_secrets({"JWT_SECRET_ARN": JWT_ARN, "DATABASE_SECRET_ARN": DB_ARN,
                           "DATABASE_HOST": "proxy.internal", "STAGE": "dev"}, secrets)

    settings = Settings.from_env(env)
    assert settings.jwt_secret == "s" * 48
    parts = psycopg.conninfo.conninfo_to_dict(settings.database_url)
    assert parts == {"host": "proxy.internal", "port": "5432", "dbname": "orders", "user": "engine",
                     "password": CREDENTIALS["password"], "sslmode": "require", "connect_timeout": "5"}


def test_without_a_proxy_host_the_secrets_host_is_used():
    env = resolve_secrets({"DATABASE_SECRET_ARN": DB_ARN}, SecretsManagerFake({DB_ARN: json.dumps(CREDENTIALS)}))
    assert psycopg.conninfo.conninfo_to_dict(env["DATABASE_URL"])["host"] == "cluster.internal"


def test_a_function_given_no_arn_reads_no_secret():
    secrets = SecretsManagerFake({})
    env = {"JWT_SECRET_ARN": JWT_ARN, "STAGE": "dev"}  # the authorizer: no database at all
    assert resolve_secrets(env, SecretsManagerFake({JWT_ARN: "k" * 40}))["JWT_SECRET"] == "k" * 40
    assert resolve_secrets({"STAGE": "local", "DATABASE_URL": "postgresql://x"}, secrets)["DATABASE_URL"] == \
        "postgresql://x"
    assert secrets.reads == []


def test_values_given_directly_win_over_arns():
    secrets = SecretsManagerFake({})
    env = resolve_secrets({"JWT_SECRET": "direct", "JWT_SECRET_ARN": JWT_ARN,
                           "DATABASE_URL": "postgresql://direct", "DATABASE_SECRET_ARN": DB_ARN}, secrets)
    assert (env["JWT_SECRET"], env["DATABASE_URL"], secrets.reads) == ("direct", "postgresql://direct", [])


def test_a_deployed_stage_has_no_default_jwt_secret_and_the_aws_switches_are_off_locally():
    assert Settings.from_env({"STAGE": "dev"}).jwt_secret is None
    local = Settings.from_env({"STAGE": "local"})
    assert (local.redis_cluster, local.db_prepared_statements) == (False, True)
    on_aws = Settings.from_env({"REDIS_CLUSTER": "1", "DB_PREPARED_STATEMENTS": "0"})
    assert (on_aws.redis_cluster, on_aws.db_prepared_statements) == (True, False)
