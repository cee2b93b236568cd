"""Redis: the hot state of WebSocket connections and order subscriptions.

``ws:conn:{id}`` holds a connection's user; ``ws:conn:{id}:orders`` the orders it follows;
``ws:subs:{orderId}`` maps each subscribed connection to the last ``seq`` it was sent, so every delivery
continues exactly where the previous one stopped. ``ws:user:{userId}`` and ``ws:open`` hold the open connections,
scored by when they opened, for the per-user limit and the open-connections gauge.

The braces are Redis hash tags: ElastiCache Serverless is a cluster, where a command or a transaction may only
touch keys of one slot, so a connection's keys share its id's slot. A pipeline that spans slots is never a
transaction here (it could not be one on a cluster); each of its commands stands alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

CONNECTION_TTL_SECONDS = 3 * 60 * 60  # longer than API Gateway's 2-hour connection limit
# API Gateway closes every connection after 2 hours, so a connection registered earlier is gone even if its
# $disconnect (best effort) never came.
CONNECTION_MAX_AGE_MS = 2 * 60 * 60 * 1000
SUBSCRIPTION_TTL_SECONDS = 24 * 60 * 60
LOCK_TTL_SECONDS = 5  # far longer than pushing one order's events takes


def connection_key(connection_id: str, suffix: str = "") -> str:
    return f"ws:conn:{{{connection_id}}}{suffix}"


def subscribers_key(order_id: str) -> str:
    return f"ws:subs:{{{order_id}}}"


def user_key(user_id: str) -> str:
    return f"ws:user:{{{user_id}}}"


class RedisConnections:
    def __init__(self, client: redis.Redis | redis.RedisCluster,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)):
        self._r = client
        self._now_ms = now_ms
        self._admit = client.register_script(_ADMIT)
        self._set_if_present = client.register_script(_SET_IF_PRESENT)

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
        value = self._r.get(connection_key(connection_id))
        return value.decode() if value is not None else None

    def remove_connection(self, connection_id: str) -> None:
        user_id = self.user_of(connection_id)
        orders = self._r.smembers(connection_key(connection_id, ":orders"))
        pipe = self._r.pipeline(transaction=False)
        for order_id in orders:
            pipe.hdel(subscribers_key(order_id.decode()), connection_id)
        for suffix in ("", ":orders", ":read-only"):  # one key per command: cluster pipelines refuse more
            pipe.delete(connection_key(connection_id, suffix))
        pipe.zrem("ws:open", connection_id)
        if user_id is not None:
            pipe.zrem(user_key(user_id), connection_id)
        pipe.execute()

    def has_subscribers(self, order_id: str) -> bool:
        return bool(self._r.exists(subscribers_key(order_id)))

    def subscribers(self, order_id: str) -> dict[str, int]:
        """Each subscribed connection and the last seq it was sent."""
        return {k.decode(): int(v) for k, v in self._r.hgetall(subscribers_key(order_id)).items()}

    def subscribe(self, connection_id: str, order_id: str) -> None:
        # The connection's list first: if the second write is lost, $disconnect still finds nothing to leave behind.
        pipe = self._r.pipeline(transaction=False)
        pipe.sadd(connection_key(connection_id, ":orders"), order_id)
        pipe.expire(connection_key(connection_id, ":orders"), CONNECTION_TTL_SECONDS)
        pipe.hset(subscribers_key(order_id), connection_id, 0)  # (re)subscribing replays from the start
        pipe.expire(subscribers_key(order_id), SUBSCRIPTION_TTL_SECONDS)
        pipe.execute()

    def unsubscribe(self, connection_id: str, order_id: str) -> None:
        pipe = self._r.pipeline(transaction=False)
        pipe.hdel(subscribers_key(order_id), connection_id)
        pipe.srem(connection_key(connection_id, ":orders"), order_id)
        pipe.execute()

    def mark_sent(self, order_id: str, cursors: dict[str, int]) -> None:
        if not cursors:
            return
        pairs = [item for connection_id, seq in cursors.items() for item in (connection_id, seq)]
        self._set_if_present(keys=[subscribers_key(order_id)], args=pairs)

    @contextmanager
    def delivery_lock(self, order_id: str) -> Iterator[None]:
        """Serialises deliveries of one order's events, so each connection gets them once and in order."""
        # A holder that died keeps the lock until it expires; waiting a little longer than that means a live
        # caller never gives up because of a dead one.
        with self._r.lock(f"ws:lock:{{{order_id}}}", timeout=LOCK_TTL_SECONDS, sleep=0.002,
                          blocking_timeout=LOCK_TTL_SECONDS + 2):
            yield


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

# Each (connection, seq) pair, only for connections still subscribed: one that left meanwhile must not come back.
_SET_IF_PRESENT = """
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 0
"""
