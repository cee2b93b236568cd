"""What the REST API answers: one pydantic model per response shape, which both renders the domain objects and read
models the use cases return (``Model.of(...)``) and documents the shape (``openapi.py`` builds the document from
these same models). A shape is therefore written once, and the document cannot drift from the responses."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from ..domain import orders as domain
from ..domain.markets import fee_bps_now, price_of, reserves_of
from ..domain.pools import DlmmPool, Pool
from ..domain.routing import RecordedDecision, RouteLeg, RoutingMode
from ..domain.routing import VenueQuote as DomainVenueQuote
from ..domain.tokens import TOKENS, TokenListing
from ..domain.venues import LegReceipt, SwapReceipt
from ..services.idempotency import PlacedOrder
from ..services.market import MarketQuote
from ..services.orders import OrderDetails
from ..services.orders import OrderPage as DomainOrderPage

# Times as Python writes them ("…+00:00"), as this API always has; pydantic's own form would end in "Z".
Timestamp = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str),
                      WithJsonSchema({"type": "string", "format": "date-time"})]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def json_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class FieldError(_Out):
    field: str = Field(description="Where the problem is: a body field (dotted path), query parameter or header")
    message: str


class Problem(_Out):
    """RFC 9457 problem details; every error the API answers has this shape (``problems.py`` renders it without
    pydantic, so that refusing costs no import; a test holds the two together)."""

    type: str
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    errors: list[FieldError] | None = None


class OrderAccepted(_Out):
    orderId: str = Field(description="The order's id; with an Idempotency-Key, the same for every repeat")
    status: Literal["pending"]

    @classmethod
    def of(cls, placed: PlacedOrder) -> OrderAccepted:
        return cls.model_validate({"orderId": placed.order_id, "status": str(placed.status)})


class OrderEvent(_Out):
    seq: int = Field(ge=1, description="1, 2, 3... in the order the changes happened")
    status: domain.Status
    at: Timestamp
    data: dict[str, Any] = Field(description="What changed, as the WebSocket's order.update frame carried it")

    @classmethod
    def of(cls, event: domain.OrderEvent) -> OrderEvent:
        return cls(seq=event.seq, status=event.status, at=event.at, data=event.data)


class SwapLeg(_Out):
    """One swap of a transaction, on one pool: on the venues' ledger (GET /dex/swaps) its amounts are in base units,
    as the entry's own; in an order's execution, in the tokens' own units, as the order's."""

    poolId: str
    venue: str
    tokenIn: str
    tokenOut: str
    amountIn: str
    amountOut: str
    fee: str = Field(description="In tokenIn")

    @classmethod
    def of(cls, leg: LegReceipt, base_units: bool) -> SwapLeg:
        def amount(symbol: str, units: int) -> str:
            return str(units) if base_units else TOKENS[symbol].format(units)

        return cls(poolId=leg.pool_id, venue=leg.venue, tokenIn=leg.token_in, tokenOut=leg.token_out,
                   amountIn=amount(leg.token_in, leg.amount_in), amountOut=amount(leg.token_out, leg.amount_out),
                   fee=amount(leg.token_in, leg.fee))


class Execution(_Out):
    venue: str = Field(description="The venue of the pool it swapped on; for a route of several, the route's venues "
                                   "joined by + in route order")
    txSignature: str
    amountOut: str
    minOut: str
    executedPrice: str = Field(description="tokenOut received per tokenIn")
    legs: list[SwapLeg] = Field(description="The swaps of its one transaction, in order (a hop's output is the next "
                                            "leg's input); the last legs' outputs sum to amountOut")

    @classmethod
    def of(cls, order: domain.Order) -> Execution | None:
        if order.status is not domain.Status.CONFIRMED:
            return None
        assert order.venue is not None and order.tx_signature is not None  # a confirmed order has both
        return cls(venue=order.venue, txSignature=order.tx_signature,
                   amountOut=order.token_out.format(order.amount_out or 0),
                   minOut=order.token_out.format(order.min_out or 0), executedPrice=str(order.executed_price),
                   legs=[SwapLeg.of(leg, base_units=False) for leg in order.legs])


class RoutedQuote(_Out):
    """One venue's quote as the worker saw it when it routed the order."""

    venue: str
    poolId: str
    tokenIn: str
    tokenOut: str
    amountIn: str
    amountOut: str
    fee: str = Field(description="In tokenIn")
    priceImpactPct: str
    error: str | None = Field(description="Why this venue could not fill, if it could not")

    @classmethod
    def of(cls, quote: DomainVenueQuote) -> RoutedQuote:
        token_in, token_out = TOKENS[quote.token_in], TOKENS[quote.token_out]
        return cls(venue=quote.venue, poolId=quote.pool_id, tokenIn=quote.token_in, tokenOut=quote.token_out,
                   amountIn=token_in.format(quote.amount_in), amountOut=token_out.format(quote.amount_out),
                   fee=token_in.format(quote.fee), priceImpactPct=str(quote.price_impact_pct), error=quote.error)


