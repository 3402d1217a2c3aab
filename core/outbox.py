"""The transactional outbox: events and jobs are rows first, broker messages second.

`write` inserts a message in the caller's tenant transaction, so it exists exactly when the
change that caused it committed. The relay sends due messages to the broker (`FOR UPDATE
SKIP LOCKED` on PostgreSQL, so several relays never send the same row at once) and pushes
their due time past an acknowledgement timeout: a message nobody finished in time (a worker
killed, a broker restarted) is sent again. `deliver` runs each handler once in effect: the
handler's writes and its `processed_message` row commit together, and a second delivery
finds the row and skips the handler. A failing message is retried with exponential backoff
and becomes dead (visible to tenant admins, retryable) after its last attempt.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from core.db import fetch, is_postgres
from core.tables import OutboxMessage, ProcessedMessage
from core.tenancy import Context, TenantInfo, get_tenant_by_id, tenant_scope

log = logging.getLogger("xindai.outbox")

EVENT, JOB = "event", "job"
EVENT_ATTEMPTS = 8  # an event handler failing 8 times in a row is dead (about 4 minutes)
EVENT_TIME_LIMIT_S = 60
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 3600.0

_wake: asyncio.Event | None = None
@dataclass(frozen=True)
class CurrentMessage:
    """The message a handler or job is running for (its id is the delivery id)."""

    id: uuid.UUID
    kind: str
    name: str
    created_at: datetime


_current: contextvars.ContextVar[CurrentMessage | None] = contextvars.ContextVar(
    "xindai_current_message", default=None)


def current_message() -> CurrentMessage | None:
    """The message being handled, inside an event handler or a job; else None."""
    return _current.get()


def _current_of(message: dict[str, Any]) -> CurrentMessage:
    return CurrentMessage(message["id"], message["kind"], message["name"],
                          message["created_at"])


def utcnow() -> datetime:
    return datetime.now(UTC)


async def write(ctx: Context, kind: str, name: str, payload: dict[str, Any],
                max_attempts: int = EVENT_ATTEMPTS) -> uuid.UUID:
    """Insert one message in ctx's tenant transaction (joining the caller's, if open)."""
    row = OutboxMessage(tenant_id=ctx.tenant_id, kind=kind, name=name, payload=payload,
                        created_by=ctx.username, request_id=ctx.request_id,
                        max_attempts=max_attempts)
    async with tenant_scope(ctx):
        await OutboxMessage.insert(row).run()
    if _wake is not None:
        _wake.set()
    return row.id


def wake() -> None:
    """Tell the in-process relay that messages were written (by bulk SQL, say)."""
    if _wake is not None:
        _wake.set()


async def write_many(ctx: Context, kind: str, name: str, payloads: list[dict[str, Any]],
                     max_attempts: int = EVENT_ATTEMPTS) -> int:
    """Insert one message per payload in ctx's tenant transaction (bulk producers such as
    the nightly close); returns how many were written."""
    from core.db import insert_rows

    rows = [{"tenant_id": ctx.tenant_id, "kind": kind, "name": name, "payload": payload,
             "created_by": ctx.username, "request_id": ctx.request_id,
             "max_attempts": max_attempts} for payload in payloads]
    async with tenant_scope(ctx):
        await insert_rows(OutboxMessage, rows)
    if rows and _wake is not None:
        _wake.set()
    return len(rows)


def _this(ctx: Context, message_id: uuid.UUID) -> Any:
    """One message of ctx's tenant (the application filter stays, as SQLite has no RLS)."""
    return (OutboxMessage.id == message_id) & (OutboxMessage.tenant_id == ctx.tenant_id)


# -- handlers ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Handler:
    """One piece of work a message asks for: an event subscription or the job itself."""

    name: str  # stable: the key of processed_message
    fn: Callable[..., Awaitable[Any] | Any]
    transactional: bool
    time_limit_s: float


