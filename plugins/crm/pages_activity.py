"""Screens and API of follow-ups and tasks (services in plugins.crm.activity).

Web shell (register_pages):
    POST /crm/{entity}/{id}/followups   log a follow-up from the record's page (htmx: the
                                        form again with errors, or a redirect to the page)
    POST /crm/{entity}/{id}/tasks       add a task to the record
    GET  /tasks                         我的任务: counts (overdue, today, later, done), list
    GET  /tasks/{id}                    one task, with done / cancel / reopen
    POST /tasks/{id}/status             set its status

API (register_routes, under /api/v1):
    GET  /followups?entity=customer&record_id=…     POST /followups
    GET  /tasks?status=open|done|cancelled          POST /tasks
    GET  /tasks/{id}                                PATCH /tasks/{id}

`entity` is one of FOLLOWUP_ENTITIES (customers, and leads where that entity exists); the
record must be visible to the user (object rules), exactly as on its own page.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect

from core.errors import NotFound, ValidationFailed
from core.tenancy import Context
from core.web.context import CurrentContext
from core.web.ui import forms
from core.web.ui.i18n import N_
from core.web.ui.render import render
from plugins.crm import activity

FOLLOWUP_ENTITIES = ("customer", "lead")
HISTORY_ACTIONS = {"create": N_("Record created"), "update": N_("Record changed"),
                   "delete": N_("Record deleted")}
UI = {"include_in_schema": False}
TAG = "activity"


def _entity(name: str) -> str:
    if name not in FOLLOWUP_ENTITIES:
        raise NotFound("unknown_entity", entity=name)
    return name


def followup_widgets(ctx: Context, values: dict[str, Any] | None = None,
                     errors: dict[str, str] | None = None) -> list[forms.Widget]:
    values, errors = values or {}, errors or {}
    out = []
    for f in activity.FOLLOWUP_FORM.fields:
        if f.key == "create_task":
            continue  # a checkbox of its own, under the next step
        out.append(forms.widget(f, ctx.locale, values.get(f.key, ""), errors.get(f.key, "")))
    return out


def task_widgets(ctx: Context, values: dict[str, Any] | None = None,
                 errors: dict[str, str] | None = None) -> list[forms.Widget]:
    values, errors = values or {}, errors or {}
    return [forms.widget(f, ctx.locale, values.get(f.key, ""), errors.get(f.key, ""))
            for f in activity.TASK_FORM.fields if f.key not in ("status", "assignee")]


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def _back(entity: str, record_id: str, anchor: str) -> str:
    return f"/e/{entity}/{record_id}#{anchor}"


def _done(request: Request[Any, Any, Any], target: str) -> Response[Any]:
    if _is_htmx(request):  # htmx follows HX-Redirect with a full page load
        return Response(content="", status_code=200, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


@post("/crm/{entity:str}/{record_id:str}/followups", opt={"permission": "followup.create"},
      status_code=303, name="crm_log_followup", **UI)
async def log_followup_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                            entity: FromPath[str], record_id: FromPath[str]) -> Response[Any]:
    entity = _entity(entity)
    form = await request.form()
    fields = list(activity.FOLLOWUP_FORM.fields)
    raw = forms.read_form(fields, form, ctx.tenant.timezone)
    raw["create_task"] = "true" if form.get("create_task") in ("1", "true", "on") else ""
    try:
        logged = await activity.log_followup(ctx, entity, record_id, forms.new_record(raw))
    except ValidationFailed as exc:
        context = {"widgets": followup_widgets(ctx, raw, activity.field_errors(exc, ctx.locale)),
                   "action": request.url.path, "create_task": bool(raw["create_task"]),
                   "general": exc.message(ctx.locale), "back": _back(entity, record_id,
                                                                     "panel-followups")}
        template = "crm/_followup_form.html" if _is_htmx(request) else "crm/followup_page.html"
        return render(request, template, status=422, form=context)
    # the new id in the query makes it a new URL, so the browser loads the page again
    # (a change of the #fragment alone would only scroll)
    return _done(request, f"/e/{entity}/{record_id}?followup={logged['id']}#panel-timeline")


@post("/crm/{entity:str}/{record_id:str}/tasks", opt={"permission": "task.manage"},
      status_code=303, name="crm_add_task", **UI)
async def add_task_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                        entity: FromPath[str], record_id: FromPath[str]) -> Response[Any]:
    entity = _entity(entity)
    form = await request.form()
    raw = forms.read_form(list(activity.TASK_FORM.fields), form, ctx.tenant.timezone)
    raw.pop("status", None)
    try:
        task = await activity.create_task(ctx, forms.new_record(raw), entity, record_id)
    except ValidationFailed as exc:
        context = {"widgets": task_widgets(ctx, raw, activity.field_errors(exc, ctx.locale)),
                   "action": request.url.path, "general": exc.message(ctx.locale),
                   "back": _back(entity, record_id, "panel-tasks")}
        template = "crm/_task_form.html" if _is_htmx(request) else "crm/task_form_page.html"
        return render(request, template, status=422, form=context)
    return _done(request, f"/e/{entity}/{record_id}?task={task['id']}#panel-tasks")


VIEWS = ("open", "overdue", "today", "upcoming", "done")


@get("/tasks", opt={"permission": "task.read"}, name="crm_my_tasks", **UI)
async def my_tasks(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    view = request.query_params.get("view") or "open"
    view = view if view in VIEWS else "open"
    items = await activity.list_tasks(ctx, status="done" if view == "done" else "open")
    if view in ("overdue", "today"):
        items = [t for t in items if t["due_state"] == view]
    elif view == "upcoming":
        items = [t for t in items if not t["due_state"]]
    return render(request, "crm/tasks.html", tasks=items, view=view,
                  counts=await activity.task_counts(ctx),
                  today=ctx.tenant.business_date.isoformat())


@get("/tasks/{task_id:str}", opt={"permission": "task.read"}, name="crm_task", **UI)
async def task_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                    task_id: FromPath[str]) -> Response[Any]:
    task = await activity.get_task(ctx, task_id)
    return render(request, "crm/task.html", task=task,
                  can_manage=ctx.access.can("task.manage"),
                  record_url=f"/e/{task['entity']}/{task['record_id']}" if task["entity"] else "")


@post("/tasks/{task_id:str}/status", opt={"permission": "task.manage"}, status_code=303,
      name="crm_task_status", **UI)
async def task_status(request: Request[Any, Any, Any], ctx: CurrentContext,
                      task_id: FromPath[str]) -> Response[Any]:
    form = await request.form()
    version = str(form.get("version") or "")
    await activity.update_task(ctx, task_id, {"status": str(form.get("status") or "")},
                               int(version) if version.isdigit() else None)
    return Redirect(f"/tasks/{task_id}", status_code=303)


ACTIVITY_PAGES = [log_followup_page, add_task_page, my_tasks, task_page, task_status]


# --- JSON API ----------------------------------------------------------------------------

@get("/followups", summary="Follow-ups of a record, latest first", tags=[TAG],
     opt={"permission": "followup.read"})
async def api_followups(ctx: CurrentContext, entity: FromQuery[str],
                        record_id: FromQuery[UUID]) -> list[dict[str, Any]]:
    return await activity.list_followups(ctx, _entity(entity), record_id)


@post("/followups", summary="Log a follow-up (call, visit, WeChat, note) on a record",
      tags=[TAG], opt={"permission": "followup.create"}, status_code=201)
async def api_log_followup(ctx: CurrentContext, data: JSONBody[dict[str, Any]]
                           ) -> dict[str, Any]:
    """`{"entity": "customer", "record_id": …, "kind": "call", "occurred_at": ISO 8601
    (default now), "outcome", "content", "next_step", "next_follow_up_on": "YYYY-MM-DD",
    "create_task": true}`; emits `followup.logged`."""
    body = dict(data)
    entity = _entity(str(body.pop("entity", "")))
    return await activity.log_followup(ctx, entity, body.pop("record_id", None), body)


@get("/tasks", summary="My tasks by due date", tags=[TAG], opt={"permission": "task.read"})
async def api_tasks(ctx: CurrentContext, status: FromQuery[str] = "open"
                    ) -> dict[str, Any]:
    return {"items": await activity.list_tasks(ctx, status=status or None),
            "counts": await activity.task_counts(ctx)}


@post("/tasks", summary="Create a task", tags=[TAG], opt={"permission": "task.manage"},
      status_code=201)
async def api_create_task(ctx: CurrentContext, data: JSONBody[dict[str, Any]]
                          ) -> dict[str, Any]:
    """`{"title", "due_on", "assignee": user id or username (default me), "note",
    "entity", "record_id"}` (entity and record optional)."""
    body = dict(data)
    entity = body.pop("entity", None)
    record_id = body.pop("record_id", None)
    return await activity.create_task(ctx, body, _entity(entity) if entity else None,
                                      record_id)


@get("/tasks/{task_id:uuid}", summary="One task", tags=[TAG], opt={"permission": "task.read"})
async def api_task(ctx: CurrentContext, task_id: FromPath[UUID]) -> dict[str, Any]:
    return await activity.get_task(ctx, task_id)


@patch("/tasks/{task_id:uuid}", summary="Change a task (status done / cancelled / open)",
       tags=[TAG], opt={"permission": "task.manage"})
async def api_update_task(ctx: CurrentContext, task_id: FromPath[UUID],
                          data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return await activity.update_task(ctx, task_id, data)


ACTIVITY_ROUTES = [api_followups, api_log_followup, api_tasks, api_create_task, api_task,
                   api_update_task]
