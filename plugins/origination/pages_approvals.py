"""The approval inbox (审批待办) of the web shell (mounted by `register_pages`):

    GET  /approvals                 my open approvals: counts (pending, due soon, overdue),
                                    filters, bulk approve/reject; `?tab=done`: done by me
    POST /approvals/bulk            one comment for the ticked items, each acted on (and
                                    checked) on its own; a result per item
    GET  /approvals/{id}            one approval: facts, tasks, diagram, timeline, and the
                                    decision form when it is the user's turn
    POST /approvals/{id}/act        approve, reject, return, transfer, add, resubmit

Any signed-in user has an inbox: the right to act comes from being assigned (by name or
role), and the engine decides each action. The pages compute nothing themselves.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect
from markupsafe import Markup

from core.admin import list_roles
from core.errors import XindaiError
from core.identity import user_names
from core.regions import region_label
from core.tenancy import Context
from core.web.context import CurrentContext
from core.web.ui.i18n import N_, gettext_for
from core.web.ui.render import money, render
from plugins.origination import approvals
from plugins.origination.diagram import render_svg

UI = {"include_in_schema": False}
SIGNED_IN = {"authenticated": True}

STATUS = {"pending": N_("Pending"), "in_progress": N_("In progress"),
          "approved": N_("Approved"), "rejected": N_("Rejected"),
          "returned": N_("Returned for more information"), "transferred": N_("Transferred"),
          "resubmitted": N_("Resubmitted"), "closed": N_("Closed"), "skipped": N_("Skipped")}
KINDS = {"task": N_("To approve"), "escalation": N_("Escalated to you"),
         "resubmit": N_("Returned to you")}
ACTION_DONE = {"approve": N_("Approved."), "reject": N_("Rejected."),
               "return": N_("Returned to the submitter."), "transfer": N_("Transferred."),
               "add": N_("Approver added."), "resubmit": N_("Resubmitted."),
               "reassign": N_("Task reassigned.")}
FILTER_KEYS = ("subject", "amount_min", "amount_max", "product", "from", "to", "overdue")


# The menu badge is fetched on every page of every signed-in user: its counts are kept per
# user for a short while (per process) rather than computing the whole inbox each time.
# The inbox page refreshes them and the user's own decisions drop them.
BADGE_SECONDS = 30.0
_badges: dict[tuple[str, str], tuple[float, dict[str, int]]] = {}


def _badge_key(ctx: Context) -> tuple[str, str]:
    return str(ctx.tenant_id), ctx.username or ""


def _remember_counts(ctx: Context, counts: dict[str, int] | None) -> None:
    if counts is None:
        _badges.pop(_badge_key(ctx), None)
    else:
        _badges[_badge_key(ctx)] = (monotonic() + BADGE_SECONDS, counts)


def _yuan(fen: int | None) -> str:
    return "" if fen is None else money(Decimal(fen) / 100)


def _fen(raw: str) -> int | None:
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        raise ValueError(raw) from None
    if not value.is_finite() or value < 0:
        raise ValueError(raw)
    return int(value * 100)


def parse_filter(query: Any, ctx: Context) -> tuple[dict[str, str], approvals.InboxFilter,
                                                     dict[str, str]]:
    """The inbox's filters from the query string; a bad value is named, not ignored."""
    _ = gettext_for(ctx.locale)
    values = {k: str(query.get(k) or "").strip()[:40] for k in FILTER_KEYS}
    flt = approvals.InboxFilter(subject=values["subject"], product=values["product"],
                                overdue=values["overdue"] in ("1", "on", "true"))
    errors: dict[str, str] = {}
    for key in ("amount_min", "amount_max"):
        if values[key]:
            try:
                setattr(flt, key, _fen(values[key]))
            except ValueError:
                errors[key] = _("Enter an amount in yuan, e.g. 100000")
    tz = ZoneInfo(ctx.tenant.timezone)
    for key, attr, shift in (("from", "submitted_from", 0), ("to", "submitted_to", 1)):
        if values[key]:
            try:
                day = date.fromisoformat(values[key])
            except ValueError:
                errors[key] = _("Enter a date as YYYY-MM-DD")
                continue
            setattr(flt, attr, datetime.combine(day + timedelta(days=shift), time(), tz))
    return values, flt, errors


