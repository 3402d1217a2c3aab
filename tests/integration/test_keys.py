"""Key rotation, re-encryption under load, master-key re-wrap and crypto-shredding."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from core import keys, records
from core.crypto import DecryptionError, forget_cached_keys, tenant_keys, token_version
from core.tenancy import tenant_scope


def person(i: int) -> dict[str, str]:
    from core.validators import resident_id_check_char

    body = f"1401051988{(i % 12) + 1:02d}{(i % 28) + 1:02d}{i % 1000:03d}"
    return {"kind": "individual", "name": f"轮换{i}", "resident_id":
            body + resident_id_check_char(body), "mobile": f"136{i:08d}", "region": "140105"}


async def sealed_versions(ctx: Any) -> set[int]:
    entity = await records.entity_for(ctx, "customer")
    t = entity.table
    async with tenant_scope(ctx, write=False):
        rows = await t.select(t.sealed).where(t.tenant_id == ctx.tenant_id) \
            .output(load_json=True).run()
    return {token_version(tok) for r in rows for tok in (r["sealed"] or {}).values()}


async def test_rotation_under_load_loses_nothing(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    made = [await records.create(ctx, "customer", person(i)) for i in range(40)]
    assert await sealed_versions(ctx) == {1}
    assert await keys.rotate(ctx) == 2
    fresh = await records.create(ctx, "customer", person(100))  # new writes: version 2
    status = await keys.status(ctx)
    assert status.active == 2 and status.stale["customer"] == 40 and not status.done

    async def writer() -> None:  # keeps changing mobiles while re-encryption runs
        for i, rec in enumerate(made[:20]):
            await records.update(ctx, "customer", rec["id"], {"mobile": f"135{i:08d}"})
            await asyncio.sleep(0)

    changed, _ = await asyncio.gather(keys.reencrypt(ctx), writer())
    assert changed >= 20
    assert await sealed_versions(ctx) == {2}
    assert (await keys.status(ctx)).done
    for i, rec in enumerate(made):
        full = await records.get(ctx, "customer", rec["id"], reveal=True)
        assert full["mobile"] == (f"135{i:08d}" if i < 20 else person(i)["mobile"])
        assert full["resident_id"] == person(i)["resident_id"]
    assert (await records.get(ctx, "customer", fresh["id"], reveal=True))["name"] == "轮换100"
    found = await records.list_records(ctx, "customer", {"resident_id": person(30)["resident_id"]})
    assert [r["id"] for r in found.items] == [made[30]["id"]]  # blind index still works


async def test_master_key_rewrap_changes_only_the_wrapping(kernel: Any, new_tenant: Any
                                                            ) -> None:
    ctx = await new_tenant()
    before = await records.get(ctx, "customer",
                               (await records.list_records(ctx, "customer")).items[0]["id"],
                               reveal=True)
    old, new = kernel.master_key, os.urandom(32)
    assert await keys.rewrap_all(old, new, [ctx.tenant]) >= 1
    try:
        async with tenant_scope(ctx):
            with pytest.raises(DecryptionError):
                await tenant_keys(old, ctx.tenant_id)
            forget_cached_keys()
            await tenant_keys(new, ctx.tenant_id)
    finally:
        forget_cached_keys()
        await keys.rewrap_all(new, old, [ctx.tenant])
    after = await records.get(ctx, "customer", before["id"], reveal=True)
    assert after == before


async def test_shredding_makes_a_tenant_unreadable(new_tenant: Any) -> None:
    from core.errors import XindaiError

    ctx = await new_tenant()
    rec = (await records.list_records(ctx, "customer")).items[0]
    with pytest.raises(XindaiError):
        await keys.shred(ctx, "wrong-slug")
    assert await keys.shred(ctx, ctx.tenant.slug) >= 1
    masked = await records.get(ctx, "customer", rec["id"])  # masked forms still show
    assert "*" in masked["mobile"]
    with pytest.raises(DecryptionError):
        await records.get(ctx, "customer", rec["id"], reveal=True)
