"""The scheduler: cron periods in the tenant's time zone, once per period however many
schedulers run, one leader at a time, and a missed run caught up after downtime."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core import outbox, scheduler
from core.declarations import PeriodicJob
from core.tables import OutboxMessage, ScheduleState
from core.tenancy import tenant_scope

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHTLY = PeriodicJob("example.nightly", "0 2 * * *", "example.touch", plugin="example")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def test_due_periods_follow_the_cron_in_the_given_time_zone() -> None:
    periods = scheduler.due_periods("0 2 * * *", at("2026-11-20T12:00"), at("2026-11-23T01:59"))
    assert periods == [at("2026-11-21T02:00"), at("2026-11-22T02:00")]
    # 02:00 in Shanghai is 18:00 UTC the day before
    assert periods[0].astimezone(UTC) == datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
    assert scheduler.due_periods("0 2 * * *", at("2026-11-22T02:00"),
                                 at("2026-11-22T02:00")) == []
    # month-end schedules: the 31st exists only in long months
    assert scheduler.due_periods("0 0 31 * *", at("2026-01-31T00:00"), at("2026-05-01T00:00")) \
        == [at("2026-03-31T00:00")]


def test_invalid_cron_is_named() -> None:
    assert scheduler.validate_cron("0 2 * * *") is None
    assert scheduler.validate_cron("61 2 * * *")
    assert scheduler.validate_cron("every night")


def test_a_plugin_with_a_bad_periodic_job_does_not_boot(kernel: Any) -> None:
    from core.kernel import check_periodic_jobs
    from core.plugins import PluginError

    bad = replace(kernel, periodic_jobs=[PeriodicJob("x.bad", "99 * * * *", "example.touch",
                                                     plugin="x")])
    with pytest.raises(PluginError, match="x.bad"):
        check_periodic_jobs(bad)
    unknown = replace(kernel, periodic_jobs=[PeriodicJob("x.y", "0 * * * *", "no.such.job",
                                                         plugin="x")])
    with pytest.raises(PluginError, match="no.such.job"):
        check_periodic_jobs(unknown)


async def fired(ctx: Any) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        return await OutboxMessage.select().where(
            OutboxMessage.tenant_id == ctx.tenant_id, OutboxMessage.name == "example.touch"
        ).output(load_json=True).run()


async def test_first_sight_starts_counting_then_each_period_fires_once(kernel: Any,
                                                                       new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    assert await scheduler.fire_if_due(ctx.tenant, NIGHTLY, at("2026-11-22T12:00")) is None
    assert await scheduler.fire_if_due(ctx.tenant, NIGHTLY, at("2026-11-23T01:59")) is None
    assert await scheduler.fire_if_due(ctx.tenant, NIGHTLY, at("2026-11-23T02:00")) \
        == at("2026-11-23T02:00")
    assert await scheduler.fire_if_due(ctx.tenant, NIGHTLY, at("2026-11-23T02:00:30")) is None
    assert len(await fired(ctx)) == 1
    assert await outbox.run_due(ctx.tenant) == 1  # the job really runs


async def test_a_missed_run_is_caught_up_once_after_downtime(kernel: Any, new_tenant: Any
                                                             ) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    await scheduler.fire_if_due(ctx.tenant, NIGHTLY, at("2026-11-20T12:00"))
    # the server was down for three nights
    assert await scheduler.fire_if_due(ctx.tenant, NIGHTLY, at("2026-11-23T09:00")) \
        == at("2026-11-23T02:00")
    assert len(await fired(ctx)) == 1
    async with tenant_scope(ctx, write=False):
        [state] = await ScheduleState.select().where(
            ScheduleState.tenant_id == ctx.tenant_id, ScheduleState.job == NIGHTLY.name).run()
    assert state["last_fired_for"] == at("2026-11-23T02:00")


async def test_periods_follow_each_tenants_time_zone(kernel: Any, new_tenant: Any) -> None:
    from core.tenancy import get_tenant, update_tenant

    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    tenant = await update_tenant(await get_tenant(ctx.tenant.slug), timezone="Asia/Urumqi")
    start = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    await scheduler.fire_if_due(tenant, NIGHTLY, start)
    # 02:00 in Urumqi (UTC+6) is 20:00 UTC: not yet at 19:30 UTC, fired at 20:00 UTC
    assert await scheduler.fire_if_due(tenant, NIGHTLY, datetime(2026, 11, 22, 19, 30,
                                                                 tzinfo=UTC)) is None
    due = await scheduler.fire_if_due(tenant, NIGHTLY, datetime(2026, 11, 22, 20, 0, tzinfo=UTC))
    assert due is not None and due.astimezone(UTC) == datetime(2026, 11, 22, 20, 0, tzinfo=UTC)


async def test_racing_schedulers_fire_each_period_once(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    start = at("2026-11-20T12:00")
    await scheduler.fire_if_due(ctx.tenant, NIGHTLY, start)
    for day in range(3):
        now = start + timedelta(days=day, hours=14)  # 02:00 the next night has passed
        results = await asyncio.gather(*(scheduler.fire_if_due(ctx.tenant, NIGHTLY, now)
                                         for _ in range(4)), return_exceptions=True)
        assert sum(1 for r in results if isinstance(r, datetime)) == 1, results
    assert len(await fired(ctx)) == 3


async def test_only_one_postgres_scheduler_leads(pg: Any) -> None:
    first = scheduler.PostgresLeaderLock(pg.settings.database_url)
    second = scheduler.PostgresLeaderLock(pg.settings.database_url)
    try:
        assert await first.acquire() and await first.held()
        assert not await second.acquire()
        await first.release()  # or the process died: PostgreSQL drops the session lock
        assert await second.acquire()
    finally:
        await first.release()
        await second.release()


async def test_only_one_file_locked_scheduler_leads(tmp_path: Path) -> None:
    first = scheduler.FileLeaderLock(tmp_path / "scheduler.lock")
    second = scheduler.FileLeaderLock(tmp_path / "scheduler.lock")
    assert await first.acquire()
    assert not await second.acquire()
    await first.release()
    assert await second.acquire()
    await second.release()


async def test_two_scheduler_loops_fire_a_period_once(pg: Any, new_pg_tenant: Any) -> None:
    """Two schedulers started at once, each with its own leader lock, ticking together."""
    ctx = await new_pg_tenant(plugins=["crm", "example"], records=False)
    a = scheduler.Scheduler(scheduler.PostgresLeaderLock(pg.settings.database_url))
    b = scheduler.Scheduler(scheduler.PostgresLeaderLock(pg.settings.database_url))
    start = at("2026-11-20T12:00")
    try:
        await asyncio.gather(a.step(start), b.step(start))
        assert a.leader != b.leader  # exactly one leads
        for day in range(1, 4):
            now = start + timedelta(days=day)
            await asyncio.gather(a.step(now), b.step(now))
        assert len(await fired(ctx)) == 3
        leader, standby = (a, b) if a.leader else (b, a)
        await leader.lock.release()  # the leader's process dies
        leader.leader = False
        await standby.step(start + timedelta(days=4))
        assert standby.leader and len(await fired(ctx)) == 4
    finally:
        await a.lock.release()
        await b.lock.release()
