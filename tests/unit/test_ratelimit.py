"""A rate-limit window starts at a key's first attempt, not at a clock boundary."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from core import ratelimit


@pytest.fixture
def clock(monkeypatch: Any) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(ratelimit, "_redis", lambda: None)
    ratelimit.reset_memory()
    return now


def test_the_window_starts_at_the_first_attempt(clock: list[float]) -> None:
    clock[0] = 1059.0  # one second before a minute boundary of the clock
    for _ in range(3):
        ratelimit.hit("t", "k", limit=3, window_s=60)
    clock[0] = 1061.0  # a clock-aligned window would have reset here
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.hit("t", "k", limit=3, window_s=60)
    clock[0] = 1119.5  # 60.5 s after the first attempt: a fresh window
    ratelimit.hit("t", "k", limit=3, window_s=60)
    ratelimit.check("t", "k", limit=3, window_s=60)


def test_keys_and_limits_are_counted_apart(clock: list[float]) -> None:
    for _ in range(2):
        ratelimit.hit("t", "a", limit=2)
    ratelimit.hit("t", "b", limit=2)
    ratelimit.hit("other", "a", limit=2)
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.check("t", "a", limit=1)
