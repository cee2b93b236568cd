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
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from ..domain.commands import Limit, ListOrders, ListToken, OpenPool, PlaceOrder, QuoteSwap, Sniper, TradeOnPool
from ..domain.limit_orders import TimeInForce
from ..domain.limits import DEFAULT_MAX_AMOUNT_IN
from ..domain.markets import pair_of, routable
from ..domain.orders import OrderType, Status
from ..domain.routing import RoutingMode
from ..domain.sniper_orders import MAX_DELAY_SECONDS, Conditions
from ..domain.tokens import SYMBOL, TOKENS, is_mint_address
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
        raise ValueError(f"unsupported token {symbol!r}; GET /tokens lists the tokens the venues list")
    return symbol


TokenSymbol = Annotated[
    str,
    Field(min_length=1, max_length=16, description="A listed token's symbol (see GET /tokens)"),
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


def _routing_field() -> Any:
    return Field(RoutingMode.SMART,
                 description="smart (the default): the best route over every pool, split over several or through a "
                             "third token when that pays SPLIT_MIN_GAIN_BPS more than the best single pool; single: "
                             "one pool of the pair")


class _TradeFields(_PairFields):
    """A market order's and a quote's fields: the pair, the amount, the slippage tolerance and the routing."""

    slippage_bps: StrictInt = Field(50, alias="slippageBps", ge=1, le=5000,
                                    description="The most the output may fall short of the quote, in basis points")
    routing: RoutingMode = _routing_field()


CLIENT_ORDER_ID = r"^[A-Za-z0-9_-]{1,36}$"


def _client_order_id_field() -> Any:
    return Field(None, alias="clientOrderId", pattern=CLIENT_ORDER_ID,
                 description="Your own id for the order (1-36 of A-Z a-z 0-9 _ -): unique among your orders; read or "
                             "cancel it at /orders/by-client-id/{clientOrderId}")


class MarketOrderRequest(_TradeFields):
    """A market order: swap ``amountIn`` of ``tokenIn`` for as much ``tokenOut`` as the best venue gives."""

    type: Literal["market"] = "market"
    client_order_id: str | None = _client_order_id_field()

    def to_command(self) -> PlaceOrder:
        return PlaceOrder(self.token_in, self.token_out, self.amount_in, self.slippage_bps, OrderType(self.type),
                          routing=self.routing, client_order_id=self.client_order_id)


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
    routing: RoutingMode = _routing_field()
    client_order_id: str | None = _client_order_id_field()

    @field_validator("limit_price", "min_amount_out")
    @classmethod
    def _positive(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value <= 0:
            raise ValueError("must be greater than zero")
        return value

    def to_command(self) -> PlaceOrder:
        return PlaceOrder(self.token_in, self.token_out, self.amount_in, None, OrderType.LIMIT,
                          Limit(TimeInForce(self.time_in_force), self.limit_price, self.min_amount_out,
                                self.expires_at), routing=self.routing, client_order_id=self.client_order_id)


class SniperConditionsRequest(BaseModel):
    """The checks a launch must pass before a sniper buys."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    min_liquidity: Amount | None = Field(None, alias="minLiquidity",
                                         description="The least the pool must hold of tokenIn, in its units")
    require_mint_revoked: StrictBool = Field(True, alias="requireMintRevoked",
                                             description="Buy only once the token's mint authority is revoked")
    require_freeze_revoked: StrictBool = Field(True, alias="requireFreezeRevoked",
                                               description="Buy only once the token's freeze authority is revoked")
    require_lp_burned: StrictBool = Field(False, alias="requireLpBurned",
                                          description="Buy only once the pool's liquidity is burned")

    @field_validator("min_liquidity")
    @classmethod
    def _positive(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value <= 0:
            raise ValueError("must be greater than zero")
        return value


class SniperOrderRequest(BaseModel):
    """A sniper order: buy ``tokenOut`` with ``amountIn`` of ``tokenIn`` as its first pool opens, only if the
    launch passes the checks."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    type: Literal["sniper"]
    token_in: Literal["USDC", "SOL"] = Field(alias="tokenIn", description="What the sniper pays with")
    token_out: str = Field(alias="tokenOut", min_length=1, max_length=44,
                           description="A listed token's symbol, or a mint address (listed yet or not)")
    amount_in: Amount = Field(alias="amountIn")
    max_price: Amount | None = Field(None, alias="maxPrice",
                                     description="The highest price for the whole size, in tokenIn per tokenOut")
    slippage_bps: StrictInt = Field(500, alias="slippageBps", ge=1, le=5000,
                                    description="The most the output may fall short of the quote at the open, in "
                                                "basis points (launch prices move fast: 5 % by default)")
    expires_at: AwareDatetime = Field(alias="expiresAt", description="ISO 8601 with a timezone, at most 7 days ahead")
    conditions: SniperConditionsRequest = Field(default_factory=lambda: SniperConditionsRequest.model_validate({}))
    delay_seconds: StrictInt = Field(0, alias="delaySeconds", ge=0, le=MAX_DELAY_SECONDS,
                                     description="Waits this long after the pool opens")
    routing: RoutingMode = Field(
        RoutingMode.SMART, description="Taken for every order type alike; a sniper always buys on the one launch pool "
                                       "that passes its checks")
    client_order_id: str | None = _client_order_id_field()

    @field_validator("token_out")
    @classmethod
    def _symbol_or_mint(cls, value: str) -> str:
        if not (SYMBOL.fullmatch(value) or is_mint_address(value)):
            raise ValueError("must be a token's symbol (1-10 letters or digits) or a base58 mint address")
        return value

    @field_validator("amount_in", "max_price")
    @classmethod
    def _positive_and_bounded(cls, amount: Decimal | None, info: ValidationInfo) -> Decimal | None:
        maximum = (info.context or {}).get("max_amount_in", DEFAULT_MAX_AMOUNT_IN)
        if amount is not None and amount <= 0:
            raise ValueError("must be greater than zero")
        if info.field_name == "amount_in" and amount is not None and amount > maximum:
            raise ValueError(f"must be at most {maximum}")
        return amount

    def to_command(self) -> PlaceOrder:
        given = self.conditions
        return PlaceOrder(self.token_in, self.token_out, self.amount_in, self.slippage_bps, OrderType.SNIPER,
                          sniper=Sniper(self.expires_at, self.max_price,
                                        Conditions(given.min_liquidity, given.require_mint_revoked,
                                                   given.require_freeze_revoked, given.require_lp_burned),
                                        self.delay_seconds), routing=self.routing,
                          client_order_id=self.client_order_id)


OrderRequest = MarketOrderRequest | LimitOrderRequest | SniperOrderRequest


class TokenListingRequest(BaseModel):
    """``POST /dex/tokens``: list a new token on the venues."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    symbol: str = Field(pattern=SYMBOL.pattern, description="1 to 10 letters or digits, unique in any case")
    decimals: StrictInt = Field(ge=0, le=9)
    mint: str | None = Field(None, min_length=32, max_length=44, description="A base58 address; a new one if absent")
    mint_authority: Literal["active", "revoked"] = Field("active", alias="mintAuthority")
    freeze_authority: Literal["active", "revoked"] = Field("active", alias="freezeAuthority")

    @field_validator("mint")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not is_mint_address(value):
            raise ValueError("must be a base58 address of 32 bytes")
        return value

    def to_command(self) -> ListToken:
        return ListToken(self.symbol, self.decimals, self.mint, self.mint_authority == "revoked",
                         self.freeze_authority == "revoked")


class RevokeRequest(BaseModel):
    """``POST /dex/tokens/{symbol}/revoke``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    authority: Literal["mint", "freeze"]


class LocalTokenRequest(BaseModel):
    """``POST /local/tokens`` (the local stage only): a token for a user name, as a sign-in page or the CLI asks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$", description="The user the token speaks for (its sub)")
    scope: str | None = Field(None, pattern=r"^(orders:read|orders:write|metrics:read|dex:admin)"
                                            r"( (orders:read|orders:write|metrics:read|dex:admin))*$",
                              description="Narrows the token (space-separated scopes); none: a trader's")


class PoolLaunchRequest(BaseModel):
    """``POST /dex/pools``: open a pool on a venue, swappable from ``openTime``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    venue: Literal["raydium", "meteora"]
    base: str = Field(pattern=SYMBOL.pattern, description="A listed token's symbol")
    quote: str = Field(pattern=SYMBOL.pattern, description="A listed token's symbol")
    base_amount: Amount = Field(alias="baseAmount", description="The base deposited, in its units")
    quote_amount: Amount = Field(alias="quoteAmount", description="The quote deposited; with baseAmount, the price")
    open_time: AwareDatetime | None = Field(None, alias="openTime",
                                            description="No swap before it; now if absent; at most 7 days ahead")
    bin_step: StrictInt | None = Field(None, alias="binStep", ge=1, le=400,
                                       description="Meteora only: each bin's price step, in basis points (25 if "
                                                   "absent)")

    @field_validator("base_amount", "quote_amount")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value

    def to_command(self) -> OpenPool:
        return OpenPool(self.venue, self.base, self.quote, self.base_amount, self.quote_amount, self.open_time,
                        self.bin_step)


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
        return QuoteSwap(self.token_in, self.token_out, self.amount_in, self.slippage_bps, self.routing)


class OrderListQuery(BaseModel):
    """``GET /orders``'s query."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    status: list[Status] = Field(default_factory=list, min_length=1,
                                 description="Only orders in these statuses (comma-separated)")
    type: list[OrderType] = Field(default_factory=list, min_length=1,
                                  description="Only orders of these types (comma-separated)")
    limit: int = Field(20, ge=1, le=100, description="At most this many orders per page")
    cursor: str | None = Field(None, max_length=512, description="The nextCursor of the previous page")
    client_order_id: str | None = Field(None, alias="clientOrderId", pattern=CLIENT_ORDER_ID,
                                        description="Only the order with this clientOrderId")

    @field_validator("status", "type", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    def to_command(self) -> ListOrders:
        return ListOrders(tuple(self.status), tuple(self.type), self.limit, self.cursor, self.client_order_id)


class SubmitMessage(BaseModel):
    """The WebSocket ``submit`` action: places an order and streams its updates on the same connection."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    action: Literal["submit"]
    order: dict[str, Any] = Field(description="The order, as POST /orders takes it")
    idempotency_key: str | None = Field(None, alias="idempotencyKey", min_length=1, max_length=255)


ORDER_TYPES = ("market", "limit", "sniper")


def _field_errors(error: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    return [
        {"field": prefix + (".".join(str(part) for part in e["loc"]) or "body"),
         "message": e["msg"].removeprefix("Value error, ")}
        for e in error.errors(include_url=False)
    ]


def _unprocessable(errors: list[dict[str, str]]) -> Unprocessable:
    return Unprocessable("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)


Trade = TypeVar("Trade", bound=_PairFields)


def _tradable(fields: Trade, hops: bool) -> Trade:
    """Rules across fields, reported against the field a client should change. With ``hops``, two tokens a route
    through a third joins are a pair too."""
    errors = []
    pair = f"{fields.token_in}/{fields.token_out}"
    if fields.token_in == fields.token_out:
        errors.append({"field": "tokenOut", "message": "must differ from tokenIn"})
    elif hops and not routable(fields.token_in, fields.token_out):
        errors.append({"field": "tokenOut", "message": f"no venue lists the pair {pair}, nor a token paired with "
                                                       "both (a route has at most two hops)"})
    elif not hops and pair_of(fields.token_in, fields.token_out) is None:
        why = "" if not routable(fields.token_in, fields.token_out) else (
            ": a limit order's price is in a listed pair's quote token" if isinstance(fields, LimitOrderRequest)
            else ": routing single takes one pool of the pair")
        errors.append({"field": "tokenOut", "message": f"no venue lists the pair {pair}{why}"})
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
    if kind == "sniper":
        return _sniper_order(body, max_amount_in, prefix)
    try:
        order = MarketOrderRequest.model_validate(body, context={"max_amount_in": max_amount_in})
    except ValidationError as error:
        raise _unprocessable(_field_errors(error, prefix)) from None
    return _tradable(order, hops=order.routing is RoutingMode.SMART)


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
    return _tradable(order, hops=False)


def _sniper_order(body: dict[str, Any], max_amount_in: Decimal, prefix: str) -> SniperOrderRequest:
    try:
        order = SniperOrderRequest.model_validate(body, context={"max_amount_in": max_amount_in})
    except ValidationError as error:
        raise _unprocessable(_field_errors(error, prefix)) from None
    errors = []
    token = TOKENS[order.token_in]
    if not token.fits_precision(order.amount_in):
        errors.append({"field": f"{prefix}amountIn",
                       "message": f"{token.symbol} has at most {token.decimals} decimals"})
    if order.token_out in (order.token_in, token.mint):
        errors.append({"field": f"{prefix}tokenOut", "message": "must differ from tokenIn"})
    if errors:
        raise _unprocessable(errors)
    return order


def _admin_body(raw: bytes | None, model: type[Admin]) -> Admin:
    body = parse_json_body(raw)
    if not isinstance(body, dict):
        raise _unprocessable([{"field": "body", "message": "must be a JSON object"}])
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise _unprocessable(_field_errors(error)) from None


Admin = TypeVar("Admin", TokenListingRequest, RevokeRequest, PoolLaunchRequest, LocalTokenRequest)


def parse_local_token(raw: bytes | None) -> LocalTokenRequest:
    return _admin_body(raw, LocalTokenRequest)


def parse_token_listing(raw: bytes | None) -> TokenListingRequest:
    return _admin_body(raw, TokenListingRequest)


def parse_revoke(raw: bytes | None) -> RevokeRequest:
    return _admin_body(raw, RevokeRequest)


def parse_pool_launch(raw: bytes | None) -> PoolLaunchRequest:
    return _admin_body(raw, PoolLaunchRequest)


def parse_order(raw: bytes | None, max_amount_in: Decimal = DEFAULT_MAX_AMOUNT_IN) -> OrderRequest:
    return order_request(parse_json_body(raw), max_amount_in)


def parse_quote_query(params: dict[str, str] | None, max_amount_in: Decimal = DEFAULT_MAX_AMOUNT_IN) -> QuoteQuery:
    try:
        query = QuoteQuery.model_validate(params or {}, context={"max_amount_in": max_amount_in})
    except ValidationError as error:
        raise _unprocessable(_field_errors(error)) from None
    return _tradable(query, hops=query.routing is RoutingMode.SMART)


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
