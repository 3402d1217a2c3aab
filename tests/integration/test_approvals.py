"""Approvals stored and acted on, on both engines (plugins.origination.approvals): the demo
workflow routes by amount at its boundaries, serial steps, countersign, any-of, transfer,
adding an approver, return and resubmit, maker-checker and other refusals (audited,
nothing written), two clicks racing, the deadline job (remind, then escalate, idempotent),
and in-flight instances keeping their workflow version."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.errors import Conflict, ValidationFailed
from core.tables import AuditEntry, AuthEvent, OutboxMessage
from core.tenancy import Context, tenant_scope
from plugins.origination import approvals
from plugins.origination.approvals import ApprovalRefused
from plugins.origination.approvals_app.tables import ApprovalInstance, ApprovalTask
from plugins.origination.examples import DEMO_WORKFLOW
from tests.conftest import as_user

USERS = {"officer": ["loan_officer"], "maker": ["loan_officer", "risk_reviewer"],
         "reviewer": ["risk_reviewer"], "reviewer2": ["risk_reviewer"],
         "manager": ["branch_manager"], "finance": ["finance"], "gm": ["general_manager"],
         "clerk": ["collector"], "admin2": ["tenant_admin"]}
OUTCOMES: list[tuple[str, str, str, str, str]] = []
SUBJECT = "test_subject"


@approvals.on_outcome(SUBJECT)
async def _record(ctx: Context, subject_id: str, outcome: str, comment: str,
                  decided_by: str) -> None:
    """The test subject's owner: remembers each outcome, and fails on request (to show the
    callback runs in the decision's transaction)."""
    if comment == "boom":
        raise RuntimeError("the owner refused the outcome")
    OUTCOMES.append((ctx.tenant.slug, subject_id, outcome, comment, decided_by))


class Env:
    def __init__(self, system: Context, users: dict[str, Context]) -> None:
        self.system, self.users = system, users

    def __getitem__(self, name: str) -> Context:
        return self.users[name]

    async def start(self, amount: str, by: str = "officer", **kw: Any) -> dict[str, Any]:
        sid = kw.pop("subject_id", uuid.uuid4().hex[:12])
        return await approvals.start(
            self.users[by], subject=kw.pop("subject", SUBJECT), subject_id=sid,
            facts={"amount": amount, "product": "JY01", **kw.pop("facts", {})},
            submitted_by=by, title={"zh-CN": f"申请 {sid}", "en": f"Application {sid}"},
            link=f"/test/{sid}", **kw)


async def setup(new_tenant: Any, workflow: dict[str, Any] | None = None) -> Env:
    from core.identity import create_user

    system = await new_tenant(plugins=["crm", "origination"], records=False)
    async with tenant_scope(system):
        for name, roles in USERS.items():
            await create_user(system, name, f"用户{name}", "test-password-1", roles)
    await approvals.save_workflow(system, workflow or {**DEMO_WORKFLOW, "subject": SUBJECT})
    users = {name: await as_user(system.tenant, name) for name in USERS}
    return Env(system, users)


async def state(env: Env, iid: str) -> dict[str, Any]:
    async with tenant_scope(env.system, write=False):
        rows = await ApprovalInstance.select().where(
            ApprovalInstance.tenant_id == env.system.tenant_id,
            ApprovalInstance.id == uuid.UUID(iid)).output(load_json=True).run()
    return rows[0]


async def path(env: Env, iid: str) -> list[str]:
    return (await state(env, iid))["state"]["path"]


async def inbox_ids(ctx: Context) -> list[str]:
    return [str(r["instance_id"]) for r in (await approvals.inbox(ctx))["items"]]


async def events(env: Env, name: str, iid: str) -> list[dict[str, Any]]:
    async with tenant_scope(env.system, write=False):
        rows = await OutboxMessage.select().where(
            OutboxMessage.tenant_id == env.system.tenant_id,
            OutboxMessage.name == name).output(load_json=True).run()
    return [r["payload"] for r in rows if r["payload"]["instance_id"] == iid]


