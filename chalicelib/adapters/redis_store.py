"""Redis: the hot state of WebSocket connections and order subscriptions.

``ws:conn:{id}`` holds a connection's user; ``ws:conn:{id}:orders`` the orders it follows;
``ws:subs:{orderId}`` maps each subscribed connection to the last ``seq`` it was sent, so every delivery
continues exactly where the previous one stopped, and ``ws:lock:{orderId}`` lets one delivery at a time push the
order's events. ``ws:user:{userId}`` and ``ws:open`` hold the open connections, scored by when they opened, for the
per-user limit and the open-connections gauge. ``ws:account:{userId}`` holds the connections that follow every order
of the user (new orders are joined as they are placed), ``ws:market:{poolId}`` those that follow a pool's changes
(``ws:market:{*}``: every pool), and ``ws:conn:{id}:markets`` the pools a connection follows.

The braces are Redis hash tags: ElastiCache Serverless is a cluster, where a command or a transaction may only
touch keys of one slot, so a connection's keys share its id's slot. A pipeline that spans slots is never a
transaction here (it could not be one on a cluster); each of its commands stands alone.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import redis

from ..services.ports import Delivery

log = logging.getLogger(__name__)

CONNECTION_TTL_SECONDS = 3 * 60 * 60  # longer than API Gateway's 2-hour connection limit
USERS_KEPT = 10_000  # connections whose user an environment remembers (forgotten all at once past that)
# API Gateway closes every connection after 2 hours, so a connection registered earlier is gone even if its
# $disconnect (best effort) never came.
CONNECTION_MAX_AGE_MS = 2 * 60 * 60 * 1000
SUBSCRIPTION_TTL_SECONDS = 24 * 60 * 60
LOCK_TTL_SECONDS = 5  # far longer than pushing one order's events takes
LOCK_RETRY_SECONDS = 0.002


def connection_key(connection_id: str, suffix: str = "") -> str:
    return f"ws:conn:{{{connection_id}}}{suffix}"


def subscribers_key(order_id: str) -> str:
    return f"ws:subs:{{{order_id}}}"


def user_key(user_id: str) -> str:
    return f"ws:user:{{{user_id}}}"


def account_key(user_id: str) -> str:
    return f"ws:account:{{{user_id}}}"


ALL_POOLS = "*"


def market_key(pool_id: str) -> str:
    return f"ws:market:{{{pool_id}}}"


class RedisConnections:
    def __init__(self, client: redis.Redis | redis.RedisCluster,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)):
        self._r = client
        self._now_ms = now_ms
        self._admit = client.register_script(_ADMIT)
        self._begin_delivery = client.register_script(_BEGIN_DELIVERY)
        self._finish_delivery = client.register_script(_FINISH_DELIVERY)
        # A connection's user never changes and its id is never reused: read once, it saves every later message of
        # the connection a round trip.
        self._users: dict[str, str] = {}

    def ping(self) -> None:
        self._r.ping()

    def add_connection(self, connection_id: str, user_id: str, max_per_user: int = 0, read_only: bool = False) -> bool:
        """Registers the connection; False (and nothing registered) when the user has ``max_per_user`` open."""
        now = self._now_ms()
        if not self._admit(keys=[user_key(user_id)], args=[connection_id, now, CONNECTION_MAX_AGE_MS, max_per_user]):
            return False
        pipe = self._r.pipeline(transaction=False)
        pipe.set(connection_key(connection_id), user_id, ex=CONNECTION_TTL_SECONDS)
        if read_only:
            pipe.set(connection_key(connection_id, ":read-only"), 1, ex=CONNECTION_TTL_SECONDS)
        pipe.zadd("ws:open", {connection_id: now})
        pipe.execute()
        return True

    def may_trade(self, connection_id: str) -> bool:
        return not self._r.exists(connection_key(connection_id, ":read-only"))

    def open_connections(self) -> int:
        pipe = self._r.pipeline(transaction=False)
        pipe.zremrangebyscore("ws:open", "-inf", self._now_ms() - CONNECTION_MAX_AGE_MS)
        pipe.zcard("ws:open")
        return int(pipe.execute()[1])

    def user_of(self, connection_id: str) -> str | None:
        user_id = self._users.get(connection_id)
        if user_id is None:
            value = self._r.get(connection_key(connection_id))
            if value is None:
                return None
            if len(self._users) >= USERS_KEPT:
                self._users.clear()
            user_id = self._users[connection_id] = _text(value)
        return user_id

    def remove_connection(self, connection_id: str) -> None:
        self._users.pop(connection_id, None)
        reads = self._r.pipeline(transaction=False)  # what the connection left behind, in one round trip
        reads.get(connection_key(connection_id))
        reads.smembers(connection_key(connection_id, ":orders"))
        reads.smembers(connection_key(connection_id, ":markets"))
        user, orders, pools = reads.execute()
        user_id = None if user is None else _text(user)
        pipe = self._r.pipeline(transaction=False)
        for order_id in orders:
            pipe.hdel(subscribers_key(_text(order_id)), connection_id)
        for pool_id in pools:
            pipe.srem(market_key(_text(pool_id)), connection_id)
        for suffix in ("", ":orders", ":read-only", ":markets"):  # one key per command: cluster pipelines refuse more
            pipe.delete(connection_key(connection_id, suffix))
        pipe.zrem("ws:open", connection_id)
        if user_id is not None:
            pipe.zrem(user_key(user_id), connection_id)
            pipe.srem(account_key(user_id), connection_id)
        pipe.execute()

    def follow_account(self, connection_id: str, user_id: str) -> None:
        pipe = self._r.pipeline(transaction=False)
        pipe.sadd(account_key(user_id), connection_id)
        pipe.expire(account_key(user_id), CONNECTION_TTL_SECONDS)
        pipe.execute()

    def account_followers(self, user_id: str) -> list[str]:
        return sorted(_text(c) for c in self._r.smembers(account_key(user_id)))

    def follow_market(self, connection_id: str, pool_ids: list[str] | None) -> None:
        pipe = self._r.pipeline(transaction=False)
        for pool_id in pool_ids if pool_ids is not None else [ALL_POOLS]:
            pipe.sadd(market_key(pool_id), connection_id)
            pipe.expire(market_key(pool_id), CONNECTION_TTL_SECONDS)
            pipe.sadd(connection_key(connection_id, ":markets"), pool_id)
        pipe.expire(connection_key(connection_id, ":markets"), CONNECTION_TTL_SECONDS)
        pipe.execute()

    def market_followers(self, pool_ids: list[str]) -> dict[str, list[str]]:
        pipe = self._r.pipeline(transaction=False)
        for pool_id in [ALL_POOLS, *pool_ids]:
            pipe.smembers(market_key(pool_id))
        every, *each = pipe.execute()
        followers = {pool_id: sorted({_text(c) for c in set(every) | set(mine)})
                     for pool_id, mine in zip(pool_ids, each, strict=True)}
        return {pool_id: connections for pool_id, connections in followers.items() if connections}

    def subscribers(self, order_id: str) -> dict[str, int]:
        """Each subscribed connection and the last seq it was sent."""
        return _cursors(self._r.hgetall(subscribers_key(order_id)))

    def unsubscribe(self, connection_id: str, order_id: str) -> None:
        pipe = self._r.pipeline(transaction=False)
        pipe.hdel(subscribers_key(order_id), connection_id)
        pipe.srem(connection_key(connection_id, ":orders"), order_id)
        pipe.execute()

    @contextmanager
    def delivery(
        self, order_id: str, joining: str | None = None, if_subscribed: bool = False, from_seq: int | None = None,
    ) -> Iterator[Delivery | None]:
        """The order's delivery lock, with its subscribers' cursors: one script takes both (and subscribes
        ``joining``, from the start, or after ``from_seq`` unless it is further already), another records what was
        sent and releases the lock. A publish costs two round trips, and so does a subscription: the connection's
        list of orders goes in the same pipeline as the script, ahead of it."""
        keys = _delivery_keys(order_id)
        token = uuid.uuid4().hex
        args: list[str | int] = [token, LOCK_TTL_SECONDS * 1000, int(if_subscribed), joining or "",
                                 SUBSCRIPTION_TTL_SECONDS, -1 if from_seq is None else from_seq]
        if joining is not None:
            # The connection's list ahead of the script: if the subscription is lost, $disconnect still finds nothing
            # to leave behind. (A cluster may run the two on different nodes in either order; a subscription left
            # without its list entry expires, and a push to its closed connection removes it.) EVAL as a plain
            # command: a cluster's pipeline has no script methods (the server caches each script).
            pipe = self._r.pipeline(transaction=False)
            pipe.sadd(connection_key(joining, ":orders"), order_id)
            pipe.expire(connection_key(joining, ":orders"), CONNECTION_TTL_SECONDS)
            pipe.execute_command("EVAL", _BEGIN_DELIVERY, 2, *keys, *args)
            reply = pipe.execute()[-1]
        else:
            reply = self._begin_delivery(keys=keys, args=args)
        # A holder that died keeps the lock until it expires; waiting a little longer than that means a live caller
        # never gives up because of a dead one.
        deadline = time.monotonic() + LOCK_TTL_SECONDS + 2
        while reply == 0:
            if time.monotonic() > deadline:
                raise redis.exceptions.LockError(f"order {order_id}'s delivery lock is still held")
            time.sleep(LOCK_RETRY_SECONDS)
            reply = self._begin_delivery(keys=keys, args=args)
        if reply is None:
            yield None
            return
        delivery = _taken(reply)
        try:
            yield delivery
        finally:
            pairs = [item for connection_id, seq in delivery.sent.items() for item in (connection_id, seq)]
            if not self._finish_delivery(keys=keys, args=[token, *pairs]):
                log.warning("order %s: a delivery held the lock past its %d s expiry", order_id, LOCK_TTL_SECONDS)


    @contextmanager
    def deliveries(self, order_ids: list[str]) -> Iterator[tuple[dict[str, Delivery], list[str]]]:
        """The delivery locks of every subscribed order among these, taken in one round trip (the scripts of a
        pipeline, each on its order's slot), with their cursors; and the orders whose lock another delivery holds
        now, to be delivered one by one. On leaving, what was sent is recorded and the locks released in one
        more round trip."""
        token = uuid.uuid4().hex
        # EVAL as a plain command: a cluster's pipeline has no script methods (the server caches each script).
        pipe = self._r.pipeline(transaction=False)
        for order_id in order_ids:
            pipe.execute_command("EVAL", _BEGIN_DELIVERY, 2, *_delivery_keys(order_id), token,
                                 LOCK_TTL_SECONDS * 1000, 1, "", SUBSCRIPTION_TTL_SECONDS, -1)
        taken: dict[str, Delivery] = {}
        busy: list[str] = []
        for order_id, reply in zip(order_ids, pipe.execute(), strict=True):
            if reply == 0:
                busy.append(order_id)
            elif reply is not None:
                taken[order_id] = _taken(reply)
        try:
            yield taken, busy
        finally:
            if taken:
                pipe = self._r.pipeline(transaction=False)
                for order_id, delivery in taken.items():
                    pairs = [item for connection_id, seq in delivery.sent.items() for item in (connection_id, seq)]
                    pipe.execute_command("EVAL", _FINISH_DELIVERY, 2, *_delivery_keys(order_id), token, *pairs)
                for order_id, released in zip(taken, pipe.execute(), strict=True):
                    if not released:
                        log.warning("order %s: a delivery held the lock past its %d s expiry", order_id,
                                    LOCK_TTL_SECONDS)


def _taken(reply: list[bytes]) -> Delivery:
    """A delivery from the begin script's answer: its subscribers' cursors, as a flat list of pairs."""
    return Delivery(_cursors(dict(zip(reply[::2], reply[1::2], strict=True))))


def _delivery_keys(order_id: str) -> list[str]:
    """An order's delivery lock and its subscribers' cursors: one slot."""
    return [f"ws:lock:{{{order_id}}}", subscribers_key(order_id)]


def _text(value: bytes | str) -> str:
    """redis-py answers bytes (the client does not decode responses); its types allow str too."""
    return value.decode() if isinstance(value, bytes) else value


def _cursors(raw: Mapping[bytes | str, bytes | str]) -> dict[str, int]:
    return {_text(k): int(v) for k, v in raw.items()}


# One key, so it also runs on a clustered Valkey: forget connections past API Gateway's 2-hour limit, then admit
# this one if the user is under the limit (0: no limit).
_ADMIT = """
local connection_id, now, max_age, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - max_age)
if limit > 0 and redis.call('ZSCORE', KEYS[1], connection_id) == false and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now, connection_id)
redis.call('PEXPIRE', KEYS[1], max_age)
return 1
"""

# KEYS: the order's delivery lock and its subscribers (one slot). Nil when asked only if subscribed and nobody is;
# 0 while another delivery holds the lock; else takes it, subscribes ARGV[4] (if any) and returns the cursors.
_BEGIN_DELIVERY = """
local token, ttl_ms, if_subscribed, joining, subscription_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if if_subscribed == '1' and redis.call('EXISTS', KEYS[2]) == 0 then
  return false
end
if not redis.call('SET', KEYS[1], token, 'NX', 'PX', ttl_ms) then
  return 0
end
if joining ~= '' then
  local from_seq = tonumber(ARGV[6])
  if from_seq < 0 then
    redis.call('HSET', KEYS[2], joining, 0)  -- (re)subscribing replays from the start
  else  -- joining after from_seq, unless this connection is further already
    local current = tonumber(redis.call('HGET', KEYS[2], joining) or '-1')
    if current < from_seq then
      redis.call('HSET', KEYS[2], joining, from_seq)
    end
  end
  redis.call('EXPIRE', KEYS[2], subscription_ttl)
end
return redis.call('HGETALL', KEYS[2])
"""

# Records each (connection, seq) pair after ARGV[1], only for connections still subscribed (one that left meanwhile
# must not come back), then releases the lock if this delivery (token ARGV[1]) still holds it: 1, else 0.
_FINISH_DELIVERY = """
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