class RoutePlanLeg(_Out):
    """One swap of the route, as quoted when it was chosen (amounts in the tokens' own units)."""

    venue: str
    poolId: str
    tokenIn: str
    tokenOut: str
    inAmount: str
    outAmount: str
    fee: str = Field(description="In tokenIn")
    priceImpactPct: str
    percent: str = Field(description="The share of the order's input its route carries: the percents of the first "
                                     "hop's legs sum to 100 (a hop's second leg carries its first leg's share)")

    @classmethod
    def of(cls, leg: RouteLeg) -> RoutePlanLeg:
        quote = leg.quote
        token_in, token_out = TOKENS[quote.token_in], TOKENS[quote.token_out]
        return cls(venue=quote.venue, poolId=quote.pool_id, tokenIn=quote.token_in, tokenOut=quote.token_out,
                   inAmount=token_in.format(quote.amount_in), outAmount=token_out.format(quote.amount_out),
                   fee=token_in.format(quote.fee), priceImpactPct=str(quote.price_impact_pct),
                   percent=f"{leg.percent.normalize():f}")


GainBps = Field(description="What the route gives over the best single pool of the pair, in basis points (0 for one "
                            "pool; null when no pool trades the pair directly)")


class Routing(_Out):
    venue: str = Field(description="The chosen pool's venue; for a route of several, its venues joined by + in route "
                                   "order")
    reason: str
    quotes: list[RoutedQuote] = Field(description="Every pool of the pair, as quoted for the whole amount")
    decidedAt: Timestamp
    routePlan: list[RoutePlanLeg] = Field(description="The route's swaps in order: one for a single pool")
    otherAmountThreshold: str | None = Field(description="The least output the swap accepts (after slippage, or the "
                                                         "limit), in tokenOut")
    gainBps: str | None = GainBps

    @classmethod
    def of(cls, decision: RecordedDecision | None, order: domain.Order) -> Routing | None:
        if decision is None:
            return None
        legs = decision.legs or tuple(RouteLeg.whole(q) for q in decision.quotes
                                      if q.venue == decision.venue and q.error is None)[:1]
        return cls(venue=decision.venue, reason=decision.reason, quotes=[RoutedQuote.of(q) for q in decision.quotes],
                   decidedAt=decision.decided_at, routePlan=[RoutePlanLeg.of(leg) for leg in legs],
                   otherAmountThreshold=None if order.min_out is None else order.token_out.format(order.min_out),
                   gainBps=None if decision.gain_bps is None else f"{decision.gain_bps:f}")


class SniperConditions(_Out):
    minLiquidity: str | None = Field(description="The least the pool must hold of tokenIn")
    requireMintRevoked: bool
    requireFreezeRevoked: bool
    requireLpBurned: bool


