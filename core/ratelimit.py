"""Fixed-window rate limits for sign-in and token endpoints: Redis when configured (shared by
all processes), else in this process's memory (embedded mode has one process)."""

from __future__ import annotations

import time
from collections import defaultdict

from core.errors import XindaiError


class RateLimited(XindaiError):
    status = 429
    code = "rate_limited"


_memory: dict[tuple[str, int], int] = defaultdict(int)


def _redis():  # type: ignore[no-untyped-def]
    from core.kernel import kernel

    url = kernel().settings.redis_url
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=1)


def hit(name: str, key: str, limit: int, window_s: int = 60) -> None:
    """Count one attempt of `name` by `key` (an IP); raise 429 past `limit` per window."""
    window = int(time.time()) // window_s
    bucket = f"xindai:rl:{name}:{key}:{window}"
    client = _redis()
    if client is not None:
        pipe = client.pipeline()
        pipe.incr(bucket)
        pipe.expire(bucket, window_s * 2)
        count = int(pipe.execute()[0])
    else:
        for old in [k for k in _memory if k[1] < window]:
            del _memory[old]
        _memory[(bucket, window)] += 1
        count = _memory[(bucket, window)]
    if count > limit:
        raise RateLimited()


def reset_memory() -> None:
    _memory.clear()
