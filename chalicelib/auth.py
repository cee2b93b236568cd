"""Bearer JWTs (HS256): ``sub`` is the user id and ``exp`` is required."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from .errors import Unauthorized

ALGORITHM = "HS256"


def issue_token(user_id: str, secret: str, ttl: timedelta = timedelta(hours=12), now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    return jwt.encode({"sub": user_id, "iat": issued, "exp": issued + ttl}, secret, algorithm=ALGORITHM)


def verify_token(token: str | None, secret: str) -> str:
    """The token's user id; Unauthorized for anything but a valid, unexpired HS256 token with a ``sub``."""
    if not token:
        raise Unauthorized("a bearer token is required")
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired") from None
    except jwt.InvalidTokenError as error:
        raise Unauthorized(f"the token is not valid: {error}") from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject.strip():
        raise Unauthorized("the token's sub claim must name a user")
    return subject
