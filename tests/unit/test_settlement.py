"""The settle, retry or fail rule, alone: what happens to a submitted order at every point of its signature's life."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.orders import SETTLEMENT_GRACE, Order, OrderType, RetryPolicy, Status
from chalicelib.domain.settlement import Step, after_failed_send, before_sending, until_expiry
from chalicelib.domain.tokens import TOKENS

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RETRY = RetryPolicy(max_attempts=3, base_delay_seconds=2)


def submitted(attempts: int = 1, valid_for: timedelta = timedelta(seconds=60), failure: str | None = None) -> Order:
    return Order(id="o-1", user_id="alice", type=OrderType.MARKET, token_in=TOKENS["SOL"], token_out=TOKENS["USDC"],
                 amount_in=10**9, slippage_bps=50, status=Status.SUBMITTED, seq=4, created_at=NOW, updated_at=NOW,
                 venue="raydium", pool_id="raydium-sol-usdc", min_out=1, tx_signature="sig", attempts=attempts,
                 valid_until=NOW + valid_for, failure_reason=failure)


def test_a_fresh_signature_is_sent():
    assert before_sending(submitted(), NOW, RETRY).step is Step.SEND


def test_a_signature_that_expired_unused_is_signed_again_once_it_cannot_land():
    order = submitted(valid_for=timedelta(seconds=-10))  # past its validity and its grace
    assert before_sending(order, NOW, RETRY).step is Step.SIGN_AGAIN


def test_an_expired_signature_that_may_still_land_is_waited_out():
    order = submitted(valid_for=timedelta(seconds=-2))  # expired, within the grace
    plan = before_sending(order, NOW, RETRY)
    assert plan.step is Step.AWAIT_EXPIRY and plan.delay_seconds == 3


def test_after_the_last_attempt_failed_the_order_waits_for_the_expiry_then_fails():
    order = submitted(attempts=3, failure="venue timeout")
    plan = before_sending(order, NOW, RETRY)
    assert plan.step is Step.AWAIT_EXPIRY and plan.delay_seconds == 65
    later = NOW + timedelta(seconds=60) + SETTLEMENT_GRACE + timedelta(seconds=1)
    assert before_sending(order, later, RETRY).step is Step.FAIL


def test_a_permanent_refusal_fails_at_once_whatever_the_attempts_left():
    assert after_failed_send(submitted(), transient=False, now=NOW, retry=RETRY).step is Step.FAIL


@pytest.mark.parametrize("attempts, delay", [(1, 2), (2, 4)])
def test_a_transient_failure_is_retried_with_a_doubling_backoff(attempts, delay):
    plan = after_failed_send(submitted(attempts=attempts), transient=True, now=NOW, retry=RETRY)
    assert (plan.step, plan.delay_seconds) == (Step.RETRY, delay)


def test_a_transient_failure_of_the_last_attempt_waits_for_the_signature_to_expire():
    plan = after_failed_send(submitted(attempts=3), transient=True, now=NOW, retry=RETRY)
    assert plan.step is Step.AWAIT_EXPIRY and plan.delay_seconds == 65


@given(seconds=st.integers(min_value=-600, max_value=600), attempts=st.integers(min_value=1, max_value=5),
       failed_before=st.booleans())
def test_never_a_failure_while_a_sent_swap_may_still_land_unless_the_venue_refused_it(seconds, attempts,
                                                                                       failed_before):
    order = submitted(attempts=attempts, valid_for=timedelta(seconds=seconds),
                      failure="venue timeout" if failed_before else None)
    may_land = order.swap_may_still_land(NOW)
    for plan in (before_sending(order, NOW, RETRY), after_failed_send(order, True, NOW, RETRY),
                 until_expiry(order, NOW)):
        assert plan.step is not Step.FAIL or not may_land
        assert plan.step not in (Step.RETRY, Step.AWAIT_EXPIRY) or plan.delay_seconds >= 1
