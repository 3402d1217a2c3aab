"""The servicing screens of the web shell (mounted by `register_pages`):

    GET  /servicing/products                 贷款产品: code, name, method, ranges, active
    GET  /servicing/products/{code}          one product with a live schedule preview
    POST /servicing/products/{code}/preview  htmx: the quoted schedule and its APR
    GET  /servicing/loans                    贷款: the loans the user may see (object rules)
    GET  /servicing/loans/{id}               one loan (plugins.servicing.pages_loan, with the
                                             repayment, reversal and payoff forms)
    GET  /servicing/disburse                 放款 form (loan.disburse); `?customer_id=` fills it
    POST /servicing/disburse/quote           htmx: the quote shown before confirming
    POST /servicing/disburse                 confirm: loans.disburse, then the loan page

Every figure comes from plugins.servicing (products.quote, loans.*): the pages compute no
money themselves. The confirm form carries a one-time token used as the key of the kernel's
idempotency store (core.idempotency), so a double click or a re-sent form disburses once
and the second request is sent to the same loan.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from decimal import Decimal
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from core import idempotency as idem
from core import records
from core.errors import FieldError, NotFound, ValidationFailed, XindaiError
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from core.web.context import CurrentContext
from core.web.ui.i18n import N_, gettext_for
from core.web.ui.render import money, render
from plugins.servicing import loans, products
from plugins.servicing.response import to_contract

UI = {"include_in_schema": False}
PRODUCTS = {"permission": "product.read"}
LOANS = {"permission": "loan.read"}
DISBURSE = {"permission": "loan.disburse"}
FORM_FIELDS = ("customer_id", "product", "amount", "periods", "annual_rate", "application_id")

METHODS = {
    "equal_installment": N_("Equal instalments"),
    "equal_principal": N_("Equal principal"),
    "interest_only": N_("Interest only, principal at the end"),
    "bullet": N_("Principal and interest at maturity"),
    "flat": N_("Flat rate"),
}
STATUSES = {"active": N_("Active"), "settled": N_("Settled"),
            "written_off": N_("Written off")}
TRANSACTIONS = {"disbursement": N_("Disbursement"), "repayment": N_("Repayment"),
                "reversal": N_("Reversal"), "prepayment": N_("Prepayment"),
                "write_off": N_("Write-off"), "recovery": N_("Recovery")}
CLASSIFICATIONS = {"normal": N_("Normal"), "attention": N_("Special mention"),
                   "substandard": N_("Substandard"), "doubtful": N_("Doubtful"),
                   "loss": N_("Loss")}


register_messages({
    "customer_unknown": {"zh-CN": "找不到编号为 {got} 的客户（或无权查看）",
                         "en": "no customer {got} (or not one you may see)"},
})
FIELD_LABELS = {"customer_id": ("客户", "customer"), "product": ("贷款产品", "loan product")}


def _field_error(field: str, code: str, **params: Any) -> FieldError:
    zh, en = FIELD_LABELS[field]
    return FieldError(field, code, params, {"zh-CN": zh, "en": en})


def _errors(exc: ValidationFailed, lang: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in exc.errors:
        out.setdefault(e.field, e.message(lang))
    return out


def _form(form: Any, keys: tuple[str, ...]) -> dict[str, str]:
    return {k: str(form.get(k) or "").strip()[:100] for k in keys}


def _quote(product: dict[str, Any], ctx: Context, values: dict[str, str]) -> dict[str, Any]:
    """The schedule contract for the form's amount/periods/rate (refused input raises)."""
    rate = None if values.get("annual_rate") in (None, "") else loans.money(
        "annual_rate", values["annual_rate"])
    schedule = products.quote(product["config"], loans.money("amount", values.get("amount")),
                              loans._int("periods", values.get("periods")), rate,
                              ctx.tenant.business_date)
    out = to_contract(schedule)
    out["annual_rate"] = str(schedule.terms.annual_rate)
    out.update(products.rate_view(product["config"], schedule.terms.annual_rate))
    out["total"] = str(Decimal(out["total_principal"]) + Decimal(out["total_interest"])
                       + Decimal(out["total_fees"]))
    return out


def _product_row(p: dict[str, Any], lang: str) -> dict[str, Any]:
    _ = gettext_for(lang)
    c = p["config"]
    method = c.get("method", "")
    return {"code": p["code"], "name": p["name"], "active": p["active"],
            "version": p["version"], "method": _(METHODS[method]) if method in METHODS
            else method, "amount_min": money(c["amount_min"]),
            "amount_max": money(c["amount_max"]), "term_min": c["term_min"],
            "term_max": c["term_max"], "rate_min": c["rate_min"], "rate_max": c["rate_max"],
            "rate_default": c["rate_default"], "fees": c.get("fees") or [],
            "rate_quote": c.get("rate_quote") or "annual"}


