"""order-engine: place, watch and cancel orders from a terminal, on the engine's public API.

Exit status: 0 when every watched order is confirmed (or the command succeeded), 1 when one failed, expired or was
cancelled (or a watch timed out), 2 on bad usage or an error from the API (its detail printed, never a traceback)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
from rich.console import Console
from rich.live import Live
from rich.table import Table

from .api import ApiError, Client, Endpoint

LOCAL_URL = "http://127.0.0.1:8000"
LOCAL_WS_URL = "ws://127.0.0.1:8001/api"
FINAL = {"confirmed", "failed", "expired", "cancelled"}
EXIT_OK, EXIT_ORDER_NOT_FILLED, EXIT_USAGE = 0, 1, 2

Command = Callable[[Client, argparse.Namespace, "Output"], Coroutine[Any, Any, int]]


class Output:
    """What the command prints: tables and lines for people, or (``--json``) one JSON object per line."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)

    def json(self, value: Any) -> None:
        print(json.dumps(value, separators=(",", ":")), flush=True)

    def show(self, value: Any, table: Callable[[Any], Table | str]) -> None:
        if self.as_json:
            self.json(value)
        else:
            self.console.print(table(value))


# The commands ---------------------------------------------------------------------------------------------------

async def token(client: Client, args: argparse.Namespace, out: Output) -> int:
    answer = await client.call("POST", "/local/tokens", {"user": args.user, **({"scope": args.scope} if args.scope
                                                                                 else {})}, auth=False)
    out.show(answer, lambda a: a["token"])
    return EXIT_OK


async def quote(client: Client, args: argparse.Namespace, out: Output) -> int:
    params = {"tokenIn": args.token_in, "tokenOut": args.token_out, "amountIn": args.amount,
              "slippageBps": str(args.slippage_bps), "routing": args.routing}
    out.show(await client.call("GET", "/quote", params=params, auth=False), _quote_table)
    return EXIT_OK


async def place(client: Client, args: argparse.Namespace, out: Output) -> int:
    accepted = await client.call("POST", "/orders", _order_body(args))
    if out.as_json:
        out.json(accepted)
    else:
        out.console.print(f"accepted {accepted['orderId']} ({args.kind} {args.amount} {args.token_in} → "
                          f"{args.token_out})")
    if not args.watch:
        return EXIT_OK
    return await _watch(client, [accepted["orderId"]], out, args.timeout)


async def watch(client: Client, args: argparse.Namespace, out: Output) -> int:
    return await _watch(client, args.order_ids, out, args.timeout)


async def orders(client: Client, args: argparse.Namespace, out: Output) -> int:
    params = {k: v for k, v in {"status": args.status, "type": args.type, "limit": str(args.limit)}.items() if v}
    out.show(await client.call("GET", "/orders", params=params), _orders_table)
    return EXIT_OK


async def cancel(client: Client, args: argparse.Namespace, out: Output) -> int:
    answer = await client.call("DELETE", f"/orders/{args.order_id}")
    out.show(answer, lambda o: f"{o['orderId']} {o['status']}")
    return EXIT_OK


async def pools(client: Client, args: argparse.Namespace, out: Output) -> int:
    out.show(await client.call("GET", "/pools", auth=False), _pools_table)
    return EXIT_OK


async def tail(client: Client, args: argparse.Namespace, out: Output) -> int:
    """Every update of every order of the account as it happens (and, with --since, what came before)."""
    subscribe: dict[str, Any] = {"action": "subscribeAccount", **({"since": args.since} if args.since else {})}
    shown = 0
    started = time.monotonic()

    async def follow() -> None:
        nonlocal shown
        async for frame in client.stream(subscribe):
            if frame.get("type") == "error":
                raise _frame_error(frame)
            if frame.get("type") not in ("order.created", "order.update"):
                continue
            if out.as_json:
                out.json(frame)
            else:
                out.console.print(_tail_line(frame))
            shown += 1
            if args.count and shown >= args.count:
                return

    try:
        await asyncio.wait_for(follow(), args.timeout)
    except TimeoutError:
        pass
    if not out.as_json:
        out.errors.print(f"[dim]{shown} updates in {time.monotonic() - started:.1f} s[/dim]")
    return EXIT_OK


