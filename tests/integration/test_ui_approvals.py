"""The approval screens on both engines: the inbox's counts and filters, a bulk decision
with a result per item, the decision form and the timeline, and the workflow editor
(its refusals shown next to the offending step, the live diagram, saving versions)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from core.tenancy import tenant_scope
from plugins.origination.approvals_app.tables import ApprovalTask
from tests.integration.test_approvals import Env, setup
from tests.integration.test_ui_pages import other_client, sign_in

ROW_RE = re.compile(r'<tr class="inbox-row[^"]*" data-id="([0-9a-f-]{36})"')


def count(html: str, key: str) -> int:
    m = re.search(rf'id="count-{key}"><span class="metric-value">(\d+)</span>', html)
    assert m, html[:3000]
    return int(m.group(1))


async def set_due(env: Env, iid: str, due: datetime) -> None:
    async with tenant_scope(env.system):
        await ApprovalTask.update({ApprovalTask.due_at: due}).where(
            ApprovalTask.tenant_id == env.system.tenant_id,
            ApprovalTask.instance_id == uuid.UUID(iid)).run()


async def test_inbox_counts_filters_and_bulk(new_tenant: Any, client: Any) -> None:
    env = await setup(new_tenant)
    small = await env.start("50000")
    mid = await env.start("300000", facts={"product": "XF01"})
    big = await env.start("800000")
    now = datetime.now(UTC)
    await set_due(env, small["id"], now - timedelta(hours=1))
    await set_due(env, mid["id"], now + timedelta(hours=2))
    slug = env.system.tenant.slug
    await sign_in(client, slug, "reviewer")
    r = await client.get("/approvals")
    assert r.status_code == 200, r.text
    assert (count(r.text, "pending"), count(r.text, "due-soon"), count(r.text, "overdue")) \
        == (3, 1, 1)
    assert ROW_RE.findall(r.text) == [small["id"], mid["id"], big["id"]]  # by deadline
    assert "审批待办" in r.text  # the menu entry
    assert "用户officer" in r.text  # the submitter by name, not by login
    assert 'hx-get="/approvals/badge"' in r.text  # the menu entry loads its count
    badge = await client.get("/approvals/badge", headers={"HX-Request": "true"})
    assert re.search(r'class="menu-badge overdue" id="approvals-badge"[^>]*>3<', badge.text)
    assert "3 项待你处理，其中 1 项已超时" in badge.text
    for query, expected in (("amount_min=100000", {mid["id"], big["id"]}),
                            ("amount_min=100000&amount_max=300000", {mid["id"]}),
                            ("product=XF01", {mid["id"]}), ("overdue=1", {small["id"]}),
                            (f"from={(now + timedelta(days=2)).date()}", set())):
        r = await client.get(f"/approvals?{query}")
        assert set(ROW_RE.findall(r.text)) == expected, query
    r = await client.get("/approvals?amount_min=12万")
    assert 'id="e-amount_min"' in r.text and "请输入金额" in r.text
    # the manager cannot decide on the risk review: one of the two ticked is refused
    async with (other := other_client(client)):
        csrf = await sign_in(other, slug, "manager")
        r = await other.post("/approvals/bulk", data={
            "_csrf": csrf, "ids": [small["id"], mid["id"]], "action": "approve",
            "comment": "批量同意"}, headers={"HX-Request": "true"})
        assert r.status_code == 200 and "0 个已处理，2 个被拒绝" in r.text, r.text
        assert r.text.count("不是分配给你的") == 2
    r = await client.get("/approvals")
    csrf = re.search(r'name="_csrf" value="([^"]+)"', r.text).group(1)
    r = await client.post("/approvals/bulk", data={
        "_csrf": csrf, "ids": [small["id"], mid["id"]], "action": "approve",
        "comment": "批量同意"})
    assert r.status_code == 200 and "2 个已处理，0 个被拒绝" in r.text, r.text
    r = await client.post("/approvals/bulk", data={
        "_csrf": csrf, "ids": [small["id"], big["id"]], "action": "approve",
        "comment": "再来一次"})
    assert "1 个已处理，1 个被拒绝" in r.text
    assert f'data-id="{small["id"]}"' in r.text and "审批已结束" in r.text
    r = await client.get("/approvals")
    assert ROW_RE.findall(r.text) == [] and count(r.text, "pending") == 0
    badge = await client.get("/approvals/badge", headers={"HX-Request": "true"})
    assert badge.status_code == 200 and "approvals-badge" not in badge.text
    r = await client.get("/approvals?tab=done")
    assert r.text.count("批量同意") == 2 and "再来一次" in r.text


async def test_decision_form_and_timeline(new_tenant: Any, client: Any) -> None:
    env = await setup(new_tenant)
    a = await env.start("300000")
    await env.start("300000")  # another approval in the inbox
    slug = env.system.tenant.slug
    csrf = await sign_in(client, slug, "reviewer")
    r = await client.get(f"/approvals/{a['id']}")
    assert r.status_code == 200 and 'id="decision-form"' in r.text
    assert "<svg" in r.text and "风险审查" in r.text
    assert "<li>角色：" in r.text and "<li>角色：risk_reviewer" not in r.text  # by its label
    version = re.search(r'name="version" value="(\d+)"', r.text).group(1)
    r = await client.post(f"/approvals/{a['id']}/act", data={
        "_csrf": csrf, "action": "reject", "comment": "", "version": version})
    assert r.status_code == 422 and "拒绝须填写意见" in r.text
    r = await client.post(f"/approvals/{a['id']}/act", data={
        "_csrf": csrf, "action": "approve", "comment": "经营流水良好", "version": version})
    assert r.status_code == 303 and r.headers["location"] == "/approvals?done=approve"
    r = await client.post(f"/approvals/{a['id']}/act", data={
        "_csrf": csrf, "action": "approve", "comment": "again", "version": version})
    assert r.status_code == 409 and "已被他人处理" in r.text
    r = await client.get(f"/approvals/{a['id']}")
    assert 'id="decision-form"' not in r.text
    assert "经营流水良好" in r.text and "部门经理审批" in r.text
    assert ">用户reviewer</span>" in r.text and ">用户officer</span>" in r.text  # by name
    async with (other := other_client(client)):
        await sign_in(other, slug, "clerk")
        r = await other.get(f"/approvals/{a['id']}")
        assert r.status_code == 404  # not involved, no workflow.read


FORM = {"key": "", "name_zh": "小额快审", "name_en": "Quick review", "subject": "test_subject",
        "priority": "50", "distinct": "on",
        "step-0-id": "check", "step-0-name_zh": "审查", "step-0-name_en": "Check",
        "step-0-mode": "any", "step-0-roles": ["risk_reviewer"], "step-0-users": "",
        "step-0-deadline_hours": "8", "step-0-remind_before_hours": "2",
        "step-0-escalate": "role:branch_manager",
        "step-0-route-0-cond-0-field": "amount", "step-0-route-0-cond-0-op": "ge",
        "step-0-route-0-cond-0-value": "100000", "step-0-route-0-to": "sign",
        "step-0-route-1-to": "approved",
        "step-1-id": "sign", "step-1-name_zh": "会签", "step-1-name_en": "Sign",
        "step-1-mode": "all", "step-1-roles": ["finance", "general_manager"],
        "step-1-route-0-to": "approved"}


async def test_workflow_editor(new_tenant: Any, client: Any) -> None:
    env = await setup(new_tenant)
    slug = env.system.tenant.slug
    async with (other := other_client(client)):
        await sign_in(other, slug, "reviewer")
        assert (await other.get("/workflows")).status_code == 200  # workflow.read
        assert (await other.get("/workflows/new")).status_code == 403
    csrf = await sign_in(client, slug, "gm")
    r = await client.get("/workflows")
    assert r.status_code == 200 and "/workflows/loan_approval" in r.text
    r = await client.get("/workflows/loan_approval")
    assert "<svg" in r.text and "财务与总经理会签" in r.text
    r = await client.get("/workflows/new")
    assert r.status_code == 200 and 'id="workflow-form"' in r.text
    form = {**FORM, "_csrf": csrf, "key": "quick"}
    r = await client.post("/workflows/editor/preview", data=form)
    assert r.status_code == 200 and "<svg" in r.text and "会签" in r.text
    assert "金额 ≥ 100,000" in r.text  # the condition, with the field's label
    # an unreachable step and a condition on an unknown field: refused, each at its step
    bad = {**form, "step-0-route-0-to": "approved",
           "step-1-route-0-cond-0-field": "colour", "step-1-route-0-cond-0-op": "eq",
           "step-1-route-0-cond-0-value": "red", "step-1-route-1-to": "approved"}
    r = await client.post("/workflows/new", data={**bad, "op": "save"})
    assert r.status_code == 422, r.text
    step1 = re.search(r'<ul class="field-error step-errors" id="e-step-1"[^>]*>(.*?)</ul>',
                      r.text, re.S)
    assert step1 and "从开始无法到达" in step1.group(1) and "未知字段“colour”" in step1.group(1)
    assert 'id="e-step-0"' not in r.text
    r = await client.post("/workflows/editor/preview", data=bad)
    assert r.status_code == 422 and "<svg" not in r.text and "从开始无法到达" in r.text
    # rows are added on the server
    r = await client.post("/workflows/new", data={**form, "op": "add_step"})
    assert 'name="step-2-id" value="step3"' in r.text
    r = await client.post("/workflows/new", data={**form, "op": "save"})
    assert r.status_code == 303 and r.headers["location"] == "/workflows/quick?saved=1"
    r = await client.get("/workflows/quick/edit")
    assert 'name="step-0-route-0-cond-0-value" value="100000"' in r.text
    assert 'value="role:branch_manager" selected' in r.text
    base = re.search(r'name="base" value="(\d+)"', r.text).group(1)
    r = await client.post("/workflows/quick/edit", data={
        **form, "base": base, "step-0-deadline_hours": "12", "op": "save"})
    assert r.status_code == 303 and r.headers["location"] == "/workflows/quick?saved=2"
    r = await client.post("/workflows/quick/edit", data={**form, "base": base, "op": "save"})
    assert r.status_code == 409 and "更新的版本" in r.text
    r = await client.get("/workflows/quick")
    assert "第 2 版" in r.text and "时限 12h" in r.text
    started = await env.start("200000")  # priority 50 beats the demo's 100
    assert started["workflow"] == "quick" and started["workflow_version"] == 2


async def test_a_manager_reassigns_a_task_of_someone_away(new_tenant: Any, client: Any) -> None:
    env = await setup(new_tenant)
    a = await env.start("50000", facts={"region": "140105"})  # held by the reviewers' role
    slug = env.system.tenant.slug
    csrf = await sign_in(client, slug, "manager")
    r = await client.get(f"/approvals/{a['id']}")
    assert r.status_code == 200 and 'id="reassign-form"' in r.text
    assert "太原市小店区 (140105)" in r.text  # the region by name
    task = re.search(r'<select id="r-task" name="task"><option value="([^"]+)"', r.text).group(1)
    version = re.search(r'name="version" value="(\d+)"', r.text).group(1)
    form = {"_csrf": csrf, "action": "reassign", "task": task, "version": version,
            "to_user": "ghost", "comment": "休假"}
    r = await client.post(f"/approvals/{a['id']}/act", data=form)
    assert r.status_code == 422 and "用户“ghost”不存在或已停用" in r.text
    r = await client.post(f"/approvals/{a['id']}/act", data={**form, "to_user": "officer"})
    assert r.status_code == 422 and "创建或提交了此申请" in r.text  # maker-checker
    r = await client.post(f"/approvals/{a['id']}/act", data={**form, "to_user": "reviewer2",
                                                             "comment": ""})
    assert r.status_code == 422
    r = await client.post(f"/approvals/{a['id']}/act", data={**form, "to_user": "reviewer2"})
    assert r.status_code == 303, r.text
    r = await client.get(f"/approvals/{a['id']}")
    assert "管理员转办" in r.text and "休假" in r.text and ">用户reviewer2</span>" in r.text
    async with (other := other_client(client)):
        await sign_in(other, slug, "reviewer")
        assert a["id"] not in (await other.get("/approvals")).text
    async with (other := other_client(client)):
        await sign_in(other, slug, "reviewer2")
        assert a["id"] in (await other.get("/approvals")).text
    async with (other := other_client(client)):
        clerk_csrf = await sign_in(other, slug, "clerk")
        r = await other.post(f"/approvals/{a['id']}/act", data={
            **form, "_csrf": clerk_csrf, "to_user": "reviewer"})
        assert r.status_code in (403, 404)  # no approval.reassign: not theirs to move


async def test_the_menu_badge_is_kept_briefly_and_refreshed_by_the_inbox(
        new_tenant: Any, client: Any) -> None:
    """The badge is on every page: it is not the whole inbox computed each time."""
    env = await setup(new_tenant)
    await env.start("50000")
    await sign_in(client, env.system.tenant.slug, "reviewer")

    async def badge() -> str:
        r = await client.get("/approvals/badge", headers={"HX-Request": "true"})
        m = re.search(r'id="approvals-badge"[^>]*>(\d+)<', r.text)
        return m.group(1) if m else ""

    assert await badge() == "1"
    await env.start("60000")  # arrives while the count is kept
    assert await badge() == "1"
    await client.get("/approvals")  # the inbox has the fresh count
    assert await badge() == "2"
