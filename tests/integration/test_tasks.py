"""Tasks on both databases: due dates and assignees, my tasks with counts against the
business date, reminders (the periodic job through the outbox, once per task and day),
assignment notifies the assignee through the event's notify payload, status changes with
audit and events, bad input, access, and the 我的任务 pages."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core import notifications, outbox, records
from core.errors import Conflict, NotFound, ValidationFailed
from core.identity import create_user
from core.jobs import enqueue
from core.kernel import kernel as current_kernel
from core.tables import AuditEntry, OutboxMessage
from core.tenancy import tenant_scope
from plugins.crm import activity
from tests.conftest import as_user
from tests.integration.test_ui_pages import sign_in


async def officers(ctx: Any) -> tuple[Any, Any]:
    async with tenant_scope(ctx):
        for name in ("li", "zhao"):
            await create_user(ctx, name, f"客户经理{name}", "test-password-1", ["loan_officer"])
    return await as_user(ctx.tenant, "li"), await as_user(ctx.tenant, "zhao")


async def test_my_tasks_counts_and_reminders_once_a_day(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()  # business date 2026-11-20
    li, _zhao = await officers(ctx)
    made = {}
    for due in ("2026-11-18", "2026-11-20", "2026-11-25", "2026-11-19"):
        made[due] = await activity.create_task(li, {"title": f"回访 {due}", "due_on": due})
    await activity.update_task(li, made["2026-11-19"]["id"], {"status": "done"})
    assert await activity.task_counts(li) == {"overdue": 1, "today": 1, "upcoming": 1,
                                              "done": 1}
    mine = await activity.list_tasks(li)
    assert [t["due_on"] for t in mine] == ["2026-11-18", "2026-11-20", "2026-11-25"]
    assert [t["due_state"] for t in mine] == ["overdue", "today", ""]

    assert "crm.task_reminders" in [j.name for j in current_kernel().periodic_jobs_for(
        ctx.tenant)]
    async with tenant_scope(ctx):  # the job the scheduler fires, through the outbox
        await enqueue(ctx, "crm.task_reminders")
    await outbox.run_due(ctx.tenant)
    notes = await notifications.list_for(li)
    assert sorted(n["title"] for n in notes) == ["任务今日到期", "任务已逾期（2026-11-18 到期）"]
    assert {n["link"] for n in notes} == {f"/tasks/{made['2026-11-18']['id']}",
                                          f"/tasks/{made['2026-11-20']['id']}"}
    assert await activity.remind_due_tasks(ctx) == 0  # the same day again: nobody twice
    assert await activity.remind_due_tasks(ctx, on="2026-11-21") == 2  # a new day
    assert await notifications.unread_count(li) == 4


async def test_assignment_notifies_through_the_event(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()
    li, zhao = await officers(ctx)
    task = await activity.create_task(li, {"title": "补充银行流水", "due_on": "2026-11-27",
                                           "assignee": "zhao"})
    own = await activity.create_task(li, {"title": "自己的任务", "due_on": "2026-11-27"})
    await outbox.run_due(ctx.tenant)
    zhao_notes = await notifications.list_for(zhao)
    assert [n["link"] for n in zhao_notes] == [f"/tasks/{task['id']}"]
    assert "补充银行流水" not in zhao_notes[0]["title"]  # task titles are sealed, never sent
    assert await notifications.list_for(li) == []
    # the assignee works it; the creator sees it; a stale version is refused
    done = await activity.update_task(zhao, task["id"], {"status": "done"})
    assert done["status"] == "done" and done["version"] == 2
    with pytest.raises(Conflict):
        await activity.update_task(li, task["id"], {"status": "open"}, expected_version=1)
    reassigned = await activity.update_task(li, own["id"], {"assignee": "zhao"})
    assert reassigned["assignee_name"] == "客户经理zhao"
    await outbox.run_due(ctx.tenant)
    assert len(await notifications.list_for(zhao)) == 2
    async with tenant_scope(ctx, write=False):
        actions = [r["action"] for r in await AuditEntry.select(AuditEntry.action).where(
            AuditEntry.tenant_id == ctx.tenant_id, AuditEntry.entity == "task").order_by(
            AuditEntry.seq).run()]
        events = [r["name"] for r in await OutboxMessage.select(OutboxMessage.name).where(
            OutboxMessage.tenant_id == ctx.tenant_id,
            OutboxMessage.name.like("task.%")).order_by(OutboxMessage.created_at).run()]
    assert actions == ["task.create", "task.create", "task.done", "task.update"]
    assert sorted(events) == ["task.completed", "task.created", "task.created", "task.updated"]


async def test_bad_input_and_access(kernel: Any, demo: Any) -> None:
    tenant, _ = demo
    officer = await as_user(tenant, "officer")
    officer2 = await as_user(tenant, "officer2")
    customer = await records.create(officer, "customer", {
        "kind": "company", "name": "任务测试商贸有限公司", "credit_code": "91110000600037341L"})
    for data, field in (({"due_on": "2026-11-30"}, "title"),
                        ({"title": "x", "due_on": "明天"}, "due_on"),
                        ({"title": "x", "due_on": "2026-11-30", "assignee": "nobody"},
                         "assignee")):
        with pytest.raises(ValidationFailed) as caught:
            await activity.create_task(officer, data, "customer", customer["id"])
        assert caught.value.errors[0].field == field
        assert re.search(r"[\u4e00-\u9fff]", caught.value.errors[0].message("zh-CN"))
    task = await activity.create_task(officer, {"title": "上门核实", "due_on": "2026-11-30"},
                                      "customer", customer["id"])
    with pytest.raises(NotFound):
        await activity.get_task(officer2, task["id"])
    with pytest.raises(NotFound):
        await activity.list_tasks(officer2, entity="customer", record_id=customer["id"])
    listed = await activity.list_tasks(officer, entity="customer", record_id=customer["id"])
    assert [t["title"] for t in listed] == ["上门核实"]


async def test_my_tasks_pages(kernel: Any, client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()
    admin = await as_user(ctx.tenant, "admin")
    customer = (await records.list_records(ctx, "customer")).items[0]["id"]
    overdue = await activity.create_task(admin, {"title": "逾期的任务", "due_on": "2026-11-01"},
                                         "customer", customer)
    await activity.create_task(admin, {"title": "今天的任务", "due_on": "2026-11-20"})
    csrf = await sign_in(client, ctx.tenant.slug)
    page = await client.get("/tasks")
    assert page.status_code == 200
    assert re.search(r'id="count-overdue"><strong>1</strong>', page.text)
    assert re.search(r'id="count-today"><strong>1</strong>', page.text)
    only = await client.get("/tasks?view=overdue")
    assert "逾期的任务" in only.text and "今天的任务" not in only.text
    one = await client.get(f"/tasks/{overdue['id']}")
    assert f'href="/e/customer/{customer}"' in one.text
    r = await client.post(f"/tasks/{overdue['id']}/status",
                          data={"_csrf": csrf, "status": "done", "version": "1"})
    assert r.status_code == 303
    assert "已完成" in (await client.get(f"/tasks/{overdue['id']}")).text
    r = await client.post(f"/crm/customer/{customer}/tasks", headers={"HX-Request": "true"},
                          data={"_csrf": csrf, "title": "", "due_on": "2026-11-30"})
    assert r.status_code == 422 and "任务为必填项" in r.text
    r = await client.post(f"/crm/customer/{customer}/tasks",
                          data={"_csrf": csrf, "title": "寄送合同", "due_on": "2026-11-30"})
    assert r.status_code == 303
    detail = await client.get(f"/e/customer/{customer}")
    assert "寄送合同" in detail.text.split('id="panel-tasks"', 1)[1]
