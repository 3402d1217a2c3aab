"""Fixed-window rate limits for sign-in, token and search endpoints: Redis when configured
(shared by all processes), else in this process's memory (embedded mode has one process)."""

from __future__ import annotations

import time

from core.errors import XindaiError


class RateLimited(XindaiError):
    status = 429
    code = "rate_limited"


# (name, window length) -> {(key, window number): count}
_memory: dict[tuple[str, int], dict[tuple[str, int], int]] = {}


def _redis():  # type: ignore[no-untyped-def]
    from core.kernel import kernel

    url = kernel().settings.redis_url
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=1)


def _count(name: str, key: str, window_s: int, add: int) -> int:
    window = int(time.time()) // window_s
    client = _redis()
    if client is not None:
        bucket = f"xindai:rl:{name}:{window_s}:{key}:{window}"
        if not add:
            return int(client.get(bucket) or 0)
        pipe = client.pipeline()
        pipe.incrby(bucket, add)
        pipe.expire(bucket, window_s * 2)
        return int(pipe.execute()[0])
    buckets = _memory.setdefault((name, window_s), {})
    for old in [k for k in buckets if k[1] < window]:  # only this limit's expired windows
        del buckets[old]
    buckets[(key, window)] = buckets.get((key, window), 0) + add
    return buckets[(key, window)]


def hit(name: str, key: str, limit: int, window_s: int = 60) -> None:
    """Count one attempt of `name` by `key`; raise 429 past `limit` per window."""
    if _count(name, key, window_s, 1) > limit:
        raise RateLimited()


def check(name: str, key: str, limit: int, window_s: int = 60) -> None:
    """Raise 429 if `key` is already past `limit`, without counting this attempt."""
    if _count(name, key, window_s, 0) > limit:
        raise RateLimited()


def reset_memory() -> None:
    _memory.clear()
