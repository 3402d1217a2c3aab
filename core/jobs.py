"""Background work on dramatiq: Redis when `XINDAI_REDIS_URL` is set, in-process otherwise.

Jobs and events are outbox messages (core.outbox); the broker only carries "deliver
messages M1..Mn of tenant T". One actor, `xindai.deliver`, runs every delivery: a message carries the
tenant id explicitly (context variables do not cross into workers) and runs in that
tenant's scope with RLS in force. Worker threads hand each delivery to the process's event
loop, where the database pool lives, so the same code serves the embedded worker inside the
web server and `xindai worker`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from core import outbox
from core.declarations import Job
from core.errors import NotFound
from core.tenancy import Context

ACTOR = "xindai.deliver"
ACTOR_TIME_LIMIT_MS = 24 * 3600 * 1000  # handlers have their own limits (asyncio.wait_for)
_loop: asyncio.AbstractEventLoop | None = None


def setup_broker(redis_url: str, namespace: str = "xindai") -> dramatiq.Broker:
    """Make the process's dramatiq broker: Redis if configured, else an in-memory one."""
    broker: dramatiq.Broker
    if redis_url:
        broker = RedisBroker(url=redis_url, namespace=namespace)
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    dramatiq.set_broker(broker)
    declare_actor()
    return broker


def _deliver(tenant_id: str, message_ids: list[str]) -> None:
    if _loop is None:
        raise RuntimeError("no job loop: start a worker with start_worker()")
    future = asyncio.run_coroutine_threadsafe(outbox.deliver_many(
        uuid.UUID(tenant_id), [uuid.UUID(m) for m in message_ids]), _loop)
    future.result()  # the outcomes are on the message rows; dramatiq keeps no results


def declare_actor() -> dramatiq.Actor:
    """The one actor on the current broker. Retries are the outbox's, not dramatiq's."""
    broker = dramatiq.get_broker()
    if ACTOR in broker.actors:
        return broker.get_actor(ACTOR)
    return dramatiq.actor(_deliver, actor_name=ACTOR, queue_name="default",
                          time_limit=ACTOR_TIME_LIMIT_MS, max_retries=0)


def send_batches(batches: list[tuple[str, list[str]]]) -> int:
    """Hand (tenant id, message ids) batches to the broker; returns how many went."""
    actor = declare_actor()
    sent = 0
    for tenant_id, message_ids in batches:
        actor.send(tenant_id, message_ids)
        sent += 1
    return sent


def job_named(ctx: Context, name: str) -> Job:
    """The registered job, if its plugin is enabled for ctx's tenant; else it does not exist."""
    from core.kernel import kernel

    job = next((j for j in kernel().jobs if j.name == name), None)
    if job is None or not ctx.tenant.enabled(job.plugin):
        raise NotFound()
    return job


async def enqueue(ctx: Context, job_name: str, **kwargs: Any) -> uuid.UUID:
    """Queue a job for ctx's tenant, in ctx's transaction if one is open: the job exists
    exactly when the caller's change committed. Returns the message id (for progress)."""
    job = job_named(ctx, job_name)
    json.dumps(kwargs)  # arguments travel as JSON: refuse others here, not in the worker
    return await outbox.write(ctx, outbox.JOB, job.name, kwargs,
                              max_attempts=job.max_retries + 1)


def jobs_for(ctx: Context) -> list[Job]:
    from core.kernel import kernel

    return [j for j in kernel().jobs if ctx.tenant.enabled(j.plugin)]


def start_worker(loop: asyncio.AbstractEventLoop, threads: int = 2) -> dramatiq.Worker:
    """Start worker threads that run deliveries on `loop` (the loop that owns the DB pool)."""
    global _loop
    _loop = loop
    declare_actor()
    worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=threads, worker_timeout=100)
    worker.start()
    return worker


@dataclass
class Runtime:
    """Everything that makes the system act on its own, in one process: worker threads,
    the outbox relay and (optionally) the scheduler. `make demo` runs all three inside the
    web server; `xindai worker` runs the first two, `xindai scheduler` the third."""

    threads: int = 2
    relay: bool = True
    scheduler: bool = False
    worker: dramatiq.Worker | None = None
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def start(self) -> None:
        from core.kernel import kernel

        settings = kernel().settings
        self.stop_event.clear()
        if self.threads:
            self.worker = start_worker(asyncio.get_running_loop(), self.threads)
        if self.relay:
            self.tasks.append(asyncio.create_task(outbox.run_relay(
                send_batches, settings.event_ack_seconds, settings.relay_poll_ms,
                self.stop_event)))
        if self.scheduler:
            from core.scheduler import run_scheduler

            self.tasks.append(asyncio.create_task(run_scheduler(self.stop_event)))

    async def stop(self) -> None:
        self.stop_event.set()
        for task in self.tasks:
            try:
                await asyncio.wait_for(task, 5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        self.tasks.clear()
        if self.worker is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.worker.stop)
            self.worker = None
