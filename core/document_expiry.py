"""KYC expiry: documents with an expiry date (an ID card's validity, a business licence)
warn before they lapse.

- `documents.expiry_warning_days` (a kernel setting per tenant, default 30): how many days
  ahead a document counts as expiring; its row shows a warning badge, an expired one a red
  badge (core/web/templates/entity/_documents.html).
- `core.documents.expiry` (periodic, 08:15 in the tenant's time zone): notifies the owner
  of each record whose live documents expire within the window or have expired, once per
  document, expiry date and stage (`ref`), so a run repeated the same day, or the next day,
  does not notify again until the stage changes (expiring -> expired) or the date is
  corrected. "Today" is the tenant's business date, like every other date rule.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from core.declarations import Job, PeriodicJob, PluginSetting
from core.tables import Document
from core.tenancy import KERNEL, Context, tenant_scope

SETTING = "documents.expiry_warning_days"
DEFAULT_WARNING_DAYS = 30
JOB = "core.documents.expiry"


def warning_days(ctx: Context) -> int:
    from core.kernel import kernel

    try:
        return max(0, int(kernel().setting(ctx.tenant, SETTING)))
    except (TypeError, ValueError):
        return DEFAULT_WARNING_DAYS


async def expiry_job(ctx: Context, on: str | None = None) -> int:
    """Notify record owners of expiring and expired documents; returns how many
    notifications were created."""
    from core import documents
    from core.kernel import kernel
    from core.notifications import notify

    today = date.fromisoformat(on) if on else ctx.tenant.business_date
    horizon = today + timedelta(days=warning_days(ctx))
    made = 0
    async with tenant_scope(ctx):
        rows = await Document.select(Document.id, Document.entity, Document.record_id,
                                     Document.kind, Document.expires_on).where(
            Document.tenant_id == ctx.tenant_id, Document.deleted_at.is_null(),
            Document.expires_on.is_not_null(), Document.expires_on <= horizon).run()
        owners = await _owners(ctx, rows)
        for row in rows:
            owner = owners.get((row["entity"], row["record_id"]))
            entity = kernel().registry.get(row["entity"])
            if owner is None or entity is None:
                continue  # a deleted record, or an entity without an owner
            stage = "expired" if row["expires_on"] < today else "expiring"
            day = row["expires_on"].isoformat()
            zh, en = documents.kind_label(row["kind"], "zh-CN"), documents.kind_label(
                row["kind"], "en")
            title = ({"zh-CN": f"{entity.label_zh}资料「{zh}」已于 {day} 过期",
                      "en": f"A {entity.label_en.lower()}'s {en} expired on {day}"}
                     if stage == "expired" else
                     {"zh-CN": f"{entity.label_zh}资料「{zh}」将于 {day} 到期",
                      "en": f"A {entity.label_en.lower()}'s {en} expires on {day}"})
            made += await notify(ctx, users=[str(owner)], kind=f"document.{stage}",
                                 title=title,
                                 link=f"/e/{row['entity']}/{row['record_id']}#documents",
                                 ref=f"doc-expiry:{row['id']}:{day}:{stage}")
    return made


async def _owners(ctx: Context, rows: list[dict[str, Any]]) -> dict[tuple[str, Any], Any]:
    """(entity, record id) -> owner user id, for live records of registry entities."""
    from core.kernel import kernel

    by_entity: dict[str, set[Any]] = {}
    for row in rows:
        by_entity.setdefault(row["entity"], set()).add(row["record_id"])
    found: dict[tuple[str, Any], Any] = {}
    for name, ids in by_entity.items():
        entity = kernel().registry.get(name)
        if entity is None or not ctx.tenant.enabled(entity.plugin):
            continue
        t = entity.table
        for r in await t.select(t.id, t.owner_id).where(
                t.tenant_id == ctx.tenant_id, t.id.is_in(list(ids)),
                t.deleted_at.is_null()).run():
            if r["owner_id"]:
                found[(name, r["id"])] = r["owner_id"]
    return found


KERNEL_SETTINGS = [PluginSetting(SETTING, "资料到期提前提醒天数",
                                 "Warn this many days before a document expires",
                                 DEFAULT_WARNING_DAYS, plugin=KERNEL)]
JOBS = [Job(JOB, expiry_job, time_limit_s=600, max_retries=3, plugin=KERNEL)]
PERIODIC_JOBS = [PeriodicJob(JOB, "15 8 * * *", JOB, plugin=KERNEL)]
