"""The approval workflow engine (审批流): pure functions from a state to a new state.

Every action takes an `Instance`, the acting `Actor` and the time, and returns an `Outcome`:
the new instance and the events that happened. A refused action raises `ActionRefused`
(zh-CN and en, naming the step) and changes nothing. There is no database and no clock
here, so the same code is tested exhaustively and replayed exactly; persistence stores the
state and appends the events, and the inbox reads the pending tasks.

Semantics (docs/workflows.md): a step is `any` (或签: one approval of its assignees
suffices) or `all` (会签: every slot approves); one rejection rejects the application;
approvers added with 加签 must always approve; 转办 hands one task to a named user; 退回
returns the application to its submitter, who resubmits it to the same step; nobody acts
twice on one step, and nobody decides on an application they created or submitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from plugins.origination.conditions import APPLICATION_FIELDS
from plugins.origination.deadlines import DueAction, apply_due, due_actions, next_due
from plugins.origination.definition import (
    Assignee,
    Definition,
    Route,
    Step,
    parse_definition,
    route,
    to_data,
)
from plugins.origination.errors import (
    ActionRefused,
    DefinitionError,
    FactsError,
    Problem,
    WorkflowError,
)
from plugins.origination.instance import (
    APPROVED,
    FINISHED,
    IN_PROGRESS,
    PENDING,
    REJECTED,
    RETURNED,
    SKIPPED,
    Actor,
    Decision,
    Event,
    Instance,
    Outcome,
    Run,
    Task,
    aware,
    can_hold,
    plain_facts,
)

__all__ = [
    "APPLICATION_FIELDS", "APPROVED", "IN_PROGRESS", "REJECTED", "RETURNED", "ActionRefused",
    "Actor", "Assignee", "Decision", "Definition", "DefinitionError", "DueAction", "Event",
    "FactsError", "Instance", "Outcome", "Problem", "Route", "Step", "Task", "WorkflowError",
    "add_approver", "apply_due", "approve", "due_actions", "eligible_tasks", "next_due",
    "parse_definition", "reassign", "reject", "resubmit", "return_for_info", "start",
    "to_data", "transfer",
]

MAX_ADDED = 10  # approvers added to one step: a guard against a runaway 加签 chain
_ACTION = {"approve": ("审批通过", "approve"), "reject": ("拒绝", "reject"),
           "return": ("退回", "return"), "transfer": ("转办", "transfer"),
           "add": ("加签", "add an approver to")}
_OUTCOME = {APPROVED: ("已通过", "approved"), REJECTED: ("已拒绝", "rejected")}


def start(definition: Definition, *, instance_id: str, facts: Mapping[str, Any],
          created_by: str, now: datetime, submitted_by: str | None = None) -> Outcome:
    """Submit an application: route it from the start and enter its first step.

    `facts` are the application's fields (amount as a string or integer, product, grade,
    region, custom fields...). The instance keeps this definition, whatever version is
    current later.
    """
    submitted_by = submitted_by or created_by
    inst = Instance(instance_id, definition, plain_facts(definition, facts), created_by,
                    submitted_by, IN_PROGRESS, None, 0, (), (), None, False, False, (), 0,
                    aware(now))
    run = Run(inst, now)
    run.emit("started", submitted_by, definition=definition.id, version=definition.version)
    run.enter(route(definition.start, run.inst.facts))
    return run.outcome()


def eligible_tasks(inst: Instance, actor: Actor) -> tuple[Task, ...]:
    """The pending tasks this actor may act on now (what their inbox shows)."""
    if (inst.status != IN_PROGRESS or _is_maker(inst, actor) or _acted(inst, actor)
            or _approved_elsewhere(inst, actor.user)):
        return ()
    return tuple(t for t in inst.tasks if can_hold(inst, t, actor))


def _is_maker(inst: Instance, actor: Actor) -> bool:
    return actor.user in (inst.created_by, inst.submitted_by)


def _acted(inst: Instance, actor: Actor) -> bool:
    return any(d.entry == inst.entry and d.user == actor.user for d in inst.decisions)


def _approved_elsewhere(inst: Instance, user: str) -> Decision | None:
    """An approval by this user at another step, when the definition wants distinct ones."""
    if not inst.definition.distinct_approvers:
        return None
    return next((d for d in inst.decisions if d.user == user and d.action == "approve"
                 and d.step != inst.step), None)


def _step_label(inst: Instance) -> tuple[str, str]:
    step = inst.current_step()
    return (step.name_zh, step.name_en) if step else ("", "")


def _claim(inst: Instance, actor: Actor, action: str, task_id: str | None) -> Task:
    """The task the actor acts on, or the reason they may not."""
    zh_act, en_act = _ACTION[action]
    if inst.status in FINISHED:
        zh, en = _OUTCOME[inst.status]
        raise ActionRefused("finished", f"审批已结束（{zh}），不能再{zh_act}",
                            f"the approval has ended ({en}); you cannot {en_act} it")
    if inst.status == RETURNED:
        raise ActionRefused("awaiting_resubmission",
                            f"申请已退回给提交人补充材料，重新提交前不能{zh_act}",
                            f"the application was returned to its submitter for more "
                            f"information; you cannot {en_act} it before it is resubmitted",
                            step=inst.step)
    if _is_maker(inst, actor):
        made = "创建" if actor.user == inst.created_by else "提交"
        raise ActionRefused(
            "maker_checker",
            f"你{made}了此申请，不能审批自己的申请（经办与审批须由不同的人完成）",
            f"you {'created' if made == '创建' else 'submitted'} this application and "
            "cannot decide on it (maker-checker: someone else must approve)", step=inst.step)
    zh_step, en_step = _step_label(inst)
    if _acted(inst, actor):
        raise ActionRefused("already_acted", f"你已处理过当前步骤“{zh_step}”，不能重复操作",
                            f"you have already acted on the current step '{en_step}'",
                            step=inst.step)
    other = _approved_elsewhere(inst, actor.user)
    if other is not None:
        where = inst.definition.step(other.step)
        raise ActionRefused(
            "already_acted",
            f"你已在步骤“{where.name_zh}”审批通过此申请，不能再处理步骤“{zh_step}”"
            "（同一申请的各步骤须由不同的人审批）",
            f"you already approved this application at '{where.name_en}' and cannot act on "
            f"'{en_step}' too (each step of an application needs a different person)",
            step=inst.step)
    if task_id is not None:
        task = next((t for t in inst.tasks if t.id == task_id), None)
        if task is None or task.status != PENDING:
            if any(d.task == task_id and d.user == actor.user for d in inst.decisions):
                raise ActionRefused("already_acted", "你已处理过此任务，不能重复操作",
                                    "you have already acted on this task", step=inst.step)
            raise ActionRefused("task_closed",
                                f"任务 {task_id} 已不在待办中（申请当前在“{zh_step}”）",
                                f"the task {task_id} is no longer open (the application is "
                                f"now at '{en_step}')", step=inst.step)
        if can_hold(inst, task, actor):
            return task
        candidates: list[Task] = []
    else:
        candidates = [t for t in inst.tasks if can_hold(inst, t, actor)]
    if candidates:  # a named task first, then a role's, then one held through escalation
        return min(candidates, key=lambda t: (t.user != actor.user,
                                              t.role not in actor.roles))
    earlier = [d for d in inst.decisions if d.user == actor.user]
    if earlier:
        raise ActionRefused(
            "already_acted",
            f"你已在步骤“{inst.definition.step(earlier[-1].step).name_zh}”处理过此申请；"
            f"当前步骤“{zh_step}”不是分配给你的",
            f"you already acted on this application at "
            f"'{inst.definition.step(earlier[-1].step).name_en}'; the current step "
            f"'{en_step}' is not assigned to you", step=inst.step)
    who_zh = "、".join(t.assignee.label("zh-CN") for t in inst.pending())
    who_en = ", ".join(t.assignee.label("en") for t in inst.pending())
    raise ActionRefused("not_your_task",
                        f"当前步骤“{zh_step}”不是分配给你的（待处理人：{who_zh}）",
                        f"the current step '{en_step}' is not assigned to you (waiting for: "
                        f"{who_en})", step=inst.step)


def _need_comment(comment: str, action: str) -> None:
    if not comment or not comment.strip():
        zh, en = _ACTION[action]
        raise ActionRefused("comment_required", f"{zh}须填写意见", f"a comment is required to "
                            f"{en}", field="comment")


def _decide(run: Run, actor: Actor, task: Task, action: str, status: str,
            comment: str, **data: Any) -> None:
    inst = run.inst
    tasks = tuple(t if t.id != task.id else
                  Task(t.id, t.role, t.user, t.added_by, t.transferred_from, status,
                       actor.user, comment) for t in inst.tasks)
    decision = Decision(str(inst.step), inst.entry, task.id, actor.user, action, run.now,
                        comment)
    run.update(tasks=tasks, decisions=(*inst.decisions, decision))
    run.emit(status, actor.user, task=task.id, comment=comment, **data)


def _skip_pending(tasks: tuple[Task, ...], keep_added: bool = False) -> tuple[Task, ...]:
    return tuple(Task(t.id, t.role, t.user, t.added_by, t.transferred_from, SKIPPED)
                 if t.status == PENDING and not (keep_added and t.added_by) else t
                 for t in tasks)


def approve(inst: Instance, actor: Actor, now: datetime, comment: str = "",
            task: str | None = None) -> Outcome:
    """Approve the actor's task; when the step's rule is met, route to the next step."""
    claimed = _claim(inst, actor, "approve", task)
    run = Run(inst, now)
    _decide(run, actor, claimed, "approve", APPROVED, comment)
    step = run.inst.current_step()
    assert step is not None
    tasks = run.inst.tasks
    if step.mode == "any" and claimed.added_by is None:  # 或签: the other slots are done
        tasks = _skip_pending(tasks, keep_added=True)
        run.update(tasks=tasks)
    original = [t for t in tasks if t.added_by is None]
    added_done = all(t.status == APPROVED for t in tasks if t.added_by is not None)
    if step.mode == "all":
        done = all(t.status == APPROVED for t in original)
    else:
        done = any(t.status == APPROVED for t in original)
    if done and added_done:
        run.advance()
    return run.outcome()


def reject(inst: Instance, actor: Actor, now: datetime, comment: str,
           task: str | None = None) -> Outcome:
    """Reject: one rejection by anyone who may act on the step ends the application."""
    claimed = _claim(inst, actor, "reject", task)
    _need_comment(comment, "reject")
    run = Run(inst, now)
    _decide(run, actor, claimed, "reject", REJECTED, comment)
    run.update(tasks=_skip_pending(run.inst.tasks))
    run.finish(REJECTED)
    return run.outcome()


def return_for_info(inst: Instance, actor: Actor, now: datetime, comment: str,
                    task: str | None = None) -> Outcome:
    """退回补充: send the application back to its submitter; nobody can decide meanwhile."""
    claimed = _claim(inst, actor, "return", task)
    _need_comment(comment, "return")
    run = Run(inst, now)
    _decide(run, actor, claimed, "return", "returned", comment, to=inst.submitted_by)
    run.update(status=RETURNED)
    return run.outcome()


def resubmit(inst: Instance, actor: Actor, now: datetime,
             facts: Mapping[str, Any] | None = None, comment: str = "") -> Outcome:
    """Resubmit a returned application to the step that returned it, decisions reset.

    With changed facts, the route so far is checked again: if the new facts would have
    taken a different path (an amount raised past a threshold), earlier approvals were
    given for another application, so it starts again from the first step.
    """
    if inst.status in FINISHED:
        zh, en = _OUTCOME[inst.status]
        raise ActionRefused("finished", f"审批已结束（{zh}），不能重新提交",
                            f"the approval has ended ({en}); it cannot be resubmitted")
    if inst.status != RETURNED:
        raise ActionRefused("not_returned", "申请未被退回，无需重新提交",
                            "the application was not returned; there is nothing to resubmit",
                            step=inst.step)
    if not _is_maker(inst, actor):
        raise ActionRefused("not_submitter", "只有申请的创建人或提交人可以重新提交",
                            "only the person who created or submitted the application can "
                            "resubmit it", step=inst.step)
    new_facts = inst.facts if facts is None else plain_facts(inst.definition, facts)
    changed = sorted(k for k in {*inst.facts, *new_facts}
                     if inst.facts.get(k) != new_facts.get(k))
    run = Run(inst, now)
    run.update(facts=new_facts)
    run.emit("resubmitted", actor.user, changed=changed, comment=comment)
    if _same_path(inst.definition, inst.path, new_facts):
        run.enter(str(inst.step), tasks=inst.tasks, again=True)
    else:
        run.emit("rerouted", previous=list(inst.path), changed=changed)
        run.update(path=())
        run.enter(route(inst.definition.start, new_facts))
    return run.outcome()


def _same_path(definition: Definition, path: tuple[str, ...],
               facts: Mapping[str, Any]) -> bool:
    """Whether these facts route from the start through exactly `path`."""
    if not path or route(definition.start, facts) != path[0]:
        return False
    return all(route(definition.step(a).next, facts) == b for a, b in zip(path, path[1:],
                                                                            strict=False))


def _check_target(inst: Instance, actor: Actor, user: str, action: str) -> None:
    zh_act, en_act = _ACTION[action]
    if not isinstance(user, str) or not user.strip():
        raise ActionRefused("bad_user", f"{zh_act}须指定用户", f"name the user to {en_act}",
                            field="user")
    if user == actor.user:
        raise ActionRefused("target_is_self", f"不能{zh_act}给自己",
                            f"you cannot {en_act} yourself" if action == "add" else
                            "you cannot transfer a task to yourself", field="user")
    if user in (inst.created_by, inst.submitted_by):
        raise ActionRefused("maker_checker_target",
                            f"用户 {user} 创建或提交了此申请，不能成为它的审批人",
                            f"the user {user} created or submitted this application and "
                            "cannot approve it", field="user")
    if any(t.user == user and t.status == PENDING for t in inst.tasks) or any(
            d.user == user and d.entry == inst.entry for d in inst.decisions):
        raise ActionRefused("already_assigned", f"用户 {user} 已是当前步骤的审批人",
                            f"the user {user} is already an approver of the current step",
                            step=inst.step, field="user")
    other = _approved_elsewhere(inst, user)
    if other is not None:
        where = inst.definition.step(other.step)
        raise ActionRefused("already_approved",
                            f"用户 {user} 已在步骤“{where.name_zh}”审批通过此申请，"
                            "同一申请的各步骤须由不同的人审批",
                            f"the user {user} already approved this application at "
                            f"'{where.name_en}'; each step needs a different person",
                            step=inst.step, field="user")


def transfer(inst: Instance, actor: Actor, to_user: str, now: datetime, comment: str = "",
             task: str | None = None) -> Outcome:
    """转办: hand the actor's task to a named user, who then decides in their place."""
    claimed = _claim(inst, actor, "transfer", task)
    _check_target(inst, actor, to_user, "transfer")
    run = Run(inst, now)
    moved = Task(claimed.id, None, to_user, claimed.added_by, actor.user)
    run.update(tasks=tuple(moved if t.id == claimed.id else t for t in inst.tasks))
    run.emit("transferred", actor.user, task=claimed.id, to=to_user, comment=comment,
             from_role=claimed.role, from_user=claimed.user)
    return run.outcome()


