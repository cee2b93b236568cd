"""The bad-input suite: garbage over HTTP and WebSocket must get a precise 4xx, never a 5xx, and never place or
execute an order. Prints how many cases got the expected answer, how many a 5xx, and how many created an order."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt
import pytest

from chalicelib.auth import issue_token
from chalicelib.domain.tokens import new_mint_address
from chalicelib.settings import LOCAL_JWT_SECRET
from tests.e2e.conftest import SUMMARIES, running_cloud

pytestmark = pytest.mark.slow

ATTACKER = "mallory"
VICTIM = "alice"
ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100}
NOW = datetime.now(UTC)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def signed(claims: dict[str, Any], secret: str = LOCAL_JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


GOOD = bearer(issue_token(ATTACKER, LOCAL_JWT_SECRET))
READ_ONLY = bearer(issue_token(ATTACKER, LOCAL_JWT_SECRET, scope="orders:read"))
LATER = NOW + timedelta(hours=1)
FORGED_TOKENS = {
    "no token": None,
    "empty bearer": "",
    "not a jwt": "garbage",
    "wrong secret": signed({"sub": VICTIM, "exp": LATER}, secret="another-secret-that-is-long-enough-32b"),
    "alg none": jwt.encode({"sub": VICTIM, "exp": LATER}, None, algorithm="none"),
    "expired": signed({"sub": ATTACKER, "exp": NOW - timedelta(minutes=1)}),
    "no sub": signed({"exp": LATER}),
    "empty sub": signed({"sub": "", "exp": LATER}),
    "numeric sub": signed({"sub": 42, "exp": LATER}),
    "no exp": signed({"sub": ATTACKER}),
    "HS512": signed({"sub": ATTACKER, "exp": LATER}, algorithm="HS512"),
    "tampered payload": issue_token(ATTACKER, LOCAL_JWT_SECRET).rsplit(".", 2)[0] + ".eyJzdWIiOiJhbGljZSJ9."
                        + issue_token(ATTACKER, LOCAL_JWT_SECRET).rsplit(".", 1)[1],
}


@dataclass
class Case:
    name: str
    expected: int
    method: str = "POST"
    path: str = "/orders"
    body: Any = None  # a dict or list goes as JSON, bytes as they are
    headers: dict[str, str] = field(default_factory=lambda: dict(GOOD))


LIMIT = {"type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "limitPrice": "1000"}


def _limit(**change: Any) -> dict[str, Any]:
    return {k: v for k, v in {**LIMIT, **change}.items() if v is not None}


def limit_cases() -> list[Case]:
    ahead = lambda **delta: (datetime.now(UTC) + timedelta(**delta)).isoformat()  # noqa: E731
    return [
        Case("limit: both limitPrice and minAmountOut", 422, body=_limit(minAmountOut="1500")),
        Case("limit: neither limitPrice nor minAmountOut", 422, body=_limit(limitPrice=None)),
        *(Case(f"limit: limitPrice {value!r}", 422, body=_limit(limitPrice=value)) for value in [
            "0", "-1", -5, "NaN", "Infinity", "1e3", "150.0000001", True, "", "abc"]),
        *(Case(f"limit: minAmountOut {value!r}", 422, body=_limit(limitPrice=None, minAmountOut=value))
          for value in ["0", "-1", "0.0000001", "99999999999"]),  # the last: more than every pool holds
        *(Case(f"limit: timeInForce {value!r}", 422, body=_limit(timeInForce=value)) for value in [
            "DAY", "gtc", 1, ""]),
        *(Case(f"limit: expiresAt with {tif}", 422, body=_limit(timeInForce=tif, expiresAt=ahead(hours=1)))
          for tif in ("GTC", "IOC", "FOK")),
        Case("limit: GTD without expiresAt", 422, body=_limit(timeInForce="GTD")),
        Case("limit: GTD without a timezone", 422, body=_limit(timeInForce="GTD",
                                                               expiresAt=ahead(hours=1).split("+")[0])),
        Case("limit: GTD in the past", 422, body=_limit(timeInForce="GTD", expiresAt=ahead(minutes=-1))),
        Case("limit: GTD beyond 30 days", 422, body=_limit(timeInForce="GTD", expiresAt=ahead(days=31))),
        Case("limit: GTD not a time", 422, body=_limit(timeInForce="GTD", expiresAt="tomorrow")),
        Case("limit: slippageBps", 422, body=_limit(slippageBps=100)),
        Case("limit: an unlisted pair", 422, body=_limit(tokenOut="USDT", tokenIn="USDC")),
        *(Case(f"direct swap: {name}", 422, "POST", "/dex/swaps", body=body) for name, body in [
            ("an unknown pool", {"poolId": "raydium-btc-usdc", "tokenIn": "USDC", "amountIn": "1"}),
            ("a token the pool does not trade", {"poolId": "raydium-sol-usdc", "tokenIn": "JUP", "amountIn": "1"}),
            ("no token", {"poolId": "raydium-sol-usdc", "amountIn": "1"}),
            ("no pool", {"tokenIn": "SOL", "amountIn": "1"}),
            ("a negative amount", {"poolId": "raydium-sol-usdc", "tokenIn": "SOL", "amountIn": "-1"}),
            ("too many decimals", {"poolId": "raydium-sol-usdc", "tokenIn": "USDC", "amountIn": "1.0000001"}),
            ("more than the pool's bins hold", {"poolId": "meteora-sol-usdc", "tokenIn": "SOL",
                                                "amountIn": "999999999"}),
            ("an extra field", {"poolId": "raydium-sol-usdc", "tokenIn": "SOL", "amountIn": "1", "memo": "x"}),
        ]),
        Case("direct swap without a token", 401, "POST", "/dex/swaps", headers={"Content-Type": "application/json"},
             body={"poolId": "raydium-sol-usdc", "tokenIn": "SOL", "amountIn": "1"}),
    ]


def _amount(value: Any, token_in: str = "SOL", token_out: str = "USDC") -> dict[str, Any]:
    return {**ORDER, "amountIn": value, "tokenIn": token_in, "tokenOut": token_out}


INJECTIONS = ["SOL'; DROP TABLE orders;--", "<script>alert(1)</script>", "${jndi:ldap://x/a}", "../../etc/passwd",
              "SOL\u0000", "ＳＯＬ", "sol", "{{7*7}}", "SOL\nUSDC"]


ADMIN = bearer(issue_token(ATTACKER, LOCAL_JWT_SECRET, scope="dex:admin"))
# A mint no venue lists: the sniper would be accepted, were it not for the one field each case gets wrong.
SNIPER = {"type": "sniper", "tokenIn": "USDC", "tokenOut": new_mint_address(), "amountIn": "10"}


def _sniper(**change: Any) -> dict[str, Any]:
    body = {**SNIPER, "expiresAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat(), **change}
    return {k: v for k, v in body.items() if v is not None}


def sniper_cases() -> list[Case]:
    ahead = lambda **delta: (datetime.now(UTC) + timedelta(**delta)).isoformat()  # noqa: E731
    usdc_mint = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
    return [
        Case("sniper: an unknown symbol", 422, body=_sniper(tokenOut="NOPE")),
        *(Case(f"sniper: malformed mint {mint[:12]!r}", 422, body=_sniper(tokenOut=mint)) for mint in [
            "0OIl" * 10, "z" * 44, "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v!", "a" * 45, ""]),
        *(Case(f"sniper: tokenIn {token!r}", 422, body=_sniper(tokenIn=token)) for token in ["USDT", "JUP", "BTC"]),
        Case("sniper: tokenOut is tokenIn", 422, body=_sniper(tokenOut="USDC")),
        Case("sniper: tokenOut is tokenIn's mint", 422, body=_sniper(tokenOut=usdc_mint)),
        Case("sniper: no expiresAt", 422, body=_sniper(expiresAt=None)),
        Case("sniper: expiresAt 8 days ahead", 422, body=_sniper(expiresAt=ahead(days=8))),
        Case("sniper: expiresAt in the past", 422, body=_sniper(expiresAt=ahead(minutes=-1))),
        Case("sniper: expiresAt without a timezone", 422, body=_sniper(expiresAt="2030-01-01T00:00:00")),
        *(Case(f"sniper: delaySeconds {value!r}", 422, body=_sniper(delaySeconds=value))
          for value in [-1, 301, "5", 1.5, True]),
        Case("sniper: an unknown condition", 422, body=_sniper(conditions={"minLiquidty": "1"})),
        Case("sniper: conditions not an object", 422, body=_sniper(conditions=["minLiquidity"])),
        Case("sniper: requireMintRevoked 'yes'", 422, body=_sniper(conditions={"requireMintRevoked": "yes"})),
        *(Case(f"sniper: minLiquidity {value!r}", 422, body=_sniper(conditions={"minLiquidity": value}))
          for value in ["0", "-5", "abc", 0]),
        *(Case(f"sniper: maxPrice {value!r}", 422, body=_sniper(maxPrice=value)) for value in ["0", "-1", "abc"]),
        Case("sniper: slippageBps 0", 422, body=_sniper(slippageBps=0)),
        Case("sniper: a limit order's field", 422, body=_sniper(limitPrice="1")),
        Case("sniper: a pair already open", 409, body=_sniper(tokenOut="SOL")),
    ]


def routing_cases() -> list[Case]:
    quote = "/quote?tokenIn={}&tokenOut={}&amountIn=10"
    return [
        *(Case(f"routing {value!r}", 422, body={**ORDER, "routing": value}) for value in [
            "fast", "SINGLE", "", 1, None, ["single"]]),
        Case("a pair three hops apart (USDT-SOL-USDC-JUP)", 422, body={**ORDER, "tokenIn": "USDT", "tokenOut": "JUP"}),
        Case("routing single on a pair only a hop joins", 422,
             body={**ORDER, "tokenIn": "JUP", "tokenOut": "SOL", "routing": "single"}),
        Case("limit: a pair only a hop joins", 422, body=_limit(tokenIn="JUP", tokenOut="SOL")),
        Case("limit: routing 'fast'", 422, body=_limit(routing="fast")),
        Case("sniper: routing 'fast'", 422, body=_sniper(routing="fast")),
        Case("quote routing 'fast'", 422, "GET", quote.format("SOL", "USDC") + "&routing=fast", headers={}),
        Case("quote a pair three hops apart", 422, "GET", quote.format("USDT", "JUP"), headers={}),
        Case("quote routing single on a pair only a hop joins", 422, "GET",
             quote.format("JUP", "SOL") + "&routing=single", headers={}),
    ]


def client_order_id_cases() -> list[Case]:
    return [
        *(Case(f"clientOrderId {value!r}", 422, body={**ORDER, "clientOrderId": value}) for value in [
            "", "x" * 37, "has space", "ünï", "a/b", "a.b", 7, ["a"]]),
        Case("limit: clientOrderId too long", 422, body=_limit(clientOrderId="y" * 37)),
        Case("sniper: clientOrderId with a slash", 422, body=_sniper(clientOrderId="a/b")),
        Case("list by a malformed clientOrderId", 422, "GET", "/orders?clientOrderId=a%20b"),
        Case("an order by an unknown clientOrderId", 404, "GET", "/orders/by-client-id/never-used"),
        Case("cancel by an unknown clientOrderId", 404, "DELETE", "/orders/by-client-id/never-used"),
        Case("an order by clientOrderId without a token", 401, "GET", "/orders/by-client-id/x", headers={}),
    ]


def launch_cases() -> list[Case]:
    # A pool that would open, were it not for the one field each case gets wrong.
    pool = {"venue": "raydium", "base": "JUP", "quote": "USDT", "baseAmount": "10", "quoteAmount": "8.5"}
    ahead = lambda **delta: (datetime.now(UTC) + timedelta(**delta)).isoformat()  # noqa: E731
    token = {"symbol": "FRESH", "decimals": 6}
    return [
        Case("launch: a token without a token", 401, path="/dex/tokens", body=token, headers={}),
        Case("launch: a token with a trader's token", 403, path="/dex/tokens", body=token),
        Case("launch: a token with a read-only token", 403, path="/dex/tokens", body=token, headers=READ_ONLY),
        *(Case(f"launch: symbol {value!r}", 422, path="/dex/tokens", headers=ADMIN, body={**token, "symbol": value})
          for value in ["", "TOOLONGSYMBOL", "ME-ME", "MÉME", 5, None]),
        *(Case(f"launch: decimals {value!r}", 422, path="/dex/tokens", headers=ADMIN,
               body={**token, "decimals": value}) for value in [10, -1, "6", 6.5, None]),
        Case("launch: a malformed mint", 422, path="/dex/tokens", headers=ADMIN, body={**token, "mint": "0OIl" * 10}),
        Case("launch: mintAuthority 'maybe'", 422, path="/dex/tokens", headers=ADMIN,
             body={**token, "mintAuthority": "maybe"}),
        Case("launch: a taken symbol", 409, path="/dex/tokens", headers=ADMIN, body={**token, "symbol": "SOL"}),
        Case("launch: a taken symbol in another case", 409, path="/dex/tokens", headers=ADMIN,
             body={**token, "symbol": "usdc"}),
        Case("launch: a taken mint", 409, path="/dex/tokens", headers=ADMIN,
             body={**token, "mint": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"}),
        Case("launch: a pool with a trader's token", 403, path="/dex/pools", body=pool),
        Case("launch: a pool with base equal to quote", 422, path="/dex/pools", headers=ADMIN,
             body={**pool, "quote": "JUP"}),
        *(Case(f"launch: a pool with {field} {value!r}", 422, path="/dex/pools", headers=ADMIN,
               body={**pool, field: value}) for field, value in [
            ("baseAmount", "0"), ("quoteAmount", "0"), ("baseAmount", "-1"), ("venue", "orca"), ("base", "NOPE"),
            ("binStep", 25), ("openTime", ahead(days=-1)), ("openTime", ahead(days=8)),
            ("openTime", "2030-01-01T00:00:00"), ("baseAmount", "0.0000001")]),
        *(Case(f"launch: a Meteora pool with binStep {value!r}", 422, path="/dex/pools", headers=ADMIN,
               body={**pool, "venue": "meteora", "binStep": value}) for value in [0, 401, "25"]),
        Case("launch: a second Raydium JUP/USDC pool", 409, path="/dex/pools", headers=ADMIN,
             body={**pool, "quote": "USDC"}),
        Case("launch: a pool of a listed pair reversed", 409, path="/dex/pools", headers=ADMIN,
             body={**pool, "venue": "meteora", "base": "USDC", "quote": "SOL"}),
        Case("launch: revoke with a trader's token", 403, path="/dex/tokens/SOL/revoke", body={"authority": "mint"}),
        Case("launch: revoke an unknown token", 404, path="/dex/tokens/NOPE/revoke", headers=ADMIN,
             body={"authority": "mint"}),
        Case("launch: revoke an unknown authority", 422, path="/dex/tokens/SOL/revoke", headers=ADMIN,
             body={"authority": "owner"}),
        Case("launch: burn with a trader's token", 403, path="/dex/pools/raydium-sol-usdc/burn-lp"),
        Case("launch: burn an unknown pool", 404, path="/dex/pools/nope/burn-lp", headers=ADMIN),
    ]


def http_cases(victim_order: str) -> list[Case]:
    cases = [
        *(Case(f"amount {value!r}", 422, body=_amount(value)) for value in [
            "-1", "0", "0.0", -5, 0, "-0.000000001", "NaN", "nan", "Infinity", "-Infinity", "1e400", "1E3",
            "0x10", "1,5", " 1", "1 ", "", "abc", "1.5.5", "--1", "１", "½", "1.0000000001", "1000000001",
            "99999999999999999999999999999999999999", "1" * 65, True, None, [], {}, 1e-12]),
        Case("USDC amount with 7 decimals", 422, body=_amount("0.0000001", "USDC", "SOL")),
        Case("huge JSON number", 422, body=b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":1e400}'),
        Case("NaN literal", 400, body=b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":NaN}'),
        Case("Infinity literal", 400, body=b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":Infinity}'),
        *(Case(f"tokenIn {value!r}", 422, body={**ORDER, "tokenIn": value}) for value in [
            "BTC", "", "S" * 1000, 1, None, ["SOL"], *INJECTIONS]),
        Case("the same token twice", 422, body={**ORDER, "tokenOut": "SOL"}),
        Case("a pair no route joins", 422, body={**ORDER, "tokenIn": "JUP", "tokenOut": "USDT"}),
        *(Case(f"slippageBps {value!r}", 422, body={**ORDER, "slippageBps": value}) for value in [
            0, 5001, -1, "50", 50.5, True, None, 10**12]),
        *(Case(f"type {value!r}", 422, body={**ORDER, "type": value}) for value in ["limit", "MARKET", 1, None]),
        Case("missing tokenIn", 422, body={k: v for k, v in ORDER.items() if k != "tokenIn"}),
        Case("missing amountIn", 422, body={k: v for k, v in ORDER.items() if k != "amountIn"}),
        Case("empty object", 422, body={}),
        Case("extra field", 422, body={**ORDER, "price": "1"}),
        Case("someone else's user id", 422, body={**ORDER, "userId": VICTIM}),
        Case("an array", 422, body=[ORDER]),
        Case("a string", 422, body=b'"buy SOL"'),
        Case("a number", 422, body=b"123"),
        Case("null", 422, body=b"null"),
        Case("empty body", 400, body=b""),
        Case("truncated JSON", 400, body=b'{"tokenIn": "SOL"'),
        Case("not UTF-8", 400, body=b"\xff\xfe\xfa"),
        Case("deeply nested", 400, body=b"[" * 20_000 + b"]" * 20_000),
        Case("a 70 KB body", 413, body={**ORDER, "memo": "x" * 70_000}),
        Case("an 11 MB body", 413, body=b"{" + b" " * (11 * 1024 * 1024) + b"}"),
        *(Case(f"content type {value}", 415, body=json.dumps(ORDER).encode(),
               headers={**GOOD, "Content-Type": value}) for value in [
            "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
            "application/xml", "application/problem+json"]),
        Case("Idempotency-Key over 255 characters", 422, body=ORDER, headers={**GOOD, "Idempotency-Key": "k" * 300}),
        *(Case(f"token: {name}", 401, body=ORDER,
               headers={"Content-Type": "application/json",
                        **({"Authorization": f"Bearer {token}"} if token is not None else {})})
          for name, token in FORGED_TOKENS.items()),
        Case("Basic credentials", 401, body=ORDER, headers={**GOOD, "Authorization": "Basic YWxpY2U6c2VjcmV0"}),
        Case("read-only token places", 403, body=ORDER, headers=READ_ONLY),
        Case("read-only token cancels", 403, "DELETE", f"/orders/{victim_order}", headers=READ_ONLY),
        Case("another user's order", 404, "GET", f"/orders/{victim_order}"),
        Case("cancel another user's order", 404, "DELETE", f"/orders/{victim_order}"),
        Case("malformed id", 404, "GET", "/orders/not-a-uuid"),
        Case("uppercase id", 404, "GET", f"/orders/{victim_order.upper()}"),
        Case("SQL in the id", 404, "GET", "/orders/1%27%20OR%20%271%27%3D%271"),
        Case("a 1,000-character id", 404, "DELETE", "/orders/" + "a" * 1000),
        Case("list with limit 0", 422, "GET", "/orders?limit=0"),
        Case("list with limit 101", 422, "GET", "/orders?limit=101"),
        Case("list with limit abc", 422, "GET", "/orders?limit=abc"),
        Case("list with an unknown status", 422, "GET", "/orders?status=done"),
        Case("list with an unknown parameter", 422, "GET", "/orders?userId=alice"),
        Case("list with a forged cursor", 400, "GET", "/orders?cursor=eyJ1c2VyIjoiYWxpY2UifQ"),
        Case("list without a token", 401, "GET", "/orders", headers={}),
        Case("quote without parameters", 422, "GET", "/quote", headers={}),
        Case("quote a negative amount", 422, "GET", "/quote?tokenIn=SOL&tokenOut=USDC&amountIn=-1", headers={}),
        Case("quote the same token", 422, "GET", "/quote?tokenIn=SOL&tokenOut=SOL&amountIn=1", headers={}),
        Case("quote slippage 0", 422, "GET", "/quote?tokenIn=SOL&tokenOut=USDC&amountIn=1&slippageBps=0",
             headers={}),
        Case("quote an unknown token", 422, "GET", "/quote?tokenIn=DOGE&tokenOut=USDC&amountIn=1", headers={}),
        Case("swaps without an order id", 422, "GET", "/dex/swaps", headers={}),
        Case("swaps for an order id with a NUL byte", 422, "GET", "/dex/swaps?orderId=%26q%00s", headers={}),
        Case("swaps for a 200-character order id", 422, "GET", "/dex/swaps?orderId=" + "a" * 200, headers={}),
        Case("metrics without a token", 401, "GET", "/metrics", headers={}),
        Case("metrics with a trader's token", 403, "GET", "/metrics"),
        Case("metrics with a read-only token", 403, "GET", "/metrics", headers=READ_ONLY),
        Case("an unknown route", 404, "GET", "/admin", headers={}),
        Case("PUT on orders", 405, "PUT", "/orders", body=ORDER),
        Case("PATCH an order", 405, "PATCH", f"/orders/{victim_order}", body={"status": "confirmed"}),
        *limit_cases(),
        *sniper_cases(),
        *routing_cases(),
        *client_order_id_cases(),
        *launch_cases(),
    ]
    return cases


@dataclass
class WsCase:
    name: str
    expected: int  # the error frame's status, or the close code / refused handshake status
    message: str | None = None
    token: str | None = None  # for handshake cases


def ws_cases(victim_order: str) -> list[WsCase]:
    submit = lambda order: json.dumps({"action": "submit", "order": order})  # noqa: E731
    return [
        WsCase("not JSON", 400, "hello"),
        WsCase("a JSON array", 400, "[]"),
        WsCase("null", 400, "null"),
        WsCase("no action", 400, "{}"),
        WsCase("unknown action", 400, json.dumps({"action": "withdraw"})),
        WsCase("subscribe without orderId", 400, json.dumps({"action": "subscribe"})),
        WsCase("subscribe with a numeric orderId", 400, json.dumps({"action": "subscribe", "orderId": 7})),
        WsCase("subscribe to another user's order", 404, json.dumps({"action": "subscribe", "orderId": victim_order})),
        WsCase("subscribe to a malformed id", 404, json.dumps({"action": "subscribe", "orderId": "' OR 1=1"})),
        WsCase("submit a negative amount", 422, submit(_amount("-1"))),
        WsCase("submit NaN", 422, submit(_amount("NaN"))),
        WsCase("submit an unknown token", 422, submit({**ORDER, "tokenIn": "BTC"})),
        WsCase("submit the same token twice", 422, submit({**ORDER, "tokenOut": "SOL"})),
        WsCase("submit with an extra field", 422, submit({**ORDER, "userId": VICTIM})),
        WsCase("submit an order that is a string", 422, json.dumps({"action": "submit", "order": "SOL"})),
        WsCase("submit with no order", 422, json.dumps({"action": "submit"})),
        WsCase("submit a limit with both limits", 422, submit(_limit(minAmountOut="1500"))),
        WsCase("submit a limit with slippageBps", 422, submit(_limit(slippageBps=100))),
        WsCase("submit a GTD limit without expiresAt", 422, submit(_limit(timeInForce="GTD"))),
        WsCase("submit a sniper with a malformed mint", 422, submit(_sniper(tokenOut="0OIl" * 10))),
        WsCase("submit a sniper without expiresAt", 422, submit(_sniper(expiresAt=None))),
        WsCase("cancel without orderId", 400, json.dumps({"action": "cancel"})),
        WsCase("cancel another user's order", 404, json.dumps({"action": "cancel", "orderId": victim_order})),
        WsCase("subscribeAccount since not a time", 400, json.dumps({"action": "subscribeAccount", "since": "x"})),
        WsCase("subscribeAccount since without a timezone", 400,
               json.dumps({"action": "subscribeAccount", "since": "2026-01-01T00:00:00"})),
        WsCase("subscribeMarket an unknown pool", 422,
               json.dumps({"action": "subscribeMarket", "poolIds": ["raydium-btc-usdc"]})),
        WsCase("subscribeMarket poolIds not a list", 400,
               json.dumps({"action": "subscribeMarket", "poolIds": "raydium-sol-usdc"})),
        WsCase("subscribeMarket 101 pools", 400,
               json.dumps({"action": "subscribeMarket", "poolIds": [f"p{n}" for n in range(101)]})),
        WsCase("a 40 KB frame", 1009, json.dumps({"action": "ping", "pad": "x" * 40_000})),
        *(WsCase(f"connect with token: {name}", 401, token=token if token is not None else "")
          for name, token in FORGED_TOKENS.items() if name in ("not a jwt", "wrong secret", "alg none", "expired",
                                                              "no sub")),
    ]


@dataclass
class Tally:
    cases: int = 0
    expected: int = 0
    server_errors: int = 0
    created: int = 0
    unexpected: list[str] = field(default_factory=list)

    def add(self, name: str, expected: int, got: int, created: int) -> None:
        self.cases += 1
        self.expected += got == expected
        self.server_errors += 500 <= got < 600
        self.created += created
        if got != expected:
            self.unexpected.append(f"{name}: expected {expected}, got {got}")


async def _count_orders(session, cloud, user: str) -> int:
    async with session.get(f"{cloud.http}/orders?limit=100", headers=bearer(issue_token(user, LOCAL_JWT_SECRET))) as r:
        assert r.status == 200
        return len((await r.json())["orders"])


async def _run(cloud) -> tuple[Tally, Tally, dict[str, Any]]:
    http, ws = Tally(), Tally()
    async with aiohttp.ClientSession() as session:
        victim = bearer(issue_token(VICTIM, LOCAL_JWT_SECRET))
        async with session.post(f"{cloud.http}/orders", json=ORDER, headers=victim) as r:
            victim_order = (await r.json())["orderId"]
        before = {user: await _count_orders(session, cloud, user) for user in (ATTACKER, VICTIM)}
        listed_before = await _listed(session, cloud)
        for case in http_cases(victim_order):
            data = case.body if isinstance(case.body, bytes | None) else json.dumps(case.body).encode()
            async with session.request(case.method, f"{cloud.http}{case.path}", data=data,
                                       headers=case.headers) as r:
                body = await r.read()
                if r.status >= 400:  # every error is a problem document
                    assert r.content_type == "application/problem+json", (case.name, r.status, body[:200])
                    assert json.loads(body)["status"] == r.status
                    assert b"Traceback" not in body and LOCAL_JWT_SECRET.encode() not in body
            created = await _count_orders(session, cloud, ATTACKER) - before[ATTACKER]
            http.add(case.name, case.expected, r.status, int(created > http.created))
        for case in ws_cases(victim_order):
            token = case.token if case.token is not None else GOOD["Authorization"][7:]
            try:
                async with session.ws_connect(f"{cloud.ws}?token={token}") as socket:
                    await socket.send_str(case.message or json.dumps({"action": "ping"}))
                    message = await socket.receive(timeout=10)
                    if message.type == aiohttp.WSMsgType.TEXT:
                        frame = json.loads(message.data)
                        got = frame["error"]["status"] if frame.get("type") == "error" else 200
                        await socket.send_str(json.dumps({"action": "ping"}))  # the connection stays open
                        assert json.loads((await socket.receive(timeout=10)).data) == {"type": "pong"}, case.name
                    else:
                        got = socket.close_code or 1006
            except aiohttp.WSServerHandshakeError as refused:
                got = refused.status
            created = await _count_orders(session, cloud, ATTACKER) - before[ATTACKER]
            ws.add(case.name, case.expected, got, int(created > ws.created + http.created))
        await asyncio.sleep(0.5)
        async with session.get(f"{cloud.http}/orders/{victim_order}", headers=victim) as r:
            victim_view = await r.json()
        after = {user: await _count_orders(session, cloud, user) for user in (ATTACKER, VICTIM)}
        listed_after = await _listed(session, cloud)
    return http, ws, {"victim": victim_view, "before": before, "after": after, "listed": (listed_before, listed_after)}


async def _listed(session, cloud) -> tuple[list[dict], list[dict]]:
    """The venues' tokens and pools: a refused launch lists nothing and changes nothing."""
    async with session.get(f"{cloud.http}/tokens") as tokens, session.get(f"{cloud.http}/pools") as pools:
        return (await tokens.json())["tokens"], [
            {k: p[k] for k in ("id", "lpBurned", "openTime")} for p in (await pools.json())["pools"]]


