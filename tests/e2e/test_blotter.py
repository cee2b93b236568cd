"""The web blotter (issue 20) in headless Chromium (Debian's, driven by Playwright) against the running local cloud:
sign in, place a market order and watch its row reach confirmed with every seq, a limit order that rests and fills
when another user's trades move the price, a cancel, a pool's price moving after a trade, the API reference page,
and no console error anywhere. Screenshots go to .local/test-artifacts/."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import running_cloud

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("BROWSER_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".local" / "test-artifacts"
# As the machine needs it: no sandbox as root, and none of Chromium's own calls home (refused here, and noisy).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not Path(CHROMIUM).exists():
    pytest.skip(f"no {CHROMIUM}: install Debian's chromium package (make test does, as root)", allow_module_level=True)

from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def cloud():
    with running_cloud(DEX_FAILURE_RATE="0", DEX_QUOTE_LATENCY_MS="1-5", DEX_SWAP_LATENCY_MS="20-50") as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, console_errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.on("console", lambda message: _record(console_errors, message))
    opened.on("pageerror", lambda error: console_errors.append(f"page error: {error}"))
    yield opened
    context.close()
    assert console_errors == [], f"the page logged errors: {console_errors}"


def _record(problems: list[str], message: ConsoleMessage) -> None:
    if message.type == "error":
        problems.append(message.text)


def token_for(cloud, user: str) -> str:
    answer = requests.post(f"{cloud.http}/local/tokens", json={"user": user}, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def sign_in(page: Page, cloud, user: str) -> None:
    page.goto(f"{cloud.http}/app")
    page.get_by_label("User name (the local stage mints a token)").fill(user)
    page.get_by_role("button", name="Sign in as this user").click()
    expect(page.locator("#who")).to_have_text(f"Signed in as {user}")
    expect(page.locator("#stream-state")).to_have_text("Live")


def order_row(page: Page, order_id: str):
    return page.locator(f'tr[data-order-id="{order_id}"]')


def place_from_ticket(page: Page, **fields: str) -> str:
    """Fills the ticket, places the order and returns its id (the row it adds)."""
    before = set(page.locator("#orders tbody tr").evaluate_all("rows => rows.map(r => r.dataset.orderId)"))
    page.get_by_label("Type").select_option(fields.pop("type", "market"))
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Place order").click()
    page.wait_for_function("n => document.querySelectorAll('#orders tbody tr').length > n", arg=len(before))
    after = page.locator("#orders tbody tr").evaluate_all("rows => rows.map(r => r.dataset.orderId)")
    (order_id,) = set(after) - before
    return order_id


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"blotter-{name}.png"), full_page=True)


def test_a_market_order_placed_from_the_ticket_reaches_confirmed_with_every_seq(page: Page, cloud):
    sign_in(page, cloud, f"web-{uuid.uuid4().hex[:6]}")
    page.get_by_label("Amount").fill("1.5")
    expect(page.locator("#preview-summary")).to_contain_text("1.5 SOL → ")  # the live quote preview
    expect(page.locator("#preview-summary")).to_contain_text("minimum out")
    expect(page.locator("#preview-legs li")).to_have_count(1)
    order_id = place_from_ticket(page, **{"Amount": "1.5", "Slippage (bp)": "100"})
    row = order_row(page, order_id)
    expect(row.locator(".status")).to_have_text("confirmed", timeout=15_000)
    expect(row.locator(".seq")).to_have_text("5")
    expect(row.locator("td").nth(1)).to_have_text("market")
    expect(row.locator(".steps")).to_contain_text("pending → routing +")
    for status in ("building", "submitted", "confirmed"):
        expect(row.locator(".steps")).to_contain_text(status)
    assert Decimal(row.locator(".out").inner_text()) > 200  # 1.5 SOL at about 150
    expect(row.get_by_role("button", name=f"Cancel order {order_id}")).to_be_hidden()
    screenshot(page, "confirmed")


def test_a_resting_limit_order_fills_when_another_users_trades_move_the_price_and_another_is_cancelled(
        page: Page, cloud):
    user = f"web-{uuid.uuid4().hex[:6]}"
    sign_in(page, cloud, user)
    price = Decimal(requests.get(f"{cloud.http}/quote", params={"tokenIn": "SOL", "tokenOut": "USDC",
                                                                "amountIn": "2"}, timeout=10).json()["outAmount"]) / 2
    limit = (price * Decimal("1.004")).quantize(Decimal("0.000001"))
    resting = place_from_ticket(page, **{"type": "limit", "Amount": "2", "Limit price (quote per base)": str(limit)})
    expect(order_row(page, resting).locator(".status")).to_have_text("open", timeout=10_000)
    far = place_from_ticket(page, **{"type": "limit", "Amount": "1", "Limit price (quote per base)": "900"})
    expect(order_row(page, far).locator(".status")).to_have_text("open", timeout=10_000)
    order_row(page, far).get_by_role("button", name=f"Cancel order {far}").click()
    expect(order_row(page, far).locator(".status")).to_have_text("cancelled", timeout=10_000)
    # Another user buys SOL straight on the pools until the price passes the limit.
    trader = {"Authorization": f"Bearer {token_for(cloud, 'market-maker')}"}
    for pool_id in ("meteora-sol-usdc", "raydium-sol-usdc") * 4:
        requests.post(f"{cloud.http}/dex/swaps", headers=trader, timeout=10,
                      json={"poolId": pool_id, "tokenIn": "USDC", "amountIn": "150000"})
        if order_row(page, resting).locator(".status").inner_text() != "open":
            break
    expect(order_row(page, resting).locator(".status")).to_have_text("confirmed", timeout=15_000)
    expect(order_row(page, resting).locator(".steps")).to_contain_text("triggered")
    screenshot(page, "limit-filled")


def test_a_pools_price_moves_after_a_trade_and_the_token_in_the_address_signs_in(page: Page, cloud):
    user = f"web-{uuid.uuid4().hex[:6]}"
    page.goto(f"{cloud.http}/app#token={token_for(cloud, user)}")
    expect(page.locator("#who")).to_have_text(f"Signed in as {user}")
    assert "token=" not in page.url  # taken out of the address bar
    price = page.locator('tr[data-pool-id="raydium-jup-usdc"] .price')
    expect(price).to_contain_text("USDC", timeout=10_000)
    before = price.inner_text()
    trader = {"Authorization": f"Bearer {token_for(cloud, 'jup-buyer')}"}
    answer = requests.post(f"{cloud.http}/dex/swaps", headers=trader, timeout=10,
                           json={"poolId": "raydium-jup-usdc", "tokenIn": "USDC", "amountIn": "20000"})
    assert answer.status_code == 201
    expect(price).not_to_have_text(before, timeout=10_000)
    assert Decimal(price.inner_text().split()[0]) > Decimal(before.split()[0])
    points = page.locator('tr[data-pool-id="raydium-jup-usdc"] polyline').get_attribute("points") or ""
    assert len(points.split()) >= 2  # the chart has the move
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    screenshot(page, "phone")


def test_a_refused_order_says_why_and_the_api_reference_renders(page: Page, cloud, console_errors: list[str]):
    sign_in(page, cloud, f"web-{uuid.uuid4().hex[:6]}")
    page.get_by_label("Amount").fill("-1")
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("alert")).to_contain_text("Order refused: ")
    expect(page.get_by_role("alert")).to_contain_text("amountIn")
    # Chromium logs every 4xx answer to a fetch: the refused order's (and its quote's) are the only ones.
    refused = "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    assert set(console_errors) == {refused}
    console_errors.clear()
    page.goto(f"{cloud.http}/docs")
    expect(page.locator("#reference details").first).to_be_visible()
    expect(page.locator("#placeOrder summary")).to_contain_text("/orders")
    expect(page.locator("#schema-Order")).to_be_attached()
