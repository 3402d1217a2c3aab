"""The 进件 screens of the web shell (mounted by `register_pages`):

    GET  /applications                      list: filters status, product, owner (mine)
    GET  /applications/new                  new-application form (`?customer_id=` fills it)
    POST /applications/new/preview          htmx: the schedule and APR from the product
    POST /applications/new                  create the draft, then its page
    GET  /applications/{id}                 summary, checklist, credit report, score,
                                            history, the approvals block
    POST /applications/{id}/submit          submit (credit check and score)
    POST /applications/{id}/resubmit        submit a returned application again
    POST /applications/{id}/credit-check    query the bureau now
    POST /applications/{id}/withdraw        withdraw

Every figure comes from plugins.origination.applications and the `loan_products` provider;
the pages compute nothing themselves.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from core import records
from core.errors import ValidationFailed, XindaiError
from core.identity import user_names
from core.tenancy import Context, tenant_scope
from core.web.context import CurrentContext
from core.web.ui import forms
from core.web.ui.i18n import gettext_for
from core.web.ui.render import local_time, money, render
from plugins.origination import applications, approval_store, approvals, credit
from plugins.origination.entities import STATUSES

UI = {"include_in_schema": False}
READ = {"permission": "application.read"}
CREATE = {"permission": "application.create"}
SUBMIT = {"permission": "application.submit"}
UPDATE = {"permission": "application.update"}
QUERY = {"permission": "credit.query"}
FIELDS = ("customer_id", "product", "amount", "periods", "annual_rate", "purpose",
          "consent_ref")


def status_label(value: str, lang: str) -> str:
    choice = next((c for c in STATUSES if c.value == value), None)
    return (choice.en if lang == "en" else choice.zh) if choice else value


def _errors(exc: XindaiError, lang: str) -> dict[str, str]:
    if isinstance(exc, ValidationFailed):
        out: dict[str, str] = {}
        for e in exc.errors:
            out.setdefault(e.field or "form", e.message(lang))
        return out
    return {"form": exc.message(lang)}


async def _names(ctx: Context, ids: list[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for cid in dict.fromkeys(i for i in ids if i):
        try:
            names[cid] = str((await records.get(ctx, "customer", cid)).get("name") or "")
        except XindaiError:
            continue
    return names


async def _products(ctx: Context) -> list[dict[str, Any]]:
    try:
        return await applications._products(ctx).list(ctx)
    except XindaiError:
        return []


@get("/applications", opt=READ, **UI)
async def list_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    q = request.query_params
    status = q.get("status") or ""
    product = (q.get("product") or "")[:40]
    mine = q.get("owner") == "mine"
    filters: dict[str, str] = {}
    if status in {c.value for c in STATUSES}:
        filters["status"] = status
    if product:
        filters["product"] = product
    if mine and ctx.user_id:
        filters["owner_id"] = ctx.user_id
    page_no = int(q.get("page") or 1) if str(q.get("page") or "1").isdigit() else 1
    page = await records.list_records(ctx, "application", filters, "-created_at",
                                      max(page_no, 1), 50, (q.get("q") or "")[:60] or None)
    names = await _names(ctx, [a["customer_id"] for a in page.items]) \
        if ctx.access.can("customer.read") else {}
    lang = ctx.locale
    products = await _products(ctx)
    product_names = {p["code"]: p["name"] for p in products}
    rows = [{**a, "customer": names.get(a["customer_id"], ""), "amount_text": money(a["amount"]),
             "product_name": product_names.get(a["product"] or "", ""),
             "status_label": status_label(a["status"] or "", lang),
             "created": local_time(a["created_at"], ctx.tenant.timezone)} for a in page.items]
    return render(request, "origination/applications.html", rows=rows, total=page.total,
                  statuses=[(c.value, c.en if lang == "en" else c.zh) for c in STATUSES],
                  products=products, filter_status=status, product=product, mine=mine,
                  may_create=ctx.access.can("application.create"))


async def _form(request: Request[Any, Any, Any], ctx: Context, values: dict[str, Any],
                errors: dict[str, str] | None = None, quote: dict[str, Any] | None = None,
                status: int = 200, partial: bool = False,
                editing: dict[str, Any] | None = None) -> Response[Any]:
    """The new-application form, or (`editing`: the application) its edit form."""
    entity = await records.entity_for(ctx, "application")
    custom = [forms.widget(f, ctx.locale, values.get(f.key, ""), (errors or {}).get(f.key, ""))
              for f in forms.writable_fields(ctx, entity) if f.custom]
    customers = []
    if editing and not partial:  # the application's own customer, who stays
        c = await records.get(ctx, "customer", editing["customer_id"])
        customers = [(c["id"], c.get("name") or c["id"])]
    elif not partial:
        page = await records.list_records(ctx, "customer", None, "-created_at", 1, 200)
        customers = [(c["id"], c.get("name") or c["id"]) for c in page.items]
    return render(request, "origination/_quote.html" if partial
                  else "origination/application_new.html", status=status, values=values,
                  errors=errors or {}, quote=quote, products=await _products(ctx),
                  customers=customers, custom=custom, money=money, editing=editing)


def _values(form: Any, custom_keys: list[str]) -> dict[str, Any]:
    out = {k: str(form.get(k) or "").strip()[:200] for k in (*FIELDS, *custom_keys)}
    return out


async def _custom_keys(ctx: Context) -> list[str]:
    entity = await records.entity_for(ctx, "application")
    return [f.key for f in forms.writable_fields(ctx, entity) if f.custom]


@get("/applications/new", opt=CREATE, **UI)
async def new_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    values = {k: "" for k in FIELDS}
    values["customer_id"] = (request.query_params.get("customer_id") or "")[:40]
    return await _form(request, ctx, values)


@post("/applications/new/preview", opt=CREATE, status_code=200, **UI)
async def new_preview(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    """The live preview: the product's schedule and APR for the figures, or the refusals."""
    values = _values(await request.form(), [])
    partial = request.headers.get("hx-request") == "true"
    try:
        quote = await applications.quote(ctx, values)
    except XindaiError as exc:
        return await _form(request, ctx, values, _errors(exc, ctx.locale), status=422,
                           partial=partial)
    return await _form(request, ctx, values, quote=_with_total(quote), partial=partial)