def test_bad_input_gets_a_precise_4xx_and_never_a_5xx_or_an_order():
    with running_cloud(RATE_LIMIT_PER_SECOND="1000", RATE_LIMIT_BURST="1000") as cloud:
        http, ws, state = asyncio.run(_run(cloud))
        # The functions' own JSON lines are in the logs folder; the terminal's are in the cloud's output.
        function_logs = "".join(path.read_text(errors="replace") for path in (cloud.data_dir / "logs").glob("*.log"))
    total = Tally(http.cases + ws.cases, http.expected + ws.expected, http.server_errors + ws.server_errors,
                  http.created + ws.created, http.unexpected + ws.unexpected)
    SUMMARIES.append(f"bad-input suite: {total.cases} cases ({http.cases} HTTP, {ws.cases} WebSocket): "
                     f"{total.expected} got the expected status, {total.server_errors} got a 5xx, "
                     f"{total.created} created or executed an order")
    assert total.cases >= 100
    assert total.server_errors == 0
    assert total.created == 0 and state["after"][ATTACKER] == state["before"][ATTACKER]
    assert state["after"][VICTIM] == state["before"][VICTIM]  # forged tokens placed nothing for the victim
    assert state["victim"]["status"] != "cancelled"  # nobody else could cancel it
    assert state["listed"][0] == state["listed"][1]  # no token or pool launched, revoked or burned
    assert not total.unexpected, "\n".join(total.unexpected)
    log = "".join(cloud.output) + function_logs  # everything the local cloud logged
    assert "Traceback" not in log and LOCAL_JWT_SECRET not in log
    assert not any(token and token in log for token in FORGED_TOKENS.values())
