"""Supported SPL tokens and conversion between decimal amounts and integer base units."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Token:
    symbol: str
    mint: str
    decimals: int

    def to_units(self, amount: Decimal) -> int:
        """Exact conversion; the caller has already checked the precision."""
        units = amount.scaleb(self.decimals)
        if units != units.to_integral_value():
            raise ValueError(f"{self.symbol} has at most {self.decimals} decimals")
        return int(units)

    def from_units(self, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.decimals)

    def format(self, units: int) -> str:
        """A plain decimal string without trailing zeros, as the API shows amounts ("1.5", not "1.500000000")."""
        return f"{self.from_units(units).normalize():f}"

    def fits_precision(self, amount: Decimal) -> bool:
        exponent = amount.normalize().as_tuple().exponent
        return not isinstance(exponent, int) or -exponent <= self.decimals


TOKENS: dict[str, Token] = {
    t.symbol: t
    for t in (
        Token("SOL", "So11111111111111111111111111111111111111112", 9),
        Token("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6),
        Token("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6),
        Token("JUP", "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN", 6),
    )
}


def token(symbol: str) -> Token:
    return TOKENS[symbol]
