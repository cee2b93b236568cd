"""The worker's use case: take one order from where it stands to a final status.

Every step is a conditional status change, so a duplicate delivery that finds the order already moved on
stops, and a redelivery after a crash resumes from the last stored status. The swap's signature is fixed
while building, so resuming a submitted order asks the venue about it instead of swapping again.

A transient venue failure is not waited out here: the order records the failed attempt and ``RetryLater``
asks the caller to have the message redelivered after the backoff. A permanent failure fails the order at once:
the venue recorded it under the signature, so no copy of that swap can land afterwards. When the last attempt
fails too, a copy sent by another delivery could still land until the signature expires, so the order fails
only then (or is confirmed, if it did land).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from ..domain.events import (
    Confirmed,
    Expired,
    Failed,
    LastAttemptFailed,
    Opened,
    OrderChange,
    Reopened,
    RetryScheduled,
    Routed,
    RoutingStarted,
    SignedAgain,
    Sniping,
    Submitted,
    Triggered,
)
from ..domain.limit_orders import LimitTerms, TimeInForce, largest_fill, required_out
from ..domain.orders import (
    SETTLEMENT_GRACE,
    SIGNATURE_VALIDITY,
    Order,
    OrderEvent,
    OrderType,
    RetryPolicy,
    Status,
    can_transition,
    transaction_signature,
)
from ..domain.pools import Pool, PoolError
from ..domain.routing import NoRoute, RoutingDecision, RoutingMode, VenueQuote, decide_route, min_out, quote_pool
from ..domain.settlement import Settlement, Step, after_failed_send, before_sending
from ..domain.sniper_orders import PREPARE_AHEAD, LaunchCheck, check_launch, opens_to, sniper_min_out
from ..domain.telemetry import order_measurements
from ..domain.transactions import run_transaction
from ..domain.venues import SlippageExceeded, SwapReceipt, SwapRequest, VenueError
from .notifications import Notifier
from .ports import Clock, MetricsSink, NoMetrics, OrderQueue, Orders, Passed, Transition, Venues

log = logging.getLogger(__name__)

# Statuses of a sniper on its way to its swap: the next sniper of its pair waits for it (placement order).
IN_LINE = frozenset({Status.TRIGGERED, Status.ROUTING, Status.BUILDING, Status.SUBMITTED})

# A resting order's message is kept for its expiry when that is this close (SQS delays a message by at most 15
# minutes); the sweeper sends one for a later expiry as it nears.
EXPIRY_TIMER_HORIZON = timedelta(minutes=15)
LINE_RECHECK = timedelta(seconds=1)  # a sniper due behind one still resting looks again after this


class OrderMovedOn(Exception):
    """Another delivery changed the order since this one read it: it owns the order now, and this delivery stops.
    Raised by the one conditional step every change goes through, caught in one place by each entry point."""

    def __init__(self, order_id: str, expected: Status):
        super().__init__(f"order {order_id} is no longer {expected}")
        self.order_id = order_id
        self.expected = expected


class RetryLater(Exception):
    """The order's message should come back after ``delay_seconds`` for another attempt."""

    def __init__(self, order_id: str, delay_seconds: int, reason: str):
        super().__init__(f"order {order_id}: {reason}; retrying in {delay_seconds} s")
        self.delay_seconds = delay_seconds


@dataclass
class Batch:
    """A delivery's orders, as ``Executor.prepare`` sorts them."""

    together: list[Order] = field(default_factory=list)  # market orders just placed: their steps taken together
    alone: list[Order] = field(default_factory=list)  # every other order: taken on one by one, side by side
    unknown: list[str] = field(default_factory=list)  # ids of no order: their messages are dropped


