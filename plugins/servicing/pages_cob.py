"""The close-of-business screen (日终): the business date, the runs and a button to close.

    GET  /servicing/cob        the business date and the latest runs (refreshes while one runs)
    POST /servicing/cob/run    enqueue the close of the business date (cob.run)

The close itself is the `servicing.cob` background job (plugins.servicing.cob); this page
only asks for it and shows its progress, so a browser tab never holds a long close.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect

from core import jobs
from core.errors import ValidationFailed
from core.web.context import CurrentContext
from core.web.ui.i18n import N_
from core.web.ui.render import render
from plugins.servicing import cob
from plugins.servicing.pages import _label

UI = {"include_in_schema": False}
STATUSES = {"running": N_("Running"), "done": N_("Done"), "failed": N_("Failed"),
            "catch-up": N_("Catch-up")}


async def _page(request: Request[Any, Any, Any], ctx: Any, status: int = 200,
                error: str = "") -> Response[Any]:
    current = await cob.refreshed(ctx)
    runs = await cob.list_runs(ctx)
    for r in runs:
        r["status_label"] = _label(STATUSES, r["status"], ctx.locale)
    polling = request.query_params.get("queued") == "1" or any(
        r["status"] == "running" for r in runs)
    template = "servicing/_cob_runs.html" if request.headers.get("hx-request") else \
        "servicing/cob.html"
    return render(request, template, status=status, runs=runs, polling=polling,
                  business_date=current.tenant.business_date.isoformat(),
                  may_run=ctx.access.can("cob.run"), error=error,
                  queued=request.query_params.get("queued") == "1")


@get("/servicing/cob", opt={"permission": "loan.read"}, **UI)
async def cob_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    return await _page(request, ctx)


@post("/servicing/cob/run", opt={"permission": "cob.run"}, status_code=303, **UI)
async def cob_run(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    form = await request.form()
    try:
        await cob.enqueue_close(ctx, form.get("business_date"), jobs.enqueue)
    except ValidationFailed as exc:
        return await _page(request, ctx, status=422,
                           error=exc.errors[0].message(ctx.locale))
    return Redirect("/servicing/cob?queued=1", status_code=303)


COB_PAGES = [cob_page, cob_run]
