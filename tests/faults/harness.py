"""A load of orders against a whole local cloud while one fault is injected, and the figures that prove the result.

The test owns PostgreSQL, Valkey and moto (the cloud is given their URLs), so it can restart each under load.
Orders go through the REST API; every order is followed over WebSocket by one of a few subscriber connections,
which reconnect and subscribe again whenever their connection closes (by the fault, or on purpose).
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import boto3

from chalicelib.auth import issue_token
from chalicelib.settings import LOCAL_JWT_SECRET
from infra.local.processes import free_port
from infra.local.servers import MotoServer, PostgresServer, ValkeyServer
from tests.conftest import scratch_dir

FINAL = {"confirmed", "failed", "cancelled", "expired"}  # a market order ends in one of the first two
USER = "fault-tester"
# Small orders on one pool, then (issue 19) orders large enough to split over both pools of their pair (back and forth,
# so the price stays about where it was) and orders that hop through a third token, no pool trading their pair.
PAIRS = [("SOL", "USDC", "0.05"), ("USDC", "SOL", "7.5"), ("SOL", "USDT", "0.1"), ("JUP", "USDC", "12"),
         ("SOL", "USDC", "1500"), ("USDC", "SOL", "225000"), ("JUP", "SOL", "50"), ("USDC", "USDT", "10")]

# Short enough that a killed invocation's messages come back, and lost ones are swept, within seconds.
CLOUD_SETTINGS = {
    "DEX_QUOTE_LATENCY_MS": "1-5",
    "DEX_SWAP_LATENCY_MS": "20-80",
    "DEX_FAILURE_RATE": "0.3",  # about 1 order in 40 fails all 3 attempts
    "RETRY_BASE_SECONDS": "1",
    "WORKER_CONCURRENCY": "10",
    "LOCAL_VISIBILITY_TIMEOUT_SECONDS": "4",
    "LOCAL_SCHEDULE_SECONDS": "2",
    "STUCK_AFTER_SECONDS": "8",
    "MAX_SWEEPS": "3",
    "SIGNATURE_VALIDITY_SECONDS": "6",  # an order whose every attempt failed is failed 6 + 5 s after building
    # One user places every order and follows each on a connection of its own: far above a trader's limits.
    "RATE_LIMIT_PER_SECOND": "1000",
    "RATE_LIMIT_BURST": "1000",
    "WS_MAX_CONNECTIONS_PER_USER": "0",
}


class TestServers:
    """PostgreSQL, Valkey and moto on free ports, each restartable."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self) -> None:
        self.base = scratch_dir("faults-")
        logs = self.base / "logs"
        self.by_name = {
            "postgres": PostgresServer(self.base / "postgres", free_port(), logs),
            "valkey": ValkeyServer(self.base / "valkey", free_port(), logs),
            "emulator": MotoServer(free_port(), logs),
        }

    def start(self) -> TestServers:
        for server in self.by_name.values():
            server.launch()
        for server in self.by_name.values():
            server.wait_ready()
        return self

    def restart(self, name: str, down_for: float = 1.0) -> None:
        """Stops the server as its operator would (PostgreSQL: fast shutdown) and starts it again."""
        server = self.by_name[name]
        server.child.stop()
        time.sleep(down_for)
        server.launch()
        server.wait_ready()

    def stop(self) -> None:
        for server in self.by_name.values():
            if server.child:
                server.child.stop()
        shutil.rmtree(self.by_name["postgres"].data_dir, ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def cloud_env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.by_name["postgres"].url,
            "REDIS_URL": self.by_name["valkey"].url,
            "AWS_ENDPOINT_URL": self.by_name["emulator"].url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }

    def sqs(self):
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                        region_name="us-east-1")
        return session.client("sqs", endpoint_url=self.by_name["emulator"].url)


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(USER, LOCAL_JWT_SECRET)}"}


