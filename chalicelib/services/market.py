"""What the venues offer, without executing anything: tokens, pools and quotes."""

from __future__ import annotations

from ..domain.commands import QuoteSwap
from ..domain.pools import Pool
from ..domain.routing import NoRoute, choose_route, min_out
from ..domain.tokens import TOKENS, Token
from ..domain.venues import SwapReceipt
from .errors import Invalid
from .ports import VenueData
from .read_models import MarketQuote


class Market:
    def __init__(self, venues: VenueData):
        self._venues = venues

    def tokens(self) -> list[Token]:
        return list(TOKENS.values())

    def pools(self) -> list[Pool]:
        return self._venues.pools()

    def swaps(self, order_id: str) -> list[SwapReceipt]:
        """The venues' ledger entries whose transaction memo names this order."""
        return self._venues.swaps_for(order_id)

    def quote(self, query: QuoteSwap) -> MarketQuote:
        """What an order with these fields would get now: every venue's quote and the route the worker would take."""
        token_in, token_out = TOKENS[query.token_in], TOKENS[query.token_out]
        quotes = self._venues.quote(token_in.symbol, token_out.symbol, token_in.to_units(query.amount_in))
        try:
            decision = choose_route(quotes)
        except NoRoute as error:
            raise Invalid(str(error), [{"field": "amountIn", "message": "no venue can fill this amount"}]) \
                from None
        return MarketQuote(token_in, token_out, decision, min_out(decision.chosen.amount_out, query.slippage_bps),
                           query.slippage_bps)