class OrderSummary(_Out):
    """An order as lists show it: its current state without the event history."""

    orderId: str
    type: domain.OrderType
    status: domain.Status
    tokenIn: str
    tokenOut: str
    amountIn: str
    slippageBps: int | None = Field(description="A market or sniper order's tolerance; null on a limit order")
    createdAt: Timestamp
    updatedAt: Timestamp
    venue: str | None = Field(description="The venue chosen, once routed")
    execution: Execution | None = Field(description="The fill, once confirmed")
    failureReason: str | None
    side: Literal["buy", "sell"] | None = Field(None, description="A limit order's side, of the pair's base token")
    limitPrice: str | None = Field(None, description="A limit order's price, in the pair's quote token per base "
                                                     "token: given, or derived from minAmountOut")
    minAmountOut: str | None = Field(None, description="The least a limit order accepts in tokenOut for its whole "
                                                       "size: given, or derived from limitPrice in the trader's favour")
    timeInForce: Literal["GTC", "GTD", "IOC", "FOK"] | None = None
    expiresAt: Timestamp | None = Field(None, description="When a resting limit or sniper order expires")
    maxPrice: str | None = Field(None, description="A sniper's highest price for its whole size, in tokenIn per "
                                                   "tokenOut")
    delaySeconds: int | None = Field(None, description="How long a sniper waits after its pool opens")
    conditions: SniperConditions | None = Field(None, description="A sniper's checks of the launch")
    clientOrderId: str | None = Field(None, description="The trader's own id for the order, if given")
    routingMode: RoutingMode = Field(RoutingMode.SMART, description="The order's routing as placed: smart "
                                                                         "routes over every pool (splits, hops); "
                                                                         "single keeps one pool")

    @classmethod
    def fields_of(cls, order: domain.Order) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "orderId": order.id, "type": order.type, "status": order.status, "tokenIn": order.token_in.symbol,
            "tokenOut": order.token_out.symbol, "amountIn": order.token_in.format(order.amount_in),
            "slippageBps": order.slippage_bps, "createdAt": order.created_at, "updatedAt": order.updated_at,
            "venue": order.venue, "execution": Execution.of(order), "failureReason": order.failure_reason,
            "routingMode": order.routing, "clientOrderId": order.client_order_id,
        }
        if order.limit is not None:
            terms = order.limit
            fields.update(side=str(terms.side), limitPrice=f"{terms.limit_price.normalize():f}",
                          minAmountOut=order.token_out.format(terms.min_amount_out),
                          timeInForce=str(terms.time_in_force), expiresAt=terms.expires_at)
        if order.sniper is not None:
            sniper = order.sniper
            fields.update(expiresAt=sniper.expires_at, delaySeconds=sniper.delay_seconds,
                          maxPrice=None if sniper.max_price is None else f"{sniper.max_price.normalize():f}",
                          conditions=SniperConditions(**sniper.conditions.to_json()))
        return fields

    @classmethod
    def of(cls, order: domain.Order) -> OrderSummary:
        return cls(**cls.fields_of(order))


class Executable(_Out):
    """Why an open limit order has not filled yet, computed when it is read."""

    quotedOut: str = Field(description="The venues' best output for the order's whole size now, in tokenOut")
    requiredOut: str = Field(description="The least the order accepts (its minAmountOut)")
    shortfallBps: str = Field(description="How far the quote is below the requirement, in basis points of it")


class Order(OrderSummary):
    """An order whole: its summary, every event as the WebSocket sent it, and the routing decision."""

    events: list[OrderEvent] = Field(description="Every status the order went through, as the WebSocket sent them")
    routing: Routing | None = Field(description="The route chosen, its swaps, every pool's quote and why")
    executable: Executable | None = Field(None, description="An open limit order only: the best quote for its "
                                                            "whole size against its limit, now")
    waitingFor: list[str] | None = Field(None, description="An open sniper only: what its launch has yet to do "
                                                           "(its pool to open, an authority revoked, ...), now")

    @classmethod
    def of_details(cls, details: OrderDetails) -> Order:
        order, executable = details.order, details.executable
        return cls(**OrderSummary.fields_of(order), events=[OrderEvent.of(e) for e in details.events],
                   routing=Routing.of(details.routing, order),
                   executable=None if executable is None else Executable(
                       quotedOut=order.token_out.format(executable.quoted_out),
                       requiredOut=order.token_out.format(executable.required_out),
                       shortfallBps=str(executable.shortfall_bps)),
                   waitingFor=None if details.waiting_for is None else list(details.waiting_for))


