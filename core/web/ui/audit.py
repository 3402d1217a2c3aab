"""The audit log for compliance officers: search, chain check and the signed export.

    GET  /audit          the tenant's entries, newest first, filtered by user, entity,
                         action, record and date (days in the tenant's time zone); 50 a page,
                         the table swapped by htmx like the entity lists   (audit.read)
    POST /audit/verify   core.audit.verify_tenant on demand: intact, or the first broken
                         entry (an htmx fragment; a full page without JavaScript)  (audit.read)
    POST /audit/export   core.audit_export.export_zip for a date range, as a download
                                                                                 (audit.export)

The page only reads the log (`search_entries`, `filter_choices`): the table is append-only
and every query runs in tenant_scope with the user's Context and filters on tenant_id.
Secret values never reach it in clear: the writers store them as keyed hashes (`hmac:...`),
shown here as "encrypted: digest only".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Request, Response, get, post

from core import audit
from core.fields import FieldDef
from core.tables import AuditEntry, Role
from core.tenancy import Context, tenant_scope
from core.web.context import CurrentContext
from core.web.ui.forms import choice_label
from core.web.ui.home import EVENT_KINDS
from core.web.ui.i18n import N_, gettext_for
from core.web.ui.render import render

UI = {"include_in_schema": False}
READ = {"permission": "audit.read"}
EXPORT = {"permission": "audit.export"}
PER_PAGE = 50
MAX_INPUT = 64  # usernames, record ids: the columns' own lengths
DIFF_SHOWN = 4  # fields shown at once in a row; the rest behind "n more"
MAX_VALUE = 120
CHOICES_LIMIT = 200

ACTIONS = {
    **EVENT_KINDS,
    "create": N_("Record created"),
    "update": N_("Record changed"),
    "delete": N_("Record deleted"),
    "secret_search": N_("Exact search on a secret field"),
    "mfa_reset": N_("Two-factor authentication reset"),
    "oidc_linked": N_("Single sign-on account linked"),
    "user.create": N_("User created"),
    "user.update": N_("User changed"),
    "user.enable": N_("User enabled"),
    "user.disable": N_("User disabled"),
    "role.save": N_("Role saved"),
    "field_policy.set": N_("Field policy set"),
    "org_unit.create": N_("Organisation unit created"),
    "plugin.enable": N_("Plugin enabled"),
    "plugin.disable": N_("Plugin disabled"),
    "audit.export": N_("Audit log exported"),
    "audit.prune": N_("Old audit entries pruned"),
    "keys.rotate": N_("Data key rotated"),
    "keys.reencrypt": N_("Data re-encrypted with the current key"),
    "keys.rewrap": N_("Data keys re-wrapped under a new master key"),
    "keys.shred": N_("Data keys deleted (crypto-shredding)"),
    "webhook.create": N_("Webhook created"),
    "webhook.update": N_("Webhook changed"),
    "webhook.delete": N_("Webhook deleted"),
    "job.retry": N_("Failed job retried"),
    "document.upload": N_("Document uploaded"),
    "document.download": N_("Document downloaded or previewed"),
    "document.delete": N_("Document deleted"),
}
KERNEL_ENTITIES = {
    "user": N_("User"),
    "role": N_("Role"),
    "org_unit": N_("Org. unit"),
    "plugin": N_("Plugin"),
    "audit": N_("Audit log"),
    "tenant_key": N_("Data key"),
    "webhook": N_("Webhook"),
    "outbox_message": N_("Background job"),
    "document": N_("Document"),
}
PROBLEMS = {
    "changed": N_("the entry was changed"),
    "removed": N_("an entry was removed"),
    "inserted_or_reordered": N_("an entry was inserted or moved"),
    "truncated": N_("the end of the chain was cut off"),
}
SYSTEM_ROLE = N_("System")
VERIFY_COMMAND = "xindai audit verify FILE.zip"


# --- reading the log ---------------------------------------------------------------------

@dataclass(frozen=True)
class AuditQuery:
    """What to look for; empty strings and None match everything. `since` is inclusive,
    `before` exclusive, both aware datetimes."""

    user: str = ""
    entity: str = ""
    action: str = ""
    record: str = ""
    since: datetime | None = None
    before: datetime | None = None


async def search_entries(ctx: Context, query: AuditQuery, page: int = 1,
                         per_page: int = PER_PAGE) -> tuple[list[dict[str, Any]], int, int]:
    """One page of ctx's tenant's entries, newest first: (rows, total, page). A page past
    the end gives the last page. Read-only."""
    where = [AuditEntry.tenant_id == ctx.tenant_id]
    if query.user:
        where.append(AuditEntry.username == query.user)
    if query.entity:
        where.append(AuditEntry.entity == query.entity)
    if query.action:
        where.append(AuditEntry.action == query.action)
    if query.record:
        where.append(AuditEntry.record_id == query.record)
    if query.since is not None:
        where.append(AuditEntry.at >= query.since.astimezone(UTC))
    if query.before is not None:
        where.append(AuditEntry.at < query.before.astimezone(UTC))
    async with tenant_scope(ctx, write=False):
        total = await AuditEntry.count().where(*where).run()
        page = max(1, min(page, -(-total // per_page)))
        rows = await AuditEntry.select(
            AuditEntry.seq, AuditEntry.at, AuditEntry.username, AuditEntry.roles,
            AuditEntry.ip, AuditEntry.user_agent, AuditEntry.action, AuditEntry.entity,
            AuditEntry.record_id, AuditEntry.diff,
        ).where(*where).order_by(AuditEntry.seq, ascending=False) \
            .limit(per_page).offset((page - 1) * per_page).output(load_json=True).run()
    return rows, total, page


async def filter_choices(ctx: Context, lists: bool = True) -> dict[str, Any]:
    """The tenant's role labels (for the user column) and, with `lists`, the actions,
    entities and usernames present in the log (for the filters). Read-only."""
    async def distinct(column: Any) -> list[str]:
        rows = await AuditEntry.select(column).where(
            AuditEntry.tenant_id == ctx.tenant_id, column.is_not_null()
        ).distinct().order_by(column).limit(CHOICES_LIMIT).run()
        return [r[column._meta.name] for r in rows]

    async with tenant_scope(ctx, write=False):
        roles = await Role.select(Role.name, Role.label_zh, Role.label_en).where(
            Role.tenant_id == ctx.tenant_id).run()
        return {"actions": await distinct(AuditEntry.action) if lists else [],
                "entities": await distinct(AuditEntry.entity) if lists else [],
                "users": await distinct(AuditEntry.username) if lists else [],
                "roles": {r["name"]: r for r in roles}}


# --- reading the request -----------------------------------------------------------------

def _day(raw: str | None) -> date | None:
    """A YYYY-MM-DD day (years 1900 to 9000: no overflow in time-zone arithmetic)."""
    try:
        day = date.fromisoformat((raw or "").strip()) if raw and raw.strip() else None
    except ValueError:
        return None
    return day if day is None or 1900 <= day.year <= 9000 else None


def day_range(first: date | None, last: date | None, tz: str
              ) -> tuple[datetime | None, datetime | None]:
    """[start of `first`, start of the day after `last`) in the tenant's time zone."""
    zone = ZoneInfo(tz or "Asia/Shanghai")
    since = datetime.combine(first, time.min, zone) if first else None
    before = datetime.combine(last + timedelta(days=1), time.min, zone) if last else None
    return since, before


