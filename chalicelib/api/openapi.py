"""``GET /openapi.json``: the REST API's contract, generated from the pydantic models that validate requests
(``requests.py``) and the models that render every response (``views.py``)."""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .requests import (
    DirectSwapRequest,
    LimitOrderRequest,
    LocalTokenRequest,
    MarketOrderRequest,
    OrderListQuery,
    PoolLaunchRequest,
    QuoteQuery,
    RevokeRequest,
    SniperOrderRequest,
    TokenListingRequest,
)
from .views import (
    Health,
    LaunchedPool,
    LocalToken,
    Order,
    OrderAccepted,
    OrderPage,
    Pools,
    Problem,
    Quote,
    Swap,
    Swaps,
    TokenInfo,
    Tokens,
)

VERSION = "1.0.0"


_MODELS: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
    (MarketOrderRequest, "validation"),
    (LimitOrderRequest, "validation"),
    (SniperOrderRequest, "validation"),
    (DirectSwapRequest, "validation"),
    (TokenListingRequest, "validation"),
    (RevokeRequest, "validation"),
    (PoolLaunchRequest, "validation"),
    (LocalTokenRequest, "validation"),
    *((m, "serialization") for m in (Problem, OrderAccepted, Order, OrderPage, Quote, Tokens, TokenInfo, Pools,
                                     LaunchedPool, Swap, Swaps, Health, LocalToken)),
]

_PROBLEMS = {
    400: "The request is malformed: not JSON, or a cursor this API did not issue",
    401: "No bearer token, or one that is malformed, forged, expired or names no user",
    403: "The token lacks the scope this request needs (orders:write to place or cancel; metrics:read for /metrics; "
         "dex:admin to list on the venues)",
    404: "No such order for this user, a malformed id, or no such route (or token, or pool)",
    409: "The order's state does not allow this (already submitted), the same Idempotency-Key is in flight, a "
         "direct swap would fill below its minAmountOut, a sniper's pair has an open pool already, or the symbol, "
         "mint or venue's pool of the pair is listed already",
    413: "The body is over 64 KB",
    415: "The body is not application/json",
    422: "The request is well-formed but invalid; `errors` names each field that is wrong",
    429: "Too many requests; wait Retry-After seconds",
    503: "A service the engine depends on is unavailable; retry after Retry-After seconds",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": _ref(name)}}}
    if headers:
        response["headers"] = headers
    return response


def _problems(*statuses: int) -> dict[str, Any]:
    retry_after = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait"}}
    return {
        str(status): {
            "description": _PROBLEMS[status],
            "content": {"application/problem+json": {"schema": _ref("Problem")}},
            **({"headers": retry_after} if status in (429, 503) else {}),
        }
        for status in statuses
    }


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        prop = {k: v for k, v in prop.items() if k != "title" and not (k == "default" and v is None)}
        optional = [option for option in prop.pop("anyOf", []) if option != {"type": "null"}]
        if len(optional) == 1:  # a query parameter is absent rather than null
            prop.update(optional[0])
        elif optional:
            prop["anyOf"] = optional
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            parameter["description"] = prop.pop("description")
        if prop.get("type") == "array":
            parameter.update(style="form", explode=False)  # ?status=pending,open
        parameters.append(parameter)
    return parameters


_ORDER_ID = {"name": "orderId", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "The order's id (a UUID; anything else is answered 404)"}
_CLIENT_ORDER_ID = {"name": "clientOrderId", "in": "path", "required": True,
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,36}$"},
                    "description": "The clientOrderId given when the order was placed"}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _admin(operation: str, summary: str, body: str | None, status: str, answer: dict[str, Any],
           *more_problems: int) -> dict[str, Any]:
    operation_object: dict[str, Any] = {
        "operationId": operation, "summary": summary, "security": _BEARER,
        "responses": {status: answer, **_problems(400, 401, 403, *more_problems, 409, 413, 415, 422, 429, 503)}}
    if body is not None:
        operation_object["requestBody"] = {"required": True,
                                           "content": {"application/json": {"schema": _ref(body)}}}
    return operation_object


def _text(description: str, *media_types: str) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "string"}} for media in media_types}}


def _order_operations(name: str, found_by: str, parameter: dict[str, Any]) -> dict[str, Any]:
    """Reading and cancelling one order, by its id or by the client order id it was given."""
    return {
        "get": {
            "operationId": f"get{name}", "summary": f"One order{found_by}, with its events, routing and fill",
            "security": _BEARER, "parameters": [parameter],
            "responses": {"200": _json("Order", "The order"), **_problems(401, 404, 429, 503)},
        },
        "delete": {
            "operationId": f"cancel{name}", "summary": f"Cancel an order not yet submitted to a venue{found_by}",
            "security": _BEARER, "parameters": [parameter],
            "responses": {"200": _json("Order", "Cancelled (or it already was)"),
                          **_problems(401, 403, 404, 409, 429, 503)},
        },
    }


