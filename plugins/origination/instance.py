"""The state of one application's approval, and the events that change it.

Everything here is an immutable value: an action builds a new `Instance` and the list of
`Event`s that explain the difference, so the caller stores both (the state for the inbox,
the events for the timeline and notifications) and nothing is ever updated in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from plugins.origination import conditions as c
from plugins.origination.definition import TERMINALS, Assignee, Definition, Step, route
from plugins.origination.errors import FactsError, Problem, problem

IN_PROGRESS, RETURNED, APPROVED, REJECTED = "in_progress", "returned", "approved", "rejected"
FINISHED = (APPROVED, REJECTED)
PENDING, SKIPPED = "pending", "skipped"  # task states besides approved/rejected/returned

# Events an actor causes, and events the engine emits on its own (actor None).
ACTOR_EVENTS = frozenset({"started", "resubmitted", "approved", "rejected", "returned",
                          "transferred", "approver_added", "reassigned"})
SYSTEM_EVENTS = frozenset({"step_entered", "step_completed", "finished", "rerouted",
                           "reminded", "escalated", "overdue"})


@dataclass(frozen=True)
class Actor:
    """Who is acting: a username and the roles they hold in the tenant right now."""

    user: str
    roles: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", frozenset(self.roles))


@dataclass(frozen=True)
class Task:
    """One approval slot of the current step (a role, or a named user after 转办/加签)."""

    id: str
    role: str | None = None
    user: str | None = None
    added_by: str | None = None  # 加签: who added this approver (then always required)
    transferred_from: str | None = None  # 转办: who handed the task over
    status: str = PENDING  # pending, approved, rejected, returned, skipped
    acted_by: str | None = None
    comment: str = ""

    @property
    def assignee(self) -> Assignee:
        return Assignee(user=self.user) if self.user is not None else Assignee(role=self.role)


@dataclass(frozen=True)
class Decision:
    """An approve, reject or return, kept on the instance to refuse acting twice."""

    step: str
    entry: int
    task: str
    user: str
    action: str
    at: datetime
    comment: str = ""


@dataclass(frozen=True)
class Event:
    """What happened, for the timeline and for notifications; `actor` None: the engine."""

    seq: int
    kind: str
    at: datetime
    actor: str | None
    step: str | None = None
    task: str | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Instance:
    id: str
    definition: Definition  # the version it started with, kept while it is in flight
    facts: Mapping[str, Any]
    created_by: str
    submitted_by: str
    status: str
    step: str | None  # the one current step; None once finished
    entry: int  # how many times a step has been entered; numbers the tasks
    tasks: tuple[Task, ...]
    path: tuple[str, ...]  # the steps entered on the current route, the current one last
    entered_at: datetime | None  # when the current step started: its deadline's clock
    reminded: bool
    escalated: bool
    decisions: tuple[Decision, ...]
    seq: int  # the number of the last event
    updated_at: datetime

    def current_step(self) -> Step | None:
        return None if self.step is None else self.definition.step(self.step)

    def pending(self) -> tuple[Task, ...]:
        return tuple(t for t in self.tasks if t.status == PENDING)


@dataclass(frozen=True)
class Outcome:
    instance: Instance
    events: tuple[Event, ...]


def aware(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now


def plain_facts(definition: Definition, facts: Mapping[str, Any]) -> Mapping[str, Any]:
    """Check the facts routing reads and store them all as JSON-able values.

    Refused here, at submission, rather than mid-flow: a float anywhere (money must not be
    a float), or a routed field whose value does not suit its type.
    """
    problems: list[Problem] = []
    types = dict(definition.fields)
    out: dict[str, Any] = {}
    for key, value in facts.items():
        try:
            if _has_float(value):
                c.coerce(1.0, "money")  # raises the float message
            if key in types and c.present(value):
                c.coerce(value, types[key])
        except c.BadValue as exc:
            problems.append(problem("bad_fact", exc.zh, exc.en, field=str(key)))
            continue
        out[str(key)] = _plain(value)
    if problems:
        raise FactsError(problems)
    return MappingProxyType(out)


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_float(v) for v in value)
    if isinstance(value, Mapping):
        return any(_has_float(v) for v in value.values())
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def can_hold(inst: Instance, task: Task, actor: Actor) -> bool:
    """Whether the actor may act on this pending task: its assignee, or the escalation
    target once the step is overdue. Maker-checker and acting twice are checked apart."""
    if task.status != PENDING:
        return False
    if task.assignee.matches(actor.user, actor.roles):
        return True
    step = inst.current_step()
    return bool(inst.escalated and step is not None and step.escalate_to is not None
                and step.escalate_to.matches(actor.user, actor.roles))


def due_at(inst: Instance) -> datetime | None:
    step = inst.current_step()
    if step is None or step.deadline_hours is None or inst.entered_at is None:
        return None
    return inst.entered_at + timedelta(hours=step.deadline_hours)


class Run:
    """Builds one action's outcome: the evolving instance and the events it emitted."""

    def __init__(self, inst: Instance, now: datetime) -> None:
        self.inst, self.now = inst, aware(now)
        self.events: list[Event] = []

    def emit(self, kind: str, actor: str | None = None, *, task: str | None = None,
             step: str | None = None, **data: Any) -> None:
        seq = self.inst.seq + len(self.events) + 1
        self.events.append(Event(seq, kind, self.now, actor, step or self.inst.step, task,
                                 MappingProxyType(data)))

    def update(self, **changes: Any) -> None:
        self.inst = replace(self.inst, **changes)

    def outcome(self) -> Outcome:
        self.update(seq=self.inst.seq + len(self.events), updated_at=self.now)
        return Outcome(self.inst, tuple(self.events))

    def enter(self, target: str, tasks: tuple[Task, ...] | None = None,
              again: bool = False) -> None:
        """Enter a step (fresh tasks from its assignees, or `tasks` reset) or finish."""
        if target in TERMINALS:
            self.finish(target)
            return
        step = self.inst.definition.step(target)
        entry = self.inst.entry + 1
        if tasks is None:
            tasks = tuple(Task(f"{entry}.{i}", role=a.role, user=a.user)
                          for i, a in enumerate(step.assignees, 1))
        else:
            tasks = tuple(Task(f"{entry}.{i}", role=t.role, user=t.user, added_by=t.added_by,
                               transferred_from=t.transferred_from)
                          for i, t in enumerate(tasks, 1))
        path = self.inst.path if again else (*self.inst.path, target)
        self.update(status=IN_PROGRESS, step=target, entry=entry, tasks=tasks, path=path,
                    entered_at=self.now, reminded=False, escalated=False)
        deadline = due_at(self.inst)
        self.emit("step_entered", step=target, name={"zh-CN": step.name_zh, "en": step.name_en},
                  mode=step.mode, tasks=[task_data(t) for t in tasks],
                  due_at=None if deadline is None else deadline.isoformat())

    def advance(self) -> None:
        """The current step is complete: route on the facts to the next step or the end."""
        step = self.inst.current_step()
        assert step is not None
        target = route(step.next, self.inst.facts)
        self.emit("step_completed", to=target)
        self.enter(target)

    def finish(self, outcome: str) -> None:
        ended_at = self.inst.step
        self.update(status=outcome, step=None, tasks=(), entered_at=None)
        self.emit("finished", step=ended_at, outcome=outcome)


def task_data(t: Task) -> dict[str, Any]:
    """A task as JSON-able data (events, storage)."""
    return {"id": t.id, "role": t.role, "user": t.user, "added_by": t.added_by,
            "transferred_from": t.transferred_from, "status": t.status,
            "acted_by": t.acted_by, "comment": t.comment}
