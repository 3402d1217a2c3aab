"""Follow-ups on both databases: logged on a customer with the content sealed at rest,
audited without clear text, `followup.logged` emitted with entity and record; the next step
becomes a task; bad input named per field and nothing written; access follows the record
(another officer's customer answers 404); the API and the form on the customer page."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core import records
from core.errors import NotFound, ValidationFailed
from core.tables import AuditEntry, OutboxMessage
from core.tenancy import tenant_scope
from plugins.crm import activity
from plugins.crm.activity_tables import FollowUp, Task
from tests.conftest import as_user, login
from tests.integration.test_ui_pages import csrf_of, sign_in

SECRET_NOTE = "客户王小明说下月收到货款13800138000后还款"


async def first_customer(ctx: Any) -> str:
    return (await records.list_records(ctx, "customer", sort="created_at")).items[0]["id"]


async def test_log_a_followup_sealed_audited_emitted(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()
    admin = await as_user(ctx.tenant, "admin")
    customer = await first_customer(ctx)
    logged = await activity.log_followup(admin, "customer", customer, {
        "kind": "call", "occurred_at": "2026-11-19T10:30", "outcome": "interested",
        "content": SECRET_NOTE, "next_step": "上门核实经营流水",
        "next_follow_up_on": "2026-11-25", "create_task": True})
    assert logged["kind_label"] == "电话" and logged["task_id"]
    # the wall-clock time of the form is the tenant's (Asia/Shanghai): 02:30 UTC
    assert logged["occurred_at"].startswith("2026-11-19T10:30:00+08:00")
    async with tenant_scope(ctx, write=False):
        row = (await FollowUp.select().where(FollowUp.tenant_id == ctx.tenant_id).run())[0]
        task = (await Task.select().where(Task.tenant_id == ctx.tenant_id).run())[0]
        audits = await AuditEntry.select().where(
            AuditEntry.tenant_id == ctx.tenant_id,
            AuditEntry.action.is_in(["followup.log", "task.create"])).output(
            load_json=True).run()
        events = await OutboxMessage.select().where(
            OutboxMessage.tenant_id == ctx.tenant_id,
            OutboxMessage.name == "followup.logged").output(load_json=True).run()
    raw = " ".join(str(v) for v in row.values()) + " ".join(str(v) for v in task.values())
    assert "王小明" not in raw and "13800138000" not in raw and "核实" not in raw
    assert str(task["id"]) == logged["task_id"] and task["due_on"].isoformat() == "2026-11-25"
    assert {a["action"] for a in audits} == {"followup.log", "task.create"}
    assert "王小明" not in str(audits) and "hmac:" in str(audits)
    assert events[0]["payload"]["entity"] == "customer"
    assert events[0]["payload"]["record_id"] == customer
    listed = await activity.list_followups(admin, "customer", customer)
    assert listed[0]["content"] == SECRET_NOTE and listed[0]["created_by_name"] == "管理员"
    assert listed[0]["next_step"] == "上门核实经营流水"


async def test_bad_input_names_the_field_and_writes_nothing(kernel: Any, new_tenant: Any
                                                             ) -> None:
    ctx = await new_tenant()
    admin = await as_user(ctx.tenant, "admin")
    customer = await first_customer(ctx)
    cases = [
        ({"kind": "fax", "content": "x"}, "kind", "不在可选项中"),
        ({"kind": "call"}, "content", "必填"),
        ({"kind": "call", "content": "x" * 2001}, "content", "2000"),
        ({"kind": "call", "content": "x", "occurred_at": "2099-01-01T10:00"},
         "occurred_at", "不能晚于现在"),
        ({"kind": "call", "content": "x", "next_step": "回访", "create_task": True},
         "next_follow_up_on", "下次跟进日期"),
        ({"kind": "call", "content": "x", "next_follow_up_on": "2026-13-01"},
         "next_follow_up_on", "日期"),
    ]
    for data, field, text in cases:
        with pytest.raises(ValidationFailed) as caught:
            await activity.log_followup(admin, "customer", customer, data)
        assert caught.value.errors[0].field == field, data
        assert text in caught.value.errors[0].message("zh-CN"), caught.value.errors[0].message(
            "zh-CN")
        assert caught.value.errors[0].message("en") != caught.value.errors[0].message("zh-CN")
    with pytest.raises(NotFound):
        await activity.log_followup(admin, "customer", str(uuid.uuid4()),
                                    {"kind": "call", "content": "x"})
    async with tenant_scope(ctx, write=False):
        assert await FollowUp.count().where(FollowUp.tenant_id == ctx.tenant_id).run() == 0
        assert await Task.count().where(Task.tenant_id == ctx.tenant_id).run() == 0


async def test_access_follows_the_customer(kernel: Any, demo: Any) -> None:
    tenant, _ = demo
    officer = await as_user(tenant, "officer")
    officer2 = await as_user(tenant, "officer2")
    finance = await as_user(tenant, "finance")
    mine = await records.create(officer, "customer", {
        "kind": "individual", "name": "跟进测试甲", "resident_id": "11010519491231002X"})
    await activity.log_followup(officer, "customer", mine["id"],
                                {"kind": "visit", "content": "实地走访，店面正常营业"})
    with pytest.raises(NotFound):  # another officer's customer does not exist for officer2
        await activity.list_followups(officer2, "customer", mine["id"])
    with pytest.raises(NotFound):
        await activity.log_followup(officer2, "customer", mine["id"],
                                    {"kind": "call", "content": "x"})
    from core.errors import Forbidden
    with pytest.raises(Forbidden):  # finance may read follow-ups but not log them
        await activity.log_followup(finance, "customer", mine["id"],
                                    {"kind": "call", "content": "x"})
    seen = await activity.list_followups(finance, "customer", mine["id"])
    assert [f["content"] for f in seen] == ["实地走访，店面正常营业"]


async def test_api_and_the_form_on_the_customer_page(kernel: Any, client: Any,
                                                      new_tenant: Any) -> None:
    ctx = await new_tenant()
    customer = await first_customer(ctx)
    headers = await login(client, ctx.tenant.slug)
    r = await client.post("/api/v1/followups", headers=headers, json={
        "entity": "customer", "record_id": customer, "kind": "wechat",
        "content": "微信发送了材料清单", "outcome": "reached"})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/followups", headers=headers, json={
        "entity": "loan", "record_id": customer, "kind": "wechat", "content": "x"})
    assert r.status_code == 404
    r = await client.get(f"/api/v1/followups?entity=customer&record_id={customer}",
                         headers=headers)
    assert [f["content"] for f in r.json()] == ["微信发送了材料清单"]

    csrf = await sign_in(client, ctx.tenant.slug)
    page = await client.get(f"/e/customer/{customer}")
    assert page.status_code == 200 and 'id="followup-form"' in page.text
    assert "微信发送了材料清单" in page.text and 'id="panel-timeline"' in page.text
    bad = await client.post(f"/crm/customer/{customer}/followups", headers={"HX-Request": "true"},
                            data={"_csrf": csrf, "kind": "call", "content": ""})
    assert bad.status_code == 422 and "跟进内容为必填项" in bad.text
    good = await client.post(f"/crm/customer/{customer}/followups",
                             data={"_csrf": csrf, "kind": "visit", "content": "上门拜访，见到法人",
                                   "occurred_at": "2026-11-18T09:00"})
    assert good.status_code == 303
    assert good.headers["location"].startswith(f"/e/customer/{customer}?followup=")
    assert good.headers["location"].endswith("#panel-timeline")
    page = await client.get(f"/e/customer/{customer}")
    timeline = page.text.split('id="timeline"', 1)[1]
    assert timeline.index("微信发送了材料清单") < timeline.index("上门拜访，见到法人")
    assert csrf_of(page.text)
