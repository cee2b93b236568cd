"""The pages the app serves: only the files of its static folder, told where the WebSocket is, under a policy that
lets the browser load nothing from outside the deployment."""

from __future__ import annotations

import re

import pytest

from chalicelib.api import pages
from chalicelib.settings import Settings


@pytest.mark.parametrize("name", ["../pages.py", "..%2Fpages.py", ".hidden.js", "app", "app.py", "a/b.js", "", "x.png"])
def test_nothing_but_the_static_files_is_served(name):
    with pytest.raises(pages.NoSuchAsset):
        pages.asset(name)


def test_each_page_and_asset_is_served_with_its_type_and_loads_nothing_from_elsewhere():
    for name, kind in (("app.html", "text/html"), ("app.js", "text/javascript"), ("app.css", "text/css"),
                       ("docs.html", "text/html"), ("docs.js", "text/javascript"), ("docs.css", "text/css")):
        text, content_type = pages.asset(name)
        assert content_type.startswith(kind)
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), f"{name} loads from elsewhere"
        outside = text.replace("http://www.w3.org/2000/svg", "")  # SVG's namespace: a name, never fetched
        assert "http://" not in outside and "https://" not in outside
    assert "default-src 'self'" in pages.headers("text/html")["Content-Security-Policy"]


def test_the_blotter_is_told_where_the_websocket_is_locally_and_on_aws():
    local = Settings.from_env({"WEBSOCKET_ENDPOINT_URL": "http://127.0.0.1:8001/api"})
    assert local.websocket_client_url == "ws://127.0.0.1:8001/api"
    aws = Settings.from_env({"STAGE": "prod", "WEBSOCKET_API_ID": "abc123", "AWS_REGION": "eu-west-1",
                             "WEBSOCKET_STAGE": "api"})
    assert aws.websocket_client_url == "wss://abc123.execute-api.eu-west-1.amazonaws.com/api"
    html = pages.page("app.html", 'wss://x/"><script>')
    assert '<meta name="websocket-url" content="wss://x/&quot;&gt;&lt;script&gt;">' in html