class Subscriber:
    """One WebSocket connection following many orders; it reconnects and subscribes again when the connection
    closes, and with ``drop_every`` it closes the connection itself at random moments."""

    def __init__(self, ws_url: str, drop_every: tuple[float, float] | None = None, seed: int = 0):
        self.url = f"{ws_url}?token={issue_token(USER, LOCAL_JWT_SECRET)}"
        self.drop_every = drop_every
        self.rng = random.Random(seed)
        self.frames: dict[str, list[tuple[int, str]]] = {}  # order id -> (seq, status) in arrival order
        self.done: set[str] = set()
        self.connections = 0
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stopped = asyncio.Event()

    def follow(self, order_id: str) -> None:
        self.frames.setdefault(order_id, [])
        if self._ws is not None and not self._ws.closed:
            asyncio.ensure_future(self._subscribe(self._ws, order_id))

    def finished(self) -> bool:
        return set(self.frames) <= self.done

    def stop(self) -> None:
        self._stopped.set()

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse, order_id: str) -> None:
        try:
            await ws.send_json({"action": "subscribe", "orderId": order_id})
        except (ConnectionError, RuntimeError):
            pass  # the connection is going; the next one subscribes again

    async def run(self, session: aiohttp.ClientSession) -> None:
        while not self._stopped.is_set():
            try:
                async with session.ws_connect(self.url, heartbeat=None) as ws:
                    self.connections += 1
                    self._ws = ws
                    for order_id in list(self.frames):
                        if order_id not in self.done:
                            await self._subscribe(ws, order_id)
                    await self._read(ws)
            except (TimeoutError, aiohttp.ClientError, ConnectionError):
                pass  # refused while a dependency restarts, or dropped: connect again
            finally:
                self._ws = None
            if not self._stopped.is_set():
                await asyncio.sleep(0.2)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        drop_at = time.monotonic() + self.rng.uniform(*self.drop_every) if self.drop_every else None
        while not self._stopped.is_set():
            timeout = 0.5 if drop_at is None else max(0.01, min(0.5, drop_at - time.monotonic()))
            try:
                message = await ws.receive(timeout=timeout)
            except TimeoutError:
                if drop_at is not None and time.monotonic() >= drop_at:
                    return  # leaving the context closes the connection mid-stream, on purpose
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                return
            frame = json.loads(message.data)
            if frame.get("type") == "order.update":
                self.frames.setdefault(frame["orderId"], []).append((frame["seq"], frame["status"]))
                if frame["status"] in FINAL:
                    self.done.add(frame["orderId"])
            elif frame.get("type") == "error" and frame.get("action") == "subscribe" and frame.get("orderId"):
                await asyncio.sleep(0.3)
                await self._subscribe(ws, frame["orderId"])

    def saw_complete_sequence(self, order_id: str, statuses: list[str]) -> bool:
        """Every status exactly once and in order, after dropping duplicates by seq."""
        seen: set[int] = set()
        kept = []
        for seq, status in self.frames.get(order_id, []):
            if seq not in seen:
                seen.add(seq)
                kept.append((seq, status))
        return kept == list(enumerate(statuses, start=1))