def _text(params: dict[str, str], key: str) -> str:
    return params.get(key, "").strip()[:MAX_INPUT]


def _page_number(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or 1), 1_000_000))
    except ValueError:
        return 1


def _url(params: dict[str, str], **changes: Any) -> str:
    merged = {**params, **{k: str(v) for k, v in changes.items()}}
    merged = {k: v for k, v in merged.items() if v not in ("", None)}
    return "/audit" + ("?" + urlencode(merged) if merged else "")


# --- presenting entries ------------------------------------------------------------------

def _when(value: Any, tz: str) -> str:
    """A stored timestamp in the tenant's time zone, to the second."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(tz or "Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")


def _entity_label(name: str | None, lang: str) -> str:
    from core.kernel import kernel

    if not name:
        return ""
    entity = kernel().registry.entities.get(name)
    if entity is not None:
        return entity.label(lang)
    label = KERNEL_ENTITIES.get(name)
    return gettext_for(lang)(label) if label else name


def _field(entity: str | None, key: str) -> FieldDef | None:
    from core.kernel import kernel

    registered = kernel().registry.entities.get(entity or "")
    return registered.field(key) if registered is not None else None


def _action_label(action: str, lang: str) -> str:
    label = ACTIONS.get(action)
    return gettext_for(lang)(label) if label else action


def _value(value: Any, f: FieldDef | None = None, lang: str = "zh-CN") -> dict[str, Any]:
    """One value of a diff: its text (a choice's label), or that it is a keyed hash of a
    secret."""
    out = {"text": "", "empty": False, "enc": False, "digest": "", "full": ""}
    if value is None or value == "":
        return {**out, "empty": True}
    if isinstance(value, str) and value.startswith("hmac:"):
        return {**out, "enc": True, "digest": value[5:13], "full": value}
    if f is not None and f.options and isinstance(value, str):
        value = choice_label(f, value, lang)
    text = value if isinstance(value, str) else ", ".join(map(str, value)) \
        if isinstance(value, list) and all(isinstance(v, str) for v in value) \
        else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > MAX_VALUE:
        text = text[:MAX_VALUE - 1] + "…"
    return {**out, "text": text}


def diff_items(entry: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """The field-level diff as `field: old -> new` (a created record: `field: new`); other
    details (`key: value`) as they are."""
    diff = entry.get("diff") or {}
    if not isinstance(diff, dict):
        return [{"label": "", "key": "", "new": _value(diff)}]
    out = []
    for key, change in diff.items():
        f = _field(entry["entity"], key)
        item: dict[str, Any] = {"key": key, "label": f.label(lang) if f else key}
        if isinstance(change, list) and len(change) == 2:
            old, new = change
            if not (old is None and entry["action"] == "create"):
                item["old"] = _value(old, f, lang)
            item["new"] = _value(new, f, lang)
        else:
            item["new"] = _value(change)
        out.append(item)
    return out


def present(entry: dict[str, Any], lang: str, tz: str, roles: dict[str, Any]
            ) -> dict[str, Any]:
    _ = gettext_for(lang)

    def role_label(name: str) -> str:
        if name == "system":
            return _(SYSTEM_ROLE)
        row = roles.get(name)
        return (row["label_en"] if lang == "en" else row["label_zh"]) if row else name

    record = entry["record_id"] or ""
    items = diff_items(entry, lang)
    return {
        "seq": entry["seq"], "when": _when(entry["at"], tz),
        "username": entry["username"] or "", "roles": [role_label(r) for r in entry["roles"]
                                                       or ()],
        "action": entry["action"], "action_label": _action_label(entry["action"], lang),
        "entity": entry["entity"] or "", "entity_label": _entity_label(entry["entity"], lang),
        "record": record, "record_short": record if len(record) <= 12 else record[:8] + "…",
        "record_url": _url({}, record=record) if record else "",
        "diff": items[:DIFF_SHOWN], "diff_more": items[DIFF_SHOWN:],
        "ip": entry["ip"] or "", "user_agent": entry["user_agent"] or "",
    }


def describe(verdict: audit.Verdict, lang: str) -> dict[str, Any]:
    """The chain check in the user's language."""
    _ = gettext_for(lang)
    if verdict.ok:
        return {"ok": True, "checked": verdict.checked}
    problem = PROBLEMS.get(verdict.problem)
    return {"ok": False, "checked": verdict.checked, "seq": verdict.seq,
            "problem": _(problem) if problem else verdict.problem}


# --- pages -------------------------------------------------------------------------------

async def _page(request: Request[Any, Any, Any], ctx: Context, *, status: int = 200,
                verdict: dict[str, Any] | None = None, export: dict[str, str] | None = None,
                export_error: str = "") -> Response[Any]:
    lang, tz = ctx.locale, ctx.tenant.timezone
    _ = gettext_for(lang)
    params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    first, last = _day(params.get("from")), _day(params.get("to"))
    query = AuditQuery(user=_text(params, "user"), entity=_text(params, "entity"),
                       action=_text(params, "action")[:40], record=_text(params, "record"))
    keep = {"user": query.user, "entity": query.entity, "action": query.action,
            "record": query.record, "from": first.isoformat() if first else "",
            "to": last.isoformat() if last else ""}
    error = ""
    if (params.get("from") and first is None) or (params.get("to") and last is None):
        error = _("Enter dates as YYYY-MM-DD.")
    elif first and last and first > last:
        error = _("The start date is after the end date.")
    rows: list[dict[str, Any]] = []
    total, page = 0, 1
    partial = request.headers.get("hx-request") == "true" and \
        request.headers.get("hx-target") == "entries"
    choices = await filter_choices(ctx, lists=not partial)  # the table alone needs no lists
    if error:
        status = 422
    else:
        since, before = day_range(first, last, tz)
        found, total, page = await search_entries(
            ctx, replace(query, since=since, before=before),
            _page_number(params.get("page")))
        rows = [present(r, lang, tz, choices["roles"]) for r in found]
    pages = max(1, -(-total // PER_PAGE))
    context = {
        "rows": rows, "total": total, "page": page, "pages": pages, "error": error,
        "filters": keep, "filtered": any(keep.values()), "tz": tz,
        "prev_url": _url(keep, page=page - 1) if page > 1 else "",
        "next_url": _url(keep, page=page + 1) if page < pages else "",
        "actions": sorted(((a, _action_label(a, lang)) for a in choices["actions"]),
                          key=lambda c: c[1]),
        "entities": sorted(((e, _entity_label(e, lang)) for e in choices["entities"]),
                           key=lambda c: c[1]),
        "users": choices["users"],
        "can_export": ctx.access.can("audit.export"),
        "verdict": verdict, "export": export or {"from": "", "to": ""},
        "export_error": export_error, "verify_command": VERIFY_COMMAND,
    }
    return render(request, "audit/_table.html" if partial else "audit/list.html",
                  status=status, **context)


@get("/audit", opt=READ, **UI)
async def audit_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    return await _page(request, ctx)


@post("/audit/verify", opt=READ, status_code=200, **UI)
async def audit_verify(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    """Check the tenant's live chain now; an htmx fragment, else the page with the result."""
    verdict = describe(await audit.verify_tenant(ctx), ctx.locale)
    verdict["at"] = _when(datetime.now(UTC), ctx.tenant.timezone)
    if request.headers.get("hx-request") == "true":
        return render(request, "audit/_verify.html", verdict=verdict)
    return await _page(request, ctx, verdict=verdict)


@post("/audit/export", opt=EXPORT, status_code=200, **UI)
async def audit_export(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    """The signed zip of the entries between two days (tenant time zone, both included)."""
    from core.audit_export import export_zip

    _ = gettext_for(ctx.locale)
    form = await request.form()
    raw = {k: str(form.get(k) or "").strip()[:10] for k in ("from", "to")}
    first, last = _day(raw["from"]), _day(raw["to"])
    error = ""
    if (raw["from"] and first is None) or (raw["to"] and last is None):
        error = _("Enter dates as YYYY-MM-DD.")
    elif first and last and first > last:
        error = _("The start date is after the end date.")
    if error:
        return await _page(request, ctx, status=422, export=raw, export_error=error)
    since, before = day_range(first, last, ctx.tenant.timezone)
    until = before - timedelta(microseconds=1) if before else None
    data = await export_zip(ctx, since, until)
    today = datetime.now(ZoneInfo(ctx.tenant.timezone or "Asia/Shanghai")).date().isoformat()
    filename = f"audit-{ctx.tenant.slug}-{today}.zip"
    return Response(content=data, media_type="application/zip", status_code=200, headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    })


AUDIT_HANDLERS = [audit_page, audit_verify, audit_export]
