"""The order engine on AWS.

The Chalice app (REST and WebSocket APIs, authorizer, worker, sweeper, migration) comes from Chalice's CDK
construct, which runs ``chalice package``; everything it runs on is native CDK: a VPC, Aurora Serverless v2
PostgreSQL behind RDS Proxy, ElastiCache Serverless for Valkey, the orders queue and its dead-letter queue, secrets,
one least-privilege role per kind of function, and alarms. Where Chalice's template lacks something (partial batch
responses, per-function roles, the queue's ARN, gateway responses) the stack overrides that resource's properties.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from aws_cdk import (
    ArnFormat,
    CfnOutput,
    CustomResource,
    Duration,
    RemovalPolicy,
    Stack,
    custom_resources,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from chalice.cdk import Chalice
from constructs import Construct

from .. import queues
from ..chalice_config import PROJECT_DIR, chalice_config, function_timeout
from ..gateway_responses import GATEWAY_RESPONSES, PROBLEM_CONTENT_TYPE, problem
from .stages import StageSettings

# The app's functions, by their logical ids in the template `chalice package` writes.
AUTHORIZER = "JwtAuth"
API_FUNCTIONS = ("APIHandler", "WebsocketConnect", "WebsocketMessage", "WebsocketDisconnect")
WORKER_FUNCTIONS = ("ExecuteOrders", "TriggerLimitOrders", "SweepStuckOrders", "MigrateDatabase")
VERIFIES_TOKENS = (AUTHORIZER, "WebsocketConnect")  # the only functions that read the JWT secret
WORKER = "ExecuteOrders"
# Pinned, not taken from the interpreter that runs `chalice package`: the wheels it bundles are built for this version
# (infra/cdk/__main__.py refuses to synthesize under another).
LAMBDA_RUNTIME = "python3.11"
WORKER_EVENT = "ExecuteOrdersSqsEventSource"
TRIGGER = "TriggerLimitOrders"  # wakes resting limit orders on the venues' pool events
TRIGGER_EVENT = "TriggerLimitOrdersSqsEventSource"

DATABASE_NAME = "orders"
DATABASE_PORT = 5432
CACHE_PORT = 6379
OLDEST_MESSAGE_ALARM_SECONDS = 300  # a healthy queue drains in seconds; five minutes means the worker is stuck


def database_secret(cluster: rds.DatabaseCluster) -> secretsmanager.ISecret:
    """The cluster's generated credentials (``Credentials.from_generated_secret``): always there."""
    assert cluster.secret is not None
    return cluster.secret


