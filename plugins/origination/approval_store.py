"""Approval storage: workflow versions, instance rows, task rows and events.

Every function runs inside the caller's `tenant_scope` (and filters on `tenant_id` as
well, since SQLite has no RLS); none of them checks permissions or writes audit: that is
`plugins.origination.approvals`' job. The engine's state is the truth; task rows are
re-derived from it after every change (`sync_tasks`), so the inbox is one indexed query.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.tenancy import Context
from plugins.origination import conditions as c
from plugins.origination.approvals_app.tables import (
    ApprovalEvent,
    ApprovalInstance,
    ApprovalTask,
    ApprovalWorkflow,
)
from plugins.origination.deadlines import next_due
from plugins.origination.definition import Definition, parse_definition
from plugins.origination.instance import IN_PROGRESS, RETURNED, Event, Instance, due_at
from plugins.origination.serialize import event_data, instance_data, load_instance

_DEFINITIONS: dict[uuid.UUID, Definition] = {}  # version rows never change: parse once


@dataclass(frozen=True)
class Version:
    """One stored workflow version, parsed."""

    id: uuid.UUID
    key: str
    version: int
    subject: str
    selector: c.Condition | None
    selector_data: Any
    priority: int
    active: bool
    definition: Definition
    data: dict[str, Any]
    fields: dict[str, str]
    created_at: datetime
    created_by: str | None


def _json(value: Any) -> Any:
    if isinstance(value, str):
        import json

        return json.loads(value)
    return value


def version_of(row: Mapping[str, Any]) -> Version:
    fields = _json(row["fields"]) or {}
    data = _json(row["definition"])
    definition = _DEFINITIONS.get(row["id"])
    if definition is None:
        definition = _DEFINITIONS[row["id"]] = parse_definition(data, fields)
    selector_data = _json(row["selector"])
    selector = None
    if selector_data is not None:
        selector, problems = c.parse_condition(selector_data, fields, path="when")
        assert not problems, problems
    return Version(row["id"], row["key"], row["version"], row["subject"], selector,
                   selector_data, row["priority"], row["active"], definition, data, fields,
                   row["created_at"], row["created_by"])


async def versions(ctx: Context, *, subject: str | None = None, key: str | None = None,
                   active: bool | None = None) -> list[Version]:
    where = [ApprovalWorkflow.tenant_id == ctx.tenant_id]
    if subject is not None:
        where.append(ApprovalWorkflow.subject == subject)
    if key is not None:
        where.append(ApprovalWorkflow.key == key)
    if active is not None:
        where.append(ApprovalWorkflow.active == active)
    rows = await ApprovalWorkflow.select().where(*where).order_by(
        ApprovalWorkflow.priority, ApprovalWorkflow.key).order_by(
        ApprovalWorkflow.version, ascending=False).run()
    return [version_of(r) for r in rows]


async def version_by_id(ctx: Context, workflow_id: uuid.UUID) -> Version:
    rows = await ApprovalWorkflow.select().where(
        ApprovalWorkflow.tenant_id == ctx.tenant_id, ApprovalWorkflow.id == workflow_id).run()
    return version_of(rows[0])


async def latest_number(ctx: Context, key: str) -> int:
    rows = await ApprovalWorkflow.select(ApprovalWorkflow.version).where(
        ApprovalWorkflow.tenant_id == ctx.tenant_id, ApprovalWorkflow.key == key).order_by(
        ApprovalWorkflow.version, ascending=False).limit(1).run()
    return rows[0]["version"] if rows else 0


async def insert_version(ctx: Context, *, key: str, version: int, subject: str,
                         definition: Definition, data: dict[str, Any], selector: Any,
                         priority: int, fields: Mapping[str, str]) -> uuid.UUID:
    """Store a new version and make it the key's only active one."""
    await ApprovalWorkflow.update({ApprovalWorkflow.active: False}).where(
        ApprovalWorkflow.tenant_id == ctx.tenant_id, ApprovalWorkflow.key == key).run()
    row_id = uuid.uuid4()
    await ApprovalWorkflow.insert(ApprovalWorkflow(
        id=row_id, tenant_id=ctx.tenant_id, key=key, version=version, subject=subject,
        name_zh=definition.name_zh[:200], name_en=definition.name_en[:200],
        selector=selector, priority=priority, active=True, definition=data,
        fields=dict(fields), created_by=ctx.username)).run()
    return row_id


# --- instances --------------------------------------------------------------------------

def amount_fen(facts: Mapping[str, Any]) -> int | None:
    """facts["amount"] (yuan, a string or integer) in 分, for the inbox's range filter."""
    raw = facts.get("amount")
    if raw is None or isinstance(raw, (bool, float)):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return int((value * 100).to_integral_value()) if value.is_finite() else None


def _columns(inst: Instance) -> dict[str, Any]:
    return {"status": inst.status, "step": inst.step, "state": instance_data(inst),
            "due_at": due_at(inst), "next_due_at": next_due(inst),
            "updated_at": inst.updated_at}


