"""Close of business (日终, COB): the nightly job that closes a tenant's business date.

For every active loan, day by day: the interest and per-period fees accrued (Dr 1132/1221,
Cr 6011/6021), the penalty on overdue principal and compound interest on overdue interest
(Dr 1133, Cr 6012, after the product's grace days), days past due, the M-bucket and the
five-category classification floor; then reminders for what falls due soon, and the
business date moves on by one day.

It is set-based and chunked (plugins.servicing.cob_sql): each chunk of loans is closed in
one transaction and each loan remembers the last date it closed (`last_closed_on`), so a
crashed run resumes where it stopped and never accrues twice, and a loan several days
behind (a back-dated disbursement) is caught up day by day. Chunks lock their loan rows
(PostgreSQL), so officers posting repayments meanwhile simply queue behind a chunk.

Days past due are those of the new business date: an installment due on the closed day
and unpaid is 1 day past due. Penalty is charged for each overdue day at that day's close
(a repayment during the day pays what was charged so far); within the grace days nothing
is charged, and on the first day after them the grace days are charged as well.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core import audit
from core.access import require
from core.errors import FieldError, ValidationFailed
from core.i18n import register_messages
from core.tables import Tenant
from core.tenancy import Context, get_tenant_by_id, tenant_scope
from plugins.servicing import cob_sql, ledger
from plugins.servicing.tables import (
    CobRun,
    JournalEntry,
    Loan,
    LoanProduct,
    Posting,
)

DEFAULT_CHUNK = 5000
DEFAULT_WORKERS = 2
DEFAULT_BUCKET_EDGES = (30, 60, 90)
DEFAULT_FLOORS = {"attention": 1, "substandard": 91, "doubtful": 271, "loss": 361}
DEFAULT_REMINDER_DAYS = (3, 1, 0)

register_messages({
    "cob_skip": {"zh-CN": "营业日 {business_date} 尚未日终，不能跳过它去关闭 {requested}",
                 "en": "the business date {business_date} is not closed yet: {requested} "
                       "cannot be closed before it"},
})


def _error(code: str, **params: Any) -> FieldError:
    return FieldError("business_date", code, params, {"zh-CN": "营业日", "en": "business date"})


async def refreshed(ctx: Context) -> Context:
    """ctx with the tenant as stored now (the business date moves under long contexts)."""
    return replace(ctx, tenant=await get_tenant_by_id(ctx.tenant_id))


def policy_of(settings: dict[str, Any], products: list[dict[str, Any]]) -> cob_sql.Policy:
    """Bucket edges (tenant setting `servicing.bucket_edges`) and classification floors
    (product `classification`, else the tenant's `servicing.classification`, else the 2023
    rules for commercial banks)."""
    edges = tuple(int(e) for e in settings.get("servicing.bucket_edges", DEFAULT_BUCKET_EDGES))
    default = {**DEFAULT_FLOORS, **settings.get("servicing.classification", {})}
    floors = {str(p["id"]): {**default, **p["config"]["classification"]}
              for p in products if p["config"].get("classification")}
    return cob_sql.Policy(edges, floors, default)


async def _policy(ctx: Context) -> cob_sql.Policy:
    async with tenant_scope(ctx, write=False):
        products = await LoanProduct.select(LoanProduct.id, LoanProduct.config).where(
            LoanProduct.tenant_id == ctx.tenant_id).output(load_json=True).run()
    return policy_of(ctx.tenant.settings, products)


async def close_business_date(ctx: Context, requested: date | None = None,
                              chunk_size: int = DEFAULT_CHUNK, progress: Any = None,
                              workers: int | None = None) -> dict[str, Any]:
    """Close the tenant's business date (or `requested`, which must be it; a date already
    closed answers its run and changes nothing). Returns the run."""
    require(ctx, "cob.run")
    ctx = await refreshed(ctx)
    day = ctx.tenant.business_date
    if requested is not None and requested < day:
        return await get_run(ctx, requested) or {"business_date": requested.isoformat(),
                                                 "status": "done", "loans": 0}
    if requested is not None and requested > day:
        raise ValidationFailed([_error("cob_skip", business_date=day.isoformat(),
                                       requested=requested.isoformat())])
    await ledger.seed_chart(ctx)
    run = await _start(ctx, day)
    try:
        policy = await _policy(ctx)
        for _ in range(3):  # loans disbursed while closing are closed too
            oldest = await _oldest_open(ctx, day)
            if oldest is None:
                break
            current = oldest + timedelta(days=1)
            while current <= day:
                await _close_day(ctx, run, current, policy, chunk_size, progress, workers)
                current += timedelta(days=1)
        behind = await _oldest_open(ctx, day)
        if behind is not None:  # never move the date past a loan that did not close
            raise RuntimeError(f"loans still closed only to {behind.isoformat()}")
        await _finish(ctx, run, day)
    except Exception as exc:
        async with tenant_scope(ctx):
            await CobRun.update({CobRun.status: "failed",
                                 CobRun.error: f"{type(exc).__name__}: {exc}"[:2000]}).where(
                CobRun.tenant_id == ctx.tenant_id, CobRun.id == run).run()
        raise
    return await get_run(ctx, day) or {}


async def catch_up(ctx: Context, chunk_size: int = DEFAULT_CHUNK) -> int:
    """Close every active loan through the day before the business date, leaving the date
    alone: loans loaded back-dated (a tenant pack, a migration from another system) reach
    the state the nightly closes would have given them. Returns the loan-days closed."""
    require(ctx, "cob.run")
    ctx = await refreshed(ctx)
    last = ctx.tenant.business_date - timedelta(days=1)
    await ledger.seed_chart(ctx)
    policy = await _policy(ctx)
    async with tenant_scope(ctx):
        run = CobRun(tenant_id=ctx.tenant_id, business_date=last, started_by=ctx.username,
                     status="catch-up")
        exists = await CobRun.select(CobRun.id).where(CobRun.tenant_id == ctx.tenant_id,
                                                      CobRun.business_date == last).run()
        if exists:
            run.id = exists[0]["id"]
        else:
            await CobRun.insert(run).run()
    oldest = await _oldest_open(ctx, last + timedelta(days=1))
    current = oldest + timedelta(days=1) if oldest else last + timedelta(days=1)
    while current <= last:
        await _close_day(ctx, run.id, current, policy, chunk_size, None)
        current += timedelta(days=1)
    async with tenant_scope(ctx):
        row = await CobRun.select(CobRun.loans).where(CobRun.tenant_id == ctx.tenant_id,
                                                      CobRun.id == run.id).first().run()
        await CobRun.update({CobRun.finished_at: datetime.now(UTC)}).where(
            CobRun.tenant_id == ctx.tenant_id, CobRun.id == run.id).run()
    return int(row["loans"]) if row else 0


async def _start(ctx: Context, day: date) -> uuid.UUID:
    """The run of `day`: a crashed one is resumed, else a new one is recorded."""
    async with tenant_scope(ctx):
        rows = await CobRun.select(CobRun.id).where(CobRun.tenant_id == ctx.tenant_id,
                                                    CobRun.business_date == day).run()
        if rows:
            await CobRun.update({CobRun.status: "running", CobRun.error: None}).where(
                CobRun.tenant_id == ctx.tenant_id, CobRun.id == rows[0]["id"]).run()
            return rows[0]["id"]
        run = CobRun(tenant_id=ctx.tenant_id, business_date=day, started_by=ctx.username)
        await CobRun.insert(run).run()
        return run.id


async def _oldest_open(ctx: Context, day: date) -> date | None:
    async with tenant_scope(ctx, write=False):
        rows = await Loan.select(Loan.last_closed_on).where(
            Loan.tenant_id == ctx.tenant_id, Loan.status == "active",
            Loan.last_closed_on < day).order_by(Loan.last_closed_on).limit(1).run()
    return rows[0]["last_closed_on"] if rows else None


async def _close_day(ctx: Context, run: uuid.UUID, day: date, policy: cob_sql.Policy,
                     chunk_size: int, progress: Any, workers: int | None = None) -> None:
    """Close `day` for every loan behind it: chunks of consecutive ids, each in its own
    transaction, `workers` at a time (PostgreSQL: two by default, one per core of a small
    server; SQLite has one writer). Loans added meanwhile are left to the caller's
    re-check."""
    engine = Loan._meta.db
    d = cob_sql.dialect(engine)
    async with tenant_scope(ctx, write=False):
        ranges = await cob_sql.chunk_ranges(engine, d, ctx.tenant_id, day, chunk_size)
    chunks = iter(ranges)
    count = (workers or DEFAULT_WORKERS) if d.pg else 1

    async def work() -> None:
        for lo, hi in chunks:  # the iterator is shared: each chunk is taken once
            closed = await _close_chunk(ctx, engine, d, run, day, lo, hi, policy)
            if progress is not None and closed:
                await progress(day, closed)

    await asyncio.gather(*[work() for _ in range(max(count, 1))])


async def _close_chunk(ctx: Context, engine: Any, d: cob_sql.Dialect, run: uuid.UUID,
                       day: date, lo: Any, hi: Any, policy: cob_sql.Policy) -> int:
    """One chunk of loans closed for one day, in one transaction; returns the loans closed."""
    async with tenant_scope(ctx):
        query = Loan.select(Loan.id).where(
            Loan.tenant_id == ctx.tenant_id, Loan.id >= lo, Loan.id <= hi,
            Loan.status == "active", Loan.last_closed_on < day).order_by(Loan.id)
        if d.pg:
            query = query.lock_rows("UPDATE")  # repayments of these loans wait for us
        ids = [r["id"] for r in await query.run()]
        if not ids:
            return 0
        await cob_sql.prepare(engine, d)
        await cob_sql.close_chunk(engine, d, ctx.tenant_id, ids[0], ids[-1], day, policy)
        sums = await cob_sql.totals(engine)
        if sums["interest"] or sums["fees"] or sums["penalty"]:
            await _post(ctx, engine, d, day, ids[0], sums)
        await cob_sql.update_loans(engine, d, ctx.tenant_id, ids[0], ids[-1], day)
        moved = await _record_changes(ctx, engine, d, day)
        await CobRun.update({
            CobRun.loans: CobRun.loans + sums["loans"], CobRun.chunks: CobRun.chunks + 1,
            CobRun.accrued: CobRun.accrued + sums["interest"] + sums["fees"],
            CobRun.penalty: CobRun.penalty + sums["penalty"],
            CobRun.events: CobRun.events + moved,
        }).where(CobRun.tenant_id == ctx.tenant_id, CobRun.id == run).run()
    return sums["loans"]


async def _post(ctx: Context, engine: Any, d: cob_sql.Dialect, day: date, first: Any,
                sums: dict[str, int]) -> None:
    """One balanced entry for the chunk: a debit per loan and receivable, the income in
    total (income accounts are the tenant's; receivables are the loans')."""
    entry = JournalEntry(tenant_id=ctx.tenant_id, key=f"cob:{day.isoformat()}:{first}",
                         posted_on=day, memo=f"日终计提 {day.isoformat()}")
    await JournalEntry.insert(entry).run()
    await cob_sql.post_lines(engine, d, ctx.tenant_id, entry.id)
    credits = [(ledger.INTEREST_INCOME, sums["interest"]), (ledger.FEE_INCOME, sums["fees"]),
               (ledger.PENALTY_INCOME, sums["penalty"])]
    await Posting.insert(*[
        Posting(tenant_id=ctx.tenant_id, entry_id=entry.id, account_code=code, credit=amount)
        for code, amount in credits if amount]).run()


async def _record_changes(ctx: Context, engine: Any, d: cob_sql.Dialect, day: date) -> int:
    from core import outbox

    written = await cob_sql.record_changes(engine, d, ctx.tenant_id, day, ctx.username,
                                           datetime.now(UTC))
    if written:
        outbox.wake()
    return written


async def _finish(ctx: Context, run: uuid.UUID, day: date) -> None:
    """Reminders of what falls due soon, and the business date moves on: once."""
    next_day = day + timedelta(days=1)
    async with tenant_scope(ctx):
        moved = await Tenant.update({Tenant.business_date: next_day}).where(
            Tenant.id == ctx.tenant_id, Tenant.business_date == day).returning(Tenant.id).run()
        if not moved:
            return  # another run finished this date
        days = [int(n) for n in ctx.tenant.settings.get("servicing.reminder_days",
                                                         DEFAULT_REMINDER_DAYS)]
        engine = Loan._meta.db
        sent = await cob_sql.due_soon_events(engine, cob_sql.dialect(engine), ctx.tenant_id,
                                             next_day, days, ctx.username, datetime.now(UTC))
        if sent:
            from core import outbox

            outbox.wake()
        await CobRun.update({CobRun.status: "done", CobRun.finished_at: datetime.now(UTC),
                             CobRun.events: CobRun.events + sent}).where(
            CobRun.tenant_id == ctx.tenant_id, CobRun.id == run).run()
        totals = await CobRun.select().where(CobRun.tenant_id == ctx.tenant_id,
                                             CobRun.id == run).first().run()
        await audit.append(ctx, "cob.close", "cob_run", run, {
            "business_date": day.isoformat(), "next_business_date": next_day.isoformat(),
            "loans": totals["loans"], "accrued": totals["accrued"],
            "penalty": totals["penalty"], "events": totals["events"]})


async def enqueue_close(ctx: Context, requested: Any, enqueue: Any) -> dict[str, Any]:
    """Check the date asked for and enqueue the nightly job up to it (the API and the UI)."""
    require(ctx, "cob.run")
    ctx = await refreshed(ctx)
    day = ctx.tenant.business_date
    if requested not in (None, ""):
        try:
            wanted = date.fromisoformat(str(requested))
        except ValueError:
            raise ValidationFailed([_error("date_invalid", got=repr(requested))]) from None
        if wanted > day:
            raise ValidationFailed([_error("cob_skip", business_date=day.isoformat(),
                                           requested=wanted.isoformat())])
        if wanted < day:
            return {"business_date": wanted.isoformat(), "status": "done", "job_id": None}
    async with tenant_scope(ctx):
        job_id = await enqueue(ctx, "servicing.cob", until=day.isoformat())
    return {"business_date": day.isoformat(), "status": "queued", "job_id": str(job_id)}


async def get_run(ctx: Context, day: date) -> dict[str, Any] | None:
    async with tenant_scope(ctx, write=False):
        row = await CobRun.select().where(CobRun.tenant_id == ctx.tenant_id,
                                          CobRun.business_date == day).first().run()
    return _run_view(row) if row else None


async def list_runs(ctx: Context, limit: int = 30) -> list[dict[str, Any]]:
    require(ctx, "loan.read")
    async with tenant_scope(ctx, write=False):
        rows = await CobRun.select().where(CobRun.tenant_id == ctx.tenant_id).order_by(
            CobRun.business_date, ascending=False).limit(limit).run()
    return [_run_view(r) for r in rows]


def _run_view(row: dict[str, Any]) -> dict[str, Any]:
    from plugins.servicing.loans import yuan

    return {"id": str(row["id"]), "business_date": row["business_date"].isoformat(),
            "status": row["status"], "loans": row["loans"], "chunks": row["chunks"],
            "accrued": yuan(row["accrued"]), "penalty": yuan(row["penalty"]),
            "events": row["events"], "error": row["error"],
            "started_at": row["started_at"].isoformat() if row["started_at"] else None,
            "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
            "started_by": row["started_by"]}


def local_today(ctx: Context) -> date:
    return datetime.now(ZoneInfo(ctx.tenant.timezone)).date()


async def cob_job(ctx: Context, until: str | None = None) -> int:
    """The nightly job: close every business date before the tenant's today (or `until`
    inclusive), one at a time, reporting progress. Returns how many dates it closed."""
    from core import outbox

    last = date.fromisoformat(until) if until else local_today(ctx) - timedelta(days=1)
    done = {"dates": 0, "loans": 0}

    async def report(day: date, loans: int) -> None:
        done["loans"] += loans
        await outbox.progress(ctx, done["dates"], None,
                              f"{day.isoformat()}: {done['loans']} loans closed")

    while True:
        ctx = await refreshed(ctx)
        if ctx.tenant.business_date > last:
            return done["dates"]
        await close_business_date(ctx, ctx.tenant.business_date, progress=report)
        done["dates"] += 1