def handlers_for(tenant: TenantInfo, kind: str, name: str) -> list[Handler]:
    """What delivering a message runs, for this tenant's enabled plugins (and the kernel)."""
    from core.kernel import kernel

    k = kernel()
    if kind == EVENT:
        return [Handler(f"{s.plugin}:{s.name or s.handler.__qualname__}",
                        lambda ctx, payload, h=s.handler: h(ctx, payload), True,
                        EVENT_TIME_LIMIT_S)
                for s in k.subscriptions_for(tenant, name)]
    job = next((j for j in k.jobs if j.name == name and tenant.enabled(j.plugin)), None)
    if job is None:
        return []  # the plugin was disabled after the job was sent: the job no longer exists
    return [Handler(f"job:{job.name}", lambda ctx, payload, f=job.fn: f(ctx, **payload),
                    job.transactional, job.time_limit_s)]


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def _processed(ctx: Context, message_id: uuid.UUID, handler: str) -> bool:
    rows = await ProcessedMessage.select(ProcessedMessage.id).where(
        (ProcessedMessage.tenant_id == ctx.tenant_id)
        & (ProcessedMessage.message_id == message_id) & (ProcessedMessage.handler == handler)
    ).limit(1).run()
    return bool(rows)


async def _mark_processed(ctx: Context, message_id: uuid.UUID, handler: str) -> None:
    await ProcessedMessage.insert(ProcessedMessage(
        tenant_id=ctx.tenant_id, message_id=message_id, handler=handler)).run()


async def _run_in_savepoint(ctx: Context, message: dict[str, Any], h: Handler
                            ) -> BaseException | None:
    """Run a transactional handler inside the message's transaction, behind a savepoint:
    its writes and its processed row stay together, and a failure undoes only its own."""
    if await _processed(ctx, message["id"], h.name):
        return None
    tx = OutboxMessage._meta.db.current_transaction.get()
    savepoint = await tx.savepoint()
    token = _current.set(_current_of(message))
    try:
        await asyncio.wait_for(_call(h.fn, ctx, message["payload"]), h.time_limit_s)
        await _mark_processed(ctx, message["id"], h.name)
    except Exception as exc:  # noqa: BLE001 - recorded on the message by the caller
        await savepoint.rollback_to()
        return exc
    finally:
        _current.reset(token)
    await savepoint.release()
    return None


async def _run_long(ctx: Context, message: dict[str, Any], h: Handler) -> None:
    """A non-transactional job: it commits its own chunks, so it runs outside any
    transaction and is marked processed afterwards (it must be resumable)."""
    message_id = message["id"]
    async with tenant_scope(ctx, write=False):
        if await _processed(ctx, message_id, h.name):
            return
    token = _current.set(_current_of(message))
    try:
        await asyncio.wait_for(_call(h.fn, ctx, message["payload"]), h.time_limit_s)
    finally:
        _current.reset(token)
    async with tenant_scope(ctx):
        await _mark_processed(ctx, message_id, h.name)


# -- delivery ----------------------------------------------------------------------------

def backoff(attempt: int) -> timedelta:
    """1 s, 2 s, 4 s, ... capped at an hour."""
    return timedelta(seconds=min(BACKOFF_BASE_S * 2 ** max(attempt - 1, 0), BACKOFF_MAX_S))


async def _locked_message(ctx: Context, message_id: uuid.UUID) -> dict[str, Any] | None:
    query = OutboxMessage.select().where(_this(ctx, message_id))
    if is_postgres(OutboxMessage._meta.db):
        query = query.lock_rows("UPDATE")  # a duplicate delivery waits, then sees it done
    rows = await query.output(load_json=True).run()
    if not rows or rows[0]["finished_at"] or rows[0]["dead_at"]:
        return None
    return rows[0]


async def deliver(tenant_id: uuid.UUID, message_id: uuid.UUID) -> str:
    """Handle one message for its tenant (see `deliver_many`)."""
    return (await deliver_many(tenant_id, [message_id]))[message_id]


