"""Leads on both engines: capture through the generic API (stage, owner, encryption),
duplicates refused with their matches (409) or flagged, merge, conversion to a customer,
stage changes audited, the pool sweep and claims."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core import records
from core.errors import Conflict, ValidationFailed
from core.tables import AuditEntry
from core.tenancy import tenant_scope
from plugins.crm import dedupe, leads, pool
from plugins.crm.lead_tables import Lead
from tests.conftest import login


def mobile() -> str:
    return "139" + str(uuid.uuid4().int)[:8]


async def audit_actions(ctx: Any, record_id: str | None = None) -> list[str]:
    async with tenant_scope(ctx, write=False):
        where = [AuditEntry.tenant_id == ctx.tenant_id]
        if record_id:
            where.append(AuditEntry.record_id == record_id)
        rows = await AuditEntry.select(AuditEntry.action).where(*where).order_by(
            AuditEntry.seq).run()
    return [r["action"] for r in rows]


async def test_api_capture_duplicates_and_flag(kernel: Any, new_tenant: Any, client: Any) -> None:
    ctx = await new_tenant()
    h = await login(client, ctx.tenant.slug)
    m = mobile()
    r = await client.post("/api/v1/leads", headers=h, json={
        "kind": "individual", "name": "赵六", "mobile": m, "region": "140105",
        "source": "api"})
    assert r.status_code == 201, r.text
    lead = r.json()
    assert lead["stage"] == "new" and lead["mobile"].startswith(m[:3]) and "*" in lead["mobile"]
    async with tenant_scope(ctx, write=False):
        row = (await Lead.select().where(Lead.id == uuid.UUID(lead["id"])).output(
            load_json=True).run())[0]
    assert m not in str(row["sealed"])  # encrypted at rest
    # the same mobile again: 409 with the match
    r = await client.post("/api/v1/leads", headers=h, json={
        "kind": "individual", "name": "别人", "mobile": m})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "lead_duplicate"
    assert {"entity": "lead", "id": lead["id"], "matched": "mobile", "name": "赵*"} in \
        body["duplicates"]
    # the customer of the small pack: same resident ID across entities
    r = await client.post("/api/v1/leads", headers=h, json={
        "kind": "individual", "name": "王小明X", "resident_id": "11010519491231002X"})
    assert r.status_code == 409 and r.json()["duplicates"][0]["entity"] == "customer"
    # similar name: same normalised name and region
    r = await client.post("/api/v1/leads", headers=h, json={
        "kind": "individual", "name": " 赵 六", "region": "140105"})
    assert r.status_code == 409 and r.json()["duplicates"][0]["matched"] == "name"
    # capture with on_duplicate=flag stores it flagged
    r = await client.post("/api/v1/crm/leads/capture", headers=h, json={
        "lead": {"kind": "individual", "name": "赵六", "mobile": m}, "on_duplicate": "flag"})
    assert r.status_code == 201, r.text
    assert r.json()["lead"]["suspected_duplicate"] is True
    assert r.json()["duplicates"][0]["id"] == lead["id"]
    # malformed mobile: 422 naming the field, nothing written
    async with tenant_scope(ctx, write=False):
        before = await Lead.count().where(Lead.tenant_id == ctx.tenant_id).run()
    r = await client.post("/api/v1/leads", headers=h, json={
        "kind": "individual", "name": "钱七", "mobile": "12345"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "mobile"
    async with tenant_scope(ctx, write=False):
        assert await Lead.count().where(Lead.tenant_id == ctx.tenant_id).run() == before


async def test_bulk_find_duplicates(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()
    m = mobile()
    await leads.capture(ctx, {"kind": "company", "name": "测试商贸", "mobile": m,
                              "credit_code": "91350100M000100Y43"})
    rows = [
        {"name": "甲", "mobile": m},  # the stored lead by mobile
        {"name": "乙", "credit_code": "91110000600037341L"},  # the pack's company customer
        {"name": "丙", "mobile": "13700000001"},
        {"name": "丁", "mobile": "13700000001"},  # duplicates row 2 of the batch
        {"name": "戊", "mobile": "not a mobile"},
    ]
    found = await dedupe.find_duplicates(ctx, "lead", rows)
    assert found[0][0]["matched"] == "mobile" and found[0][0]["entity"] == "lead"
    assert found[1][0] == {"entity": "customer", "id": found[1][0]["id"],
                           "matched": "credit_code", "name": "太" + "*" * 10}
    assert 2 not in found and found[3] == [{"entity": "lead", "row": 2, "matched": "mobile"}]
    assert 4 not in found


async def test_merge_fills_and_marks(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()
    m = mobile()
    keep, _ = await leads.capture(ctx, {"kind": "individual", "name": "孙八", "mobile": m})
    drop, matches = await leads.capture(ctx, {
        "kind": "individual", "name": "孙八", "mobile": m, "resident_id": "110105199003070017",
        "product_interest": "XF01"}, on_duplicate="flag")
    assert matches and drop["suspected_duplicate"]
    kept = await dedupe.merge(ctx, keep["id"], drop["id"])
    assert kept["product_interest"] == "XF01" and kept["resident_id"].endswith("0017")
    gone = await records.get(ctx, "lead", drop["id"])
    assert gone["merged_into_id"] == keep["id"]
    assert "lead.merge" in await audit_actions(ctx, keep["id"])
    with pytest.raises(Conflict):
        await dedupe.merge(ctx, keep["id"], drop["id"])
    # merged-away leads are no longer duplicates
    assert all(x.get("id") != drop["id"] for x in
               (await dedupe.find_duplicates(ctx, "lead", [{"mobile": m}]))[0])


async def test_stage_and_conversion(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()
    lead, _ = await leads.capture(ctx, {"kind": "individual", "name": "周九", "mobile": mobile(),
                                        "resident_id": "110105198001010032",
                                        "region": "140105", "source": "referral"})
    with pytest.raises(ValidationFailed):
        await leads.set_stage(ctx, lead["id"], "nonsense")
    moved = await leads.set_stage(ctx, lead["id"], "contacted")
    assert moved["stage"] == "contacted"
    out = await leads.convert(ctx, lead["id"])
    customer = await records.get(ctx, "customer", out["customer"]["id"], reveal=True)
    assert customer["resident_id"] == "110105198001010032" and customer["name"] == "周九"
    assert out["lead"]["stage"] == "converted"
    assert out["lead"]["converted_customer_id"] == customer["id"]
    actions = await audit_actions(ctx, lead["id"])
    assert "lead.stage" in actions and "lead.convert" in actions
    with pytest.raises(Conflict):
        await leads.convert(ctx, lead["id"])
    # a lead missing the resident ID converts into a refused customer: nothing written
    bare, _ = await leads.capture(ctx, {"kind": "individual", "name": "吴十", "mobile": mobile()})
    with pytest.raises(ValidationFailed) as exc:
        await leads.convert(ctx, bare["id"])
    assert exc.value.errors[0].field == "resident_id"
    assert (await records.get(ctx, "lead", bare["id"]))["converted_customer_id"] is None


async def test_pool_sweep_and_claim(kernel: Any, new_tenant: Any) -> None:
    from dataclasses import replace

    from core.admin import list_users
    from tests.conftest import as_user

    ctx = await new_tenant()
    admin = (await list_users(ctx))[0]
    lead, _ = await leads.capture(ctx, {"kind": "individual", "name": "郑一", "mobile": mobile()})
    async with tenant_scope(ctx):  # owned by admin, untouched for 20 days
        await Lead.update({Lead.owner_id: admin["id"], Lead.last_activity_at:
                           datetime.now(UTC) - timedelta(days=20)}).where(
            Lead.id == uuid.UUID(lead["id"])).run()
        assert await pool.sweep(ctx) >= 1
    listed = await pool.list_pool(ctx)
    assert lead["id"] in [p["id"] for p in listed]
    assert "lead.pooled" in await audit_actions(ctx, lead["id"])
    officer = await as_user(ctx.tenant, "admin")
    await pool.claim(officer, lead["id"])
    assert (await records.get(ctx, "lead", lead["id"]))["owner_id"] == str(admin["id"])
    with pytest.raises(Conflict):
        await pool.claim(officer, lead["id"])  # no longer in the pool
    # the claim limit
    await pool.release(officer, lead["id"])
    limited = replace(officer, tenant=replace(officer.tenant, settings={
        **officer.tenant.settings, "crm.pool_claim_limit": 0}))
    with pytest.raises(Conflict) as exc:
        await pool.claim(limited, lead["id"])
    assert exc.value.code == "pool_claim_limit"


async def test_demo_leads_placed_by_the_rules(kernel: Any, demo: Any) -> None:
    """The demo pack's 20 leads: Taiyuan ones to the 小店 officer, Yuncheng ones to
    officer2, the rest in the pool; the blacklisted mobile is refused."""
    from core.admin import list_users
    from core.tenancy import Context
    from plugins.crm.blacklist import Blacklisted

    tenant, _ = demo
    ctx = Context.system(tenant)
    users = {str(u["id"]): u["username"] for u in await list_users(ctx)}
    async with tenant_scope(ctx, write=False):
        rows = await Lead.select(Lead.region, Lead.owner_id).where(
            Lead.tenant_id == tenant.id, Lead.source.is_not_null()).run()
    assert len(rows) >= 20
    for r in rows:
        owner = users.get(str(r["owner_id"])) if r["owner_id"] else None
        if r["region"].startswith("1401"):
            assert owner == "officer"
        elif r["region"].startswith("1408"):
            assert owner == "officer2"
    with pytest.raises(Blacklisted):
        await leads.capture(ctx, {"kind": "individual", "name": "黑", "mobile": "13900000009"})
