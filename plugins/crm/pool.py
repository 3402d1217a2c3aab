"""The public pool (公海): leads nobody owns.

A lead is in the pool when it has no owner and is still open (not converted, invalid or
merged): captured with no rule matching and nobody capturing it (the web form), released
by its officer, or returned by the daily sweep because it had no activity (stage change,
follow-up, claim) for `crm.pool_days` days (default 15). Officers claim pool leads while
they hold fewer than `crm.pool_claim_limit` open leads (default 50); a claim is one
conditional UPDATE, so two officers claiming at once cannot both win.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from core import audit
from core.access import require
from core.errors import Conflict, NotFound, XindaiError
from core.events import emit, emit_many
from core.i18n import register_messages
from core.tables import User
from core.tenancy import Context, tenant_scope
from core.validators import mask_name
from plugins.crm.assignment import CLOSED_STAGES, open_lead_counts
from plugins.crm.lead_tables import Lead
from plugins.crm.leads import set_system, stage_label

register_messages({
    "pool_claim_limit": {"zh-CN": "您已持有 {count} 条未结线索，达到领取上限 {limit}",
                         "en": "you hold {count} open leads, the claim limit is {limit}"},
    "pool_taken": {"zh-CN": "该线索已不在公海中（可能已被他人领取）",
                   "en": "this lead is no longer in the pool (someone may have claimed it)"},
    "pool_unknown_user": {"zh-CN": "未知或停用的用户 {username}",
                          "en": "unknown or inactive user {username}"},
})


def _open(ctx: Context) -> list[Any]:
    return [Lead.tenant_id == ctx.tenant_id, Lead.deleted_at.is_null(),
            Lead.merged_into_id.is_null(), Lead.stage.not_in(list(CLOSED_STAGES))]


async def list_pool(ctx: Context, limit: int = 200) -> list[dict[str, Any]]:
    """Pool leads for officers to pick from (lead.read): names masked, masked mobile only."""
    require(ctx, "lead.read")
    async with tenant_scope(ctx, write=False):
        rows = await Lead.select(
            Lead.id, Lead.name, Lead.kind, Lead.region, Lead.source, Lead.product_interest,
            Lead.stage, Lead.masked, Lead.created_at, Lead.pooled_at,
        ).where(*_open(ctx), Lead.owner_id.is_null()).order_by(
            Lead.created_at, ascending=False).limit(limit).output(load_json=True).run()
    return [{"id": str(r["id"]), "name": mask_name(r["name"]), "kind": r["kind"],
             "region": r["region"], "source": r["source"],
             "product_interest": r["product_interest"], "stage": r["stage"],
             "stage_label": stage_label(ctx, r["stage"]),
             "mobile": (r["masked"] or {}).get("mobile"),
             "created_at": r["created_at"].isoformat(),
             "pooled_at": r["pooled_at"].isoformat() if r["pooled_at"] else None}
            for r in rows]


def _uuid(value: Any) -> uuid.UUID | None:
    return None if value in (None, "") else uuid.UUID(str(value))


async def claim(ctx: Context, lead_id: Any) -> None:
    """Take a pool lead (lead.claim), within the claim limit."""
    from core.kernel import kernel

    require(ctx, "lead.claim")
    limit = int(kernel().setting(ctx.tenant, "crm.pool_claim_limit"))
    try:
        lid = uuid.UUID(str(lead_id))
    except ValueError:
        raise NotFound() from None
    async with tenant_scope(ctx):
        held = (await open_lead_counts(ctx, [ctx.user_id]))[ctx.user_id]
        if held >= limit:
            raise Conflict("pool_claim_limit", count=held, limit=limit)
        now = datetime.now(UTC)
        won = await Lead.update({
            Lead.owner_id: _uuid(ctx.user_id), Lead.org_unit_id: _uuid(ctx.access.org_unit_id),
            Lead.pooled_at: None, Lead.last_activity_at: now, Lead.updated_at: now,
            Lead.updated_by: ctx.user_id, Lead.version: Lead.version + 1,
        }).where(*_open(ctx), Lead.id == lid, Lead.owner_id.is_null()).returning(Lead.id).run()
        if not won:
            raise Conflict("pool_taken")
        await audit.append(ctx, "lead.claim", "lead", lid, {"owner_id": [None, ctx.user_id]})
        await emit(ctx, "lead.updated", {"entity": "lead", "id": str(lid),
                                         "fields": ["owner_id"]})


async def release(ctx: Context, lead_id: Any) -> None:
    """Give one's lead back to the pool (lead.update on a lead one may see)."""
    from core import records

    require(ctx, "lead.update")
    async with tenant_scope(ctx):
        lead = await records.get(ctx, "lead", lead_id)
        await set_system(ctx, lead["id"], {"pooled_at": datetime.now(UTC)}, "lead.release",
                         clear_owner=True)


async def assign(ctx: Context, lead_id: Any, username: str) -> None:
    """Give a lead (one's own, one of one's branch, or from the pool) to an officer
    (lead.assign)."""
    require(ctx, "lead.assign")
    async with tenant_scope(ctx):
        users = await User.select(User.id, User.org_unit_id).where(
            User.tenant_id == ctx.tenant_id, User.username == username,
            User.active.eq(True)).run()
        if not users:
            raise XindaiError("pool_unknown_user", username=username)
        await _visible_or_pooled(ctx, lead_id)
        await set_system(ctx, lead_id, {"pooled_at": None}, "lead.assign", owner=users[0])


async def _visible_or_pooled(ctx: Context, lead_id: Any) -> None:
    from core import records

    try:
        await records.get(ctx, "lead", lead_id)
        return
    except NotFound:
        pass
    rows = await Lead.select(Lead.id).where(*_open(ctx), Lead.id == _uuid(lead_id),
                                            Lead.owner_id.is_null()).run()
    if not rows:
        raise NotFound()


async def sweep(ctx: Context) -> int:
    """Return owned open leads with no activity for `crm.pool_days` days to the pool (the
    periodic job `crm.pool_sweep`). One UPDATE, one audit entry per lead, `lead.pooled`."""
    from core.kernel import kernel

    days = int(kernel().setting(ctx.tenant, "crm.pool_days"))
    cutoff = datetime.now(UTC) - timedelta(days=days)
    async with tenant_scope(ctx):
        stale = (Lead.last_activity_at < cutoff) | (
            Lead.last_activity_at.is_null() & (Lead.created_at < cutoff))
        now = datetime.now(UTC)
        rows = await Lead.update({
            Lead.owner_id: None, Lead.pooled_at: now, Lead.updated_at: now,
            Lead.version: Lead.version + 1,
        }).where(*_open(ctx), Lead.owner_id.is_not_null(), stale).returning(Lead.id).run()
        for r in rows:
            await audit.append(ctx, "lead.pooled", "lead", r["id"], {"days": days})
        await emit_many(ctx, "lead.pooled", [{"id": str(r["id"])} for r in rows])
        return len(rows)


async def sweep_job(ctx: Context) -> dict[str, int]:
    return {"returned": await sweep(ctx)}