def _defaults(product: dict[str, Any]) -> dict[str, str]:
    """The preview's first figures: 100,000 (or the nearest end of the range), the
    shortest term of at least 12 periods, the default rate."""
    c = product["config"]
    amount = min(max(Decimal("100000"), Decimal(c["amount_min"])), Decimal(c["amount_max"]))
    periods = min(max(12, int(c["term_min"])), int(c["term_max"]))
    return {"amount": str(amount.quantize(Decimal(1))) if amount == amount.to_integral()
            else str(amount), "periods": str(periods), "annual_rate": c["rate_default"]}


# --- products -----------------------------------------------------------------------------

@get("/servicing/products", opt=PRODUCTS, **UI)
async def products_page(request: Request[Any, Any, Any], ctx: CurrentContext
                        ) -> Response[Any]:
    rows = [_product_row(p, ctx.locale) for p in await products.list_products(ctx)]
    return render(request, "servicing/products.html", products=rows,
                  may_disburse=ctx.access.can("loan.disburse"),
                  may_manage=ctx.access.can("product.manage"))


async def _product_page(request: Request[Any, Any, Any], ctx: Context, code: str,
                        values: dict[str, str] | None = None, status: int = 200
                        ) -> Response[Any]:
    product = await products.get_product(ctx, code)
    values = values or _defaults(product)
    quote, errors = None, {}
    try:
        quote = _quote(product, ctx, values)
    except ValidationFailed as exc:
        errors, status = _errors(exc, ctx.locale), 422
    partial = request.headers.get("hx-request") == "true"
    return render(request, "servicing/_quote.html" if partial else "servicing/product.html",
                  status=status, product=_product_row(product, ctx.locale), values=values,
                  quote=quote, errors=errors, money=money,
                  may_disburse=ctx.access.can("loan.disburse"),
                  may_manage=ctx.access.can("product.manage"),
                  saved=(request.query_params.get("saved") or "")[:10],
                  business_date=ctx.tenant.business_date.isoformat())


@get("/servicing/products/{code:str}", opt=PRODUCTS, **UI)
async def product_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                       code: FromPath[str]) -> Response[Any]:
    return await _product_page(request, ctx, code)


@post("/servicing/products/{code:str}/preview", opt=PRODUCTS, status_code=200, **UI)
async def product_preview(request: Request[Any, Any, Any], ctx: CurrentContext,
                          code: FromPath[str]) -> Response[Any]:
    """The live preview: htmx swaps in the schedule; without htmx, the whole page."""
    values = _form(await request.form(), ("amount", "periods", "annual_rate"))
    return await _product_page(request, ctx, code, values)


# --- loans --------------------------------------------------------------------------------

async def _customer_names(ctx: Context, ids: list[str]) -> dict[str, str]:
    """Each customer's name as this user may see it (masked by field policy where so)."""
    names: dict[str, str] = {}
    for cid in dict.fromkeys(ids):
        try:
            record = await records.get(ctx, "customer", cid)
        except XindaiError:
            continue
        names[cid] = str(record.get("name") or "")
    return names


def _label(labels: dict[str, str], value: str, lang: str) -> str:
    """The translated label of a code; the code itself if it has none."""
    msgid = labels.get(value)
    return gettext_for(lang)(msgid) if msgid else value


def _status(value: str, lang: str) -> str:
    return _label(STATUSES, value, lang)


@get("/servicing/loans", opt=LOANS, **UI)
async def loans_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    status = request.query_params.get("status") or ""
    status = status if status in STATUSES else ""
    rows = await loans.list_loans(ctx, None, status or None)
    names = await _customer_names(ctx, [r["customer_id"] for r in rows]) \
        if ctx.access.can("customer.read") else {}
    items = [{**r, "customer": names.get(r["customer_id"], ""), "amount": money(r["amount"]),
              "status_label": _status(r["status"], ctx.locale)} for r in rows]
    _ = gettext_for(ctx.locale)
    filters = [("", _("All"))] + [(k, _(v)) for k, v in STATUSES.items()]
    return render(request, "servicing/loans.html", loans=items, filter_status=status,
                  filters=filters, may_disburse=ctx.access.can("loan.disburse"))


# --- disbursement -------------------------------------------------------------------------

async def _disburse_form(request: Request[Any, Any, Any], ctx: Context,
                         values: dict[str, str], errors: dict[str, str] | None = None,
                         quote: dict[str, Any] | None = None, status: int = 200,
                         partial: bool = False) -> Response[Any]:
    offered = [_product_row(p, ctx.locale) for p in await products.list_products(ctx)
               if p["active"]]
    customer = ""
    if values.get("customer_id"):
        found = await _customer_names(ctx, [values["customer_id"]]) \
            if _is_uuid(values["customer_id"]) else {}
        customer = found.get(values["customer_id"], "")
    return render(request, "servicing/_disburse_quote.html" if partial
                  else "servicing/disburse.html", status=status, values=values,
                  errors=errors or {}, quote=quote, products=offered, customer=customer,
                  money=money, business_date=ctx.tenant.business_date.isoformat())


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@get("/servicing/disburse", opt=DISBURSE, **UI)
async def disburse_page(request: Request[Any, Any, Any], ctx: CurrentContext
                        ) -> Response[Any]:
    q = request.query_params
    values = {"customer_id": (q.get("customer_id") or "").strip()[:100],
              "product": (q.get("product") or "").strip()[:40], "amount": "", "periods": "",
              "annual_rate": "", "application_id": (q.get("application") or "").strip()[:40],
              "form_token": secrets.token_urlsafe(24)}
    if not values["application_id"]:
        return await _disburse_form(request, ctx, values)
    try:  # the approved terms are fixed: the schedule to confirm is shown at once
        quote = await _checked_quote(ctx, values)
    except ValidationFailed as exc:
        return await _disburse_form(request, ctx, values, _errors(exc, ctx.locale),
                                    status=422)
    return await _disburse_form(request, ctx, values, quote=quote)