@dataclass
class Report:
    case: str
    accepted: int = 0
    refused: Counter = field(default_factory=Counter)  # answers that were retried: 503s, 409s, broken connections
    given_up: Counter = field(default_factory=Counter)  # submissions never accepted
    exactly_one_final: int = 0
    confirmed: int = 0
    failed: int = 0
    confirmed_with_one_swap: int = 0
    multi_leg: int = 0  # confirmed orders whose one transaction had several legs (a split or a hop)
    expects_multi_leg: bool = False  # the load sends orders that split or hop: some must have
    swaps_for_failed: int = 0
    stuck: int = 0
    subscribers_complete: int = 0
    reconnections: int = 0
    incomplete: list = field(default_factory=list)  # (order id, frames received, statuses stored) for the first few
    faults: str = ""
    seconds: float = 0.0

    @property
    def subscriber_fraction(self) -> float:
        return self.subscribers_complete / self.accepted if self.accepted else 0.0

    def tally(self, order_id: str, view: dict, swaps: list[dict], follower: Subscriber,
              swap_ok: Callable[[dict, dict], bool] = lambda view, swap: True) -> None:
        """Counts one order as the engine stored it (``view``), the venues' ledger for it, and what its subscriber
        saw. A confirmed order needs exactly one swap (that ``swap_ok``); any other final status none."""
        statuses = [e["status"] for e in view["events"]]
        finals = [s for s in statuses if s in FINAL]
        self.exactly_one_final += len(finals) == 1 and statuses[-1] == finals[0] == view["status"]
        if view["status"] not in FINAL:
            self.stuck += 1
            if len(self.incomplete) < 3:
                self.incomplete.append((order_id, "stuck", [(e["status"], e["at"], e["data"]) for e in view["events"]]))
        elif view["status"] == "confirmed":
            self.confirmed += 1
            self.confirmed_with_one_swap += len(swaps) == 1 and swap_ok(view, swaps[0]) and _whole(swaps[0])
            self.multi_leg += len(swaps) == 1 and len(swaps[0]["legs"]) > 1
        else:  # failed, cancelled or expired: no swap may have landed
            self.failed += 1
            self.swaps_for_failed += len(swaps)
        complete = follower.saw_complete_sequence(order_id, statuses)
        self.subscribers_complete += complete
        if not complete and len(self.incomplete) < 3:
            self.incomplete.append((order_id, follower.frames.get(order_id), statuses))

    def perfect(self) -> bool:
        return (self.accepted > 0 and not self.given_up and self.exactly_one_final == self.accepted
                and self.confirmed_with_one_swap == self.confirmed and self.swaps_for_failed == 0
                and self.stuck == 0 and self.subscribers_complete == self.accepted
                and (self.multi_leg > 0 or not self.expects_multi_leg))

    ROW = "{:<34} {:>8} {:>8} {:>10} {:>12} {:>9} {:>11} {:>6} {:>11}  {}"

    @classmethod
    def header(cls) -> str:
        return cls.ROW.format("case", "accepted", "retried", "one final", "1 swap/conf", "multi-leg", "swaps/failed",
                              "stuck", "subscribers", "faults injected")

    def row(self) -> str:
        return self.ROW.format(
            self.case, self.accepted, sum(self.refused.values()), self.exactly_one_final,
            f"{self.confirmed_with_one_swap}/{self.confirmed}", self.multi_leg,
            f"{self.swaps_for_failed}/{self.failed}", self.stuck, f"{self.subscriber_fraction:.1%}", self.faults,
        )


def _whole(swap: dict) -> bool:
    """A transaction's legs add up to its totals: the routes' first legs sell its input, their last legs buy its
    output, and each hop's output is the next leg's input."""
    legs = swap["legs"]
    firsts = [leg for leg in legs if leg["tokenIn"] == swap["tokenIn"]]
    lasts = [leg for leg in legs if leg["tokenOut"] == swap["tokenOut"]]
    hops_chain = all(nxt["amountIn"] == leg["amountOut"] for leg, nxt in zip(legs, legs[1:], strict=False)
                     if leg["tokenOut"] != swap["tokenOut"])
    return (sum(int(leg["amountIn"]) for leg in firsts) == int(swap["amountIn"])
            and sum(int(leg["amountOut"]) for leg in lasts) == int(swap["amountOut"]) and hops_chain)


Hook = Callable[[str], Awaitable[None]]


async def run_load(
    http: str,
    ws: str,
    case: str,
    orders: int = 200,
    rate_per_s: float = 40,
    subscribers: int = 8,
    drop_every: tuple[float, float] | None = None,
    on_accepted: Hook | None = None,
    settle_timeout_s: float = 90,
) -> Report:
    """Submits ``orders`` at ``rate_per_s``, waits for every accepted order to end (or the timeout), then
    measures."""
    report = Report(case, expects_multi_leg=True)
    started = time.monotonic()
    rng = random.Random(case)
    followers = [Subscriber(ws, drop_every, seed=n) for n in range(subscribers)]
    accepted: list[str] = []
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        readers = [asyncio.create_task(f.run(session)) for f in followers]
        await asyncio.sleep(0.3)  # let them connect

        async def submit(n: int) -> None:
            token_in, token_out, amount = PAIRS[n % len(PAIRS)]
            # Every 7th order tolerates 0.01 %: when another swap moves its pool first, it fails (with no swap).
            body = {"tokenIn": token_in, "tokenOut": token_out, "amountIn": amount,
                    "slippageBps": 1 if n % 7 == 0 else 300}
            order_id = await place_as_a_careful_bot(session, http, body, f"{case}-{n}", report)
            if order_id is None:
                return
            accepted.append(order_id)
            followers[n % len(followers)].follow(order_id)
            if on_accepted is not None:
                await on_accepted(order_id)

        submissions = []
        for n in range(orders):
            submissions.append(asyncio.create_task(submit(n)))
            await asyncio.sleep(rng.expovariate(rate_per_s))
        await asyncio.gather(*submissions)

        deadline = time.monotonic() + settle_timeout_s
        while time.monotonic() < deadline and not all(f.finished() for f in followers):
            await asyncio.sleep(0.2)
        await tally_all(session, http, report, list(accepted), followers, readers)
        report.reconnections = sum(f.connections for f in followers) - len(followers)
    report.seconds = time.monotonic() - started
    return report


