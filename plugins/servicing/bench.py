"""`xindai bench cob`: the nightly close of N active loans, measured.

A scratch database (SQLite in a temporary directory, or a new PostgreSQL database when an
admin URL is given) gets one tenant and N twelve-month loans seeded set-based: disbursed
over the past 360 days, repaid on time, except one loan in 25 that never paid (so the
close charges penalty and moves buckets, as in a real book); the others have paid what
falls due today. The loans' state is what the previous close left. Then it times, in the same database and run:

- `baseline_seconds`: one plain set-based statement touching the same loan rows (an UPDATE
  of every active loan), the floor any close must pay;
- `seconds`: `close_business_date` of that date, every step and commit included, after
  the table is vacuumed again (the floor's dead row versions are not the close's to pay).

It prints one JSON line: loans, seconds, loans_per_second, baseline_seconds, ratio,
peak_rss_mb (this process), and the engine.
"""

from __future__ import annotations

import resource
import tempfile
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from core.db import fetch
from plugins.servicing import accrual, cob_sql, products
from plugins.servicing.cob import DEFAULT_BUCKET_EDGES, DEFAULT_FLOORS
from plugins.servicing.loans import fen

DAYS = 360  # disbursement dates spread over the past year
BAD_EVERY = 25  # one loan in 25 never repays
CONFIG = {"method": "equal_installment", "frequency": "month", "interest_basis": "per_period",
          "amount_min": "1000", "amount_max": "500000", "term_min": 3, "term_max": 36,
          "rate_min": "6", "rate_max": "24", "rate_default": "12"}


def templates(today: date) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Per (days ago, never paid): the loan's state after closing yesterday, and its rows."""
    closed = today - timedelta(days=1)
    loans, installments = [], []
    for k in range(DAYS):
        on = today - timedelta(days=k)
        schedule = products.quote(CONFIG, Decimal("10000"), 12, None, on)
        rows = [{"n": i.n, "due_on": i.due_on, "principal": fen(i.principal),
                 "interest": fen(i.interest), "fees": fen(i.fees)}
                for i in schedule.installments]
        state = accrual.running(rows, on, closed)
        accrued, _ = state.target(closed)
        for bad in (0, 1):
            due = [r for r in rows if r["due_on"] <= closed]
            # the good ones have paid what falls due today as well, as most customers do
            paid = [] if bad else [r for r in rows if r["due_on"] <= today]
            paid_interest = sum(r["interest"] for r in paid)
            dpd = (today - due[0]["due_on"]).days if bad and due else 0
            loans.append((k, bad, on, rows[-1]["due_on"], state.n, state.start, state.due,
                          state.interest, state.base_interest, accrued,
                          accrued - paid_interest, dpd,
                          cob_sql.bucket_of(dpd, DEFAULT_BUCKET_EDGES),
                          cob_sql.floor_of(dpd, DEFAULT_FLOORS)))
            for r in rows:
                settled = not bad and r["due_on"] <= today
                installments.append((k, bad, r["n"], r["due_on"], r["principal"],
                                     r["interest"], r["principal"] if settled else 0,
                                     r["interest"] if settled else 0,
                                     r["due_on"] if settled else None))
    return loans, installments


def _loan_id(d: cob_sql.Dialect, x: str, salt: int) -> str:
    """A loan id made of its sequence number (and a salt, so books can sit side by side)."""
    tag = f"{int(salt) % 65536:04x}"
    if d.pg:
        return (f"(lpad(to_hex({x}), 8, '0') || '-{tag}-4000-8000-' || "
                f"lpad(to_hex({x}), 12, '0'))::uuid")
    return f"printf('%08x-{tag}-4000-8000-%012x', {x}, {x})"


def _series(d: cob_sql.Dialect, n: int) -> str:
    if d.pg:
        return f"(SELECT generate_series(1, {int(n)}) AS x) s"
    return (f"(WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < "
            f"{int(n)}) SELECT x FROM s) s")


