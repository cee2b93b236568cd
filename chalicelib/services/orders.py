"""Placing orders and reading them back."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from ..domain.commands import ListOrders, PlaceOrder
from ..domain.events import Accepted, Cancelled, Failed
from ..domain.limit_orders import InvalidTerms, LimitTerms, TimeInForce, limit_terms, shortfall_bps
from ..domain.markets import reserves_of
from ..domain.orders import Order, OrderEvent, OrderType, Status
from ..domain.routing import NoRoute, RoutingMode, decide_route
from ..domain.sniper_orders import SniperTerms, check_launch, sniper_terms
from ..domain.telemetry import order_measurements
from ..domain.tokens import TOKENS, Token, is_mint_address
from .errors import Conflict, Invalid, Malformed, NotFound, Unavailable
from .ports import ClientOrderIdTaken, Clock, MetricsSink, NoMetrics, OrderQueue, Orders, VenueData
from .read_models import Executability, OrderDetails, OrderPage

# A cancel races the worker; each lost race means the order moved one step, and there are three before submitting.
_CANCEL_ATTEMPTS = 5


def is_order_id(text: str) -> bool:
    """An order id as the engine gives them (a UUID in its canonical form)."""
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


class OrderService:
    def __init__(
        self,
        orders: Orders,
        queue: OrderQueue,
        clock: Clock,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        publish: Callable[[str, list[OrderEvent]], None] = lambda order_id, events: None,
        metrics: MetricsSink | None = None,
        venues: VenueData | None = None,
        min_gain_bps: Decimal = Decimal(1),
        created: Callable[[Order], None] = lambda order: None,
    ):
        self._min_gain_bps = min_gain_bps
        self._created = created  # tells the user's account streams of a new order
        self._orders = orders
        self._queue = queue
        self._clock = clock
        self._new_id = new_id
        self._publish = publish  # streams a change made here (a cancel) to the order's subscribers
        self._metrics = metrics or NoMetrics()
        self._venues = venues  # limit orders: what the pools could pay, and why an open order has not filled

    def place(self, user_id: str, request: PlaceOrder, order_id: str | None = None) -> Order:
        """Stores the order and queues it for the worker.

        With ``order_id`` (derived from an Idempotency-Key) placing is itself idempotent, whatever happened to the
        response of an earlier attempt: a repeat finds the stored order (the insert finds its id taken), queues it
        again if it has not started (the first attempt may have failed to), and returns it.
        """
        now = self._clock.now()
        token_in = TOKENS[request.token_in]
        token_out = TOKENS[request.token_out] if request.sniper is None else _sniper_target(request.token_out)
        amount_in = token_in.to_units(request.amount_in)
        order = Order(
            id=order_id or self._new_id(),
            user_id=user_id,
            type=OrderType(request.type),
            token_in=token_in,
            token_out=token_out,
            amount_in=amount_in,
            slippage_bps=request.slippage_bps if request.limit is None else None,
            status=Status.PENDING,
            seq=1,
            created_at=now,
            updated_at=now,
            limit=None if request.limit is None else _terms(request, amount_in, now),
            sniper=None if request.sniper is None else _sniper_terms(request, token_in, now),
            routing=request.routing,
            client_order_id=request.client_order_id,
        )
        if order.limit is not None:
            assert request.limit is not None
            self._within_reach(order, order.limit, "limitPrice" if request.limit.limit_price else "minAmountOut")
        if order.sniper is not None:
            self._not_launched_yet(order)
        accepted = OrderEvent(order.id, 1, Status.PENDING, now, Accepted(
            type=str(order.type), token_in=token_in.symbol, token_out=token_out.symbol,
            amount_in=str(request.amount_in), slippage_bps=order.slippage_bps,
            client_order_id=order.client_order_id).data())
        try:
            added = self._orders.add(order, accepted)
        except ClientOrderIdTaken as taken:
            existing = self._orders.get(order.id)  # a repeat of this Idempotency-Key has it, and the id
            if existing is not None:
                return self._repeat(existing, order)
            raise Conflict(f"clientOrderId {order.client_order_id!r} is taken by your order {taken.order_id}",
                           [{"field": "clientOrderId", "message": f"taken by order {taken.order_id}"}]) from None
        if not added:  # a repeat of this Idempotency-Key stored it first
            return self._repeat(self._orders.get(order.id), order)
        try:
            self._queue.enqueue(order.id)
        except Exception as error:
            if order_id is not None:
                # Kept pending: the client's retry with the same key queues it (so does the sweeper, if none comes).
                raise _not_queued_yet() from error
            # Not accepted after all: close the order so nothing waits on it, and let the client retry.
            reason = f"the order could not be queued ({type(error).__name__})"
            self._orders.transition(order.id, Status.PENDING, Status.FAILED, self._clock.now(),
                                    Failed(reason=reason, retryable=True).data(), failure_reason=reason)
            raise Unavailable("orders cannot be queued right now; try again", retry_after_seconds=1) from error
        self._metrics.record(order_measurements(order, accepted))
        self._created(order)
        return order

    def _within_reach(self, order: Order, terms: LimitTerms, field: str) -> None:
        """A limit asking for more than every pool of the pair holds could never fill: refused at once."""
        if self._venues is None:
            return
        held = sum(reserves_of(pool)[0 if pool.base == order.token_out.symbol else 1]
                   for pool in self._venues.pools(order.token_in.symbol, order.token_out.symbol))
        if terms.min_amount_out >= held:
            raise Invalid(f"the limit asks for {order.token_out.format(terms.min_amount_out)} "
                          f"{order.token_out.symbol}, more than the venues' pools hold "
                          f"({order.token_out.format(held)}): it could never fill",
                          [{"field": field, "message": "more than the venues' pools could ever pay"}])

    def _hand_over(self, sniper: Order) -> None:
        """A sniper cancelled on its way to its swap lets the next one of its pair go (as the worker does when
        one ends)."""
        following = self._orders.next_in_line(sniper.token_in.symbol, sniper.token_out.mint)
        if following is not None:
            self._queue.enqueue(following.id)

    def _not_launched_yet(self, order: Order) -> None:
        """A sniper waits for a launch: with a pool of its pair open already, it would be a market order."""
        if self._venues is None or not order.token_out.listed:
            return
        now = self._clock.now()
        for pool in self._venues.pools(order.token_in.symbol, order.token_out.symbol):
            if pool.open_time <= now.timestamp():
                raise Conflict(f"{pool.id} trades {order.token_in.symbol}/{order.token_out.symbol} already (open "
                               "since its launch): a sniper waits for a pool to open; place a market or limit order")

    def waiting_for(self, order: Order) -> tuple[str, ...] | None:
        """What an open sniper waits for, read now (its pool to open, an authority revoked, the LP burned, more
        liquidity, a lower price)."""
        if order.status is not Status.OPEN or order.sniper is None or self._venues is None:
            return None
        listing = self._venues.listing(order.token_out.mint)
        pools = self._venues.pools(order.token_in.symbol, order.token_out.symbol) if listing is not None else []
        check = check_launch(order.sniper, order.token_in, order.token_out, order.amount_in, listing, pools,
                             self._clock.now())
        return check.waiting_for if not check.fires else ("its trigger: the launch passes every check now",)

    def executable(self, order: Order) -> Executability | None:
        """Why an open limit order has not filled yet, read now: the best quote for its whole size against what it
        requires (the marginal price touching the limit is not a fill at the limit for the full size)."""
        if order.status is not Status.OPEN or order.limit is None or self._venues is None:
            return None
        pools = self._venues.pools(order.token_in.symbol, order.token_out.symbol)
        try:  # as the trigger reads it: the best route over the pair's own pools, split if that pays
            best = decide_route(pools, order.token_in.symbol, order.token_out.symbol, order.amount_in,
                                int(self._clock.now().timestamp()), self._min_gain_bps,
                                single=order.routing is RoutingMode.SINGLE).chosen.amount_out
        except NoRoute:
            best = 0
        return Executability(best, order.limit.min_amount_out, shortfall_bps(best, order.limit.min_amount_out))

    def _repeat(self, existing: Order | None, asked: Order) -> Order:
        assert existing is not None  # orders are never deleted
        same = (
            existing.user_id == asked.user_id
            and existing.type is asked.type
            and (existing.token_in.mint, existing.token_out.mint) == (asked.token_in.mint, asked.token_out.mint)
            and existing.amount_in == asked.amount_in
            and existing.slippage_bps == asked.slippage_bps
            and _same_terms(existing, asked)
            and existing.sniper == asked.sniper
            and existing.routing is asked.routing
            and existing.client_order_id == asked.client_order_id
        )
        if not same:
            raise Invalid("this Idempotency-Key was used with a different request body",
                                [{"field": "Idempotency-Key", "message": "already used for a different order"}])
        if existing.status is Status.PENDING:
            try:
                self._queue.enqueue(existing.id)  # a duplicate message is harmless; a missing one would strand it
            except Exception as error:
                raise _not_queued_yet() from error
        return existing

    def owned(self, user_id: str, order_id: str) -> Order:
        """The caller's order; someone else's is as invisible as one that does not exist."""
        order = self._orders.get(order_id) if is_order_id(order_id) else None
        if order is None or order.user_id != user_id:
            raise NotFound(f"order {order_id} not found")
        return order

    def by_client_id(self, user_id: str, client_order_id: str) -> str:
        """The id of the caller's order with this client order id."""
        order = self._orders.by_client_id(user_id, client_order_id)
        if order is None:
            raise NotFound(f"no order of yours has clientOrderId {client_order_id!r}")
        return order.id

    def view(self, user_id: str, order_id: str) -> OrderDetails:
        order = self.owned(user_id, order_id)
        return OrderDetails(order, self._orders.events(order.id), self._orders.decision(order.id),
                            self.executable(order), self.waiting_for(order))

    def page(self, user_id: str, query: ListOrders) -> OrderPage:
        """One page of the caller's orders, newest first, and the cursor of the next page (None: last page)."""
        before = _decode_cursor(query.cursor) if query.cursor else None
        orders = self._orders.page(user_id, list(query.statuses), [str(t) for t in query.types], before,
                                   query.limit + 1, query.client_order_id)
        more = len(orders) > query.limit
        orders = orders[: query.limit]
        return OrderPage(orders, _encode_cursor(orders[-1]) if more else None)

    def cancel(self, user_id: str, order_id: str) -> OrderDetails:
        """Cancels an order no venue has seen yet; Conflict once its swap has been submitted or it has ended.

        The worker only ever moves an order by a change conditional on the status it read, so once the order is
        cancelled no later step of a delivery still in flight, or of a message still queued, can execute it."""
        for _ in range(_CANCEL_ATTEMPTS):
            order = self.owned(user_id, order_id)
            if order.status is Status.CANCELLED:
                return self.view(user_id, order.id)  # cancelling twice is not an error
            if not order.status.is_cancellable:
                raise Conflict(_too_late(order))
            event = self._orders.transition(order.id, order.status, Cancelled.status, self._clock.now(),
                                            Cancelled(reason="cancelled by the user",
                                                      previous_status=str(order.status)).data(),
                                            expected_seq=order.seq)
            if event is not None:
                self._publish(order.id, [event])
                self._metrics.record(order_measurements(order, event))
                if order.sniper is not None and order.status is not Status.OPEN:
                    self._hand_over(order)
                return self.view(user_id, order.id)
        raise Conflict("the order is changing too fast to cancel; read it and try again")


