"""The tamper-evident audit log: one hash chain per tenant, appended in the writer's
transaction.

`hash = SHA-256(prev_hash || canonical JSON of the entry)`, the first `prev_hash` being 64
zeros. Appends lock the tenant's chain head (`audit_head`), so concurrent writers queue and
the chain never forks. Secret values never enter a diff in clear: they are replaced by a
keyed hash (HMAC with the tenant's key), which shows that a value changed without showing it.
The app role may only INSERT and SELECT entries; triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from core.audit_chain import (
    FAST_ERRORS,
    GENESIS,
    ChainChecker,
    Verdict,
    canonical,
    chain_hash,
    check_chain,
    decode,
    encode_canonical,
    hashed_fields,
)
from core.db import insert_rows
from core.tables import AuditEntry, AuditHead
from core.tenancy import Context, tenant_scope

__all__ = ["GENESIS", "ChainChecker", "Verdict", "append", "append_many", "canonical",
           "chain_hash", "check_chain", "hashed_fields", "secret_digest", "verify_tenant"]

BATCH = 5000


async def secret_digest(ctx: Context, entity: str, field: str, value: Any) -> str:
    """A keyed hash standing in for a secret value in a diff."""
    from core.crypto import tenant_keys
    from core.kernel import kernel

    return digest_with(await tenant_keys(kernel().master_key, ctx.tenant_id), entity, field,
                       value)


def digest_with(keys: Any, entity: str, field: str, value: Any) -> str:
    """`secret_digest` with the tenant's keys at hand (bulk writers: no await a value)."""
    key = hashlib.sha256(b"audit|" + keys.keys[min(keys.keys)]).digest()
    mac = hmac.new(key, f"{entity}|{field}|{value}".encode(), hashlib.sha256).hexdigest()
    return f"hmac:{mac[:32]}"


async def _locked_head(ctx: Context) -> dict[str, Any]:
    """The tenant's chain head, locked until the transaction ends (created when missing)."""
    query = AuditHead.select().where(AuditHead.tenant_id == ctx.tenant_id)
    if AuditHead._meta.db.engine_type == "postgres":
        query = query.lock_rows("UPDATE")
    heads = await query.run()
    if not heads:
        await AuditHead.insert(AuditHead(tenant_id=ctx.tenant_id, seq=0, hash=GENESIS)).run()
        heads = await query.run()
    return heads[0]


def _entry(ctx: Context, seq: int, prev_hash: str, at: str, action: str, entity: str | None,
           record_id: Any, diff: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "tenant_id": str(ctx.tenant_id), "seq": seq, "at": at, "user_id": ctx.user_id,
        "username": (ctx.username or "")[:63] or None, "roles": list(ctx.roles),
        "ip": ctx.ip, "user_agent": (ctx.user_agent or "")[:300] or None,
        "request_id": ctx.request_id, "action": action[:40], "entity": entity,
        "record_id": None if record_id is None else str(record_id),
        "diff": diff or {}, "prev_hash": prev_hash,
    }


def _row(ctx: Context, entry: dict[str, Any], digest: str) -> dict[str, Any]:
    return {**entry, "at": datetime.fromisoformat(entry["at"]), "tenant_id": ctx.tenant_id,
            "hash": digest}


async def append(ctx: Context, action: str, entity: str | None = None,
                 record_id: Any = None, diff: dict[str, Any] | None = None) -> int:
    """Append one entry to ctx's tenant chain, in the current tenant transaction."""
    return await append_many(ctx, [(action, entity, record_id, diff)])


AuditItem = tuple[str, "str | None", Any, "dict[str, Any] | None"]


async def append_many(ctx: Context, items: Sequence[AuditItem]) -> int:
    """Append entries (action, entity, record id, diff) in order, in the current tenant
    transaction: the head is locked and moved once, the rows go in one prepared INSERT
    (bulk writers such as imports). Returns the last seq."""
    async with tenant_scope(ctx):
        head = await _locked_head(ctx)
        seq, prev = head["seq"], head["hash"]
        if not items:
            return seq
        at = datetime.now(UTC).isoformat()
        rows = []
        for action, entity, record_id, diff in items:
            seq += 1
            entry = _entry(ctx, seq, prev, at, action, entity, record_id, diff)
            prev = chain_hash(prev, entry)
            rows.append(_row(ctx, entry, prev))
        await insert_rows(AuditEntry, rows)
        await AuditHead.update({AuditHead.seq: seq, AuditHead.hash: prev}).where(
            AuditHead.tenant_id == ctx.tenant_id).run()
        return seq


# The live check reads only the hashed columns (tenant_id is the WHERE clause's), as tuples
# in this order, a batch at a time by keyset (seq), the next batch being fetched while the
# current one is hashed in a worker thread.
_COLUMNS = ("seq", "prev_hash", "hash", "at", "user_id", "username", "roles", "ip",
            "user_agent", "request_id", "action", "entity", "record_id", "diff")
_SELECT = (f"SELECT {', '.join(_COLUMNS)} FROM audit_entry WHERE tenant_id = {{}} "
           f"AND seq > {{}} ORDER BY seq LIMIT {{}}")
Row = Sequence[Any]