async def insert_instance(ctx: Context, inst: Instance, version: Version, *, subject: str,
                          subject_id: str, title: dict[str, str], link: str) -> None:
    product = inst.facts.get("product")
    await ApprovalInstance.insert(ApprovalInstance(
        id=uuid.UUID(inst.id), tenant_id=ctx.tenant_id, workflow_id=version.id,
        workflow_key=version.key, workflow_version=version.version, subject=subject,
        subject_id=subject_id, title=title, link=link, amount=amount_fen(inst.facts),
        product=None if product is None else str(product)[:63],
        submitted_by=inst.submitted_by, submitted_at=inst.updated_at,
        finished_at=inst.updated_at if inst.step is None and inst.status != RETURNED
        else None, version=1, created_at=inst.updated_at, **_columns(inst))).run()


async def instance_row(ctx: Context, instance_id: uuid.UUID) -> dict[str, Any] | None:
    rows = await ApprovalInstance.select().where(
        ApprovalInstance.tenant_id == ctx.tenant_id,
        ApprovalInstance.id == instance_id).output(load_json=True).run()
    return rows[0] if rows else None


async def open_instance(ctx: Context, subject: str, subject_id: str) -> dict[str, Any] | None:
    rows = await ApprovalInstance.select(ApprovalInstance.id).where(
        ApprovalInstance.tenant_id == ctx.tenant_id, ApprovalInstance.subject == subject,
        ApprovalInstance.subject_id == subject_id,
        ApprovalInstance.status.is_in([IN_PROGRESS, RETURNED])).run()
    return rows[0] if rows else None


async def load(ctx: Context, row: Mapping[str, Any]) -> tuple[Instance, Version]:
    version = await version_by_id(ctx, row["workflow_id"])
    return load_instance(_json(row["state"]), version.definition), version


async def save_instance(ctx: Context, row: Mapping[str, Any], inst: Instance) -> bool:
    """Store the new state if nobody changed the row since it was read (its version)."""
    finished = inst.status not in (IN_PROGRESS, RETURNED)
    done = await ApprovalInstance.update({
        **{getattr(ApprovalInstance, k): v for k, v in _columns(inst).items()},
        ApprovalInstance.amount: amount_fen(inst.facts),
        ApprovalInstance.finished_at: inst.updated_at if finished else None,
        ApprovalInstance.version: row["version"] + 1,
    }).where(ApprovalInstance.tenant_id == ctx.tenant_id,
             ApprovalInstance.id == row["id"],
             ApprovalInstance.version == row["version"]).returning(ApprovalInstance.id).run()
    return bool(done)


async def due_rows(ctx: Context, now: datetime, limit: int) -> list[dict[str, Any]]:
    return await ApprovalInstance.select().where(
        ApprovalInstance.tenant_id == ctx.tenant_id,
        ApprovalInstance.next_due_at.is_not_null(),
        ApprovalInstance.next_due_at <= now).order_by(
        ApprovalInstance.next_due_at).limit(limit).output(load_json=True).run()


# --- events -----------------------------------------------------------------------------

async def insert_events(ctx: Context, instance_id: uuid.UUID, subject: str, subject_id: str,
                        events: Iterable[Event]) -> None:
    rows = [ApprovalEvent(tenant_id=ctx.tenant_id, instance_id=instance_id, subject=subject,
                          subject_id=subject_id, seq=e.seq, kind=e.kind, at=e.at,
                          actor=e.actor, step=e.step, task=e.task,
                          data=event_data(e)["data"]) for e in events]
    if rows:
        await ApprovalEvent.insert(*rows).run()


async def events_of(ctx: Context, subject: str, subject_id: str) -> list[dict[str, Any]]:
    return await ApprovalEvent.select().where(
        ApprovalEvent.tenant_id == ctx.tenant_id, ApprovalEvent.subject == subject,
        ApprovalEvent.subject_id == subject_id).order_by(ApprovalEvent.at).order_by(
        ApprovalEvent.seq).output(load_json=True).run()


async def instances_of(ctx: Context, subject: str, subject_id: str) -> list[dict[str, Any]]:
    return await ApprovalInstance.select().where(
        ApprovalInstance.tenant_id == ctx.tenant_id, ApprovalInstance.subject == subject,
        ApprovalInstance.subject_id == subject_id).order_by(
        ApprovalInstance.created_at).output(load_json=True).run()


# --- task rows --------------------------------------------------------------------------

def holder(role: str | None, user: str | None) -> str:
    return f"user:{user}" if user is not None else f"role:{role}"


def holders_of(ctx: Context) -> list[str]:
    """The `assignee` values whose tasks are ctx's: their name and each of their roles."""
    return [f"user:{ctx.username}", *(f"role:{r}" for r in ctx.roles)]


