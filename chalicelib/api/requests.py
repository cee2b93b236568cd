"""The API's request models: pydantic validates every body, query and WebSocket message before a service sees
it, and the OpenAPI document is generated from these same models (``openapi.py``)."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from ..domain.commands import Limit, ListOrders, PlaceOrder, QuoteSwap, TradeOnPool
from ..domain.limit_orders import TimeInForce
from ..domain.limits import DEFAULT_MAX_AMOUNT_IN
from ..domain.markets import pair_of
from ..domain.orders import OrderType, Status
from ..domain.tokens import TOKENS
from .problems import BadRequest, Unprocessable

# A positive decimal written out in digits: "1", "1.5", "0.001". No sign, exponent, spaces, NaN or Infinity.
POSITIVE_DECIMAL = re.compile(r"^\+?(0*[1-9][0-9]*(\.[0-9]*)?|0*\.[0-9]*[1-9][0-9]*)$")


def _decimal_not_float_or_bool(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValueError('must be a decimal string such as "1.5" or a number')
    if isinstance(value, str):
        if len(value) > 64:
            raise ValueError("must be at most 64 characters")
        if not POSITIVE_DECIMAL.match(value):
            try:
                written = Decimal(value)
            except InvalidOperation:
                written = None
            if written is not None and written.is_finite() and written <= 0:
                raise ValueError("must be greater than zero")
            raise ValueError('must be a positive decimal written in digits, such as "1.5"')
    return value


def _supported_token(symbol: str) -> str:
    if symbol not in TOKENS:
        raise ValueError(f"unsupported token {symbol!r}; supported: {', '.join(TOKENS)}")
    return symbol


TokenSymbol = Annotated[
    str,
    Field(min_length=1, max_length=16, description="A supported token's symbol (see GET /tokens)",
          json_schema_extra={"enum": list(TOKENS)}),
]
Amount = Annotated[
    Decimal,
    BeforeValidator(_decimal_not_float_or_bool),
    Field(allow_inf_nan=False),
    WithJsonSchema({
        "anyOf": [{"type": "string", "pattern": POSITIVE_DECIMAL.pattern, "maxLength": 64},
                  {"type": "number", "exclusiveMinimum": 0}],
        "description": "A decimal amount in the token's units, e.g. \"1.5\": greater than zero, with no more "
                       "decimals than the token has, up to the configured maximum",
    }),
]


class _PairFields(BaseModel):
    """What every order and a quote share: the pair and the amount."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    token_in: TokenSymbol = Field(alias="tokenIn")
    token_out: TokenSymbol = Field(alias="tokenOut")
    amount_in: Amount = Field(alias="amountIn")

    @field_validator("token_in", "token_out")
    @classmethod
    def _supported(cls, symbol: str) -> str:
        return _supported_token(symbol)

    @field_validator("amount_in")
    @classmethod
    def _positive_and_bounded(cls, amount: Decimal, info: ValidationInfo) -> Decimal:
        maximum = (info.context or {}).get("max_amount_in", DEFAULT_MAX_AMOUNT_IN)
        if amount <= 0:
            raise ValueError("must be greater than zero")
        if amount > maximum:
            raise ValueError(f"must be at most {maximum}")
        return amount


class _TradeFields(_PairFields):
    """A market order's and a quote's fields: the pair, the amount and the slippage tolerance."""

    slippage_bps: StrictInt = Field(50, alias="slippageBps", ge=1, le=5000,
                                    description="The most the output may fall short of the quote, in basis points")


class MarketOrderRequest(_TradeFields):
    """A market order: swap ``amountIn`` of ``tokenIn`` for as much ``tokenOut`` as the best venue gives."""

    type: Literal["market"] = "market"

    def to_command(self) -> PlaceOrder:
        return PlaceOrder(self.token_in, self.token_out, self.amount_in, self.slippage_bps, OrderType(self.type))