async def deliver_many(tenant_id: uuid.UUID, message_ids: list[uuid.UUID]
                       ) -> dict[uuid.UUID, str]:
    """Handle a batch of one tenant's messages, with RLS in force. For each: done, failed,
    dead, or skipped (already finished, unknown, or tenant not active).

    Messages whose handlers are all transactional share one transaction: each is locked,
    each handler runs behind a savepoint (a failure undoes only its own writes and is
    recorded on its message), each is marked finished, and one commit ends the batch. A
    duplicate delivery waits on the row lock (PostgreSQL) or the write lock (SQLite) and
    then finds the message finished. Long jobs run afterwards, outside any transaction."""
    outcome = dict.fromkeys(message_ids, "skipped")
    tenant = await get_tenant_by_id(tenant_id)
    if tenant.status != "active":
        return outcome
    base = Context.system(tenant)
    long_jobs: list[tuple[dict[str, Any], list[Handler], int]] = []
    async with tenant_scope(base):
        for message_id in message_ids:
            message = await _locked_message(base, message_id)
            if message is None:
                continue
            ctx = replace(base, request_id=message["request_id"])
            attempt = message["attempts"] + 1
            handlers = handlers_for(tenant, message["kind"], message["name"])
            if not all(h.transactional for h in handlers):
                await OutboxMessage.update({OutboxMessage.attempts: attempt,
                                            OutboxMessage.started_at: utcnow()}).where(
                    _this(ctx, message_id)).run()
                long_jobs.append((message, handlers, attempt))
                continue
            failure = None
            for h in handlers:
                failure = await _run_in_savepoint(ctx, message, h) or failure
            if failure is not None:
                outcome[message_id] = await _failed(ctx, message, attempt, failure)
                continue
            await _finish(ctx, message_id, attempt)
            outcome[message_id] = "done"
    for message, handlers, attempt in long_jobs:
        outcome[message["id"]] = await _deliver_long(
            replace(base, request_id=message["request_id"]), message, handlers, attempt)
    return outcome


async def _deliver_long(ctx: Context, message: dict[str, Any], handlers: list[Handler],
                        attempt: int) -> str:
    try:  # a long job: it commits its own chunks
        for h in handlers:
            await _run_long(ctx, message, h)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, none is lost
        return await _failed(ctx, message, attempt, exc)
    async with tenant_scope(ctx):
        await _finish(ctx, message["id"], attempt)
    return "done"


async def _finish(ctx: Context, message_id: uuid.UUID, attempt: int) -> None:
    now = utcnow()
    await OutboxMessage.update({OutboxMessage.finished_at: now, OutboxMessage.attempts: attempt,
                                OutboxMessage.last_error: None}).where(
        _this(ctx, message_id)).run()


async def _failed(ctx: Context, message: dict[str, Any], attempt: int, exc: BaseException
                  ) -> str:
    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if isinstance(exc, TimeoutError):
        error = f"TimeoutError: 超过时间限制 / exceeded its time limit ({message['name']})"
    dead = attempt >= message["max_attempts"]
    values: dict[Any, Any] = {OutboxMessage.last_error: error[:2000],
                              OutboxMessage.attempts: attempt,
                              OutboxMessage.available_at: utcnow() + backoff(attempt)}
    if dead:
        values[OutboxMessage.dead_at] = utcnow()
    async with tenant_scope(ctx):
        await OutboxMessage.update(values).where(_this(ctx, message["id"])).run()
    log.warning("message failed: %s", error[:300], extra={"message_id": str(message["id"]),
                                         "message_name": message["name"], "attempt": attempt,
                                         "dead": dead, "error": error[:300]})
    return "dead" if dead else "failed"


