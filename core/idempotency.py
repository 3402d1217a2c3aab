"""Idempotency keys, Stripe's semantics: a retried request gets the first answer, never a
second effect.

A client sends `Idempotency-Key: <1–255 visible ASCII characters>` on a route that declares
`opt={"idempotent": True}` (see core.web.idempotency, which calls this module). The key
belongs to the tenant and the caller (`principal`, the user id), so nobody replays another
user's answer. The request's fingerprint (SHA-256 of method, path, query and canonical
body) is stored with it: the same key with other parameters is refused (422).

The life of a key:

1. `begin` claims it: an `in_progress` row inserted in its own short transaction; the
   unique index (tenant_id, principal, key) decides races on both engines
   (`INSERT ... ON CONFLICT DO NOTHING`, then read back who won). A loser whose key is
   `done` gets the stored answer; one whose key is still `in_progress` polls until it is
   done (then replays) or `WAIT_SECONDS` pass (409). An expired key counts as new.
2. The route runs; `complete` stores its answer **inside the route's own transaction**, so
   "the effect is committed" and "the answer is stored" are one fact. A process that dies
   mid-request therefore leaves an `in_progress` row with no effect behind it: after
   `LEASE_SECONDS` a retry may take the key over. The `lock_token` fences the old holder:
   its final update matches no row, and its transaction rolls back.
3. 5xx answers are not stored (`release` deletes the claim) so the client can retry; 4xx
   answers are stored like 2xx (the request was wrong, resending it will not fix it).
4. `purge_expired(ctx)` deletes a tenant's keys past `expires_at` (the scheduler calls it).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from core.db import fetch, is_postgres
from core.errors import Conflict, XindaiError
from core.tables import IdempotencyKey
from core.tenancy import Context, tenant_scope

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, no spaces
WAIT_SECONDS = 10.0  # how long a concurrent duplicate waits for the first request
LEASE_SECONDS = 120.0  # after this an unfinished claim is presumed dead and may be taken over
POLL_FIRST, POLL_MAX = 0.02, 0.25  # seconds between looks at a running key (doubling)
IGNORED_QUERY = frozenset({"lang"})  # changes the language of the answer, not the request
# Headers that belong to one transmission, not to the answer: never stored nor replayed.
TRANSIENT_HEADERS = frozenset({"content-length", "date", "x-request-id", "set-cookie",
                               "idempotent-replayed", "transfer-encoding", "connection"})
_ENTITY, _FIELD = "idempotency_key", "response"


class KeyReused(XindaiError):
    """The key was first used with other parameters (Stripe answers this with an error too)."""

    status = 422
    code = "idempotency_key_reused"


class Fenced(Exception):
    """Another request took the key over after this one's lease ran out."""


@dataclass(frozen=True)
class Answer:
    """A stored (or to be stored) HTTP answer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    """This request holds the key: it runs, then completes or releases the claim."""

    id: uuid.UUID
    token: str
    key: str


def now() -> datetime:
    return datetime.now(UTC)


def ttl() -> timedelta:
    from core.kernel import kernel

    return timedelta(hours=kernel().settings.idempotency_ttl_hours)


def check_key(raw: str | None) -> str:
    """The header's value, or a 400 that names the header and its rules."""
    if raw is None or raw == "":
        raise XindaiError("idempotency_key_missing")
    if not KEY_RE.fullmatch(raw):
        raise XindaiError("idempotency_key_invalid")
    return raw