class LimitOrderRequest(_PairFields):
    """A limit order: swap ``amountIn`` of ``tokenIn`` only for at least its limit, now or while it rests."""

    type: Literal["limit"]
    limit_price: Amount | None = Field(
        None, alias="limitPrice",
        description="The price in the listed pair's quote token per base token (USDC per SOL for SOL/USDC), "
                    "whichever way the order trades: a seller of the base gets at least it, a buyer pays at most it. "
                    "Exactly one of limitPrice and minAmountOut.")
    min_amount_out: Amount | None = Field(
        None, alias="minAmountOut", description="The least the order accepts in tokenOut for its whole amountIn")
    time_in_force: Literal["GTC", "GTD", "IOC", "FOK"] = Field(
        "GTC", alias="timeInForce",
        description="GTC rests until filled or cancelled (at most 30 days); GTD until expiresAt; IOC fills what it "
                    "can now and drops the rest; FOK fills all of it now or nothing")
    expires_at: AwareDatetime | None = Field(
        None, alias="expiresAt", description="With GTD only: ISO 8601 with a timezone, 1 s to 30 days ahead")

    @field_validator("limit_price", "min_amount_out")
    @classmethod
    def _positive(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value <= 0:
            raise ValueError("must be greater than zero")
        return value

    def to_command(self) -> PlaceOrder:
        return PlaceOrder(self.token_in, self.token_out, self.amount_in, None, OrderType.LIMIT,
                          Limit(TimeInForce(self.time_in_force), self.limit_price, self.min_amount_out,
                                self.expires_at))


OrderRequest = MarketOrderRequest | LimitOrderRequest


class DirectSwapRequest(BaseModel):
    """``POST /dex/swaps``: another trader's swap straight on one pool, outside the engine."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    pool_id: str = Field(alias="poolId", min_length=1, max_length=64, description="A pool's id (see GET /pools)")
    token_in: TokenSymbol = Field(alias="tokenIn", description="The token sold: the pool's base or its quote")
    amount_in: Amount = Field(alias="amountIn")
    min_amount_out: Amount | None = Field(None, alias="minAmountOut",
                                          description="The least accepted in the pool's other token")

    @field_validator("token_in")
    @classmethod
    def _supported(cls, symbol: str) -> str:
        return _supported_token(symbol)

    @field_validator("amount_in", "min_amount_out")
    @classmethod
    def _positive_and_bounded(cls, amount: Decimal | None, info: ValidationInfo) -> Decimal | None:
        maximum = (info.context or {}).get("max_amount_in", DEFAULT_MAX_AMOUNT_IN)
        if amount is not None and amount <= 0:
            raise ValueError("must be greater than zero")
        if amount is not None and amount > maximum:
            raise ValueError(f"must be at most {maximum}")
        return amount

    def to_command(self) -> TradeOnPool:
        return TradeOnPool(self.pool_id, self.token_in, self.amount_in, self.min_amount_out)


class QuoteQuery(_TradeFields):
    """``GET /quote``'s query: what an order with these fields would get now."""

    slippage_bps: int = Field(50, alias="slippageBps", ge=1, le=5000,
                              description="The most the output may fall short of the quote, in basis points")

    def to_command(self) -> QuoteSwap:
        return QuoteSwap(self.token_in, self.token_out, self.amount_in, self.slippage_bps)


class OrderListQuery(BaseModel):
    """``GET /orders``'s query."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    status: list[Status] = Field(default_factory=list, min_length=1,
                                 description="Only orders in these statuses (comma-separated)")
    type: list[OrderType] = Field(default_factory=list, min_length=1,
                                  description="Only orders of these types (comma-separated)")
    limit: int = Field(20, ge=1, le=100, description="At most this many orders per page")
    cursor: str | None = Field(None, max_length=512, description="The nextCursor of the previous page")

    @field_validator("status", "type", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    def to_command(self) -> ListOrders:
        return ListOrders(tuple(self.status), tuple(self.type), self.limit, self.cursor)


class SubmitMessage(BaseModel):
    """The WebSocket ``submit`` action: places an order and streams its updates on the same connection."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    action: Literal["submit"]
    order: dict[str, Any] = Field(description="The order, as POST /orders takes it")
    idempotency_key: str | None = Field(None, alias="idempotencyKey", min_length=1, max_length=255)


ORDER_TYPES = ("market", "limit")


def _field_errors(error: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    return [
        {"field": prefix + (".".join(str(part) for part in e["loc"]) or "body"),
         "message": e["msg"].removeprefix("Value error, ")}
        for e in error.errors(include_url=False)
    ]


def _unprocessable(errors: list[dict[str, str]]) -> Unprocessable:
    return Unprocessable("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)


Trade = TypeVar("Trade", bound=_PairFields)


def _tradable(fields: Trade) -> Trade:
    """Rules across fields, reported against the field a client should change."""
    errors = []
    if fields.token_in == fields.token_out:
        errors.append({"field": "tokenOut", "message": "must differ from tokenIn"})
    elif pair_of(fields.token_in, fields.token_out) is None:
        errors.append({"field": "tokenOut", "message": f"no venue lists the pair {fields.token_in}/{fields.token_out}"})
    token = TOKENS[fields.token_in]
    if not token.fits_precision(fields.amount_in):
        errors.append({"field": "amountIn", "message": f"{token.symbol} has at most {token.decimals} decimals"})
    if errors:
        raise _unprocessable(errors)
    return fields


def parse_json_body(raw: bytes | None) -> Any:
    if not raw:
        raise BadRequest("the request needs a JSON body")
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def order_request(body: Any, max_amount_in: Decimal = DEFAULT_MAX_AMOUNT_IN, prefix: str = "") -> OrderRequest:
    """A decoded order body, validated as its ``type`` says; Unprocessable naming every field that is wrong."""
    if not isinstance(body, dict):
        raise _unprocessable([{"field": prefix.rstrip(".") or "body", "message": "must be a JSON object"}])
    kind = body.get("type", "market")
    if kind not in ORDER_TYPES:
        raise _unprocessable([{"field": f"{prefix}type", "message": f"must be one of: {', '.join(ORDER_TYPES)}"}])
    if kind == "limit":
        return _limit_order(body, max_amount_in, prefix)
    try:
        order = MarketOrderRequest.model_validate(body, context={"max_amount_in": max_amount_in})
    except ValidationError as error:
        raise _unprocessable(_field_errors(error, prefix)) from None
    return _tradable(order)


def _limit_order(body: dict[str, Any], max_amount_in: Decimal, prefix: str) -> LimitOrderRequest:
    errors = []
    if "slippageBps" in body:
        errors.append({"field": f"{prefix}slippageBps",
                       "message": "not taken on a limit order: its limit is the protection"})
    try:
        order = LimitOrderRequest.model_validate({k: v for k, v in body.items() if k != "slippageBps"},
                                                 context={"max_amount_in": max_amount_in})
    except ValidationError as error:
        raise _unprocessable(errors + _field_errors(error, prefix)) from None
    if (order.limit_price is None) == (order.min_amount_out is None):
        errors.append({"field": f"{prefix}limitPrice", "message": "give exactly one of limitPrice and minAmountOut"})
    if order.expires_at is not None and order.time_in_force != "GTD":
        errors.append({"field": f"{prefix}expiresAt", "message": f"goes with GTD only, not {order.time_in_force}"})
    if order.time_in_force == "GTD" and order.expires_at is None:
        errors.append({"field": f"{prefix}expiresAt", "message": "a GTD order needs expiresAt"})
    if errors:
        raise _unprocessable(errors)
    return _tradable(order)


def parse_order(raw: bytes | None, max_amount_in: Decimal = DEFAULT_MAX_AMOUNT_IN) -> OrderRequest:
    return order_request(parse_json_body(raw), max_amount_in)


def parse_quote_query(params: dict[str, str] | None, max_amount_in: Decimal = DEFAULT_MAX_AMOUNT_IN) -> QuoteQuery:
    try:
        query = QuoteQuery.model_validate(params or {}, context={"max_amount_in": max_amount_in})
    except ValidationError as error:
        raise _unprocessable(_field_errors(error)) from None
    return _tradable(query)


def parse_direct_swap(raw: bytes | None, max_amount_in: Decimal = DEFAULT_MAX_AMOUNT_IN) -> DirectSwapRequest:
    body = parse_json_body(raw)
    if not isinstance(body, dict):
        raise _unprocessable([{"field": "body", "message": "must be a JSON object"}])
    try:
        swap = DirectSwapRequest.model_validate(body, context={"max_amount_in": max_amount_in})
    except ValidationError as error:
        raise _unprocessable(_field_errors(error)) from None
    token = TOKENS[swap.token_in]
    if not token.fits_precision(swap.amount_in):
        raise _unprocessable([{"field": "amountIn", "message": f"{token.symbol} has at most {token.decimals} "
                                                               "decimals"}])
    return swap


def parse_order_list_query(params: dict[str, str] | None) -> OrderListQuery:
    try:
        return OrderListQuery.model_validate(params or {})
    except ValidationError as error:
        raise _unprocessable(_field_errors(error)) from None


def parse_submit(message: dict[str, Any], max_amount_in: Decimal = DEFAULT_MAX_AMOUNT_IN) -> tuple[
        OrderRequest, str | None]:
    try:
        submit = SubmitMessage.model_validate(message)
    except ValidationError as error:
        raise _unprocessable(_field_errors(error)) from None
    return order_request(submit.order, max_amount_in, prefix="order."), submit.idempotency_key