def _terms(request: PlaceOrder, amount_in: int, now: datetime) -> LimitTerms:
    assert request.limit is not None
    given = request.limit
    try:
        return limit_terms(request.token_in, request.token_out, amount_in, given.time_in_force, now,
                           limit_price=given.limit_price, min_amount_out=given.min_amount_out,
                           expires_at=given.expires_at)
    except InvalidTerms as refused:
        raise Invalid(str(refused), [{"field": refused.field, "message": str(refused)}]) from None


def _same_terms(existing: Order, asked: Order) -> bool:
    """Whether a repeat asks for the same limit as the stored order (a GTC's expiry is the first attempt's)."""
    if existing.limit is None or asked.limit is None:
        return existing.limit is None and asked.limit is None
    given, terms = asked.limit, existing.limit
    if given.time_in_force is not terms.time_in_force:
        return False
    if given.time_in_force is TimeInForce.GTD and given.expires_at != terms.expires_at:
        return False
    return (given.limit_price, given.min_amount_out) == (terms.limit_price, terms.min_amount_out)


def _sniper_target(symbol_or_mint: str) -> Token:
    """A listed token (by symbol or mint), or a mint no venue lists yet: a sniper often knows it before the listing."""
    found = TOKENS.resolve(symbol_or_mint)
    if found is not None:
        return found
    if is_mint_address(symbol_or_mint):
        return Token.unlisted(symbol_or_mint)
    raise Invalid(f"tokenOut {symbol_or_mint!r} is neither a listed token's symbol (GET /tokens) nor a mint address",
                  [{"field": "tokenOut", "message": "not a listed symbol or a base58 mint address"}])


