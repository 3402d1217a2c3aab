"""Benchmark of the one write path: prints figures; `--save` also writes bench/results/.

    .venv/bin/python tests/bench/bench_write_path.py [--n 2000] [--postgres URL] [--save]

On PostgreSQL, URL must be an owner role that may create a database (e.g. the local
`postgres` superuser); the benchmark creates roles and a scratch database as the tests do.
Outside the pass/fail suite on purpose: timings are figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import on_engines, postgres_env, report  # noqa: E402,F401 - re-exported


def customer(i: int) -> dict[str, str]:
    from core.validators import resident_id_check_char

    body = f"1401051985{(i // 1000) % 12 + 1:02d}{i % 28 + 1:02d}{i % 1000:03d}"
    return {"kind": "individual", "name": f"客户{i}", "resident_id":
            body + resident_id_check_char(body), "mobile": f"139{i:08d}",
            "region": "140105", "annual_income": f"{50000 + i}.00"}


async def measure(settings_env: dict[str, str], n: int) -> dict[str, float]:
    from core import kernel as K
    from core import records
    from core.packs import apply_pack, load_pack
    from core.settings import load_settings
    from core.tenancy import Context

    k = K.boot(load_settings(settings_env))
    await K.migrate(k)
    await K.start(k)
    try:
        pack = load_pack(ROOT / "tests" / "fixtures" / "packs" / "small")
        pack.record_files.clear()
        info, _ = await apply_pack(pack, slug=f"b-{uuid.uuid4().hex[:8]}")
        ctx = Context.system(info)
        latencies = []
        start = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            await records.create(ctx, "customer", customer(i))
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        t0 = time.perf_counter()
        for i in range(0, n, max(n // 200, 1)):
            await records.list_records(ctx, "customer", {"mobile": f"139{i:08d}"})
        lookups = len(range(0, n, max(n // 200, 1)))
        lookup_ms = (time.perf_counter() - t0) / lookups * 1000
        t0 = time.perf_counter()
        for page in range(1, 21):
            await records.list_records(ctx, "customer", {"annual_income__gte": "50500"},
                                       sort="-annual_income", page=page, per_page=20)
        page_ms = (time.perf_counter() - t0) / 20 * 1000
        return {
            "creates_per_s": round(n / elapsed, 1),
            "create_median_ms": round(statistics.median(latencies) * 1000, 2),
            "create_p95_ms": round(sorted(latencies)[int(n * 0.95)] * 1000, 2),
            "blind_index_lookup_ms": round(lookup_ms, 2),
            "filtered_page_ms": round(page_ms, 2),
        }
    finally:
        await K.stop(k)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--postgres", default="")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    results = await on_engines(lambda env: measure(env, args.n), args.postgres)
    report("write_path", results, args.save, n=args.n)


if __name__ == "__main__":
    asyncio.run(main())
