"""The `crm_activity` section of a tenant pack: follow-ups and tasks of the pack's
customers (demo and test data; synthetic). Loaded after the records, through the same
services as the screens (plugins.crm.activity), acting as the named user:

    crm_activity:
      followups:
        - {customer: {resident_id: ...}, by: officer, kind: call, occurred_at: ISO 8601,
           outcome: interested, content: ..., next_step: ..., next_follow_up_on: YYYY-MM-DD,
           create_task: true}
      tasks:
        - {customer: {credit_code: ...}, by: officer, title: ..., due_on: YYYY-MM-DD,
           assignee: officer2, note: ...}

Follow-ups and tasks are working history, not configuration: export leaves them out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core import records
from core.declarations import PackSource
from core.errors import ValidationFailed, XindaiError
from core.packs import PackError
from core.tables import User
from core.tenancy import Context
from plugins.crm import activity


async def _as(ctx: Context, username: str | None) -> Context:
    if not username:
        return ctx
    rows = await User.select(User.id).where(User.tenant_id == ctx.tenant_id,
                                            User.username == username).run()
    if not rows:
        raise XindaiError("bad_request")
    return replace(ctx, user_id=str(rows[0]["id"]), username=username)


async def _customer(ctx: Context, spec: Any) -> str:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise XindaiError("bad_request")
    (key, value), = spec.items()
    ids = await records.find_ids(ctx, "customer", key, str(value)) if key != "credit_code" \
        else [r["id"] for r in (await records.list_records(
            ctx, "customer", {"credit_code": str(value)})).items]
    if not ids:
        raise XindaiError("bad_request")
    return ids[0]


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationFailed):
        return "; ".join(e.message("zh-CN") + " / " + e.message("en") for e in exc.errors)
    return "客户或用户不存在 / unknown customer or user"


async def load_activity(ctx: Context, data: Any, source: PackSource) -> None:
    line = source.lines.get("crm_activity")
    if not isinstance(data, dict):
        raise PackError(source.path, line, "crm_activity 应为映射 / crm_activity must be a "
                        "mapping with followups and tasks")
    for i, spec in enumerate(data.get("followups") or []):
        spec = dict(spec)
        try:
            actor = await _as(ctx, spec.pop("by", None))
            customer = await _customer(ctx, spec.pop("customer", None))
            await activity.log_followup(actor, "customer", customer, _plain(spec))
        except (ValidationFailed, XindaiError) as exc:
            raise PackError(source.path, getattr(spec, "line", line),
                            f"crm_activity.followups[{i}]: {_problem(exc)}") from None
    for i, spec in enumerate(data.get("tasks") or []):
        spec = dict(spec)
        try:
            actor = await _as(ctx, spec.pop("by", None))
            customer = await _customer(ctx, spec.pop("customer", None))
            await activity.create_task(actor, _plain(spec), "customer", customer)
        except (ValidationFailed, XindaiError) as exc:
            raise PackError(source.path, getattr(spec, "line", line),
                            f"crm_activity.tasks[{i}]: {_problem(exc)}") from None


def _plain(spec: dict[str, Any]) -> dict[str, Any]:
    """YAML gives dates and datetimes as objects; the services take JSON-style input."""
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in spec.items()}


async def export_activity(ctx: Context) -> Any:
    return None
