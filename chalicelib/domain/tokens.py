"""SPL tokens: conversion between decimal amounts and integer base units, and the registry of listed tokens.

The venues keep the registry (their database); each process keeps what it has learnt of it. A token's symbol, mint
and decimals never change once listed, so what a process learnt stays true, and a token it has not seen yet is
looked up on first use through the loader the wiring installs (``TokenRegistry.learn_with``): this module does no
I/O itself. What may change (a mint or freeze authority revoked) is never cached: it is read from the venues.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_TEXT = re.compile(f"^[{_BASE58}]{{32,44}}$")
SYMBOL = re.compile(r"^[A-Za-z0-9]{1,10}$")


@dataclass(frozen=True)
class Token:
    symbol: str
    mint: str
    decimals: int
    listed: bool = True  # False: a mint no venue lists yet (a sniper's target); its symbol is the mint itself

    @classmethod
    def unlisted(cls, mint: str) -> Token:
        return cls(mint, mint, 0, listed=False)

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


@dataclass(frozen=True)
class TokenListing:
    """A listed token with its authorities as the venues hold them now. A sniper checks them: an active mint
    authority can print more of the token, an active freeze authority can freeze a buyer's account."""

    token: Token
    mint_authority_revoked: bool
    freeze_authority_revoked: bool


def is_mint_address(text: str) -> bool:
    """A Solana address: base58 for 32 bytes."""
    if not _BASE58_TEXT.fullmatch(text):
        return False
    number = 0
    for char in text:
        number = number * 58 + _BASE58.index(char)
    leading_zeros = len(text) - len(text.lstrip("1"))
    return leading_zeros + (number.bit_length() + 7) // 8 == 32


def new_mint_address() -> str:
    """A fresh random address, as a mint keypair's public key would be."""
    raw = os.urandom(32)
    number = int.from_bytes(raw, "big")
    chars = []
    while number:
        number, rem = divmod(number, 58)
        chars.append(_BASE58[rem])
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + "".join(reversed(chars))


GENESIS_TOKENS = (
    Token("SOL", "So11111111111111111111111111111111111111112", 9),
    Token("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6),
    Token("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6),
    Token("JUP", "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN", 6),
)


class TokenRegistry(Mapping[str, Token]):
    """Listed tokens by symbol, as this process knows them; a symbol (or mint) it does not know is asked of the
    loader once per lookup, so a token listed by another process is known here from its first use."""

    def __init__(self, genesis: tuple[Token, ...]):
        self._genesis = genesis
        self._by_symbol: dict[str, Token] = {}
        self._by_mint: dict[str, Token] = {}
        self._loader: Callable[[str], Token | None] = lambda key: None
        self.forget_learnt()

    def learn_with(self, loader: Callable[[str], Token | None]) -> None:
        """``loader(symbol_or_mint)``: the listed token, or None."""
        self._loader = loader

    def forget_learnt(self) -> None:
        """Back to the genesis tokens alone (tests start from it)."""
        self._by_symbol = {t.symbol: t for t in self._genesis}
        self._by_mint = {t.mint: t for t in self._genesis}

    def learn(self, token: Token) -> Token:
        self._by_symbol[token.symbol] = token
        self._by_mint[token.mint] = token
        return token

    def __getitem__(self, symbol: str) -> Token:
        found = self._by_symbol.get(symbol)
        if found is None:
            found = self._look_up(symbol)
            if found is None or found.symbol != symbol:
                raise KeyError(symbol)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._by_symbol))

    def __len__(self) -> int:
        return len(self._by_symbol)

    def by_mint(self, mint: str) -> Token | None:
        found = self._by_mint.get(mint)
        if found is None:
            found = self._look_up(mint)
            if found is not None and found.mint != mint:
                return None
        return found

    def resolve(self, symbol_or_mint: str) -> Token | None:
        """The listed token a symbol or a mint names; None if no venue lists it."""
        found = self._by_symbol.get(symbol_or_mint) or self._by_mint.get(symbol_or_mint)
        return found or self._look_up(symbol_or_mint)

    def resolve_or_unlisted(self, symbol_or_mint: str) -> Token:
        """As ``resolve``, but a mint no venue lists yet stands for itself (a sniper waiting for its listing)."""
        found = self.resolve(symbol_or_mint)
        if found is not None:
            return found
        if not is_mint_address(symbol_or_mint):
            raise KeyError(symbol_or_mint)
        return Token.unlisted(symbol_or_mint)

    def _look_up(self, key: str) -> Token | None:
        if not (SYMBOL.fullmatch(key) or _BASE58_TEXT.fullmatch(key)):
            return None  # nothing could be listed under it: no need to ask
        found = self._loader(key)
        return self.learn(found) if found is not None else None


TOKENS = TokenRegistry(GENESIS_TOKENS)


def token(symbol: str) -> Token:
    return TOKENS[symbol]