@pytest.mark.parametrize(("amount", "steps"), [
    ("99999.99", ["risk_review"]),
    ("100000", ["risk_review", "branch_review"]),
    ("100000.00", ["risk_review", "branch_review"]),
    ("500000", ["risk_review", "branch_review"]),
    ("500000.01", ["risk_review", "final_countersign"]),
])
async def test_the_demo_workflow_routes_by_amount(new_tenant: Any, amount: str,
                                                  steps: list[str]) -> None:
    env = await setup(new_tenant)
    started = await env.start(amount)
    assert started["status"] == "in_progress" and started["step"] == "risk_review"
    assert started["id"] in await inbox_ids(env["reviewer"])
    done = await approvals.act(env["reviewer"], started["id"], "approve", "资料齐全")
    assert await path(env, started["id"]) == steps
    assert done["status"] == ("approved" if len(steps) == 1 else "in_progress")
    assert started["id"] not in await inbox_ids(env["reviewer"])


async def test_serial_steps_notify_and_call_the_owner(new_tenant: Any) -> None:
    env = await setup(new_tenant)
    sid = uuid.uuid4().hex[:12]
    a = await env.start("300000", subject_id=sid)
    entered = await events(env, "approval.step_entered", a["id"])
    assert entered[0]["notify"]["roles"] == ["risk_reviewer"]
    assert entered[0]["notify"]["title"]["zh-CN"] == f"待审批：申请 {sid}"
    assert entered[0]["notify"]["link"] == f"/test/{sid}"
    assert a["id"] not in await inbox_ids(env["manager"])
    await approvals.act(env["reviewer"], a["id"], "approve", "同意")
    assert a["id"] in await inbox_ids(env["manager"])
    entered = await events(env, "approval.step_entered", a["id"])
    assert entered[-1]["notify"]["roles"] == ["branch_manager"]
    done = await approvals.act(env["manager"], a["id"], "approve", "同意放款")
    assert done["status"] == "approved"
    assert (env.system.tenant.slug, sid, "approved", "同意放款", "manager") in OUTCOMES
    finished = await events(env, "approval.finished", a["id"])
    assert finished[0]["outcome"] == "approved"
    assert finished[0]["notify"]["users"] == ["officer"]
    items = await approvals.timeline(env["officer"], SUBJECT, sid)
    decided = [(i["kind"], i["actor"], i["comment"]) for i in items
               if i["kind"] in ("approved", "rejected")]
    assert decided == [("approved", "reviewer", "同意"), ("approved", "manager", "同意放款")]
    assert items[-1]["kind"] == "finished" and items[-1]["label"]["zh-CN"] == "审批通过"
    done_by = await approvals.done_by(env["manager"])
    assert [str(r["instance_id"]) for r in done_by] == [a["id"]]
    assert done_by[0]["status"] == "approved" and done_by[0]["comment"] == "同意放款"


async def test_countersign_needs_both_and_nobody_acts_twice(new_tenant: Any) -> None:
    env = await setup(new_tenant)
    a = await env.start("800000")
    await approvals.act(env["reviewer"], a["id"], "approve", "同意")
    assert a["id"] in await inbox_ids(env["finance"]) and a["id"] in await inbox_ids(env["gm"])
    mid = await approvals.act(env["finance"], a["id"], "approve", "资金可安排")
    assert mid["status"] == "in_progress"
    assert a["id"] not in await inbox_ids(env["finance"])
    before = await state(env, a["id"])
    with pytest.raises(ApprovalRefused) as twice:
        await approvals.act(env["finance"], a["id"], "approve", "再批一次")
    assert twice.value.refusal.code == "already_acted" and twice.value.status == 409
    assert "不能重复操作" in twice.value.message("zh-CN")
    assert "already acted" in twice.value.message("en")
    assert (await state(env, a["id"]))["version"] == before["version"]
    done = await approvals.act(env["gm"], a["id"], "approve", "同意")
    assert done["status"] == "approved"


