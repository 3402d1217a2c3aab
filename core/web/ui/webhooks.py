"""The webhooks pages for tenant admins (webhooks.manage).

    GET  /admin/webhooks                 the tenant's webhooks and the form for a new one
    POST /admin/webhooks                 create: the page then shows the signing secret, once
    GET  /admin/webhooks/{id}            one webhook: edit form and its delivery log
    POST /admin/webhooks/{id}            change URL, event types, description
    POST /admin/webhooks/{id}/active     switch on or off
    POST /admin/webhooks/{id}/delete     delete it (and its log)

Every change goes through core.webhooks, which checks the permission again and audits it.
Event types are offered as checkboxes (each enabled entity's created/updated/deleted, the
events plugins subscribe to, and "*"), with a text field for any other.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from core import webhooks
from core.errors import NotFound, ValidationFailed
from core.tenancy import Context
from core.web.context import CurrentContext
from core.web.ui.i18n import gettext_for
from core.web.ui.jobs import event_label, local_seconds
from core.web.ui.render import render

UI = {"include_in_schema": False}
HOOKS = {"permission": webhooks.PERMISSION}


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound() from None


def event_choices(ctx: Context) -> list[tuple[str, str]]:
    """(value, label) of the checkboxes: every event first, then the known event types."""
    _ = gettext_for(ctx.locale)
    out = [("*", _("All events"))]
    for name in webhooks.known_event_types(ctx):
        label = event_label(name, ctx.locale)
        out.append((name, label if label != name else name))
    return out


def _form_values(form: Any) -> dict[str, Any]:
    checked = [e for e in form.getall("events", []) if isinstance(e, str)]
    other = str(form.get("other_events") or "")[:2000]
    return {"url": str(form.get("url") or "").strip()[:600],
            "description": str(form.get("description") or "").strip()[:300],
            "events": checked, "other_events": other,
            "active": form.get("active") is not None}


def _all_events(values: dict[str, Any]) -> list[str]:
    extra = [e for e in re.split(r"[\s,，;；]+", values["other_events"]) if e]
    return [*values["events"], *extra]


def _errors(exc: ValidationFailed, lang: str) -> dict[str, str]:
    return {e.field: e.message(lang) for e in exc.errors}


def _present(hook: dict[str, Any], ctx: Context) -> dict[str, Any]:
    last = hook.get("last")
    return {**hook, "created": local_seconds(hook["created_at"], ctx.tenant.timezone),
            "event_labels": [event_label(e, ctx.locale) if e != "*"
                             else gettext_for(ctx.locale)("All events")
                             for e in hook["events"]],
            "last": {**last, "when": local_seconds(last["at"], ctx.tenant.timezone)} if last else None}


async def _list_page(request: Request[Any, Any, Any], ctx: Context, *,
                     values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                     created: dict[str, Any] | None = None, secret: str = "",
                     status: int = 200) -> Response[Any]:
    hooks = [_present(h, ctx) for h in await webhooks.list_webhooks(ctx)]
    return render(request, "webhooks/list.html", status=status, hooks=hooks,
                  choices=event_choices(ctx), errors=errors or {},
                  values=values or {"url": "", "description": "", "events": [],
                                    "other_events": "", "active": True},
                  created=created, secret=secret, profile=_profile())


def _profile() -> str:
    from core.kernel import kernel

    return kernel().settings.profile


@get("/admin/webhooks", opt=HOOKS, **UI)
async def webhooks_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    return await _list_page(request, ctx)


@post("/admin/webhooks", opt=HOOKS, status_code=200, **UI)
async def webhook_create(request: Request[Any, Any, Any], ctx: CurrentContext
                         ) -> Response[Any]:
    """Create; the answer is the list with the new secret shown once (never stored clear)."""
    values = _form_values(await request.form())
    try:
        hook, secret = await webhooks.create_webhook(
            ctx, values["url"], _all_events(values), values["description"], values["active"])
    except ValidationFailed as exc:
        return await _list_page(request, ctx, values=values,
                                errors=_errors(exc, ctx.locale), status=422)
    return await _list_page(request, ctx, created=hook, secret=secret)


async def _detail(request: Request[Any, Any, Any], ctx: Context, webhook_id: uuid.UUID, *,
                  values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                  saved: bool = False, status: int = 200) -> Response[Any]:
    hook = _present(await webhooks.get_webhook(ctx, webhook_id), ctx)
    tz = ctx.tenant.timezone
    log = [{**d, "when": local_seconds(d["at"], tz), "event_label": event_label(d["event"], ctx.locale)}
           for d in await webhooks.deliveries(ctx, webhook_id)]
    choices = event_choices(ctx)
    known = {c for c, _label in choices}
    if values is None:
        values = {"url": hook["url"], "description": hook["description"],
                  "events": [e for e in hook["events"] if e in known],
                  "other_events": ", ".join(e for e in hook["events"] if e not in known),
                  "active": hook["active"]}
    return render(request, "webhooks/detail.html", status=status, hook=hook, log=log,
                  choices=choices, values=values, errors=errors or {}, saved=saved,
                  limit=webhooks.LOG_LIMIT, tz=tz)


@get("/admin/webhooks/{webhook_id:str}", opt=HOOKS, **UI)
async def webhook_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                       webhook_id: FromPath[str]) -> Response[Any]:
    return await _detail(request, ctx, _uuid(webhook_id),
                         saved=request.query_params.get("saved") == "1")


@post("/admin/webhooks/{webhook_id:str}", opt=HOOKS, status_code=303, **UI)
async def webhook_save(request: Request[Any, Any, Any], ctx: CurrentContext,
                       webhook_id: FromPath[str]) -> Response[Any]:
    wanted = _uuid(webhook_id)
    values = _form_values(await request.form())
    try:
        await webhooks.update_webhook(ctx, wanted, url=values["url"],
                                      events=_all_events(values),
                                      description=values["description"])
    except ValidationFailed as exc:
        return await _detail(request, ctx, wanted, values=values,
                             errors=_errors(exc, ctx.locale), status=422)
    return Redirect(f"/admin/webhooks/{wanted}?saved=1", status_code=303)


@post("/admin/webhooks/{webhook_id:str}/active", opt=HOOKS, status_code=303, **UI)
async def webhook_active(request: Request[Any, Any, Any], ctx: CurrentContext,
                         webhook_id: FromPath[str]) -> Response[Any]:
    active = (await request.form()).get("active") == "true"
    await webhooks.update_webhook(ctx, _uuid(webhook_id), active=active)
    return Redirect("/admin/webhooks", status_code=303)


@post("/admin/webhooks/{webhook_id:str}/delete", opt=HOOKS, status_code=303, **UI)
async def webhook_delete(request: Request[Any, Any, Any], ctx: CurrentContext,
                         webhook_id: FromPath[str]) -> Response[Any]:
    await webhooks.delete_webhook(ctx, _uuid(webhook_id))
    return Redirect("/admin/webhooks", status_code=303)


WEBHOOK_HANDLERS = [webhooks_page, webhook_create, webhook_page, webhook_save, webhook_active,
                    webhook_delete]
