"""The approvals API under /api/v1: a user's inbox, an approval and its actions, a
subject's timeline, and the workflows (read; a new version with workflow.manage)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from litestar import get, post
from litestar.params import FromPath, FromQuery, JSONBody

from core.web.context import CurrentContext
from plugins.origination import approvals

TAG = "Approvals"
SIGNED_IN = {"authenticated": True}


def _time(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _task(r: dict[str, Any]) -> dict[str, Any]:
    return {"instance_id": str(r["instance_id"]), "task": r["task"], "kind": r["kind"],
            "step": r["step"], "step_name": r["step_name"], "subject": r["subject"],
            "subject_id": r["subject_id"], "title": r["title"], "link": r["link"],
            "amount_fen": r["amount"], "product": r["product"],
            "submitted_by": r["submitted_by"], "submitted_at": _time(r["submitted_at"]),
            "due_at": _time(r["due_at"]), "status": r["status"], "acted_at":
                _time(r["acted_at"]), "comment": r["comment"]}


@get("/approvals/inbox", tags=[TAG], summary="My open approvals, with counts", opt=SIGNED_IN)
async def inbox(ctx: CurrentContext, subject: FromQuery[str] = "",
                overdue: FromQuery[bool] = False) -> dict[str, Any]:
    box = await approvals.inbox(ctx, approvals.InboxFilter(subject=subject, overdue=overdue))
    return {"counts": box["counts"], "items": [_task(r) for r in box["items"]]}


@get("/approvals/done", tags=[TAG], summary="What I decided", opt=SIGNED_IN)
async def done(ctx: CurrentContext) -> list[dict[str, Any]]:
    return [_task(r) for r in await approvals.done_by(ctx)]


@get("/approvals/{instance_id:uuid}", tags=[TAG], summary="An approval", opt=SIGNED_IN)
async def get_approval(ctx: CurrentContext, instance_id: FromPath[UUID]) -> dict[str, Any]:
    d = await approvals.detail(ctx, instance_id)
    return {**approvals.summary(d["row"]),
            "can_act": [t.id for t in d["eligible"]], "can_resubmit": d["can_resubmit"],
            "timeline": [{**i, "at": _time(i["at"])} for i in d["timeline"]]}


@post("/approvals/{instance_id:uuid}/actions", tags=[TAG], status_code=200,
      summary="Approve, reject, return, transfer, add an approver, resubmit or reassign",
      opt=SIGNED_IN)
async def act(ctx: CurrentContext, instance_id: FromPath[UUID],
              data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"action": "approve", "comment": "...", "version": 3, "to_user": "...", "task": "...",
    "user": "...", "facts": {...}}`; `version` (optional) refuses a stale view (409).
    `reassign` (permission approval.reassign) moves the open `task` to `to_user`."""
    extra = {k: data[k] for k in ("to_user", "user", "facts", "task") if k in data}
    version = data.get("version")
    return await approvals.act(ctx, instance_id, str(data.get("action") or ""),
                               str(data.get("comment") or ""),
                               expected_version=version if isinstance(version, int) else None,
                               **extra)


@get("/approvals/timeline", tags=[TAG], summary="The approval timeline of a subject",
     opt={"permission": "workflow.read"})
async def timeline(ctx: CurrentContext, subject: FromQuery[str],
                   subject_id: FromQuery[str]) -> list[dict[str, Any]]:
    return [{**i, "at": _time(i["at"])} for i in await approvals.timeline(ctx, subject,
                                                                           subject_id)]


@get("/workflows", tags=[TAG], summary="Approval workflows and their versions",
     opt={"permission": "workflow.read"})
async def list_workflows(ctx: CurrentContext) -> list[dict[str, Any]]:
    return [{"id": str(v.id), "key": v.key, "version": v.version, "active": v.active,
             "created_at": _time(v.created_at), "created_by": v.created_by,
             "definition": approvals.export_data(v)} for v in await approvals.workflows(ctx)]


@post("/workflows", tags=[TAG], summary="Save a workflow as a new version",
      opt={"permission": "workflow.manage"}, status_code=201)
async def save_workflow(ctx: CurrentContext, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """A definition (docs/workflows.md) with `subject`, optional `when` and `priority`;
    refusals (422) name the step of each problem."""
    return await approvals.save_workflow(ctx, data)


ROUTES = [inbox, done, timeline, get_approval, act, list_workflows, save_workflow]