async def retry(ctx: Context, message_id: uuid.UUID) -> bool:
    """Bring a dead message back: due now, attempts counted afresh (recorded in audit)."""
    from core import audit

    async with tenant_scope(ctx):
        rows = await OutboxMessage.select(OutboxMessage.name, OutboxMessage.dead_at).where(
            _this(ctx, message_id)).run()
        if not rows or rows[0]["dead_at"] is None:
            return False
        await OutboxMessage.update({OutboxMessage.dead_at: None, OutboxMessage.attempts: 0,
                                    OutboxMessage.available_at: utcnow()}).where(
            _this(ctx, message_id)).run()
        await audit.append(ctx, "job.retry", "outbox_message", message_id,
                           {"name": rows[0]["name"]})
    if _wake is not None:
        _wake.set()
    return True


# -- progress ----------------------------------------------------------------------------

async def progress(ctx: Context, done: int, total: int | None = None,
                   note: str | None = None, message_id: uuid.UUID | None = None) -> None:
    """Record a long job's progress (call it between committed chunks, outside a
    transaction, so the UI and `xindai jobs watch` see it at once). No-op outside a job,
    unless `message_id` names the job (a task that does not carry its context)."""
    if message_id is None:
        current = _current.get()
        if current is None:
            return
        message_id = current.id
    values: dict[Any, Any] = {OutboxMessage.progress_done: done}
    if total is not None:
        values[OutboxMessage.progress_total] = total
    if note is not None:
        values[OutboxMessage.progress_note] = note[:200]
    async with tenant_scope(ctx):
        await OutboxMessage.update(values).where(_this(ctx, message_id)).run()


# -- relay -------------------------------------------------------------------------------

Sender = Callable[[list[tuple[str, list[str]]]], int]
"""Sends (tenant id, message ids) batches to the broker; returns how many batches went."""
BATCH = 50  # messages per broker message: one transaction handles them all


def _ack_deadline(now: datetime, kind: str, name: str, ack_seconds: int) -> datetime:
    """When an unfinished message is sent again: after the ack timeout, or for a job after
    its time limit (a long job still running is not a lost one)."""
    from core.kernel import kernel

    seconds = ack_seconds
    if kind == JOB:
        job = next((j for j in kernel().jobs if j.name == name), None)
        if job is not None:
            seconds = max(seconds, job.time_limit_s + ack_seconds)
    return now + timedelta(seconds=seconds)


async def relay_tenant(tenant: TenantInfo, send: Sender, ack_seconds: int,
                       limit: int = 500) -> int:
    """Send one tenant's due messages; returns how many were sent."""
    ctx = Context.system(tenant)
    now = utcnow()
    engine = OutboxMessage._meta.db
    lock = " FOR UPDATE SKIP LOCKED" if is_postgres(engine) else ""
    async with tenant_scope(ctx):
        rows = await fetch(
            engine,
            "SELECT id, kind, name FROM outbox_message WHERE tenant_id = {} "
            "AND finished_at IS NULL AND dead_at IS NULL AND available_at <= {} "
            f"ORDER BY available_at LIMIT {int(limit)}{lock}",
            tenant.id, now)
        if not rows:
            return 0
        groups: dict[datetime, list[Any]] = {}
        for r in rows:
            groups.setdefault(_ack_deadline(now, r["kind"], r["name"], ack_seconds),
                              []).append(r["id"])
        for due, ids in groups.items():
            await OutboxMessage.update({OutboxMessage.sent_at: now,
                                        OutboxMessage.available_at: due}).where(
                OutboxMessage.id.is_in(ids), OutboxMessage.tenant_id == tenant.id).run()
    ids = [str(r["id"]) for r in rows]
    batches = [(str(tenant.id), ids[i:i + BATCH]) for i in range(0, len(ids), BATCH)]
    try:
        sent = await asyncio.get_running_loop().run_in_executor(None, send, batches)
    except Exception as exc:  # noqa: BLE001 - broker down: the rows stay due
        log.warning("relay could not reach the broker", extra={"error": str(exc)[:300]})
        sent = 0
    if sent < len(batches):  # send again soon, not after the ack timeout
        unsent = [uuid.UUID(m) for _, chunk in batches[sent:] for m in chunk]
        async with tenant_scope(ctx):
            await OutboxMessage.update({OutboxMessage.available_at: utcnow() + timedelta(
                seconds=1)}).where(OutboxMessage.id.is_in(unsent),
                                   OutboxMessage.tenant_id == tenant.id).run()
    return sum(len(chunk) for _, chunk in batches[:sent])