class OrderPage(_Out):
    orders: list[OrderSummary]
    nextCursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")

    @classmethod
    def of(cls, page: DomainOrderPage) -> OrderPage:
        return cls(orders=[OrderSummary.of(o) for o in page.orders], nextCursor=page.next_cursor)


class VenueQuote(_Out):
    venue: str
    poolId: str
    outAmount: str
    fee: str
    priceImpactPct: str
    error: str | None

    @classmethod
    def of(cls, quote: DomainVenueQuote) -> VenueQuote:
        return cls(venue=quote.venue, poolId=quote.pool_id, outAmount=TOKENS[quote.token_out].format(quote.amount_out),
                   fee=TOKENS[quote.token_in].format(quote.fee), priceImpactPct=str(quote.price_impact_pct),
                   error=quote.error)


class Quote(_Out):
    tokenIn: str
    tokenOut: str
    inAmount: str
    outAmount: str
    minOut: str = Field(description="The least an order with this slippageBps would accept")
    slippageBps: int
    priceImpactPct: str
    fee: str = Field(description="The route's fees, in tokenIn (of its first swaps)")
    venue: str = Field(description="The chosen pool's venue; for a route of several, its venues joined by + in route "
                                   "order")
    poolId: str = Field(description="The chosen pool; for a route of several, its first swap's")
    reason: str
    quotes: list[VenueQuote] = Field(description="Every pool of the pair, as quoted for the whole amount")
    routing: RoutingMode = Field(description="As asked: smart routes over every pool, single keeps one")
    routePlan: list[RoutePlanLeg] = Field(description="The route's swaps in order: one for a single pool")
    otherAmountThreshold: str = Field(description="The least output after slippage (minOut)")
    gainBps: str | None = GainBps

    @classmethod
    def of(cls, quote: MarketQuote) -> Quote:
        decision = quote.decision
        best, token_in, token_out = decision.chosen, quote.token_in, quote.token_out
        return cls(tokenIn=token_in.symbol, tokenOut=token_out.symbol, inAmount=token_in.format(best.amount_in),
                   outAmount=token_out.format(best.amount_out), minOut=token_out.format(quote.min_out),
                   slippageBps=quote.slippage_bps, priceImpactPct=str(best.price_impact_pct),
                   fee=token_in.format(best.fee), venue=best.venue, poolId=best.pool_id,
                   reason=decision.reason, quotes=[VenueQuote.of(q) for q in decision.quotes],
                   routing=quote.routing, routePlan=[RoutePlanLeg.of(leg) for leg in decision.route_legs],
                   otherAmountThreshold=token_out.format(quote.min_out),
                   gainBps=None if decision.gain_bps is None else f"{decision.gain_bps:f}")


class TokenInfo(_Out):
    symbol: str
    mint: str
    decimals: int
    mintAuthority: Literal["active", "revoked"] = Field(description="Active: more of the token can be minted")
    freezeAuthority: Literal["active", "revoked"] = Field(description="Active: a holder's account can be frozen")

    @classmethod
    def of(cls, listing: TokenListing) -> TokenInfo:
        t = listing.token
        return cls(symbol=t.symbol, mint=t.mint, decimals=t.decimals,
                   mintAuthority="revoked" if listing.mint_authority_revoked else "active",
                   freezeAuthority="revoked" if listing.freeze_authority_revoked else "active")


class Tokens(_Out):
    tokens: list[TokenInfo]

    @classmethod
    def of(cls, listings: Iterable[TokenListing]) -> Tokens:
        return cls(tokens=[TokenInfo.of(t) for t in listings])


class Reserves(_Out):
    base: str
    quote: str


class _PoolInfo(_Out):
    id: str
    venue: Literal["raydium", "meteora"]
    base: str
    quote: str
    price: str = Field(description="Units of quote per unit of base")
    feeBps: str = Field(description="The fee a swap pays now, in basis points (Meteora's varies with volatility)")
    reserves: Reserves
    openTime: Timestamp = Field(description="No swap before it (the epoch for the genesis pools)")
    lpBurned: bool = Field(description="The pool's liquidity is burned: it can never be withdrawn")


class ConstantProductPoolInfo(_PoolInfo):
    """A Raydium pool: x·y = k over its two reserves."""

    kind: Literal["constant-product"]


