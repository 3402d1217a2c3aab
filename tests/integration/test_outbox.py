"""The outbox on both engines: events exist exactly when their change committed, handlers
take effect once however often a message is delivered, failures back off and die visibly,
and a message nobody acknowledged is sent again."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core import audit, jobs, outbox, records
from core.events import emit
from core.tables import AuditEntry, OutboxMessage
from core.tenancy import tenant_scope

VALID = {"kind": "company", "name": "晋中示例商贸有限公司", "credit_code": "91110000600037341L"}


async def effects(ctx: Any) -> list[str]:
    async with tenant_scope(ctx, write=False):
        rows = await AuditEntry.select(AuditEntry.record_id).where(
            AuditEntry.action == "example.effect", AuditEntry.tenant_id == ctx.tenant_id).run()
    return sorted(r["record_id"] for r in rows)


async def make_due(ctx: Any, message_id: uuid.UUID | None = None) -> None:
    """Pretend the ack timeout passed: the message is due again."""
    async with tenant_scope(ctx):
        query = OutboxMessage.update({OutboxMessage.available_at: datetime.now(UTC)
                                      - timedelta(seconds=1)})
        query = query.where(OutboxMessage.tenant_id == ctx.tenant_id)
        await (query.where(OutboxMessage.id == message_id) if message_id
               else query.where(OutboxMessage.finished_at.is_null())).run()


async def test_an_event_exists_only_if_its_change_committed(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    with pytest.raises(RuntimeError):
        async with tenant_scope(ctx):
            await records.create(ctx, "customer", VALID)
            raise RuntimeError("the change fails after the event was written")
    assert await outbox.recent(ctx) == []
    created = await records.create(ctx, "customer", VALID)
    [event] = await outbox.recent(ctx)
    assert (event["kind"], event["name"], event["status"]) == ("event", "customer.created",
                                                               "pending")
    assert event["payload"] == {"entity": "customer", "id": str(created["id"])}


async def test_a_message_delivered_twice_takes_effect_once(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    async with tenant_scope(ctx):
        message_id = await emit(ctx, "example.ping", {"n": 1})
    assert await outbox.deliver(ctx.tenant_id, message_id) == "done"
    assert await outbox.deliver(ctx.tenant_id, message_id) == "skipped"
    # even a delivery that finds the message unfinished (worker died before marking it)
    async with tenant_scope(ctx):
        await OutboxMessage.update({OutboxMessage.finished_at: None}).where(
            OutboxMessage.id == message_id, OutboxMessage.tenant_id == ctx.tenant_id).run()
    assert await outbox.deliver(ctx.tenant_id, message_id) == "done"
    assert await effects(ctx) == ["1"]
    assert (await audit.verify_tenant(ctx)).ok


async def test_concurrent_deliveries_take_effect_once(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    async with tenant_scope(ctx):
        ids = [await emit(ctx, "example.ping", {"n": n, "sleep": 0.01}) for n in range(5)]
    results = await asyncio.gather(*(outbox.deliver(ctx.tenant_id, m)
                                     for m in ids for _ in range(4)))
    assert results.count("done") >= 5
    assert sorted(await effects(ctx)) == [str(n) for n in range(5)]


async def test_failures_back_off_then_die_and_can_be_retried(kernel: Any, new_tenant: Any,
                                                             monkeypatch: Any) -> None:
    from xindai_example_plugin import SEEN

    monkeypatch.setattr(outbox, "BACKOFF_BASE_S", 0.01)
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    note = uuid.uuid4().hex
    message_id = await jobs.enqueue(ctx, "example.flaky", fail_times=5, note=note)
    # max_retries=2: three attempts, then dead
    for expected in ("failed", "failed", "dead"):
        await asyncio.sleep(0.05)  # the backoff
        assert await outbox.deliver(ctx.tenant_id, message_id) == expected
    row = await outbox.get(ctx, message_id)
    assert row is not None and row["status"] == "dead" and row["attempts"] == 3
    assert "attempt 3 failed" in row["last_error"]
    assert [r["id"] for r in await outbox.recent(ctx, "dead")] == [message_id]
    assert await outbox.run_due(ctx.tenant) == 0  # the relay leaves dead messages alone
    # the admin retries: it runs again and (after two more failures) succeeds
    assert await outbox.retry(ctx, message_id)
    assert await outbox.retry(ctx, message_id) is False  # no longer dead
    SEEN[f"flaky:{note}"] = ["try"] * 4  # the fifth failure remains; then success
    assert await outbox.deliver(ctx.tenant_id, message_id) == "failed"
    await asyncio.sleep(0.05)
    assert await outbox.run_due(ctx.tenant) == 1
    assert (await outbox.get(ctx, message_id))["status"] == "done"
    assert f"flaky:{note}:done" in SEEN[ctx.tenant.slug]
    async with tenant_scope(ctx, write=False):
        retries = await AuditEntry.select().where(AuditEntry.action == "job.retry",
                                                  AuditEntry.tenant_id == ctx.tenant_id).run()
    assert [r["record_id"] for r in retries] == [str(message_id)]


async def test_a_job_over_its_time_limit_fails(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    message_id = await jobs.enqueue(ctx, "example.slow", seconds=5)
    assert await outbox.deliver(ctx.tenant_id, message_id) == "dead"  # max_retries=0
    row = await outbox.get(ctx, message_id)
    assert row is not None and "time limit" in row["last_error"]


async def test_long_jobs_report_progress(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    message_id = await jobs.enqueue(ctx, "example.steps", total=4, pause=0.05)
    task = asyncio.create_task(outbox.deliver(ctx.tenant_id, message_id))
    seen: set[int] = set()
    while not task.done():
        row = await outbox.get(ctx, message_id)
        if row and row["progress_total"]:
            seen.add(row["progress_done"])
        await asyncio.sleep(0.02)
    assert task.result() == "done"
    row = await outbox.get(ctx, message_id)
    assert row is not None and (row["progress_done"], row["progress_total"]) == (4, 4)
    assert row["progress_note"] == "step 4" and len(seen) >= 2  # seen while running


async def test_an_unacknowledged_message_is_sent_again(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    async with tenant_scope(ctx):
        message_id = await emit(ctx, "example.ping", {"n": 7})
    lost: list[tuple[str, list[str]]] = []

    def broker_that_loses(batches: list[tuple[str, list[str]]]) -> int:
        lost.extend(batches)  # "sent", then the worker holding it was killed
        return len(batches)

    assert await outbox.relay_tenant(ctx.tenant, broker_that_loses, ack_seconds=60) == 1
    assert await outbox.relay_tenant(ctx.tenant, broker_that_loses, ack_seconds=60) == 0
    await make_due(ctx, message_id)  # the ack timeout passed
    assert await outbox.run_due(ctx.tenant) == 1
    assert await effects(ctx) == ["7"]
    assert lost == [(str(ctx.tenant_id), [str(message_id)])]


async def test_a_broker_that_is_down_loses_nothing(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    async with tenant_scope(ctx):
        for n in range(3):
            await emit(ctx, "example.ping", {"n": n})

    def broker_down(batches: list[tuple[str, list[str]]]) -> int:
        raise ConnectionError("Redis is down")

    assert await outbox.relay_tenant(ctx.tenant, broker_down, ack_seconds=60) == 0
    rows = await outbox.recent(ctx, "open")
    assert len(rows) == 3  # still due within a second, not after the ack timeout
    assert all(r["available_at"] < datetime.now(UTC) + timedelta(seconds=2) for r in rows)
    await make_due(ctx)
    assert await outbox.run_due(ctx.tenant) == 3
    assert sorted(await effects(ctx)) == ["0", "1", "2"]


async def test_enqueue_refuses_arguments_that_are_not_json(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    with pytest.raises(TypeError):
        await jobs.enqueue(ctx, "example.touch", note=object())
    assert await outbox.recent(ctx) == []


async def test_one_failing_message_in_a_batch_spoils_nothing_else(kernel: Any, new_tenant: Any
                                                                   ) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    async with tenant_scope(ctx):
        ok_before = await emit(ctx, "example.ping", {"n": 1})
        bad = await emit(ctx, "example.ping", {"n": 2, "fail": True})
        ok_after = await emit(ctx, "example.ping", {"n": 3})
    outcome = await outbox.deliver_many(ctx.tenant_id, [ok_before, bad, ok_after])
    assert outcome == {ok_before: "done", bad: "failed", ok_after: "done"}
    assert await effects(ctx) == ["1", "3"]
    row = await outbox.get(ctx, bad)
    assert row is not None and row["attempts"] == 1 and "ping 2 refused" in row["last_error"]
    assert (await audit.verify_tenant(ctx)).ok