class Executor:
    def __init__(
        self,
        orders: Orders,
        venues: Venues,
        notifier: Notifier,
        clock: Clock,
        retry: RetryPolicy | None = None,
        checkpoint: Callable[[str], None] = lambda step: None,
        signature_validity: timedelta = SIGNATURE_VALIDITY,
        metrics: MetricsSink | None = None,
        queue: OrderQueue | None = None,
        send_lead: timedelta = timedelta(0),
        sleep: Callable[[float], None] = lambda seconds: None,
        min_gain_bps: Decimal = Decimal(1),
    ):
        self._min_gain_bps = min_gain_bps  # what a split or a hop must gain over the best single pool (SPLIT_MIN_...)
        self._queue = queue  # hands a sniper's pair over to the next sniper in line
        self._send_lead = send_lead  # the least time a swap takes to land: a sniper sends that much before its open
        self._ahead = send_lead + PREPARE_AHEAD
        self._sleep = sleep
        self._orders = orders
        self._venues = venues
        self._notifier = notifier
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._checkpoint = checkpoint  # called at "after_routing" and "after_swap"; fault injection hooks in here
        self._signature_validity = signature_validity
        self._metrics = metrics or NoMetrics()

    def execute(self, order_id: str) -> Status | None:
        """Advance the order as far as it goes; returns the status it was left in (None: unknown order)."""
        order = self._orders.get(order_id)
        if order is None:
            log.warning("message for unknown order %s dropped", order_id)
            return None
        return self.execute_order(order)

    def prepare(self, order_ids: Sequence[str]) -> Batch:
        """Reads a delivery's orders at once and sorts them: the market orders just placed go through their steps
        together (``execute_together``), every other one alone (``execute_order``)."""
        found = self._orders.get_many(order_ids)
        batch = Batch()
        for order_id in order_ids:
            order = found.get(order_id)
            if order is None:
                log.warning("message for unknown order %s dropped", order_id)
                batch.unknown.append(order_id)
            elif (order.type is OrderType.MARKET and order.status is Status.PENDING
                  and all(taken.id != order_id for taken in batch.together)):
                batch.together.append(order)
            else:  # a second message of an order in this delivery runs alone, as a second delivery would
                batch.alone.append(order)
        return batch

    def execute_together(self, orders: Sequence[Order]) -> dict[str, Status | Exception | None]:
        """Takes market orders just placed through their steps together, as a chain's slot takes transactions:
        one read of the pools per pair for every order's route, one statement that moves each order through
        routing and building to submitted (its three events, its routing decision), one slot of swaps on the
        venues, one statement confirming them; their events pushed together after each statement. Each order
        keeps its own conditional transitions and its own outcome: the status it was left in, None when another
        delivery moved it on, or the exception that stopped it (RetryLater among them). An order that leaves the
        common path (no route, a refused swap) finishes alone."""
        outcomes: dict[str, Status | Exception | None] = {}
        in_flight: list[Order] = list(orders)
        try:
            in_flight = self._route_and_submit_together(in_flight, outcomes)
            self._swap_together(in_flight, outcomes)
        except Exception as error:  # noqa: BLE001  # the step failed for every order in it: each is retried
            for order in in_flight:
                outcomes.setdefault(order.id, error)
        return outcomes

    def _route_and_submit_together(self, orders: list[Order], outcomes: dict[str, Status | Exception | None],
                                   ) -> list[Order]:
        asked_at = self._clock.now()  # one read of the pools for every order of a pair, every pair quoted at once
        pools_of = self._venues.route_pools_for(list(dict.fromkeys(
            (order.token_in.symbol, order.token_out.symbol) for order in orders)))
        venue_ms = self._ms_since(asked_at)
        # The batch's swaps run one after another in one slot, in this order: each order is routed on the pools as
        # the ones before it leave them, so its quote (and its minimum out) is what its swap will meet.
        state = {pool.id: pool for pools in pools_of.values() for pool in pools}
        now = int(self._clock.now().timestamp())
        routing = RoutingStarted()
        passages: list[tuple[Order, Transition]] = []
        for order in orders:
            pools = [state[pool.id] for pool in pools_of[(order.token_in.symbol, order.token_out.symbol)]]
            try:
                decision = self._route(order, pools, order.amount_in)
            except NoRoute as error:
                outcomes[order.id] = self._alone(order, partial(self._no_route, order, str(error)))
                continue
            try:
                state.update(run_transaction(state, decision.routes(), now).pools_after)
            except PoolError:
                pass  # it cannot fill as quoted: the venues will refuse it, and the pools stay as they are
            assert order.slippage_bps is not None  # a market order's tolerance
            building, fields = self._routed(order, decision, min_out(decision.chosen.amount_out, order.slippage_bps),
                                            venue_ms)
            submitted = Submitted(venue=decision.chosen.venue, tx_signature=fields["tx_signature"], attempt=1)
            passages.append((order, Transition(
                order.id, order.status, submitted.status, submitted.data(), order.seq, {**fields, "attempts": 1},
                via=(Passed(routing.status, routing.data(), asked_at),
                     Passed(building.status, building.data(), self._clock.now())),
                decision=decision)))
        moved = self._pass_many(passages, outcomes)
        if passages:
            self._checkpoint("after_routing")
        return moved

    def _no_route(self, order: Order, reason: str) -> Order:
        return self._fail(self._advance(order, RoutingStarted()), reason)

    def _swap_together(self, orders: list[Order], outcomes: dict[str, Status | Exception | None]) -> None:
        now = self._clock.now()
        sending: list[Order] = []
        for order in orders:
            if before_sending(order, now, self._retry).step is Step.SEND:
                sending.append(order)
            else:  # not to be sent as it stands (its signature ran out already): settled alone
                outcomes[order.id] = self._alone(order, partial(self._settle, order, ask_venue_first=False))
        if not sending:
            return
        sent_at = self._clock.now()
        results = self._venues.swap_slot([self._request(order) for order in sending])
        venue_ms = self._ms_since(sent_at)
        self._checkpoint("after_swap")
        confirming: list[tuple[Order, OrderChange, dict[str, Any]]] = []
        for order, result in zip(sending, results, strict=True):
            if isinstance(result, VenueError):
                outcomes[order.id] = self._alone(order, partial(self._refused, order, result, venue_ms))
            else:
                confirming.append((order, *self._confirmation(order, result, venue_ms)))
        for confirmed in self._advance_many(confirming, outcomes):
            outcomes[confirmed.id] = confirmed.status

    @staticmethod
    def _request(order: Order) -> SwapRequest:
        assert order.tx_signature and order.min_out is not None  # fixed while building
        return SwapRequest(order.tx_signature, order.id, order.transaction, order.min_out, order.valid_until)

    def _alone(self, order: Order, step: Callable[[], Order]) -> Status | Exception | None:
        """An order leaving the common path, taken on alone: its outcome as ``execute_order`` would give it."""
        try:
            try:
                return step().status
            except (NoRoute, VenueError) as error:
                return self._fail(order, str(error)).status
        except OrderMovedOn as moved:
            log.info("%s; this delivery stops", moved)
            return None
        except Exception as error:  # noqa: BLE001  # reported for this order alone (RetryLater among them)
            return error

    def execute_order(self, order: Order) -> Status | None:
        """Advance the order, as read, as far as it goes; returns the status it was left in."""
        # An earlier delivery may have stored events it could not push (it died, or Redis was away). A pending order
        # has had no delivery yet, and its first step's push sends anyone behind everything they miss.
        if order.status is not Status.PENDING:
            self._notifier.catch_up(order.id, order.seq)
        try:
            left = self._run(order)
        except OrderMovedOn as moved:
            log.info("%s; this delivery stops", moved)
            return None
        if left.sniper is not None and left.status not in IN_LINE:
            self._hand_over(left)
        return left.status

    def _hand_over(self, sniper: Order) -> None:
        """A sniper past its swap (or back to waiting) lets the next one of its pair go. Done again by a
        redelivery (the first may have died before it): a duplicate message is harmless."""
        following = self._orders.next_in_line(sniper.token_in.symbol, sniper.token_out.mint)
        if following is not None and self._queue is not None:
            self._queue.enqueue(following.id)

    def _run(self, order: Order) -> Order:
        # Only an order found already submitted may have swapped in an earlier delivery.
        resuming_submitted = order.status is Status.SUBMITTED
        cause = "recheck"
        try:
            if order.status is Status.PENDING:
                if order.rests:
                    order, cause = self._open(order), "placed"
                else:
                    order = self._advance(order, RoutingStarted())
            if order.status is Status.OPEN:
                order = self._check_resting(order, cause)
            if order.status is Status.TRIGGERED:
                if order.sniper is not None and self._orders.ahead_in_line(order):
                    return order  # its turn comes when the sniper ahead of it hands the pair over
                order = self._unless_expired(order) or self._advance(order, RoutingStarted())
            if order.status is Status.ROUTING:
                order = self._route_and_build(order)
            if order.status is Status.BUILDING:
                order = self._submit(order)
            if order.status is Status.SUBMITTED:
                order = self._settle(order, ask_venue_first=resuming_submitted)
        except (NoRoute, VenueError) as error:
            order = self._fail(order, str(error))
        return order

    def _open(self, order: Order) -> Order:
        if order.sniper is not None:
            sniper = order.sniper
            return self._advance(order, Sniping(
                target=order.token_out.symbol, target_mint=order.token_out.mint, expires_at=sniper.expires_at,
                max_price=None if sniper.max_price is None else f"{sniper.max_price:f}",
                delay_seconds=sniper.delay_seconds, conditions=sniper.conditions.to_json()))
        assert order.limit is not None
        terms = order.limit
        return self._advance(order, Opened(side=str(terms.side), limit_price=f"{terms.limit_price:f}",
                                           min_amount_out=order.token_out.format(terms.min_amount_out),
                                           time_in_force=str(terms.time_in_force), expires_at=terms.expires_at))

    def _check_resting(self, order: Order, cause: str) -> Order:
        """A resting order: expired once its time is up; triggered once the venues can fill it on its terms (a
        limit order's least output for its whole size, a sniper's launch checks); else it keeps resting, and its
        message comes back for what it waits for when that is near (its expiry, a sniper's pool opening)."""
        expired = self._unless_expired(order)
        if expired is not None:
            return expired
        if order.sniper is not None:
            check = self._check_launch(order)
            if check.fires and self._orders.resting_ahead(order):
                # A sniper of its line placed before it still rests: the pair's evaluation, due now, triggers the
                # line in placement order. Its own message arriving first triggered it alone, ahead of that one.
                self._wait_for(order, self._clock.now() + LINE_RECHECK)
                return order
            if check.fires:
                assert check.pool is not None and check.outcome is not None
                return self._advance(order, Triggered(cause=cause, pool_id=check.pool.id,
                                                      quoted_out=order.token_out.format(check.outcome.amount_out)))
            self._wait_for(order, None if check.fire_at is None else check.fire_at - self._ahead)
            return order
        assert order.limit is not None
        best = self._decide(order, self._route_pools(order), order.amount_in)
        if best is None or best.chosen.amount_out < order.limit.min_amount_out:
            self._wait_for(order)
            return order
        return self._advance(order, Triggered(cause=cause, pool_id=best.chosen.pool_id,
                                              quoted_out=order.token_out.format(best.chosen.amount_out),
                                              required_out=order.token_out.format(order.limit.min_amount_out)))

    def _check_launch(self, order: Order) -> LaunchCheck:
        assert order.sniper is not None
        listing = self._venues.listing(order.token_out.mint)
        pools = self._venues.pools(order.token_in.symbol, order.token_out.symbol) if listing is not None else []
        return check_launch(order.sniper, order.token_in, order.token_out, order.amount_in, listing, pools,
                            self._clock.now(), self._ahead)

    def _wait_for(self, order: Order, wake_at: datetime | None = None) -> None:
        """A resting order whose time ends soon keeps its message, which comes back when it does: the order then
        expires on time (or a sniper's pool opens to it). One that ends later lets its message go; the sweeper
        sends another as the time nears (the trigger wakes a sniper's pool when it opens)."""
        moments = [m for m in (order.expires_at, wake_at) if m is not None]
        if not moments:
            return
        soonest = min(moments)
        remaining = (soonest - self._clock.now()).total_seconds()
        if remaining <= EXPIRY_TIMER_HORIZON.total_seconds():
            why = "waiting for its pool to open" if soonest == wake_at else "resting until its time in force ends"
            raise RetryLater(order.id, max(1, math.ceil(remaining)), why)

    def _unless_expired(self, order: Order) -> Order | None:
        """The order expired, if a limit or sniper order's time is up; None otherwise."""
        if not order.expired_at(self._clock.now()):
            return None
        assert order.expires_at is not None
        return self._advance(order, Expired(reason=f"its time in force ended at {order.expires_at.isoformat()}"))

    def _route_and_build(self, order: Order) -> Order:
        if order.sniper is not None:
            return self._route_and_build_sniper(order)
        if order.limit is not None:
            return self._route_and_build_limit(order, order.limit)
        asked_at = self._clock.now()
        pools = self._route_pools(order)
        venue_ms = self._ms_since(asked_at)
        decision = self._route(order, pools, order.amount_in)
        assert order.slippage_bps is not None  # a market order's tolerance
        return self._build(order, decision, min_out(decision.chosen.amount_out, order.slippage_bps), venue_ms)

    def _route_pools(self, order: Order) -> list[Pool]:
        return self._venues.route_pools(order.token_in.symbol, order.token_out.symbol)

    def _route(self, order: Order, pools: list[Pool], amount_in: int) -> RoutingDecision:
        """The order's route for ``amount_in`` on these pools (NoRoute: nothing can fill it)."""
        return decide_route(pools, order.token_in.symbol, order.token_out.symbol, amount_in,
                            int(self._clock.now().timestamp()), self._min_gain_bps,
                            single=order.routing is RoutingMode.SINGLE)

    def _decide(self, order: Order, pools: list[Pool], amount_in: int) -> RoutingDecision | None:
        try:
            return self._route(order, pools, amount_in)
        except NoRoute:
            return None

    def _route_and_build_limit(self, order: Order, terms: LimitTerms) -> Order:
        """Routes again right before building: the trigger's quote may be stale. The swap's minimum output is the
        order's least output (for an IOC, its share of it), so no fill is ever below the limit. An IOC the whole
        route cannot fill at its limit fills the most one pool gives at it (routed again: never for less)."""
        expired = self._unless_expired(order)
        if expired is not None:
            return expired
        asked_at = self._clock.now()
        pools = self._route_pools(order)
        venue_ms = self._ms_since(asked_at)
        fill = order.amount_in
        decision = self._decide(order, pools, fill)
        if terms.time_in_force is TimeInForce.IOC and (
                decision is None or decision.chosen.amount_out < required_out(terms, order.amount_in, fill)):
            fill = self._largest_fill(order, terms, pools)
            decision = self._decide(order, pools, fill) if fill else None
        required = required_out(terms, order.amount_in, fill)
        if decision is None or decision.chosen.amount_out < required:
            quoted = 0 if decision is None else decision.chosen.amount_out
            return self._missed_limit(order, "the venues' best quote for its size is below its limit now",
                                      quoted, required)
        fields = {"fill_amount_in": fill} if fill != order.amount_in else {}
        return self._build(order, decision, required, venue_ms, **fields)

    def _route_and_build_sniper(self, order: Order) -> Order:
        """Checks the launch again on fresh state right before building (the pool may have moved since the
        trigger): the swap's minimum is the stricter of the max-price bound and the slippage bound on the quote."""
        assert order.sniper is not None and order.slippage_bps is not None
        expired = self._unless_expired(order)
        if expired is not None:
            return expired
        asked_at = self._clock.now()
        check = self._check_launch(order)
        venue_ms = self._ms_since(asked_at)
        if not check.fires:
            return self._missed_limit(order, "the launch no longer passes its checks: waiting for "
                                      + "; ".join(check.waiting_for))
        assert check.pool is not None and check.outcome is not None
        chosen = VenueQuote.from_outcome(check.pool, order.token_in.symbol, order.token_out.symbol, check.outcome)
        decision = RoutingDecision(chosen, (chosen,), f"{chosen.venue} is the best pool passing every check of the "
                                                      "sniper")
        least = sniper_min_out(order.sniper, order.token_in, order.token_out, order.amount_in, chosen.amount_out,
                               order.slippage_bps)
        return self._build(order, decision, least, venue_ms)

    def _largest_fill(self, order: Order, terms: LimitTerms, pools: list[Pool]) -> int:
        """An IOC's fill: the most of its amount one pool gives at the limit now (the pools' own math, in memory)."""
        token_in, token_out = order.token_in.symbol, order.token_out.symbol
        now = int(self._clock.now().timestamp())
        best = 0
        for pool in (p for p in pools if {p.base, p.quote} == {token_in, token_out}):
            def quote(size: int, pool: Pool = pool) -> int:
                return quote_pool(pool, token_in, token_out, size, now).amount_out if size else 0

            best = max(best, largest_fill(order.amount_in, lambda x: required_out(terms, order.amount_in, x), quote))
        return best

    def _missed_limit(self, order: Order, reason: str, quoted: int | None = None,
                      required: int | None = None) -> Order:
        """Its terms cannot be met now: a resting order (GTC, GTD, sniper) rests again (a race with the price never
        fails it); an IOC or FOK order, which may not rest, expires."""
        if order.rests and not order.expired_at(self._clock.now()):
            return self._advance(order, Reopened(
                reason=reason, quoted_out=None if quoted is None else order.token_out.format(quoted),
                required_out=None if required is None else order.token_out.format(required)))
        terms = order.limit
        if terms is not None and terms.time_in_force is TimeInForce.FOK:
            reason = f"not all of it could be filled at its limit ({reason})"
        elif terms is not None and terms.time_in_force is TimeInForce.IOC:
            reason = f"nothing could be filled at its limit ({reason})"
        return self._advance(order, Expired(reason=reason))

    def _build(self, order: Order, decision: RoutingDecision, minimum: int, venue_ms: int, **fields: Any) -> Order:
        self._orders.save_decision(order.id, decision, self._clock.now())
        self._checkpoint("after_routing")
        change, columns = self._routed(order, decision, minimum, venue_ms, **fields)
        return self._advance(order, change, **columns)

    def _routed(self, order: Order, decision: RoutingDecision, minimum: int, venue_ms: int, **fields: Any,
                ) -> tuple[OrderChange, dict[str, Any]]:
        """The building step: the order's route, its least output and its transaction's signature."""
        chosen = decision.chosen
        # A limit or sniper order may be built again after resting: each build signs anew (the venues remember a
        # failed signature forever, as a chain does).
        signature = transaction_signature(order.id, nonce=order.seq if order.type is not OrderType.MARKET else 0)
        valid_until = self._clock.now() + self._signature_validity
        if order.expires_at is not None:
            valid_until = min(valid_until, order.expires_at)  # no swap of it may land after its expiry
        change = Routed(venue=chosen.venue, reason=decision.reason,
                        quoted_out=order.token_out.format(chosen.amount_out), min_out=order.token_out.format(minimum),
                        tx_signature=signature, valid_until=valid_until, venue_ms=venue_ms)
        return change, {"venue": chosen.venue, "min_out": minimum, "tx_signature": signature,
                        "pool_id": chosen.pool_id, "route": None if decision.is_single else decision.routes(),
                        "valid_until": valid_until, **fields}

    def _submit(self, order: Order) -> Order:
        fields: dict[str, Any] = {}
        if order.valid_until is not None and self._clock.now() > order.valid_until:
            # Built by a delivery that died before submitting: never sent, so it is simply signed again.
            fields = self._new_signature(order)
        return self._advance(order, Submitted(venue=order.venue,
                                              tx_signature=fields.get("tx_signature", order.tx_signature), attempt=1),
                             attempts=1, **fields)

    def _new_signature(self, order: Order) -> dict[str, Any]:
        return {"tx_signature": transaction_signature(order.id, nonce=order.seq + 1),
                "valid_until": self._clock.now() + self._signature_validity}

    def _settle(self, order: Order, ask_venue_first: bool) -> Order:
        assert order.tx_signature and order.pool_id and order.min_out is not None
        now = self._clock.now()  # read before the venue: "not landed" is final only if asked after the expiry
        expired = order.valid_until is not None and now > order.valid_until
        receipt = self._venues.swap_status(order.tx_signature) if ask_venue_first or expired else None
        if receipt is not None:
            return self._confirm(order, receipt)
        if order.expired_at(now) and not order.swap_may_still_land(now):
            # Its time is up and nothing sent under its signature can land now: it ends expired, never signed again.
            return self._missed_limit(order, "its time in force ended before its swap landed")
        plan = before_sending(order, now, self._retry)
        if plan.step is Step.SIGN_AGAIN:
            order = self._sign_again(order)
        elif plan.step is not Step.SEND:
            return self._carry_out(order, plan, order.failure_reason or "the swap's signature expired before it "
                                                                         "landed", now)
        if order.sniper is not None:
            self._hold_until_it_may_land(order)
        sent_at = self._clock.now()
        signature, minimum = order.tx_signature, order.min_out
        assert signature and minimum is not None  # fixed while building, kept by a new signature
        try:
            # One transaction of every leg of its route, all or nothing, under its one signature.
            receipt = self._venues.swap_route(signature, order.id, order.transaction, minimum, order.valid_until)
        except VenueError as error:
            return self._refused(order, error, self._ms_since(sent_at))
        venue_ms = self._ms_since(sent_at)
        self._checkpoint("after_swap")
        return self._confirm(order, receipt, venue_ms)

    def _refused(self, order: Order, error: VenueError, venue_ms: int) -> Order:
        """The venues did not execute the order's transaction: retried, failed or awaited as the settlement rule
        says."""
        now = self._clock.now()
        if order.type is not OrderType.MARKET and (isinstance(error, SlippageExceeded) or
                                                   (not error.transient and order.expired_at(now))):
            # Refused below the least output, or past its time, and recorded so under the signature: nothing of
            # it can land. A resting order rests again; one that may not rest, or whose time is up, expires.
            return self._missed_limit(order, str(error))
        return self._carry_out(order, after_failed_send(order, error.transient, now, self._retry), str(error),
                               now, venue_ms, sent=True)

    def _hold_until_it_may_land(self, order: Order) -> None:
        """A sniper built ahead of its open is sent the venues' least landing time before it, so that it lands at
        the open at the earliest (the wait is at most PREPARE_AHEAD): landing before it, the swap would be refused
        and its signature spent."""
        assert order.sniper is not None
        for pool in self._venues.pools(order.token_in.symbol, order.token_out.symbol):
            if pool.id == order.pool_id:
                wait = (opens_to(order.sniper, pool) - self._send_lead - self._clock.now()).total_seconds()
                if wait > 0:
                    self._sleep(min(wait, self._ahead.total_seconds()))

    def _carry_out(self, order: Order, plan: Settlement, reason: str, now: datetime, venue_ms: int | None = None,
                   sent: bool = False) -> Order:
        """Does what the settlement rule decided: fail, retry after a backoff, or wait for the signature's expiry
        (recording, when this delivery's attempt failed, that it was the last)."""
        if plan.step is Step.FAIL:
            return self._fail(order, reason, venue_ms)
        if plan.step is Step.RETRY:
            assert venue_ms is not None  # a retry follows a failed send
            return self._schedule_retry(order, reason, venue_ms, plan.delay_seconds)
        assert plan.step is Step.AWAIT_EXPIRY and order.valid_until is not None
        if sent:
            self._advance(
                order,
                LastAttemptFailed(venue=order.venue, tx_signature=order.tx_signature, attempt=order.attempts,
                                  error=reason, outcome_known_at=order.valid_until + SETTLEMENT_GRACE,
                                  venue_ms=venue_ms),
                failure_reason=reason,
            )
        raise RetryLater(order.id, plan.delay_seconds, reason)

    def give_up(self, order_id: str, reason: str) -> Status | None:
        """Ends an order that stopped making progress: confirmed if its swap landed after all, failed once it
        cannot land any more. Until then (a delivery may be swapping right now) it is left as it is."""
        order = self._orders.get(order_id)
        if order is None or order.status.is_final:
            return order.status if order else None
        try:
            if order.status is Status.SUBMITTED and order.tx_signature:
                now = self._clock.now()  # before asking the venue, as in _settle
                receipt = self._venues.swap_status(order.tx_signature)
                if receipt is not None:
                    return self._confirm(order, receipt).status
                if order.swap_may_still_land(now):
                    return order.status
            ended = self._fail(order, reason)
        except OrderMovedOn as moved:
            log.info("%s; the sweeper leaves it to the delivery that moved it", moved)
            return None
        if ended.sniper is not None:
            self._hand_over(ended)
        return ended.status

    def _confirm(self, order: Order, receipt: SwapReceipt, venue_ms: int | None = None) -> Order:
        change, columns = self._confirmation(order, receipt, venue_ms)
        return self._advance(order, change, **columns)

    @staticmethod
    def _confirmation(order: Order, receipt: SwapReceipt, venue_ms: int | None,
                      ) -> tuple[OrderChange, dict[str, Any]]:
        confirmed = dataclasses.replace(order, amount_out=receipt.amount_out)
        partial = order.fill_amount_in is not None
        change = Confirmed(venue=order.venue or receipt.venue, tx_signature=receipt.signature,
                           amount_out=order.token_out.format(receipt.amount_out),
                           executed_price=str(confirmed.executed_price), slot=receipt.slot, venue_ms=venue_ms,
                           filled_amount_in=order.token_in.format(order.swap_amount_in) if partial else None,
                           unfilled_amount_in=order.token_in.format(order.amount_in - order.swap_amount_in)
                           if partial else None)
        return change, {"amount_out": receipt.amount_out, "legs": receipt.swaps}

    def _sign_again(self, order: Order) -> Order:
        fields = self._new_signature(order)
        return self._advance(
            order,
            SignedAgain(venue=order.venue, tx_signature=fields["tx_signature"], attempt=order.attempts + 1,
                        previous_error="the signature expired before it landed", valid_until=fields["valid_until"]),
            attempts=order.attempts + 1,
            **fields,
        )

    def _schedule_retry(self, order: Order, reason: str, venue_ms: int, delay: int) -> Order:
        self._advance(  # raises OrderMovedOn if another delivery moved the order meanwhile: it owns the retry
            order,
            RetryScheduled(venue=order.venue, tx_signature=order.tx_signature, attempt=order.attempts + 1,
                           previous_error=reason, retry_in_seconds=delay, venue_ms=venue_ms),
            attempts=order.attempts + 1,
        )
        raise RetryLater(order.id, delay, reason)

    def _fail(self, order: Order, reason: str, venue_ms: int | None = None) -> Order:
        if order.status.is_final:
            return order
        if order.attempts > 1:
            reason = f"{reason} (after {order.attempts} attempts)"
        return self._advance(order, Failed(reason=reason, attempts=order.attempts, venue_ms=venue_ms),
                             failure_reason=reason)

    def _ms_since(self, start: datetime) -> int:
        return round((self._clock.now() - start).total_seconds() * 1000)

    def _advance(self, order: Order, change: OrderChange, **fields: Any) -> Order:
        """The conditional step; OrderMovedOn when another delivery changed the order since it was read."""
        self._check(order.status, change.status)
        event = self._orders.transition(order.id, order.status, change.status, self._clock.now(), change.data(),
                                        expected_seq=order.seq, **fields)
        if event is None:
            raise OrderMovedOn(order.id, order.status)
        self._notifier.publish(order.id, [event])
        return self._moved(order, event, fields)

    def _advance_many(self, changes: Sequence[tuple[Order, OrderChange, dict[str, Any]]],
                      outcomes: dict[str, Status | Exception | None]) -> list[Order]:
        """The conditional step of many orders in one statement, their events pushed together: the orders moved
        (each of the others is left to the delivery that moved it, its outcome None)."""
        return self._pass_many([(order, Transition(order.id, order.status, change.status, change.data(), order.seq,
                                                   fields)) for order, change, fields in changes], outcomes)

    def _pass_many(self, steps: Sequence[tuple[Order, Transition]],
                   outcomes: dict[str, Status | Exception | None]) -> list[Order]:
        """``_advance_many`` for steps that may pass through statuses on the way: each order's events, all of
        them stored in one statement, pushed together."""
        if not steps:
            return []
        for order, step in steps:
            status = order.status
            for then in [*(passed.status for passed in step.via), step.new]:
                self._check(status, then)
                status = then
        lasts = self._orders.transition_many([step for _, step in steps], self._clock.now())
        moved: list[Order] = []
        published: dict[str, list[OrderEvent]] = {}
        for (order, step), last in zip(steps, lasts, strict=True):
            if last is None:
                log.info("%s; this delivery stops", OrderMovedOn(order.id, order.status))
                outcomes[order.id] = None
                continue
            events = published[order.id] = step.events(last)
            for event in events[:-1]:
                order = self._moved(order, event, {})
            moved.append(self._moved(order, last, step.fields))
        self._notifier.publish_many(published)
        return moved

    @staticmethod
    def _check(status: Status, then: Status) -> None:
        if not can_transition(status, then):
            raise ValueError(f"an order cannot go from {status} to {then}")

    def _moved(self, order: Order, event: OrderEvent, fields: dict[str, Any]) -> Order:
        self._metrics.record(order_measurements(order, event))
        if event.status.is_final:
            log.info("order %s %s", order.id, event.status, extra={
                "orderId": order.id, "venue": order.venue, "attempts": fields.get("attempts", order.attempts)})
        return dataclasses.replace(order, status=event.status, seq=event.seq, updated_at=event.at, **fields)
