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

import uuid
from datetime import UTC, datetime
from typing import Any

from core import audit
from core.access import require
from core.crypto import TenantKeys
from core.db import insert_rows
from core.events import emit_many
from core.records import _audit_diff, _check_references, check_writable, new_row
from core.registry import EntityType
from core.tables import BlindIndex
from core.tenancy import Context, scoped_tenant, tenant_scope


async def create_many(ctx: Context, entity: EntityType, batch: list[dict[str, Any]],
                      keys: TenantKeys, extra: dict[str, Any] | None = None
                      ) -> list[uuid.UUID]:
    """Insert records from values already validated by `records.validate` (and checked for
    duplicates by the caller); returns their ids in order. Must run inside the caller's
    `tenant_scope` (the caller decides where the transaction ends). `extra` is added to
    every event payload (e.g. the import id)."""
    if scoped_tenant() != ctx.tenant_id:
        raise RuntimeError("create_many runs inside the caller's tenant_scope")
    require(ctx, f"{entity.name}.create")
    if not batch:
        return []
    async with tenant_scope(ctx):
        fields = {key for values in batch for key in values}
        check_writable(ctx, entity, dict.fromkeys(fields))
        refs = [f.key for f in entity.fields if f.key in fields and f.type == "reference"]
        if refs:
            for values in batch:
                await _check_references(ctx, entity, values)
        now = datetime.now(UTC)
        rows, digests = [], []
        for values in batch:
            row, bidx = new_row(ctx, entity, values, keys, now=now)
            rows.append(row)
            digests.extend({"tenant_id": ctx.tenant_id, "entity": entity.name, "field": key,
                            "digest": digest, "record_id": row["id"]}
                           for key, digest in bidx if digest is not None)
        await insert_rows(entity.table, rows)
        await insert_rows(BlindIndex, digests)
        items = [("create", entity.name, row["id"], await _audit_diff(ctx, entity, {}, values))
                 for row, values in zip(rows, batch, strict=True)]
        await audit.append_many(ctx, items)
        await emit_many(ctx, f"{entity.name}.created", [
            {"entity": entity.name, "id": str(row["id"]), **(extra or {})} for row in rows])
        return [row["id"] for row in rows]
