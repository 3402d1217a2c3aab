"""The contracts screens (the 合同 menu):

    GET  /contracts                          the list, filtered by status
    POST /contracts/generate                 生成合同 for an approved application id
    GET  /contracts/{id}                     details, history, PDFs, verification, actions
    POST /contracts/{id}/send                send for signing (local: a one-time code)
    GET  /contracts/{id}/sign                the in-person signing page (local)
    POST /contracts/{id}/sign                the borrower confirms (name, code, consent)
    POST /contracts/{id}/lender-sign         the lender signs
    POST /contracts/{id}/verify              verify the signatures, shown on the page
    POST /contracts/{id}/cancel              作废
    GET  /contracts/templates                templates per product and the e-signature settings
    GET  /contracts/templates/{product}      the editor (POST saves; refusals by the textarea)
    POST /contracts/templates/preview        the unsaved template rendered with sample data
    POST /contracts/esign-settings           local or remote signing

Pages run no script of their own; PDFs open inline in a new tab (the shell forbids frames).
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from core import records
from core.access import allows
from core.errors import ValidationFailed, XindaiError
from core.web.context import CurrentContext
from core.web.ui.i18n import N_, gettext_for
from core.web.ui.render import money, render
from plugins.contracts import esign, library, service
from plugins.contracts import render as pdf_render
from plugins.contracts.api import callback_base
from plugins.contracts.templates import (
    ROW_FIELDS,
    VARIABLES,
    check_template,
    sample_data,
)

READ = {"permission": "contract.read"}
SIGN = {"permission": "contract.sign"}
GENERATE = {"permission": "contract.generate"}
MANAGE = {"permission": "contract.template.manage"}
STATUS_FILTERS = (("", N_("All")), ("generated", N_("Generated")),
                  ("sent", N_("Out for signing")), ("borrower_signed", N_("Borrower signed")),
                  ("signed", N_("Signed")), ("cancelled", N_("Cancelled")),
                  ("expired", N_("Expired")))
ACTIONS = {"generate": N_("Generated"), "send": N_("Sent for signing"),
           "borrower_sign": N_("Borrower signed"), "sign": N_("Lender signed"),
           "cancel": N_("Cancelled"), "callback": N_("E-signature callback")}
SIGNERS = {pdf_render.BORROWER_FIELD: N_("Borrower"), pdf_render.LENDER_FIELD: N_("Lender")}
WHICH = (("unsigned", N_("Unsigned PDF")), ("partial", N_("Signed by the borrower (PDF)")),
         ("signed", N_("Signed PDF")))


def status_label(status: str, lang: str) -> str:
    zh, en = service.STATUS_LABELS.get(status, (status, status))
    return en if lang == "en" else zh


def _errors(exc: ValidationFailed, lang: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in exc.errors:
        out.setdefault(e.field, e.message(lang))
    return out


@get("/contracts", opt=READ, include_in_schema=False)
async def contracts_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                         status: FromQuery[str | None] = None) -> Response[Any]:
    _ = gettext_for(ctx.locale)
    chosen = status if status in service.STATUSES else None
    items, total = await service.list_contracts(ctx, chosen, 1, 200)
    for c in items:
        c["status_label"] = status_label(c["status"], ctx.locale)
    return render(request, "contracts/list.html", contracts=items, total=total,
                  filter_status=chosen or "",
                  filters=[(v, _(label)) for v, label in STATUS_FILTERS],
                  may_generate=allows(ctx, "contract.generate"), generate_error=None,
                  application_id="")


@post("/contracts/generate", opt=GENERATE, include_in_schema=False)
async def generate_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    form = await request.form()
    try:
        contract = await service.generate(ctx, str(form.get("application_id") or "").strip())
    except (ValidationFailed, XindaiError) as exc:
        message = (next(iter(_errors(exc, ctx.locale).values()))
                   if isinstance(exc, ValidationFailed) else exc.message(ctx.locale))
        _ = gettext_for(ctx.locale)
        items, total = await service.list_contracts(ctx, None, 1, 200)
        for c in items:
            c["status_label"] = status_label(c["status"], ctx.locale)
        return render(request, "contracts/list.html", status=422, contracts=items, total=total,
                      filter_status="", filters=[(v, _(lb)) for v, lb in STATUS_FILTERS],
                      may_generate=True, generate_error=message,
                      application_id=str(form.get("application_id") or "")[:60])
    return Redirect(f"/contracts/{contract['id']}")


async def _detail(request: Request[Any, Any, Any], ctx: CurrentContext, contract_id: UUID,
                  status: int = 200, **extra: Any) -> Response[Any]:
    _ = gettext_for(ctx.locale)
    contract = await service.get_contract(ctx, contract_id)
    history = await service.contract_history(ctx, contract_id)
    for h in history:
        h["to_label"] = status_label(h["to"], ctx.locale) if h["to"] else ""
        known = ACTIONS.get(h["action"])
        h["action_label"] = _(known) if known else h["action"]
    try:  # the officer's own customer: the name as their role may see it
        customer = (await records.get(ctx, "customer", contract["customer_id"])).get("name") \
            if contract.get("customer_id") else None
    except XindaiError:
        customer = None
    docs = [(which, _(label)) for which, label in WHICH
            if contract[service.DOCUMENT_FIELDS[which]]]
    config = await esign.get_config(ctx)
    extra = {"refusal": None, "signer_url": None, "verification": None, **extra}
    return render(request, "contracts/contract.html", status=status, contract=contract,
                  status_label=status_label(contract["status"], ctx.locale), history=history,
                  documents=docs, provider=config["provider"],
                  may_sign=allows(ctx, "contract.sign"),
                  may_generate=allows(ctx, "contract.generate"), customer=customer,
                  amount=money(contract["amount"]),
                  signers={k: _(v) for k, v in SIGNERS.items()}, **extra)


@get("/contracts/{contract_id:uuid}", opt=READ, include_in_schema=False)
async def contract_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                        contract_id: FromPath[UUID]) -> Response[Any]:
    return await _detail(request, ctx, contract_id)


def _refusal(exc: XindaiError, lang: str) -> str:
    if isinstance(exc, ValidationFailed):
        return "；".join(_errors(exc, lang).values()) if lang != "en" else \
            "; ".join(_errors(exc, lang).values())
    return exc.message(lang)


@post("/contracts/{contract_id:uuid}/send", opt=SIGN, include_in_schema=False)
async def send_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                    contract_id: FromPath[UUID]) -> Response[Any]:
    try:
        started = await esign.start_signing(ctx, contract_id, callback_base(request))
    except XindaiError as exc:
        return await _detail(request, ctx, contract_id, 409, refusal=_refusal(exc, ctx.locale))
    if started["provider"] == "local":
        return await _sign_page(request, ctx, contract_id, shown_code=started["shown_code"],
                                code_sent=True)
    return await _detail(request, ctx, contract_id, signer_url=started["signer_url"])


async def _sign_page(request: Request[Any, Any, Any], ctx: CurrentContext, contract_id: UUID,
                     status: int = 200, **extra: Any) -> Response[Any]:
    contract = await service.get_contract(ctx, contract_id)
    extra = {"shown_code": None, "code_sent": False, "borrower_name": "", **extra}
    return render(request, "contracts/sign.html", status=status, contract=contract,
                  status_label=status_label(contract["status"], ctx.locale),
                  errors=extra.pop("errors", {}), **extra)


@get("/contracts/{contract_id:uuid}/sign", opt=SIGN, include_in_schema=False)
async def sign_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                    contract_id: FromPath[UUID]) -> Response[Any]:
    return await _sign_page(request, ctx, contract_id)


@post("/contracts/{contract_id:uuid}/sign", opt=SIGN, include_in_schema=False)
async def sign_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                      contract_id: FromPath[UUID]) -> Response[Any]:
    form = await request.form()
    name = str(form.get("borrower_name") or "")[:60]
    try:
        await esign.borrower_confirm(ctx, contract_id, name, str(form.get("code") or "")[:12],
                                     form.get("agreed") == "yes")
    except ValidationFailed as exc:
        return await _sign_page(request, ctx, contract_id, 422, errors=_errors(exc, ctx.locale),
                                borrower_name=name)
    except XindaiError as exc:
        return await _detail(request, ctx, contract_id, 409, refusal=_refusal(exc, ctx.locale))
    return Redirect(f"/contracts/{contract_id}?done=borrower")


@post("/contracts/{contract_id:uuid}/lender-sign", opt=SIGN, include_in_schema=False)
async def lender_sign_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                           contract_id: FromPath[UUID]) -> Response[Any]:
    try:
        await esign.lender_sign(ctx, contract_id)
    except XindaiError as exc:
        return await _detail(request, ctx, contract_id, 409, refusal=_refusal(exc, ctx.locale))
    return Redirect(f"/contracts/{contract_id}?done=signed")


@post("/contracts/{contract_id:uuid}/verify", opt=READ, include_in_schema=False)
async def verify_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                      contract_id: FromPath[UUID]) -> Response[Any]:
    result = await service.verify(ctx, contract_id)
    return await _detail(request, ctx, contract_id, verification=result)


@post("/contracts/{contract_id:uuid}/cancel", opt=GENERATE, include_in_schema=False)
async def cancel_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                      contract_id: FromPath[UUID]) -> Response[Any]:
    form = await request.form()
    try:
        await service.cancel(ctx, contract_id, str(form.get("reason") or "")[:200])
    except XindaiError as exc:
        return await _detail(request, ctx, contract_id, 409, refusal=_refusal(exc, ctx.locale))
    return Redirect(f"/contracts/{contract_id}")


# --- templates ----------------------------------------------------------------------------

def _variables(lang: str) -> list[tuple[str, str]]:
    pick = 1 if lang == "en" else 0
    return [(k, v[pick]) for k, v in VARIABLES.items()]


def _row_fields(lang: str) -> list[tuple[str, str]]:
    pick = 1 if lang == "en" else 0
    return [(k, v[pick]) for k, v in ROW_FIELDS.items()]


@get("/contracts/templates", opt=MANAGE, include_in_schema=False)
async def templates_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    return render(request, "contracts/templates.html",
                  templates=await library.list_templates(ctx),
                  config=await esign.get_config(ctx), config_errors={})


@get("/contracts/templates/{product:str}", opt=MANAGE, include_in_schema=False)
async def template_edit(request: Request[Any, Any, Any], ctx: CurrentContext,
                        product: FromPath[str]) -> Response[Any]:
    current = await library.template_for(ctx, product)
    body = current["body"]
    return _editor(request, ctx, product, body, current["name"] if current["product"] == product
                   else "", current if current["product"] == product else None)


def _editor(request: Request[Any, Any, Any], ctx: CurrentContext, product: str, body: str,
            name: str, current: dict[str, Any] | None, status: int = 200,
            errors: list[str] | None = None, saved: bool = False) -> Response[Any]:
    return render(request, "contracts/template_edit.html", status=status, product=product,
                  body=body, name=name, current=current, errors=errors or [], saved=saved,
                  variables=_variables(ctx.locale), row_fields=_row_fields(ctx.locale))


@post("/contracts/templates/{product:str}", opt=MANAGE, include_in_schema=False)
async def template_save(request: Request[Any, Any, Any], ctx: CurrentContext,
                        product: FromPath[str]) -> Response[Any]:
    form = await request.form()
    body, name = str(form.get("body") or ""), str(form.get("name") or "")[:200]
    try:
        saved = await library.save_template(ctx, product, body, name)
    except ValidationFailed as exc:
        return _editor(request, ctx, product, body, name, None, 422,
                       [e.message(ctx.locale) for e in exc.errors])
    return _editor(request, ctx, product, saved["body"], saved["name"], saved, saved=True)


@post("/contracts/templates/preview", opt=MANAGE, include_in_schema=False)
async def template_preview(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    form = await request.form()
    body = str(form.get("body") or "")
    try:
        check_template(body)
    except ValidationFailed as exc:
        return _editor(request, ctx, str(form.get("product") or "*")[:40], body,
                       str(form.get("name") or "")[:200], None, 422,
                       [e.message(ctx.locale) for e in exc.errors])
    pdf = await asyncio.to_thread(pdf_render.render_pdf, body, sample_data())
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": 'inline; filename="preview.pdf"',
                             "Cache-Control": "no-store"})


@post("/contracts/esign-settings", opt=MANAGE, include_in_schema=False)
async def esign_settings(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    form = await request.form()
    try:
        await esign.save_config(ctx, str(form.get("provider") or "local"),
                                str(form.get("base_url") or "")[:300],
                                str(form.get("app_id") or "")[:100],
                                str(form.get("secret") or "") or None)
    except XindaiError as exc:
        return render(request, "contracts/templates.html", status=422,
                      templates=await library.list_templates(ctx),
                      config={**await esign.get_config(ctx), **{
                          k: str(form.get(k) or "") for k in ("provider", "base_url", "app_id")}},
                      config_errors={"form": _refusal(exc, ctx.locale)})
    return Redirect("/contracts/templates?saved=1")


PAGES = [contracts_page, generate_page, templates_page, template_preview, esign_settings,
         template_edit, template_save, contract_page, send_page, sign_page, sign_submit,
         lender_sign_page, verify_page, cancel_page]