async def launch(client: Client, args: argparse.Namespace, out: Output) -> int:
    if args.what == "token":
        body: dict[str, Any] = {"symbol": args.symbol, "decimals": args.decimals}
        body.update({k: v for k, v in {"mint": args.mint, "mintAuthority": args.mint_authority,
                                       "freezeAuthority": args.freeze_authority}.items() if v})
        answer = await client.call("POST", "/dex/tokens", body)
        out.show(answer, lambda t: f"{t['symbol']} {t['mint']} ({t['decimals']} decimals; mint authority "
                                   f"{t['mintAuthority']}, freeze authority {t['freezeAuthority']})")
    else:
        body = {"venue": args.venue, "base": args.base, "quote": args.quote, "baseAmount": args.base_amount,
                "quoteAmount": args.quote_amount}
        body.update({k: v for k, v in {"openTime": args.open_time, "binStep": args.bin_step}.items() if v})
        answer = await client.call("POST", "/dex/pools", body)
        out.show(answer, lambda p: f"{p['poolId']} opens at {p['openTime']} at {p['price']}")
    return EXIT_OK


# Watching orders ------------------------------------------------------------------------------------------------

class Watched:
    def __init__(self, order_id: str):
        self.order_id = order_id
        self.status = "?"
        self.seq = 0
        self.venue = ""
        self.venue_ms: int | None = None
        self.started = time.monotonic()
        self.ended: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started


async def _watch(client: Client, order_ids: list[str], out: Output, timeout: float) -> int:
    """Follows the orders over the WebSocket (a subscription replays each from its first update) until every one
    ends: each update is printed as it arrives, with a live table of the orders while a person watches."""
    watched = {order_id: Watched(order_id) for order_id in order_ids}
    live = Live(_watch_table(watched), console=out.console, refresh_per_second=10, transient=True) \
        if out.console.is_terminal and not out.as_json else None

    async def follow() -> None:
        subscribe = [{"action": "subscribe", "orderId": order_id} for order_id in order_ids]
        async for frame in client.stream(*subscribe):
            if frame.get("type") == "error":
                raise _frame_error(frame)
            if frame.get("type") != "order.update" or frame["orderId"] not in watched:
                continue
            order = watched[frame["orderId"]]
            if frame["seq"] <= order.seq:
                continue  # a repeat after a resubscription
            order.status, order.seq = frame["status"], frame["seq"]
            order.venue = frame["data"].get("venue") or order.venue
            order.venue_ms = frame["data"].get("venueMs", order.venue_ms)
            if order.status in FINAL:
                order.ended = time.monotonic()
            if out.as_json:
                out.json(frame)
            else:
                out.console.print(_update_line(order, frame))
            if live is not None:
                live.update(_watch_table(watched))
            if all(o.ended for o in watched.values()):
                return

    try:
        if live is not None:
            with live:
                await asyncio.wait_for(follow(), timeout)
        else:
            await asyncio.wait_for(follow(), timeout)
    except TimeoutError:
        waiting = [o for o in watched.values() if not o.ended]
        out.errors.print(f"timed out after {timeout:g} s: " + ", ".join(f"{o.order_id} {o.status}" for o in waiting))
        return EXIT_ORDER_NOT_FILLED
    if not out.as_json:
        out.console.print(_watch_table(watched))
    return EXIT_OK if all(o.status == "confirmed" for o in watched.values()) else EXIT_ORDER_NOT_FILLED


def _update_line(order: Watched, frame: dict[str, Any]) -> str:
    data = frame["data"]
    details = [f"seq {frame['seq']}", frame["status"]]
    if order.venue:
        details.append(order.venue)
    if data.get("venueMs") is not None:
        details.append(f"venue {data['venueMs']} ms")
    for key in ("amountOut", "reason", "error", "failureReason", "retryInSeconds"):
        if data.get(key) is not None:
            details.append(f"{key} {data[key]}")
    return f"{frame['at'][11:23]}  {frame['orderId']}  " + "  ".join(details) + f"  +{order.elapsed:.2f} s"