def _sniper_terms(request: PlaceOrder, token_in: Token, now: datetime) -> SniperTerms:
    assert request.sniper is not None
    given = request.sniper
    try:
        return sniper_terms(now, token_in, given.expires_at, given.max_price, given.conditions, given.delay_seconds)
    except InvalidTerms as refused:
        raise Invalid(str(refused), [{"field": refused.field, "message": str(refused)}]) from None


def _too_late(order: Order) -> str:
    if order.status.is_final:
        return f"order {order.id} has already ended ({order.status}); only an order not yet submitted can be cancelled"
    return (f"order {order.id} is {order.status}: its swap was submitted to {order.venue}, so it can no longer be "
            "cancelled")


def _encode_cursor(order: Order) -> str:
    position = json.dumps([order.created_at.isoformat(), order.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(position).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, order_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        position = datetime.fromisoformat(created_at), str(uuid.UUID(order_id))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Malformed("cursor is not one this API returned; pass nextCursor from the previous page",
                         [{"field": "cursor", "message": "not a cursor this API issued"}]) from None
    if position[0].tzinfo is None:
        raise Malformed("cursor is not one this API returned", [{"field": "cursor", "message": "malformed"}])
    return position


def _not_queued_yet() -> Unavailable:
    return Unavailable("the order could not be queued yet; retry with the same Idempotency-Key", retry_after_seconds=1)
