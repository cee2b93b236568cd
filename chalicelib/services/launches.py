"""Listing on the mock venues, as creators do on a chain: a token (its mint and authorities), a pool that opens at
a set time, an authority revoked, a pool's liquidity burned. Each change of a pool is published as a pool event."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ..domain.commands import ListToken, OpenPool
from ..domain.markets import launched_meteora_pool, launched_raydium_pool
from ..domain.pools import METEORA, RAYDIUM, Pool
from ..domain.tokens import SYMBOL, TOKENS, Token, TokenListing, is_mint_address, new_mint_address
from ..domain.venues import ListingConflict
from .errors import Conflict, Invalid, NotFound
from .ports import Clock, Launchpad

MAX_OPEN_AHEAD = timedelta(days=7)
LATEST_PAST_OPEN = timedelta(seconds=60)  # an open time this far back still means "now" (a clock's skew)
DEFAULT_BIN_STEP = 25
BIN_STEPS = range(1, 401)


class Launches:
    def __init__(self, venues: Launchpad, clock: Clock):
        self._venues = venues
        self._clock = clock

    def list_token(self, command: ListToken) -> TokenListing:
        if not SYMBOL.fullmatch(command.symbol):
            raise _invalid("symbol", "1 to 10 letters or digits")
        if not 0 <= command.decimals <= 9:
            raise _invalid("decimals", "0 to 9")
        if command.mint is not None and not is_mint_address(command.mint):
            raise _invalid("mint", "a base58 address of 32 bytes")
        token = Token(command.symbol, command.mint or new_mint_address(), command.decimals)
        try:
            listed = self._venues.list_token(TokenListing(token, command.mint_authority_revoked,
                                                          command.freeze_authority_revoked))
        except ListingConflict as taken:
            raise Conflict(str(taken)) from None
        TOKENS.learn(listed.token)
        return listed

    def revoke(self, symbol: str, authority: str) -> TokenListing:
        if authority not in ("mint", "freeze"):
            raise _invalid("authority", 'must be "mint" or "freeze"')
        revoked = self._venues.revoke(symbol, authority)
        if revoked is None:
            raise NotFound(f"no token {symbol!r} is listed; GET /tokens lists them")
        return revoked

    def open_pool(self, command: OpenPool) -> Pool:
        now = self._clock.now()
        base, quote = _listed(command.base, "base"), _listed(command.quote, "quote")
        if base.symbol == quote.symbol:
            raise _invalid("quote", "must differ from base")
        if command.venue not in (RAYDIUM, METEORA):
            raise _invalid("venue", f'must be "{RAYDIUM}" or "{METEORA}"')
        base_units = _units(base, command.base_amount, "baseAmount")
        quote_units = _units(quote, command.quote_amount, "quoteAmount")
        open_time = _open_time(command.open_time, now)
        if command.venue == RAYDIUM:
            if command.bin_step is not None:
                raise _invalid("binStep", "a Raydium pool has no bins")
            pool = launched_raydium_pool(base.symbol, quote.symbol, base_units, quote_units, open_time)
        else:
            bin_step = DEFAULT_BIN_STEP if command.bin_step is None else command.bin_step
            if bin_step not in BIN_STEPS:
                raise _invalid("binStep", f"{BIN_STEPS.start} to {BIN_STEPS.stop - 1} basis points")
            pool = launched_meteora_pool(base.symbol, quote.symbol, base_units, quote_units, bin_step, open_time)
        try:
            return self._venues.open_pool(pool)
        except ListingConflict as taken:
            raise Conflict(str(taken)) from None

    def burn_lp(self, pool_id: str) -> Pool:
        burned = self._venues.burn_lp(pool_id)
        if burned is None:
            raise NotFound(f"no pool {pool_id!r}; GET /pools lists them")
        return burned


def _invalid(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", [{"field": field, "message": message}])


def _listed(symbol: str, field: str) -> Token:
    found = TOKENS.resolve(symbol)
    if found is None or found.symbol != symbol:
        raise _invalid(field, f"{symbol!r} is not a listed token's symbol (POST /dex/tokens lists one)")
    return found


def _units(token: Token, amount: Decimal, field: str) -> int:
    if not amount.is_finite() or amount <= 0:
        raise _invalid(field, "must be greater than zero")
    if not token.fits_precision(amount):
        raise _invalid(field, f"{token.symbol} has at most {token.decimals} decimals")
    return token.to_units(amount)


def _open_time(asked: datetime | None, now: datetime) -> int:
    """Whole seconds, as a chain's clock counts them (a fraction opens at the next second)."""
    if asked is None:
        return math.ceil(now.timestamp())
    if asked.tzinfo is None:
        raise _invalid("openTime", "needs a timezone (e.g. 2026-12-01T12:00:00Z)")
    if asked < now - LATEST_PAST_OPEN:
        raise _invalid("openTime", "is more than 60 s in the past")
    if asked > now + MAX_OPEN_AHEAD:
        raise _invalid("openTime", "may be at most 7 days ahead")
    return math.ceil(asked.astimezone(UTC).timestamp())
