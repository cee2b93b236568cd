"""Other traders, simulated (``MARKET_ACTIVITY_PER_SECOND``, default 0: none): random swaps of random sizes on every
pool through the public API (``POST /dex/swaps``), arriving at random at that rate, so that a demo shows limit
orders resting and filling by themselves. Prices drift both ways: the further a pool's price has moved from where
the activity found it, the likelier the next trade pushes it back. Run by the local cloud; never deployed.

``python -m infra.local.market_activity`` with ``HTTP_PORT`` and ``MARKET_ACTIVITY_PER_SECOND`` set.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

log = logging.getLogger("market-activity")

LEAST_SHARE, MOST_SHARE = 0.0005, 0.005  # of the pool's base reserve, per trade
PULL_BACK = 20  # how hard a moved price pulls the next trade back: 1 % away tilts the odds by 20 points


@dataclass(frozen=True)
class Trade:
    pool_id: str
    token_in: str
    amount_in: str


def next_trade(pool: dict, start_price: Decimal, rng: random.Random) -> Trade:
    """A swap on ``pool`` (as ``GET /pools`` shows it): selling its base more often the higher its price has gone
    since ``start_price``, buying it more often the lower, for 0.05-0.5 % of its base reserve."""
    price = Decimal(pool["price"])
    drift = float(price / start_price - 1)
    sell_odds = min(0.9, max(0.1, 0.5 + drift * PULL_BACK))
    base_amount = Decimal(pool["reserves"]["base"]) * Decimal(str(rng.uniform(LEAST_SHARE, MOST_SHARE)))
    if rng.random() < sell_odds:
        return Trade(pool["id"], pool["base"], f"{base_amount.quantize(Decimal('0.000001')):f}")
    return Trade(pool["id"], pool["quote"], f"{(base_amount * price).quantize(Decimal('0.000001')):f}")


class MarketActivity:
    def __init__(self, api: str, per_second: float, token: str, rng: random.Random | None = None):
        self._api = api.rstrip("/")
        self._per_second = per_second
        self._token = token
        self._rng = rng or random.Random()
        self._start_prices: dict[str, Decimal] = {}
        self.trades = 0

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self._rng.expovariate(self._per_second)):  # random arrivals at the rate
            try:
                self.trade_once()
            except (urllib.error.URLError, OSError, ValueError) as error:  # a cloud restarting: try the next one
                log.warning("a simulated trade failed: %s", error)

    def trade_once(self) -> Trade:
        pools = self._get("/pools")["pools"]
        for pool in pools:
            self._start_prices.setdefault(pool["id"], Decimal(pool["price"]))
        pool = self._rng.choice(pools)
        trade = next_trade(pool, self._start_prices[pool["id"]], self._rng)
        self._post("/dex/swaps", {"poolId": trade.pool_id, "tokenIn": trade.token_in, "amountIn": trade.amount_in})
        self.trades += 1
        return trade

    def _get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self._api}{path}", timeout=30) as answer:
            return json.load(answer)

    def _post(self, path: str, body: dict) -> None:
        request = urllib.request.Request(f"{self._api}{path}", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {self._token}"})
        try:
            with urllib.request.urlopen(request, timeout=30):
                pass
        except urllib.error.HTTPError as refused:  # a swap the pool refuses is a trader's bad luck, not a fault
            if refused.code >= 500:
                raise
            log.info("a simulated trade was refused (%s)", refused.code)


def main() -> None:
    from chalicelib.auth import issue_token
    from chalicelib.settings import LOCAL_JWT_SECRET

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s market-activity %(levelname)s %(message)s")
    per_second = float(os.environ["MARKET_ACTIVITY_PER_SECOND"])
    secret = os.environ.get("JWT_SECRET") or LOCAL_JWT_SECRET
    token = issue_token("market-activity", secret, ttl=timedelta(days=365))
    activity = MarketActivity(f"http://127.0.0.1:{os.environ.get('HTTP_PORT', '8000')}", per_second, token)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"market activity: about {per_second:g} swaps a second on every pool", flush=True)
    activity.run(stop)


if __name__ == "__main__":
    main()
