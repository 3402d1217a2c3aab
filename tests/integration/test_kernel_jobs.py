"""The kernel's own jobs: re-encryption after a key rotation runs in the background with
progress, checkpoints are signed only when the chain moved, old messages are forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from core import jobs, keys, outbox, records
from core.kernel_jobs import checkpoint_job, cleanup_job
from core.tables import AuditCheckpoint, OutboxMessage
from core.tenancy import tenant_scope


async def test_rotation_reencrypts_in_the_background_with_progress(kernel: Any,
                                                                   new_tenant: Any) -> None:
    ctx = await new_tenant()  # the small pack has customers with sealed fields
    async with tenant_scope(ctx):
        await keys.rotate(ctx)
        job_id = await jobs.enqueue(ctx, "core.keys.reencrypt")
    stale = await keys.status(ctx)
    assert not stale.done
    assert await outbox.run_due(ctx.tenant) >= 1
    row = await outbox.get(ctx, job_id)
    assert row is not None and row["status"] == "done"
    total = sum(stale.stale.values())
    assert (row["progress_done"], row["progress_total"]) == (total, total)
    assert (await keys.status(ctx)).done
    listed = await records.list_records(ctx, "customer")
    assert listed.items  # still readable under the new key


async def test_checkpoints_are_signed_only_when_the_chain_moved(kernel: Any,
                                                                new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    first = await checkpoint_job(ctx)
    assert first is not None
    assert await checkpoint_job(ctx) is None
    async with tenant_scope(ctx):
        from core import audit

        await audit.append(ctx, "test.moved")
    second = await checkpoint_job(ctx)
    assert second is not None and second["seq"] == first["seq"] + 1
    async with tenant_scope(ctx, write=False):
        count = await AuditCheckpoint.count().where(AuditCheckpoint.tenant_id == ctx.tenant_id)
    assert count == 2


async def test_cleanup_forgets_finished_messages_after_30_days(kernel: Any, new_tenant: Any
                                                               ) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    old = await jobs.enqueue(ctx, "example.touch", note="old")
    recent = await jobs.enqueue(ctx, "example.touch", note="recent")
    pending = await jobs.enqueue(ctx, "example.touch", note="pending")
    await outbox.deliver(ctx.tenant_id, old)
    await outbox.deliver(ctx.tenant_id, recent)
    async with tenant_scope(ctx):
        await OutboxMessage.update({OutboxMessage.finished_at: datetime.now(UTC)
                                    - timedelta(days=31)}).where(
            OutboxMessage.id == old, OutboxMessage.tenant_id == ctx.tenant_id).run()
    assert await cleanup_job(ctx) == 1
    assert await outbox.get(ctx, old) is None
    assert await outbox.get(ctx, recent) is not None and await outbox.get(ctx, pending)
