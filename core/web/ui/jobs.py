"""The background jobs page for tenant admins (jobs.manage): the tenant's latest jobs and
events with their status, attempts, last error and progress, and the dead-letter list.

    GET  /admin/jobs?status=open|dead&kind=job|event   the latest 100, newest first; while
         one is running or due within a minute (waiting, just retried) the table refreshes
         itself every 2 s (htmx polling of the same URL, which then answers the table alone)
    POST /admin/jobs/{id}/retry                          core.outbox.retry (audited), back

Everything shown comes from core.outbox (`recent`, `status_of`); the page writes nothing
but the retry, which needs the CSRF token like every form.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from core import outbox
from core.errors import Conflict, NotFound
from core.web.context import CurrentContext
from core.web.ui.i18n import N_, gettext_for
from core.web.ui.render import render, safe_next

UI = {"include_in_schema": False}
JOBS = {"permission": "jobs.manage"}
LIMIT = 100
POLL_WITHIN_S = 60  # keep refreshing while something runs or is due within a minute

STATUSES = {
    "pending": N_("Waiting"),
    "running": N_("Running"),
    "retrying": N_("Will retry"),
    "done": N_("Done"),
    "dead": N_("Failed"),
}
STATUS_FILTERS = (("", N_("All")), ("open", N_("Unfinished")), ("dead", N_("Failed")))
KIND_FILTERS = (("", N_("Jobs and events")), ("job", N_("Jobs")), ("event", N_("Events")))
KINDS = {"job": N_("Job"), "event": N_("Event")}
JOB_LABELS = {
    "core.keys.reencrypt": N_("Re-encrypt data with the current key"),
    "core.audit.checkpoint": N_("Sign an audit checkpoint"),
    "core.outbox.cleanup": N_("Forget finished jobs after 30 days"),
    "core.webhooks.deliver": N_("Webhook delivery"),
    "core.webhooks.cleanup": N_("Forget webhook deliveries after 30 days"),
    "core.imports.run": N_("Spreadsheet import"),
    "core.imports.cleanup": N_("Delete import files not imported within 7 days"),
}
EVENT_ACTIONS = {
    "created": N_("%(entity)s created"),
    "updated": N_("%(entity)s changed"),
    "deleted": N_("%(entity)s deleted"),
}


def event_label(name: str, lang: str) -> str:
    """`customer.created` as "客户 已新建"; other events as their name."""
    from core.kernel import kernel

    entity_name, _sep, action = name.rpartition(".")
    entity = kernel().registry.entities.get(entity_name)
    if entity is None or action not in EVENT_ACTIONS:
        return name
    return gettext_for(lang)(EVENT_ACTIONS[action], entity=entity.label(lang))


def local_seconds(value: Any, tz: str) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(tz or "Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")


def present(row: dict[str, Any], lang: str, tz: str) -> dict[str, Any]:
    """One outbox row as the table shows it."""
    _ = gettext_for(lang)
    name, payload = row["name"], row["payload"] or {}
    if row["kind"] == "event":
        title = event_label(name, lang)
    else:
        title = _(JOB_LABELS[name]) if name in JOB_LABELS else name
    if name == "core.webhooks.deliver" and isinstance(payload, dict):
        title = f"{title} · {payload.get('event', '')}"
    done, total = row["progress_done"] or 0, row["progress_total"]
    progress = None
    if row["status"] in ("running", "retrying", "pending") and (total or row["status"]
                                                                 == "running"):
        progress = {"done": done, "total": total,
                    "percent": min(100, done * 100 // total) if total else None,
                    "note": row["progress_note"] or ""}
    elif total:
        progress = {"done": done, "total": total, "percent": None, "note": "", "final": True}
    error = row["last_error"] or ""
    return {
        "id": str(row["id"]), "kind": row["kind"], "kind_label": _(KINDS.get(row["kind"],
                                                                              row["kind"])),
        "name": name, "title": title, "status": row["status"],
        "status_label": _(STATUSES.get(row["status"], row["status"])),
        "attempts": row["attempts"], "max_attempts": row["max_attempts"],
        "created": local_seconds(row["created_at"], tz), "by": row["created_by"] or "",
        "finished": local_seconds(row["finished_at"] or row["dead_at"], tz),
        "next_try": local_seconds(row["available_at"], tz) if row["status"] == "retrying" else "",
        "error": error, "error_head": error.splitlines()[-1][:120] if error else "",
        "payload": json.dumps(payload, ensure_ascii=False, indent=1, default=str)[:2000],
        "progress": progress, "dead": row["status"] == "dead", "soon": _soon(row),
    }


def _soon(row: dict[str, Any]) -> bool:
    """Running, or unfinished and due within POLL_WITHIN_S (waiting, or just retried)."""
    if row["status"] == "running":
        return True
    if row["status"] not in ("pending", "retrying"):
        return False
    due = row["available_at"]
    if isinstance(due, str):
        due = datetime.fromisoformat(due)
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    return (due - datetime.now(UTC)).total_seconds() <= POLL_WITHIN_S


def _url(**params: str) -> str:
    kept = {k: v for k, v in params.items() if v}
    return "/admin/jobs" + ("?" + urlencode(kept) if kept else "")


@get("/admin/jobs", opt=JOBS, **UI)
async def jobs_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    _ = gettext_for(ctx.locale)
    status = request.query_params.get("status") or ""
    kind = request.query_params.get("kind") or ""
    status = status if status in ("open", "dead") else ""
    kind = kind if kind in ("job", "event") else ""
    rows = await outbox.recent(ctx, status or None, kind or None, LIMIT)
    items = [present(r, ctx.locale, ctx.tenant.timezone) for r in rows]
    partial = request.headers.get("hx-request") == "true" and \
        request.headers.get("hx-target") == "jobs"
    here = _url(status=status, kind=kind)
    return render(
        request, "jobs/_table.html" if partial else "jobs/list.html",
        rows=items, filter_status=status, kind=kind, here=here, limit=LIMIT,
        polling=any(r["soon"] for r in items),
        status_filters=[(v, _(label), _url(status=v, kind=kind)) for v, label in STATUS_FILTERS],
        kind_filters=[(v, _(label), _url(status=status, kind=v)) for v, label in KIND_FILTERS],
        tz=ctx.tenant.timezone,
    )


@post("/admin/jobs/{message_id:str}/retry", opt=JOBS, status_code=303, **UI)
async def job_retry(request: Request[Any, Any, Any], ctx: CurrentContext,
                    message_id: FromPath[str]) -> Response[Any]:
    """Bring a dead job or event back (due now); then back to the list it came from."""
    try:
        wanted = uuid.UUID(message_id)
    except ValueError:
        raise NotFound() from None
    if await outbox.get(ctx, wanted) is None:
        raise NotFound()
    if not await outbox.retry(ctx, wanted):
        raise Conflict("job_not_dead")
    back = (await request.form()).get("next")
    return Redirect(safe_next(back if isinstance(back, str) else None, "/admin/jobs"),
                    status_code=303)


JOBS_HANDLERS = [jobs_page, job_retry]
