"""``GET /asyncapi.json``: the WebSocket API as an AsyncAPI 3 document.

One channel, the connection itself (``$connect`` takes the bearer token as ``?token=``); the client sends actions
and receives frames. An order submitted over the socket takes the same bodies as ``POST /orders``: their schemas
come from the same pydantic models, and a problem frame carries the same problem as an HTTP error.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic.json_schema import models_json_schema

from .requests import LimitOrderRequest, MarketOrderRequest, SniperOrderRequest
from .views import Order, Problem

_STRING = {"type": "string"}
_ORDER_ID = {"type": "string", "description": "An order's id"}
_AT = {"type": "string", "format": "date-time"}


def _object(properties: dict[str, Any], required: list[str], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if description:
        schema["description"] = description
    return schema


def _action(name: str, properties: dict[str, Any] | None = None, required: list[str] | None = None,
            description: str = "") -> dict[str, Any]:
    return _object({"action": {"const": name}, **(properties or {})}, ["action", *(required or [])], description)


def _frame(kind: str, properties: dict[str, Any], required: list[str], description: str) -> dict[str, Any]:
    return _object({"type": {"const": kind}, **properties}, ["type", *required], description)


_SENT = {
    "subscribe": _action("subscribe", {"orderId": _ORDER_ID}, ["orderId"],
                         "Follow one of your orders: every update from its first, then each new one"),
    "unsubscribe": _action("unsubscribe", {"orderId": _ORDER_ID}, ["orderId"], "Stop following an order"),
    "ping": _action("ping", description="Answered with a pong frame"),
    "submit": _action("submit", {"order": {"oneOf": [{"$ref": "#/components/schemas/MarketOrderRequest"},
                                                     {"$ref": "#/components/schemas/LimitOrderRequest"},
                                                     {"$ref": "#/components/schemas/SniperOrderRequest"}]},
                                 "idempotencyKey": {"type": "string", "minLength": 1, "maxLength": 255}},
                      ["order"], "Place an order (as POST /orders) and follow it on this connection"),
    "cancel": _action("cancel", {"orderId": _ORDER_ID}, ["orderId"],
                      "Cancel an order not yet submitted (as DELETE /orders/{orderId}); answered by order.cancel"),
    "subscribeAccount": _action(
        "subscribeAccount", {"since": {**_AT, "description": "Replay what you may have missed: the at of the last "
                                                             "update you had (updates from 30 s before it come "
                                                             "again; drop what you have by orderId and seq)"}},
        description="Every update of every order of yours, existing and future, and order.created as each is "
                    "placed (over REST or another connection)"),
    "subscribeMarket": _action(
        "subscribeMarket", {"poolIds": {"type": "array", "items": _STRING, "minItems": 1, "maxItems": 100,
                                        "description": "Left out: every pool"}},
        description="Each pool's state now, then after every change (pool.update)"),
}

_UPDATE = _frame("order.update", {"orderId": _ORDER_ID, "seq": {"type": "integer", "minimum": 1},
                                  "status": _STRING, "at": _AT, "data": {"type": "object"}},
                 ["orderId", "seq", "status", "at", "data"],
                 "One status change of an order, exactly once per connection and in seq order")
_RECEIVED = {
    "orderUpdate": _UPDATE,
    "orderCreated": _frame("order.created", {"orderId": _ORDER_ID, "clientOrderId": {"type": ["string", "null"]},
                                             "orderType": _STRING, "tokenIn": _STRING, "tokenOut": _STRING,
                                             "amountIn": _STRING, "at": _AT},
                           ["orderId", "orderType", "tokenIn", "tokenOut", "amountIn", "at"],
                           "An order of yours was placed (account streams); its updates follow"),
    "orderAccepted": _frame("order.accepted", {"orderId": _ORDER_ID, "status": {"const": "pending"},
                                               "idempotencyKey": _STRING},
                            ["orderId", "status"], "A submitted order was accepted; its updates follow"),
    "orderCancel": _frame("order.cancel", {"orderId": _ORDER_ID, "status": {"const": 200},
                                           "order": {"$ref": "#/components/schemas/Order"}},
                          ["orderId", "status", "order"], "The answer to cancel: the order, as DELETE answers it"),
    "poolUpdate": _frame("pool.update", {"poolId": _STRING, "venue": _STRING, "base": _STRING, "quote": _STRING,
                                         "price": {**_STRING, "description": "quote per base"},
                                         "feeBps": _STRING,
                                         "reserves": _object({"base": _STRING, "quote": _STRING}, ["base", "quote"]),
                                         "slot": {"type": "integer", "description": "The slot of the swap that made "
                                                                                    "this state: keep the highest"},
                                         "at": _AT},
                         ["poolId", "venue", "base", "quote", "price", "reserves", "slot", "at"],
                         "A followed pool's state, now and after every change"),
    "subscribed": _frame("subscribed", {"stream": {"enum": ["account", "market"]}}, ["stream"],
                         "A subscribeAccount or subscribeMarket was taken; what it streams follows"),
    "pong": _frame("pong", {}, [], "The answer to ping"),
    "error": _frame("error", {"error": {"$ref": "#/components/schemas/Problem"}, "action": _STRING,
                              "orderId": _STRING, "idempotencyKey": _STRING},
                    ["error"], "A request was refused: the problem, with the request's action and ids"),
}


@functools.cache
def document() -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(MarketOrderRequest, "validation"), (LimitOrderRequest, "validation"), (SniperOrderRequest, "validation"),
         (Order, "serialization"), (Problem, "serialization")],
        by_alias=True, ref_template="#/components/schemas/{model}")
    messages = {f"{name}Action": {"name": name, "payload": schema, "contentType": "application/json"}
                for name, schema in _SENT.items()}
    messages.update({name: {"name": schema["properties"]["type"]["const"], "payload": schema,
                            "contentType": "application/json"} for name, schema in _RECEIVED.items()})
    channel_messages = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Order execution engine: WebSocket API", "version": "1",
                 "description": "Connect with ?token=<JWT>; send actions, receive frames. Orders take the bodies of "
                                "POST /orders (GET /openapi.json)."},
        "defaultContentType": "application/json",
        "channels": {"connection": {"address": "/", "messages": channel_messages,
                                    "description": "The WebSocket connection: ?token=<JWT> on connect"}},
        "operations": {
            **{f"send{name[0].upper()}{name[1:]}": {
                "action": "send", "channel": {"$ref": "#/channels/connection"},
                "messages": [{"$ref": f"#/channels/connection/messages/{name}Action"}]} for name in _SENT},
            **{f"receive{name[0].upper()}{name[1:]}": {
                "action": "receive", "channel": {"$ref": "#/channels/connection"},
                "messages": [{"$ref": f"#/channels/connection/messages/{name}"}]} for name in _RECEIVED},
        },
        "components": {"messages": messages, "schemas": definitions["$defs"]},
    }
