"""Generic list / detail / create / edit views for every registry entity.

`/e/<entity>` lists, `/e/<entity>/new` creates, `/e/<entity>/<id>` shows, `/e/<entity>/<id>/
edit` changes, `/e/<entity>/<id>/reveal/<field>` reveals one masked value (htmx, recorded)
and `/e/<entity>/<id>/delete` deletes. The detail page also lists the record's documents:
`/e/<entity>/<id>/documents` uploads one (streamed and encrypted as it arrives), `.../
documents/<doc>` downloads it (`?inline=1` previews it) and `.../documents/<doc>/delete`
removes it. Each route names its permission (`<entity>.read`, ...) like the API's, and
everything goes through core.records and core.documents with the signed-in Context, so
the object rules, field policies, validation, masking and audit are exactly the API's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from core import documents, records
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed, XindaiError
from core.registry import EntityType
from core.tenancy import Context
from core.web.context import CurrentContext
from core.web.ui import forms
from core.web.ui.i18n import gettext_for
from core.web.ui.render import local_time, render
from core.web.uploads import body_limit, download_response, upload_from_request

PER_PAGE_CHOICES = (10, 20, 50, 100)
MAX_QUERY = 100
UI = {"include_in_schema": False}


def _page_number(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or 1), 100_000))
    except ValueError:
        return 1


def _url(base: str, params: dict[str, str], **changes: Any) -> str:
    merged = {**params, **{k: str(v) for k, v in changes.items() if v is not None}}
    merged = {k: v for k, v in merged.items() if v not in ("", None)}
    return base + ("?" + urlencode(merged) if merged else "")


def _title(ctx: Context, entity: EntityType, record: dict[str, Any], lang: str) -> str:
    f = entity.field(entity.title_field)
    if f is not None and record.get(f.key) not in (None, ""):
        return forms.display(f, record[f.key], lang, ctx.tenant.timezone,
                             forms.is_masked(ctx, entity, f))
    return str(record.get("id", ""))[:8]


DOCUMENTS_ORDER = 50  # panels ordered below this come before the documents, the rest after


async def record_panels(ctx: Context, entity: str, record_id: str) -> list[dict[str, Any]]:
    """The plugins' panels for a record's detail page (`record_panels` hook; e.g. the
    customer 360 view's follow-ups, tasks, loans and timeline), sorted by order."""
    from core.kernel import kernel

    found = await kernel().gather("record_panels", ctx.tenant, ctx=ctx, entity=entity,
                                  record_id=record_id)
    return [{"key": p.key, "label": p.label(ctx.locale), "template": p.template,
             "context": p.context, "order": p.order}
            for p in sorted(found, key=lambda p: (p.order, p.key))]


def _warning_days(ctx: Context) -> int:
    from core.document_expiry import warning_days

    return warning_days(ctx)


def entity_routes(entity: EntityType) -> Router:
    """The UI routes of one entity; handlers are closures over its name (as in the API)."""
    name = entity.name
    base = f"/e/{name}"

    def need(action: str) -> dict[str, Any]:
        return {"permission": f"{name}.{action}"}

    @get("/", opt=need("read"), name=f"ui_list_{name}", **UI)
    async def list_view(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
        lang = ctx.locale
        current = await records.entity_for(ctx, name)
        params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
        filters = forms.filters_for(ctx, current, params, lang)
        active = forms.filter_params(filters, params)
        q = params.get("q", "").strip()[:MAX_QUERY]
        sortable = {f.key for f in current.fields if forms.sortable(ctx, current, f)} | {
            "created_at", "updated_at"}
        sort = params.get("sort", "")
        if sort.lstrip("-") not in sortable:
            sort = ""
        per_page = int(params["per_page"]) if params.get("per_page", "").isdigit() and \
            int(params["per_page"]) in PER_PAGE_CHOICES else 20
        page_no = _page_number(params.get("page"))
        keep = {**active, "q": q, "sort": sort,
                "per_page": str(per_page) if per_page != 20 else ""}
        error, status = "", 200
        try:
            result = await records.list_records(ctx, name, active, sort or None, page_no,
                                                per_page, q or None)
            items, total = result.items, result.total
        except ValidationFailed as exc:
            items, total, status = [], 0, 422
            error = "; ".join(e.message(lang) for e in exc.errors)
        except XindaiError as exc:
            items, total, status = [], 0, 400
            error = exc.message(lang)
        columns = forms.list_columns(ctx, current)
        order = sort or current.default_sort
        heads = []
        for f in columns:
            can_sort = f.key in sortable
            direction = "asc" if order == f.key else "desc" if order == f"-{f.key}" else ""
            target = f"-{f.key}" if direction == "asc" else f.key
            heads.append({"key": f.key, "label": f.label(lang), "direction": direction,
                          "num": f.type in forms.NUMERIC,
                          "url": _url(base, keep, sort=target, page=None) if can_sort else ""})
        tz = ctx.tenant.timezone
        rows = []
        for item in items:
            cells = []
            for f in columns:
                cells.append({"key": f.key, "label": f.label(lang),
                              "num": f.type in forms.NUMERIC,
                              "text": forms.display(f, item.get(f.key), lang, tz,
                                                    forms.is_masked(ctx, current, f))})
            rows.append({"id": item["id"], "url": f"{base}/{item['id']}", "cells": cells,
                         "created": local_time(item["created_at"], tz)})
        pages = max(1, -(-total // per_page))
        context = {
            "entity": {"name": name, "label": current.label(lang), "base": base},
            "heads": heads, "rows": rows, "total": total, "page": page_no, "pages": pages,
            "prev_url": _url(base, keep, page=page_no - 1) if page_no > 1 else "",
            "next_url": _url(base, keep, page=page_no + 1) if page_no < pages else "",
            "filters": filters, "q": q, "sort": sort, "per_page": per_page,
            "per_page_choices": PER_PAGE_CHOICES, "error": error,
            "filtered": bool(active or q),
            "can_create": entity.generic_writes and ctx.access.can(f"{name}.create"),
            "can_import": entity.generic_writes and ctx.access.can(f"{name}.create") and ctx.access.can("records.import"),
            "can_export": ctx.access.can("records.export"),
            "can_reveal": ctx.access.can(f"{name}.reveal"),
            "export_url": _url(f"/imports/export/{name}", keep),
        }
        partial = request.headers.get("hx-request") == "true" and \
            request.headers.get("hx-target") == "records"
        return render(request, "entity/_table.html" if partial else "entity/list.html",
                      status=status, **context)

    def _detail_fields(ctx: Context, current: EntityType, record: dict[str, Any]
                       ) -> list[dict[str, Any]]:
        lang, tz = ctx.locale, ctx.tenant.timezone
        can_reveal = ctx.access.can(f"{name}.reveal")
        out = []
        for f in forms.visible_fields(ctx, current):
            value = record.get(f.key)
            masked = forms.is_masked(ctx, current, f)
            out.append({"key": f.key, "label": f.label(lang),
                        "text": forms.display(f, value, lang, tz, masked),
                        "masked": masked and value not in (None, ""),
                        "reveal": can_reveal and masked and value not in (None, ""),
                        "reveal_url": f"{base}/{record['id']}/reveal/{f.key}",
                        "long": f.type == "long_text"})
        return out

    def _documents(ctx: Context, record_id: str, items: list[dict[str, Any]]
                   ) -> list[dict[str, Any]]:
        from core.document_expiry import warning_days

        lang, tz = ctx.locale, ctx.tenant.timezone
        url = f"{base}/{record_id}/documents"
        days, today = warning_days(ctx), ctx.tenant.business_date
        return [{"id": d["id"], "kind": documents.kind_label(d["kind"], lang),
                 "expires_on": d["expires_on"] or "",
                 "expiry": documents.expiry_state(d["expires_on"], today, days),
                 "expiry_url": f"{url}/{d['id']}/expiry",
                 "filename": d["filename"], "size": documents.human_size(d["size"]),
                 "uploader": d["created_by_name"], "uploaded": local_time(d["created_at"], tz),
                 "preview_url": f"{url}/{d['id']}?inline=1",
                 "download_url": f"{url}/{d['id']}",
                 "delete_url": f"{url}/{d['id']}/delete"} for d in items]

    async def _detail_page(request: Request[Any, Any, Any], ctx: Context, record_id: str,
                           status: int = 200, upload_error: str = "",
                           kind: str = "") -> Response[Any]:
        record = await records.get(ctx, name, record_id)
        current = await records.entity_for(ctx, name)
        tz, lang = ctx.tenant.timezone, ctx.locale
        panels = await record_panels(ctx, name, record["id"])
        return render(
            request, "entity/detail.html", status=status,
            entity={"name": name, "label": current.label(lang), "base": base},
            record={"id": record["id"], "version": record["version"],
                    "created": local_time(record["created_at"], tz),
                    "updated": local_time(record["updated_at"], tz)},
            title=_title(ctx, current, record, lang),
            fields=_detail_fields(ctx, current, record),
            can_edit=ctx.access.can(f"{name}.update"),  # documents
            can_edit_record=entity.generic_writes and ctx.access.can(f"{name}.update"),
            can_delete=entity.generic_writes and ctx.access.can(f"{name}.delete"),
            documents=_documents(ctx, record["id"], await documents.list_documents(
                ctx, name, record["id"])),
            expiry_warning_days=_warning_days(ctx),
            upload={"action": f"{base}/{record['id']}/documents", "error": upload_error,
                    "kind": kind, "max": documents.human_size(documents.max_bytes()),
                    "kinds": [(k, documents.kind_label(k, lang)) for k in documents.KINDS]},
            panels_before=[p for p in panels if p["order"] < DOCUMENTS_ORDER],
            panels_after=[p for p in panels if p["order"] >= DOCUMENTS_ORDER],
        )

    @get("/{record_id:str}", opt=need("read"), name=f"ui_detail_{name}", **UI)
    async def detail(request: Request[Any, Any, Any], ctx: CurrentContext,
                     record_id: FromPath[str]) -> Response[Any]:
        return await _detail_page(request, ctx, record_id)

    @post("/{record_id:str}/documents", opt={**need("update"), "csrf": "stream"},
          name=f"ui_upload_{name}", status_code=303, request_max_body_size=body_limit(), **UI)
    async def upload(request: Request[Any, Any, Any], ctx: CurrentContext,
                     record_id: FromPath[str]) -> Response[Any]:
        """A file from the detail page's form, encrypted as it streams in; a refused one
        shows the page again with the reason (413, 422) and nothing stored."""
        from core.web.sessions import csrf_of

        expected = None if request.headers.get("x-csrf-token") else csrf_of(request)
        fields: dict[str, str] = {}
        try:
            await upload_from_request(request, ctx, name, record_id, expected, fields)
        except (NotFound, Forbidden):
            raise
        except XindaiError as exc:
            if exc.status not in (413, 415, 422):
                raise
            message = "; ".join(e.message(ctx.locale) for e in exc.errors) \
                if isinstance(exc, ValidationFailed) else exc.message(ctx.locale)
            return await _detail_page(request, ctx, record_id, exc.status, message,
                                      fields.get("kind", ""))
        return Redirect(f"{base}/{record_id}#documents", status_code=303)

    @get("/{record_id:str}/documents/{document_id:str}", opt=need("read"),
         name=f"ui_download_{name}", **UI)
    async def download(request: Request[Any, Any, Any], ctx: CurrentContext,
                       record_id: FromPath[str], document_id: FromPath[str]) -> Response[Any]:
        """The file (`?inline=1`: shown by the browser, for images and PDF); recorded."""
        inline = request.query_params.get("inline") in ("1", "true")
        return await download_response(ctx, name, record_id, document_id, inline)

    @post("/{record_id:str}/documents/{document_id:str}/delete", opt=need("update"),
          name=f"ui_delete_document_{name}", status_code=303, **UI)
    async def delete_document(ctx: CurrentContext, record_id: FromPath[str],
                              document_id: FromPath[str]) -> Response[Any]:
        await documents.delete_document(ctx, name, record_id, document_id)
        return Redirect(f"{base}/{record_id}#documents", status_code=303)

    @post("/{record_id:str}/documents/{document_id:str}/expiry", opt=need("update"),
          name=f"ui_document_expiry_{name}", status_code=303, **UI)
    async def document_expiry(request: Request[Any, Any, Any], ctx: CurrentContext,
                              record_id: FromPath[str], document_id: FromPath[str]
                              ) -> Response[Any]:
        """Set or clear a document's expiry date (KYC validity); a bad date shows the page
        again with the reason."""
        form = await request.form()
        try:
            await documents.set_expiry(ctx, name, record_id, document_id,
                                       str(form.get("expires_on") or ""))
        except ValidationFailed as exc:
            return await _detail_page(request, ctx, record_id, exc.status,
                                      "; ".join(e.message(ctx.locale) for e in exc.errors))
        return Redirect(f"{base}/{record_id}#doc-{document_id}", status_code=303)

    @post("/{record_id:str}/reveal/{field_key:str}", opt=need("reveal"),
          name=f"ui_reveal_{name}", status_code=200, **UI)
    async def reveal(request: Request[Any, Any, Any], ctx: CurrentContext, record_id: FromPath[str],
                     field_key: FromPath[str]) -> Response[Any]:
        """The clear value of one masked field, as an htmx fragment; the reveal is recorded
        by core.records.reveal_field."""
        value = await records.reveal_field(ctx, name, record_id, field_key)
        current = await records.entity_for(ctx, name)
        f = current.field(field_key)
        text = forms.display(f, value, ctx.locale, ctx.tenant.timezone) if f else str(value)
        return render(request, "entity/_revealed.html", text=text)

    def _form_page(request: Request[Any, Any, Any], ctx: CurrentContext, current: EntityType,
                   widgets: list[forms.Widget], *, record: dict[str, Any] | None,
                   status: int = 200, general: list[str] | None = None) -> Response[Any]:
        return render(
            request, "entity/form.html", status=status,
            entity={"name": name, "label": current.label(ctx.locale), "base": base},
            record=record, widgets=widgets, general=general or [],
            action=f"{base}/{record['id']}/edit" if record else f"{base}/new",
            cancel=f"{base}/{record['id']}" if record else base,
            title=_title(ctx, current, record, ctx.locale) if record else "",
        )

    def _widgets(ctx: Context, current: EntityType, values: dict[str, Any],
                 errors: dict[str, str], record: dict[str, Any] | None) -> list[forms.Widget]:
        _ = gettext_for(ctx.locale)
        out = []
        for f in forms.writable_fields(ctx, current):
            placeholder = help_text = ""
            if f.is_secret and record is not None and record.get(f.key):
                placeholder = str(record[f.key])
                help_text = _("Stored encrypted and shown masked. Leave empty to keep the "
                              "current value.")
            out.append(forms.widget(f, ctx.locale, values.get(f.key, ""),
                                    errors.get(f.key, ""), placeholder, help_text))
        return out

    def _failure(request: Request[Any, Any, Any], ctx: CurrentContext, current: EntityType,
                 raw: dict[str, Any], exc: XindaiError, record: dict[str, Any] | None
                 ) -> Response[Any]:
        lang = ctx.locale
        keys = {f.key for f in forms.writable_fields(ctx, current)}
        if isinstance(exc, ValidationFailed):
            errors, general = forms.errors_by_field(exc.errors, keys, lang)
            general.insert(0, exc.message(lang))
        else:
            errors, general = {}, [exc.message(lang)]
        return _form_page(request, ctx, current, _widgets(ctx, current, raw, errors, record),
                          record=record, status=exc.status, general=general)

    @get("/new", opt=need("create"), name=f"ui_new_{name}", **UI)
    async def new_form(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
        current = await records.entity_for(ctx, name)
        return _form_page(request, ctx, current, _widgets(ctx, current, {}, {}, None),
                          record=None)

    @post("/new", opt=need("create"), name=f"ui_create_{name}", status_code=303, **UI)
    async def create(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
        current = await records.entity_for(ctx, name)
        fields = forms.writable_fields(ctx, current)
        raw = forms.read_form(fields, await request.form(), ctx.tenant.timezone)
        try:
            created = await records.create(ctx, name, forms.new_record(raw))
        except XindaiError as exc:
            return _failure(request, ctx, current, raw, exc, None)
        return Redirect(f"{base}/{created['id']}", status_code=303)

    @get("/{record_id:str}/edit", opt=need("update"), name=f"ui_edit_{name}", **UI)
    async def edit_form(request: Request[Any, Any, Any], ctx: CurrentContext,
                        record_id: FromPath[str]) -> Response[Any]:
        record = await records.get(ctx, name, record_id)
        current = await records.entity_for(ctx, name)
        tz = ctx.tenant.timezone
        values = {f.key: "" if f.is_secret else forms.form_value(f, record.get(f.key), tz)
                  for f in forms.writable_fields(ctx, current)}
        return _form_page(request, ctx, current, _widgets(ctx, current, values, {}, record),
                          record=record)

    @post("/{record_id:str}/edit", opt=need("update"), name=f"ui_update_{name}",
          status_code=303, **UI)
    async def update(request: Request[Any, Any, Any], ctx: CurrentContext,
                     record_id: FromPath[str]) -> Response[Any]:
        record = await records.get(ctx, name, record_id)
        current = await records.entity_for(ctx, name)
        fields = forms.writable_fields(ctx, current)
        form = await request.form()
        raw = forms.read_form(fields, form, ctx.tenant.timezone)
        version_text = str(form.get("version") or "")
        version = int(version_text) if version_text.isdigit() else None
        shown = {**record, "version": version or record["version"]}
        data = forms.changes(fields, raw, record)
        try:
            if version is not None and version != record["version"]:
                raise Conflict("version_conflict")
            if data:
                await records.update(ctx, name, record["id"], data, version)
        except XindaiError as exc:
            return _failure(request, ctx, current, raw, exc, shown)
        return Redirect(f"{base}/{record['id']}", status_code=303)

    @post("/{record_id:str}/delete", opt=need("delete"), name=f"ui_delete_{name}",
          status_code=303, **UI)
    async def remove(ctx: CurrentContext, record_id: FromPath[str]) -> Response[Any]:
        await records.delete(ctx, name, record_id)
        return Redirect(base, status_code=303)

    writes = [new_form, create, edit_form, update, remove] if entity.generic_writes else []
    return Router(path=base, route_handlers=[
        list_view, *writes, detail, reveal, upload, download, delete_document,
        document_expiry,
    ])
