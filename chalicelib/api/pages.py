"""The pages the app serves itself: ``/docs`` (the API reference, rendered in the browser from ``/openapi.json``) and
``/app`` (the web blotter). Every asset comes from ``static/`` in this package: nothing is loaded from outside the
deployment (the Content-Security-Policy says so to the browser), and nothing is built at deploy time."""

from __future__ import annotations

import functools
import html
from importlib import resources

STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# Only the app's own origin: its assets, its API and its WebSocket (another origin on AWS, named by the page).
CSP = ("default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; "
       "script-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class NoSuchAsset(Exception):
    pass


@functools.cache
def asset(name: str) -> tuple[str, str]:
    """The file's text and content type; NoSuchAsset for any name not in ``static/`` (no paths, no dotfiles)."""
    suffix = name[name.rfind("."):] if "." in name else ""
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in STATIC_TYPES:
        raise NoSuchAsset(name)
    file = resources.files(__package__).joinpath("static", name)
    if not file.is_file():
        raise NoSuchAsset(name)
    return file.read_text(encoding="utf-8"), STATIC_TYPES[suffix]


def page(name: str, websocket_url: str) -> str:
    """An HTML page, told where the WebSocket API is."""
    text, _ = asset(name)
    return text.replace("{{websocket_url}}", html.escape(websocket_url, quote=True))


def headers(content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache"}
