"""The approval workflow editor (审批流程), for business staff (mounted by `register_pages`):

    GET  /workflows                  the workflows, their subjects and versions (workflow.read)
    GET  /workflows/{key}            one workflow: its versions and the diagram of each
    GET  /workflows/new              a new workflow's form (workflow.manage)
    POST /workflows/new              save it as version 1 (or, with `op`, add or remove a
                                     step, a route or a condition: nothing saved)
    GET  /workflows/{key}/edit       the active version in the same form
    POST /workflows/{key}/edit       save as the next version; in-flight approvals keep theirs
    POST /workflows/editor/preview   htmx: the diagram of the unsaved form, or its problems

The form covers steps (name, mode, roles or named users, deadline, reminder, escalation)
and routes with conditions (field, operator, value; all must hold). Whether a definition
is valid is the engine's to say (`definition.parse_definition`): each problem is shown
next to the step it names. A definition the form cannot show (nested any/not conditions)
is edited as YAML in the same page.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from litestar import Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath
from litestar.response import Redirect
from markupsafe import Markup

from core.access import allows
from core.admin import list_roles
from core.errors import NotFound
from core.tenancy import Context
from core.web.context import CurrentContext
from core.web.ui.i18n import N_, gettext_for
from core.web.ui.render import render
from plugins.origination import approvals
from plugins.origination.conditions import OPERATORS
from plugins.origination.diagram import render_svg
from plugins.origination.errors import DefinitionError, Problem

UI = {"include_in_schema": False}
READ = {"permission": "workflow.read"}
MANAGE = {"permission": "workflow.manage"}
RESERVED = {"new", "editor"}
MAX_STEPS, MAX_ROUTES, MAX_CONDS = 20, 10, 10
LISTS = ("in", "not_in", "between")

MODES = {"any": N_("Any of (或签): one approval is enough"),
         "all": N_("Countersign (会签): everyone must approve")}
OPS = {"eq": N_("equals"), "ne": N_("is not"), "lt": N_("is less than"),
       "le": N_("is at most"), "gt": N_("is more than"), "ge": N_("is at least"),
       "between": N_("is between (low, high)"), "in": N_("is one of (a, b, …)"),
       "not_in": N_("is none of (a, b, …)"), "exists": N_("is filled in")}
ENDS = {"approved": N_("Approved (end)"), "rejected": N_("Rejected (end)")}

_STEP = re.compile(r"step-(\d{1,2})-(id|name_zh|name_en|mode|users|deadline_hours|"
                   r"remind_before_hours|escalate)")
_ROUTE = re.compile(r"(start|step-\d{1,2})-route-(\d{1,2})-to")
_COND = re.compile(r"(start|step-\d{1,2}|sel)(?:-route-(\d{1,2}))?-cond-(\d{1,2})-"
                   r"(field|op|value)")


# --- definition data <-> the form's values -----------------------------------------------

def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _conds(when: Any) -> list[dict[str, str]] | None:
    """A condition as rows (all must hold), or None when the form cannot show it."""
    if when is None:
        return []
    items = when["all"] if isinstance(when, dict) and "all" in when else [when]
    rows = []
    for leaf in items:
        if not isinstance(leaf, dict) or "field" not in leaf:
            return None
        rows.append({"field": str(leaf["field"]), "op": str(leaf.get("op", "")),
                     "value": _text(leaf.get("value"))})
    return rows


def _routes(routes: Any) -> list[dict[str, Any]] | None:
    if isinstance(routes, str):
        routes = [{"to": routes}]
    out = []
    for r in routes or []:
        conds = _conds(r.get("when"))
        if conds is None:
            return None
        out.append({"to": str(r.get("to", "")), "conds": conds})
    return out


def values_of(data: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """The form's values for workflow data, and whether the form can show all of it."""
    if data is None:
        return {"key": "", "name_zh": "", "name_en": "", "subject": "application",
                "priority": "100", "distinct": True, "selector": [], "start": [],
                "steps": [_new_step(1)]}, True
    name = data.get("name") or {}
    name = {"zh-CN": name, "en": name} if isinstance(name, str) else name
    selector, start = _conds(data.get("when")), _routes(data.get("start"))
    steps, ok = [], selector is not None and start is not None
    for s in data.get("steps") or []:
        routes = _routes(s.get("next", "approved"))
        ok = ok and routes is not None
        sname = s.get("name") or {}
        sname = {"zh-CN": sname, "en": sname} if isinstance(sname, str) else sname
        who = s.get("assignees") or {}
        esc = s.get("escalate_to") or {}
        steps.append({"id": s.get("id", ""), "name_zh": sname.get("zh-CN", ""),
                      "name_en": sname.get("en", ""), "mode": s.get("mode", "any"),
                      "roles": list(who.get("roles") or []),
                      "users": ", ".join(who.get("users") or []),
                      "deadline_hours": _text(s.get("deadline_hours")),
                      "remind_before_hours": _text(s.get("remind_before_hours")),
                      "escalate": (f"role:{esc['role']}" if esc.get("role") else
                                   f"user:{esc['user']}" if esc.get("user") else ""),
                      "routes": routes or []})
    first = steps[0]["id"] if steps else ""
    if start and len(start) == 1 and not start[0]["conds"] and start[0]["to"] == first:
        start = []  # the plain start: the first step
    return {"key": data.get("id", ""), "name_zh": name.get("zh-CN", ""),
            "name_en": name.get("en", ""), "subject": data.get("subject", "application"),
            "priority": _text(data.get("priority", 100)),
            "distinct": bool(data.get("distinct_approvers", True)),
            "selector": selector or [], "start": start or [], "steps": steps}, ok


