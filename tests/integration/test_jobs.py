"""Background jobs through the outbox: embedded (in-process broker) and real Redis, always
inside the job's tenant scope, never for a tenant whose plugin is off."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import dramatiq
import pytest

from core import jobs, outbox
from core.errors import NotFound
from tests.conftest import REDIS_URL, require


async def wait_for(predicate: Any, seconds: float = 15.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return True
        await asyncio.sleep(0.05)
    return False


async def status(ctx: Any, message_id: uuid.UUID) -> str:
    row = await outbox.get(ctx, message_id)
    return row["status"] if row else "missing"


@asynccontextmanager
async def backlog_parked() -> AsyncIterator[None]:
    """Earlier tests leave unfinished events and jobs in the shared database (contracts to
    render, for hundreds of tenants); a runtime started here would work through them all
    before this test's job. Park them for the test, then make them due again."""
    from core.tables import OutboxMessage
    from core.tenancy import Context, list_tenants, tenant_scope

    later = datetime(2100, 1, 1, tzinfo=UTC)
    parked: list[tuple[Any, list[tuple[uuid.UUID, datetime]]]] = []
    for tenant in await list_tenants():
        async with tenant_scope(Context.system(tenant)):
            rows = await OutboxMessage.select(OutboxMessage.id, OutboxMessage.available_at) \
                .where(OutboxMessage.tenant_id == tenant.id,
                       OutboxMessage.finished_at.is_null(),
                       OutboxMessage.dead_at.is_null()).run()
            if rows:
                await OutboxMessage.update({OutboxMessage.available_at: later}).where(
                    OutboxMessage.id.is_in([r["id"] for r in rows])).run()
                parked.append((tenant, [(r["id"], r["available_at"]) for r in rows]))
    try:
        yield
    finally:
        for tenant, rows in parked:
            async with tenant_scope(Context.system(tenant)):
                for message_id, due in rows:
                    await OutboxMessage.update({OutboxMessage.available_at: due}).where(
                        OutboxMessage.id == message_id).run()


async def exercise_runtime(kernel: Any, new_tenant: Any, broker: dramatiq.Broker) -> None:
    async with backlog_parked():
        await _exercise_runtime(broker, new_tenant)


async def _exercise_runtime(broker: dramatiq.Broker, new_tenant: Any) -> None:
    from xindai_example_plugin import SEEN

    previous = dramatiq.get_broker()
    dramatiq.set_broker(broker)
    runtime = jobs.Runtime(threads=2, relay=True)
    await runtime.start()
    try:
        on = await new_tenant(plugins=["crm", "example"], records=False)
        off = await new_tenant(plugins=["crm"], records=False)
        first = await jobs.enqueue(on, "example.touch", note="a")
        with pytest.raises(NotFound):
            await jobs.enqueue(off, "example.touch", note="b")
        assert await wait_for(lambda: "job:a:scoped" in SEEN.get(on.tenant.slug, []))
        assert await wait_for(lambda: _is(on, first, "done"))
        # a message for a tenant that has since disabled the plugin does nothing
        from core.tenancy import set_plugin_enabled

        gone = await jobs.enqueue(on, "example.touch", note="gone")
        await set_plugin_enabled(on.tenant.slug, "example", False)
        other = await new_tenant(plugins=["crm", "example"], records=False)
        await jobs.enqueue(other, "example.touch", note="after")  # the worker kept going
        assert await wait_for(lambda: "job:after:scoped" in SEEN.get(other.tenant.slug, []))
        assert await wait_for(lambda: _is(on, gone, "done"))
        assert "job:gone:scoped" not in SEEN.get(on.tenant.slug, [])
    finally:
        await runtime.stop()
        dramatiq.set_broker(previous)


async def _is(ctx: Any, message_id: uuid.UUID, wanted: str) -> bool:
    return await status(ctx, message_id) == wanted


async def test_embedded_runtime_runs_jobs_in_the_tenant_scope(kernel: Any, new_tenant: Any
                                                              ) -> None:
    from dramatiq.brokers.stub import StubBroker

    broker = StubBroker()
    broker.emit_after("process_boot")
    await exercise_runtime(kernel, new_tenant, broker)


@pytest.mark.redis
async def test_redis_broker_runs_jobs_in_the_tenant_scope(kernel: Any, new_tenant: Any) -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        require("Redis", exc)
    namespace = f"xindai-test-{uuid.uuid4().hex[:8]}"
    previous = dramatiq.get_broker()
    broker = jobs.setup_broker(REDIS_URL, namespace=namespace)
    dramatiq.set_broker(previous)
    try:
        await exercise_runtime(kernel, new_tenant, broker)
        # the messages really travelled through Redis
        assert redis.Redis.from_url(REDIS_URL).keys(f"{namespace}*"), "no dramatiq keys"
    finally:
        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(f"{namespace}*"):
            r.delete(key)
