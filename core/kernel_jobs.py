"""The kernel's own background work, declared like a plugin's (owner "core", always on).

- `core.keys.reencrypt`: after `xindai keys rotate`, rewrite values sealed under older key
  versions; resumable (a crash re-runs it and it skips what is done), with progress.
- `core.audit.checkpoint` (hourly): sign the chain head when it moved since the last one.
- `core.outbox.cleanup` (nightly): forget finished messages after 30 days.
- `core.idempotency.purge` (hourly): delete Idempotency-Keys past their expiry.
- `core.imports.run`: a spreadsheet import's dry run or commit (core.imports).
- `core.imports.cleanup` (nightly): delete uploaded files not imported within 7 days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from core.declarations import Job, PeriodicJob
from core.tenancy import KERNEL, Context, tenant_scope

OUTBOX_KEEP_DAYS = 30


async def reencrypt_job(ctx: Context) -> int:
    from core import keys, outbox

    before = await keys.status(ctx)
    total = sum(before.stale.values())
    await outbox.progress(ctx, 0, total, "re-encrypting")

    async def report(entity: str, changed: int) -> None:
        await outbox.progress(ctx, min(changed, total), total, entity)

    changed = await keys.reencrypt(ctx, progress=report)
    after = await keys.status(ctx)
    await outbox.progress(ctx, total - sum(after.stale.values()), total,
                          "done" if after.done else "rows changed meanwhile remain")
    return changed


async def checkpoint_job(ctx: Context) -> dict[str, Any] | None:
    from core.audit_export import checkpoint
    from core.tables import AuditCheckpoint, AuditHead

    async with tenant_scope(ctx, write=False):
        heads = await AuditHead.select(AuditHead.seq).where(
            AuditHead.tenant_id == ctx.tenant_id).run()
        last = await AuditCheckpoint.select(AuditCheckpoint.seq).where(
            AuditCheckpoint.tenant_id == ctx.tenant_id).order_by(
            AuditCheckpoint.seq, ascending=False).limit(1).run()
    if not heads or (last and last[0]["seq"] >= heads[0]["seq"]):
        return None  # nothing appended since the last signed checkpoint
    return await checkpoint(ctx)


async def cleanup_job(ctx: Context) -> int:
    from core.tables import OutboxMessage, ProcessedMessage

    cutoff = datetime.now(UTC) - timedelta(days=OUTBOX_KEEP_DAYS)
    async with tenant_scope(ctx):
        old = await OutboxMessage.select(OutboxMessage.id).where(
            OutboxMessage.tenant_id == ctx.tenant_id, OutboxMessage.finished_at.is_not_null(),
            OutboxMessage.finished_at < cutoff).run()
        ids = [r["id"] for r in old]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            await ProcessedMessage.delete().where(ProcessedMessage.tenant_id == ctx.tenant_id,
                                                  ProcessedMessage.message_id.is_in(chunk)).run()
            await OutboxMessage.delete().where(OutboxMessage.tenant_id == ctx.tenant_id,
                                               OutboxMessage.id.is_in(chunk)).run()
    return len(ids)


async def import_job(ctx: Context, import_id: str, commit: bool, user_id: str | None = None,
                     locale: str = "zh-CN") -> dict[str, Any]:
    from core.imports import run_job

    return await run_job(ctx, import_id, commit, user_id, locale)


async def import_cleanup_job(ctx: Context) -> int:
    from core.imports import cleanup

    return await cleanup(ctx)


async def purge_idempotency_job(ctx: Context) -> int:
    from core.idempotency import purge_expired

    return await purge_expired(ctx)


KERNEL_JOBS: list[Job] = [
    Job("core.keys.reencrypt", reencrypt_job, time_limit_s=6 * 3600, max_retries=3,
        plugin=KERNEL, transactional=False),
    Job("core.audit.checkpoint", checkpoint_job, time_limit_s=300, max_retries=3,
        plugin=KERNEL),
    Job("core.outbox.cleanup", cleanup_job, time_limit_s=1800, max_retries=3, plugin=KERNEL),
    Job("core.idempotency.purge", purge_idempotency_job, time_limit_s=600, max_retries=3,
        plugin=KERNEL),
    # a spreadsheet import's dry run or commit: one transaction of its own (all or nothing),
    # progress reported meanwhile; a re-delivery after a commit finds it committed
    Job("core.imports.run", import_job, time_limit_s=3600, max_retries=1, plugin=KERNEL,
        transactional=False),
    Job("core.imports.cleanup", import_cleanup_job, time_limit_s=600, max_retries=3,
        plugin=KERNEL, transactional=False),
]

KERNEL_PERIODIC_JOBS: list[PeriodicJob] = [
    PeriodicJob("core.audit.checkpoint", "0 * * * *", "core.audit.checkpoint", plugin=KERNEL),
    PeriodicJob("core.outbox.cleanup", "17 3 * * *", "core.outbox.cleanup", plugin=KERNEL),
    PeriodicJob("core.idempotency.purge", "40 * * * *", "core.idempotency.purge",
                plugin=KERNEL),
    PeriodicJob("core.imports.cleanup", "27 3 * * *", "core.imports.cleanup", plugin=KERNEL),
]