async def relay_once(send: Sender, ack_seconds: int) -> int:
    """One pass over every active tenant."""
    from core.tenancy import list_tenants

    total = 0
    for tenant in await list_tenants():
        if tenant.status == "active":
            total += await relay_tenant(tenant, send, ack_seconds)
    return total


async def run_relay(send: Sender, ack_seconds: int, poll_ms: int,
                    stop: asyncio.Event) -> None:
    """Relay until `stop` is set: at once after a local write, else every `poll_ms`."""
    global _wake
    _wake = asyncio.Event()
    try:
        while not stop.is_set():
            try:
                sent = await relay_once(send, ack_seconds)
            except Exception:  # noqa: BLE001 - a database hiccup must not end the relay
                log.exception("relay pass failed")
                sent = 0
            if sent:
                continue
            _wake.clear()
            try:
                await asyncio.wait_for(_wake.wait(), poll_ms / 1000)
                await asyncio.sleep(0.005)  # let the writer's transaction commit
            except TimeoutError:
                pass
    finally:
        _wake = None


# -- reading, for the UI and the CLI -----------------------------------------------------

def status_of(row: dict[str, Any]) -> str:
    """pending, running, retrying, done or dead."""
    if row["dead_at"]:
        return "dead"
    if row["finished_at"]:
        return "done"
    if row.get("last_error"):
        return "retrying"
    if row["started_at"]:
        return "running"
    return "pending"


async def recent(ctx: Context, status: str | None = None, kind: str | None = None,
                 limit: int = 100) -> list[dict[str, Any]]:
    """The tenant's latest messages, newest first, optionally only dead or unfinished ones."""
    async with tenant_scope(ctx, write=False):
        query = OutboxMessage.select().where(OutboxMessage.tenant_id == ctx.tenant_id)
        if status == "dead":
            query = query.where(OutboxMessage.dead_at.is_not_null())
        elif status == "open":
            query = query.where(OutboxMessage.finished_at.is_null()
                                & OutboxMessage.dead_at.is_null())
        if kind:
            query = query.where(OutboxMessage.kind == kind)
        rows = await query.order_by(OutboxMessage.created_at, ascending=False).limit(
            limit).output(load_json=True).run()
    for row in rows:
        row["status"] = status_of(row)
    return rows


async def get(ctx: Context, message_id: uuid.UUID) -> dict[str, Any] | None:
    async with tenant_scope(ctx, write=False):
        rows = await OutboxMessage.select().where(_this(ctx, message_id)).output(
            load_json=True).run()
    if not rows:
        return None
    rows[0]["status"] = status_of(rows[0])
    return rows[0]


def _collector(into: list[tuple[str, list[str]]]) -> Sender:
    def collect(batches: list[tuple[str, list[str]]]) -> int:
        into.extend(batches)
        return len(batches)

    return collect


async def run_due(tenant: TenantInfo, rounds: int = 50) -> int:
    """Deliver the tenant's due messages in this task, without a broker (tests, one-off
    maintenance). Returns how many deliveries ran; repeats while handlers emit more."""
    from core.kernel import kernel

    ran = 0
    for _ in range(rounds):
        batches: list[tuple[str, list[str]]] = []
        if not await relay_tenant(tenant, _collector(batches),
                                  kernel().settings.event_ack_seconds):
            break
        for tenant_id, chunk in batches:
            await deliver_many(uuid.UUID(tenant_id), [uuid.UUID(m) for m in chunk])
            ran += len(chunk)
    return ran