async def test_any_of_named_users_and_rejection(new_tenant: Any) -> None:
    flow = {"id": "pair", "version": 1, "subject": SUBJECT, "name": "二选一",
            "steps": [{"id": "check", "mode": "any",
                       "assignees": {"users": ["reviewer", "reviewer2"]}}]}
    env = await setup(new_tenant, flow)
    a = await env.start("1000")
    assert a["id"] in await inbox_ids(env["reviewer"])
    assert a["id"] in await inbox_ids(env["reviewer2"])
    assert (await approvals.act(env["reviewer2"], a["id"], "approve", "ok"))["status"] == \
        "approved"
    assert a["id"] not in await inbox_ids(env["reviewer"])
    b = await env.start("1000")
    with pytest.raises(ApprovalRefused) as no_comment:
        await approvals.act(env["reviewer"], b["id"], "reject", "  ")
    assert no_comment.value.refusal.code == "comment_required"
    done = await approvals.act(env["reviewer"], b["id"], "reject", "收入证明不足")
    assert done["status"] == "rejected"
    assert OUTCOMES[-1][2:] == ("rejected", "收入证明不足", "reviewer")


async def test_transfer_and_add_an_approver(new_tenant: Any) -> None:
    env = await setup(new_tenant)
    a = await env.start("50000")
    with pytest.raises(ValidationFailed):
        await approvals.act(env["reviewer"], a["id"], "transfer", "出差")
    with pytest.raises(ValidationFailed) as ghost:  # nobody by that name: the task stays
        await approvals.act(env["reviewer"], a["id"], "transfer", "出差", to_user="ghost")
    assert ghost.value.errors[0].message("zh-CN") == "用户“ghost”不存在或已停用"
    assert a["id"] in await inbox_ids(env["reviewer"])
    await approvals.act(env["reviewer"], a["id"], "transfer", "出差，请代审", to_user="reviewer2")
    assert a["id"] not in await inbox_ids(env["reviewer"])
    assert a["id"] in await inbox_ids(env["reviewer2"])
    moved = await events(env, "approval.transferred", a["id"])
    assert moved[0]["notify"]["users"] == ["reviewer2"] and moved[0]["to"] == "reviewer2"
    assert [r["status"] for r in await approvals.done_by(env["reviewer"])] == ["transferred"]
    await approvals.act(env["reviewer2"], a["id"], "add", "请财务确认", user="finance")
    assert a["id"] in await inbox_ids(env["finance"])
    mid = await approvals.act(env["reviewer2"], a["id"], "approve", "同意")
    assert mid["status"] == "in_progress"  # the added approver must approve too
    done = await approvals.act(env["finance"], a["id"], "approve", "确认")
    assert done["status"] == "approved"


async def test_return_and_resubmit(new_tenant: Any) -> None:
    env = await setup(new_tenant)
    sid = uuid.uuid4().hex[:12]
    a = await env.start("60000", subject_id=sid)
    await approvals.act(env["reviewer"], a["id"], "return", "请补充银行流水")
    row = await state(env, a["id"])
    assert row["status"] == "returned"
    assert OUTCOMES[-1][1:] == (sid, "returned", "请补充银行流水", "reviewer")
    assert a["id"] not in await inbox_ids(env["reviewer"])
    assert a["id"] in await inbox_ids(env["officer"])  # back with its submitter
    returned = await events(env, "approval.returned", a["id"])
    assert returned[0]["notify"]["users"] == ["officer"]
    with pytest.raises(ApprovalRefused) as not_mine:
        await approvals.act(env["reviewer2"], a["id"], "resubmit")
    assert not_mine.value.refusal.code == "not_submitter"
    back = await approvals.act(env["officer"], a["id"], "resubmit", "已补充流水")
    assert back["status"] == "in_progress" and back["step"] == "risk_review"
    assert a["id"] not in await inbox_ids(env["officer"])
    assert a["id"] in await inbox_ids(env["reviewer2"])
    # the returning reviewer acted at an earlier entry of the step: may decide again
    done = await approvals.act(env["reviewer"], a["id"], "approve", "补充后同意")
    assert done["status"] == "approved"
    kinds = [i["kind"] for i in await approvals.timeline(env["officer"], SUBJECT, sid)]
    assert kinds.index("returned") < kinds.index("resubmitted") < kinds.index("finished")