def _rows(rows: list[dict[str, Any]], lang: str, now: datetime,
          names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    _ = gettext_for(lang)
    key = "en" if lang == "en" else "zh-CN"
    names = names or {}
    return [{**r, "title_text": (r["title"] or {}).get(key) or r["subject_id"],
             "submitted_by_name": names.get(r.get("submitted_by") or "",
                                            r.get("submitted_by") or ""),
             "step_text": (r["step_name"] or {}).get(key) or r["step"] or "",
             "subject_text": approvals.subject_label(r["subject"], lang),
             "amount_text": _yuan(r["amount"]), "kind_text": _(KINDS.get(r["kind"], r["kind"])),
             "status_text": _(STATUS.get(r["status"], r["status"])),
             "overdue": bool(r["due_at"] and r["due_at"] <= now),
             "due_soon": bool(r["due_at"] and now < r["due_at"] <= now + approvals.DUE_SOON)}
            for r in rows]


@get("/approvals", opt=SIGNED_IN, **UI)
async def inbox_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    lang = ctx.locale
    tab = "done" if request.query_params.get("tab") == "done" else "pending"
    values, flt, errors = parse_filter(request.query_params, ctx)
    now = datetime.now(ZoneInfo("UTC"))
    box = await approvals.inbox(ctx, flt if not errors else None, now)
    _remember_counts(ctx, box["counts"])
    done_rows = await approvals.done_by(ctx) if tab == "done" else []
    names = await user_names(ctx, usernames=[r.get("submitted_by") or ""
                                             for r in box["items"] + done_rows])
    done = _rows(done_rows, lang, now, names)
    _ = gettext_for(lang)
    done_msg = ACTION_DONE.get(str(request.query_params.get("done") or ""))
    return render(request, "origination/approvals/inbox.html", tab=tab, values=values,
                  errors=errors, counts=box["counts"], items=_rows(box["items"], lang, now, names),
                  done=done, products=box["products"],
                  subjects=[(s, approvals.subject_label(s, lang)) for s in box["subjects"]],
                  notice=_(done_msg) if done_msg else "")


@get("/approvals/badge", opt=SIGNED_IN, **UI)
async def badge_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    """The menu entry's count (htmx fragment): pending approvals, red when one is overdue."""
    cached = _badges.get(_badge_key(ctx))
    if cached and cached[0] > monotonic():
        counts = cached[1]
    else:
        counts = (await approvals.inbox(ctx))["counts"]
        _remember_counts(ctx, counts)
    return render(request, "origination/approvals/_badge.html", counts=counts)


@post("/approvals/bulk", opt=SIGNED_IN, status_code=200, **UI)
async def bulk_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    form = await request.form()
    ids = [str(i) for i in form.getall("ids")][:200] if hasattr(form, "getall") else []
    action = str(form.get("action") or "")
    comment = str(form.get("comment") or "")
    _ = gettext_for(ctx.locale)
    if not ids:
        results: list[dict[str, Any]] = []
        error = _("Tick at least one approval.")
    else:
        error = ""
        _remember_counts(ctx, None)
        try:
            results = await approvals.bulk(ctx, ids, action, comment)
        except XindaiError as exc:
            results, error = [], exc.message(ctx.locale)
    key = "en" if ctx.locale == "en" else "zh-CN"
    for r in results:
        r["title_text"] = (r.get("title") or {}).get(key) or r["id"]
        r["status_text"] = _(STATUS.get(r.get("status") or "", r.get("status") or ""))
    ok = sum(1 for r in results if r["ok"])
    fragment = request.headers.get("hx-request") == "true"
    return render(request, "origination/approvals/_bulk_results.html" if fragment
                  else "origination/approvals/bulk.html", results=results, ok=ok,
                  failed=len(results) - ok, error=error, action=action,
                  status=422 if error else 200)


def _facts(facts: dict[str, Any], labels: dict[str, dict[str, str]], lang: str
           ) -> list[tuple[str, Any]]:
    key = "en" if lang == "en" else "zh-CN"
    out = []
    for k, v in facts.items():
        label = (labels.get(k) or {}).get(key, k)
        if k == "amount":
            v = money(v)
        elif k == "region" and v:
            v = region_label(str(v))
        out.append((label, v))
    return out


async def _detail(request: Request[Any, Any, Any], ctx: Context, instance_id: str,
                  error: str = "", values: dict[str, str] | None = None,
                  status: int = 200) -> Response[Any]:
    d = await approvals.detail(ctx, instance_id)
    lang = ctx.locale
    inst, row = d["instance"], d["row"]
    labels = await approvals.subject_fields(ctx, row["subject"])
    key = "en" if lang == "en" else "zh-CN"
    _ = gettext_for(lang)
    step = inst.current_step()
    tasks = inst.pending()
    submitter = row.get("submitted_by") or ""
    people = await user_names(ctx, usernames=[t.assignee.user or "" for t in tasks]
                              + [t.transferred_from or "" for t in tasks] + [submitter])
    roles = {r["name"]: r["label_en"] if lang == "en" else r["label_zh"]
             for r in await list_roles(ctx)}
    pending = [{"id": t.id, "who": _("Role: %(name)s", name=roles.get(str(t.assignee.role),
                                                                   str(t.assignee.role)))
                if t.assignee.user is None else people.get(t.assignee.user, t.assignee.user),
                "added": bool(t.added_by),
                "transferred_from": people.get(t.transferred_from or "", t.transferred_from)}
               for t in tasks]
    return render(request, "origination/approvals/detail.html", status=status, row=row,
                  submitted_by=people.get(submitter, submitter),
                  inst=inst, title=(row["title"] or {}).get(key) or row["subject_id"],
                  subject_text=approvals.subject_label(row["subject"], lang),
                  status_text=_(STATUS.get(inst.status, inst.status)),
                  step_text=step.name(lang) if step else "", mode=step.mode if step else "",
                  pending=pending, facts=_facts(dict(inst.facts), labels, lang),
                  may_act=bool(d["eligible"]), can_resubmit=d["can_resubmit"],
                  may_reassign=ctx.access.can("approval.reassign") and bool(pending),
                  items=d["timeline"], error=error, values=values or {},
                  svg=Markup(render_svg(d["version"].definition, lang)),
                  workflow=d["version"], notice=_(ACTION_DONE[request.query_params["done"]])
                  if request.query_params.get("done") in ACTION_DONE else "")


@get("/approvals/{instance_id:str}", opt=SIGNED_IN, **UI)
async def detail_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                      instance_id: FromPath[str]) -> Response[Any]:
    return await _detail(request, ctx, instance_id)