def _row_body(tenant_id: str) -> Callable[[Row], bytes]:
    """The canonical bytes of a stored row, as `canonical(hashed_fields(row))` would give
    them for the row piccolo loads (JSON columns through json.loads)."""

    def body(r: Row) -> bytes:
        at = r[3]
        if isinstance(at, datetime):
            at = at.astimezone(UTC).isoformat()
        try:
            return encode_canonical({
                "action": r[10], "at": at, "diff": None if r[13] is None else decode(r[13]),
                "entity": r[11], "ip": r[7], "prev_hash": r[1], "record_id": r[12],
                "request_id": r[9], "roles": list(decode(r[6])), "seq": int(r[0]),
                "tenant_id": tenant_id, "user_agent": r[8], "user_id": r[4],
                "username": r[5]})
        except FAST_ERRORS:  # what msgspec cannot read goes the way it always went
            row = dict(zip(_COLUMNS, r, strict=True), tenant_id=tenant_id)
            for name in ("roles", "diff"):
                if row[name] is not None:
                    row[name] = json.loads(row[name])
            return canonical(hashed_fields(row))

    return body


def _feed_batch(checker: ChainChecker, rows: list[Row], body: Callable[[Row], bytes]) -> bool:
    feed = checker.feed_link
    for r in rows:
        if not feed(r[0], r[1], r[2], r, body):
            return False
    return True


def _batch_fetcher(ctx: Context) -> Callable[[int], Awaitable[list[Row]]]:
    """Fetch the entries after a seq, as tuples, on the current tenant transaction's
    connection (piccolo's dict rows and JSON loading cost more than the hashing)."""
    from core.db import is_postgres

    engine = AuditEntry._meta.db
    connection = engine.current_transaction.get().connection
    if is_postgres(engine):
        sql = _SELECT.format("$1", "$2", "$3")

        async def fetch_pg(after: int) -> list[Row]:
            return await connection.fetch(sql, ctx.tenant_id, after, BATCH)

        return fetch_pg
    sql = _SELECT.format("?", "?", "?")

    async def fetch_sqlite(after: int) -> list[Row]:
        cursor = await connection.execute(sql, (ctx.tenant_id, after, BATCH))
        try:
            cursor.row_factory = None  # tuples; the column converters still apply
            return await cursor.fetchall()
        finally:
            await cursor.close()

    return fetch_sqlite


async def _scan(checker: ChainChecker, fetch: Callable[[int], Awaitable[list[Row]]],
                body: Callable[[Row], bytes], after: int) -> None:
    """Feed every entry after `after` to `checker` until it breaks: batch n+1 is read
    while batch n is hashed, so no more than two batches are held at once."""
    batch = await fetch(after)
    while batch:
        ahead = asyncio.ensure_future(fetch(batch[-1][0])) if len(batch) == BATCH else None
        try:
            ok = await asyncio.to_thread(_feed_batch, checker, batch, body)
        finally:
            nxt = await ahead if ahead is not None else []
        if not ok:
            return
        batch = nxt


async def verify_tenant(ctx: Context) -> Verdict:
    """Check the live chain of ctx's tenant, streaming it in batches, from its base (the
    signed checkpoint it was pruned to, or the beginning)."""
    async with tenant_scope(ctx, write=False):
        heads = await AuditHead.select().where(AuditHead.tenant_id == ctx.tenant_id).run()
        base_seq, base_hash = (heads[0]["base_seq"], heads[0]["base_hash"]) if heads \
            else (0, GENESIS)
        if base_seq and not await _base_is_signed(ctx, base_seq, base_hash):
            return Verdict(False, 0, base_seq, "unsigned_base")
    checker = ChainChecker(base_hash, base_seq + 1)
    async with tenant_scope(ctx, write=False):
        await _scan(checker, _batch_fetcher(ctx), _row_body(str(ctx.tenant_id)), base_seq)
        heads = await AuditHead.select().where(AuditHead.tenant_id == ctx.tenant_id).run()
        verdict = checker.verdict((heads[0]["seq"], heads[0]["hash"]) if heads
                                  else (0, GENESIS))
        if verdict.ok:  # a chain rewritten with its head still contradicts signed checkpoints
            verdict = await _against_checkpoints(ctx, base_seq, verdict)
    return verdict


async def _against_checkpoints(ctx: Context, base_seq: int, verdict: Verdict) -> Verdict:
    from core.tables import AuditCheckpoint

    checkpoints = await AuditCheckpoint.select().where(
        AuditCheckpoint.tenant_id == ctx.tenant_id, AuditCheckpoint.seq > base_seq
    ).order_by(AuditCheckpoint.seq).run()
    for cp in checkpoints:
        if not cp["seq"]:
            continue
        if not await _base_is_signed(ctx, cp["seq"], cp["hash"]):
            return Verdict(False, verdict.checked, cp["seq"], "checkpoint signature invalid")
        rows = await AuditEntry.select(AuditEntry.hash).where(
            AuditEntry.tenant_id == ctx.tenant_id, AuditEntry.seq == cp["seq"]).run()
        if not rows or rows[0]["hash"] != cp["hash"]:
            return Verdict(False, verdict.checked, cp["seq"], "differs from its checkpoint")
    return verdict


async def _base_is_signed(ctx: Context, seq: int, head_hash: str) -> bool:
    """Is the pruned chain's base a checkpoint carrying a valid signature (by the current
    signing key or a retired one)?"""
    import base64

    from core.audit_export import keyring
    from core.audit_verify import _public, checkpoint_message
    from core.tables import AuditCheckpoint

    rows = await AuditCheckpoint.select().where(
        AuditCheckpoint.tenant_id == ctx.tenant_id, AuditCheckpoint.seq == seq,
        AuditCheckpoint.hash == head_hash).run()
    ring = keyring()
    for row in rows:
        if row["key_id"] not in ring:
            continue
        try:
            _public(ring[row["key_id"]]).verify(
                base64.b64decode(row["signature"]), checkpoint_message(
                    str(ctx.tenant_id), seq, head_hash, row["at"].astimezone(UTC).isoformat()))
            return True
        except Exception:  # noqa: BLE001 - any failure means "not signed"
            continue
    return False
