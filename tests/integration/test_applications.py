"""Applications (进件) on both engines: refused figures, missing documents and a
blacklisted customer write nothing (the block is audited); submission runs the credit check
over HTTP against the local bureau and scores; decisions, resubmission and the contract and
disbursement events move the status."""

from __future__ import annotations

import types
import uuid
from dataclasses import replace
from typing import Any

import pytest

from core import documents, records
from core.errors import Conflict, ValidationFailed
from core.plugins import hookimpl
from core.tables import AuditEntry, OutboxMessage
from core.tenancy import tenant_scope
from plugins.origination import applications, approval_store, approvals, requirements, scorecards
from plugins.origination.examples import DEMO_WORKFLOW
from plugins.origination.tables import Application, ApplicationScore
from plugins.servicing import products

PLUGINS = ["crm", "servicing", "origination", "bureau_local"]
CONFIG = {
    "method": "equal_installment", "frequency": "month", "interest_basis": "per_period",
    "amount_min": "1000", "amount_max": "500000", "term_min": 3, "term_max": 36,
    "rate_min": "6", "rate_max": "24", "rate_default": "12",
}
CARD = {
    "code": "retail", "base_points": 600,
    "variables": [
        {"variable": "bureau_score", "bins": [
            {"max": 600, "points": -50}, {"min": 600, "max": 750, "points": 0},
            {"min": 750, "points": 40}, {"missing": True, "points": -30}]},
        {"variable": "amount", "bins": [{"max": 100000, "points": 10},
                                        {"min": 100000, "points": -10}]},
    ],
    "grades": [{"grade": "A", "min": 640}, {"grade": "B", "min": 600}, {"grade": "C"}],
}
PDF = b"%PDF-1.4\n% test id card\n" + b"0" * 200
JPEG = b"\xff\xd8\xff\xe0" + b"0" * 200


async def setup(new_tenant: Any) -> tuple[Any, str]:
    ctx = await new_tenant(plugins=PLUGINS)
    await products.save_product(ctx, "XD01", "经营贷", CONFIG)
    await scorecards.save(ctx, CARD)
    await approvals.save_workflow(ctx, {**DEMO_WORKFLOW, "subject": "application"})
    page = await records.list_records(ctx, "customer", {"kind": "individual"})
    return ctx, str(page.items[0]["id"])


def form(customer: str, **more: Any) -> dict[str, Any]:
    return {"customer_id": customer, "product": "XD01", "amount": "50000", "periods": 12,
            "purpose": "进货", "consent_ref": "SQ-AUTH-0001", **more}


async def count(ctx: Any, table: Any) -> int:
    async with tenant_scope(ctx, write=False):
        return await table.count().where(table.tenant_id == ctx.tenant_id)


async def open_approval(ctx: Any, application_id: str) -> dict[str, Any]:
    async with tenant_scope(ctx, write=False):
        row = await approval_store.open_instance(ctx, "application", application_id)
    assert row is not None, "no approval is open for the application"
    return row


async def kyc(ctx: Any, customer: str) -> None:
    await documents.upload(ctx, "customer", customer, "id_front", "front.jpg", JPEG)
    await documents.upload(ctx, "customer", customer, "id_back", "back.pdf", PDF)


