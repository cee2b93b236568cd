"""What the venues offer, without executing anything: tokens, pools and quotes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from ..domain.commands import QuoteSwap
from ..domain.pools import FEE_PRECISION, ConstantProductPool, DlmmPool, Pool
from ..domain.routing import NoRoute, VenueQuote, choose_route, min_out
from ..domain.tokens import TOKENS, Token
from .errors import Invalid


class VenueData(Protocol):
    def pools(self, token_in: str | None = None, token_out: str | None = None) -> list[Pool]: ...

    def quote(self, token_in: str, token_out: str, amount_in: int) -> list[VenueQuote]: ...


def _price(pool: Pool) -> Decimal:
    """Units of quote per unit of base, in human units."""
    base, quote = TOKENS[pool.base], TOKENS[pool.quote]
    return (pool.spot_price(pool.base) * Decimal(10) ** (base.decimals - quote.decimals)).quantize(
        Decimal(1).scaleb(-quote.decimals))


def pool_json(pool: Pool) -> dict[str, Any]:
    base, quote = TOKENS[pool.base], TOKENS[pool.quote]
    common = {"id": pool.id, "venue": pool.venue, "base": base.symbol, "quote": quote.symbol,
              "price": str(_price(pool))}
    if isinstance(pool, ConstantProductPool):
        return {**common, "kind": "constant-product", "feeBps": str(pool.fee_bps),
                "reserves": {"base": base.format(pool.reserve_base), "quote": quote.format(pool.reserve_quote)}}
    assert isinstance(pool, DlmmPool)
    return {
        **common, "kind": "dlmm", "binStep": pool.bin_step, "activeBinId": pool.active_id,
        "feeBps": str(Decimal(pool.total_fee_rate(pool.volatility_accumulator)) * 10_000 / FEE_PRECISION),
        "reserves": {"base": base.format(sum(b for b, _ in pool.bins.values())),
                     "quote": quote.format(sum(q for _, q in pool.bins.values()))},
        "bins": len(pool.bins),
    }


def token_json(token: Token) -> dict[str, Any]:
    return {"symbol": token.symbol, "mint": token.mint, "decimals": token.decimals}


def _quote_json(quote: VenueQuote) -> dict[str, Any]:
    token_in, token_out = TOKENS[quote.token_in], TOKENS[quote.token_out]
    return {"venue": quote.venue, "poolId": quote.pool_id, "outAmount": token_out.format(quote.amount_out),
            "fee": token_in.format(quote.fee), "priceImpactPct": str(quote.price_impact_pct), "error": quote.error}


class Market:
    def __init__(self, venues: VenueData):
        self._venues = venues

    def tokens(self) -> dict[str, Any]:
        return {"tokens": [token_json(t) for t in TOKENS.values()]}

    def pools(self) -> dict[str, Any]:
        return {"pools": [pool_json(p) for p in self._venues.pools()]}

    def quote(self, query: QuoteSwap) -> dict[str, Any]:
        """What an order with these fields would get now: every venue's quote and the route the worker would take."""
        token_in, token_out = TOKENS[query.token_in], TOKENS[query.token_out]
        quotes = self._venues.quote(token_in.symbol, token_out.symbol, token_in.to_units(query.amount_in))
        try:
            decision = choose_route(quotes)
        except NoRoute as error:
            raise Invalid(str(error), [{"field": "amountIn", "message": "no venue can fill this amount"}]) \
                from None
        best = decision.chosen
        return {
            "tokenIn": token_in.symbol,
            "tokenOut": token_out.symbol,
            "inAmount": token_in.format(best.amount_in),
            "outAmount": token_out.format(best.amount_out),
            "minOut": token_out.format(min_out(best.amount_out, query.slippage_bps)),
            "slippageBps": query.slippage_bps,
            "priceImpactPct": str(best.price_impact_pct),
            "fee": token_in.format(best.fee),
            "venue": best.venue,
            "poolId": best.pool_id,
            "reason": decision.reason,
            "quotes": [_quote_json(q) for q in decision.quotes],
        }
