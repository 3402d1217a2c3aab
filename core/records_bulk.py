"""Bulk create for registry entities: the one write path, a batch at a time.

`create_many` is `core.records.create` for thousands of records: the same permission and
field-policy checks, the same validation (`records.validate`, run by the caller row by row
so it can report each row), the same storage (`records.new_row`: sealed secrets, masked
forms, blind indexes), one audit entry per record and one `<entity>.created` event per
record. What differs is only the shape of the SQL: prepared INSERTs with many rows
(`db.insert_rows`), one chain-head lock
for the audit entries and one bulk outbox write, all in the caller's tenant transaction, so
a batch (or a whole import spanning many batches) commits or rolls back as one.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core import audit
from core.access import require
from core.crypto import TenantKeys
from core.db import insert_rows
from core.events import emit_many
from core.records import _check_references, audit_diff, check_writable, new_row
from core.registry import EntityType
from core.tables import BlindIndex
from core.tenancy import Context, scoped_tenant, tenant_scope


@dataclass
class Prepared:
    """A batch ready to write: rows, blind-index rows, audit items and event payloads."""

    ids: list[uuid.UUID]
    rows: list[dict[str, Any]]
    digests: list[dict[str, Any]]
    audit: list[audit.AuditItem]
    events: list[dict[str, Any]]


async def create_many(ctx: Context, entity: EntityType, batch: list[dict[str, Any]],
                      keys: TenantKeys, extra: dict[str, Any] | None = None
                      ) -> list[uuid.UUID]:
    """Insert records from values already validated by `records.validate` (and checked for
    duplicates by the caller); returns their ids in order. Must run inside the caller's
    `tenant_scope` (the caller decides where the transaction ends). `extra` is added to
    every event payload (e.g. the import id)."""
    placer = await entity.bulk_placer(ctx) if entity.bulk_placer else None
    prepared = await prepare(ctx, entity, batch, keys, extra, placer=placer)
    await write(ctx, entity, prepared)
    if placer is not None:
        await placer.finish(ctx)
    return prepared.ids


async def prepare(ctx: Context, entity: EntityType, batch: list[dict[str, Any]],
                  keys: TenantKeys, extra: dict[str, Any] | None = None,
                  yield_every: int = 0, placer: Any = None) -> Prepared:
    """The checks and the CPU work of `create_many` (permission, field policies,
    references, sealing, masked forms, digests, audit diffs) without writing. Besides the
    reference check it sends no query, so it may run while the previous batch's `write`
    is in flight on the same connection; `yield_every` rows it lets that write go on.
    `placer` (the entity's `bulk_placer`) gives each row its owner and system columns."""
    if scoped_tenant() != ctx.tenant_id:
        raise RuntimeError("create_many runs inside the caller's tenant_scope")
    require(ctx, f"{entity.name}.create")
    fields = {key for values in batch for key in values}
    check_writable(ctx, entity, dict.fromkeys(fields))
    if any(f.key in fields and f.type == "reference" for f in entity.fields):
        for values in batch:
            await _check_references(ctx, entity, values)
    now = datetime.now(UTC)
    out = Prepared([], [], [], [], [])
    for n, values in enumerate(batch, start=1):
        owner, system = placer.place(values) if placer is not None else (None, {})
        row, bidx = new_row(ctx, entity, values, keys, owner, now=now)
        row.update(system)
        out.ids.append(row["id"])
        out.rows.append(row)
        out.digests.extend({"tenant_id": ctx.tenant_id, "entity": entity.name, "field": key,
                            "digest": digest, "record_id": row["id"]}
                           for key, digest in bidx if digest is not None)
        out.audit.append(("create", entity.name, row["id"],
                          audit_diff(keys, entity, {}, values)))
        out.events.append({"entity": entity.name, "id": str(row["id"]), **(extra or {})})
        if yield_every and n % yield_every == 0:
            await asyncio.sleep(0)
    return out


async def write(ctx: Context, entity: EntityType, prepared: Prepared) -> None:
    """Write a prepared batch in the caller's tenant transaction."""
    if not prepared.rows:
        return
    async with tenant_scope(ctx):
        await insert_rows(entity.table, prepared.rows)
        await insert_rows(BlindIndex, prepared.digests)
        await audit.append_many(ctx, prepared.audit)
        await emit_many(ctx, f"{entity.name}.created", prepared.events)
