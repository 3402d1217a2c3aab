"""A close of business killed with SIGKILL in the middle and run again gives exactly the
state of an uninterrupted close: two identical books on real PostgreSQL, one closed in one
go, the other by a real `xindai cob run` process killed after a few chunks and then closed
again. Loans, installments, the ledger per loan and account, history and events agree."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from core.db import fetch
from core.tenancy import Context, get_tenant, tenant_scope
from plugins.servicing import bench, cob, cob_sql, products
from plugins.servicing.tables import CobRun, Loan
from tests.conftest import FIXTURES, ROOT
from tests.integration.test_cli import XINDAI

pytestmark = pytest.mark.postgres
LOANS = 6000
CHUNK = 50


async def book(ctx: Any, salt: int) -> None:
    product = await products.save_product(ctx, "BENCH", "基准产品", bench.CONFIG)
    engine = Loan._meta.db
    async with tenant_scope(ctx):
        await bench.seed(engine, cob_sql.dialect(engine), ctx.tenant_id, product["id"], LOANS,
                         ctx.tenant.business_date, salt)


async def snapshot(ctx: Any) -> dict[str, Any]:
    """Everything a close writes, keyed by loan number (ids differ between the books)."""
    engine = Loan._meta.db
    t = ctx.tenant_id
    async with tenant_scope(ctx, write=False):
        loans = await fetch(engine, """
            SELECT number, last_closed_on, days_past_due, bucket, classification,
                   interest_accrued, interest_receivable, fees_accrued, accrual_n,
                   accrual_start, accrual_due, accrual_base_interest
            FROM loan WHERE tenant_id = {} ORDER BY number""", t)
        installments = await fetch(engine, """
            SELECT l.number, i.n, i.penalty, i.compound, i.penalty_e6, i.compound_e6
            FROM loan_installment i JOIN loan l ON l.id = i.loan_id
            WHERE i.tenant_id = {} ORDER BY l.number, i.n""", t)
        postings = await fetch(engine, """
            SELECT COALESCE(l.number, '-') AS number, p.account_code,
                   SUM(p.debit) AS debit, SUM(p.credit) AS credit
            FROM posting p LEFT JOIN loan l ON l.id = p.loan_id
            WHERE p.tenant_id = {} GROUP BY 1, 2 ORDER BY 1, 2""", t)
        history = await fetch(engine, """
            SELECT l.number, c.old, c.new, c.days_past_due FROM loan_classification c
            JOIN loan l ON l.id = c.loan_id WHERE c.tenant_id = {} ORDER BY 1""", t)
        events = await fetch(engine, """
            SELECT name, COUNT(*) AS n FROM outbox_message
            WHERE tenant_id = {} AND kind = 'event' GROUP BY name ORDER BY name""", t)
        runs = await CobRun.select(CobRun.business_date, CobRun.status, CobRun.loans).where(
            CobRun.tenant_id == t).run()
    return {"loans": loans, "installments": installments, "postings": postings,
            "history": history, "events": events, "runs": runs}


def start_close(pg: Any, slug: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINDAI_")}
    env.update({"XINDAI_DATA_DIR": str(pg.settings.data_dir),
                "XINDAI_DATABASE_URL": pg.settings.database_url,
                "XINDAI_LOG_LEVEL": "warning",
                "PYTHONPATH": os.pathsep.join([str(ROOT), str(FIXTURES / "external")])})
    return subprocess.Popen([*XINDAI, "cob", "run", "--tenant", slug, "--chunk", str(CHUNK)],
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def closed_so_far(ctx: Any) -> int:
    async with tenant_scope(ctx, write=False):
        rows = await CobRun.select(CobRun.loans).where(CobRun.tenant_id == ctx.tenant_id).run()
    return int(rows[0]["loans"]) if rows else 0


async def test_a_close_killed_mid_run_and_run_again_equals_an_uninterrupted_one(
        pg: Any, new_pg_tenant: Any, tmp_path: Path) -> None:
    calm = await new_pg_tenant(plugins=["servicing"], records=False)
    crash = await new_pg_tenant(plugins=["servicing"], records=False)
    assert calm.tenant.business_date == crash.tenant.business_date
    await book(calm, 1)
    await book(crash, 2)
    await cob.close_business_date(calm, chunk_size=CHUNK)

    log = tmp_path / "cob.log"
    process = start_close(pg, crash.tenant.slug, log)
    deadline = time.monotonic() + 120
    try:
        while await closed_so_far(crash) < 10 * CHUNK:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the close never got going: " + log.read_text()
            await asyncio.sleep(0.005)
        process.send_signal(signal.SIGKILL)  # kill -9 between (or inside) chunks
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    interrupted = await closed_so_far(crash)
    assert 10 * CHUNK <= interrupted < LOANS, "the close was not interrupted"
    async with tenant_scope(crash, write=False):
        run = await CobRun.select(CobRun.status).where(
            CobRun.tenant_id == crash.tenant_id).first().run()
    assert run["status"] == "running"

    again = Context.system(await get_tenant(crash.tenant.slug))
    finished = await cob.close_business_date(again, chunk_size=CHUNK)
    assert finished["status"] == "done" and finished["loans"] == LOANS
    assert (await get_tenant(crash.tenant.slug)).business_date == \
        (await get_tenant(calm.tenant.slug)).business_date
    assert await snapshot(again) == await snapshot(calm)
