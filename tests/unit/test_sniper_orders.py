"""Sniper orders on fakes: launching tokens and pools, waiting for the open, the launch's checks, placement order,
and never a swap before the open, after an expiry or a cancel, or twice."""

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.api.requests import parse_order
from chalicelib.domain.commands import ListToken, OpenPool
from chalicelib.domain.orders import Status
from chalicelib.domain.pools import NotOpenYet
from chalicelib.domain.sniper_orders import (
    PREPARE_AHEAD,
    Conditions,
    SniperTerms,
    check_launch,
    least_out_for_max_price,
)
from chalicelib.domain.tokens import TOKENS, TokenListing, is_mint_address, new_mint_address
from chalicelib.domain.venues import VenueUnavailable
from chalicelib.services import errors as refused
from chalicelib.services.execution import RetryLater
from tests.fakes import pool_quotes
from tests.unit.test_services import World

FILLED = ["pending", "open", "triggered", "routing", "building", "submitted", "confirmed"]
MEME = ("MEME", "USDC")
AHEAD = PREPARE_AHEAD.total_seconds()  # triggered this long before the open (the fake venues land at once: no lead)


@pytest.fixture
def world():
    return World()


def list_meme(world, mint_revoked=True, freeze_revoked=True, mint=None):
    return world.engine.launches.list_token(ListToken("MEME", 6, mint, mint_revoked, freeze_revoked))


def open_meme_pool(world, opens_in=timedelta(0), venue="raydium", base="1000000", quote="2000"):
    """A MEME/USDC pool at 0.002 USDC per MEME, opening ``opens_in`` from now."""
    return world.engine.launches.open_pool(OpenPool(venue, "MEME", "USDC", Decimal(base), Decimal(quote),
                                                    world.clock.now() + opens_in))


def snipe(world, token_out="MEME", amount="10", user="alice", **terms):
    body = {"type": "sniper", "tokenIn": "USDC", "tokenOut": token_out, "amountIn": amount,
            "expiresAt": (world.clock.current + timedelta(hours=1)).isoformat(), **terms}
    return world.service.place(user, parse_order(json.dumps(body).encode()).to_command())


def waiting(world, order):
    assert world.executor.execute(order.id) is Status.OPEN
    return order


def fire(world, after=timedelta(seconds=11)):
    """Time passes to the open, and the pair's wake-up arrives."""
    world.clock.current += after
    return world.triggers.on_pools_changed([MEME])


def run_the_line(world):
    """The worker takes each message in turn, as SQS delivers them, until none is left."""
    while world.queue.sent:
        world.executor.execute(world.queue.sent.pop(0))


# The launch API ---------------------------------------------------------------------------------------------------

def test_a_token_is_listed_with_a_fresh_valid_mint_and_a_duplicate_in_any_case_is_refused(world):
    listed = list_meme(world, mint_revoked=False)
    assert is_mint_address(listed.token.mint) and listed.token.decimals == 6
    assert not listed.mint_authority_revoked and listed.freeze_authority_revoked
    assert TOKENS["MEME"] == listed.token and TOKENS.by_mint(listed.token.mint) == listed.token
    with pytest.raises(refused.Conflict):
        world.engine.launches.list_token(ListToken("meme", 9))
    with pytest.raises(refused.Conflict):
        world.engine.launches.list_token(ListToken("OTHER", 9, listed.token.mint))
    with pytest.raises(refused.Invalid):
        world.engine.launches.list_token(ListToken("BAD", 6, "0OIl" * 10))
    assert world.engine.launches.revoke("MEME", "mint").mint_authority_revoked
    with pytest.raises(refused.NotFound):
        world.engine.launches.revoke("NOPE", "mint")


def test_a_pool_opens_at_its_price_refuses_swaps_before_its_open_and_is_unique_per_venue_and_pair(world):
    list_meme(world)
    pool = open_meme_pool(world, timedelta(seconds=10))
    # Whole seconds, as a chain's clock counts them: a fraction opens at the next second.
    assert pool.id == "raydium-meme-usdc" and pool.open_time == math.ceil(world.clock.current.timestamp()) + 10
    quote = pool_quotes(world.venues, "USDC", "MEME", 10**6, int(world.clock.current.timestamp()))[0]
    assert "not open yet" in quote.error
    with pytest.raises(NotOpenYet):
        pool.swap("USDC", 10**6, pool.open_time - 1)
    assert pool.swap("USDC", 10**6, pool.open_time).amount_out > 0
    with pytest.raises(refused.Conflict):
        open_meme_pool(world)
    meteora = open_meme_pool(world, venue="meteora")
    assert abs(meteora.spot_price("MEME") - Decimal("0.002")) < Decimal("0.00001")  # 6 and 6 decimals: raw = human
    with pytest.raises(refused.Invalid, match="not a listed token"):
        world.engine.launches.open_pool(OpenPool("raydium", "NOPE", "USDC", Decimal(1), Decimal(1)))
    with pytest.raises(refused.Invalid, match="more than 60 s in the past"):
        open_meme_pool(world, -timedelta(minutes=5), venue="meteora")
    with pytest.raises(refused.Invalid, match="7 days"):
        world.engine.launches.open_pool(OpenPool("meteora", "MEME", "SOL", Decimal(1), Decimal(1),
                                                 world.clock.now() + timedelta(days=8)))
    assert world.pool_events.pending >= {MEME}