async def test_refusals_are_audited_and_write_nothing(new_tenant: Any) -> None:
    env = await setup(new_tenant)
    a = await env.start("50000", by="maker")  # maker holds risk_reviewer too
    assert a["id"] not in await inbox_ids(env["maker"])
    before = await state(env, a["id"])
    with pytest.raises(ApprovalRefused) as own:
        await approvals.act(env["maker"], a["id"], "approve", "自己批")
    assert own.value.refusal.code == "maker_checker" and own.value.status == 403
    assert "不能审批自己的申请" in own.value.message("zh-CN")
    with pytest.raises(ApprovalRefused) as wrong:
        await approvals.act(env["manager"], a["id"], "approve", "越级")
    assert wrong.value.refusal.code == "not_your_task"
    assert "不是分配给你的" in wrong.value.message("zh-CN")
    after = await state(env, a["id"])
    assert after["version"] == before["version"] and after["state"] == before["state"]
    async with tenant_scope(env.system, write=False):
        audited = await AuditEntry.select(AuditEntry.username, AuditEntry.diff).where(
            AuditEntry.tenant_id == env.system.tenant_id,
            AuditEntry.action == "approval_refused").output(load_json=True).run()
        logged = await AuthEvent.select(AuthEvent.username).where(
            AuthEvent.tenant_id == env.system.tenant_id,
            AuthEvent.kind == "approval_refused").run()
    assert {(r["username"], r["diff"]["reason"]) for r in audited} == {
        ("maker", "maker_checker"), ("manager", "not_your_task")}
    assert len(logged) == 2
    with pytest.raises(Conflict):  # a stale form
        await approvals.act(env["reviewer"], a["id"], "approve", "ok",
                            expected_version=before["version"] - 1)


async def test_a_failing_owner_callback_undoes_the_decision(new_tenant: Any) -> None:
    env = await setup(new_tenant)
    a = await env.start("50000")
    with pytest.raises(RuntimeError):
        await approvals.act(env["reviewer"], a["id"], "approve", "boom")
    assert (await state(env, a["id"]))["status"] == "in_progress"
    assert a["id"] in await inbox_ids(env["reviewer"])


async def test_two_clicks_at_once_one_wins(new_tenant: Any) -> None:
    env = await setup(new_tenant)
    for clicks in (("reviewer", "reviewer2"), ("reviewer", "reviewer")):
        a = await env.start("50000")
        results = await asyncio.gather(
            *(approvals.act(env[u], a["id"], "approve", "同意") for u in clicks),
            return_exceptions=True)
        wins = [r for r in results if isinstance(r, dict)]
        lost = [r for r in results if not isinstance(r, dict)]
        assert len(wins) == 1 and len(lost) == 1, results
        assert isinstance(lost[0], (ApprovalRefused, Conflict)), lost
        row = await state(env, a["id"])
        assert row["status"] == "approved" and row["version"] == 2
        assert len(row["state"]["decisions"]) == 1


