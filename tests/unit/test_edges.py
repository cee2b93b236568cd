"""The edges: request validation, tokens, and how a partial batch response is read."""

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from chalicelib.api.problems import BadRequest, Unprocessable
from chalicelib.api.requests import parse_order
from chalicelib.auth import issue_token, verify_token
from chalicelib.services import errors as refused
from infra.local.event_source import failed_message_ids

VALID = {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100}


def test_a_valid_order_with_defaults():
    order = parse_order(json.dumps({"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": 2}).encode())
    assert (order.type, order.slippage_bps, str(order.amount_in)) == ("market", 50, "2")


def test_a_json_number_keeps_its_exact_decimal_value():
    order = parse_order(b'{"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": 0.1}')
    assert str(order.amount_in) == "0.1"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"amountIn": "-1"}, "amountIn"),
        ({"amountIn": "0"}, "amountIn"),
        ({"amountIn": "abc"}, "amountIn"),
        ({"amountIn": True}, "amountIn"),
        ({"amountIn": "1e12"}, "amountIn"),
        ({"amountIn": "0.0000000001"}, "amountIn"),
        ({"tokenIn": "DOGE"}, "tokenIn"),
        ({"tokenOut": "SOL"}, "tokenOut"),
        ({"tokenIn": "USDT", "tokenOut": "JUP"}, "tokenOut"),  # three hops apart: USDT-SOL-USDC-JUP
        ({"slippageBps": 0}, "slippageBps"),
        ({"slippageBps": 5001}, "slippageBps"),
        ({"slippageBps": "100"}, "slippageBps"),
        ({"type": "stop-loss"}, "type"),
        ({"extra": 1}, "extra"),
        ({"tokenIn": None}, "tokenIn"),
    ],
)
def test_invalid_orders_name_the_field(change, field):
    with pytest.raises(Unprocessable) as caught:
        parse_order(json.dumps({**VALID, **change}).encode())
    assert field in [e["field"] for e in caught.value.errors]
    assert caught.value.to_problem()["status"] == 422


@pytest.mark.parametrize("body", [b"", b"{", b'{"amountIn": NaN}', b'{"amountIn": Infinity}', b"\xff"])
def test_unparseable_bodies_are_bad_requests(body):
    with pytest.raises(BadRequest):
        parse_order(body)


def test_missing_fields_are_reported():
    with pytest.raises(Unprocessable) as caught:
        parse_order(b"{}")
    assert {"tokenIn", "tokenOut", "amountIn"} <= {e["field"] for e in caught.value.errors}


SECRET = "a-test-secret-long-enough-for-hs256-keys"


def test_tokens_carry_the_user():
    assert verify_token("Bearer " + issue_token("alice", SECRET), SECRET) == "alice"


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "garbage",
        issue_token("alice", "another-secret-also-long-enough-for-hs256"),
        issue_token("alice", SECRET, now=datetime.now(UTC) - timedelta(days=2)),
        jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"),  # no exp
        jwt.encode({"exp": datetime.now(UTC) + timedelta(hours=1)}, SECRET, algorithm="HS256"),  # no sub
        jwt.encode({"sub": "alice", "exp": datetime.now(UTC) + timedelta(hours=1)}, None, algorithm="none"),
    ],
)
def test_bad_tokens_are_refused(token):
    with pytest.raises(refused.Unauthenticated):
        verify_token(token, SECRET)


def test_batch_item_failures_are_read_as_lambda_reads_them():
    ids = {"a", "b", "c"}
    assert failed_message_ids(None, ids) == set()
    assert failed_message_ids({"batchItemFailures": []}, ids) == set()
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids) == {"b"}
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, ids) == ids
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": None}]}, ids) == ids
    assert failed_message_ids({"batchItemFailures": "b"}, ids) == ids
