"""The benchmark's client: each order is placed over HTTP and followed over WebSocket, on its user's connection
(as a trading bot keeps one open) or on a connection of its own.

It runs on aiohttp for both protocols: measured here, a client on httpx and ``websockets`` saturates near 175
orders/s against a trivial server, aiohttp near 3,600/s, so the client is not what limits the figures.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from dataclasses import dataclass, field

import aiohttp

from chalicelib.auth import issue_token
from chalicelib.settings import LOCAL_JWT_SECRET

FINAL_STATUSES = {"confirmed", "failed", "cancelled", "expired"}
# Market orders across every pair and both directions, sized so no single one drains a pool.
ORDER_BODIES = [
    {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.05", "slippageBps": 300},
    {"tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "7.5", "slippageBps": 300},
    {"tokenIn": "SOL", "tokenOut": "USDT", "amountIn": "0.1", "slippageBps": 300},
    {"tokenIn": "JUP", "tokenOut": "USDC", "amountIn": "12", "slippageBps": 300},
]
# ``--orders-mix routed``: orders the router splits over both pools of their pair (sells and buys in turn, so the price
# ends about where it started) and orders that hop through a third token. A burst of them swings the price by more
# than 10 % between an order's quote and its swap (a 1,000-order burst sells and buys about 190,000 SOL on pools that
# hold 125,000): 34 % of the orders failed on slippage at 300 bp, 19-23 % at the 1,000 bp they accept here.
ROUTED_ORDER_BODIES = [
    {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1500", "slippageBps": 1000},
    {"tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "225000", "slippageBps": 1000},
    {"tokenIn": "JUP", "tokenOut": "SOL", "amountIn": "50", "slippageBps": 1000},
    {"tokenIn": "USDC", "tokenOut": "USDT", "amountIn": "10", "slippageBps": 1000},
]


def order_bodies(mix: str = "small", routing: str = "smart") -> list[dict]:
    """The orders a load places in turn; ``routing`` "single" has each keep one pool (a hop-only pair then has
    none: the routed mix keeps its splitting orders only)."""
    bodies = ORDER_BODIES if mix == "small" else ROUTED_ORDER_BODIES
    if routing == "single":
        return [{**b, "routing": "single"} for b in bodies if (b["tokenIn"], b["tokenOut"]) not in (
            ("JUP", "SOL"), ("USDC", "USDT"))]
    return bodies


# The per-user limits a trader has (20 WebSocket connections, a burst of 100 requests) hold: the load is spread
# over as many users as that takes, as many bots would place it. Each order spends two requests of the burst: its
# placement and its subscription.
CONNECTIONS_PER_USER = 20
BURST_PER_USER = 100
REQUESTS_PER_ORDER = 2


def tokens_for(orders: int, concurrency: int, run_id: str) -> list[str]:
    users = max(math.ceil(concurrency / CONNECTIONS_PER_USER),
                math.ceil(orders * REQUESTS_PER_ORDER / BURST_PER_USER), 1)
    secret = os.environ.get("JWT_SECRET") or LOCAL_JWT_SECRET
    return [issue_token(f"bench-{run_id}-{n}", secret) for n in range(users)]


@dataclass
class OrderTrace:
    """What the client saw of one order; times are ``time.monotonic()`` seconds."""

    index: int
    submitted_at: float = 0.0
    accepted_at: float | None = None
    http_status: int | None = None
    order_id: str | None = None
    final_at: float | None = None
    final_status: str | None = None
    frames: list[tuple[int, str]] = field(default_factory=list)  # (seq, status) in arrival order
    venue_ms: int = 0  # the venue calls' time, as the engine reports it in each event's data
    error: str | None = None

    # For an accepted order (``order_id`` set) and, with the last two, a finished one (``final_at`` set).
    @property
    def id(self) -> str:
        assert self.order_id is not None, "not accepted"
        return self.order_id

    @property
    def accepted(self) -> float:
        assert self.accepted_at is not None, "no answer"
        return self.accepted_at

    @property
    def finished(self) -> float:
        assert self.final_at is not None, "not finished"
        return self.final_at

    @property
    def status(self) -> str:
        assert self.final_status is not None, "not finished"
        return self.final_status


@dataclass(frozen=True)
class LoadPlan:
    http_url: str
    ws_url: str
    orders: int
    concurrency: int
    tokens: list[str]  # one per user; orders go round-robin
    run_id: str
    deadline: float  # monotonic: nothing waits beyond it
    connection_per_order: bool = False  # else each user follows all its orders on one connection, as a bot does
    progress_every_s: float | None = None  # print how far the load has come this often (None: silent)
    bodies: list[dict] = field(default_factory=lambda: ORDER_BODIES)  # placed in turn


def progress_line(traces: list[OrderTrace], started: float, now: float) -> str:
    accepted = sum(t.http_status == 202 for t in traces)
    completed = sum(t.final_at is not None for t in traces)
    return (f"  {now - started:5.1f} s: {accepted}/{len(traces)} accepted, {completed} completed"
            f"{f', {sum(t.error is not None for t in traces)} errors' if any(t.error for t in traces) else ''}")


async def _report_progress(traces: list[OrderTrace], every_s: float) -> None:
    started = time.monotonic()
    while True:
        await asyncio.sleep(every_s)
        print(progress_line(traces, started, time.monotonic()), flush=True)


async def run_load(plan: LoadPlan) -> list[OrderTrace]:
    traces = [OrderTrace(i) for i in range(plan.orders)]
    progress = asyncio.create_task(_report_progress(traces, plan.progress_every_s)) if plan.progress_every_s else None
    limit = asyncio.Semaphore(plan.concurrency)
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        followers: list[Follower] = []
        if not plan.connection_per_order:
            followers = [await Follower(session, f"{plan.ws_url}?token={token}").open() for token in plan.tokens]

        async def one(trace: OrderTrace) -> None:
            async with limit:
                try:
                    if plan.connection_per_order:
                        token = plan.tokens[trace.index % len(plan.tokens)]
                        follower = await Follower(session, f"{plan.ws_url}?token={token}").open()
                        try:
                            await _place_and_follow(session, plan, trace, follower)
                        finally:
                            await follower.close()
                    else:
                        await _place_and_follow(session, plan, trace, followers[trace.index % len(followers)])
                except (aiohttp.ClientError, ConnectionError, TimeoutError, ValueError) as error:
                    trace.error = f"{type(error).__name__}: {error}"

        try:
            await asyncio.gather(*(one(t) for t in traces))
        finally:
            if progress is not None:
                progress.cancel()
            for follower in followers:
                await follower.close()
    return traces


class Follower:
    """One WebSocket connection and the orders it follows: frames go to each order's trace as they arrive."""

    def __init__(self, session: aiohttp.ClientSession, url: str):
        self._session = session
        self._url = url
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._following: dict[str, tuple[OrderTrace, asyncio.Event]] = {}
        self._reader: asyncio.Task | None = None

    async def open(self) -> Follower:
        self._ws = await self._session.ws_connect(self._url, heartbeat=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()

    async def follow(self, trace: OrderTrace, deadline: float) -> None:
        """Subscribes to the trace's order and returns once its final status arrived (or the deadline passed)."""
        ended = asyncio.Event()
        self._following[trace.id] = (trace, ended)
        assert self._ws is not None, "open() first"
        await self._ws.send_str(json.dumps({"action": "subscribe", "orderId": trace.id}))
        try:
            await asyncio.wait_for(ended.wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            pass

    async def _read(self) -> None:
        assert self._ws is not None, "open() first"
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            frame = json.loads(message.data)
            followed = self._following.get(frame.get("orderId"))
            if followed is None:
                continue
            trace, ended = followed
            _record(trace, frame)
            if trace.final_at is not None or trace.error:
                ended.set()
        # The connection closed: every order still followed on it ends here, without its final status.
        for trace, ended in self._following.values():
            if trace.final_at is None and not trace.error:
                trace.error = "the connection closed before the order ended"
            ended.set()


async def _place_and_follow(session: aiohttp.ClientSession, plan: LoadPlan, trace: OrderTrace,
                            follower: Follower) -> None:
    token = plan.tokens[trace.index % len(plan.tokens)]
    body = plan.bodies[trace.index % len(plan.bodies)]
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"bench-{plan.run_id}-{trace.index}"}
    trace.submitted_at = time.monotonic()
    async with session.post(f"{plan.http_url}/orders", json=body, headers=headers) as response:
        trace.http_status = response.status
        payload = await response.json(content_type=None)
    trace.accepted_at = time.monotonic()
    if response.status != 202:
        trace.error = f"HTTP {response.status}: {payload}"
        return
    trace.order_id = payload["orderId"]
    await follower.follow(trace, plan.deadline)


def _record(trace: OrderTrace, frame: dict) -> None:
    if frame.get("type") == "error":
        trace.error = f"WebSocket error frame: {frame}"
        return
    if frame.get("type") != "order.update":
        return
    trace.frames.append((frame["seq"], frame["status"]))
    trace.venue_ms += int((frame.get("data") or {}).get("venueMs") or 0)
    if frame["status"] in FINAL_STATUSES and trace.final_at is None:
        trace.final_at = time.monotonic()
        trace.final_status = frame["status"]


async def stored_sequences(http_url: str, owners: dict[str, str],
                           deadline_s: float = 120) -> dict[str, list[tuple[int, str]]]:
    """Each order's events as the engine stored them (``owners``: order id -> its user's token): what a complete
    subscriber must have seen. A user's reads share its rate limit with the orders it just placed, so a 429 is
    waited out as its ``Retry-After`` says; any other failure to read is an error, not an order lost."""
    stored: dict[str, list[tuple[int, str]]] = {}
    limit = asyncio.Semaphore(32)
    give_up_at = time.monotonic() + deadline_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def fetch(order_id: str, token: str) -> None:
            while True:
                async with limit, session.get(f"{http_url}/orders/{order_id}",
                                              headers={"Authorization": f"Bearer {token}"}) as response:
                    if response.status == 200:
                        view = await response.json()
                        stored[order_id] = [(e["seq"], e["status"]) for e in view["events"]]
                        return
                    wait_s = float(response.headers.get("Retry-After", "1"))
                    if response.status != 429 or time.monotonic() + wait_s > give_up_at:
                        raise RuntimeError(f"GET /orders/{order_id} answered {response.status}: "
                                           f"{(await response.text())[:200]}")
                await asyncio.sleep(wait_s)

        await asyncio.gather(*(fetch(order_id, token) for order_id, token in owners.items()))
    return stored