SwapCheck = Callable[[str, dict, dict], bool]  # (order id, its view, its swap): whether the swap was allowed


async def tally_all(session: aiohttp.ClientSession, http: str, report: Report, order_ids: list[str],
                    followers: list[Subscriber], readers: list[asyncio.Task],
                    swap_ok: SwapCheck = lambda order_id, view, swap: True) -> None:
    """Stops the subscribers (after the duplicates still on their way, which are part of what is measured) and counts
    every accepted order as the engine stored it, with its swaps and what its subscriber saw."""
    await asyncio.sleep(0.5)
    for follower in followers:
        follower.stop()
    await asyncio.gather(*readers)
    report.accepted = len(order_ids)
    by_order = {oid: f for f in followers for oid in f.frames}
    for order_id in order_ids:
        view = await _get_json(session, f"{http}/orders/{order_id}", _auth())
        swaps = (await _get_json(session, f"{http}/dex/swaps?orderId={order_id}", {}))["swaps"]
        report.tally(order_id, view, swaps, by_order[order_id],
                     swap_ok=lambda view, swap, order_id=order_id: swap_ok(order_id, view, swap))


async def place_as_a_careful_bot(session: aiohttp.ClientSession, http: str, body: dict, key: str,
                                 report: Report) -> str | None:
    """Places an order as a careful bot does: what is not accepted (409, 503, a broken connection) is retried under
    one Idempotency-Key, for about a minute (longer than an in-progress key's expiry, 30 s). The order's id, or None
    (counted in ``report.given_up``)."""
    headers = {**_auth(), "Idempotency-Key": key}
    for attempt in range(40):
        try:
            async with session.post(f"{http}/orders", json=body, headers=headers) as response:
                if response.status == 202:
                    return (await response.json())["orderId"]
                if response.status not in (409, 503):
                    report.given_up[response.status] += 1
                    return None
                report.refused[response.status] += 1
        except (TimeoutError, aiohttp.ClientError) as error:
            report.refused[type(error).__name__] += 1
        await asyncio.sleep(min(2.0, 0.25 * 1.5**attempt))
    report.given_up["retries exhausted"] += 1
    return None


def run_case(http: str, ws: str, case: str, fault: Callable[[], str] | None = None,
             load_with: Callable[..., Awaitable[Report]] = run_load, **options) -> Report:
    """The load (market orders, or ``load_with``'s) runs in a thread of its own while ``fault`` runs here: servers
    must be started from the main thread (a child gets its parent-death signal when the thread that started it
    exits)."""
    outcome: dict[str, Report | BaseException] = {}

    def load() -> None:
        try:
            outcome["report"] = asyncio.run(load_with(http, ws, case, **options))
        except BaseException as error:  # re-raised in the test's thread
            outcome["report"] = error

    thread = threading.Thread(target=load, name=f"load-{case}")
    thread.start()
    try:
        injected = fault() if fault else ""
    finally:
        thread.join(timeout=300)
    report = outcome.get("report")
    if not isinstance(report, Report):
        raise report or RuntimeError("the load did not finish within 300 s")
    report.faults = injected
    return report


async def _get_json(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> dict:
    for _ in range(50):  # the fault may still be settling
        async with session.get(url, headers=headers) as response:
            if response.status == 200:
                return await response.json()
            if response.status != 503:
                raise AssertionError(f"GET {url} answered {response.status}: {await response.text()}")
        await asyncio.sleep(0.2)
    raise AssertionError(f"GET {url} kept answering 503")


def count_in_log(path: Path, text: str) -> int:
    return path.read_text(errors="replace").count(text) if path.exists() else 0