def locked_source(build_dir: Path = PROJECT_DIR / "chalice.out" / "source") -> Path:
    """What `chalice package` packages: the app, its code and its config, with ``requirements.lock`` (every
    transitive pin, every hash) as its requirements, so that the functions get the same wheels at every deployment;
    Chalice itself only knows ``requirements.txt``."""
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    shutil.copy2(PROJECT_DIR / "app.py", build_dir / "app.py")
    shutil.copytree(PROJECT_DIR / "chalicelib", build_dir / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(PROJECT_DIR / ".chalice", build_dir / ".chalice", ignore=shutil.ignore_patterns("deployments"))
    shutil.copy2(PROJECT_DIR / "requirements.lock", build_dir / "requirements.txt")
    return build_dir


class OrderEngineStack(Stack):
    def __init__(self, scope: Construct, stage: StageSettings, **kwargs) -> None:
        # Chalice takes its stage name from the construct's scope, so the stack's id is the stage's name.
        super().__init__(scope, stage.name, stack_name=stage.app_name,
                         description=f"Order execution engine ({stage.name})", **kwargs)
        self.stage = stage
        self.vpc = self._network()
        self.functions_sg = ec2.SecurityGroup(self, "FunctionsSecurityGroup", vpc=self.vpc,
                                              description="The order engine functions")
        self.database, self.proxy = self._database()
        self.cache = self._cache()
        self.queue, self.dead_letters = self._queues()
        self.pool_events = self._pool_events_queue()
        self.jwt_secret = secretsmanager.Secret(
            self, "JwtSecret", secret_name=f"{stage.app_name}/jwt",
            description="Signs and verifies the API's bearer tokens (HS256)",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64,
                                                                        exclude_punctuation=True),
        )
        self.roles = self._roles()
        self.app = self._chalice_app()
        self._grant()
        self._migrate_on_deploy()
        self.alarm_topic = self._alarms()
        self._outputs()

    # --- what the functions run on -----------------------------------------------------------------------------

    def _network(self) -> ec2.Vpc:
        return ec2.Vpc(
            self, "Network", max_azs=2, nat_gateways=self.stage.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="functions", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                                        cidr_mask=20),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )

    def _database(self) -> tuple[rds.DatabaseCluster, rds.DatabaseProxy]:
        stage = self.stage
        data_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        cluster = rds.DatabaseCluster(
            self, "Database",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=rds.AuroraPostgresEngineVersion.VER_17_9),
            credentials=rds.Credentials.from_generated_secret("engine", secret_name=f"{stage.app_name}/database"),
            default_database_name=DATABASE_NAME,
            writer=rds.ClusterInstance.serverless_v2("Writer"),
            readers=[rds.ClusterInstance.serverless_v2(f"Reader{i + 1}", scale_with_writer=True)
                     for i in range(stage.database_readers)],
            serverless_v2_min_capacity=stage.database_min_acu,
            serverless_v2_max_capacity=stage.database_max_acu,
            vpc=self.vpc, vpc_subnets=data_subnets,
            storage_encrypted=True,
            deletion_protection=stage.protect_data,
            removal_policy=RemovalPolicy.SNAPSHOT if stage.protect_data else RemovalPolicy.DESTROY,
            backup=rds.BackupProps(retention=Duration.days(14 if stage.protect_data else 1)),
        )
        proxy_sg = ec2.SecurityGroup(self, "ProxySecurityGroup", vpc=self.vpc, description="RDS Proxy")
        proxy = cluster.add_proxy(
            "Proxy", db_proxy_name=stage.app_name, vpc=self.vpc, vpc_subnets=data_subnets, security_groups=[proxy_sg],
            secrets=[database_secret(cluster)], require_tls=True,
            # Lambda opens a pool per instance; the proxy multiplexes them onto few database connections and
            # queues a burst for up to borrow_timeout instead of refusing it.
            max_connections_percent=90, borrow_timeout=Duration.seconds(30),
            idle_client_timeout=Duration.minutes(15),
        )
        cluster.connections.allow_default_port_from(proxy_sg, "RDS Proxy")
        proxy_sg.add_ingress_rule(self.functions_sg, ec2.Port.tcp(DATABASE_PORT), "the order engine functions")
        return cluster, proxy

    def _cache(self) -> elasticache.CfnServerlessCache:
        stage = self.stage
        cache_sg = ec2.SecurityGroup(self, "CacheSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
                                     description="ElastiCache Serverless (Valkey)")
        cache_sg.add_ingress_rule(self.functions_sg, ec2.Port.tcp(CACHE_PORT), "the order engine functions")
        return elasticache.CfnServerlessCache(
            self, "Cache", engine="valkey", major_engine_version="8", serverless_cache_name=stage.app_name,
            description="Hot state: connections, subscriptions, rate limits, idempotency keys",
            security_group_ids=[cache_sg.security_group_id],
            subnet_ids=self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
            cache_usage_limits=elasticache.CfnServerlessCache.CacheUsageLimitsProperty(
                data_storage=elasticache.CfnServerlessCache.DataStorageProperty(
                    unit="GB", maximum=stage.cache_max_gb),
                ecpu_per_second=elasticache.CfnServerlessCache.ECPUPerSecondProperty(
                    maximum=stage.cache_max_ecpu_per_second),
            ),
        )

    @property
    def queue_name(self) -> str:
        return f"{self.stage.app_name}-orders"

    def _queues(self) -> tuple[sqs.Queue, sqs.Queue]:
        name = self.queue_name
        dead_letters = sqs.Queue(
            self, "OrdersDeadLetterQueue", queue_name=queues.dead_letter_queue_name(name),
            retention_period=Duration.seconds(queues.DEAD_LETTER_RETENTION_SECONDS),
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
        )
        queue = sqs.Queue(
            self, "OrdersQueue", queue_name=name,
            visibility_timeout=Duration.seconds(queues.visibility_timeout(self.worker_timeout)),
            retention_period=Duration.seconds(queues.RETENTION_SECONDS),
            max_message_size_bytes=queues.MAX_MESSAGE_BYTES,
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letters, max_receive_count=queues.MAX_RECEIVE_COUNT),
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
        )
        return queue, dead_letters

    @property
    def pool_events_queue_name(self) -> str:
        return f"{self.stage.app_name}-pool-events"

    def _pool_events_queue(self) -> sqs.Queue:
        """The venues' pool events, which the trigger function consumes. A trigger that keeps failing leaves its
        events in the dead-letter queue; the sweeper's recheck finds their orders anyway."""
        name = self.pool_events_queue_name
        dead_letters = sqs.Queue(
            self, "PoolEventsDeadLetterQueue", queue_name=queues.dead_letter_queue_name(name),
            retention_period=Duration.seconds(queues.DEAD_LETTER_RETENTION_SECONDS),
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
        )
        return sqs.Queue(
            self, "PoolEventsQueue", queue_name=name,
            visibility_timeout=Duration.seconds(queues.visibility_timeout(function_timeout("trigger_limit_orders",
                                                                                          self.stage.name))),
            retention_period=Duration.seconds(queues.RETENTION_SECONDS),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letters, max_receive_count=queues.MAX_RECEIVE_COUNT),
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
        )

    @property
    def worker_timeout(self) -> int:
        return function_timeout("execute_orders", self.stage.name)

    # --- the app ------------------------------------------------------------------------------------------------

    def _roles(self) -> dict[str, iam.Role]:
        def role(name: str, description: str, in_vpc: bool) -> iam.Role:
            basic = "AWSLambdaVPCAccessExecutionRole" if in_vpc else "AWSLambdaBasicExecutionRole"
            return iam.Role(self, name, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                            description=description,
                            managed_policies=[
                                iam.ManagedPolicy.from_aws_managed_policy_name(f"service-role/{basic}"),
                                # Active tracing: each function sends its X-Ray segments (Powertools Tracer).
                                iam.ManagedPolicy.from_aws_managed_policy_name("AWSXRayDaemonWriteAccess"),
                            ])

        return {
            "authorizer": role("AuthorizerRole", "The JWT authorizer: reads the JWT secret, nothing else", False),
            "api": role("ApiRole", "REST and WebSocket handlers: place, read and cancel orders", True),
            "worker": role("WorkerRole", "The SQS worker, the sweeper and the migration", True),
        }

    def _chalice_app(self) -> Chalice:
        stage = self.stage
        app = Chalice(self, "App", source_dir=str(locked_source()), stage_config={
            "manage_iam_role": False,
            "iam_role_arn": self.roles["api"].role_arn,
            "subnet_ids": self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids,
            "security_group_ids": [self.functions_sg.security_group_id],
            # app.py reads ORDERS_QUEUE_NAME while `chalice package` imports it: a plain string, not a token.
            "environment_variables": {
                "ORDERS_QUEUE_NAME": self.queue_name,
                "ORDERS_DLQ_NAME": queues.dead_letter_queue_name(self.queue_name),
                "ORDERS_QUEUE_URL": self.queue.queue_url,  # saves a GetQueueUrl call at each cold start
                "POOL_EVENTS_QUEUE_NAME": self.pool_events_queue_name,
                "POOL_EVENTS_QUEUE_URL": self.pool_events.queue_url,
                "DATABASE_HOST": self.proxy.endpoint,
                "REDIS_URL": f"rediss://{self.cache.attr_endpoint_address}:{self.cache.attr_endpoint_port}/0",
                "REDIS_CLUSTER": "1",
                "DB_PREPARED_STATEMENTS": "0",  # they would pin the proxy's connections
            },
        })
        for name in WORKER_FUNCTIONS:
            app.get_resource(name).add_property_override("Role", self.roles["worker"].role_arn)
        for name in (AUTHORIZER, *API_FUNCTIONS, *WORKER_FUNCTIONS):
            function = app.get_resource(name)
            function.add_property_override("Runtime", LAMBDA_RUNTIME)
            function.add_property_override("Tracing", "Active")  # X-Ray traces, annotated by Powertools Tracer
        app.get_resource("RestAPI").add_property_override("TracingEnabled", True)
        authorizer = app.get_resource(AUTHORIZER)
        authorizer.add_property_override("Role", self.roles["authorizer"].role_arn)
        authorizer.add_property_deletion_override("VpcConfig")  # it reads one secret and touches no data
        for name in VERIFIES_TOKENS:
            app.add_environment_variable("JWT_SECRET_ARN", self.jwt_secret.secret_arn, name)
        websocket_api_id = app.get_resource("WebsocketAPI").ref
        for name in API_FUNCTIONS + WORKER_FUNCTIONS:
            app.add_environment_variable("DATABASE_SECRET_ARN", database_secret(self.database).secret_arn, name)
            app.add_environment_variable("WEBSOCKET_API_ID", websocket_api_id, name)

        # Chalice's SQS event knows nothing of partial batch responses: without ReportBatchItemFailures the
        # worker's batchItemFailures would be ignored and a whole batch retried for one failed order.
        worker = app.get_resource(WORKER)
        event = f"Events.{WORKER_EVENT}.Properties"
        worker.add_property_override(f"{event}.Queue", self.queue.queue_arn)
        worker.add_property_override(f"{event}.FunctionResponseTypes", ["ReportBatchItemFailures"])
        worker.add_property_override(f"{event}.ScalingConfig.MaximumConcurrency", stage.worker_max_concurrency)
        app.get_resource(TRIGGER).add_property_override(f"Events.{TRIGGER_EVENT}.Properties.Queue",
                                                        self.pool_events.queue_arn)

        # Part of the API's definition, so that the deployment SAM makes changes whenever they do.
        app.get_resource("RestAPI").add_property_override(
            "DefinitionBody.x-amazon-apigateway-gateway-responses", gateway_responses())

        # Created here, not by Lambda on first use, so that they have a retention and go with the stack.
        self.log_groups = [
            logs.CfnLogGroup(self, f"{function}Logs", retention_in_days=stage.log_retention_days,
                             log_group_name=f"/aws/lambda/{app.get_resource(function).ref}")
            for function in API_FUNCTIONS + WORKER_FUNCTIONS + (AUTHORIZER,)
        ]
        return app

    def _grant(self) -> None:
        api, worker, authorizer = self.roles["api"], self.roles["worker"], self.roles["authorizer"]
        self.jwt_secret.grant_read(authorizer)
        self.jwt_secret.grant_read(api)
        database_secret(self.database).grant_read(api)
        database_secret(self.database).grant_read(worker)
        self.queue.grant_send_messages(api)
        self.dead_letters.grant(api, "sqs:GetQueueAttributes", "sqs:GetQueueUrl")  # GET /metrics reads its depth
        self.queue.grant_consume_messages(worker)
        self.queue.grant_send_messages(worker)  # the sweeper sends stuck orders again, the trigger triggered ones
        self.pool_events.grant_send_messages(worker)  # the worker's swaps change pools
        self.pool_events.grant_send_messages(api)  # and so do other traders' (POST /dex/swaps)
        self.pool_events.grant_consume_messages(worker)  # the trigger function
        manage_connections = iam.PolicyStatement(
            actions=["execute-api:ManageConnections"],
            resources=[self.format_arn(
                service="execute-api", resource=self.app.get_resource("WebsocketAPI").ref,
                resource_name=f"{self.app_stage}/*/@connections/*", arn_format=ArnFormat.SLASH_RESOURCE_NAME,
            )],
        )
        api.add_to_policy(manage_connections)
        worker.add_to_policy(manage_connections)

    @property
    def app_stage(self) -> str:
        return chalice_config(self.stage.name).api_gateway_stage or "api"

    def _migrate_on_deploy(self) -> None:
        """Runs the migration function on every deployment whose migrations changed, before the stack completes:
        a failed migration fails the deployment (and CloudFormation rolls it back)."""
        provider = custom_resources.Provider(self, "SchemaProvider",
                                             on_event_handler=self.app.get_function("MigrateDatabase"))
        schema = CustomResource(self, "Schema", service_token=provider.service_token,
                                properties={"migrations": migrations_digest()})
        for dependency in (self.database, self.proxy, *self.log_groups):
            schema.node.add_dependency(dependency)

    # --- operations ---------------------------------------------------------------------------------------------

    def _alarms(self) -> sns.Topic:
        topic = sns.Topic(self, "Alarms", display_name=f"{self.stage.app_name} alarms")
        email = self.node.try_get_context("alarm_email")
        if email:
            sns.Subscription(self, "AlarmEmail", topic=topic, protocol=sns.SubscriptionProtocol.EMAIL,
                             endpoint=email)
        minute = Duration.minutes(1)
        alarms = [
            cloudwatch.Alarm(
                self, "DeadLetters", alarm_description="Orders' messages reached the dead-letter queue: the "
                "sweeper ends their orders; look at the worker's logs, then `aws sqs start-message-move-task`.",
                metric=self.dead_letters.metric_approximate_number_of_messages_visible(period=minute,
                                                                                       statistic="Maximum"),
                threshold=1, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self, "WorkerErrors", alarm_description="The worker failed whole invocations (not single orders).",
                metric=cloudwatch.Metric(namespace="AWS/Lambda", metric_name="Errors", statistic="Sum",
                                         dimensions_map={"FunctionName": self.app.get_resource(WORKER).ref},
                                         period=minute),
                threshold=1, evaluation_periods=5, datapoints_to_alarm=3,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self, "OldestOrderMessage", alarm_description="An order has waited in the queue for over "
                f"{OLDEST_MESSAGE_ALARM_SECONDS} s: the worker is failing, throttled or at its concurrency limit.",
                metric=self.queue.metric_approximate_age_of_oldest_message(period=minute, statistic="Maximum"),
                threshold=OLDEST_MESSAGE_ALARM_SECONDS, evaluation_periods=3,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for alarm in alarms:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
            alarm.add_ok_action(cloudwatch_actions.SnsAction(topic))
        return topic

    def _outputs(self) -> None:
        CfnOutput(self, "RestApiUrl", value=self._api_url("https", "RestAPI") + "/")
        CfnOutput(self, "WebsocketUrl", value=self._api_url("wss", "WebsocketAPI"))
        CfnOutput(self, "OrdersQueueUrl", value=self.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.dead_letters.queue_url)
        CfnOutput(self, "JwtSecretArn", value=self.jwt_secret.secret_arn)
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)

    def _api_url(self, scheme: str, api: str) -> str:
        api_id = self.app.get_resource(api).ref
        return f"{scheme}://{api_id}.execute-api.{self.region}.{self.url_suffix}/{self.app_stage}"


def gateway_responses() -> dict[str, dict]:
    """API Gateway's own answers as problem documents, in the OpenAPI extension's shape."""
    responses = {}
    for response_type in GATEWAY_RESPONSES:
        status, _, body = problem(response_type)
        responses[response_type] = {
            "statusCode": str(status),
            "responseParameters": {"gatewayresponse.header.Content-Type": f"'{PROBLEM_CONTENT_TYPE}'"},
            "responseTemplates": {"application/json": body.decode()},
        }
    return responses


def migrations_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((PROJECT_DIR / "chalicelib" / "migrations").glob("*.sql")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