# The launch's checks, pure --------------------------------------------------------------------------------------

def test_the_checks_name_what_a_launch_still_has_to_do_and_the_best_passing_pool_wins(world):
    meme = list_meme(world, mint_revoked=False).token
    usdc = TOKENS["USDC"]
    now = world.clock.now()
    terms = SniperTerms(now + timedelta(hours=1), Decimal("0.0021"), Conditions(Decimal("5000"), True, True, True))
    nothing = check_launch(terms, usdc, meme, 10**7, world.venues.listing("MEME"), [], now)
    assert nothing.waiting_for == ("no pool trades USDC/MEME yet",) and not nothing.fires
    pool = open_meme_pool(world, timedelta(seconds=30))
    check = check_launch(terms, usdc, meme, 10**7, world.venues.listing("MEME"), [pool], now)
    assert check.fire_at is not None and check.fire_at.timestamp() == pool.open_time
    assert [w.split(" ")[0] for w in check.waiting_for] == ["raydium-meme-usdc", "MEME's", "raydium-meme-usdc's",
                                                            "raydium-meme-usdc"]
    assert check.waiting_for[3] == "raydium-meme-usdc to hold 5000 USDC (it holds 2000)"
    rich = open_meme_pool(world, venue="meteora", quote="20000", base="10000000")
    world.engine.launches.revoke("MEME", "mint")
    world.engine.launches.burn_lp(rich.id)
    world.clock.current += timedelta(seconds=2)  # past the rich pool's open, before the other's
    passing = check_launch(terms, usdc, meme, 10**7, world.venues.listing("MEME"), world.venues.pools("USDC", "MEME"),
                           world.clock.now())
    assert passing.fires and passing.pool.id == rich.id
    assert least_out_for_max_price(usdc, meme, 10**7, Decimal("0.002")) == 5000 * 10**6


# Sniping, end to end on fakes -----------------------------------------------------------------------------------

def test_snipers_wait_for_the_open_then_swap_once_each_in_placement_order_at_the_price_each_one_left(world):
    list_meme(world)
    first = waiting(world, snipe(world, amount="10"))
    second = waiting(world, snipe(world, token_out=TOKENS["MEME"].mint, amount="10", user="bob"))
    third = waiting(world, snipe(world, amount="10"))
    assert world.orders.events(first.id)[-1].data["target"] == "MEME"
    world.queue.sent.clear()
    opens = open_meme_pool(world, timedelta(seconds=10)).open_time
    report = world.triggers.on_pools_changed([MEME])
    (wakeup,) = world.pool_events.wakeups
    assert report.triggered == [] and wakeup[:2] == MEME
    assert 0 <= opens - AHEAD - (world.clock.current.timestamp() + wakeup[2]) < 1  # a second early at most
    world.clock.current = datetime.fromtimestamp(opens - AHEAD - 0.4, UTC)  # the delayed event arrives
    assert world.triggers.on_pools_changed([MEME]).triggered == [first.id, second.id, third.id]  # waited the rest
    assert opens - AHEAD <= world.clock.current.timestamp() < opens  # triggered ahead of the open, to be ready
    # The worker gets them in any order: only the first in line goes, and each hands the pair to the next.
    assert world.executor.execute(third.id) is Status.TRIGGERED
    assert world.executor.execute(second.id) is Status.TRIGGERED
    world.queue.sent = [first.id]
    run_the_line(world)
    receipts = sorted(world.venues.ledger.values(), key=lambda r: r.slot)
    assert [r.memo for r in receipts] == [first.id, second.id, third.id]
    assert receipts[0].executed_at.timestamp() - opens < 0.05  # sent as it opens: the first lands at once
    outs = [r.amount_out for r in receipts]
    assert outs[0] > outs[1] > outs[2]  # each bought at the price the previous one left
    for order in (first, second, third):
        assert world.statuses(order.id) == FILLED