def _paths() -> dict[str, Any]:
    return {
        "/orders": {
            "post": {
                "operationId": "placeOrder", "summary": "Place a market, limit or sniper order", "security": _BEARER,
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                                "description": "Repeat a request safely: the same key and body give the same order "
                                               "for 24 hours"}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    # "type" tells them apart: "limit" is required on a limit order, a market order may omit it.
                    "oneOf": [_ref("MarketOrderRequest"), _ref("LimitOrderRequest"),
                              _ref("SniperOrderRequest")]}}}},
                "responses": {
                    "202": _json("OrderAccepted", "Accepted; follow it over the WebSocket or at Location",
                                 {"Location": {"schema": {"type": "string"}}}),
                    **_problems(400, 401, 403, 409, 413, 415, 422, 429, 503),
                },
            },
            "get": {
                "operationId": "listOrders", "summary": "The caller's orders, newest first", "security": _BEARER,
                "parameters": _query_parameters(OrderListQuery),
                "responses": {"200": _json("OrderPage", "One page of orders"),
                              **_problems(400, 401, 422, 429, 503)},
            },
        },
        "/orders/{orderId}": _order_operations("Order", "", _ORDER_ID),
        "/orders/by-client-id/{clientOrderId}": _order_operations("OrderByClientId", ", found by its clientOrderId",
                                                                  _CLIENT_ORDER_ID),
        "/local/tokens": {
            "post": {
                "operationId": "mintLocalToken",
                "summary": "The local stage only: a bearer token for a user name (404 on any other stage)",
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("LocalTokenRequest")}}},
                "responses": {"201": _json("LocalToken", "The token"), **_problems(400, 404, 413, 415, 422, 429)},
            },
        },
        "/quote": {
            "get": {
                "operationId": "getQuote", "summary": "Both venues' quotes and the route an order would take now",
                "parameters": _query_parameters(QuoteQuery),
                "responses": {"200": _json("Quote", "The quote; nothing is executed"),
                              **_problems(422, 429, 503)},
            },
        },
        "/tokens": {"get": {"operationId": "listTokens", "summary": "The listed tokens and their authorities",
                            "responses": {"200": _json("Tokens", "Every listed token"), **_problems(429, 503)}}},
        "/dex/tokens": {"post": _admin("listToken", "List a new token on the venues (dex:admin)",
                                       "TokenListingRequest", "201", _json("TokenInfo", "The token listed"))},
        "/dex/tokens/{symbol}/revoke": {"post": {
            **_admin("revokeAuthority", "Revoke a token's mint or freeze authority (dex:admin)", "RevokeRequest",
                     "200", _json("TokenInfo", "The token, its authority revoked"), 404),
            "parameters": [{"name": "symbol", "in": "path", "required": True, "schema": {"type": "string"}}]}},
        "/dex/pools": {"post": _admin("openPool", "Open a pool on a venue, swappable from its openTime (dex:admin)",
                                      "PoolLaunchRequest", "201", _json("LaunchedPool", "The pool opened"))},
        "/dex/pools/{pool_id}/burn-lp": {"post": {
            **_admin("burnLp", "Mark a pool's liquidity burned (dex:admin)", None, "200",
                     _json("LaunchedPool", "The pool, its liquidity burned"), 404),
            "parameters": [{"name": "pool_id", "in": "path", "required": True, "schema": {"type": "string"}}]}},
        "/pools": {"get": {"operationId": "listPools", "summary": "The venues' pools and their current state",
                           "responses": {"200": _json("Pools", "Every pool"), **_problems(429, 503)}}},
        "/dex/swaps": {
            "get": {
                "operationId": "listSwaps", "summary": "The swaps the venues executed for an order",
                "parameters": [{"name": "orderId", "in": "query", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json("Swaps", "The venues' ledger for this order"), **_problems(422, 429, 503)},
            },
            "post": {
                "operationId": "tradeOnPool", "security": _BEARER,
                "summary": "Another trader's swap straight on one pool (outside the engine): it moves the price "
                           "like any swap, and can wake resting limit orders",
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("DirectSwapRequest")}}},
                "responses": {"201": _json("Swap", "The swap's ledger entry"),
                              **_problems(400, 401, 403, 409, 413, 415, 422, 429, 503)},
            },
        },
        "/metrics": {
            "get": {
                "operationId": "metrics", "security": _BEARER,
                "summary": "Prometheus metrics: the whole engine's figures, for a token with the metrics:read scope",
                "responses": {
                    "200": {"description": "Prometheus' text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}}},
                    **_problems(401, 403, 429, 503),
                },
            },
        },
        "/openapi.json": {
            "get": {"operationId": "openapi", "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1",
                                          "content": {"application/json": {"schema": {"type": "object"}}}},
                                  **_problems(429)}},
        },
        "/docs": {"get": {"operationId": "docs", "summary": "This reference as a page (HTML)",
                          "responses": {"200": _text("The page", "text/html")}}},
        "/app": {"get": {"operationId": "blotter", "summary": "The web blotter (HTML; /app#token=<JWT> signs in)",
                         "responses": {"200": _text("The page", "text/html")}}},
        "/static/{name}": {"get": {
            "operationId": "asset", "summary": "An asset of the pages (script, style sheet)",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _text("The file", "text/javascript", "text/css", "text/html"), **_problems(404)}}},
        "/asyncapi.json": {
            "get": {"operationId": "asyncapi", "summary": "The WebSocket API, as an AsyncAPI 3 document",
                    "responses": {"200": {"description": "AsyncAPI 3.0",
                                          "content": {"application/json": {"schema": {"type": "object"}}}},
                                  **_problems(429)}},
        },
        "/health": {
            "get": {"operationId": "health", "summary": "Whether PostgreSQL, Redis and SQS answer",
                    "responses": {"200": _json("Health", "Every dependency answers"),
                                  "503": _json("Health", "A dependency is down")}},
        },
    }


@functools.cache
def document() -> dict[str, Any]:
    _, definitions = models_json_schema(_MODELS, by_alias=True, ref_template="#/components/schemas/{model}")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Order execution engine",
            "version": VERSION,
            "description": "Market, limit and sniper orders routed across Raydium and Meteora. Statuses stream over "
                           "the WebSocket API (GET /asyncapi.json: actions subscribe, unsubscribe, ping, submit, "
                           "cancel, subscribeAccount, subscribeMarket). Every error is application/problem+json.",
        },
        "paths": _paths(),
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