async def seed(engine: Any, d: cob_sql.Dialect, tenant_id: uuid.UUID, product_id: uuid.UUID,
               n: int, today: date, salt: int = 0) -> None:
    """N loans and their installments, set-based, from the per-date templates."""
    loans, installments = templates(today)
    p = d.p
    await fetch(engine, "DROP TABLE IF EXISTS bench_loan")
    await fetch(engine, "DROP TABLE IF EXISTS bench_inst")
    await fetch(engine, "CREATE TEMP TABLE bench_loan (k INT, bad INT, disbursed_on DATE, "
                        "maturity_on DATE, n INT, start DATE, due DATE, interest BIGINT, "
                        "base BIGINT, accrued BIGINT, receivable BIGINT, dpd INT, "
                        "bucket VARCHAR(8), floor VARCHAR(16))")
    await fetch(engine, "CREATE TEMP TABLE bench_inst (k INT, bad INT, n INT, due_on DATE, "
                        "principal BIGINT, interest BIGINT, principal_paid BIGINT, "
                        "interest_paid BIGINT, settled_on DATE)")
    for table, rows, types in (
            ("bench_loan", loans, ("int", "int", "date", "date", "int", "date", "date",
                                   "bigint", "bigint", "bigint", "bigint", "int", "text",
                                   "text")),
            ("bench_inst", installments, ("int", "int", "int", "date", "bigint", "bigint",
                                          "bigint", "bigint", "date"))):
        marks = "(" + ", ".join(p(t) for t in types) + ")"
        for start in range(0, len(rows), 200):
            part = rows[start:start + 200]
            await fetch(engine, f"INSERT INTO {table} VALUES " + ", ".join([marks] * len(part)),
                        *[v for row in part for v in row])
    closed = today - timedelta(days=1)
    penalty = accrual.penalty_columns(Decimal("12"), {}, "actual/360")
    await fetch(engine, f"""
        INSERT INTO loan (id, tenant_id, number, customer_id, product_id, product_code, status,
          principal, annual_rate, periods, disbursed_on, maturity_on, terms, schedule_version,
          last_closed_on, days_past_due, bucket, classification, credit_balance, version,
          created_at, accrual_n, accrual_start, accrual_due, accrual_interest, accrual_fees,
          accrual_base_interest, accrual_base_fees, interest_accrued, fees_accrued,
          interest_receivable, fees_receivable, penalty_rate_e6, compound_rate_e6, day_basis,
          penalty_grace_days)
        SELECT {_loan_id(d, 's.x', salt)}, {p('uuid')}, 'B' || s.x, {_loan_id(d, 's.x', salt)},
          {p('uuid')}, 'BENCH', 'active', 1000000, '12', 12, t.disbursed_on, t.maturity_on,
          {p('json')}, 1, {p('date')}, t.dpd, t.bucket, t.floor, 0, 1, CURRENT_TIMESTAMP, t.n,
          t.start, t.due, t.interest, 0, t.base, 0, t.accrued, 0, t.receivable, 0,
          {penalty['penalty_rate_e6']}, {penalty['compound_rate_e6']}, 360, 0
        FROM {_series(d, n)} JOIN bench_loan t
          ON t.k = s.x % {DAYS} AND t.bad = CASE WHEN s.x % {BAD_EVERY} = 0 THEN 1 ELSE 0 END
    """, tenant_id, product_id, "{}", closed)
    await fetch(engine, f"""
        INSERT INTO loan_installment (id, tenant_id, loan_id, schedule_version, n, due_on,
          principal, interest, fees, penalty, compound, principal_paid, interest_paid,
          fees_paid, penalty_paid, compound_paid, settled_on, penalty_e6, compound_e6)
        SELECT {d.new_id}, {p('uuid')}, {_loan_id(d, 's.x', salt)}, 1, t.n, t.due_on, t.principal,
          t.interest, 0, 0, 0, t.principal_paid, t.interest_paid, 0, 0, 0, t.settled_on, 0, 0
        FROM {_series(d, n)} JOIN bench_inst t
          ON t.k = s.x % {DAYS} AND t.bad = CASE WHEN s.x % {BAD_EVERY} = 0 THEN 1 ELSE 0 END
    """, tenant_id)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def run_cob_bench(n: int, postgres_admin: str = "", chunk: int = 5000,
                        workers: int | None = None) -> dict[str, Any]:
    """Seed, measure the floor, close the business date; the figures as a dict."""
    from core.scratch import drop_database, scratch_postgres

    with tempfile.TemporaryDirectory() as tmp:
        env: dict[str, str] = {"XINDAI_DATA_DIR": tmp}
        name = ""
        if postgres_admin:
            extra, name = await scratch_postgres(postgres_admin, "xindai_bench_cob")
            env.update(extra)
        try:
            return await _measure(env, n, chunk, workers)
        finally:
            if name:
                await drop_database(postgres_admin, name)


