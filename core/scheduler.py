"""The scheduler: periodic jobs declared by plugins, per tenant, in the tenant's time zone.

One leader at a time fires them: a PostgreSQL session advisory lock when the database is
PostgreSQL, else an exclusive lock on a file in the data directory (SQLite lives on one
machine). Firing is also safe without the lock: a period is claimed by updating the locked
`schedule_state` row in the same transaction that writes the job to the outbox, so two
schedulers racing still fire it once. After downtime the latest missed period fires once
(`missed` says how many were skipped); jobs like the close of business catch up by date
themselves.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import inspect
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from core.declarations import PeriodicJob
from core.tables import ScheduleState
from core.tenancy import Context, TenantInfo, list_tenants, tenant_scope

log = logging.getLogger("xindai.scheduler")

LOCK_KEY = int.from_bytes(hashlib.sha256(b"xindai.scheduler").digest()[:8], "big",
                          signed=True)
MAX_CATCH_UP = 100_000  # periods counted after downtime before giving up counting


def validate_cron(expr: str) -> str | None:
    """None if `expr` is a valid five-field cron expression, else the parser's complaint."""
    try:
        CronSim(expr, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        return str(exc)
    return None


def due_periods(cron: str, after: datetime, now: datetime) -> list[datetime]:
    """Fire times of `cron` in (after, now], in after's time zone (at most MAX_CATCH_UP)."""
    out: list[datetime] = []
    for moment in CronSim(cron, after):
        if moment > now or len(out) >= MAX_CATCH_UP:
            break
        out.append(moment)
    return out


def _accepts(fn: Any, name: str) -> bool:
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


async def fire_if_due(tenant: TenantInfo, pj: PeriodicJob, now: datetime) -> datetime | None:
    """Fire the latest due period of one periodic job for one tenant; returns it, or None.

    The first time a job is seen for a tenant, counting starts now (a new tenant does not
    get every past period)."""
    from core import jobs
    from core.kernel import kernel

    ctx = Context.system(tenant)
    tz = ZoneInfo(tenant.timezone)
    local_now = now.astimezone(tz)
    async with tenant_scope(ctx):
        query = ScheduleState.select().where(ScheduleState.tenant_id == tenant.id,
                                             ScheduleState.job == pj.name)
        if ScheduleState._meta.db.engine_type == "postgres":
            query = query.lock_rows("UPDATE")
        rows = await query.run()
        if not rows:
            await ScheduleState.insert(ScheduleState(tenant_id=tenant.id, job=pj.name,
                                                     last_fired_for=now)).run()
            return None
        last = rows[0]["last_fired_for"]
        periods = due_periods(pj.cron, last.astimezone(tz), local_now)
        if not periods:
            return None
        latest = periods[-1]
        # the row is locked (FOR UPDATE on PostgreSQL, an IMMEDIATE transaction on SQLite),
        # so a racing scheduler waits here and then sees the new period as fired
        await ScheduleState.update({ScheduleState.last_fired_for: latest,
                                    ScheduleState.fired_at: now}).where(
            ScheduleState.id == rows[0]["id"]).run()
        job = next(j for j in kernel().jobs if j.name == pj.job)
        kwargs: dict[str, Any] = {}
        if _accepts(job.fn, "scheduled_for"):
            kwargs["scheduled_for"] = latest.isoformat()
        if _accepts(job.fn, "missed"):
            kwargs["missed"] = len(periods) - 1
        await jobs.enqueue(ctx, pj.job, **kwargs)
    if len(periods) > 1:
        log.info("caught up missed periods", extra={"tenant": tenant.slug, "job": pj.name,
                                                    "missed": len(periods) - 1})
    return latest


async def tick(now: datetime | None = None) -> int:
    """One pass: every periodic job of every active tenant. Returns how many fired."""
    from core.kernel import kernel

    now = now or datetime.now(UTC)
    fired = 0
    for tenant in await list_tenants():
        if tenant.status != "active":
            continue
        for pj in kernel().periodic_jobs_for(tenant):
            try:
                if await fire_if_due(tenant, pj, now):
                    fired += 1
            except Exception:  # noqa: BLE001 - one tenant's problem must not stop the rest
                log.exception("periodic job failed to fire",
                              extra={"tenant": tenant.slug, "job": pj.name})
    return fired


# -- the leader lock ---------------------------------------------------------------------

class LeaderLock(Protocol):
    async def acquire(self) -> bool: ...
    async def held(self) -> bool: ...
    async def release(self) -> None: ...


@dataclass
class PostgresLeaderLock:
    """A session advisory lock on a connection of its own: held while the session lives,
    released by PostgreSQL if the process dies."""

    dsn: str
    conn: Any = None

    async def acquire(self) -> bool:
        import asyncpg

        if self.conn is None:
            self.conn = await asyncpg.connect(self.dsn)
        got = await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
        if not got:
            await self.release()
        return bool(got)

    async def held(self) -> bool:
        if self.conn is None:
            return False
        try:
            await self.conn.fetchval("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - a lost session is a lost lock
            await self.release()
            return False

    async def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                await conn.close(timeout=5)
            except Exception:  # noqa: BLE001
                conn.terminate()


@dataclass
class FileLeaderLock:
    """An exclusive `flock` on data_dir/scheduler.lock, released by the OS if we die."""

    path: Path
    fd: int | None = None

    async def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    async def held(self) -> bool:
        return self.fd is not None

    async def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def leader_lock() -> LeaderLock:
    from core.kernel import kernel

    settings = kernel().settings
    if settings.is_postgres:
        return PostgresLeaderLock(settings.database_url)
    return FileLeaderLock(settings.data_dir / "scheduler.lock")


@dataclass
class Scheduler:
    """A scheduler process's loop: become leader when possible, fire due jobs each tick."""

    lock: LeaderLock
    leader: bool = False
    fired: int = field(default=0)

    async def step(self, now: datetime | None = None) -> int:
        if self.leader and not await self.lock.held():
            self.leader = False
            log.warning("scheduler lost its leader lock")
        if not self.leader:
            self.leader = await self.lock.acquire()
            if self.leader:
                log.info("scheduler is the leader")
        if not self.leader:
            return 0
        n = await tick(now)
        self.fired += n
        return n


async def run_scheduler(stop: asyncio.Event, lock: LeaderLock | None = None) -> None:
    from core.kernel import kernel

    scheduler = Scheduler(lock or leader_lock())
    interval = kernel().settings.scheduler_tick_seconds
    try:
        while not stop.is_set():
            try:
                await scheduler.step()
            except Exception:  # noqa: BLE001 - keep ticking through a database hiccup
                log.exception("scheduler tick failed")
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass
    finally:
        await scheduler.lock.release()