@post("/applications/new", opt=CREATE, status_code=303, **UI)
async def new_submit(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    form = await request.form()
    values = _values(form, await _custom_keys(ctx))
    data = {k: v for k, v in values.items() if v != ""}
    try:
        app = await applications.create(ctx, data)
    except XindaiError as exc:
        return await _form(request, ctx, values, _errors(exc, ctx.locale), status=422)
    return Redirect(f"/applications/{app['id']}", status_code=303)


def _with_total(quote: dict[str, Any]) -> dict[str, Any]:
    """The quote with what the customer pays back in all (principal, interest, fees)."""
    return {**quote, "total": str(Decimal(quote["total_principal"])
                                  + Decimal(quote["total_interest"])
                                  + Decimal(quote["total_fees"]))}


def _edit_values(app: dict[str, Any], custom_keys: list[str]) -> dict[str, Any]:
    return {k: "" if app.get(k) is None else str(app[k]) for k in (*FIELDS, *custom_keys)}


@get("/applications/{application_id:str}/edit", opt=UPDATE, **UI)
async def edit_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                    application_id: FromPath[str]) -> Response[Any]:
    """A draft, or an application returned for more information, corrected before it is
    (re)submitted: the same form, checks and live preview as a new one."""
    app = await records.get(ctx, "application", application_id)
    if app["status"] not in ("draft", "returned"):
        return Redirect(f"/applications/{app['id']}", status_code=303)
    values = _edit_values(app, await _custom_keys(ctx))
    quote = None
    try:
        quote = _with_total(await applications.quote(ctx, values))
    except XindaiError:
        pass
    return await _form(request, ctx, values, quote=quote, editing=app)


@post("/applications/{application_id:str}/edit", opt=UPDATE, status_code=303, **UI)
async def edit_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                      application_id: FromPath[str]) -> Response[Any]:
    app = await records.get(ctx, "application", application_id)
    values = _values(await request.form(), await _custom_keys(ctx))
    values["customer_id"] = str(app["customer_id"])  # the customer is not changed here
    data = {k: (v if v != "" else None) for k, v in values.items()
            if k != "customer_id" and (v != "" or app.get(k) is not None)}
    try:
        await applications.update(ctx, app["id"], data)
    except XindaiError as exc:
        return await _form(request, ctx, values, _errors(exc, ctx.locale), status=422,
                           editing=app)
    return Redirect(f"/applications/{app['id']}", status_code=303)