async def _measure(env: dict[str, str], n: int, chunk: int, workers: int | None
                   ) -> dict[str, Any]:
    from core import kernel as K
    from core.settings import load_settings
    from core.tenancy import Context, insert_tenant, run_onboarding, tenant_scope
    from plugins.servicing import cob
    from plugins.servicing.tables import Loan

    k = K.boot(load_settings(env))
    await K.migrate(k)
    await K.start(k)
    try:
        today = date.today()
        info = await insert_tenant(f"bench-{uuid.uuid4().hex[:8]}", "日终基准", ["servicing"],
                                   business_date=today)
        ctx = Context.system(info)
        async with tenant_scope(ctx):
            await run_onboarding(ctx)
        product = await products.save_product(ctx, "BENCH", "基准产品", CONFIG)
        engine = Loan._meta.db
        d = cob_sql.dialect(engine)
        async with tenant_scope(ctx):
            await seed(engine, d, ctx.tenant_id, product["id"], n, today)
        await _analyze(env, d)
        started = time.perf_counter()
        async with tenant_scope(ctx):
            await fetch(engine, f"UPDATE loan SET last_closed_on = last_closed_on "
                                f"WHERE tenant_id = {d.p('uuid')} AND status = 'active'",
                        ctx.tenant_id)
        baseline = time.perf_counter() - started
        await _analyze(env, d)  # the close starts from a vacuumed table, as the floor did
        started = time.perf_counter()
        run = await cob.close_business_date(ctx, today, chunk_size=chunk, workers=workers)
        seconds = time.perf_counter() - started
        if run["loans"] != n:
            raise RuntimeError(f"closed {run['loans']} loans of {n}")
        return {"loans": n, "seconds": round(seconds, 2),
                "loans_per_second": round(n / seconds), "baseline_seconds": round(baseline, 2),
                "ratio": round(seconds / baseline, 2), "peak_rss_mb": peak_rss_mb(),
                "engine": "postgres" if d.pg else "sqlite", "chunk": chunk,
                "workers": (workers or cob.DEFAULT_WORKERS) if d.pg else 1,
                "penalty": run["penalty"], "accrued": run["accrued"]}
    finally:
        await K.stop(k)


async def _analyze(env: dict[str, str], d: cob_sql.Dialect) -> None:
    """Fresh planner statistics after the bulk load (as autovacuum would give a real book)."""
    if d.pg:
        import asyncpg

        conn = await asyncpg.connect(env["XINDAI_MIGRATE_DATABASE_URL"])
        try:
            await conn.execute("VACUUM ANALYZE loan")
            await conn.execute("VACUUM ANALYZE loan_installment")
        finally:
            await conn.close()
    else:
        from plugins.servicing.tables import Loan

        await fetch(Loan._meta.db, "ANALYZE")