@post("/approvals/{instance_id:str}/act", opt=SIGNED_IN, status_code=200, **UI)
async def act_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                   instance_id: FromPath[str]) -> Response[Any]:
    form = await request.form()
    values = {k: str(form.get(k) or "").strip()[:2000] for k in
              ("action", "comment", "version", "to_user", "task")}
    version = int(values["version"]) if values["version"].isdigit() else None
    extra = {}
    if values["action"] in ("transfer", "reassign"):
        extra["to_user"] = values["to_user"]
    elif values["action"] == "add":
        extra["user"] = values["to_user"]
    if values["action"] == "reassign":
        extra["task"] = values["task"]
    _remember_counts(ctx, None)
    try:
        await approvals.act(ctx, instance_id, values["action"], values["comment"],
                            expected_version=version, **extra)
    except XindaiError as exc:
        if exc.status == 404:
            raise
        message = exc.message(ctx.locale)
        errors = getattr(exc, "errors", None)
        if errors:
            message = "；".join(e.message(ctx.locale) for e in errors)
        return await _detail(request, ctx, instance_id, message, values, exc.status)
    if values["action"] in ("approve", "reject", "return", "resubmit"):
        return Redirect(f"/approvals?done={values['action']}", status_code=303)
    return Redirect(f"/approvals/{instance_id}?done={values['action']}", status_code=303)


APPROVAL_PAGES = [inbox_page, badge_page, bulk_page, detail_page, act_page]