@pytest.mark.parametrize("early_ms", range(1, 9))
def test_snipers_due_at_one_instant_are_triggered_in_placement_order_whenever_the_evaluation_reads_the_clock(early_ms):
    """The pass reads the time once: read per sniper, the instant they were due could fall between the first's check
    and the second's, and the second went first (seen in the end-to-end test: bob's swap landed before alice's)."""
    world = World()
    list_meme(world)
    line = [waiting(world, snipe(world, user=user)) for user in ("alice", "bob", "carol")]
    world.queue.sent.clear()
    opens = open_meme_pool(world, timedelta(seconds=10)).open_time
    world.triggers.on_pools_changed([MEME])
    world.clock.current = datetime.fromtimestamp(opens - AHEAD - early_ms / 1000, UTC)  # the clock ticks 1 ms a read
    assert world.triggers.on_pools_changed([MEME]).triggered == [order.id for order in line]


def test_a_sniper_whose_own_message_comes_first_leaves_the_line_to_the_pairs_evaluation(world):
    """Each sniper's own message and the pair's wake-up come back at the instant the line is due: the second in
    line, reached first, is not triggered alone ahead of the first (seen end to end: bob's swap landed first)."""
    list_meme(world)
    first, second, third = (waiting(world, snipe(world, user=user)) for user in ("alice", "bob", "carol"))
    world.queue.sent.clear()
    opens = open_meme_pool(world, timedelta(seconds=10)).open_time
    world.triggers.on_pools_changed([MEME])
    world.clock.current = datetime.fromtimestamp(opens - AHEAD + 0.1, UTC)  # due
    with pytest.raises(RetryLater) as later:
        world.executor.execute(second.id)
    assert later.value.delay_seconds == 1 and world.orders.get(second.id).status is Status.OPEN
    assert world.triggers.on_pools_changed([MEME]).triggered == [first.id, second.id, third.id]
    world.queue.sent = [second.id, third.id, first.id]  # the worker gets them in any order
    run_the_line(world)
    receipts = sorted(world.venues.ledger.values(), key=lambda r: r.slot)
    assert [r.memo for r in receipts] == [first.id, second.id, third.id]


def test_a_sniper_placed_when_its_pair_has_an_open_pool_is_refused_it_is_a_market_order(world):
    list_meme(world)
    open_meme_pool(world, -timedelta(seconds=1))
    with pytest.raises(refused.Conflict, match="place a market or limit order"):
        snipe(world)


def test_a_sniper_waits_while_the_mint_authority_is_active_then_fills_once_it_is_revoked(world):
    list_meme(world, mint_revoked=False)
    order = waiting(world, snipe(world))
    open_meme_pool(world)
    assert fire(world, timedelta(seconds=1)).triggered == []
    view = world.service.view("alice", order.id)
    assert view.waiting_for == ("MEME's mint authority to be revoked",)
    world.engine.launches.revoke("MEME", "mint")
    assert world.pool_events.pending == {MEME}  # the revoke is an event of MEME's pools
    assert world.triggers.on_pools_changed([MEME]).triggered == [order.id]
    run_the_line(world)
    assert world.statuses(order.id) == FILLED and len(world.venues.ledger) == 1


def test_a_price_above_max_price_leaves_it_open_until_it_expires(world):
    list_meme(world)
    order = waiting(world, snipe(world, maxPrice="0.0015"))
    open_meme_pool(world)
    assert fire(world, timedelta(seconds=1)).triggered == []
    assert "at most 0.0015 USDC" in world.service.view("alice", order.id).waiting_for[0]
    world.clock.current += timedelta(hours=1)
    assert world.executor.execute(order.id) is Status.EXPIRED
    assert world.venues.ledger == {}


def test_the_swap_minimum_is_the_stricter_of_max_price_and_slippage(world):
    list_meme(world)
    tight = waiting(world, snipe(world, amount="10", maxPrice="0.00205", slippageBps=5000))
    loose = waiting(world, snipe(world, amount="10", maxPrice="1", slippageBps=100))
    open_meme_pool(world)
    fire(world, timedelta(seconds=1))
    run_the_line(world)
    assert world.orders.get(tight.id).min_out == least_out_for_max_price(TOKENS["USDC"], TOKENS["MEME"], 10**7,
                                                                         Decimal("0.00205"))
    quoted = Decimal(world.orders.events(loose.id)[4].data["quotedOut"]) * 10**6
    assert world.orders.get(loose.id).min_out == int(quoted) * 9_900 // 10_000


