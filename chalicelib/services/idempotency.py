"""Safe retries of ``POST /orders``: a request with an ``Idempotency-Key`` that was seen before, with the same body,
gets the first response again for 24 hours instead of a second order (Powertools' idempotency utility)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from ..domain.commands import Limit, PlaceOrder, Sniper
from ..domain.limit_orders import TimeInForce
from ..domain.orders import OrderType, Status
from ..domain.sniper_orders import Conditions
from .errors import Conflict, Invalid, Unavailable
from .orders import OrderService
from .read_models import PlacedOrder

KEY_TTL_SECONDS = 24 * 60 * 60
_ORDER_IDS = uuid.UUID("5b0e6a52-3c1e-4f0a-9a57-0f5e2d7c9b11")  # namespace of the ids derived from keys
MAX_KEY_LENGTH = 255


class IdempotentPlacement:
    def __init__(self, orders: OrderService, persistence: BasePersistenceLayer, ttl_seconds: int = KEY_TTL_SECONDS):
        self._orders = orders
        # The key is the user's own: two users may pick the same Idempotency-Key without meeting.
        self._config = IdempotencyConfig(
            event_key_jmespath="[user, key]",
            payload_validation_jmespath="body",
            expires_after_seconds=ttl_seconds,
            raise_on_no_idempotency_key=True,
        )

        @idempotent_function(
            data_keyword_argument="request", persistence_store=persistence, config=self._config,
            key_prefix="place-order",
        )
        def place_once(request: dict[str, Any]) -> dict[str, Any]:
            return self._respond(request["user"], _from_payload(request["body"]), request["key"])

        self._place_once = place_once

    def place(self, user_id: str, key: str | None, order: PlaceOrder, context: Any = None) -> PlacedOrder:
        """The placed order's id and status; with a key, the same every time the same request is repeated."""
        if key is None:
            return _placed(self._respond(user_id, order))
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise Invalid(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                          [{"field": "Idempotency-Key", "message": "invalid length"}])
        if context is not None:
            self._config.register_lambda_context(context)
        try:
            return _placed(self._place_once(request={"user": user_id, "key": key, "body": _payload(order)}))
        except IdempotencyValidationError:
            raise Invalid(
                "this Idempotency-Key was used with a different request body",
                [{"field": "Idempotency-Key", "message": "already used for a different order"}],
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly") from None
        except IdempotencyPersistenceLayerError:
            # The key store (Redis) is unreachable: placing without it could place the order twice.
            raise Unavailable("Idempotency-Key requests cannot be checked right now; retry shortly",
                              retry_after_seconds=1) from None

    def _respond(self, user_id: str, order: PlaceOrder, key: str | None = None) -> dict[str, Any]:
        """What the key's record keeps and every repeat returns, as the records written so far hold it."""
        # With a key the order's id is derived from it, so even a repeat that Redis cannot recognise (its record
        # was lost, or expired while the first attempt was cut short) finds the same order in the database.
        order_id = str(uuid.uuid5(_ORDER_IDS, f"{user_id}\n{key}")) if key is not None else None
        placed = self._orders.place(user_id, order, order_id)
        return {"orderId": placed.id, "status": str(Status.PENDING)}  # the response to the request that placed it


def _placed(response: dict[str, Any]) -> PlacedOrder:
    return PlacedOrder(response["orderId"], Status(response["status"]))


def _payload(order: PlaceOrder) -> dict[str, Any]:
    """The order as its key's record keeps it and a repeat must match it: the request's own fields and names (records
    written before stay valid), and "1.5" and "1.50" are the same order. A limit order adds its terms."""
    payload: dict[str, Any] = {"tokenIn": order.token_in, "tokenOut": order.token_out,
                               "amountIn": _number(order.amount_in), "slippageBps": order.slippage_bps,
                               "type": str(order.type)}
    if order.limit is not None:
        given = order.limit
        payload["limit"] = {
            "timeInForce": str(given.time_in_force),
            "limitPrice": None if given.limit_price is None else _number(given.limit_price),
            "minAmountOut": None if given.min_amount_out is None else _number(given.min_amount_out),
            "expiresAt": None if given.expires_at is None else given.expires_at.isoformat(),
        }
    if order.sniper is not None:
        terms = order.sniper
        payload["sniper"] = {"expiresAt": terms.expires_at.isoformat(),
                             "maxPrice": None if terms.max_price is None else _number(terms.max_price),
                             "conditions": terms.conditions.to_json(), "delaySeconds": terms.delay_seconds}
    return payload


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _from_payload(payload: dict[str, Any]) -> PlaceOrder:
    given = payload.get("limit")
    limit = None if given is None else Limit(
        TimeInForce(given["timeInForce"]),
        None if given["limitPrice"] is None else Decimal(given["limitPrice"]),
        None if given["minAmountOut"] is None else Decimal(given["minAmountOut"]),
        None if given["expiresAt"] is None else datetime.fromisoformat(given["expiresAt"]),
    )
    terms = payload.get("sniper")
    sniper = None if terms is None else Sniper(
        datetime.fromisoformat(terms["expiresAt"]), None if terms["maxPrice"] is None else Decimal(terms["maxPrice"]),
        Conditions.from_json(terms["conditions"]), terms["delaySeconds"])
    return PlaceOrder(payload["tokenIn"], payload["tokenOut"], Decimal(payload["amountIn"]), payload["slippageBps"],
                      OrderType(payload["type"]), limit, sniper)
