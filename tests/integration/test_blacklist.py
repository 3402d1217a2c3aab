"""The blacklist on both engines: entries keep no clear value, block captures on every
channel with an audited refusal, answer the party_screen provider (by identifiers or by
customer id), need blacklist.manage and a reason."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import Forbidden, ValidationFailed
from core.tables import AuditEntry
from core.tenancy import tenant_scope
from plugins.crm import blacklist, leads
from plugins.crm.lead_tables import BlacklistEntry, Lead
from tests.conftest import login


async def test_blacklist_blocks_capture_and_screens(kernel: Any, new_tenant: Any,
                                                   client: Any) -> None:
    from core.kernel import kernel as current

    ctx = await new_tenant()
    with pytest.raises(ValidationFailed) as exc:
        await blacklist.add(ctx, "mobile", "13512345678", "  ")
    assert exc.value.errors[0].field == "reason"
    with pytest.raises(ValidationFailed) as exc:
        await blacklist.add(ctx, "mobile", "1351234", "欺诈")
    assert exc.value.errors[0].field == "mobile"
    entry = await blacklist.add(ctx, "mobile", "13512345678", "伪造材料")
    assert entry["masked"] == "135****5678"
    async with tenant_scope(ctx, write=False):
        stored = await BlacklistEntry.select().where(BlacklistEntry.tenant_id == ctx.tenant_id
                                                     ).run()
    assert "13512345678" not in str(stored)
    # capture through the API: refused, nothing written, audited
    h = await login(client, ctx.tenant.slug)
    r = await client.post("/api/v1/leads", headers=h, json={
        "kind": "individual", "name": "黑名单", "mobile": "+86 135 1234 5678"})
    assert r.status_code == 422 and r.json()["code"] == "blacklisted", r.text
    async with tenant_scope(ctx, write=False):
        assert not await Lead.exists().where(Lead.tenant_id == ctx.tenant_id,
                                             Lead.name == "黑名单").run()
        refusals = await AuditEntry.select(AuditEntry.diff).where(
            AuditEntry.tenant_id == ctx.tenant_id,
            AuditEntry.action == "blacklist.refused").output(load_json=True).run()
    assert refusals and refusals[-1]["diff"]["entry_id"] == entry["id"]
    # the provider other plugins use
    screen = current().provider("party_screen", ctx.tenant)
    assert (await screen.check(ctx, mobile="13512345678"))["entry_id"] == entry["id"]
    assert await screen.check(ctx, mobile="13600000000") is None
    # by customer id: the pack's individual customer, after blacklisting her resident ID
    from core import records

    page = await records.list_records(ctx, "customer", {"kind": "individual"})
    cid = page.items[0]["id"]
    assert await screen.check(ctx, customer_id=cid) is None
    await blacklist.add(ctx, "resident_id", "11010519491231002X", "法院失信被执行人")
    hit = await screen.check(ctx, customer_id=cid)
    assert hit["matched"] == "resident_id" and hit["reason"] == "法院失信被执行人"
    # lifting the entry clears the mobile
    await blacklist.remove(ctx, entry["id"])
    lead, _ = await leads.capture(ctx, {"kind": "individual", "name": "已解除",
                                        "mobile": "13512345678"})
    assert lead["name"] == "已解除"


async def test_blacklist_needs_permission(kernel: Any, new_tenant: Any) -> None:
    from dataclasses import replace

    from core.access import Access

    ctx = await new_tenant()
    officer = replace(ctx, access=Access(permissions=frozenset({"lead.read", "lead.create"})))
    with pytest.raises(Forbidden):
        await blacklist.add(officer, "mobile", "13512345678", "x")


async def test_ui_blacklist_page(kernel: Any, new_tenant: Any, client: Any) -> None:
    from tests.integration.test_ui_pages import field_error, sign_in

    ctx = await new_tenant()
    csrf = await sign_in(client, ctx.tenant.slug)
    r = await client.post("/crm/blacklist", data={"_csrf": csrf, "kind": "resident_id",
                                                  "value": "110105194912310021", "reason": "x"})
    assert r.status_code == 422 and "校验位" in field_error(r.text, "value")
    r = await client.post("/crm/blacklist", data={"_csrf": csrf, "kind": "credit_code",
                                                  "value": "91350100M000100Y43",
                                                  "reason": "空壳公司"})
    assert r.status_code == 303
    r = await client.get("/crm/blacklist")
    assert "**************0Y43" in r.text and "91350100M000100Y43" not in r.text


async def test_the_screen_answers_outside_any_tenant_scope(kernel: Any,
                                                           new_tenant: Any) -> None:
    """An importer or a job asks the provider with no transaction open: the tenant's keys
    are still read under its own row-level security (PostgreSQL refused them before)."""
    from core import crypto
    from core.kernel import kernel as current

    ctx = await new_tenant()
    await blacklist.add(ctx, "mobile", "13900000009", "提供虚假材料")
    crypto._cache.pop(ctx.tenant_id, None)  # no cached keys: they must be read now
    screen = current().provider("party_screen", ctx.tenant)
    hit = await screen.check(ctx, mobile="13900000009")
    assert hit is not None and hit["matched"] == "mobile"
    assert await screen.check(ctx, mobile="13900000008") is None