def test_a_delay_after_the_open_is_waited_and_never_shortened(world):
    list_meme(world)
    order = waiting(world, snipe(world, delaySeconds=30))
    opens = open_meme_pool(world, timedelta(seconds=5)).open_time
    world.triggers.on_pools_changed([MEME])
    assert world.pool_events.wakeups[-1][2] == math.floor(opens + 30 - AHEAD - world.clock.current.timestamp())
    assert fire(world, timedelta(seconds=20)).triggered == []  # open, but its delay is not over
    assert "30 s delay" in world.service.view("alice", order.id).waiting_for[0]
    assert fire(world, timedelta(seconds=15)).triggered == [order.id]


def test_a_sniper_cancelled_in_line_hands_the_pair_to_the_next(world):
    list_meme(world)
    first, second = waiting(world, snipe(world)), waiting(world, snipe(world))
    open_meme_pool(world)
    fire(world, timedelta(seconds=1))
    world.queue.sent.clear()
    world.service.cancel("alice", first.id)
    assert world.queue.sent == [second.id]
    run_the_line(world)
    assert world.orders.get(first.id).status is Status.CANCELLED and world.statuses(second.id) == FILLED
    assert [r.memo for r in world.venues.ledger.values()] == [second.id]


def test_a_sniper_whose_pool_is_launched_before_it_rests_waits_on_its_own_message(world):
    list_meme(world)
    opens = open_meme_pool(world, timedelta(seconds=20)).open_time
    order = snipe(world)  # the launch's event came before this order rested
    with pytest.raises(RetryLater) as later:
        world.executor.execute(order.id)
    assert later.value.delay_seconds == math.ceil(opens - AHEAD - world.clock.current.timestamp())
    world.clock.current += timedelta(seconds=21)
    assert world.executor.execute(order.id) is Status.CONFIRMED


def test_a_sniper_by_mint_waits_for_its_listing(world):
    mint = new_mint_address()
    order = waiting(world, snipe(world, token_out=mint))
    assert world.service.view("alice", order.id).order.token_out.symbol == mint
    assert world.service.view("alice", order.id).waiting_for == (f"no pool trades USDC/{mint} yet",)
    list_meme(world, mint=mint)
    open_meme_pool(world)
    assert fire(world, timedelta(seconds=1)).triggered == [order.id]
    run_the_line(world)
    assert world.orders.get(order.id).token_out == TOKENS["MEME"] and world.statuses(order.id) == FILLED


def test_sniper_terms_are_checked_when_placed(world):
    def refused_with(field, **terms):
        with pytest.raises(refused.Invalid) as error:
            snipe(world, **terms)
        assert error.value.fields[0]["field"] == field

    list_meme(world)
    refused_with("tokenOut", token_out="NOPE")
    refused_with("expiresAt", expiresAt=(world.clock.current + timedelta(days=8)).isoformat())
    refused_with("expiresAt", expiresAt=(world.clock.current - timedelta(seconds=1)).isoformat())
    refused_with("conditions.minLiquidity", conditions={"minLiquidity": "0.0000001"})


def test_a_listing_seen_by_another_process_is_learnt_on_first_use(world):
    listing = TokenListing(TOKENS["USDC"].__class__("LATE", new_mint_address(), 3), True, True)
    world.venues.list_token(listing)  # listed by another process: this one has not seen it
    assert "LATE" not in list(TOKENS)
    assert TOKENS["LATE"].decimals == 3 and "LATE" in list(TOKENS)


def test_only_what_could_be_listed_is_looked_up_and_addresses_are_32_bytes_of_base58():
    asked = []
    TOKENS.learn_with(lambda key: asked.append(key))
    try:
        for garbage in ("SOL\x00", "SOL\n", "", "a" * 45, "ME-ME"):
            assert TOKENS.resolve(garbage) is None
        assert asked == []
        assert TOKENS.resolve("NEWCOIN") is None and asked == ["NEWCOIN"]
    finally:
        TOKENS.forget_learnt()
        TOKENS.learn_with(lambda key: None)
    assert is_mint_address(TOKENS["USDC"].mint) and is_mint_address("2" * 44) and is_mint_address("1" * 32)
    assert not is_mint_address("z" * 44) and not is_mint_address(TOKENS["USDC"].mint + "\n")
    assert not is_mint_address("0OIl" * 10)
    assert all(is_mint_address(new_mint_address()) for _ in range(200))


