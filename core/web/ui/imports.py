"""Import and export pages (core.imports), reached from the generic list's 导入 / 导出.

    GET  /imports/new/{entity}            upload form, template download link
    POST /imports/new/{entity}            the file (multipart, CSRF checked before it is
                                          kept); then the import's page
    GET  /imports/template/{entity}       the template (xlsx)
    GET  /imports/export/{entity}         the list as filtered (same query) as xlsx;
                                          `reveal=1` for clear text (`<entity>.reveal`)
    GET  /imports/{id}                    mapping (one select per column), status,
                                          progress (htmx polls every 2 s while it runs),
                                          first errors, report download
    POST /imports/{id}/mapping            save the mapping
    POST /imports/{id}/dry-run | commit   queue the job, back to the page
    GET  /imports/{id}/errors             the error report in the page's language

Everything goes through core.imports with the signed-in Context, like the API.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from core import imports, records
from core.errors import ValidationFailed, XindaiError
from core.web.api_imports import xlsx_response
from core.web.context import CurrentContext
from core.web.ui.i18n import N_, gettext_for
from core.web.ui.render import local_time, render
from core.web.uploads import BODY_SLACK, file_from_request

UI = {"include_in_schema": False}
IMPORT = {"permission": imports.PERM_IMPORT}
EXPORT = {"permission": imports.PERM_EXPORT}
STATUS_LABELS = {
    "uploaded": N_("Uploaded, not checked yet"),
    "queued": N_("Waiting to start"),
    "checking": N_("Checking rows"),
    "checked": N_("Checked: no errors, nothing written yet"),
    "invalid": N_("Errors found: nothing was written"),
    "committing": N_("Importing"),
    "committed": N_("Imported"),
    "failed": N_("Failed: nothing was written"),
    "expired": N_("Expired: the file was deleted after 7 days"),
}
PHASES = {"checking": N_("Checking rows"), "writing": N_("Writing records"),
          "done": N_("Finishing")}


def _message(exc: XindaiError, lang: str) -> str:
    if isinstance(exc, ValidationFailed):
        return "; ".join(e.message(lang) for e in exc.errors)
    return exc.message(lang)


@get("/imports/new/{entity:str}", opt=IMPORT, name="ui_import_new", **UI)
async def import_new(request: Request[Any, Any, Any], ctx: CurrentContext,
                     entity: FromPath[str]) -> Response[Any]:
    return await _new_page(request, ctx, entity)


async def _new_page(request: Request[Any, Any, Any], ctx: Any, entity: str, error: str = "",
                    status: int = 200) -> Response[Any]:
    current = await records.entity_for(ctx, entity)
    return render(request, "imports/new.html", status=status,
                  entity={"name": current.name, "label": current.label(ctx.locale),
                          "base": f"/e/{current.name}"},
                  recent=[r for r in await imports.recent(ctx, 10)
                          if r["entity"] == current.name],
                  statuses={k: gettext_for(ctx.locale)(v) for k, v in STATUS_LABELS.items()},
                  error=error, max_mb=imports.MAX_BYTES // (1024 * 1024))


@post("/imports/new/{entity:str}", opt={**IMPORT, "csrf": "stream"}, name="ui_import_upload",
      status_code=303, request_max_body_size=2 * imports.MAX_BYTES + BODY_SLACK, **UI)
async def import_upload(request: Request[Any, Any, Any], ctx: CurrentContext,
                        entity: FromPath[str]) -> Response[Any]:
    from core.web.sessions import csrf_of

    expected = None if request.headers.get("x-csrf-token") else csrf_of(request)
    try:
        filename, data = await file_from_request(request, imports.MAX_BYTES, expected)
        job = await imports.upload(ctx, entity, filename, data)
    except XindaiError as exc:
        if exc.status not in (413, 415, 422):
            raise
        return await _new_page(request, ctx, entity, _message(exc, ctx.locale), exc.status)
    return Redirect(f"/imports/{job['id']}", status_code=303)


@get("/imports/template/{entity:str}", opt=IMPORT, name="ui_import_template", **UI)
async def import_template(ctx: CurrentContext, entity: FromPath[str]) -> Response[bytes]:
    current = await records.entity_for(ctx, entity)
    data = await imports.template(ctx, entity)
    _ = gettext_for(ctx.locale)
    return xlsx_response(data, _("%(entity)s import template.xlsx",
                                 entity=current.label(ctx.locale)))


@get("/imports/export/{entity:str}", opt=EXPORT, name="ui_export", **UI)
async def export(request: Request[Any, Any, Any], ctx: CurrentContext, entity: FromPath[str]
                 ) -> Response[bytes]:
    params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    reveal = params.pop("reveal", "") in ("1", "true")
    q, sort = params.pop("q", "") or None, params.pop("sort", "") or None
    for key in ("page", "per_page", "lang"):
        params.pop(key, None)
    current = await records.entity_for(ctx, entity)
    data = await imports.export_bytes(ctx, entity, {k: v for k, v in params.items() if v},
                                      q, sort, reveal)
    return xlsx_response(data, f"{current.label(ctx.locale)}.xlsx")


def _fields(ctx: Any, current: Any) -> list[dict[str, str]]:
    lang = ctx.locale
    return [{"key": f.key, "label": f.label(lang) + (" *" if f.required else "")}
            for f in imports.importable_fields(ctx, current)]


@get("/imports/{import_id:uuid}", opt=IMPORT, name="ui_import", **UI)
async def import_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                      import_id: FromPath[Any]) -> Response[Any]:
    return await _page(request, ctx, import_id)


async def _page(request: Request[Any, Any, Any], ctx: Any, import_id: Any, error: str = "",
                status: int = 200) -> Response[Any]:
    job = await imports.describe(ctx, import_id)
    current = await records.entity_for(ctx, job["entity"])
    _ = gettext_for(ctx.locale)
    progress = job["progress"]
    if progress:
        total = progress.get("total") or 0
        phase = PHASES.get(progress.get("phase") or "")
        progress = {**progress, "percent": min(100, progress["done"] * 100 // total)
                    if total else None, "phase": _(phase) if phase else ""}
    context = {
        "job": job, "progress": progress, "error": error,
        "entity": {"name": current.name, "label": current.label(ctx.locale),
                   "base": f"/e/{current.name}"},
        "fields": _fields(ctx, current),
        "status_label": _(STATUS_LABELS.get(job["status"], job["status"])),
        "running": job["status"] in imports.RUNNING,
        "editable": job["status"] not in (*imports.RUNNING, "committed", "expired"),
        "created": local_time(job["created_at"], ctx.tenant.timezone),
    }
    partial = request.headers.get("hx-request") == "true" and \
        request.headers.get("hx-target") == "import-status"
    return render(request, "imports/_status.html" if partial else "imports/detail.html",
                  status=status, **context)


@post("/imports/{import_id:uuid}/mapping", opt=IMPORT, name="ui_import_mapping",
      status_code=303, **UI)
async def import_mapping(request: Request[Any, Any, Any], ctx: CurrentContext,
                         import_id: FromPath[Any]) -> Response[Any]:
    form = await request.form()
    mapping = {key[4:]: str(value) for key, value in form.items()
               if key.startswith("col_") and key[4:].isdigit() and value}
    try:
        await imports.set_mapping(ctx, import_id, mapping)
    except XindaiError as exc:
        if exc.status not in (409, 422):
            raise
        return await _page(request, ctx, import_id, _message(exc, ctx.locale), exc.status)
    return Redirect(f"/imports/{import_id}", status_code=303)


async def _start(request: Request[Any, Any, Any], ctx: Any, import_id: Any, commit: bool
                 ) -> Response[Any]:
    try:
        await imports.start(ctx, import_id, commit)
    except XindaiError as exc:
        if exc.status not in (409, 422):
            raise
        return await _page(request, ctx, import_id, _message(exc, ctx.locale), exc.status)
    return Redirect(f"/imports/{import_id}", status_code=303)


@post("/imports/{import_id:uuid}/dry-run", opt=IMPORT, name="ui_import_dry_run",
      status_code=303, **UI)
async def import_dry_run(request: Request[Any, Any, Any], ctx: CurrentContext,
                         import_id: FromPath[Any]) -> Response[Any]:
    return await _start(request, ctx, import_id, False)


@post("/imports/{import_id:uuid}/commit", opt=IMPORT, name="ui_import_commit",
      status_code=303, **UI)
async def import_commit(request: Request[Any, Any, Any], ctx: CurrentContext,
                        import_id: FromPath[Any]) -> Response[Any]:
    return await _start(request, ctx, import_id, True)


@get("/imports/{import_id:uuid}/errors", opt=IMPORT, name="ui_import_errors", **UI)
async def import_errors(ctx: CurrentContext, import_id: FromPath[Any]) -> Response[bytes]:
    _ = gettext_for(ctx.locale)
    data = await imports.report_bytes(ctx, import_id, ctx.locale)
    return xlsx_response(data, _("import errors %(id)s.xlsx", id=str(import_id)[:8]))


IMPORT_PAGES = [import_new, import_upload, import_template, export, import_page,
                import_mapping, import_dry_run, import_commit, import_errors]