async def _detail_page(request: Request[Any, Any, Any], ctx: Context, application_id: str,
                       errors: dict[str, str] | None = None, status: int = 200
                       ) -> Response[Any]:
    detail = await applications.detail(ctx, application_id)
    app = detail["application"]
    lang, tz = ctx.locale, ctx.tenant.timezone
    names = await _names(ctx, [app["customer_id"]]) if ctx.access.can("customer.read") else {}
    entity = await records.entity_for(ctx, "application")
    custom = [(f.label(lang), forms.display(f, app.get(f.key), lang, tz))
              for f in entity.fields if f.custom and f.key in app]
    region = next((forms.display(f, app.get("region"), lang, tz)
                   for f in entity.fields if f.key == "region"), app.get("region") or "")
    product_name = next((p["name"] for p in await _products(ctx)
                         if p["code"] == app["product"]), "")
    _ = gettext_for(lang)
    from plugins.origination.scorecard import CATEGORY, VARIABLES

    score = detail["score"]
    fields = {f.key: f for f in entity.fields}
    try:
        fields = {f.key: f for f in (await records.entity_for(ctx, "customer")).fields} | fields
    except XindaiError:
        pass

    def shown(variable: str, value: Any) -> Any:
        """A category as a person reads it (行业 批发零售, not wholesale_retail)."""
        f = fields.get(variable)
        if value is None or f is None or VARIABLES.get(variable, ("",))[0] != CATEGORY:
            return value
        return forms.display(f, value, lang, tz) or value

    def bin_text(variable: str, label: str) -> str:
        fixed = {"missing": _("missing"), "other": _("any other value"), "none": _("no bin")}
        if label in fixed:
            return fixed[label]
        if VARIABLES.get(variable, ("",))[0] != CATEGORY:
            return label
        return ("、" if lang != "en" else ", ").join(
            str(shown(variable, v)) for v in label.split(", "))

    breakdown = [{**b, "label": (VARIABLES.get(b["variable"], ("", b["variable"],
                                                                b["variable"]))[2 if lang == "en"
                                                                               else 1]),
                  "value": shown(b["variable"], b.get("value")),
                  "bin_text": bin_text(b["variable"], b["bin"])}
                 for b in (score or {}).get("breakdown", [])]
    people = await user_names(ctx, (h["actor"] for h in detail["history"]))
    history = [{**h, "at_text": local_time(h["at"], tz),
                "actor_name": people.get(h["actor"] or "", h["actor_name"]),
                "from_label": status_label(h["from_status"] or "", lang),
                "to_label": status_label(h["to_status"], lang)} for h in detail["history"]]
    check = detail["credit_check"]
    can = ctx.access.can
    st = app["status"]
    items = await approvals.timeline(ctx, "application", app["id"])
    async with tenant_scope(ctx, write=False):
        instances = await approval_store.instances_of(ctx, "application", str(app["id"]))
    return render(
        request, "origination/application.html", status=status, app=app,
        items=items, approval_id=str(instances[-1]["id"]) if instances else None,
        region=region, product_name=product_name,
        customer=names.get(app["customer_id"], ""), amount=money(app["amount"]),
        status_text=status_label(st, lang), checklist=detail["checklist"], check=check,
        check_at=local_time(check["queried_at"], tz) if check else "",
        debt=money((check or {}).get("summary", {}).get("total_debt")),
        score=score, breakdown=breakdown, history=history, custom=custom,
        errors=errors or {}, submitted_at=local_time(app.get("submitted_at"), tz),
        may_submit=can("application.submit") and st == "draft",
        may_resubmit=can("application.submit") and st == "returned",
        may_withdraw=can("application.submit") and st in ("draft", "returned"),
        may_query=can("credit.query") and st in ("draft", "returned"),
        may_upload=can("application.update") and st in ("draft", "returned"),
        may_edit=can("application.update") and st in ("draft", "returned"),
        may_disburse=can("loan.disburse") and st == "ready_to_disburse")


@get("/applications/{application_id:str}", opt=READ, **UI)
async def detail_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                      application_id: FromPath[str]) -> Response[Any]:
    return await _detail_page(request, ctx, application_id)


async def _act(request: Request[Any, Any, Any], ctx: Context, application_id: str,
               action: Any) -> Response[Any]:
    try:
        await action(ctx, application_id)
    except (ValidationFailed, credit.BureauError, applications.StatusConflict) as exc:
        return await _detail_page(request, ctx, application_id,
                                  _errors(exc, ctx.locale), status=exc.status)
    return Redirect(f"/applications/{application_id}", status_code=303)


@post("/applications/{application_id:str}/submit", opt=SUBMIT, status_code=303, **UI)
async def submit_action(request: Request[Any, Any, Any], ctx: CurrentContext,
                        application_id: FromPath[str]) -> Response[Any]:
    return await _act(request, ctx, application_id, applications.submit)


@post("/applications/{application_id:str}/resubmit", opt=SUBMIT, status_code=303, **UI)
async def resubmit_action(request: Request[Any, Any, Any], ctx: CurrentContext,
                          application_id: FromPath[str]) -> Response[Any]:
    return await _act(request, ctx, application_id, applications.resubmit)


@post("/applications/{application_id:str}/withdraw", opt=SUBMIT, status_code=303, **UI)
async def withdraw_action(request: Request[Any, Any, Any], ctx: CurrentContext,
                          application_id: FromPath[str]) -> Response[Any]:
    return await _act(request, ctx, application_id, applications.withdraw)


@post("/applications/{application_id:str}/credit-check", opt=QUERY, status_code=303, **UI)
async def credit_action(request: Request[Any, Any, Any], ctx: CurrentContext,
                        application_id: FromPath[str]) -> Response[Any]:
    return await _act(request, ctx, application_id, credit.check)


APPLICATION_PAGES = [list_page, new_page, new_preview, new_submit, edit_page, edit_submit,
                     detail_page, submit_action,
                     resubmit_action, withdraw_action, credit_action]
