from __future__ import annotations

import boto3
import pytest
import redis

from chalicelib.adapters.dex import MockDexNetwork
from chalicelib.adapters.postgres import connect_pool, migrate
from chalicelib.clock import SystemClock
from chalicelib.domain.markets import genesis_pools
from chalicelib.domain.venues import LatencyRange


@pytest.fixture(scope="session")
def db(servers):
    pool = connect_pool(servers.database_url, max_size=20)
    migrate(pool)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def dex(db):
    network = MockDexNetwork(db, LatencyRange(0, 0), LatencyRange(0, 0), 0.0, now=SystemClock().now)
    network.seed(genesis_pools())
    return network


@pytest.fixture
def redis_client(servers):
    client = redis.Redis.from_url(servers.redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def sqs(aws_env):
    return boto3.session.Session().client("sqs")