async def test_an_application_outside_the_product_ranges_is_refused(kernel: Any,
                                                                   new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    for bad, key, words in (({"amount": "600000"}, "amount", "500000"),
                            ({"periods": 48}, "periods", "36"),
                            ({"annual_rate": "30"}, "annual_rate", "24")):
        with pytest.raises(ValidationFailed) as info:
            await applications.create(ctx, form(customer, **bad))
        err = info.value.errors[0]
        assert err.field == key and words in err.message("zh-CN"), err.message("zh-CN")
    with pytest.raises(ValidationFailed) as info:
        await applications.create(ctx, form(customer, product="NOPE"))
    assert "NOPE" in info.value.errors[0].message("en")
    with pytest.raises(ValidationFailed) as info:  # a user cannot set the status
        await applications.create(ctx, form(customer, status="approved"))
    assert info.value.errors[0].field == "status"
    assert await count(ctx, Application) == 0
    app = await applications.create(ctx, form(customer))
    assert app["number"] == f"SQ{ctx.tenant.business_date:%Y%m%d}-0001"
    assert (app["status"], app["amount"], app["region"]) == ("draft", "50000.00", "140105")


async def test_submission_is_refused_while_a_document_is_missing(kernel: Any,
                                                                new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    app = await applications.create(ctx, form(customer))
    with pytest.raises(ValidationFailed) as info:
        await applications.submit(ctx, app["id"])
    zh = info.value.errors[0].message("zh-CN")
    assert "身份证人像面" in zh and "身份证国徽面" in zh and "征信报告" not in zh, zh
    assert "ID card (photo side)" in info.value.errors[0].message("en")
    again = await records.get(ctx, "application", app["id"])
    assert again["status"] == "draft" and again["version"] == app["version"]
    assert await count(ctx, ApplicationScore) == 0


async def test_submit_runs_the_credit_check_and_the_scorecard(kernel: Any,
                                                             new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    await kyc(ctx, customer)
    app = await applications.create(ctx, form(customer))
    done = await applications.submit(ctx, app["id"])
    assert done["status"] == "in_approval" and done["credit_report"]
    detail = await applications.detail(ctx, app["id"])
    assert all(c["present"] for c in detail["checklist"])
    summary = detail["credit_check"]["summary"]
    assert set(summary) >= {"bureau_score", "overdue_accounts", "total_debt"}
    score = detail["score"]
    first = score["breakdown"][0]
    assert first["variable"] == "bureau_score" and first["value"] == summary["bureau_score"]
    expected = 600 + first["points"] + 10  # amount 50,000 falls in the first amount bin
    assert score["score"] == done["score"] == expected
    assert done["grade"] == ("A" if expected >= 640 else "B" if expected >= 600 else "C")
    kinds = [d["kind"] for d in await documents.list_documents(ctx, "application", app["id"])]
    assert kinds == ["credit_report"]
    async with tenant_scope(ctx, write=False):
        audited = await AuditEntry.select(AuditEntry.action).where(
            AuditEntry.tenant_id == ctx.tenant_id,
            AuditEntry.action.is_in(["credit.query", "reveal"])).run()
        events = await OutboxMessage.select(OutboxMessage.name, OutboxMessage.payload).where(
            OutboxMessage.tenant_id == ctx.tenant_id,
            OutboxMessage.name == "application.submitted").output(load_json=True).run()
    assert {a["action"] for a in audited} == {"credit.query", "reveal"}
    assert events and events[0]["payload"]["grade"] == done["grade"]
    assert events[0]["payload"]["amount"] == "50000.00"


async def test_decisions_resubmission_and_the_contract_event(kernel: Any,
                                                            new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    await kyc(ctx, customer)
    app = await applications.create(ctx, form(customer))
    await applications.submit(ctx, app["id"])
    instance = await open_approval(ctx, app["id"])
    reviewer = replace(ctx, username="reviewer", roles=("risk_reviewer",))
    await approvals.act(reviewer, instance["id"], "return", "补充流水")
    returned = await records.get(ctx, "application", app["id"])
    assert returned["status"] == "returned"
    with pytest.raises(Conflict) as info:  # a returned application is not decided again
        await applications.decided(ctx, app["id"], "approved", "", "u-1")
    assert "已退回" in info.value.message("zh-CN") and "Returned" in info.value.message("en")
    again = await applications.resubmit(ctx, app["id"])  # the same approval resumes
    assert again["status"] == "in_approval" and await count(ctx, ApplicationScore) == 2
    assert (await open_approval(ctx, app["id"]))["id"] == instance["id"]
    await approvals.act(reviewer, instance["id"], "approve", "同意")
    approved = await records.get(ctx, "application", app["id"])
    assert (approved["status"], approved["decided_by"]) == ("approved", "reviewer")
    await applications.on_contract_signed(ctx, {"contract_id": "c-1",
                                                "application_id": app["id"]})
    ready = await records.get(ctx, "application", app["id"])
    assert ready["status"] == "ready_to_disburse"
    async with tenant_scope(ctx, write=False):
        rows = await OutboxMessage.select(OutboxMessage.payload).where(
            OutboxMessage.tenant_id == ctx.tenant_id,
            OutboxMessage.name == "application.ready_to_disburse").output(load_json=True).run()
    notify = rows[0]["payload"]["notify"]
    assert notify["roles"] == ["finance"] and notify["link"] == f"/applications/{app['id']}"
    await applications.on_loan_disbursed(ctx, {"application_id": app["id"], "loan_id": "l"})
    assert (await records.get(ctx, "application", app["id"]))["status"] == "disbursed"
    steps = [(h["from_status"], h["to_status"]) for h in await applications.history(
        ctx, app["id"])]
    assert steps == [(None, "draft"), ("draft", "submitted"), ("submitted", "in_approval"),
                     ("in_approval", "returned"), ("returned", "submitted"),
                     ("submitted", "in_approval"), ("in_approval", "approved"),
                     ("approved", "ready_to_disburse"), ("ready_to_disburse", "disbursed")]


async def test_the_submitter_cannot_approve_their_own_application(kernel: Any,
                                                                 new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    await kyc(ctx, customer)
    officer = replace(ctx, user_id=str(uuid.uuid4()), username="officer")
    app = await applications.create(officer, form(customer))
    await applications.submit(officer, app["id"])
    with pytest.raises(ValidationFailed) as info:
        await applications.decided(ctx, app["id"], "approved", "", officer.user_id)
    assert "审贷分离" in info.value.errors[0].message("zh-CN")


async def test_a_blacklisted_customer_is_refused_and_the_attempt_audited(
        kernel: Any, new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    listed: set[str] = set()

    class Screen:  # a test double of the crm plugin's internal `party_screen` interface
        async def check(self, ctx: Any, *, customer_id: str) -> dict[str, Any] | None:
            if customer_id in listed:
                return {"entry_id": "bl-1", "reason": "法院失信被执行人", "matched": "resident_id"}
            return None

    double = types.SimpleNamespace(choose_provider=hookimpl(
        lambda kind, tenant: Screen() if kind == "party_screen" else None))
    kernel.plugins.pm.register(double, name="screen_double")
    try:
        ctx = replace(ctx, tenant=replace(ctx.tenant,
                                          plugins=(*ctx.tenant.plugins, "screen_double")))
        await kyc(ctx, customer)
        app = await applications.create(ctx, form(customer))  # not yet listed
        listed.add(customer)
        with pytest.raises(ValidationFailed) as info:
            await applications.create(ctx, form(customer))
        assert "黑名单" in info.value.errors[0].message("zh-CN")
        assert "法院失信被执行人" in info.value.errors[0].message("zh-CN")
        with pytest.raises(ValidationFailed):
            await applications.submit(ctx, app["id"])
        assert (await records.get(ctx, "application", app["id"]))["status"] == "draft"
        assert await count(ctx, Application) == 1
        async with tenant_scope(ctx, write=False):
            blocked = await AuditEntry.select(AuditEntry.record_id, AuditEntry.diff).where(
                AuditEntry.tenant_id == ctx.tenant_id,
                AuditEntry.action == "application.blocked").output(load_json=True).run()
        assert len(blocked) == 2 and {str(b["record_id"]) for b in blocked} == {customer}
        assert sorted(b["diff"]["stage"][1] for b in blocked) == ["create", "submit"]
    finally:
        kernel.plugins.pm.unregister(name="screen_double")


async def test_required_custom_fields_per_product(kernel: Any, new_tenant: Any) -> None:
    from core.customfields import add_custom_field

    ctx, customer = await setup(new_tenant)
    await add_custom_field(ctx, "application", {
        "key": "shop_name", "type": "text", "label": {"zh-CN": "店铺名称", "en": "Shop name"}})
    await requirements.set_for_product(ctx, "XD01", {"documents": ["id_front"],
                                                     "fields": ["shop_name"]})
    with pytest.raises(ValidationFailed) as info:
        await requirements.set_for_product(ctx, "XD01", {"documents": ["passport"]})
    assert "passport" in info.value.errors[0].message("en")
    await kyc(ctx, customer)
    app = await applications.create(ctx, form(customer))
    with pytest.raises(ValidationFailed) as info:
        await applications.submit(ctx, app["id"])
    assert info.value.errors[0].field == "shop_name"
    assert "店铺名称" in info.value.errors[0].message("zh-CN")
    await applications.update(ctx, app["id"], {"shop_name": "小店区老王副食"})
    assert (await applications.submit(ctx, app["id"]))["status"] == "in_approval"
