"""The synthesized CloudFormation template: every resource the deployment needs, wired and scoped as intended."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from chalicelib.adapters.secrets import resolve_secrets
from chalicelib.settings import Settings
from infra import queues
from infra.cdk.stack import (
    API_FUNCTIONS,
    AUTHORIZER,
    VERIFIES_TOKENS,
    WORKER,
    WORKER_FUNCTIONS,
    gateway_responses,
    migrations_digest,
)
from infra.cdk.stages import STAGES
from infra.gateway_responses import GATEWAY_RESPONSES

FUNCTIONS = {AUTHORIZER, *API_FUNCTIONS, *WORKER_FUNCTIONS}


def of_type(template: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def the(template: dict, kind: str, prefix: str = "") -> tuple[str, dict]:
    """The one resource of a type (whose logical id starts with ``prefix``): CDK appends a hash to ids."""
    found = [(name, r) for name, r in of_type(template, kind).items() if name.startswith(prefix)]
    assert len(found) == 1, f"expected one {kind} {prefix!r}, found {[n for n, _ in found]}"
    return found[0]


def target(value: Any) -> str | None:
    """The logical id a Ref or GetAtt points at."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return value["Fn::GetAtt"][0]
    return None


def env_of(template: dict, function: str) -> dict[str, Any]:
    return template["Resources"][function]["Properties"]["Environment"]["Variables"]


def statements(template: dict) -> list[tuple[str, dict]]:
    """(role logical id, statement) of every inline policy."""
    found = []
    for policy in of_type(template, "AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                found.append((target(role), statement))
    return found


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def test_cloudformation_accepts_the_template_sam_transform_included(template_path):
    """cfn-lint checks the resources' properties against CloudFormation's specification (a visibility timeout over
    12 hours, a Lambda timeout over 15 minutes...); it does not look deep into SAM's event sources, which the tests
    below assert one by one."""
    result = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), "--format", "json", str(template_path)],
                            capture_output=True, text=True, timeout=120)
    findings = json.loads(result.stdout or "[]")
    errors = [f"{f['Rule']['Id']} {f['Message']}" for f in findings if f["Level"] == "Error"]
    assert errors == [] and result.returncode in (0, 4), (errors, result.stderr[-2000:])


def test_the_app_its_two_apis_and_its_schedule(template):
    assert set(of_type(template, "AWS::Serverless::Function")) == FUNCTIONS
    assert "RestAPI" in of_type(template, "AWS::Serverless::Api")
    websocket = template["Resources"]["WebsocketAPI"]
    assert websocket["Type"] == "AWS::ApiGatewayV2::Api"
    assert websocket["Properties"]["ProtocolType"] == "WEBSOCKET"
    routes = {r["Properties"]["RouteKey"] for r in of_type(template, "AWS::ApiGatewayV2::Route").values()}
    assert routes == {"$connect", "$disconnect", "$default"}
    events = template["Resources"]["SweepStuckOrders"]["Properties"]["Events"]
    assert [e["Properties"]["Schedule"] for e in events.values() if e["Type"] == "Schedule"] == ["rate(1 minute)"]


def test_the_worker_takes_batches_from_the_orders_queue_and_reports_partial_failures(template):
    queue_id, _ = the(template, "AWS::SQS::Queue", "OrdersQueue")
    events = template["Resources"][WORKER]["Properties"]["Events"]
    (event,) = events.values()
    assert event["Type"] == "SQS"
    properties = event["Properties"]
    assert target(properties["Queue"]) == queue_id and properties["Queue"]["Fn::GetAtt"][1] == "Arn"
    assert properties["BatchSize"] == 10 and properties["MaximumBatchingWindowInSeconds"] == 0
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["ScalingConfig"] == {"MaximumConcurrency": STAGES["dev"].worker_max_concurrency}


def test_the_trigger_takes_the_venues_pool_events_and_every_function_knows_their_queue(template):
    queue_id, queue = the(template, "AWS::SQS::Queue", "PoolEventsQueue")
    dlq_id, _ = the(template, "AWS::SQS::Queue", "PoolEventsDeadLetterQueue")
    (event,) = template["Resources"]["TriggerLimitOrders"]["Properties"]["Events"].values()
    assert event["Type"] == "SQS" and target(event["Properties"]["Queue"]) == queue_id
    assert target(queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]) == dlq_id
    timeout = template["Resources"]["TriggerLimitOrders"]["Properties"]["Timeout"]
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * timeout
    for function in FUNCTIONS:
        assert env_of(template, function)["POOL_EVENTS_QUEUE_NAME"] == queue["Properties"]["QueueName"]