def canonical_body(body: bytes) -> bytes:
    """JSON bodies in one canonical form (key order and spacing do not make a new request);
    anything else byte for byte."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """SHA-256 over method, path, the sorted query (without `lang`) and the canonical body."""
    params = sorted((k, v) for k, v in parse_qsl(query, keep_blank_values=True)
                    if k not in IGNORED_QUERY)
    h = hashlib.sha256()
    for part in (method.upper(), path, json.dumps(params, ensure_ascii=False)):
        h.update(part.encode())
        h.update(b"\n")
    h.update(canonical_body(body))
    return h.hexdigest()


def _principal(ctx: Context) -> str:
    if not ctx.user_id:
        raise RuntimeError("idempotent routes need a signed-in caller")
    return str(ctx.user_id)


async def _row(ctx: Context, key: str) -> dict[str, Any] | None:
    rows = await IdempotencyKey.select().where(
        IdempotencyKey.tenant_id == ctx.tenant_id,
        IdempotencyKey.principal == _principal(ctx), IdempotencyKey.key == key,
    ).output(load_json=True).run()
    return rows[0] if rows else None


async def _answer(ctx: Context, row: dict[str, Any]) -> Answer:
    from core.crypto import tenant_keys
    from core.kernel import kernel

    keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
    body = base64.b64decode(keys.decrypt(_ENTITY, _FIELD, row["id"], row["response_body"]))
    return Answer(row["response_status"], [(k, v) for k, v in row["response_headers"]], body)


def _usable(row: dict[str, Any] | None, at: datetime) -> dict[str, Any] | None:
    return row if row is not None and row["expires_at"] > at else None


async def _look(ctx: Context, key: str, fp: str) -> Answer | str:
    """Read-only look at the key: its stored answer, or `free` / `running` / `stale`."""
    at = now()
    async with tenant_scope(ctx, write=False):
        row = _usable(await _row(ctx, key), at)
        if row is None:
            return "free"
        if row["fingerprint"] != fp:
            raise KeyReused(key=key)
        if row["status"] == "done":
            return await _answer(ctx, row)
    return "stale" if row["locked_at"] < at - timedelta(seconds=LEASE_SECONDS) else "running"


async def _no_flush_wait() -> None:
    """PostgreSQL: commit the claim without waiting for its WAL flush. Safe: a claim lost in
    a crash guards nothing, because the request's own (synchronous) commit flushes the WAL
    up to and including the claim before any effect of the request can become durable."""
    engine = IdempotencyKey._meta.db
    if is_postgres(engine):
        await fetch(engine, "SET LOCAL synchronous_commit = off")


async def _claim(ctx: Context, key: str, method: str, path: str,
                 fp: str) -> Claim | Answer | None:
    """Try to take the key in one short transaction: the claim, the stored answer, or None
    while another request holds it."""
    at, token = now(), secrets.token_hex(16)
    async with tenant_scope(ctx):
        await _no_flush_wait()
        row = None
        for _ in range(3):
            new_id = uuid.uuid4()
            won = await IdempotencyKey.insert(IdempotencyKey(
                id=new_id, tenant_id=ctx.tenant_id, principal=_principal(ctx), key=key,
                method=method.upper(), path=path, fingerprint=fp, status="in_progress",
                lock_token=token, locked_at=at, response_headers=[], created_at=at,
                expires_at=at + ttl(),
            )).on_conflict(action="DO NOTHING").returning(IdempotencyKey.id).run()
            if won:  # the unique index (tenant_id, principal, key) let this one in
                return Claim(new_id, token, key)
            row = await _row(ctx, key)
            if row is not None and row["expires_at"] <= at:  # expired: the key is new again
                await IdempotencyKey.delete().where(IdempotencyKey.tenant_id == ctx.tenant_id,
                                                    IdempotencyKey.id == row["id"]).run()
                row = None
            if row is not None:
                break
        if row is None:
            return None
        if row["fingerprint"] != fp:
            raise KeyReused(key=key)
        if row["status"] == "done":
            return await _answer(ctx, row)
        if row["locked_at"] < at - timedelta(seconds=LEASE_SECONDS):  # its holder died
            taken = await IdempotencyKey.update({
                IdempotencyKey.lock_token: token, IdempotencyKey.locked_at: at,
            }).where(IdempotencyKey.tenant_id == ctx.tenant_id, IdempotencyKey.id == row["id"],
                     IdempotencyKey.lock_token == row["lock_token"],
                     IdempotencyKey.status == "in_progress",
                     ).returning(IdempotencyKey.id).run()
            if taken:
                return Claim(row["id"], token, key)
    return None


async def begin(ctx: Context, key: str, method: str, path: str, fp: str) -> Claim | Answer:
    """Claim `key` for this request, or return the answer stored for it.

    A duplicate that arrives while the first request runs waits for it (polling, at most
    `WAIT_SECONDS`), then replays its answer; if it is still running, 409. If the first
    request failed with a 5xx (its claim released), the duplicate claims the key itself.
    """
    deadline = time.monotonic() + WAIT_SECONDS
    delay = POLL_FIRST
    while True:
        # Look first, read-only: on SQLite a claim attempt would queue behind the running
        # request's write transaction instead of polling within the time limit.
        seen = await _look(ctx, key, fp)
        if isinstance(seen, Answer):
            return seen
        if seen != "running":  # free, expired or stale: try to claim it
            outcome = await _claim(ctx, key, method, path, fp)
            if outcome is not None:
                return outcome
        if time.monotonic() >= deadline:
            raise Conflict("idempotency_in_progress", key=key)
        await asyncio.sleep(delay)
        delay = min(delay * 2, POLL_MAX)


async def complete(ctx: Context, claim: Claim, answer: Answer) -> None:
    """Store the answer. Call it inside the request's transaction so it commits with the
    request's writes; raises `Fenced` (roll back!) when the claim was taken over."""
    from core.crypto import tenant_keys
    from core.kernel import kernel

    headers = [[k, v] for k, v in answer.headers if k.lower() not in TRANSIENT_HEADERS]
    async with tenant_scope(ctx):
        keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
        sealed = keys.encrypt(_ENTITY, _FIELD, claim.id, base64.b64encode(answer.body).decode())
        done = await IdempotencyKey.update({
            IdempotencyKey.status: "done", IdempotencyKey.response_status: answer.status,
            IdempotencyKey.response_headers: headers, IdempotencyKey.response_body: sealed,
        }).where(IdempotencyKey.tenant_id == ctx.tenant_id, IdempotencyKey.id == claim.id,
                 IdempotencyKey.lock_token == claim.token,
                 IdempotencyKey.status == "in_progress",
                 ).returning(IdempotencyKey.id).run()
    if not done:
        raise Fenced(claim.key)


async def release(ctx: Context, claim: Claim) -> None:
    """Forget the claim (the request failed with a 5xx or never answered): retry allowed."""
    async with tenant_scope(ctx):
        await IdempotencyKey.delete().where(IdempotencyKey.tenant_id == ctx.tenant_id,
                                            IdempotencyKey.id == claim.id,
                                            IdempotencyKey.lock_token == claim.token).run()


async def purge_expired(ctx: Context) -> int:
    """Delete ctx's tenant's keys past their expiry; returns how many. For the scheduler."""
    at = now()
    async with tenant_scope(ctx):
        gone = await IdempotencyKey.delete().where(
            IdempotencyKey.tenant_id == ctx.tenant_id, IdempotencyKey.expires_at <= at,
        ).returning(IdempotencyKey.id).run()
    return len(gone)
