"""The notifications page and the shell's bell (core.notifications), for any signed-in user.

    GET  /notifications              the user's latest notifications (`?unread=1`: unread only)
    GET  /notifications/badge        htmx: the bell with its unread count (the shell loads it
                                     after the page, so rendering a page costs no query)
    POST /notifications/{id}/open    mark it read and go to its link (or back to the list)
    POST /notifications/read-all     mark all read, back to the list

JSON for integrations: GET /api/v1/notifications, POST /api/v1/notifications/{id}/read,
POST /api/v1/notifications/read-all (NOTIFICATION_API).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from core import notifications
from core.web.context import CurrentContext
from core.web.ui.render import local_time, render, safe_next

UI = {"include_in_schema": False}
SIGNED_IN = {"authenticated": True}
TAG = "notifications"


@get("/notifications", opt=SIGNED_IN, name="ui_notifications", **UI)
async def notifications_page(request: Request[Any, Any, Any], ctx: CurrentContext
                             ) -> Response[Any]:
    unread_only = request.query_params.get("unread") in ("1", "true")
    items = await notifications.list_for(ctx, unread_only=unread_only, limit=100)
    tz = ctx.tenant.timezone
    rows = [{**n, "when": local_time(n["created_at"], tz)} for n in items]
    return render(request, "notifications/list.html", rows=rows, unread_only=unread_only,
                  unread=await notifications.unread_count(ctx))


@get("/notifications/badge", opt=SIGNED_IN, name="ui_notifications_badge", **UI)
async def badge(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    return render(request, "notifications/_bell.html",
                  unread=await notifications.unread_count(ctx))


@post("/notifications/{notification_id:str}/open", opt=SIGNED_IN, status_code=303,
      name="ui_notification_open", **UI)
async def open_notification(ctx: CurrentContext, notification_id: FromPath[str]
                            ) -> Response[Any]:
    item = await notifications.mark_read(ctx, notification_id)
    return Redirect(safe_next(item["link"], "/notifications"), status_code=303)


@post("/notifications/read-all", opt=SIGNED_IN, status_code=303,
      name="ui_notifications_read_all", **UI)
async def read_all(ctx: CurrentContext) -> Response[Any]:
    await notifications.mark_all_read(ctx)
    return Redirect("/notifications", status_code=303)


# --- JSON API (mounted under /api/v1) -----------------------------------------------------

@get("/notifications", summary="My notifications, newest first", tags=[TAG], opt=SIGNED_IN)
async def api_list(ctx: CurrentContext, unread: FromQuery[bool] = False) -> dict[str, Any]:
    return {"items": await notifications.list_for(ctx, unread_only=unread),
            "unread": await notifications.unread_count(ctx)}


@post("/notifications/{notification_id:uuid}/read", summary="Mark one notification read",
      tags=[TAG], opt=SIGNED_IN, status_code=200)
async def api_read(ctx: CurrentContext, notification_id: FromPath[UUID]) -> dict[str, Any]:
    return await notifications.mark_read(ctx, notification_id)


@post("/notifications/read-all", summary="Mark all my notifications read", tags=[TAG],
      opt=SIGNED_IN, status_code=200)
async def api_read_all(ctx: CurrentContext) -> dict[str, int]:
    return {"marked": await notifications.mark_all_read(ctx)}


NOTIFICATION_PAGES = [notifications_page, badge, read_all, open_notification]
NOTIFICATION_API = [api_list, api_read, api_read_all]