def _watch_table(watched: dict[str, Watched]) -> Table:
    table = Table("order", "status", "seq", "venue", "venue ms", "time", title="orders")
    for order in watched.values():
        table.add_row(order.order_id, order.status, str(order.seq), order.venue,
                      "" if order.venue_ms is None else str(order.venue_ms), f"{order.elapsed:.2f} s")
    return table


def _frame_error(frame: dict[str, Any]) -> ApiError:
    problem = frame.get("error") or {}
    return ApiError(problem.get("status", 0), problem.get("detail", "the WebSocket refused the request"),
                    problem.get("errors"))


# Rendering --------------------------------------------------------------------------------------------------------

def _quote_table(quote: dict[str, Any]) -> Table:
    table = Table("leg", "venue", "pool", "in", "out", "fee", "impact %", "share %",
                  title=f"{quote['inAmount']} {quote['tokenIn']} → {quote['outAmount']} {quote['tokenOut']} "
                        f"via {quote['venue']} (min {quote['otherAmountThreshold']}, gain "
                        f"{quote['gainBps'] if quote['gainBps'] is not None else '-'} bp)")
    for n, leg in enumerate(quote["routePlan"], 1):
        table.add_row(str(n), leg["venue"], leg["poolId"], f"{leg['inAmount']} {leg['tokenIn']}",
                      f"{leg['outAmount']} {leg['tokenOut']}", leg["fee"], leg["priceImpactPct"], leg["percent"])
    return table


def _orders_table(page: dict[str, Any]) -> Table:
    table = Table("order", "type", "status", "pair", "in", "venue", "out", "created")
    for o in page["orders"]:
        out = (o.get("execution") or {}).get("amountOut", "")
        table.add_row(o["orderId"], o["type"], o["status"], f"{o['tokenIn']}→{o['tokenOut']}", o["amountIn"],
                      o["venue"] or "", out, o["createdAt"][:19])
    return table


def _pools_table(answer: dict[str, Any]) -> Table:
    table = Table("pool", "venue", "price", "fee bp", "base", "quote")
    for p in answer["pools"]:
        table.add_row(p["id"], p["venue"], p["price"], p["feeBps"], f"{p['reserves']['base']} {p['base']}",
                      f"{p['reserves']['quote']} {p['quote']}")
    return table


def _tail_line(frame: dict[str, Any]) -> str:
    if frame["type"] == "order.created":
        return (f"{frame['at'][11:23]}  {frame['orderId']}  created  {frame['orderType']} {frame['amountIn']} "
                f"{frame['tokenIn']} → {frame['tokenOut']}")
    venue = frame["data"].get("venue")
    return f"{frame['at'][11:23]}  {frame['orderId']}  seq {frame['seq']}  {frame['status']}" + (
        f"  {venue}" if venue else "")


def _order_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"type": args.kind, "tokenIn": args.token_in, "tokenOut": args.token_out,
                            "amountIn": args.amount}
    options = {"slippageBps": args.slippage_bps, "clientOrderId": args.client_order_id, "routing": args.routing}
    if args.kind == "limit":
        options.update(limitPrice=args.limit_price, minAmountOut=args.min_amount_out, timeInForce=args.tif,
                       expiresAt=args.expires_at)
    elif args.kind == "sniper":
        options.update(expiresAt=args.expires_at, maxPrice=args.max_price)
    body.update({k: v for k, v in options.items() if v is not None})
    return body


