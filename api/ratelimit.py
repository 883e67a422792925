"""Token-bucket rate limits per session and per client IP (Redis in production, in-memory embedded)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError


@dataclass(frozen=True)
class Bucket:
    rate_per_s: float
    burst: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float


class RateLimiter(Protocol):
    async def hit(self, key: str, bucket: Bucket, cost: float = 1.0) -> Decision: ...


class InMemoryRateLimiter:
    def __init__(self, max_keys: int = 200_000) -> None:
        self.max_keys = max_keys
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, ts)

    async def hit(self, key: str, bucket: Bucket, cost: float = 1.0) -> Decision:
        now = time.monotonic()
        tokens, ts = self._state.get(key, (float(bucket.burst), now))
        tokens = min(float(bucket.burst), tokens + (now - ts) * bucket.rate_per_s)
        if tokens >= cost:
            self._state[key] = (tokens - cost, now)
            self._state.move_to_end(key)
            while len(self._state) > self.max_keys:
                self._state.popitem(last=False)
            return Decision(True, 0.0)
        self._state[key] = (tokens, now)
        return Decision(False, (cost - tokens) / bucket.rate_per_s)


# KEYS[1] bucket; ARGV: rate_per_s, burst, now_ms, cost. Returns {allowed, retry_after_ms}.
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local data = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(data[1])
local ts = tonumber(data[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + (now - ts) / 1000.0 * rate)
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = math.ceil((cost - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, retry}
"""


class RedisRateLimiter:
    def __init__(self, redis: Redis, prefix: str, fail_open: bool = True) -> None:
        self.redis = redis
        self.prefix = prefix
        self.fail_open = fail_open
        self._script = redis.register_script(_LUA)

    async def hit(self, key: str, bucket: Bucket, cost: float = 1.0) -> Decision:
        now_ms = int(time.time() * 1000)
        try:
            allowed, retry_ms = await self._script(
                keys=[f"{self.prefix}rl:{key}"], args=[bucket.rate_per_s, bucket.burst, now_ms, cost]
            )
        except RedisError:
            # Redis down: the session store is down too and will answer 503; do not add a second failure.
            return Decision(self.fail_open, 1.0)
        return Decision(bool(int(allowed)), int(retry_ms) / 1000.0)