async def test_deadlines_remind_then_escalate_once(new_tenant: Any) -> None:
    env = await setup(new_tenant)
    a = await env.start("300000")
    t0 = datetime.now(UTC)
    early = await approvals.run_deadlines(env.system, t0 + timedelta(hours=1))
    assert early["instances"] == 0
    first = await approvals.run_deadlines(env.system, t0 + timedelta(hours=21))
    assert first["reminded"] == 1 and first["escalated"] == 0
    assert (await approvals.run_deadlines(env.system, t0 + timedelta(hours=21)))[
        "instances"] == 0
    reminded = await events(env, "approval.reminded", a["id"])
    assert len(reminded) == 1 and reminded[0]["notify"]["roles"] == ["risk_reviewer"]
    assert a["id"] not in await inbox_ids(env["manager"])
    late = t0 + timedelta(hours=25)
    box = await approvals.inbox(env["reviewer"], now=late)
    assert box["counts"]["overdue"] == 1
    second = await approvals.run_deadlines(env.system, late)
    assert second["escalated"] == 1
    assert (await approvals.run_deadlines(env.system, late + timedelta(hours=5)))[
        "instances"] == 0
    escalated = await events(env, "approval.escalated", a["id"])
    assert len(escalated) == 1
    assert escalated[0]["notify"]["roles"] == ["branch_manager", "risk_reviewer"]
    assert a["id"] in await inbox_ids(env["manager"])  # the escalation target may act
    await approvals.act(env["manager"], a["id"], "approve", "代为审查")
    row = await state(env, a["id"])
    assert row["step"] == "branch_review" and row["next_due_at"] is not None
    async with tenant_scope(env.system, write=False):
        rows = await ApprovalTask.select(ApprovalTask.assignee, ApprovalTask.status,
                                         ApprovalTask.acted_by).where(
            ApprovalTask.tenant_id == env.system.tenant_id,
            ApprovalTask.instance_id == uuid.UUID(a["id"]),
            ApprovalTask.entry == 1).run()
    assert {(r["assignee"], r["status"], r["acted_by"]) for r in rows} == {
        ("role:risk_reviewer", "approved", "manager"),
        ("role:branch_manager", "approved", "manager")}


async def test_in_flight_instances_keep_their_version(new_tenant: Any) -> None:
    env = await setup(new_tenant)
    old = await env.start("300000")
    quick = {**DEMO_WORKFLOW, "subject": SUBJECT,
             "steps": [{**DEMO_WORKFLOW["steps"][0], "next": "approved"}]}
    saved = await approvals.save_workflow(env.system, quick)
    assert saved["version"] == 2
    new = await env.start("300000")
    assert (await state(env, new["id"]))["workflow_version"] == 2
    await approvals.act(env["reviewer"], old["id"], "approve", "同意")
    await approvals.act(env["reviewer"], new["id"], "approve", "同意")
    assert (await state(env, old["id"]))["step"] == "branch_review"  # version 1's route
    assert (await state(env, new["id"]))["status"] == "approved"
    versions = [(v.key, v.version, v.active) for v in await approvals.workflows(env.system)]
    assert versions == [("loan_approval", 2, True), ("loan_approval", 1, False)]


async def test_start_refusals(new_tenant: Any) -> None:
    env = await setup(new_tenant)
    sid = uuid.uuid4().hex[:12]
    await env.start("1000", subject_id=sid)
    with pytest.raises(Conflict):
        await env.start("1000", subject_id=sid)
    with pytest.raises(ValidationFailed) as none:
        await env.start("1000", subject="nothing_here")
    assert "没有适用于" in none.value.errors[0].message("zh-CN")
    with pytest.raises(ValidationFailed) as bad:
        await env.start("12万")
    assert bad.value.errors[0].field == "amount"
    with pytest.raises(ValidationFailed):
        await approvals.save_workflow(env.system, {**DEMO_WORKFLOW, "subject": SUBJECT,
                                                   "steps": DEMO_WORKFLOW["steps"][:1]})


async def test_an_existing_tenant_gets_a_new_grant_by_enabling_the_plugin_again(
        new_tenant: Any) -> None:
    """A tenant from before approval.reassign existed: its branch managers lack it until
    the operator re-runs the plugin's grants (docs/operator-guide.md)."""
    from core import admin
    from core.tenancy import get_tenant, set_plugin_enabled

    env = await setup(new_tenant)
    system = env.system
    role = {r["name"]: r for r in await admin.list_roles(system)}["branch_manager"]
    older = sorted(set(role["permissions"]) - {"approval.reassign"})
    await admin.save_role(system, "branch_manager", role["label_zh"], role["label_en"], older,
                          role["scope"])
    assert not (await as_user(system.tenant, "manager")).access.can("approval.reassign")
    await set_plugin_enabled(system.tenant.slug, "origination", True)
    after = {r["name"]: r for r in await admin.list_roles(system)}["branch_manager"]
    assert set(after["permissions"]) == set(older) | {"approval.reassign"}
    assert set((await get_tenant(system.tenant.slug)).plugins) == set(system.tenant.plugins)
