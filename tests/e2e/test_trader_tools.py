"""Trader tools on the running local cloud (issue 20): client order ids over HTTP."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest

from tests.e2e.conftest import running_cloud
from tests.e2e.test_api import auth, call, until_final

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cloud():
    with running_cloud(DEX_FAILURE_RATE="0", DEX_QUOTE_LATENCY_MS="1-5", DEX_SWAP_LATENCY_MS="20-50") as running:
        yield running


def test_a_client_order_id_finds_filters_and_cancels_the_order_and_a_taken_one_answers_409(cloud):
    cid, resting_cid = f"bot-{uuid.uuid4().hex[:8]}", f"rest-{uuid.uuid4().hex[:8]}"

    async def scenario():
        async with aiohttp.ClientSession() as session:
            body = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.5", "clientOrderId": cid}
            status, _, placed = await call(session, "POST", f"{cloud.http}/orders", json=body, headers=auth())
            assert status == 202, placed
            taken = await call(session, "POST", f"{cloud.http}/orders", json={**body, "amountIn": "1"},
                               headers=auth())
            mine = await call(session, "GET", f"{cloud.http}/orders/by-client-id/{cid}", headers=auth())
            listed = await call(session, "GET", f"{cloud.http}/orders", params={"clientOrderId": cid},
                                headers=auth())
            others = await call(session, "GET", f"{cloud.http}/orders/by-client-id/{cid}", headers=auth("bob"))
            final = await until_final(session, cloud, placed["orderId"])
            limit = {"type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "limitPrice": "900",
                     "clientOrderId": resting_cid}
            status, _, resting = await call(session, "POST", f"{cloud.http}/orders", json=limit, headers=auth())
            assert status == 202, resting
            cancelled = await call(session, "DELETE", f"{cloud.http}/orders/by-client-id/{resting_cid}",
                                   headers=auth())
            return placed, taken, mine, listed, others, final, resting, cancelled

    placed, taken, mine, listed, others, final, resting, cancelled = asyncio.run(scenario())
    assert taken[0] == 409 and placed["orderId"] in taken[2]["detail"]
    assert taken[2]["errors"][0]["field"] == "clientOrderId"
    assert mine[0] == 200 and mine[2]["orderId"] == placed["orderId"] and mine[2]["clientOrderId"] == cid
    assert [o["orderId"] for o in listed[2]["orders"]] == [placed["orderId"]]
    assert others[0] == 404  # another user's client order id is as invisible as their order
    assert final["status"] == "confirmed" and final["clientOrderId"] == cid
    assert cancelled[0] == 200 and cancelled[2]["orderId"] == resting["orderId"]
    assert cancelled[2]["status"] == "cancelled"
