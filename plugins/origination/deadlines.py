"""Step deadlines: what to remind and escalate, computed from the state and a time.

Pure on purpose: a scheduled job (later) loads instances whose `next_due` has passed,
calls `due_actions` to know whom to notify and `apply_due` to record that it did, and
stores the new state and events like any other action. Running the job twice, or late,
never sends a reminder twice: the instance remembers what was done for the current step.

The clock is wall-clock hours from when the step was (re)entered; a transfer or an added
approver does not restart it, a resubmission does (the application was with its
submitter). While an application is returned, nothing is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from plugins.origination.definition import Assignee
from plugins.origination.instance import IN_PROGRESS, Instance, Outcome, Run, aware, due_at


@dataclass(frozen=True)
class DueAction:
    """`remind` before the deadline; `escalate` (or `overdue` without a target) after it."""

    kind: str
    step: str
    at: datetime  # when this action fell due
    due_at: datetime  # the step's deadline
    tasks: tuple[str, ...]  # the pending tasks concerned
    notify: tuple[Assignee, ...]  # whom to tell (roles and users)


def _remind_at(inst: Instance) -> datetime | None:
    step, deadline = inst.current_step(), due_at(inst)
    if step is None or deadline is None or step.remind_before_hours is None:
        return None
    return deadline - timedelta(hours=step.remind_before_hours)


def due_actions(inst: Instance, now: datetime) -> list[DueAction]:
    """The reminders and escalations due at `now` and not yet applied."""
    aware(now)
    step, deadline = inst.current_step(), due_at(inst)
    if inst.status != IN_PROGRESS or step is None or deadline is None:
        return []
    pending = inst.pending()
    holders = tuple(dict.fromkeys(t.assignee for t in pending))
    tasks = tuple(t.id for t in pending)
    out: list[DueAction] = []
    remind_at = _remind_at(inst)
    if remind_at is not None and not inst.reminded and remind_at <= now < deadline:
        out.append(DueAction("remind", step.id, remind_at, deadline, tasks, holders))
    if not inst.escalated and now >= deadline:
        if step.escalate_to is not None:
            notify = tuple(dict.fromkeys((step.escalate_to, *holders)))
            out.append(DueAction("escalate", step.id, deadline, deadline, tasks, notify))
        else:
            out.append(DueAction("overdue", step.id, deadline, deadline, tasks, holders))
    return out


def next_due(inst: Instance) -> datetime | None:
    """When `due_actions` will next have something to say (for the job's index), or None."""
    deadline = due_at(inst)
    if inst.status != IN_PROGRESS or deadline is None:
        return None
    remind_at = _remind_at(inst)
    if remind_at is not None and not inst.reminded and not inst.escalated:
        return remind_at
    return None if inst.escalated else deadline


def apply_due(inst: Instance, now: datetime) -> Outcome:
    """Record the due reminders and escalations as done, with one event for each.

    After an escalation the target (a role or a user) may act on the step's pending tasks
    like an assignee, so an overdue step can still be decided (or transferred) by them.
    """
    run = Run(inst, now)
    for action in due_actions(inst, now):
        kind = {"remind": "reminded", "escalate": "escalated", "overdue": "overdue"}
        run.emit(kind[action.kind], step=action.step, due_at=action.due_at.isoformat(),
                 tasks=list(action.tasks), notify=[a.as_data() for a in action.notify])
        if action.kind == "remind":
            run.update(reminded=True)
        else:  # past the deadline a reminder is pointless: never send one afterwards
            run.update(escalated=True, reminded=True)
    return run.outcome() if run.events else Outcome(inst, ())
