"""Approval workflow storage: definitions as versioned rows, instances with their state,
one task row per assignee and step (so an inbox is one indexed query), and the events
of every instance (its timeline).

The engine's state (`serialize.instance_data`) is the source of truth; the task rows and
the denormalised columns (amount, product, due time) are derived from it on every change,
for the inbox's filters and counts. Money is integer 分.
"""

from __future__ import annotations

import uuid

from piccolo.columns import JSON, UUID, BigInt, Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

from core.tables import TenantOwned, utcnow


class ApprovalWorkflow(TenantOwned, Table, tablename="approval_workflow"):
    """One version of a workflow (rows are never changed, except `active`).

    `subject` says what it decides (application, ...); among a subject's active
    workflows the first by `priority` whose `selector` holds for the facts is used.
    """

    id = UUID(primary_key=True, default=uuid.uuid4)
    key = Varchar(length=63)
    version = Integer()
    subject = Varchar(length=40)
    name_zh = Varchar(length=200)
    name_en = Varchar(length=200)
    selector = JSON(null=True, default=None)  # a condition, or null: always
    priority = Integer(default=100)
    active = Boolean(default=True)  # only the latest version of a key is active
    definition = JSON(default={})  # definition.to_data
    fields = JSON(default={})  # field -> type the definition was validated against
    created_at = Timestamptz(default=utcnow)
    created_by = Varchar(length=64, null=True, default=None)
    # unique (tenant_id, key, version): index approval_workflow_version


class ApprovalInstance(TenantOwned, Table, tablename="approval_instance"):
    """One subject's approval: the engine's state and what the inbox filters on."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    workflow_id = UUID()
    workflow_key = Varchar(length=63)
    workflow_version = Integer()
    subject = Varchar(length=40)
    subject_id = Varchar(length=64)
    title = JSON(default={})  # {"zh-CN": ..., "en": ...}
    link = Varchar(length=300, default="")
    status = Varchar(length=20)  # in_progress | returned | approved | rejected
    step = Varchar(length=63, null=True, default=None)
    state = JSON(default={})  # serialize.instance_data
    amount = BigInt(null=True, default=None)  # 分, from facts["amount"]
    product = Varchar(length=63, null=True, default=None)
    submitted_by = Varchar(length=64)
    submitted_at = Timestamptz(default=utcnow)
    due_at = Timestamptz(null=True, default=None)  # the current step's deadline
    next_due_at = Timestamptz(null=True, default=None)  # next reminder or escalation
    finished_at = Timestamptz(null=True, default=None)
    version = Integer(default=1)  # optimistic concurrency: every change adds one
    created_at = Timestamptz(default=utcnow)
    updated_at = Timestamptz(default=utcnow)


class ApprovalTask(TenantOwned, Table, tablename="approval_task"):
    """One holder of one task of one step (a role, a named user, or an escalation target;
    `resubmit` for the submitter of a returned subject). Closed rows stay: "done by me"."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    instance_id = UUID()
    entry = Integer()  # the step entry the task belongs to (engine numbering)
    task = Varchar(length=20)  # the engine's task id ("3.1"), or "resubmit"
    step = Varchar(length=63, null=True, default=None)
    step_name = JSON(default={})
    assignee = Varchar(length=80)  # "user:<name>" or "role:<name>"
    kind = Varchar(length=12, default="task")  # task | escalation | resubmit
    status = Varchar(length=12, default="pending")  # pending | approved | rejected | ...
    acted_by = Varchar(length=64, null=True, default=None)
    acted_at = Timestamptz(null=True, default=None)
    comment = Text(default="")
    # copied from the instance for the inbox's filters (no join)
    subject = Varchar(length=40)
    subject_id = Varchar(length=64)
    title = JSON(default={})
    link = Varchar(length=300, default="")
    amount = BigInt(null=True, default=None)
    product = Varchar(length=63, null=True, default=None)
    submitted_by = Varchar(length=64)
    created_by = Varchar(length=64)
    submitted_at = Timestamptz(default=utcnow)
    due_at = Timestamptz(null=True, default=None)
    distinct_approvers = Boolean(default=True)
    created_at = Timestamptz(default=utcnow)


class ApprovalEvent(TenantOwned, Table, tablename="approval_event"):
    """What happened to an instance (the engine's events), for its timeline."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    instance_id = UUID()
    subject = Varchar(length=40)
    subject_id = Varchar(length=64)
    seq = Integer()
    kind = Varchar(length=30)
    at = Timestamptz()
    actor = Varchar(length=64, null=True, default=None)
    step = Varchar(length=63, null=True, default=None)
    task = Varchar(length=20, null=True, default=None)
    data = JSON(default={})


APPROVAL_TABLES: list[type[Table]] = [ApprovalWorkflow, ApprovalInstance, ApprovalTask,
                                      ApprovalEvent]
