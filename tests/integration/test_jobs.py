"""Background jobs: embedded (in-process) and on a real Redis broker, always per tenant."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import dramatiq
import pytest

from core import jobs
from core.errors import NotFound
from tests.conftest import REDIS_URL, require


async def wait_for(predicate: Any, seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


async def exercise_broker(kernel: Any, new_tenant: Any, broker: dramatiq.Broker) -> None:
    from xindai_example_plugin import SEEN

    previous = dramatiq.get_broker()
    dramatiq.set_broker(broker)
    jobs.declare_actors(kernel.jobs)
    worker = jobs.start_worker(asyncio.get_running_loop(), threads=2)
    try:
        on = await new_tenant(plugins=["crm", "example"], records=False)
        off = await new_tenant(plugins=["crm"], records=False)
        jobs.enqueue(on, "example.touch", note="a")
        with pytest.raises(NotFound):
            jobs.enqueue(off, "example.touch", note="b")
        assert await wait_for(lambda: "job:a:scoped" in SEEN.get(on.tenant.slug, []))
        # a message for a tenant that has since disabled the plugin does nothing
        from core.tenancy import set_plugin_enabled

        await set_plugin_enabled(on.tenant.slug, "example", False)
        jobs._actors["example.touch"].send(str(on.tenant_id), note="gone")
        other = await new_tenant(plugins=["crm", "example"], records=False)
        jobs.enqueue(other, "example.touch", note="after")  # proves the worker kept going
        assert await wait_for(lambda: "job:after:scoped" in SEEN.get(other.tenant.slug, []))
        await asyncio.sleep(0.2)
        assert "job:gone:scoped" not in SEEN.get(on.tenant.slug, [])
    finally:
        worker.stop()
        dramatiq.set_broker(previous)
        jobs.declare_actors(kernel.jobs)


async def test_embedded_worker_runs_jobs_in_the_tenant_scope(kernel: Any, new_tenant: Any
                                                             ) -> None:
    from dramatiq.brokers.stub import StubBroker

    broker = StubBroker()
    broker.emit_after("process_boot")
    await exercise_broker(kernel, new_tenant, broker)


@pytest.mark.redis
async def test_redis_broker_runs_jobs_in_the_tenant_scope(kernel: Any, new_tenant: Any) -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        require("Redis", exc)
    namespace = f"xindai-test-{uuid.uuid4().hex[:8]}"
    broker = jobs.setup_broker(REDIS_URL, namespace=namespace)
    try:
        await exercise_broker(kernel, new_tenant, broker)
        # the message really travelled through Redis
        keys = redis.Redis.from_url(REDIS_URL).keys(f"{namespace}*")
        assert keys, "no dramatiq keys in Redis"
    finally:
        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(f"{namespace}*"):
            r.delete(key)
