"""API Gateway's own answers (gateway responses), as problem details.

API Gateway answers some requests before any function runs: no or a bad token, a route that does not exist, a body
over its limit, throttling. By default those bodies are ``{"message": ...}``; the deployed API overrides them with
these (the CDK stack sets them as GatewayResponses) and the local gateway answers the same, so clients see one
error format everywhere.
"""

from __future__ import annotations

import json

PROBLEM_CONTENT_TYPE = "application/problem+json"


# response type -> (status, title, detail)
GATEWAY_RESPONSES: dict[str, tuple[int, str, str]] = {
    "UNAUTHORIZED": (401, "Unauthorized",
                     "a valid bearer token is required: the Authorization header is missing, or its token is "
                     "malformed, forged, expired or names no user"),
    "ACCESS_DENIED": (403, "Forbidden", "this token may not make this request (it lacks the orders:write scope)"),
    # API Gateway answers 403 "Missing Authentication Token" for a route it does not have; clients expect 404.
    "MISSING_AUTHENTICATION_TOKEN": (404, "Not Found", "no such route; GET /openapi.json lists them"),
    "REQUEST_TOO_LARGE": (413, "Content Too Large", "the request is over API Gateway's 10 MB limit"),
    "THROTTLED": (429, "Too Many Requests", "the API is throttling requests; slow down"),
    "DEFAULT_4XX": (400, "Bad Request", "API Gateway refused the request"),
    "DEFAULT_5XX": (502, "Bad Gateway", "the function failed to answer; retry shortly"),
}


def problem(response_type: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a gateway response."""
    status, title, detail = GATEWAY_RESPONSES[response_type]
    body = {"type": f"https://order-engine.dev/problems/{title.lower().replace(' ', '-')}", "title": title,
            "status": status, "detail": detail}
    return status, {"Content-Type": PROBLEM_CONTENT_TYPE}, json.dumps(body, separators=(",", ":")).encode()
