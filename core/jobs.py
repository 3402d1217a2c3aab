"""Background jobs on dramatiq: Redis when `XINDAI_REDIS_URL` is set, in-process otherwise.

A job message carries the tenant id explicitly (context variables do not cross into
workers); the job runs inside that tenant's scope, with RLS in force, and only for tenants
that enabled the job's plugin. Worker threads hand each job to the process's event loop,
where the database pool lives, so the same code serves the embedded worker inside the web
server and `xindai worker`.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from core.declarations import Job
from core.errors import NotFound
from core.tenancy import Context, get_tenant_by_id, tenant_scope

_loop: asyncio.AbstractEventLoop | None = None
_actors: dict[str, dramatiq.Actor] = {}


def setup_broker(redis_url: str, namespace: str = "xindai") -> dramatiq.Broker:
    """Make the process's dramatiq broker: Redis if configured, else an in-memory one."""
    broker: dramatiq.Broker
    if redis_url:
        broker = RedisBroker(url=redis_url, namespace=namespace)
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    dramatiq.set_broker(broker)
    return broker


def declare_actors(jobs: list[Job]) -> dict[str, dramatiq.Actor]:
    """One dramatiq actor per registered job, on the current broker (reused if declared)."""
    broker = dramatiq.get_broker()
    _actors.clear()
    for job in jobs:
        if job.name in broker.actors:
            _actors[job.name] = broker.get_actor(job.name)
            continue
        _actors[job.name] = dramatiq.actor(
            _runner(job), actor_name=job.name, queue_name="default",
            time_limit=job.time_limit_s * 1000, max_retries=job.max_retries,
            min_backoff=1000, max_backoff=300_000,
        )
    return _actors


def _runner(job: Job) -> Any:
    def run(tenant_id: str, **kwargs: Any) -> Any:
        if _loop is None:
            raise RuntimeError("no job loop: start a worker with start_worker()")
        future = asyncio.run_coroutine_threadsafe(_run_job(job, tenant_id, kwargs), _loop)
        return future.result(timeout=job.time_limit_s)

    run.__name__ = job.name
    return run


async def _run_job(job: Job, tenant_id: str, kwargs: dict[str, Any]) -> Any:
    tenant = await get_tenant_by_id(uuid.UUID(tenant_id))
    if not tenant.enabled(job.plugin) or tenant.status != "active":
        return None  # the plugin was disabled after the job was sent: the job no longer exists
    ctx = Context.system(tenant)
    async with tenant_scope(ctx):
        result = job.fn(ctx, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result


def enqueue(ctx: Context, job_name: str, **kwargs: Any) -> str:
    """Send a job for ctx's tenant; unknown jobs and jobs of disabled plugins do not exist."""
    from core.kernel import kernel

    job = next((j for j in kernel().jobs if j.name == job_name), None)
    if job is None or not ctx.tenant.enabled(job.plugin) or job_name not in _actors:
        raise NotFound()
    message = _actors[job_name].send(str(ctx.tenant_id), **kwargs)
    return message.message_id


def jobs_for(ctx: Context) -> list[Job]:
    from core.kernel import kernel

    return [j for j in kernel().jobs if ctx.tenant.enabled(j.plugin)]


def start_worker(loop: asyncio.AbstractEventLoop, threads: int = 2) -> dramatiq.Worker:
    """Start worker threads that run jobs on `loop` (the loop that owns the DB pool)."""
    global _loop
    _loop = loop
    worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=threads, worker_timeout=100)
    worker.start()
    return worker


def start_embedded_worker(k: Any) -> dramatiq.Worker:
    """The in-process worker of `make demo`: jobs run on the web server's own loop."""
    return start_worker(asyncio.get_running_loop())
