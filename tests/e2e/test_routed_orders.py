"""Smart routing on the running local cloud (issue 19), over HTTP: a 5,000 SOL sell split over both SOL/USDC pools in
one transaction of two legs, JUP → SOL through USDC and USDC → USDT through SOL (no pool trades either pair), and
``"routing": "single"`` keeping one pool."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import pytest

from tests.e2e.conftest import running_cloud
from tests.e2e.test_api import auth, call

pytestmark = pytest.mark.slow

FINAL = ("confirmed", "failed", "cancelled", "expired")


@pytest.fixture(scope="module")
def cloud():
    with running_cloud(DEX_FAILURE_RATE="0", DEX_QUOTE_LATENCY_MS="1-5", DEX_SWAP_LATENCY_MS="20-50") as running:
        yield running


async def settled(session, cloud, body: dict, user: str = "alice", timeout: float = 20.0) -> tuple[dict, list]:
    """Places the order, waits for its final status; returns its view and its entries on the venues' ledger."""
    status, _, accepted = await call(session, "POST", f"{cloud.http}/orders", json=body, headers=auth(user))
    assert status == 202, accepted
    deadline = time.monotonic() + timeout
    while True:
        _, _, view = await call(session, "GET", f"{cloud.http}/orders/{accepted['orderId']}", headers=auth(user))
        if view["status"] in FINAL or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert view["status"] == "confirmed", view
    _, _, ledger = await call(session, "GET", f"{cloud.http}/dex/swaps", params={"orderId": view["orderId"]},
                              headers=auth(user))
    return view, ledger["swaps"]


def base_units(amount: str, decimals: int) -> int:
    return int(Decimal(amount).scaleb(decimals))


def test_a_5000_sol_sell_confirms_as_one_transaction_of_two_legs_paying_more_than_the_best_single_pool(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            query = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "5000", "slippageBps": "100"}
            _, _, quote = await call(session, "GET", f"{cloud.http}/quote", params=query)
            _, _, single = await call(session, "GET", f"{cloud.http}/quote", params={**query, "routing": "single"})
            order, (swap,) = await settled(session, cloud, {**query, "slippageBps": 100})
            return quote, single, order, swap

    quote, single, order, swap = asyncio.run(scenario())
    best_single = max(Decimal(q["outAmount"]) for q in quote["quotes"] if q["error"] is None)
    assert Decimal(single["outAmount"]) == best_single and len(single["routePlan"]) == 1
    assert len(quote["routePlan"]) == 2 and Decimal(quote["gainBps"]) >= 1
    assert sum(Decimal(leg["percent"]) for leg in quote["routePlan"]) == 100
    assert quote["venue"] in ("raydium+meteora", "meteora+raydium")
    # The order: one transaction whose two legs' outputs sum to its amountOut, more than the best single pool quoted.
    assert Decimal(order["execution"]["amountOut"]) > best_single
    assert len(swap["legs"]) == 2 and {leg["poolId"] for leg in swap["legs"]} == {"raydium-sol-usdc",
                                                                                   "meteora-sol-usdc"}
    assert sum(int(leg["amountOut"]) for leg in swap["legs"]) == int(swap["amountOut"]) == base_units(
        order["execution"]["amountOut"], 6)
    assert sum(int(leg["amountIn"]) for leg in swap["legs"]) == int(swap["amountIn"]) == 5_000 * 10**9
    assert swap["poolId"] == swap["legs"][0]["poolId"] and swap["signature"] == order["execution"]["txSignature"]
    assert [leg["amountOut"] for leg in order["execution"]["legs"]] == [
        str(Decimal(leg["amountOut"]).scaleb(-6).normalize()) for leg in swap["legs"]]
    routing = order["routing"]
    assert len(routing["routePlan"]) == 2 and routing["otherAmountThreshold"] == order["execution"]["minOut"]
    assert order["venue"] == routing["venue"] == order["execution"]["venue"]


def test_jup_to_sol_confirms_through_usdc_and_usdc_to_usdt_through_sol(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            jup = await settled(session, cloud, {"tokenIn": "JUP", "tokenOut": "SOL", "amountIn": "1000",
                                                 "slippageBps": 100})
            usdc = await settled(session, cloud, {"tokenIn": "USDC", "tokenOut": "USDT", "amountIn": "1500",
                                                  "slippageBps": 100})
            return jup, usdc

    for (order, (swap,)), middle in zip(asyncio.run(scenario()), ("USDC", "SOL"), strict=True):
        first, second = swap["legs"]
        assert (first["tokenIn"], first["tokenOut"]) == (order["tokenIn"], middle)
        assert (second["tokenIn"], second["tokenOut"]) == (middle, order["tokenOut"])
        assert second["amountIn"] == first["amountOut"] and second["amountOut"] == swap["amountOut"]
        assert order["routing"]["gainBps"] is None and "through" not in order["venue"]
        assert [(leg["tokenIn"], leg["percent"]) for leg in order["routing"]["routePlan"]] == [
            (order["tokenIn"], "100"), (middle, "100")]


def test_routing_single_keeps_one_pool_and_a_pair_three_hops_apart_has_no_route(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            order, swaps = await settled(session, cloud, {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "5000",
                                                          "slippageBps": 100, "routing": "single"})
            far = await call(session, "GET", f"{cloud.http}/quote",
                             params={"tokenIn": "USDT", "tokenOut": "JUP", "amountIn": "10"})
            hop_single = await call(session, "POST", f"{cloud.http}/orders", headers=auth("alice"),
                                    json={"tokenIn": "JUP", "tokenOut": "SOL", "amountIn": "10", "routing": "single"})
            return order, swaps, far, hop_single

    order, (swap,), far, hop_single = asyncio.run(scenario())
    assert len(swap["legs"]) == 1 and order["routingMode"] == "single" and len(order["execution"]["legs"]) == 1
    assert far[0] == 422 and far[2]["errors"][0]["field"] == "tokenOut"
    assert hop_single[0] == 422 and "routing single" in hop_single[2]["detail"]