def test_the_orders_queue_outlasts_the_worker_and_redrives_to_its_dead_letter_queue(template):
    _, queue = the(template, "AWS::SQS::Queue", "OrdersQueue")
    dlq_id, dlq = the(template, "AWS::SQS::Queue", "OrdersDeadLetterQueue")
    worker_timeout = template["Resources"][WORKER]["Properties"]["Timeout"]
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * worker_timeout
    redrive = queue["Properties"]["RedrivePolicy"]
    assert target(redrive["deadLetterTargetArn"]) == dlq_id
    assert redrive["maxReceiveCount"] == queues.MAX_RECEIVE_COUNT
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["Properties"]["SqsManagedSseEnabled"] and dlq["Properties"]["SqsManagedSseEnabled"]
    for function in FUNCTIONS:
        env = env_of(template, function)
        assert env["ORDERS_QUEUE_NAME"] == queue["Properties"]["QueueName"]
        assert env["ORDERS_DLQ_NAME"] == dlq["Properties"]["QueueName"]


def test_postgres_behind_rds_proxy_and_valkey_in_a_private_network(template):
    assert len(of_type(template, "AWS::EC2::VPC")) == 1
    cluster_id, cluster = the(template, "AWS::RDS::DBCluster")
    assert cluster["Properties"]["Engine"] == "aurora-postgresql"
    assert cluster["Properties"]["StorageEncrypted"] is True
    assert cluster["Properties"]["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 4}
    instances = of_type(template, "AWS::RDS::DBInstance").values()
    assert [i["Properties"]["DBInstanceClass"] for i in instances] == ["db.serverless"]
    proxy_id, proxy = the(template, "AWS::RDS::DBProxy")
    assert proxy["Properties"]["RequireTLS"] is True and proxy["Properties"]["EngineFamily"] == "POSTGRESQL"
    (auth,) = proxy["Properties"]["Auth"]
    secret_attachment, _ = the(template, "AWS::SecretsManager::SecretTargetAttachment")
    assert auth["AuthScheme"] == "SECRETS" and target(auth["SecretArn"]) == secret_attachment
    cache_id, cache = the(template, "AWS::ElastiCache::ServerlessCache")
    assert cache["Properties"]["Engine"] == "valkey"

    functions_sg, _ = the(template, "AWS::EC2::SecurityGroup", "FunctionsSecurityGroup")
    proxy_sg, _ = the(template, "AWS::EC2::SecurityGroup", "ProxySecurityGroup")
    cache_sg, _ = the(template, "AWS::EC2::SecurityGroup", "CacheSecurityGroup")
    ingress = [(target(r["Properties"]["GroupId"]), r["Properties"]["FromPort"],
                target(r["Properties"].get("SourceSecurityGroupId")))
               for r in of_type(template, "AWS::EC2::SecurityGroupIngress").values()]
    into = {group: [(port, source) for g, port, source in ingress if g == group] for group in (proxy_sg, cache_sg)}
    assert into == {proxy_sg: [(5432, functions_sg)], cache_sg: [(6379, functions_sg)]}
    assert not any(r.get("CidrIp") == "0.0.0.0/0" for g in of_type(template, "AWS::EC2::SecurityGroup").values()
                   for r in g["Properties"].get("SecurityGroupIngress", []))

    for function in FUNCTIONS - {AUTHORIZER}:
        env = env_of(template, function)
        assert target(env["DATABASE_HOST"]) == proxy_id and env["DATABASE_HOST"]["Fn::GetAtt"][1] == "Endpoint"
        assert target(env["DATABASE_SECRET_ARN"]) == secret_attachment
        url = env["REDIS_URL"]["Fn::Join"][1]
        assert url[0] == "rediss://" and target(url[1]) == cache_id and env["REDIS_CLUSTER"] == "1"
        assert env["DB_PREPARED_STATEMENTS"] == "0"
        vpc = template["Resources"][function]["Properties"]["VpcConfig"]
        assert [target(g) for g in vpc["SecurityGroupIds"]] == [functions_sg]
    assert "VpcConfig" not in template["Resources"][AUTHORIZER]["Properties"]
    assert target(template["Resources"]["Schema"]["Properties"]["ServiceToken"]) is not None
    assert cluster_id in template["Resources"]["Schema"]["DependsOn"]


def test_secrets_live_in_secrets_manager_and_functions_get_only_their_arns(template):
    jwt_secret, secret = the(template, "AWS::SecretsManager::Secret", "JwtSecret")
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    for function in FUNCTIONS:
        env = env_of(template, function)
        assert not {"JWT_SECRET", "DATABASE_URL"} & set(env), f"{function} has a secret in its environment"
        assert ("JWT_SECRET_ARN" in env) == (function in VERIFIES_TOKENS)
        assert ("DATABASE_SECRET_ARN" in env) == (function != AUTHORIZER)
    assert all(target(env_of(template, f)["JWT_SECRET_ARN"]) == jwt_secret for f in VERIFIES_TOKENS)
    assert "MasterUserPassword" in the(template, "AWS::RDS::DBCluster")[1]["Properties"]
    assert "{{resolve:secretsmanager:" in json.dumps(the(template, "AWS::RDS::DBCluster")[1]["Properties"])


def test_each_role_may_do_only_what_its_functions_need(template):
    roles = {name: target(template["Resources"][name]["Properties"]["Role"]) for name in FUNCTIONS}
    api_role, worker_role, authorizer_role = roles["APIHandler"], roles[WORKER], roles[AUTHORIZER]
    assert {roles[f] for f in API_FUNCTIONS} == {api_role} and {roles[f] for f in WORKER_FUNCTIONS} == {worker_role}
    assert len({api_role, worker_role, authorizer_role}) == 3
    queue_id, _ = the(template, "AWS::SQS::Queue", "OrdersQueue")
    dlq_id, _ = the(template, "AWS::SQS::Queue", "OrdersDeadLetterQueue")
    pool_events_id, _ = the(template, "AWS::SQS::Queue", "PoolEventsQueue")

    granted: dict[str, set[str]] = {}
    sends_pool_events: set[str] = set()
    for role, statement in statements(template):
        actions = as_list(statement["Action"])
        assert statement["Effect"] == "Allow"
        assert "*" not in actions and not any(a.endswith(":*") for a in actions), statement
        assert statement["Resource"] != "*", statement
        granted.setdefault(role, set()).update(actions)
        if any(a.startswith("sqs:") for a in actions):
            assert {target(r) for r in as_list(statement["Resource"])} <= {queue_id, dlq_id, pool_events_id}, statement
            if "sqs:SendMessage" in actions and pool_events_id in {target(r) for r in as_list(statement["Resource"])}:
                sends_pool_events.add(role)
        if "execute-api:ManageConnections" in actions:
            (arn,) = as_list(statement["Resource"])
            parts = arn["Fn::Join"][1]
            assert {"Ref": "WebsocketAPI"} in parts and parts[-1] == "/api/*/@connections/*", statement
    assert "execute-api:ManageConnections" in granted[api_role] & granted[worker_role]
    assert sends_pool_events == {api_role, worker_role}  # swaps by the worker and by other traders (the REST API)
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= granted[worker_role]
    assert not {"sqs:ReceiveMessage", "sqs:DeleteMessage"} & granted[api_role]
    assert granted[authorizer_role] == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    managed = template["Resources"][authorizer_role]["Properties"]["ManagedPolicyArns"]
    assert "AWSLambdaBasicExecutionRole" in json.dumps(managed) and "VPC" not in json.dumps(managed)


def test_alarms_watch_dead_letters_worker_errors_and_the_oldest_message(template):
    queue_id, _ = the(template, "AWS::SQS::Queue", "OrdersQueue")
    dlq_id, _ = the(template, "AWS::SQS::Queue", "OrdersDeadLetterQueue")
    topic_id, _ = the(template, "AWS::SNS::Topic")
    watched = {}
    for alarm in of_type(template, "AWS::CloudWatch::Alarm").values():
        p = alarm["Properties"]
        (dimension,) = p["Dimensions"]
        watched[p["MetricName"]] = (target(dimension["Value"]), p["Threshold"])
        assert [target(a) for a in p["AlarmActions"]] == [topic_id]
    assert watched == {
        "ApproximateNumberOfMessagesVisible": (dlq_id, 1),
        "Errors": (WORKER, 1),
        "ApproximateAgeOfOldestMessage": (queue_id, 300),
    }


def test_powertools_settings_and_log_retention_for_every_function(template):
    for function in FUNCTIONS:
        env = env_of(template, function)
        assert env["POWERTOOLS_SERVICE_NAME"] == "order-engine"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "OrderEngine"
        assert env["STAGE"] == "dev"
    log_groups = of_type(template, "AWS::Logs::LogGroup").values()
    named = {target(g["Properties"]["LogGroupName"]["Fn::Join"][1][1]) for g in log_groups
             if isinstance(g["Properties"].get("LogGroupName"), dict)}
    assert named == FUNCTIONS
    assert all(g["Properties"]["RetentionInDays"] == STAGES["dev"].log_retention_days for g in log_groups
               if isinstance(g["Properties"].get("LogGroupName"), dict))


def test_api_gateways_own_errors_are_problem_documents(template):
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert responses == gateway_responses()
    for response_type, (status, title, _) in GATEWAY_RESPONSES.items():
        document = json.loads(responses[response_type]["responseTemplates"]["application/json"])
        assert (responses[response_type]["statusCode"], document["status"], document["title"]) == \
            (str(status), status, title)
        assert "$" not in responses[response_type]["responseTemplates"]["application/json"]


def test_api_gateway_caches_the_token_authorizers_policy_as_the_local_gateway_does(template):
    from app import AUTHORIZER_TTL_SECONDS

    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    (authorizer,) = [d["x-amazon-apigateway-authorizer"] for d in body["securityDefinitions"].values()]
    assert authorizer["type"] == "token" and authorizer["authorizerResultTtlInSeconds"] == AUTHORIZER_TTL_SECONDS == 300


def test_migrations_run_on_every_deployment_that_changes_them(template):
    schema = template["Resources"]["Schema"]
    assert schema["Type"] == "AWS::CloudFormation::CustomResource"
    assert schema["Properties"]["migrations"] == migrations_digest()
    handler_grants = [s for _, s in statements(template) if "lambda:InvokeFunction" in as_list(s["Action"])]
    assert handler_grants and all(target(as_list(s["Resource"])[0]) == "MigrateDatabase" for s in handler_grants)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_functions_environment_gives_the_app_its_settings(template, function):
    """Tokens become the values CloudFormation would put there; the secrets they name are read from a fake."""
    env = {name: value if isinstance(value, str) else f"<{target(value) or 'joined'}>"
           for name, value in env_of(template, function).items()}
    if isinstance(env_of(template, function).get("REDIS_URL"), dict):
        env["REDIS_URL"] = "rediss://cache.serverless.use1.cache.amazonaws.com:6379/0"
    secrets = {env.get("JWT_SECRET_ARN"): "k" * 64,
               env.get("DATABASE_SECRET_ARN"): json.dumps({"username": "engine", "password": "pw", "port": 5432,
                                                           "dbname": "orders", "host": "writer"})}
    settings = Settings.from_env(resolve_secrets(env, lambda arn: secrets[arn]))
    assert settings.stage == "dev" and settings.orders_queue_name == "order-engine-dev-orders"
    assert (settings.jwt_secret == "k" * 64) == (function in VERIFIES_TOKENS)
    if function != AUTHORIZER:
        assert conninfo_to_dict(settings.database_url)["host"].startswith("<DatabaseProxy")
        assert settings.redis_cluster and not settings.db_prepared_statements
        assert settings.websocket_api_id == "<WebsocketAPI>"


def test_production_keeps_its_data_and_survives_a_zone(prod_template):
    _, cluster = the(prod_template, "AWS::RDS::DBCluster")
    assert cluster["Properties"]["DeletionProtection"] is True and cluster["DeletionPolicy"] == "Snapshot"
    assert len(of_type(prod_template, "AWS::RDS::DBInstance")) == 2
    assert len(of_type(prod_template, "AWS::EC2::NatGateway")) == 2
    assert env_of(prod_template, WORKER)["DEX_FAILURE_RATE"] == "0"
    assert env_of(prod_template, WORKER)["ORDERS_QUEUE_NAME"] == "order-engine-prod-orders"


def test_every_function_runs_on_the_pinned_runtime_with_active_tracing(template):
    from infra.cdk.stack import LAMBDA_RUNTIME

    for function in FUNCTIONS:
        properties = template["Resources"][function]["Properties"]
        assert properties["Runtime"] == LAMBDA_RUNTIME == "python3.11"
        assert properties["Tracing"] == "Active"
    assert template["Resources"]["RestAPI"]["Properties"]["TracingEnabled"] is True
    roles = of_type(template, "AWS::IAM::Role").values()
    writers = [r for r in roles if any("AWSXRayDaemonWriteAccess" in json.dumps(arn)
                                       for arn in r["Properties"].get("ManagedPolicyArns", []))]
    assert len(writers) >= 3  # the authorizer's, the API's and the worker's