def test_a_launch_days_ahead_gets_its_wake_up_from_the_sweeper_as_the_open_nears(world):
    list_meme(world)
    order = waiting(world, snipe(world, expiresAt=(world.clock.current + timedelta(days=6)).isoformat()))
    opens = open_meme_pool(world, timedelta(days=3)).open_time
    world.triggers.on_pools_changed([MEME])
    assert world.pool_events.wakeups == []  # beyond a message timer's 15 minutes: no function waits for it
    world.clock.current = datetime.fromtimestamp(opens, UTC) - timedelta(minutes=10)
    world.engine.sweeper.sweep()
    assert world.pool_events.wakeups == []  # the sweeper schedules only the opens of its next 2 minutes
    world.clock.current = datetime.fromtimestamp(opens, UTC) - timedelta(seconds=90)
    world.engine.sweeper.sweep()
    (wakeup,) = world.pool_events.wakeups
    assert wakeup[:2] == MEME and 88 <= wakeup[2] <= 90
    world.clock.current = datetime.fromtimestamp(opens, UTC)
    assert world.triggers.on_pools_changed([MEME]).triggered == [order.id]


def test_snipers_waiting_their_turn_are_not_stuck_and_the_sweeper_never_ends_them(world):
    list_meme(world)
    line = [waiting(world, snipe(world)) for _ in range(3)]
    open_meme_pool(world)
    fire(world, timedelta(seconds=1))
    world.queue.sent.clear()
    world.venues.failures = [VenueUnavailable("the venue is slow today")]
    with pytest.raises(RetryLater):
        world.executor.execute(line[0].id)  # the head of the line is on its way: its swap is retried later
    for _ in range(2):  # past the stuck-order threshold, twice: the others only wait their turn
        world.clock.current += timedelta(minutes=5)
        world.engine.sweeper.sweep()
    assert world.orders.get(line[0].id).sweeps == 2  # the head is the one the sweeper looks after
    for order in line[1:]:
        assert world.orders.get(order.id).status is Status.TRIGGERED and world.orders.get(order.id).sweeps == 0
    assert not {o.id for o in line[1:]} & set(world.queue.sent)


def test_a_head_of_line_the_sweeper_ends_hands_the_pair_to_the_next(world):
    list_meme(world)
    head, following = waiting(world, snipe(world)), waiting(world, snipe(world))
    open_meme_pool(world)
    fire(world, timedelta(seconds=1))
    world.queue.sent.clear()
    world.executor.give_up(head.id, "no progress after 3 redeliveries")
    assert world.orders.get(head.id).status is Status.FAILED and world.queue.sent == [following.id]


def test_a_sniper_sends_its_swap_the_venues_landing_time_ahead_so_it_lands_as_the_pool_opens():
    world = World(swap_latency_ms="2000-3000")
    world.venues.landing_seconds = 2.0  # the least the venues take: what the engine's settings say
    list_meme(world)
    order = waiting(world, snipe(world))
    opens = open_meme_pool(world, timedelta(seconds=30)).open_time
    world.triggers.on_pools_changed([MEME])
    (wakeup,) = world.pool_events.wakeups
    assert 0 <= opens - 3 - (world.clock.current.timestamp() + wakeup[2]) < 1  # 2 s to land, 1 s to build
    world.clock.current = datetime.fromtimestamp(opens - 3.2, UTC)
    assert world.triggers.on_pools_changed([MEME]).triggered == [order.id]
    assert world.executor.execute(order.id) is Status.CONFIRMED
    (receipt,) = world.venues.ledger.values()
    assert 0 <= receipt.executed_at.timestamp() - opens < 0.05  # landed as it opened, not before


def test_a_line_whose_head_lost_its_message_is_restarted_by_the_pairs_next_evaluation(world):
    list_meme(world)
    head, following, last = (waiting(world, snipe(world)) for _ in range(3))
    open_meme_pool(world, timedelta(seconds=30))
    # A trigger claims the head, then dies before queueing it: the head is triggered with no message.
    world.clock.current += timedelta(seconds=29)
    world.orders.transition(head.id, Status.OPEN, Status.TRIGGERED, world.clock.now(), {})
    world.queue.sent.clear()
    world.clock.current += timedelta(seconds=3)  # the event comes back after its visibility timeout
    report = world.triggers.on_pools_changed([MEME])
    assert report.triggered == [following.id, last.id]
    assert world.queue.sent[0] == head.id  # queued again, ahead of the others
    run_the_line(world)
    assert [r.memo for r in sorted(world.venues.ledger.values(), key=lambda r: r.slot)] == [head.id, following.id,
                                                                                             last.id]