async def _with_application(ctx: Context, values: dict[str, str]) -> dict[str, str]:
    """A disbursement for an application takes the application's approved terms."""
    if not values.get("application_id"):
        return values
    return {**values, **await loans.application_terms(ctx, values["application_id"])}


async def _checked_quote(ctx: Context, values: dict[str, str]) -> dict[str, Any]:
    """Everything disbursement would refuse, refused now: application, customer, product,
    ranges. `values` takes an application's terms in place."""
    values.update(await _with_application(ctx, values))
    errors = []
    if not values["customer_id"]:
        errors.append(_field_error("customer_id", "required"))
    elif not _is_uuid(values["customer_id"]) or not await _customer_names(
            ctx, [values["customer_id"]]):
        errors.append(_field_error("customer_id", "customer_unknown",
                                   got=values["customer_id"]))
    try:
        product = await products.get_product(ctx, values["product"])
    except NotFound:
        errors.append(_field_error("product", "required"))
        raise ValidationFailed(errors) from None
    try:
        quote = _quote(product, ctx, values)
    except ValidationFailed as exc:
        raise ValidationFailed([*errors, *exc.errors]) from None
    if errors:
        raise ValidationFailed(errors)
    return quote


@post("/servicing/disburse/quote", opt=DISBURSE, status_code=200, **UI)
async def disburse_quote(request: Request[Any, Any, Any], ctx: CurrentContext
                         ) -> Response[Any]:
    form = await request.form()
    values = {**_form(form, FORM_FIELDS), "form_token": str(form.get("form_token") or "")}
    partial = request.headers.get("hx-request") == "true"
    try:
        quote = await _checked_quote(ctx, values)
    except ValidationFailed as exc:
        return await _disburse_form(request, ctx, values, _errors(exc, ctx.locale),
                                    status=422, partial=partial)
    return await _disburse_form(request, ctx, values, quote=quote, partial=partial)


@post("/servicing/disburse", opt=DISBURSE, status_code=303, **UI)
async def disburse_submit(request: Request[Any, Any, Any], ctx: CurrentContext
                          ) -> Response[Any]:
    """Disburse once per form: the form's token is the idempotency key, so the second of
    two identical submissions waits for the first and goes to the same loan."""
    form = await request.form()
    values = {**_form(form, FORM_FIELDS), "form_token": str(form.get("form_token") or "")}
    token = values["form_token"]
    if not token or not idem.KEY_RE.fullmatch(token):
        values["form_token"] = secrets.token_urlsafe(24)
        return await _disburse_form(request, ctx, values, status=422, errors={
            "form": gettext_for(ctx.locale)("The form has expired; check the figures and "
                                            "confirm again.")})
    try:
        await _checked_quote(ctx, values)  # the same refusals, by field, as the preview
    except ValidationFailed as exc:
        return await _disburse_form(request, ctx, values, _errors(exc, ctx.locale),
                                    status=422)
    path = "/servicing/disburse"
    body = json.dumps({k: values[k] for k in FORM_FIELDS}, sort_keys=True).encode()
    fp = hashlib.sha256(b"POST\n" + path.encode() + b"\n" + body).hexdigest()
    outcome = await idem.begin(ctx, "ui-disburse:" + token, "POST", path, fp)
    if isinstance(outcome, idem.Answer):  # already done: go where the first one went
        location = dict((k.lower(), v) for k, v in outcome.headers).get("location",
                                                                         "/servicing/loans")
        return Redirect(location, status_code=303)
    try:
        async with tenant_scope(ctx):
            loan = await loans.disburse(ctx, {k: values[k] for k in FORM_FIELDS})
            location = f"/servicing/loans/{loan['id']}?new=1"
            await idem.complete(ctx, outcome, idem.Answer(303, [("location", location)], b""))
    except ValidationFailed as exc:
        await idem.release(ctx, outcome)  # corrected figures may be sent with the same form
        return await _disburse_form(request, ctx, values, _errors(exc, ctx.locale),
                                    status=422)
    except BaseException:
        await idem.release(ctx, outcome)
        raise
    return Redirect(location, status_code=303)


PAGES = [products_page, product_page, product_preview, loans_page, disburse_page,
         disburse_quote, disburse_submit]
