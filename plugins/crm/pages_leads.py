"""Lead screens (Jinja2 + htmx-free forms; every action is a POST with the session's CSRF):

    GET  /crm/leads                  list with filters (stage, source, owner) and the funnel
    GET  /crm/leads/{id}             one lead: stage, duplicates (merge), convert, pool moves
    POST /crm/leads/{id}/stage | /convert | /merge | /claim | /release | /assign
    GET  /crm/pool, POST /crm/pool/{id}/claim      the public pool (公海)
    GET/POST /crm/blacklist, POST /crm/blacklist/{id}/remove
    GET/POST /crm/assignment-rules
    GET/POST /crm/settings           form on/off, pool days, claim limit, funnel stages
Editing a lead's fields is the generic record form (/e/lead/{id}/edit).
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from core import audit, records
from core.access import allows, object_clause
from core.errors import FieldError, ValidationFailed, XindaiError
from core.tables import User
from core.tenancy import Context, tenant_scope, update_tenant
from core.web.context import CurrentContext
from core.web.ui.i18n import gettext_for
from core.web.ui.render import page_lang, render
from plugins.crm import assignment, blacklist, dedupe, leads, pool
from plugins.crm.lead_tables import Lead

UI = {"include_in_schema": False}
PER_PAGE = 30


def _err(exc: XindaiError, lang: str) -> str:
    if isinstance(exc, ValidationFailed):
        return "；".join(e.message(lang) for e in exc.errors)
    return exc.message(lang)


async def _users(ctx: Context) -> dict[str, dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        rows = await User.select(User.id, User.username, User.display_name, User.roles,
                                 User.active).where(User.tenant_id == ctx.tenant_id).output(
            load_json=True).run()
    return {str(r["id"]): r for r in rows}


def _back(lead_id: Any, note: str = "") -> Response[Any]:
    return Redirect(f"/crm/leads/{lead_id}" + (f"?note={note}" if note else ""), status_code=303)


# --- the list and the funnel --------------------------------------------------------------------

@get("/crm/leads", opt={"permission": "lead.read"}, **UI)
async def lead_list(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    q = request.query_params
    stage, source, owner = q.get("stage") or "", q.get("source") or "", q.get("owner") or ""
    try:
        page = max(1, int(q.get("page") or 1))
    except ValueError:
        page = 1
    users = await _users(ctx)
    async with tenant_scope(ctx, write=False):
        base = [Lead.tenant_id == ctx.tenant_id, Lead.deleted_at.is_null(),
                Lead.merged_into_id.is_null()]
        rule = object_clause(ctx, Lead)
        if rule is not None:
            base.append(rule)
        where = list(base)
        if stage:
            where.append(Lead.stage == stage)
        if source:
            where.append(Lead.source == source)
        if owner == "pool":
            where.append(Lead.owner_id.is_null())
        elif owner:
            ids = [uid for uid, u in users.items() if u["username"] == owner]
            where.append(Lead.owner_id.is_in([uuid.UUID(i) for i in ids] or [uuid.uuid4()]))
        total = await Lead.count().where(*where).run()
        ids = [r["id"] for r in await Lead.select(Lead.id).where(*where).order_by(
            Lead.created_at, ascending=False).order_by(Lead.id).limit(PER_PAGE).offset(
            (page - 1) * PER_PAGE).run()]
        from piccolo.query.functions.aggregate import Count

        counts = {r["stage"]: r["n"] for r in await Lead.select(
            Lead.stage, Count(alias="n")).where(*base).group_by(Lead.stage).run()}
    items = [await records.get(ctx, "lead", i) for i in ids]
    for item in items:
        item["owner_name"] = (users.get(item["owner_id"] or "") or {}).get("display_name", "")
        item["stage_label"] = leads.stage_label(ctx, item.get("stage") or "new")
    lang = page_lang(request)
    funnel = [{"key": s["key"], "label": s["en"] if lang == "en" else s["zh"],
               "count": counts.get(s["key"], 0)} for s in leads.stages(ctx)]
    peak = max([f["count"] for f in funnel] + [1])
    return render(request, "crm/leads.html", items=items, total=total, page=page,
                  pages=max(1, -(-total // PER_PAGE)), funnel=funnel, peak=peak,
                  stage=stage, source=source, owner=owner,
                  sources=[(c.value, c.label(lang)) for c in leads.SOURCES],
                  officers=sorted((u["username"], u["display_name"]) for u in users.values()
                                  if u["active"]),
                  may_create=allows(ctx, "lead.create"))


# --- one lead -----------------------------------------------------------------------------------

@get("/crm/leads/{lead_id:uuid}", opt={"permission": "lead.read"}, **UI)
async def lead_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                    lead_id: FromPath[uuid.UUID]) -> Response[Any]:
    lead = await records.get(ctx, "lead", lead_id)
    users = await _users(ctx)
    closed = bool(lead.get("merged_into_id") or lead.get("converted_customer_id"))
    matches = [] if closed else await dedupe.duplicates_of_lead(ctx, lead_id)
    lang = page_lang(request)
    source_labels = {c.value: c.label(lang) for c in leads.SOURCES}
    return render(
        request, "crm/lead.html", lead=lead, closed=closed, duplicates=matches,
        stage_label=leads.stage_label(ctx, lead.get("stage") or "new", lang),
        stages=[(s["key"], s["en"] if lang == "en" else s["zh"]) for s in leads.stages(ctx)
                if s["key"] != "converted"],
        source_label=source_labels.get(lead.get("source") or "", lead.get("source") or ""),
        owner=(users.get(lead["owner_id"] or "") or {}).get("display_name", ""),
        officers=sorted((u["username"], u["display_name"]) for u in users.values()
                        if u["active"] and "loan_officer" in (u["roles"] or [])),
        may={p: allows(ctx, f"lead.{p}") for p in ("update", "convert", "merge", "assign")},
        note=request.query_params.get("note") or "", error=request.query_params.get("error"))


async def _act(request: Request[Any, Any, Any], ctx: Context, lead_id: uuid.UUID,
               action: Any, note: str) -> Response[Any]:
    """Run an action; back to the lead page with a note, or with the refusal shown."""
    try:
        await action
    except XindaiError as exc:
        lead = await records.get(ctx, "lead", lead_id)
        lang = page_lang(request)
        return render(request, "crm/lead_error.html", status=exc.status, lead=lead,
                      message=_err(exc, lang))
    return _back(lead_id, note)


@post("/crm/leads/{lead_id:uuid}/stage", opt={"permission": "lead.update"}, **UI)
async def stage_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                       lead_id: FromPath[uuid.UUID]) -> Response[Any]:
    form = await request.form()
    return await _act(request, ctx, lead_id,
                      leads.set_stage(ctx, lead_id, str(form.get("stage") or "")), "stage")


@post("/crm/leads/{lead_id:uuid}/convert", opt={"permission": "lead.convert"}, **UI)
async def convert_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                         lead_id: FromPath[uuid.UUID]) -> Response[Any]:
    return await _act(request, ctx, lead_id, leads.convert(ctx, lead_id), "converted")


@post("/crm/leads/{lead_id:uuid}/merge", opt={"permission": "lead.merge"}, **UI)
async def merge_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                       lead_id: FromPath[uuid.UUID]) -> Response[Any]:
    form = await request.form()
    return await _act(request, ctx, lead_id,
                      dedupe.merge(ctx, lead_id, str(form.get("merge_id") or "")), "merged")


@post("/crm/leads/{lead_id:uuid}/release", opt={"permission": "lead.update"}, **UI)
async def release_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                         lead_id: FromPath[uuid.UUID]) -> Response[Any]:
    try:
        await pool.release(ctx, lead_id)
    except XindaiError as exc:
        return render(request, "crm/lead_error.html", status=exc.status,
                      lead=await records.get(ctx, "lead", lead_id),
                      message=_err(exc, page_lang(request)))
    return Redirect("/crm/pool", status_code=303)


@post("/crm/leads/{lead_id:uuid}/assign", opt={"permission": "lead.assign"}, **UI)
async def assign_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                        lead_id: FromPath[uuid.UUID]) -> Response[Any]:
    form = await request.form()
    try:
        await pool.assign(ctx, lead_id, str(form.get("username") or ""))
    except XindaiError as exc:
        return render(request, "crm/message.html", status=exc.status,
                      message=_err(exc, page_lang(request)), back="/crm/pool")
    back = str(form.get("back") or "")
    return Redirect(back if back == "/crm/pool" else f"/crm/leads/{lead_id}?note=assigned",
                    status_code=303)


# --- the pool -----------------------------------------------------------------------------------

@get("/crm/pool", opt={"permission": "lead.read"}, **UI)
async def pool_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    from core.kernel import kernel

    users = await _users(ctx)
    return render(request, "crm/pool.html", items=await pool.list_pool(ctx),
                  days=kernel().setting(ctx.tenant, "crm.pool_days"),
                  limit=kernel().setting(ctx.tenant, "crm.pool_claim_limit"),
                  may_claim=allows(ctx, "lead.claim"), may_assign=allows(ctx, "lead.assign"),
                  officers=sorted((u["username"], u["display_name"]) for u in users.values()
                                  if u["active"] and "loan_officer" in (u["roles"] or [])),
                  note=request.query_params.get("note") or "")


@post("/crm/pool/{lead_id:uuid}/claim", opt={"permission": "lead.claim"}, **UI)
async def claim_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                       lead_id: FromPath[uuid.UUID]) -> Response[Any]:
    try:
        await pool.claim(ctx, lead_id)
    except XindaiError as exc:
        return render(request, "crm/message.html", status=exc.status,
                      message=_err(exc, page_lang(request)), back="/crm/pool")
    return Redirect(f"/crm/leads/{lead_id}?note=claimed", status_code=303)


# --- blacklist ----------------------------------------------------------------------------------

async def _blacklist_page(request: Request[Any, Any, Any], ctx: Context, status: int = 200,
                          values: dict[str, str] | None = None,
                          errors: dict[str, str] | None = None, message: str = ""
                          ) -> Response[Any]:
    lang = page_lang(request)
    kinds = [(k, blacklist.LABELS[k][1 if lang == "en" else 0]) for k in blacklist.KINDS]
    return render(request, "crm/blacklist.html", status=status,
                  entries=await blacklist.list_entries(ctx), kinds=kinds,
                  kind_labels=dict(kinds), values=values or {}, errors=errors or {},
                  message=message)


@get("/crm/blacklist", opt={"permission": "blacklist.manage"}, **UI)
async def blacklist_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    return await _blacklist_page(request, ctx)


@post("/crm/blacklist", opt={"permission": "blacklist.manage"}, **UI)
async def blacklist_add(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    form = await request.form()
    values = {k: str(form.get(k) or "").strip()[:300] for k in ("kind", "value", "reason")}
    lang = page_lang(request)
    try:
        await blacklist.add(ctx, values["kind"], values["value"], values["reason"])
    except ValidationFailed as exc:
        errors = {("value" if e.field in blacklist.KINDS else e.field): e.message(lang)
                  for e in exc.errors}
        return await _blacklist_page(request, ctx, 422, values, errors)
    except XindaiError as exc:
        return await _blacklist_page(request, ctx, exc.status, values, message=_err(exc, lang))
    return Redirect("/crm/blacklist", status_code=303)


@post("/crm/blacklist/{entry_id:uuid}/remove", opt={"permission": "blacklist.manage"}, **UI)
async def blacklist_remove(request: Request[Any, Any, Any], ctx: CurrentContext,
                           entry_id: FromPath[uuid.UUID]) -> Response[Any]:
    await blacklist.remove(ctx, entry_id)
    return Redirect("/crm/blacklist", status_code=303)


# --- assignment rules ---------------------------------------------------------------------------

RULE_KEYS = ("name", "region_prefix", "product_interest", "source", "action", "officers",
             "org_unit")
BLANK_RULES = 2  # empty rows offered under the existing rules


def _rules_from_form(form: Any) -> list[dict[str, Any]]:
    """Rows `r-<n>-<key>`; a row without a name is dropped; order by the position field."""
    rows: dict[int, dict[str, Any]] = {}
    for key, value in form.multi_items():
        parts = key.split("-", 2)
        if len(parts) == 3 and parts[0] == "r" and parts[1].isdigit() and \
                parts[2] in (*RULE_KEYS, "position", "active"):
            rows.setdefault(int(parts[1]), {})[parts[2]] = str(value).strip()
    out = []
    for n, row in sorted(rows.items()):
        if not row.get("name"):
            continue
        try:
            position = int(row.get("position") or n)
        except ValueError:
            position = n
        out.append((position, n, {
            **{k: row.get(k) or None for k in RULE_KEYS if k != "officers"},
            "officers": [u.strip() for u in (row.get("officers") or "").replace("，", ",")
                         .split(",") if u.strip()],
            "active": row.get("active") == "on"}))
    return [r for _, _, r in sorted(out, key=lambda t: (t[0], t[1]))]


async def _rules_page(request: Request[Any, Any, Any], ctx: Context, status: int = 200,
                      rules: list[dict[str, Any]] | None = None, errors: list[str] | None = None
                      ) -> Response[Any]:
    lang = page_lang(request)
    current = rules if rules is not None else await assignment.list_rules(ctx)
    blank = {"name": "", "region_prefix": "", "product_interest": "", "source": "",
             "action": "round_robin", "officers": [], "org_unit": "", "active": True}
    _ = gettext_for(lang)
    return render(request, "crm/rules.html", status=status,
                  rules=[*current, *[dict(blank) for _i in range(BLANK_RULES)]],
                  errors=errors or [], may_edit=allows(ctx, "lead.configure"),
                  sources=[(c.value, c.label(lang)) for c in leads.SOURCES],
                  actions=[("officer", _("Named officer")), ("round_robin", _("Round robin")),
                           ("least_loaded", _("Fewest open leads"))])


@get("/crm/assignment-rules", opt={"permission": "lead.configure"}, **UI)
async def rules_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    return await _rules_page(request, ctx)


@post("/crm/assignment-rules", opt={"permission": "lead.configure"}, **UI)
async def rules_submit(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    rules = _rules_from_form(await request.form())
    try:
        await assignment.save_rules(ctx, rules)
    except ValidationFailed as exc:
        lang = page_lang(request)
        return await _rules_page(request, ctx, 422, rules, [e.message(lang) for e in exc.errors])
    return Redirect("/crm/assignment-rules", status_code=303)


# --- settings -----------------------------------------------------------------------------------

@get("/crm/settings", opt={"permission": "lead.configure"}, **UI)
async def settings_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    return _settings(request, ctx, None, {})


def _settings(request: Request[Any, Any, Any], ctx: Context, values: dict[str, Any] | None,
              errors: dict[str, str], status: int = 200) -> Response[Any]:
    from core.kernel import kernel

    k = kernel()
    current = values or {
        "webform_enabled": bool(k.setting(ctx.tenant, "crm.webform_enabled")),
        "pool_days": str(k.setting(ctx.tenant, "crm.pool_days")),
        "pool_claim_limit": str(k.setting(ctx.tenant, "crm.pool_claim_limit")),
        "stages": "\n".join(f"{s['key']} | {s['zh']} | {s['en']}" for s in leads.stages(ctx)),
    }
    return render(request, "crm/settings.html", status=status, values=current, errors=errors,
                  form_url=f"/f/{ctx.tenant.slug}/lead")


@post("/crm/settings", opt={"permission": "lead.configure"}, **UI)
async def settings_submit(request: Request[Any, Any, Any], ctx: CurrentContext
                          ) -> Response[Any]:
    from core.tenancy import get_tenant_by_id

    form = await request.form()
    lang = page_lang(request)
    values = {"webform_enabled": form.get("webform_enabled") == "on",
              "pool_days": str(form.get("pool_days") or "").strip(),
              "pool_claim_limit": str(form.get("pool_claim_limit") or "").strip(),
              "stages": str(form.get("stages") or "")[:4000]}
    errors: dict[str, str] = {}
    numbers: dict[str, int] = {}
    for key, zh, en in (("pool_days", "退回公海天数", "pool days"),
                        ("pool_claim_limit", "领取上限", "claim limit")):
        text = values[key]
        if not text.isdigit() or not 1 <= int(text) <= 3650:
            errors[key] = FieldError(key, "min_value", {"min": 1}, {"zh-CN": zh, "en": en}
                                     ).message(lang)
        else:
            numbers[key] = int(text)
    stage_list = []
    for line in values["stages"].splitlines():
        parts = [p.strip() for p in line.split("|")]
        if any(parts):
            stage_list.append(dict(zip(("key", "zh", "en"), parts + ["", "", ""], strict=False)))
    if not leads.valid_stages(stage_list):
        errors["stages"] = FieldError("stages", "lead_stages_setting").message(lang)
    if errors:
        return _settings(request, ctx, values, errors, 422)
    tenant = await get_tenant_by_id(ctx.tenant_id)
    new = {**tenant.settings, "crm.webform_enabled": values["webform_enabled"],
           "crm.pool_days": numbers["pool_days"],
           "crm.pool_claim_limit": numbers["pool_claim_limit"], "crm.lead_stages": stage_list}
    async with tenant_scope(ctx):
        await update_tenant(tenant, settings=new)
        await audit.append(ctx, "settings.update", "tenant", ctx.tenant_id, {
            k: [tenant.settings.get(k), new[k]] for k in new
            if k.startswith("crm.") and tenant.settings.get(k) != new[k]})
    return Redirect("/crm/settings?saved=1", status_code=303)


LEAD_PAGES = [lead_list, lead_page, stage_submit, convert_submit, merge_submit, release_submit,
              assign_submit, pool_page, claim_submit, blacklist_page, blacklist_add,
              blacklist_remove, rules_page, rules_submit, settings_page, settings_submit]
