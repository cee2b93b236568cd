"""The API's request models: pydantic validates every body and query before a service sees it."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from .domain.markets import pair_of
from .domain.tokens import TOKENS
from .errors import BadRequest, Unprocessable

MAX_AMOUNT_IN = Decimal("1000000000")


class MarketOrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    type: Literal["market"] = "market"
    token_in: str = Field(alias="tokenIn", min_length=1, max_length=16)
    token_out: str = Field(alias="tokenOut", min_length=1, max_length=16)
    amount_in: Decimal = Field(alias="amountIn", allow_inf_nan=False)
    slippage_bps: StrictInt = Field(50, alias="slippageBps", ge=1, le=5000)

    @field_validator("token_in", "token_out")
    @classmethod
    def _supported_token(cls, symbol: str) -> str:
        if symbol not in TOKENS:
            raise ValueError(f"unsupported token {symbol!r}; supported: {', '.join(TOKENS)}")
        return symbol

    @field_validator("amount_in", mode="before")
    @classmethod
    def _decimal_not_float_or_bool(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            raise ValueError("must be a decimal string or a number")
        if isinstance(value, str):
            try:
                Decimal(value.strip())
            except InvalidOperation:
                raise ValueError("must be a decimal number such as \"1.5\"") from None
        return value

    @field_validator("amount_in")
    @classmethod
    def _positive_and_bounded(cls, amount: Decimal) -> Decimal:
        if amount <= 0:
            raise ValueError("must be greater than zero")
        if amount > MAX_AMOUNT_IN:
            raise ValueError(f"must be at most {MAX_AMOUNT_IN}")
        return amount


def _tradable(order: MarketOrderRequest) -> MarketOrderRequest:
    """Rules across fields, reported against the field a client should change."""
    errors = []
    if order.token_in == order.token_out:
        errors.append({"field": "tokenOut", "message": "must differ from tokenIn"})
    elif pair_of(order.token_in, order.token_out) is None:
        errors.append({"field": "tokenOut", "message": f"no venue lists the pair {order.token_in}/{order.token_out}"})
    token = TOKENS[order.token_in]
    if not token.fits_precision(order.amount_in):
        errors.append({"field": "amountIn", "message": f"{token.symbol} has at most {token.decimals} decimals"})
    if errors:
        raise Unprocessable("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)
    return order


ORDER_TYPES = ("market",)


def _field_errors(error: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(part) for part in e["loc"]) or "body", "message": e["msg"].removeprefix("Value error, ")}
        for e in error.errors(include_url=False)
    ]


def parse_json_body(raw: bytes | None) -> Any:
    if not raw:
        raise BadRequest("the request needs a JSON body")
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_market_order(raw: bytes | None) -> MarketOrderRequest:
    body = parse_json_body(raw)
    if not isinstance(body, dict):
        raise Unprocessable("the body must be a JSON object", [{"field": "body", "message": "must be an object"}])
    kind = body.get("type", "market")
    if kind not in ORDER_TYPES:
        raise Unprocessable(
            f"unsupported order type {kind!r}",
            [{"field": "type", "message": f"must be one of: {', '.join(ORDER_TYPES)}"}],
        )
    try:
        order = MarketOrderRequest.model_validate(body)
    except ValidationError as error:
        errors = _field_errors(error)
        raise Unprocessable("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors) from None
    return _tradable(order)
