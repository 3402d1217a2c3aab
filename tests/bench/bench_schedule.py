"""Benchmark of the schedule engine: prints schedules per second on one core.

    .venv/bin/python tests/bench/bench_schedule.py [--seconds 3] [--periods 360]

For 360-period loans (issue target: at least 2,000 schedules/s on one core) it times, for
equal_installment and equal_principal:
- `build_schedule`: due dates, every installment's amounts (`Schedule.rows`) and totals;
- the same plus the frozen `Installment` objects (`Schedule.installments`, built on use);
- the same plus the APR (an IRR; computed on first use of `Schedule.apr`), without fees
  (Newton starts at the root) and with a disbursement fee (it has to search);
- the daily interest basis (actual/365), with the APR;
and the whole contract path of `xindai schedule` minus process start-up: parse the JSON
request, build, render the JSON response with the APR.
Every call uses a different principal and disbursement date, so nothing is cached. One
thread, timed in CPU seconds. Outside the pass/fail suite on purpose: timings are
figures, not assertions (the machine's load average is printed with them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from plugins.servicing.request import parse_json  # noqa: E402
from plugins.servicing.response import dumps  # noqa: E402
from plugins.servicing.schedule import Fee, Terms, build_schedule  # noqa: E402

START = date(2024, 1, 1)


def rate(work: Callable[[int], object], seconds: float) -> tuple[float, float]:
    """(best, median) calls per CPU-second of work(i), over batches of 50 calls for about
    `seconds`. CPU time, not wall time: the figure is what one core does, even when other
    processes share the machine; the best batch is the least disturbed one."""
    for i in range(20):
        work(i)
    rates: list[float] = []
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        cpu = time.process_time()
        for _ in range(50):
            work(done)
            done += 1
        rates.append(50 / max(time.process_time() - cpu, 1e-9))
    rates.sort()
    return rates[-1], rates[len(rates) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--periods", type=int, default=360)
    args = parser.parse_args()
    n = args.periods

    def terms(method: str, i: int, **extra: object) -> Terms:
        return Terms(principal=Decimal(1_000_000 + i), annual_rate=Decimal("4.9"),
                     method=method, periods=n,
                     disbursed_on=START + timedelta(days=i % 1000), **extra)

    fee = (Fee("service fee", "disbursement", amount=Decimal("1000")),)
    cases: list[tuple[str, Callable[[int], object]]] = []
    for method in ("equal_installment", "equal_principal"):
        cases += [
            (f"{method}", lambda i, m=method: build_schedule(terms(m, i))),
            (f"{method} + Installment objects",
             lambda i, m=method: build_schedule(terms(m, i)).installments),
            (f"{method} + APR", lambda i, m=method: build_schedule(terms(m, i)).apr),
            (f"{method} + fee + APR",
             lambda i, m=method: build_schedule(terms(m, i, fees=fee)).apr),
            (f"{method} daily actual/365 + APR",
             lambda i, m=method: build_schedule(terms(m, i, interest_basis="daily",
                                                      day_count="actual/365")).apr),
        ]

    def contract(i: int) -> str:
        request = json.dumps({"principal": str(1_000_000 + i), "annual_rate": "4.9",
                              "method": "equal_installment", "periods": n,
                              "disbursed_on": (START + timedelta(days=i % 1000)).isoformat()})
        return dumps(build_schedule(parse_json(request)))

    cases.append(("equal_installment JSON in -> JSON out", contract))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"schedule engine, {n} periods, one core, {args.seconds:.0f} s each "
          f"(target >= 2,000 schedules/s; load average {load:.2f})")
    print(f"  {'':<44} {'best':>8} {'median':>8}  schedules per CPU-second")
    for name, work in cases:
        best, median = rate(work, args.seconds)
        print(f"  {name:<44} {best:8,.0f} {median:8,.0f}  ({1e6 / best:,.0f} us each)")


if __name__ == "__main__":
    main()
