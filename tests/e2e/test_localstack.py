"""``AWS_EMULATOR=localstack make run``: the same local cloud with LocalStack's SQS in place of moto's."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from infra.local.servers import LocalStackUnavailable, localstack_environment
from tests.e2e.conftest import running_cloud
from tests.e2e.test_local_cloud import auth, follow, is_complete, place

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def localstack_ready():
    try:
        localstack_environment()  # installed before the cloud's start-up clock runs
    except LocalStackUnavailable as error:
        pytest.skip(f"LocalStack run skipped: {error}")


def test_orders_flow_through_localstacks_sqs(localstack_ready):
    with running_cloud(AWS_EMULATOR="localstack", DEX_FAILURE_RATE="0") as cloud:
        assert any("(localstack)" in line for line in cloud.output), cloud.output

        async def scenario():
            async with aiohttp.ClientSession() as session:
                ids = await asyncio.gather(*(place(session, cloud) for _ in range(10)))
                streams = await asyncio.gather(*(follow(session, cloud, oid) for oid in ids))
                async with session.get(f"{cloud.http}/metrics", headers=auth("ops", scope="metrics:read")) as r:
                    metrics = await r.text()
                return streams, metrics

        streams, metrics = asyncio.run(scenario())
        assert all(is_complete(frames) and frames[-1]["status"] == "confirmed" for frames in streams)
        assert 'order_engine_queue_messages{queue="orders",state="visible"} 0.0' in metrics
