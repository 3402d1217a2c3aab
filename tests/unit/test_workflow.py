"""The approval workflow engine (plugins/origination/workflow.py): the demo's routing at its
boundaries, serial steps, countersign, any-of, transfer, adding an approver, return and
resubmit, reject, deadlines, maker-checker, refusals, versioning, and hypothesis properties
over random action sequences. Definition validation and the diagram are in
test_workflow_definition.py, conditions in test_workflow_conditions.py."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from plugins.origination.examples import DEMO_WORKFLOW
from plugins.origination.instance import ACTOR_EVENTS, SYSTEM_EVENTS
from plugins.origination.serialize import event_data, instance_data, load_instance
from plugins.origination.workflow import (
    ActionRefused,
    Actor,
    FactsError,
    Instance,
    Outcome,
    add_approver,
    apply_due,
    approve,
    due_actions,
    eligible_tasks,
    next_due,
    parse_definition,
    reassign,
    reject,
    resubmit,
    return_for_info,
    start,
    transfer,
)

TZ = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=TZ)
H = timedelta(hours=1)
CJK = re.compile(r"[\u4e00-\u9fff]")
DEMO = parse_definition(DEMO_WORKFLOW)

OFFICER = Actor("officer", {"loan_officer"})
OFFICER2 = Actor("officer2", {"loan_officer"})
REVIEWER = Actor("reviewer", {"risk_reviewer"})
REVIEWER2 = Actor("reviewer2", {"risk_reviewer"})
MANAGER = Actor("manager", {"branch_manager"})
FINANCE = Actor("finance", {"finance"})
GM = Actor("gm", {"general_manager"})
EXPERT = Actor("expert", {"loan_officer"})


def submit(amount: object = "300000", definition=DEMO, **facts: object) -> Instance:
    return start(definition, instance_id="app-1", facts={"amount": amount, **facts},
                 created_by="officer", now=T0).instance


def kinds(outcome: Outcome) -> list[str]:
    return [e.kind for e in outcome.events]


def refusal(code: str, fn, *args, **kwargs) -> ActionRefused:
    with pytest.raises(ActionRefused) as info:
        fn(*args, **kwargs)
    err = info.value
    assert err.code == code, (err.code, err.en)
    assert CJK.search(err.zh) and not CJK.search(err.en)
    return err


def run(inst: Instance, *approvers: Actor) -> Instance:
    for actor in approvers:
        inst = approve(inst, actor, T0).instance
    return inst


# -- the demo's routing at its boundaries ----------------------------------------------------
# under 100,000: risk review only; 100,000 to 500,000 inclusive: then the branch manager;
# above 500,000 (from 500,000.01): then finance and the general manager countersign.

@pytest.mark.parametrize(("amount", "path"), [
    ("0.01", ["risk_review"]),
    ("99999.99", ["risk_review"]),
    ("100000", ["risk_review", "branch_review"]),
    (100000, ["risk_review", "branch_review"]),
    ("100000.00", ["risk_review", "branch_review"]),
    ("300000", ["risk_review", "branch_review"]),
    ("500000", ["risk_review", "branch_review"]),
    ("500000.00", ["risk_review", "branch_review"]),
    ("500000.01", ["risk_review", "final_countersign"]),
    ("5000000", ["risk_review", "final_countersign"]),
])
def test_demo_routing_boundaries(amount: object, path: list[str]) -> None:
    inst = submit(amount)
    assert inst.step == "risk_review"
    inst = approve(inst, REVIEWER, T0).instance
    if len(path) == 1:
        assert inst.status == "approved"
    else:
        assert inst.step == path[1] and inst.status == "in_progress"
        inst = run(inst, MANAGER) if path[1] == "branch_review" else run(inst, FINANCE, GM)
        assert inst.status == "approved"
    assert list(inst.path) == path


def test_a_missing_amount_takes_the_default_strictest_route() -> None:
    inst = start(DEMO, instance_id="x", facts={}, created_by="officer", now=T0).instance
    assert approve(inst, REVIEWER, T0).instance.step == "final_countersign"


def test_float_and_malformed_facts_are_refused_at_submission() -> None:
    for bad in (300000.0, "3e5", "300000.001", "abc"):
        with pytest.raises(FactsError) as info:
            submit(bad)
        assert info.value.code == "bad_fact" and info.value.field == "amount"
    with pytest.raises(FactsError, match="float"):
        submit("300000", ratio=0.5)  # a float anywhere, not only in routed fields


def test_start_events_and_the_first_task() -> None:
    out = start(DEMO, instance_id="app-1", facts={"amount": Decimal("300000.00")},
                created_by="officer", submitted_by="officer2", now=T0)
    assert kinds(out) == ["started", "step_entered"]
    started, entered = out.events
    assert (started.seq, started.actor, dict(started.data)) == (
        1, "officer2", {"definition": "loan_approval", "version": 1})
    assert entered.actor is None and entered.step == "risk_review"
    assert entered.data["due_at"] == (T0 + 24 * H).isoformat()
    assert entered.data["tasks"][0]["role"] == "risk_reviewer"
    inst = out.instance
    assert inst.facts["amount"] == "300000.00"  # stored JSON-able, as a string
    assert [t.id for t in inst.tasks] == ["1.1"] and inst.seq == 2


def test_start_can_route_straight_to_an_end() -> None:
    d = parse_definition({"id": "auto", "version": 1, "start": [
        {"when": {"field": "grade", "op": "eq", "value": "E"}, "to": "rejected"},
        {"when": {"field": "amount", "op": "le", "value": "5000"}, "to": "approved"},
        {"to": "review"}], "steps": [{"id": "review", "assignees": {"roles": ["risk_reviewer"]}}]})
    out = start(d, instance_id="a", facts={"amount": "3000", "grade": "E"}, created_by="officer",
                now=T0)
    assert kinds(out) == ["started", "finished"] and out.instance.status == "rejected"
    assert out.instance.path == () and out.instance.step is None
    out = start(d, instance_id="b", facts={"amount": "3000"}, created_by="officer", now=T0)
    assert out.instance.status == "approved"
    assert submit("5000.01", definition=d).step == "review"


def test_a_named_approver_who_is_the_maker_cannot_take_the_slot() -> None:
    d = parse_definition({"id": "named", "version": 1, "steps": [
        {"id": "sign", "mode": "all", "deadline_hours": 8,
         "escalate_to": {"role": "general_manager"},
         "assignees": {"users": ["officer", "finance"]}}]})
    inst = approve(submit(definition=d), FINANCE, T0).instance
    refusal("maker_checker", approve, inst, Actor("officer"), T0)
    inst = apply_due(inst, T0 + 8 * H).instance  # the escalation fills the maker's slot
    assert approve(inst, GM, T0 + 9 * H).instance.status == "approved"


# -- serial steps ------------------------------------------------------------------------------

def test_serial_steps() -> None:
    inst = submit("300000")
    out = approve(inst, REVIEWER, T0 + H, comment="资料齐全")
    assert kinds(out) == ["approved", "step_completed", "step_entered"]
    assert out.events[0].data["comment"] == "资料齐全" and out.events[0].task == "1.1"
    assert out.events[1].data["to"] == "branch_review"
    inst = out.instance
    assert inst.step == "branch_review" and [t.id for t in inst.tasks] == ["2.1"]
    out = approve(inst, MANAGER, T0 + 2 * H)
    assert kinds(out) == ["approved", "step_completed", "finished"]
    assert out.events[-1].data["outcome"] == "approved" and out.events[-1].step == "branch_review"
    assert out.instance.status == "approved" and out.instance.step is None
    assert [d.user for d in out.instance.decisions] == ["reviewer", "manager"]
    assert [e.seq for e in out.events] == [6, 7, 8]


# -- countersign (会签) ------------------------------------------------------------------------

def at_countersign() -> Instance:
    inst = approve(submit("800000"), REVIEWER, T0).instance
    assert inst.step == "final_countersign"
    return inst


def test_countersign_needs_every_slot() -> None:
    inst = at_countersign()
    out = approve(inst, GM, T0)
    assert kinds(out) == ["approved"] and out.instance.step == "final_countersign"
    assert [t.status for t in out.instance.tasks] == ["pending", "approved"]
    out = approve(out.instance, FINANCE, T0)
    assert kinds(out) == ["approved", "step_completed", "finished"]
    assert out.instance.status == "approved"


@pytest.mark.parametrize("first", [True, False])
def test_one_rejection_rejects_a_countersign(first: bool) -> None:
    inst = at_countersign()
    if not first:
        inst = approve(inst, FINANCE, T0).instance
    out = reject(inst, GM, T0, comment="负债率过高")
    assert kinds(out) == ["rejected", "finished"]
    assert out.instance.status == "rejected" and out.instance.tasks == ()
    assert out.events[-1].data["outcome"] == "rejected"


def test_one_person_fills_one_countersign_slot() -> None:
    both = Actor("deputy", {"finance", "general_manager"})
    inst = approve(at_countersign(), both, T0).instance
    refusal("already_acted", approve, inst, both, T0)
    assert approve(inst, GM, T0).instance.status == "approved"


# -- any-of (或签) -----------------------------------------------------------------------------

ANY_OF = {"id": "any_of", "version": 1, "steps": [
    {"id": "review", "mode": "any",
     "assignees": {"roles": ["risk_reviewer", "branch_manager"], "users": ["chief"]}},
    {"id": "final", "assignees": {"roles": ["general_manager"]}}],
    "start": "review"}
ANY_OF["steps"][0]["next"] = "final"


@pytest.mark.parametrize("who", [REVIEWER, MANAGER, Actor("chief")])
def test_any_of_one_approval_suffices(who: Actor) -> None:
    inst = submit(definition=parse_definition(ANY_OF))
    assert len(inst.tasks) == 3
    out = approve(inst, who, T0)
    assert kinds(out) == ["approved", "step_completed", "step_entered"]
    assert out.instance.step == "final"
    # the step the others were part of is over: they cannot act on it
    refusal("not_your_task", approve, out.instance, REVIEWER2, T0)


def test_any_of_rejection_by_one_rejects() -> None:
    inst = submit(definition=parse_definition(ANY_OF))
    assert reject(inst, Actor("chief"), T0, "不符合准入").instance.status == "rejected"


# -- transfer (转办) ---------------------------------------------------------------------------

def test_transfer_hands_the_task_to_a_named_user() -> None:
    inst = submit("300000")
    out = transfer(inst, REVIEWER, "expert", T0, comment="请专家审查")
    assert kinds(out) == ["transferred"]
    e = out.events[0]
    assert (e.actor, e.task, e.data["to"], e.data["from_role"]) == (
        "reviewer", "1.1", "expert", "risk_reviewer")
    inst = out.instance
    [task] = inst.tasks
    assert (task.id, task.user, task.role, task.transferred_from) == ("1.1", "expert", None,
                                                                      "reviewer")
    # the slot has moved: neither the transferrer nor another holder of the role may act
    refusal("not_your_task", approve, inst, REVIEWER, T0)
    refusal("not_your_task", approve, inst, REVIEWER2, T0)
    assert eligible_tasks(inst, EXPERT) == (task,)
    assert approve(inst, EXPERT, T0).instance.step == "branch_review"


def test_transfer_refusals() -> None:
    inst = submit("300000")
    refusal("target_is_self", transfer, inst, REVIEWER, "reviewer", T0)
    refusal("maker_checker_target", transfer, inst, REVIEWER, "officer", T0)
    refusal("bad_user", transfer, inst, REVIEWER, " ", T0)
    refusal("not_your_task", transfer, inst, MANAGER, "expert", T0)
    refusal("maker_checker", transfer, inst, OFFICER, "expert", T0)
    inst = add_approver(inst, REVIEWER, "expert", T0).instance
    refusal("already_assigned", transfer, inst, REVIEWER, "expert", T0)


def test_a_countersign_slot_can_be_transferred() -> None:
    inst = transfer(at_countersign(), FINANCE, "cfo", T0).instance
    inst = run(inst, GM, Actor("cfo"))
    assert inst.status == "approved"


def test_an_administrator_reassigns_a_task_nobody_left_can_take() -> None:
    # the only named approver of the last step was added to the first one and approved it:
    # nobody may approve the last step (distinct approvers), so an administrator reassigns
    d = parse_definition({"id": "two", "version": 1, "steps": [
        {"id": "first", "assignees": {"users": ["a"]}, "next": "second"},
        {"id": "second", "assignees": {"users": ["b"]}}]})
    inst = submit(definition=d)
    inst = add_approver(inst, Actor("a"), "b", T0).instance
    inst = run(inst, Actor("b"), Actor("a"))
    assert inst.step == "second" and eligible_tasks(inst, Actor("b")) == ()
    refusal("comment_required", reassign, inst, "admin", "2.1", "c", T0, "")
    refusal("already_approved", reassign, inst, "admin", "2.1", "a", T0, "a 已离职")
    refusal("maker_checker_target", reassign, inst, "admin", "2.1", "officer", T0, "x")
    refusal("maker_checker", reassign, inst, "officer", "2.1", "c", T0, "x")
    refusal("task_closed", reassign, inst, "admin", "1.1", "c", T0, "x")
    out = reassign(inst, "admin", "2.1", "c", T0, "b 已审批前一步骤")
    assert kinds(out) == ["reassigned"] and out.events[0].actor == "admin"
    assert out.instance.tasks[0].user == "c" and out.instance.tasks[0].transferred_from == "admin"
    assert approve(out.instance, Actor("c"), T0).instance.status == "approved"
    refusal("finished", reassign, approve(out.instance, Actor("c"), T0).instance, "admin", "2.1",
            "d", T0, "x")


# -- adding an approver (加签) ------------------------------------------------------------------

def test_an_added_approver_must_approve_too() -> None:
    inst = submit("50000")
    out = add_approver(inst, REVIEWER, "expert", T0, comment="请协助评估抵押物")
    assert kinds(out) == ["approver_added"]
    assert out.events[0].task == "1.2" and out.events[0].data["user"] == "expert"
    inst = out.instance
    assert [(t.id, t.user, t.added_by) for t in inst.tasks] == [
        ("1.1", None, None), ("1.2", "expert", "reviewer")]
    inst = approve(inst, REVIEWER, T0).instance
    assert inst.step == "risk_review" and inst.status == "in_progress"  # waits for expert
    out = approve(inst, EXPERT, T0)
    assert kinds(out) == ["approved", "step_completed", "finished"]


def test_the_added_approver_may_go_first_and_may_reject() -> None:
    inst = add_approver(submit("50000"), REVIEWER, "expert", T0).instance
    inst = approve(inst, EXPERT, T0).instance
    assert inst.step == "risk_review"
    assert approve(inst, REVIEWER, T0).instance.status == "approved"
    inst = add_approver(at_countersign(), GM, "expert", T0).instance
    inst = run(inst, GM, FINANCE)
    assert inst.step == "final_countersign"
    assert reject(inst, EXPERT, T0, "抵押物估值不足").instance.status == "rejected"


def test_add_approver_refusals() -> None:
    inst = submit("50000")
    refusal("maker_checker_target", add_approver, inst, REVIEWER, "officer", T0)
    refusal("target_is_self", add_approver, inst, REVIEWER, "reviewer", T0)
    refusal("not_your_task", add_approver, inst, MANAGER, "expert", T0)
    inst = add_approver(inst, REVIEWER, "expert", T0).instance
    refusal("already_assigned", add_approver, inst, REVIEWER, "expert", T0)
    for i in range(9):
        inst = add_approver(inst, REVIEWER, f"u{i}", T0).instance
    refusal("too_many_approvers", add_approver, inst, REVIEWER, "one_more", T0)
    done = approve(submit("300000"), REVIEWER, T0).instance
    refusal("already_acted", add_approver, done, REVIEWER, "expert", T0)


# -- return for more information and resubmit (退回补充) ----------------------------------------

def test_return_and_resubmit_to_the_same_step() -> None:
    inst = approve(submit("300000"), REVIEWER, T0).instance
    out = return_for_info(inst, MANAGER, T0 + H, "请补充近六个月银行流水")
    assert kinds(out) == ["returned"]
    assert out.events[0].data["to"] == "officer"
    inst = out.instance
    assert inst.status == "returned" and inst.step == "branch_review"
    assert due_actions(inst, T0 + 100 * H) == [] and next_due(inst) is None
    refusal("awaiting_resubmission", approve, inst, MANAGER, T0)
    refusal("not_submitter", resubmit, inst, OFFICER2, T0)
    refusal("not_submitter", resubmit, inst, MANAGER, T0)
    out = resubmit(inst, OFFICER, T0 + 5 * H, facts={"amount": "300000",
                                                     "bank_statements": "doc-9"},
                   comment="已补充")
    assert kinds(out) == ["resubmitted", "step_entered"]
    assert out.events[0].data["changed"] == ["bank_statements"]
    inst = out.instance
    assert inst.status == "in_progress" and inst.step == "branch_review"
    assert list(inst.path) == ["risk_review", "branch_review"]
    assert [t.id for t in inst.tasks] == ["3.1"] and inst.entered_at == T0 + 5 * H
    # the same manager decides again on the resubmitted application
    assert approve(inst, MANAGER, T0 + 6 * H).instance.status == "approved"


def test_resubmission_keeps_transfers_and_added_approvers() -> None:
    inst = submit("50000")
    inst = transfer(inst, REVIEWER, "expert", T0).instance
    inst = add_approver(inst, EXPERT, "lawyer", T0).instance
    inst = return_for_info(inst, Actor("lawyer"), T0, "缺少担保合同").instance
    inst = resubmit(inst, OFFICER, T0).instance
    assert [(t.user, t.status, t.transferred_from, t.added_by) for t in inst.tasks] == [
        ("expert", "pending", "reviewer", None), ("lawyer", "pending", None, "expert")]
    assert run(inst, Actor("lawyer"), EXPERT).status == "approved"


def test_resubmission_with_an_amount_past_a_threshold_starts_again() -> None:
    inst = approve(submit("300000"), REVIEWER, T0).instance
    inst = return_for_info(inst, MANAGER, T0, "金额需重新核定").instance
    out = resubmit(inst, OFFICER, T0, facts={"amount": "600000"})
    assert kinds(out) == ["resubmitted", "rerouted", "step_entered"]
    assert out.events[1].data["previous"] == ["risk_review", "branch_review"]
    inst = out.instance
    assert inst.step == "risk_review" and list(inst.path) == ["risk_review"]
    inst = approve(inst, REVIEWER2, T0).instance
    assert inst.step == "final_countersign"


def test_resubmission_with_a_change_inside_the_band_stays() -> None:
    inst = approve(submit("300000"), REVIEWER, T0).instance
    inst = return_for_info(inst, MANAGER, T0, "金额需重新核定").instance
    out = resubmit(inst, OFFICER, T0, facts={"amount": "450000"})
    assert kinds(out) == ["resubmitted", "step_entered"]
    assert out.instance.step == "branch_review" and out.instance.facts["amount"] == "450000"


def test_return_and_reject_need_a_comment_and_resubmit_needs_a_return() -> None:
    inst = submit()
    for fn in (reject, return_for_info):
        err = refusal("comment_required", fn, inst, REVIEWER, T0, "  ")
        assert err.field == "comment"
    refusal("not_returned", resubmit, inst, OFFICER, T0)


# -- reject --------------------------------------------------------------------------------------

def test_reject_ends_the_flow_and_nothing_acts_after_the_end() -> None:
    out = reject(submit("300000"), REVIEWER, T0, "征信有严重逾期")
    assert kinds(out) == ["rejected", "finished"]
    inst = out.instance
    assert inst.status == "rejected" and inst.step is None
    for fn, args in ((approve, ()), (reject, ("x",)), (return_for_info, ("x",)),
                     (transfer, ()), (add_approver, ())):
        actor = MANAGER
        if fn in (transfer, add_approver):
            refusal("finished", fn, inst, actor, "expert", T0)
        else:
            refusal("finished", fn, inst, actor, T0, *args)
    refusal("finished", resubmit, inst, OFFICER, T0)
    assert eligible_tasks(inst, MANAGER) == () and due_actions(inst, T0 + 99 * H) == []
    refusal("finished", approve, run(submit("1000"), REVIEWER), REVIEWER2, T0)


# -- maker-checker ---------------------------------------------------------------------------------

def test_maker_checker() -> None:
    maker = Actor("officer", {"loan_officer", "risk_reviewer"})  # even holding the role
    inst = submit("50000")
    err = refusal("maker_checker", approve, inst, maker, T0)
    assert "创建" in err.zh and "created" in err.en
    for fn in (reject, return_for_info):
        refusal("maker_checker", fn, inst, maker, T0, "x")
        refusal("maker_checker", fn, inst, maker, T0, "")  # who first, then the comment
    assert eligible_tasks(inst, maker) == ()
    # the person who submitted on the creator's behalf may not approve either
    inst = start(DEMO, instance_id="a2", facts={"amount": "50000"}, created_by="officer",
                 submitted_by="reviewer", now=T0).instance
    err = refusal("maker_checker", approve, inst, REVIEWER, T0)
    assert "提交" in err.zh and "submitted" in err.en
    assert approve(inst, REVIEWER2, T0).instance.status == "approved"


# -- acting twice, or on a step that is not yours ------------------------------------------------

def test_acting_twice_and_not_your_step() -> None:
    inst = submit("300000")
    refusal("not_your_task", approve, inst, MANAGER, T0)
    refusal("not_your_task", approve, inst, EXPERT, T0)
    inst = approve(inst, REVIEWER, T0).instance
    err = refusal("already_acted", approve, inst, REVIEWER, T0)
    assert "风险审查" in err.zh and "Risk review" in err.en
    # a stale inbox item (the task id of a step that has moved on)
    refusal("already_acted", approve, inst, REVIEWER, T0, task="1.1")
    refusal("task_closed", approve, inst, MANAGER, T0, task="1.1")
    refusal("task_closed", approve, inst, MANAGER, T0, task="9.9")
    refusal("not_your_task", approve, inst, REVIEWER2, T0, task="2.1")
    assert approve(inst, MANAGER, T0, task="2.1").instance.status == "approved"


def test_a_named_task_is_taken_before_a_role_task() -> None:
    inst = add_approver(submit("50000"), REVIEWER, "reviewer2", T0).instance
    out = approve(inst, REVIEWER2, T0)  # holds the role and is named: the named task
    assert out.events[0].task == "1.2"


# -- deadlines, reminders and escalation --------------------------------------------------------

def test_reminder_then_escalation() -> None:
    inst = submit("300000")
    assert next_due(inst) == T0 + 20 * H
    assert due_actions(inst, T0 + 19 * H) == []
    [remind] = due_actions(inst, T0 + 20 * H)
    assert (remind.kind, remind.step, remind.at, remind.due_at, remind.tasks) == (
        "remind", "risk_review", T0 + 20 * H, T0 + 24 * H, ("1.1",))
    assert [a.as_data() for a in remind.notify] == [{"role": "risk_reviewer"}]
    out = apply_due(inst, T0 + 21 * H)
    assert kinds(out) == ["reminded"] and out.events[0].actor is None
    inst = out.instance
    assert due_actions(inst, T0 + 23 * H) == []  # never twice
    assert apply_due(inst, T0 + 23 * H).events == ()
    assert next_due(inst) == T0 + 24 * H
    refusal("not_your_task", approve, inst, MANAGER, T0 + 23 * H)
    [esc] = due_actions(inst, T0 + 24 * H)
    assert esc.kind == "escalate"
    assert [a.as_data() for a in esc.notify] == [{"role": "branch_manager"},
                                                 {"role": "risk_reviewer"}]
    out = apply_due(inst, T0 + 25 * H)
    assert kinds(out) == ["escalated"] and out.events[0].data["notify"][0] == {
        "role": "branch_manager"}
    inst = out.instance
    assert next_due(inst) is None and due_actions(inst, T0 + 99 * H) == []
    # the escalation target may now act on the overdue step (maker-checker still applies)
    assert eligible_tasks(inst, MANAGER) == inst.tasks
    inst = approve(inst, MANAGER, T0 + 26 * H).instance
    assert inst.step == "branch_review" and not inst.escalated and not inst.reminded
    assert next_due(inst) == T0 + 26 * H + 20 * H
    # the manager approved the risk review: the branch step needs another person
    err = refusal("already_acted", approve, inst, MANAGER, T0 + 27 * H)
    assert "风险审查" in err.zh and "different person" in err.en
    assert eligible_tasks(inst, MANAGER) == ()
    inst = apply_due(inst, T0 + 50 * H).instance  # escalated to the general manager
    assert approve(inst, GM, T0 + 51 * H).instance.status == "approved"


def test_distinct_approvers_can_be_turned_off() -> None:
    lax = parse_definition({**DEMO_WORKFLOW, "distinct_approvers": False})
    both = Actor("boss", {"risk_reviewer", "branch_manager"})
    inst = approve(submit("300000", definition=lax), both, T0).instance
    assert approve(inst, both, T0).instance.status == "approved"
    # on by default: the same person cannot take both steps, nor be handed the second one
    inst = approve(submit("300000"), both, T0).instance
    refusal("already_acted", approve, inst, both, T0)
    refusal("already_approved", transfer, inst, MANAGER, "boss", T0)
    refusal("already_approved", add_approver, inst, MANAGER, "boss", T0)


def test_escalation_late_skips_the_reminder() -> None:
    inst = submit("300000")
    assert [a.kind for a in due_actions(inst, T0 + 30 * H)] == ["escalate"]
    inst = apply_due(inst, T0 + 30 * H).instance
    assert inst.reminded and inst.escalated and due_actions(inst, T0 + 31 * H) == []


def test_overdue_without_an_escalation_target() -> None:
    inst = at_countersign()  # 48 h, reminder 8 h before, no escalate_to
    assert [a.kind for a in due_actions(inst, T0 + 40 * H)] == ["remind"]
    [over] = due_actions(inst, T0 + 48 * H)
    assert over.kind == "overdue" and {a.role for a in over.notify} == {"finance",
                                                                         "general_manager"}
    inst = apply_due(inst, T0 + 48 * H).instance
    assert eligible_tasks(inst, MANAGER) == ()
    # after one approval only the pending slot is told
    inst = approve(at_countersign(), GM, T0).instance
    [over] = due_actions(inst, T0 + 48 * H)
    assert [a.as_data() for a in over.notify] == [{"role": "finance"}]


def test_a_step_without_deadline_is_never_due() -> None:
    inst = submit(definition=parse_definition(ANY_OF))
    assert due_actions(inst, T0 + 1000 * H) == [] and next_due(inst) is None


def test_resubmission_restarts_the_clock_and_transfer_does_not() -> None:
    inst = transfer(submit("300000"), REVIEWER, "expert", T0 + 10 * H).instance
    assert next_due(inst) == T0 + 20 * H
    inst = return_for_info(inst, EXPERT, T0 + 12 * H, "补充").instance
    inst = resubmit(inst, OFFICER, T0 + 30 * H).instance
    assert next_due(inst) == T0 + 50 * H


def test_times_must_carry_a_time_zone() -> None:
    naive = datetime(2026, 11, 20, 9)
    with pytest.raises(ValueError, match="timezone-aware"):
        start(DEMO, instance_id="x", facts={}, created_by="officer", now=naive)
    with pytest.raises(ValueError):
        due_actions(submit(), naive)
    with pytest.raises(ValueError):
        approve(submit(), REVIEWER, naive)


# -- versioning ------------------------------------------------------------------------------------

def demo_v2() -> dict:
    v2 = copy.deepcopy(DEMO_WORKFLOW)
    v2["version"] = 2
    routes = v2["steps"][0]["next"]
    routes[0]["when"]["value"] = "200000"  # v2: the branch manager only from 200,000
    routes[1]["when"]["value"] = ["200000", "500000"]
    return v2


def test_an_instance_keeps_the_version_it_started_with() -> None:
    v1_instance = submit("150000")
    v2 = parse_definition(demo_v2())
    # publishing v2 changes nothing for the application already in flight
    inst = approve(v1_instance, REVIEWER, T0).instance
    assert inst.definition.version == 1 and inst.step == "branch_review"
    # a new application uses v2
    new = start(v2, instance_id="app-2", facts={"amount": "150000"}, created_by="officer",
                now=T0)
    assert new.events[0].data["version"] == 2
    assert approve(new.instance, REVIEWER, T0).instance.status == "approved"
    # storage names the version; loading with another version is refused
    data = json.loads(json.dumps(instance_data(inst)))
    assert data["definition"] == {"id": "loan_approval", "version": 1}
    with pytest.raises(ValueError, match="version 1"):
        load_instance(data, v2)
    assert load_instance(data, DEMO) == inst


def test_instances_and_events_round_trip_through_json() -> None:
    out = start(DEMO, instance_id="a", facts={"amount": "800000", "tags": ["vip"]},
                created_by="officer", now=T0)
    inst = add_approver(approve(out.instance, REVIEWER, T0).instance, GM, "expert", T0).instance
    inst = apply_due(inst, T0 + 41 * H).instance
    data = json.loads(json.dumps(instance_data(inst), ensure_ascii=False))
    assert load_instance(data, DEMO) == inst
    assert json.loads(json.dumps([event_data(e) for e in out.events]))[1]["data"]["tasks"][0][
        "role"] == "risk_reviewer"


# -- properties over random action sequences -------------------------------------------------------

PEOPLE = [OFFICER, REVIEWER, REVIEWER2, MANAGER, FINANCE, GM, EXPERT,
          Actor("deputy", {"finance", "general_manager"}), Actor("chief")]
NAMES = [p.user for p in PEOPLE]
DEFINITIONS = [DEMO, parse_definition(ANY_OF)]


@dataclass(frozen=True)
class Step:
    action: str
    who: int
    target: int
    hours: int

    @property
    def actor(self) -> Actor:  # resubmissions mostly by the officer, so they happen
        if self.action == "resubmit" and self.who % 3:
            return OFFICER
        return PEOPLE[self.who]


steps = st.builds(Step, st.sampled_from(["approve", "approve", "approve", "reject", "return",
                                         "resubmit", "transfer", "add", "tick", "reassign"]),
                  st.integers(0, len(PEOPLE) - 1), st.integers(0, len(NAMES) - 1),
                  st.integers(1, 30))


def act(inst: Instance, s: Step, now: datetime) -> Outcome:
    who, target = s.actor, NAMES[s.target]
    match s.action:
        case "approve":
            return approve(inst, who, now)
        case "reject":
            return reject(inst, who, now, "不同意")
        case "return":
            return return_for_info(inst, who, now, "补充材料")
        case "resubmit":
            return resubmit(inst, who, now)
        case "transfer":
            return transfer(inst, who, target, now)
        case "add":
            return add_approver(inst, who, target, now)
        case "reassign":
            task = inst.tasks[s.who % len(inst.tasks)].id if inst.tasks else "none"
            return reassign(inst, "admin", task, target, now, "人员调整")
    return apply_due(inst, now)


def check_invariants(before: Instance, out: Outcome, s: Step) -> None:
    inst = out.instance
    assert inst.status in ("in_progress", "returned", "approved", "rejected")
    if inst.status in ("approved", "rejected"):
        assert inst.step is None and inst.tasks == ()
    else:  # exactly one current step, and all tasks belong to its current entry
        assert inst.step is not None and inst.path[-1] == inst.step
        assert all(t.id.split(".")[0] == str(inst.entry) for t in inst.tasks)
        assert len({t.id for t in inst.tasks}) == len(inst.tasks)
    assert [e.seq for e in out.events] == list(range(before.seq + 1, inst.seq + 1))
    actor = s.actor
    for e in out.events:
        if e.kind in SYSTEM_EVENTS:
            assert e.actor is None
            continue
        assert e.kind in ACTOR_EVENTS
        if e.kind == "reassigned":  # an administrator (the caller checks the permission)
            assert e.actor == "admin" and e.data["to"] not in (before.created_by,
                                                               before.submitted_by)
            continue
        assert e.actor == actor.user
        if e.kind == "resubmitted":
            assert actor.user in (before.created_by, before.submitted_by)
        else:  # a decision, transfer or 加签 by someone allowed to act on that task
            assert actor.user not in (before.created_by, before.submitted_by)
            task = e.data["by_task"] if e.kind == "approver_added" else e.task
            assert task in {t.id for t in eligible_tasks(before, actor)}
    entered = [e for e in out.events if e.kind == "step_entered"]
    assert len(entered) <= 1
    assert load_instance(json.loads(json.dumps(instance_data(inst))), inst.definition) == inst


def finish(inst: Instance, now: datetime) -> Instance:
    """Drive to the end approving with whoever may act; the flow never gets stuck."""
    for _ in range(60):
        if inst.status in ("approved", "rejected"):
            return inst
        if inst.status == "returned":
            inst = resubmit(inst, OFFICER, now).instance
            continue
        who = next((p for p in PEOPLE if eligible_tasks(inst, p)), None)
        if who is None:  # e.g. the only holder of the role approved an earlier step:
            now += timedelta(days=30)  # the deadline's escalation brings someone in
            inst = apply_due(inst, now).instance
            who = next((p for p in PEOPLE if eligible_tasks(inst, p)), None)
        if who is None:  # nobody left who may: an administrator reassigns the task
            inst = reassign(inst, "admin", inst.pending()[0].id, "standin", now, "无人可审").instance
            who = Actor("standin")
        inst = approve(inst, who, now).instance
    raise AssertionError("the flow did not finish")


@hsettings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(DEFINITIONS), st.sampled_from(["50000", "300000", "800000"]),
       st.lists(steps, max_size=25))
def test_random_action_sequences(definition, amount: str, plan: list[Step]) -> None:
    inst = start(definition, instance_id="p", facts={"amount": amount}, created_by="officer",
                 now=T0).instance
    now = T0
    for s in plan:
        now += timedelta(hours=s.hours) if s.action == "tick" else timedelta(minutes=1)
        try:
            out = act(inst, s, now)
        except ActionRefused as err:
            assert err.zh and err.en and CJK.search(err.zh)
            continue
        check_invariants(inst, out, s)
        inst = out.instance
    final = finish(inst, now)
    assert final.status in ("approved", "rejected")
    if inst.status != "rejected":
        assert final.status == "approved"
    for d in final.decisions:
        assert d.user not in ("officer",)


@hsettings(max_examples=300, deadline=None, database=None)
@given(st.integers(min_value=1, max_value=10**9))
def test_routing_matches_the_documented_bands(fen: int) -> None:
    amount = f"{fen // 100}.{fen % 100:02d}"
    inst = approve(submit(amount), REVIEWER, T0).instance
    value = Decimal(amount)
    if value < 100000:
        assert inst.status == "approved"
    elif value <= 500000:
        assert inst.step == "branch_review"
    else:
        assert inst.step == "final_countersign"
