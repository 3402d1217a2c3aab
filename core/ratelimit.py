"""Rate limits for sign-in, token and search endpoints: Redis when configured (shared by
all processes), else in this process's memory (embedded mode has one process).

A window starts at a key's first attempt and lasts `window_s` (not aligned to the clock),
so a burst cannot straddle a boundary to double its allowance, and an unknown user name
"locks" for exactly as long after its first failure as a real one does."""

from __future__ import annotations

import time

from core.errors import XindaiError


class RateLimited(XindaiError):
    status = 429
    code = "rate_limited"


# (name, window length) -> {key: (window start, count)}
_memory: dict[tuple[str, int], dict[str, tuple[float, int]]] = {}


def _redis():  # type: ignore[no-untyped-def]
    from core.kernel import kernel

    url = kernel().settings.redis_url
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=1)


def _count(name: str, key: str, window_s: int, add: int) -> int:
    client = _redis()
    if client is not None:
        bucket = f"xindai:rl:{name}:{window_s}:{key}"
        if not add:
            return int(client.get(bucket) or 0)
        pipe = client.pipeline()
        pipe.set(bucket, 0, ex=window_s, nx=True)  # the window starts with the first attempt
        pipe.incrby(bucket, add)
        return int(pipe.execute()[1])
    now = time.monotonic()
    buckets = _memory.setdefault((name, window_s), {})
    for old in [k for k, (start, _) in buckets.items() if now - start >= window_s]:
        del buckets[old]
    start, count = buckets.get(key, (now, 0))
    if add:
        buckets[key] = (start, count + add)
    return count + add


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
