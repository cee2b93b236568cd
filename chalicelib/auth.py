"""Bearer JWTs (HS256): ``sub`` is the user id and ``exp`` is required.

An optional ``scope`` claim narrows what the token may do: without ``orders:write`` it may read but not place or
cancel orders (a dashboard's token). A token with no ``scope`` may do everything a trader may. ``metrics:read``
is an operator's: only a token that names it may read ``/metrics``, the whole engine's figures. ``dex:admin`` lists
tokens and pools on the mock venues (``/dex/tokens``, ``/dex/pools``), as a token's creator does on a chain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from .services.errors import Unauthenticated

ALGORITHM = "HS256"
TRADE_SCOPE = "orders:write"
METRICS_SCOPE = "metrics:read"
DEX_ADMIN_SCOPE = "dex:admin"  # lists tokens and pools on the mock venues


@dataclass(frozen=True)
class Principal:
    user_id: str
    can_trade: bool = True
    scopes: frozenset[str] = frozenset()

    @property
    def can_read_metrics(self) -> bool:
        return METRICS_SCOPE in self.scopes

    @property
    def can_list_on_venues(self) -> bool:
        return DEX_ADMIN_SCOPE in self.scopes


def issue_token(user_id: str, secret: str, ttl: timedelta = timedelta(hours=12), now: datetime | None = None,
                scope: str | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {"sub": user_id, "iat": issued, "exp": issued + ttl}
    if scope is not None:
        claims["scope"] = scope
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_principal(token: str | None, secret: str) -> Principal:
    """Who the token speaks for; Unauthenticated for anything but a valid, unexpired HS256 token with a ``sub``."""
    if not token:
        raise Unauthenticated("a bearer token is required")
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the token has expired") from None
    except jwt.InvalidTokenError as error:
        raise Unauthenticated(f"the token is not valid: {error}") from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 128:
        raise Unauthenticated("the token's sub claim must name a user (1 to 128 characters)")
    scope = claims.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise Unauthenticated("the token's scope claim must be a space-separated string")
    scopes = frozenset(scope.split()) if scope is not None else frozenset()
    return Principal(subject, scope is None or TRADE_SCOPE in scopes, scopes)


def verify_token(token: str | None, secret: str) -> str:
    """The token's user id (see ``verify_principal``)."""
    return verify_principal(token, secret).user_id