def wanted(inst: Instance) -> dict[tuple[int, str, str], str]:
    """The open task rows the state calls for: (entry, task, assignee) -> kind."""
    out: dict[tuple[int, str, str], str] = {}
    if inst.status == RETURNED:
        out[(inst.entry, "resubmit", holder(None, inst.submitted_by))] = "resubmit"
    if inst.status != IN_PROGRESS:
        return out
    step = inst.current_step()
    for t in inst.pending():
        out[(inst.entry, t.id, holder(t.role, t.user))] = "task"
    if inst.escalated and step is not None and step.escalate_to is not None:
        target = holder(step.escalate_to.role, step.escalate_to.user)
        for t in inst.pending():
            out.setdefault((inst.entry, t.id, target), "escalation")
    return out


def _closing(row: Mapping[str, Any], before: Instance, after: Instance) -> dict[str, Any]:
    """How an open row ended: the decision on its task, a transfer, or closed unseen."""
    if row["task"] == "resubmit":
        return {"status": "resubmitted", "acted_by": after.submitted_by, "comment": ""}
    decision = next((d for d in after.decisions
                     if d.entry == row["entry"] and d.task == row["task"]), None)
    if decision is not None:
        status = {"approve": "approved", "reject": "rejected", "return": "returned"}
        return {"status": status.get(decision.action, decision.action),
                "acted_by": decision.user, "comment": decision.comment}
    moved = next((t for t in after.tasks if t.id == row["task"]
                  and after.entry == row["entry"] and t.transferred_from), None)
    if moved is not None:
        return {"status": "transferred", "acted_by": moved.transferred_from, "comment": ""}
    return {"status": "closed", "acted_by": None, "comment": ""}


async def sync_tasks(ctx: Context, row: Mapping[str, Any], before: Instance | None,
                     after: Instance, now: datetime) -> None:
    """Make the instance's open task rows match its state: close what ended, add new."""
    open_rows = await ApprovalTask.select().where(
        ApprovalTask.tenant_id == ctx.tenant_id, ApprovalTask.instance_id == row["id"],
        ApprovalTask.status == "pending").run()
    want = wanted(after)
    have = {(r["entry"], r["task"], r["assignee"]): r for r in open_rows}
    for key, r in have.items():
        if key in want:
            continue
        end = _closing(r, before or after, after)
        await ApprovalTask.update({
            ApprovalTask.status: end["status"], ApprovalTask.acted_by: end["acted_by"],
            ApprovalTask.acted_at: now, ApprovalTask.comment: (end["comment"] or "")[:2000],
        }).where(ApprovalTask.tenant_id == ctx.tenant_id, ApprovalTask.id == r["id"]).run()
    step = after.current_step()
    names = {"zh-CN": step.name_zh, "en": step.name_en} if step else {}
    new = [ApprovalTask(
        tenant_id=ctx.tenant_id, instance_id=row["id"], entry=entry, task=task,
        step=after.step, step_name=names if kind != "resubmit" else {},
        assignee=assignee[:80], kind=kind, status="pending", subject=row["subject"],
        subject_id=row["subject_id"], title=row["title"], link=row["link"],
        amount=amount_fen(after.facts), product=row["product"],
        submitted_by=after.submitted_by, created_by=after.created_by,
        submitted_at=row["submitted_at"], due_at=due_at(after) if kind != "resubmit" else None,
        distinct_approvers=after.definition.distinct_approvers, created_at=now)
        for (entry, task, assignee), kind in want.items()
        if (entry, task, assignee) not in have]
    if new:
        await ApprovalTask.insert(*new).run()


async def pending_for(ctx: Context, limit: int) -> list[dict[str, Any]]:
    """Open task rows held by ctx's name or roles (the inbox's one indexed query)."""
    return await ApprovalTask.select().where(
        ApprovalTask.tenant_id == ctx.tenant_id,
        ApprovalTask.assignee.is_in(holders_of(ctx)),
        ApprovalTask.status == "pending").order_by(ApprovalTask.submitted_at).limit(
        limit).output(load_json=True).run()


async def acted_by(ctx: Context, user: str, instance_ids: list[uuid.UUID] | None = None,
                   limit: int = 500) -> list[dict[str, Any]]:
    where = [ApprovalTask.tenant_id == ctx.tenant_id, ApprovalTask.acted_by == user]
    if instance_ids is not None:
        if not instance_ids:
            return []
        where.append(ApprovalTask.instance_id.is_in(instance_ids))
    return await ApprovalTask.select().where(*where).order_by(
        ApprovalTask.acted_at, ascending=False).limit(limit).output(load_json=True).run()


async def tasks_of(ctx: Context, instance_id: uuid.UUID) -> list[dict[str, Any]]:
    return await ApprovalTask.select().where(
        ApprovalTask.tenant_id == ctx.tenant_id,
        ApprovalTask.instance_id == instance_id).order_by(ApprovalTask.created_at).output(
        load_json=True).run()