# The command line -------------------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="order-engine", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    root.add_argument("--url", default=os.environ.get("ORDER_ENGINE_URL", LOCAL_URL),
                      help="the REST API (ORDER_ENGINE_URL; default the local cloud's)")
    root.add_argument("--ws-url", default=os.environ.get("ORDER_ENGINE_WS_URL", LOCAL_WS_URL),
                      help="the WebSocket API (ORDER_ENGINE_WS_URL; default the local cloud's)")
    root.add_argument("--token", default=os.environ.get("ORDER_ENGINE_TOKEN"),
                      help="a bearer token (ORDER_ENGINE_TOKEN)")
    root.add_argument("--json", action="store_true", help="one JSON object per line, as the API sent it")
    commands = root.add_subparsers(dest="command", required=True, metavar="command")

    def command(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    sub = command("token", token, "a token for a user name, minted by the local stage")
    sub.add_argument("user")
    sub.add_argument("--scope", help="e.g. dex:admin, orders:read")
    sub = command("quote", quote, "what an order would get now, and its route")
    _pair(sub)
    sub.add_argument("--slippage-bps", type=int, default=50)
    sub.add_argument("--routing", choices=("smart", "single"), default="smart")

    placing = command("place", place, "place an order").add_subparsers(dest="kind", required=True, metavar="type")
    for kind in ("market", "limit", "sniper"):
        sub = placing.add_parser(kind, help=f"a {kind} order")
        sub.set_defaults(run=place)
        _pair(sub)
        sub.add_argument("--client-order-id")
        sub.add_argument("--watch", action="store_true", help="follow it until it ends")
        sub.add_argument("--timeout", type=float, default=300, help="seconds --watch waits at most (default 300)")
        if kind != "limit":
            sub.add_argument("--slippage-bps", type=int)
        else:
            sub.set_defaults(slippage_bps=None)
        if kind != "sniper":
            sub.add_argument("--routing", choices=("smart", "single"))
        else:
            sub.set_defaults(routing=None)
        if kind == "limit":
            sub.add_argument("--limit-price")
            sub.add_argument("--min-amount-out")
            sub.add_argument("--tif", choices=("GTC", "GTD", "IOC", "FOK"))
            sub.add_argument("--expires-at", help="ISO 8601 with a timezone (GTD)")
        if kind == "sniper":
            sub.add_argument("--expires-at", required=True, help="ISO 8601 with a timezone")
            sub.add_argument("--max-price")

    sub = command("watch", watch, "follow orders until they end")
    sub.add_argument("order_ids", nargs="+", metavar="ID")
    sub.add_argument("--timeout", type=float, default=300)
    sub = command("orders", orders, "your orders, newest first")
    sub.add_argument("--status")
    sub.add_argument("--type")
    sub.add_argument("--limit", type=int, default=20)
    sub = command("cancel", cancel, "cancel an order not yet submitted")
    sub.add_argument("order_id", metavar="ID")
    command("pools", pools, "every pool with its price and reserves")
    sub = command("tail", tail, "every update of every order of yours, live")
    sub.add_argument("--since", help="first what came since this time (the at of the last update you saw)")
    sub.add_argument("--count", type=int, help="stop after this many updates")
    sub.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")

    launching = command("launch", launch, "list a token or open a pool (a dex:admin token)").add_subparsers(
        dest="what", required=True, metavar="token|pool")
    sub = launching.add_parser("token", help="list a token")
    sub.add_argument("symbol")
    sub.add_argument("--decimals", type=int, default=6)
    sub.add_argument("--mint")
    sub.add_argument("--mint-authority", choices=("active", "revoked"))
    sub.add_argument("--freeze-authority", choices=("active", "revoked"))
    sub = launching.add_parser("pool", help="open a pool")
    for name in ("venue", "base", "quote", "base_amount", "quote_amount"):
        sub.add_argument(name)
    sub.add_argument("--open-time", help="ISO 8601 with a timezone (default now)")
    sub.add_argument("--bin-step", type=int, help="Meteora only")
    return root


def _pair(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("token_in", metavar="TOKEN_IN")
    sub.add_argument("token_out", metavar="TOKEN_OUT")
    sub.add_argument("amount", metavar="AMOUNT", help="in TOKEN_IN's own units, e.g. 1.5")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # bad usage exits 2 with argparse's message
    out = Output(args.json)
    endpoint = Endpoint(args.url, args.ws_url, args.token)

    async def run() -> int:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return int(await args.run(Client(endpoint, session), args, out))

    try:
        return asyncio.run(run())
    except ApiError as error:
        out.errors.print(str(error), markup=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_ORDER_NOT_FILLED
    except BrokenPipeError:  # the reader left (| head): nothing more to say, and nothing to say it to
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