def _new_step(n: int) -> dict[str, Any]:
    return {"id": f"step{n}", "name_zh": "", "name_en": "", "mode": "any", "roles": [],
            "users": "", "deadline_hours": "", "remind_before_hours": "", "escalate": "",
            "routes": [{"to": "approved", "conds": []}]}


def values_from(form: FormMultiDict) -> dict[str, Any]:
    """The form's values as sent (trimmed, bounded)."""
    def val(key: str, size: int = 200) -> str:
        return str(form.get(key) or "").strip()[:size]

    values: dict[str, Any] = {k: val(k) for k in ("key", "name_zh", "name_en", "subject",
                                                  "priority")}
    values["distinct"] = form.get("distinct") in ("on", "1", "true")
    steps: dict[int, dict[str, Any]] = {}
    routes: dict[str, dict[int, dict[str, Any]]] = {}
    conds: dict[tuple[str, int | None], dict[int, dict[str, str]]] = {}
    for key in form:
        if m := _STEP.fullmatch(key):
            i = int(m.group(1))
            if i < MAX_STEPS:
                steps.setdefault(i, _blank_step())[m.group(2)] = val(key)
        elif m := _ROUTE.fullmatch(key):
            if int(m.group(2)) < MAX_ROUTES:
                routes.setdefault(m.group(1), {})[int(m.group(2))] = {"to": val(key),
                                                                      "conds": []}
        elif m := _COND.fullmatch(key):
            owner, j, k = m.group(1), m.group(2), int(m.group(3))
            if k < MAX_CONDS:
                row = conds.setdefault((owner, None if j is None else int(j)), {})
                row.setdefault(k, {"field": "", "op": "", "value": ""})[m.group(4)] = val(key)
    for i, step in steps.items():
        step["roles"] = [str(r)[:63] for r in form.getall(f"step-{i}-roles")][:20] \
            if hasattr(form, "getall") else []
    for (owner, j), rows in conds.items():
        if owner == "sel":
            continue
        if j is not None and j in routes.get(owner, {}):
            routes[owner][j]["conds"] = [rows[k] for k in sorted(rows)]
    values["selector"] = [r for _, r in sorted(conds.get(("sel", None), {}).items())]
    values["start"] = [routes.get("start", {})[j] for j in sorted(routes.get("start", {}))]
    values["steps"] = []
    for i in sorted(steps):
        own = routes.get(f"step-{i}", {})
        values["steps"].append({**steps[i], "routes": [own[j] for j in sorted(own)]})
    return values


def _blank_step() -> dict[str, Any]:
    return {k: "" for k in ("id", "name_zh", "name_en", "mode", "users", "deadline_hours",
                            "remind_before_hours", "escalate")}


def _cond_data(rows: list[dict[str, str]]) -> dict[str, Any] | None:
    leaves: list[dict[str, Any]] = []
    for r in rows:
        if not r.get("field"):
            continue
        leaf: dict[str, Any] = {"field": r["field"], "op": r.get("op") or "eq"}
        if leaf["op"] in LISTS:
            leaf["value"] = [v.strip() for v in re.split(r"[,，、]", r.get("value", ""))
                             if v.strip()]
        elif leaf["op"] != "exists":
            leaf["value"] = r.get("value", "")
        leaves.append(leaf)
    if not leaves:
        return None
    return leaves[0] if len(leaves) == 1 else {"all": leaves}