def add_approver(inst: Instance, actor: Actor, user: str, now: datetime, comment: str = "",
                 task: str | None = None) -> Outcome:
    """加签: add a named approver to the current step; they must approve too."""
    claimed = _claim(inst, actor, "add", task)
    _check_target(inst, actor, user, "add")
    if sum(1 for t in inst.tasks if t.added_by) >= MAX_ADDED:
        raise ActionRefused("too_many_approvers", f"一个步骤最多加签 {MAX_ADDED} 人",
                            f"at most {MAX_ADDED} approvers can be added to a step",
                            step=inst.step, field="user")
    run = Run(inst, now)
    added = Task(f"{inst.entry}.{len(inst.tasks) + 1}", user=user, added_by=actor.user)
    run.update(tasks=(*inst.tasks, added))
    run.emit("approver_added", actor.user, task=added.id, user=user, comment=comment,
             by_task=claimed.id)
    return run.outcome()


def reassign(inst: Instance, by: str, task: str, to_user: str, now: datetime,
             reason: str) -> Outcome:
    """Administrative 转办 of any open task (an approver left, or nobody eligible is left).

    The caller checks that `by` may manage approvals; the engine still refuses a target who
    created or submitted the application or already approved another step of it, and
    records who reassigned and why.
    """
    if inst.status in FINISHED:
        zh, en = _OUTCOME[inst.status]
        raise ActionRefused("finished", f"审批已结束（{zh}），不能再转办",
                            f"the approval has ended ({en}); its tasks cannot be reassigned")
    if by in (inst.created_by, inst.submitted_by):
        raise ActionRefused("maker_checker", "你创建或提交了此申请，不能调整它的审批人",
                            "you created or submitted this application and cannot change "
                            "its approvers", step=inst.step)
    current = next((t for t in inst.tasks if t.id == task and t.status == PENDING), None)
    if current is None:
        raise ActionRefused("task_closed", f"任务 {task} 已不在待办中",
                            f"the task {task} is no longer open", step=inst.step)
    _check_target(inst, Actor(by), to_user, "transfer")
    _need_comment(reason, "transfer")
    run = Run(inst, now)
    moved = Task(current.id, None, to_user, current.added_by, by)
    run.update(tasks=tuple(moved if t.id == current.id else t for t in inst.tasks))
    run.emit("reassigned", by, task=current.id, to=to_user, comment=reason,
             from_role=current.role, from_user=current.user)
    return run.outcome()
