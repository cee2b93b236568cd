"""A multi-leg swap transaction as a venue runs it: every route of a split, each leg in order (a hop's output is the
next leg's input), all on the pools' state as the transaction found it, all or nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .pools import Pool
from .venues import LegReceipt


@dataclass(frozen=True)
class RouteOrder:
    """One route of a transaction: what it sells, and its hops as (pool id, token in, token out)."""

    amount_in: int
    hops: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class TransactionOutcome:
    pools_after: dict[str, Pool]  # every pool the transaction touched, as it leaves it
    legs: tuple[LegReceipt, ...]
    amount_in: int  # what the transaction sold, summed over its routes
    amount_out: int  # what its last legs bought, summed
    fee: int  # the first legs' fees, in the token sold


def run_transaction(pools: Mapping[str, Pool], routes: Sequence[RouteOrder], now: int) -> TransactionOutcome:
    """Runs every leg in order on a copy of the pools' state; a leg that cannot fill raises PoolError, and the
    caller keeps the pools as they were."""
    state = dict(pools)
    legs: list[LegReceipt] = []
    amount_out = fee = 0
    for route in routes:
        amount = route.amount_in
        for hop, (pool_id, token_in, token_out) in enumerate(route.hops):
            pool = state[pool_id]
            outcome = pool.swap(token_in, amount, now)
            state[pool_id] = outcome.pool_after
            legs.append(LegReceipt(pool_id, pool.venue, token_in, token_out, amount, outcome.amount_out, outcome.fee))
            fee += outcome.fee if hop == 0 else 0
            amount = outcome.amount_out
        amount_out += amount
    touched = {leg.pool_id for leg in legs}
    return TransactionOutcome({pid: state[pid] for pid in touched}, tuple(legs), sum(r.amount_in for r in routes),
                              amount_out, fee)
