"""What the venues offer, without executing anything: tokens, pools and quotes."""

from __future__ import annotations

import uuid
from decimal import Decimal

from ..domain.commands import QuoteSwap, TradeOnPool
from ..domain.orders import transaction_signature
from ..domain.pools import Pool
from ..domain.routing import NoRoute, RoutingMode, decide_route, min_out
from ..domain.tokens import TOKENS, TokenListing
from ..domain.venues import SlippageExceeded, SwapReceipt, SwapRejected, VenueUnavailable
from .errors import Conflict, Invalid, Unavailable
from .ports import Clock, VenueNetwork
from .read_models import MarketQuote


class Market:
    def __init__(self, venues: VenueNetwork, clock: Clock, min_gain_bps: Decimal = Decimal(1)):
        self._venues = venues
        self._clock = clock
        self._min_gain_bps = min_gain_bps

    def trade(self, user_id: str, trade: TradeOnPool) -> SwapReceipt:
        """A swap straight on one pool by another trader (a wallet, not an order): it moves the price like any swap,
        and the venues publish it as a pool event."""
        pool = next((p for p in self._venues.pools() if p.id == trade.pool_id), None)
        if pool is None:
            raise Invalid(f"no pool {trade.pool_id!r}; GET /pools lists them",
                          [{"field": "poolId", "message": "no such pool"}])
        if trade.token_in not in (pool.base, pool.quote):
            raise Invalid(f"{pool.id} trades {pool.base} and {pool.quote}, not {trade.token_in}",
                          [{"field": "tokenIn", "message": f"must be {pool.base} or {pool.quote}"}])
        token_in = TOKENS[trade.token_in]
        token_out = TOKENS[pool.quote if trade.token_in == pool.base else pool.base]
        least = 0
        if trade.min_amount_out is not None:
            if not token_out.fits_precision(trade.min_amount_out):
                raise Invalid(f"{token_out.symbol} has at most {token_out.decimals} decimals",
                              [{"field": "minAmountOut", "message": "too many decimals"}])
            least = token_out.to_units(trade.min_amount_out)
        signature = transaction_signature(f"wallet:{uuid.uuid4()}")
        try:
            return self._venues.swap(signature, f"wallet:{user_id}", pool.id, token_in.symbol, token_out.symbol,
                                     token_in.to_units(trade.amount_in), least, injected_failures=False)
        except SlippageExceeded as refused:
            raise Conflict(f"the pool refused the swap: {refused}") from None
        except SwapRejected as refused:
            raise Invalid(f"the pool refused the swap: {refused}",
                          [{"field": "amountIn", "message": str(refused)}]) from None
        except VenueUnavailable as refused:
            raise Unavailable(f"the venue did not take the swap: {refused}; try again", retry_after_seconds=1) \
                from None

    def tokens(self) -> list[TokenListing]:
        return self._venues.listings()

    def pools(self) -> list[Pool]:
        return self._venues.pools()

    def swaps(self, order_id: str) -> list[SwapReceipt]:
        """The venues' ledger entries whose transaction memo names this order."""
        return self._venues.swaps_for(order_id)

    def quote(self, query: QuoteSwap) -> MarketQuote:
        """What an order with these fields would get now: every venue's quote and the route the worker would take."""
        token_in, token_out = TOKENS[query.token_in], TOKENS[query.token_out]
        pools = self._venues.route_pools(token_in.symbol, token_out.symbol)
        try:
            decision = decide_route(pools, token_in.symbol, token_out.symbol, token_in.to_units(query.amount_in),
                                    int(self._clock.now().timestamp()), self._min_gain_bps,
                                    single=query.routing is RoutingMode.SINGLE)
        except NoRoute as error:
            raise Invalid(str(error), [{"field": "amountIn", "message": "no venue can fill this amount"}]) \
                from None
        return MarketQuote(token_in, token_out, decision, min_out(decision.chosen.amount_out, query.slippage_bps),
                           query.slippage_bps, query.routing)
