"""What `Idempotency-Key` costs: customer creates over HTTP (in-process ASGI) with and
without a key, replays, and bursts of 20 concurrent duplicates. Prints figures.

    .venv/bin/python tests/bench/bench_idempotency.py [--n 300] [--postgres URL]

URL as for bench_write_path.py (an owner role that may create a database). Outside the
pass/fail suite on purpose: timings are figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_common import on_engines, report  # noqa: E402
from tests.bench.bench_write_path import customer  # noqa: E402

BURSTS = 10


async def _timed(requests: Any) -> tuple[list[float], list[Any]]:
    latencies, answers = [], []
    for make in requests:
        t0 = time.perf_counter()
        answers.append(await make())
        latencies.append(time.perf_counter() - t0)
    return latencies, answers


def _ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


async def measure(settings_env: dict[str, str], n: int) -> dict[str, float]:
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)

    from core import kernel as K
    from core.packs import apply_pack, load_pack
    from core.settings import load_settings
    from core.web.app import create_app

    k = K.boot(load_settings(settings_env))
    await K.migrate(k)
    await K.start(k)
    try:
        pack = load_pack(ROOT / "tests" / "fixtures" / "packs" / "small")
        pack.record_files.clear()
        info, _ = await apply_pack(pack, slug=f"b-{uuid.uuid4().hex[:8]}")
        app = create_app(k, open_db=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://bench") as c:
            r = await c.post("/api/v1/auth/login", json={
                "tenant": info.slug, "username": "admin", "password": "test-password-1"})
            h = {"Authorization": f"Bearer {r.json()['token']}"}
            url = "/api/v1/customers"
            plain, _ = await _timed(
                lambda i=i: c.post(url, headers=h, json=customer(i)) for i in range(n))
            keys = [f"bench-{uuid.uuid4()}" for _ in range(n)]
            keyed, answers = await _timed(
                lambda i=i: c.post(url, headers={**h, "Idempotency-Key": keys[i]},
                                   json=customer(n + i)) for i in range(n))
            assert all(a.status_code == 201 for a in answers)
            replays, answers = await _timed(
                lambda i=i: c.post(url, headers={**h, "Idempotency-Key": keys[i]},
                                   json=customer(n + i)) for i in range(n))
            assert all(a.headers.get("idempotent-replayed") == "true" for a in answers)
            bursts = []
            for b in range(BURSTS):
                key, body = f"burst-{uuid.uuid4()}", customer(3 * n + b)
                t0 = time.perf_counter()
                answers = await asyncio.gather(*[
                    c.post(url, headers={**h, "Idempotency-Key": key}, json=body)
                    for _ in range(20)])
                bursts.append(time.perf_counter() - t0)
                assert len({a.content for a in answers}) == 1
        return {"create_ms": _ms(plain), "create_with_key_ms": _ms(keyed),
                "replay_ms": _ms(replays), "burst_of_20_ms": _ms(bursts)}
    finally:
        await K.stop(k)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--postgres", default="")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    results = await on_engines(lambda env: measure(env, args.n), args.postgres)
    report("idempotency", results, args.save, n=args.n)


if __name__ == "__main__":
    asyncio.run(main())
