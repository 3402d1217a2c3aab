"""Benchmark of events: the outbox's added latency on a write, and events relayed and
handled per second with a no-op handler. Prints figures; `--save` also writes bench/results/.

    .venv/bin/python tests/bench/bench_events.py [--n 5000] [--writes 1000]
        [--postgres URL] [--redis URL] [--save]

Latency: `records.create` of a customer timed with the outbox insert and without it (the
event write replaced by nothing), interleaved so drift hits both alike; the figure is the
difference of the medians (issue 5 target: under 2 ms). Throughput: n events are written
(in transactions of 500), then one worker process's runtime (the relay plus 4 worker
threads, exactly what `xindai worker` or the embedded server runs) is started and timed
until every message is finished. Embedded mode uses the in-process broker; with `--redis`
the messages travel through the real Redis. Outside the pass/fail suite on purpose.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import on_engines, report  # noqa: E402
from bench_write_path import customer  # noqa: E402


async def noop(ctx: Any, payload: dict[str, Any]) -> None:
    """The handler under test does nothing: the figure is the machinery's cost."""


async def write_latency(ctx: Any, writes: int) -> dict[str, float]:
    from core import records

    real_emit = records.emit

    async def no_event(*args: Any, **kwargs: Any) -> uuid.UUID:
        return uuid.uuid4()

    with_outbox: list[float] = []
    without: list[float] = []
    for _ in range(writes):
        for fn, into in ((real_emit, with_outbox), (no_event, without)):
            records.emit = fn  # type: ignore[assignment]
            t0 = time.perf_counter()
            await records.create(ctx, "customer", customer(len(with_outbox) * 2 + len(into)))
            into.append(time.perf_counter() - t0)
    records.emit = real_emit  # type: ignore[assignment]
    med_with, med_without = statistics.median(with_outbox), statistics.median(without)
    return {"create_median_ms_with_outbox": round(med_with * 1000, 3),
            "create_median_ms_without": round(med_without * 1000, 3),
            "outbox_added_median_ms": round((med_with - med_without) * 1000, 3)}


async def throughput(ctx: Any, n: int, mode: str) -> dict[str, float]:
    from core import jobs
    from core.events import emit
    from core.tables import OutboxMessage
    from core.tenancy import tenant_scope

    for start in range(0, n, 500):
        async with tenant_scope(ctx):
            for i in range(start, min(start + 500, n)):
                await emit(ctx, "bench.noop", {"n": i})
    runtime = jobs.Runtime(threads=4, relay=True)
    t0 = time.perf_counter()
    await runtime.start()
    try:
        while True:
            async with tenant_scope(ctx, write=False):
                left = await OutboxMessage.count().where(
                    OutboxMessage.tenant_id == ctx.tenant_id,
                    OutboxMessage.finished_at.is_null())
            if not left:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
    finally:
        await runtime.stop()
    return {f"{mode}_events_per_s": round(n / elapsed, 1), f"{mode}_seconds": round(elapsed, 2)}


async def measure(env: dict[str, str], n: int, writes: int, redis_url: str) -> dict[str, float]:
    from core import jobs
    from core import kernel as K
    from core.declarations import Subscription
    from core.packs import apply_pack, load_pack
    from core.settings import load_settings
    from core.tenancy import KERNEL, Context

    k = K.boot(load_settings(env))
    k.subscriptions.append(Subscription("bench.noop", noop, "noop", plugin=KERNEL))
    await K.migrate(k)
    await K.start(k)
    try:
        pack = load_pack(ROOT / "tests" / "fixtures" / "packs" / "small")
        pack.record_files.clear()
        info, _ = await apply_pack(pack, slug=f"b-{uuid.uuid4().hex[:8]}")
        ctx = Context.system(info)
        figures = await write_latency(ctx, writes)
        figures.update(await throughput(ctx, n, "embedded"))
        if redis_url:
            namespace = f"xindai-bench-{uuid.uuid4().hex[:8]}"
            jobs.setup_broker(redis_url, namespace)
            try:
                info, _ = await apply_pack(pack, slug=f"b-{uuid.uuid4().hex[:8]}")
                figures.update(await throughput(Context.system(info), n, "redis"))
            finally:
                import redis

                r = redis.Redis.from_url(redis_url)
                for key in r.scan_iter(f"{namespace}*"):
                    r.delete(key)
                jobs.setup_broker("")
        return figures
    finally:
        await K.stop(k)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--postgres", default="")
    parser.add_argument("--redis", default="")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    results = await on_engines(lambda env: measure(env, args.n, args.writes, args.redis),
                               args.postgres)
    report("events", results, args.save, n=args.n, writes=args.writes)


if __name__ == "__main__":
    asyncio.run(main())