def _routes_data(routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in routes:
        item: dict[str, Any] = {"to": r.get("to", "")}
        when = _cond_data(r.get("conds") or [])
        if when is not None:
            item = {"when": when, **item}
        out.append(item)
    return out


def _int_or_text(raw: str) -> Any:
    return int(raw) if raw.isdigit() and len(raw) < 7 else raw


def data_from(values: dict[str, Any]) -> dict[str, Any]:
    """The workflow data the form describes (the engine judges it)."""
    steps = []
    for s in values["steps"]:
        users = [u.strip() for u in re.split(r"[,，、\s]+", s.get("users", "")) if u.strip()]
        item: dict[str, Any] = {
            "id": s["id"], "name": {"zh-CN": s["name_zh"] or s["id"],
                                   "en": s["name_en"] or s["name_zh"] or s["id"]},
            "mode": s["mode"] or "any",
            "assignees": {k: v for k, v in (("roles", s.get("roles") or []), ("users", users))
                          if v},
            "next": _routes_data(s["routes"]) or "approved"}
        for key in ("deadline_hours", "remind_before_hours"):
            if s.get(key):
                item[key] = _int_or_text(s[key])
        kind, _, who = (s.get("escalate") or "").partition(":")
        if kind in ("role", "user") and who:
            item["escalate_to"] = {kind: who}
        steps.append(item)
    data: dict[str, Any] = {
        "id": values["key"], "version": 1, "subject": values["subject"] or "application",
        "name": {"zh-CN": values["name_zh"] or values["key"],
                 "en": values["name_en"] or values["name_zh"] or values["key"]},
        "priority": _int_or_text(values["priority"] or "100"),
        "distinct_approvers": values["distinct"], "steps": steps}
    if values["start"]:
        data["start"] = _routes_data(values["start"])
    when = _cond_data(values["selector"])
    if when is not None:
        data["when"] = when
    return data


def apply_op(values: dict[str, Any], op: str) -> None:
    """Add or remove a step, a route or a condition; anything else only re-renders."""
    kind, *args = op.split(":")
    nums = [int(a) for a in args if a.isdigit()]
    owner = args[0] if args else ""

    def routes_of(name: str) -> list[dict[str, Any]] | None:
        if name == "start":
            return values["start"]
        m = re.fullmatch(r"step-(\d+)", name)
        if m and int(m.group(1)) < len(values["steps"]):
            return values["steps"][int(m.group(1))]["routes"]
        return None

    steps = values["steps"]
    if kind == "add_step" and len(steps) < MAX_STEPS:
        taken = {s["id"] for s in steps}
        n = next(n for n in range(len(steps) + 1, 100) if f"step{n}" not in taken)
        steps.append(_new_step(n))
    elif kind == "remove_step" and nums and nums[0] < len(steps) and len(steps) > 1:
        del steps[nums[0]]
    elif kind == "add_sel" and len(values["selector"]) < MAX_CONDS:
        values["selector"].append({"field": "", "op": "ge", "value": ""})
    elif kind == "remove_sel" and nums and nums[0] < len(values["selector"]):
        del values["selector"][nums[0]]
    elif kind in ("add_route", "remove_route", "add_cond", "remove_cond"):
        routes = routes_of(owner)
        rest = [int(a) for a in args[1:] if a.isdigit()]
        if routes is None:
            return
        if kind == "add_route" and len(routes) < MAX_ROUTES:
            routes.insert(max(len(routes) - 1, 0),
                          {"to": "approved", "conds": [{"field": "amount", "op": "ge",
                                                        "value": ""}]})
        elif kind == "remove_route" and rest and rest[0] < len(routes):
            del routes[rest[0]]
        elif kind == "add_cond" and rest and rest[0] < len(routes) and len(
                routes[rest[0]]["conds"]) < MAX_CONDS:
            routes[rest[0]]["conds"].append({"field": "", "op": "eq", "value": ""})
        elif kind == "remove_cond" and len(rest) == 2 and rest[0] < len(routes) and \
                rest[1] < len(routes[rest[0]]["conds"]):
            del routes[rest[0]]["conds"][rest[1]]


# --- problems next to their step --------------------------------------------------------

def place(problems: tuple[Problem, ...] | list[Problem], values: dict[str, Any], lang: str
          ) -> dict[str, list[str]]:
    """Each problem under the part of the form it names: `step-<i>`, `start`, `selector`,
    or `form` (the workflow as a whole)."""
    ids = [s.get("id") for s in values["steps"]]
    out: dict[str, list[str]] = {}
    for p in problems:
        where = "form"
        m = re.match(r"steps\[(\d+)\]", p.field or "")
        if p.step and p.step in ids:
            where = f"step-{ids.index(p.step)}"
        elif m:
            where = f"step-{m.group(1)}"
        elif (p.field or "").startswith("start"):
            where = "start"
        elif (p.field or "").startswith("when"):
            where = "selector"
        out.setdefault(where, []).append(p.message(lang))
    return out


# --- pages ----------------------------------------------------------------------------------

async def _options(ctx: Context, subject: str) -> dict[str, Any]:
    _ = gettext_for(ctx.locale)
    key = "en" if ctx.locale == "en" else "zh-CN"
    fields = await approvals.subject_fields(ctx, subject or "application")
    roles = [(r["name"], r["label_en"] if ctx.locale == "en" else r["label_zh"])
             for r in await list_roles(ctx)]
    subjects = sorted({subject or "application", *approvals.SUBJECTS})
    return {"fields": [(k, f"{v[key]} ({k})") for k, v in fields.items()],
            "ops": [(k, _(OPS[k])) for k in OPERATORS],
            "modes": [(k, _(v)) for k, v in MODES.items()], "roles": roles,
            "ends": [(k, _(v)) for k, v in ENDS.items()],
            "subjects": [(s, approvals.subject_label(s, ctx.locale)) for s in subjects]}


async def preview(ctx: Context, data: dict[str, Any]
                  ) -> tuple[Markup | None, tuple[Problem, ...]]:
    """The diagram of the data, or the engine's problems with it."""
    try:
        parsed = await approvals.check_workflow(ctx, data)
    except DefinitionError as exc:
        return None, exc.problems
    labels = {k: {"zh-CN": v["zh-CN"], "en": v["en"]}
              for k, v in (await approvals.subject_fields(ctx, parsed.subject)).items()}
    return Markup(render_svg(parsed.definition, ctx.locale, labels)), ()


async def _editor(request: Request[Any, Any, Any], ctx: Context, values: dict[str, Any],
                  current: Any, *, yaml_text: str = "", advanced: bool = False,
                  problems: tuple[Problem, ...] = (), error: str = "",
                  status: int = 200) -> Response[Any]:
    data = yaml_data(yaml_text) if advanced else data_from(values)
    svg, found = await preview(ctx, data) if isinstance(data, dict) else (None, ())
    new = current is None
    action = "/workflows/new" if new else f"/workflows/{current.key}/edit"
    return render(request, "origination/workflows/edit.html", status=status, values=values,
                  new=new, current=current, action=action, advanced=advanced,
                  yaml_text=yaml_text, svg=svg,
                  preview_problems=[p.message(ctx.locale) for p in found],
                  errors=place(problems, values, ctx.locale) if problems else {},
                  error=error, **await _options(ctx, values.get("subject", "")))


def yaml_data(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return {"__yaml_error__": str(exc)[:300]}


async def _active(ctx: Context, key: str) -> Any:
    found = [v for v in await approvals.workflows(ctx) if v.key == key]
    if not found:
        raise NotFound()
    return next((v for v in found if v.active), found[0]), found


@get("/workflows", opt=READ, **UI)
async def workflows_page(request: Request[Any, Any, Any], ctx: CurrentContext
                         ) -> Response[Any]:
    rows: dict[str, dict[str, Any]] = {}
    for v in await approvals.workflows(ctx):
        item = rows.setdefault(v.key, {"key": v.key, "versions": 0, "active": None,
                                       "latest": v})
        item["versions"] += 1
        if v.active:
            item["active"] = v
    items = sorted(rows.values(), key=lambda r: (r["latest"].subject, r["latest"].priority,
                                                 r["key"]))
    return render(request, "origination/workflows/list.html", items=items,
                  may_manage=allows(ctx, "workflow.manage"),
                  subject_label=lambda s: approvals.subject_label(s, ctx.locale))


@get("/workflows/new", opt=MANAGE, **UI)
async def workflow_new(request: Request[Any, Any, Any], ctx: CurrentContext
                       ) -> Response[Any]:
    return await _editor(request, ctx, values_of(None)[0], None)


@get("/workflows/{key:str}", opt=READ, **UI)
async def workflow_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                        key: FromPath[str]) -> Response[Any]:
    active, versions = await _active(ctx, key)
    wanted = request.query_params.get("v")
    shown = next((v for v in versions if str(v.version) == wanted), active)
    return render(request, "origination/workflows/view.html", shown=shown, active=active,
                  versions=versions, svg=Markup(render_svg(shown.definition, ctx.locale)),
                  yaml_text=yaml.safe_dump(approvals.export_data(shown), allow_unicode=True,
                                           sort_keys=False),
                  may_manage=allows(ctx, "workflow.manage"),
                  subject_text=approvals.subject_label(shown.subject, ctx.locale),
                  saved=request.query_params.get("saved") or "")


@get("/workflows/{key:str}/edit", opt=MANAGE, **UI)
async def workflow_edit(request: Request[Any, Any, Any], ctx: CurrentContext,
                        key: FromPath[str]) -> Response[Any]:
    active, _ = await _active(ctx, key)
    data = approvals.export_data(active)
    values, ok = values_of(data)
    values["base"] = str(active.version)
    return await _editor(request, ctx, values, active, advanced=not ok,
                         yaml_text=yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


async def _submit(request: Request[Any, Any, Any], ctx: Context, current: Any
                  ) -> Response[Any]:
    form = await request.form()
    advanced = form.get("mode") == "yaml"
    yaml_text = str(form.get("yaml") or "")[:100_000]
    values = values_from(form)
    if current is not None:
        values["key"] = current.key
        values["base"] = str(form.get("base") or "")
    op = str(form.get("op") or "save")
    if op != "save":
        apply_op(values, op)
        return await _editor(request, ctx, values, current, advanced=advanced,
                             yaml_text=yaml_text)
    _ = gettext_for(ctx.locale)
    data = yaml_data(yaml_text) if advanced else data_from(values)
    if isinstance(data, dict) and "__yaml_error__" in data:
        return await _editor(request, ctx, values, current, advanced=True, yaml_text=yaml_text,
                             error=_("The YAML cannot be read: %(why)s",
                                     why=data["__yaml_error__"]), status=422)
    if current is not None and isinstance(data, dict):
        data["id"] = current.key
    error = ""
    if current is None and values["key"] in RESERVED:
        error = _("This id is reserved; choose another.")
    elif current is None and [v for v in await approvals.workflows(ctx)
                              if v.key == values["key"]]:
        error = _("A workflow with this id exists; open it to change it.")
    elif current is not None and values.get("base") != str(
            (await _active(ctx, current.key))[0].version):
        error = _("Someone saved a newer version meanwhile; open the workflow again.")
    if error:
        return await _editor(request, ctx, values, current, advanced=advanced,
                             yaml_text=yaml_text, error=error, status=409)
    try:
        await approvals.check_workflow(ctx, data)
    except DefinitionError as exc:
        return await _editor(request, ctx, values, current, advanced=advanced,
                             yaml_text=yaml_text, problems=exc.problems,
                             error=_("Nothing was saved: correct the problems marked below."),
                             status=422)
    saved = await approvals.save_workflow(ctx, data)
    return Redirect(f"/workflows/{saved['key']}?saved={saved['version']}", status_code=303)


@post("/workflows/new", opt=MANAGE, status_code=200, **UI)
async def workflow_create(request: Request[Any, Any, Any], ctx: CurrentContext
                          ) -> Response[Any]:
    return await _submit(request, ctx, None)


@post("/workflows/{key:str}/edit", opt=MANAGE, status_code=200, **UI)
async def workflow_update(request: Request[Any, Any, Any], ctx: CurrentContext,
                          key: FromPath[str]) -> Response[Any]:
    return await _submit(request, ctx, (await _active(ctx, key))[0])


@post("/workflows/editor/preview", opt=MANAGE, status_code=200, **UI)
async def workflow_preview(request: Request[Any, Any, Any], ctx: CurrentContext
                           ) -> Response[Any]:
    """htmx: the diagram of the form as it stands (nothing is saved)."""
    form = await request.form()
    if form.get("mode") == "yaml":
        data = yaml_data(str(form.get("yaml") or "")[:100_000])
    else:
        data = data_from(values_from(form))
    svg, problems = await preview(ctx, data) if isinstance(data, dict) else (None, ())
    return render(request, "origination/workflows/_preview.html", svg=svg,
                  preview_problems=[p.message(ctx.locale) for p in problems],
                  status=200 if svg is not None else 422)


WORKFLOW_PAGES = [workflows_page, workflow_new, workflow_page, workflow_edit, workflow_create,
                  workflow_update, workflow_preview]
