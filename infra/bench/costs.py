"""What a burst's orders would cost on AWS: the local cloud's ledger (``infra/local/ledger.py``) of function
invocations, SQS requests and API Gateway requests, priced at AWS's public on-demand prices (us-east-1, x86 Lambda,
first pricing tier, no free tier).

Durations are the local invocations' wall times on this machine, billed per millisecond as Lambda bills them, at
each function's configured memory (``.chalice/config.json``): a busier or slower machine than Lambda's overstates
them. WebSocket connection minutes depend on how long clients stay connected and are left out.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

from infra.local.ledger import API_GATEWAY, CONNECTIONS_POST, LAMBDA, REST_REQUEST, SQS, WEBSOCKET_MESSAGE, Tally

LAMBDA_GB_SECOND = Decimal("0.0000166667")
LAMBDA_REQUEST = Decimal("0.20") / 1_000_000
REST_API_REQUEST = Decimal("3.50") / 1_000_000
WEBSOCKET_MESSAGE_PRICE = Decimal("1.00") / 1_000_000  # per message sent or received (32 KB units)
SQS_REQUEST = Decimal("0.40") / 1_000_000  # standard queue, per request (64 KB units)


def function_memory_mb(config_path: Path) -> dict[str, int]:
    """Each function's memory as deployed: its own setting, else the app's."""
    config = json.loads(config_path.read_text())
    default = int(config.get("lambda_memory_size", 128))
    memory = {name: int(settings.get("lambda_memory_size", default))
              for name, settings in config.get("lambda_functions", {}).items()}
    memory["*"] = default
    return memory


def cost_report(ledger: dict[tuple[str, str], Tally], orders: int, memory_mb: dict[str, int]) -> dict[str, Any]:
    """Per 1,000 orders: each function's requests and GB-seconds; per order: SQS requests by action, REST requests,
    WebSocket messages and @connections posts; and the cost of a million orders, in dollars, by service."""
    per_1000 = 1000 / max(1, orders)
    functions: dict[str, dict[str, float]] = {}
    lambda_cost = Decimal(0)
    for (service, name), tally in sorted(ledger.items()):
        if service != LAMBDA:
            continue
        memory_gb = Decimal(memory_mb.get(name, memory_mb["*"])) / 1024
        # Each invocation is billed by the millisecond, rounded up; the ledger keeps the total, so the rounding of
        # each is estimated as half a millisecond.
        gb_seconds = memory_gb * (Decimal(str(tally.total_ms)) + Decimal("0.5") * tally.count) / 1000
        lambda_cost += gb_seconds * LAMBDA_GB_SECOND + tally.count * LAMBDA_REQUEST
        functions[name] = {"requests": round(tally.count * per_1000, 1),
                           "gb_seconds": round(float(gb_seconds) * per_1000, 3),
                           "memory_mb": int(memory_gb * 1024),
                           "mean_ms": round(tally.total_ms / max(1, tally.count), 1)}
    sqs = {name: tally.count for (service, name), tally in ledger.items() if service == SQS}
    rest = _count(ledger, API_GATEWAY, REST_REQUEST)
    messages = _count(ledger, API_GATEWAY, WEBSOCKET_MESSAGE) + _count(ledger, API_GATEWAY, CONNECTIONS_POST)
    per_order = 1 / max(1, orders)
    costs = {
        "lambda": lambda_cost,
        "api_gateway_rest": rest * REST_API_REQUEST,
        "api_gateway_websocket": messages * WEBSOCKET_MESSAGE_PRICE,
        "sqs": sum(sqs.values()) * SQS_REQUEST,
    }
    per_million = {name: round(float(cost * 1_000_000 * Decimal(per_order)), 2) for name, cost in costs.items()}
    per_million["total"] = round(sum(per_million.values()), 2)
    return {
        "functions_per_1000_orders": functions,
        "sqs_requests_per_order": {name: round(count * per_order, 3) for name, count in sorted(sqs.items())},
        "rest_requests_per_order": round(rest * per_order, 3),
        "websocket_messages_received_per_order": round(_count(ledger, API_GATEWAY, WEBSOCKET_MESSAGE) * per_order, 3),
        "connections_posts_per_order": round(_count(ledger, API_GATEWAY, CONNECTIONS_POST) * per_order, 3),
        "dollars_per_million_orders": per_million,
    }


def _count(ledger: dict[tuple[str, str], Tally], service: str, name: str) -> int:
    tally = ledger.get((service, name))
    return 0 if tally is None else tally.count


def summary_lines(report: dict[str, Any]) -> list[str]:
    functions = "; ".join(f"{name} {f['requests']:g} req, {f['gb_seconds']:g} GB-s ({f['mean_ms']:g} ms at "
                          f"{f['memory_mb']} MB)" for name, f in report["functions_per_1000_orders"].items())
    sqs = report["sqs_requests_per_order"]
    dollars = report["dollars_per_million_orders"]
    return [
        f"AWS per 1000 orders  {functions}",
        f"AWS calls per order  SQS {math.fsum(sqs.values()):.2f} ("
        + ", ".join(f"{name} {count:g}" for name, count in sqs.items())
        + f"), REST {report['rest_requests_per_order']:g}, WebSocket messages in "
        f"{report['websocket_messages_received_per_order']:g}, @connections posts "
        f"{report['connections_posts_per_order']:g}",
        "AWS $ per 1M orders  " + ", ".join(f"{name} {cost:,.2f}" for name, cost in dollars.items()),
    ]
