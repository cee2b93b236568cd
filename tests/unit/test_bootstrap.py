"""The wiring: one function builds the engine; what a cold start does not need is made on first use only."""

import json
import os
import subprocess
import sys
import threading
from decimal import Decimal

from chalicelib import bootstrap
from chalicelib.bootstrap import FirstUse, build_engine
from chalicelib.domain.commands import PlaceOrder
from chalicelib.domain.orders import OrderType, Status
from chalicelib.services.read_models import PlacedOrder
from chalicelib.settings import Settings
from infra.chalice_config import PROJECT_DIR
from tests.fakes import FakePairLocks, FakeStatistics
from tests.unit.test_services import World


def test_first_use_makes_its_part_once_however_many_threads_ask_at_once():
    made, barrier = [], threading.Barrier(8)

    def make():
        made.append(1)
        return object()

    part = FirstUse(make)
    assert not part.made
    results = []

    def ask():
        barrier.wait()
        results.append(part())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and part.made and all(r is results[0] for r in results)


def test_the_placement_is_made_when_the_first_order_is_placed():
    built = []

    class CountingPlacement:
        def __init__(self, orders):
            built.append(orders)
            self.orders = orders

        def place(self, user_id, key, order, context=None):
            placed = self.orders.place(user_id, order)
            return PlacedOrder(placed.id, placed.status)

    world = World()
    engine = build_engine(Settings.from_env({}), clock=world.clock, orders=world.orders, venues=world.venues,
                          statistics=FakeStatistics(world.orders), locks=FakePairLocks(), queue=world.queue,
                          dead_letters=world.queue,
                          connections=world.connections, push=world.push, rate_limiter=world.engine.rate_limiter,
                          placement=CountingPlacement)
    assert built == []
    placed = engine.placement.place("alice", None, PlaceOrder("SOL", "USDC", Decimal("1"), 50, OrderType.MARKET))
    engine.placement.place("alice", None, PlaceOrder("SOL", "USDC", Decimal("2"), 50, OrderType.MARKET))
    assert built == [engine.orders] and placed.status is Status.PENDING and world.queue.sent[0] == placed.order_id


def test_an_engine_on_fakes_is_whole_and_healthy():
    world = World()
    assert world.engine.health() == {"postgres": "ok", "redis": "ok", "sqs": "ok"}
    assert world.engine.migrate_database("Create") == {"PhysicalResourceId": bootstrap.SCHEMA_RESOURCE_ID}
    order = world.place()
    world.executor.execute(order.id)
    assert world.engine.metrics.snapshot().orders == [("confirmed", world.orders.orders[order.id].venue, 1)]


def test_the_authorizer_checks_a_token_without_building_the_engine_or_importing_a_driver():
    # A fresh interpreter, as a cold start is: what the authorizer imports is what its function pays for.
    script = """
import json, sys
import app
from chalicelib import bootstrap
from chalicelib.auth import issue_token
token = issue_token("alice", bootstrap.settings().jwt_secret)
principal = bootstrap.verify_token(token)
heavy = [m for m in ("psycopg", "psycopg_pool", "redis", "botocore.session", "pydantic") if m in sys.modules]
print(json.dumps({"user": principal.user_id, "built": bootstrap._engine.made, "heavy": heavy}))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET", "JWT_SECRET_ARN")} | {"STAGE": "local"}
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_DIR, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"user": "alice", "built": False, "heavy": []}


def test_building_the_engine_connects_to_nothing_and_loads_no_library_only_some_invocations_need():
    # The worker's cold start: no pydantic (requests), no Powertools idempotency (placing), no botocore session
    # (SQS and @connections clients), no JWT library; and building needs nothing to answer (nothing listens here).
    script = """
import json, sys
import app
from chalicelib import bootstrap, worker
from chalicelib.settings import Settings
engine = bootstrap.build_engine(Settings.from_env({"DATABASE_URL": "postgresql://u@127.0.0.1:9/x?connect_timeout=1",
                                                   "REDIS_URL": "redis://127.0.0.1:9/0"}))
heavy = [m for m in ("pydantic", "aws_lambda_powertools.utilities.idempotency", "botocore.session", "jwt")
         if m in sys.modules]
print(json.dumps({"heavy": heavy, "built": True}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_DIR, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"heavy": [], "built": True}
