"""Per-user token buckets in Redis, so every function instance shares one count per user."""

from __future__ import annotations

from collections.abc import Callable

import redis

from ..domain.limits import TokenBucket

# TokenBucket.take, run atomically where the state lives.
_TAKE = """
local rate, burst, now, cost, idle = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]),
  tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local last = tonumber(state[2]) or now
local available = math.min(burst, tokens + math.max(0, now - last) * rate / 1000)
local wait = 0
if available >= cost then available = available - cost else wait = math.ceil((cost - available) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', available), 'at', string.format('%d', math.max(now, last)))
redis.call('PEXPIRE', KEYS[1], idle + 1000)
return wait
"""


class RedisRateLimiter:
    def __init__(self, client: redis.Redis | redis.RedisCluster, bucket: TokenBucket, now_ms: Callable[[], int]):
        self._bucket = bucket
        self._now_ms = now_ms
        self._take = client.register_script(_TAKE)

    def wait_ms(self, key: str, cost: int = 1) -> int:
        """0 if ``key`` may go ahead now (and counts it), else how many milliseconds until it may."""
        bucket = self._bucket
        return int(self._take(keys=[f"rate:{key}"],
                              args=[bucket.rate, bucket.burst, self._now_ms(), cost, bucket.idle_ms]))