class DlmmPoolInfo(_PoolInfo):
    """A Meteora DLMM pool: liquidity in price bins, the active one trading at its bin's price."""

    kind: Literal["dlmm"]
    binStep: int = Field(description="Each bin's price is (1 + binStep / 10,000) times the previous one's")
    activeBinId: int
    bins: int = Field(description="How many bins hold liquidity")


PoolInfo = Annotated[ConstantProductPoolInfo | DlmmPoolInfo, Field(discriminator="kind")]


def pool_info(pool: Pool) -> ConstantProductPoolInfo | DlmmPoolInfo:
    base, quote = TOKENS[pool.base], TOKENS[pool.quote]
    base_units, quote_units = reserves_of(pool)
    common: dict[str, Any] = {
        "id": pool.id, "venue": pool.venue, "base": base.symbol, "quote": quote.symbol, "price": str(price_of(pool)),
        "feeBps": str(fee_bps_now(pool)), "reserves": Reserves(base=base.format(base_units),
                                                               quote=quote.format(quote_units)),
        "openTime": datetime.fromtimestamp(pool.open_time, UTC), "lpBurned": pool.lp_burned,
    }
    if isinstance(pool, DlmmPool):
        return DlmmPoolInfo(**common, kind="dlmm", binStep=pool.bin_step, activeBinId=pool.active_id,
                            bins=len(pool.bins))
    return ConstantProductPoolInfo(**common, kind="constant-product")


class Pools(_Out):
    pools: list[PoolInfo]

    @classmethod
    def of(cls, pools: Iterable[Pool]) -> Pools:
        return cls(pools=[pool_info(p) for p in pools])


class LaunchedPool(_Out):
    """A pool just opened on a venue: its id, opening price and open time, and the pool as GET /pools shows it."""

    poolId: str
    price: str = Field(description="Its opening price, in quote per base")
    openTime: Timestamp
    pool: PoolInfo

    @classmethod
    def of(cls, pool: Pool) -> LaunchedPool:
        info = pool_info(pool)
        return cls(poolId=pool.id, price=info.price, openTime=info.openTime, pool=info)


class Swap(_Out):
    """One swap on a venue's ledger; amounts in base units, as a chain's transaction records them."""

    signature: str
    orderId: str = Field(description="The order whose signed transaction carried this swap (its memo)")
    poolId: str
    venue: str
    tokenIn: str
    tokenOut: str
    amountIn: str
    amountOut: str
    fee: str
    slot: int
    executedAt: Timestamp
    legs: list[SwapLeg] = Field(description="The transaction's swaps in order (one for a single swap); the fields "
                                            "above are its totals, with its first leg's pool and venue")

    @classmethod
    def of(cls, receipt: SwapReceipt) -> Swap:
        return cls(signature=receipt.signature, orderId=receipt.memo, poolId=receipt.pool_id, venue=receipt.venue,
                   tokenIn=receipt.token_in, tokenOut=receipt.token_out, amountIn=str(receipt.amount_in),
                   amountOut=str(receipt.amount_out), fee=str(receipt.fee), slot=receipt.slot,
                   executedAt=receipt.executed_at, legs=[SwapLeg.of(leg, base_units=True) for leg in receipt.swaps])


class Swaps(_Out):
    orderId: str
    swaps: list[Swap]

    @classmethod
    def of(cls, order_id: str, receipts: Iterable[SwapReceipt]) -> Swaps:
        return cls(orderId=order_id, swaps=[Swap.of(r) for r in receipts])


class LocalToken(_Out):
    """A bearer token the local stage minted (its JWT secret is public: never on AWS)."""

    token: str
    user: str
    scope: str | None
    expiresAt: Timestamp


class Health(_Out):
    status: Literal["ok", "down"]
    down: list[str]
    checks: dict[str, str] = Field(description="Each dependency: ok, or down with the kind of error")

    @classmethod
    def of(cls, checks: dict[str, str]) -> Health:
        down = sorted(name for name, result in checks.items() if result != "ok")
        return cls(status="down" if down else "ok", down=down, checks=checks)
