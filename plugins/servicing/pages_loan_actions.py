"""The loan page's other money movements (mounted by `register_pages` beside LOAN_PAGES):

    POST /servicing/loans/{id}/prepayment/preview  htmx: the prepayment's split and new
                                                   schedule (prepayment.quote), nothing written
    POST /servicing/loans/{id}/prepayment          confirm: post the previewed prepayment once
    POST /servicing/loans/{id}/reschedule          new rate and/or extra periods, with a reason
    POST /servicing/loans/{id}/write-off           write the loan off, with a reason
    POST /servicing/loans/{id}/recovery            money received for a written-off loan

The same safety as the repayment form (plugins.servicing.pages_loan): each form carries a
one-time token that is the key of the kernel's idempotency store (`_once`), so a double
click acts once and both requests land on the same page; a refusal frees the token and
comes back next to its field in the person's language. A prepayment is confirmed only with
the figures previewed: the confirmation posts inside the token's transaction and compares
the split it got (and the schedule version) with the one shown, and anything different is
rolled back and sent back as a new preview.

`context` gives `render_loan` what these panels show (permissions, forms, refusals, the
product's limits, the amount a write-off would take off the book).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any

from litestar import Request, Response, post
from litestar.params import FromPath
from litestar.response import Redirect

from core import idempotency as idem
from core.errors import FieldError, ValidationFailed
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from core.web.context import CurrentContext
from core.web.ui.i18n import N_, gettext_for
from core.web.ui.render import render
from plugins.servicing import ledger, loans, prepayment, products, reschedule, writeoff
from plugins.servicing.pages import money
from plugins.servicing.pages_loan import (
    EXPIRED,
    UI,
    _is_htmx,
    _labels,
    _once,
    _usable_token,
    _uuid,
    render_loan,
)

REPAY = {"permission": "loan.repay"}
PREPAY_FIELDS = ("amount", "full", "paid_on", "channel", "reference", "mode")
SPLIT = ("paid_on", "amount", "full", "mode", "credit_used", "due", "accrued_interest",
         "prepayment_fee", "principal", "credit", "schedule_version", "periods")
RESCHEDULE_FIELDS = ("annual_rate", "extra_periods", "reason")
RECOVERY_FIELDS = ("amount", "paid_on", "channel", "reference")
MODES = {"reduce_term": N_("Reduce the term"),
         "reduce_installment": N_("Reduce the installment")}
BOOK = {ledger.LOANS: N_("Principal"), ledger.INTEREST_RECEIVABLE: N_("Interest receivable"),
        ledger.FEE_RECEIVABLE: N_("Fees receivable"),
        ledger.PENALTY_RECEIVABLE: N_("Penalty and compound interest receivable")}
DONE = {"prepaid": N_("The prepayment was posted; the schedule below is its new version."),
        "settled": N_("The loan was paid off in full and is settled."),
        "rescheduled": N_("The loan was rescheduled; the schedule below is its new version."),
        "written_off": N_("The loan was written off."),
        "recovered": N_("The recovery was posted.")}

register_messages({
    "prepay_preview_stale": {
        "zh-CN": "试算之后金额、日期、方式或贷款情况有改动：请核对下面新的试算结果，再确认提前还款",
        "en": "the figures or the loan changed after the preview: check the new split below "
              "and confirm again"},
})


def _field_errors(exc: ValidationFailed, lang: str, fields: tuple[str, ...]) -> dict[str, str]:
    """Messages by form field; problems of the loan as a whole under `form`."""
    out: dict[str, str] = {}
    for e in exc.errors:
        out.setdefault(e.field if e.field in fields else "form", e.message(lang))
    return out


def _required(name: str, zh: str, en: str) -> ValidationFailed:
    return ValidationFailed([FieldError(name, "required", {}, {"zh-CN": zh, "en": en})])


async def _form(request: Request[Any, Any, Any], fields: tuple[str, ...],
                limit: int = 100) -> dict[str, str]:
    form = await request.form()
    values = {k: str(form.get(k) or "").strip()[:limit] for k in fields}
    values["form_token"] = str(form.get("form_token") or "")[:255]
    values["previewed"] = str(form.get("previewed") or "")[:64]
    return values


def _expired(ctx: Context) -> dict[str, str]:
    return {"form": gettext_for(ctx.locale)(EXPIRED)}


def _token() -> str:
    return secrets.token_urlsafe(24)


# --- what the panels show -----------------------------------------------------------------

async def _terms(ctx: Context, loan_id: uuid.UUID, with_product: bool
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The loan's frozen prepayment rules and (for a reschedule) its product's limits."""
    async with tenant_scope(ctx, write=False):
        row, _ = await loans.load(ctx, loan_id)
    rules = row["terms"].get("rules", {}).get("prepayment", {})
    config = (await products.product_by_id(ctx, row["product_id"]))["config"] \
        if with_product else {}
    if products.is_daily(config):  # the reschedule form takes an annual rate
        config = {**config, **{k: str(products.to_annual(config, Decimal(config[k])))
                               for k in ("rate_min", "rate_max")}}
    return rules, config


def _rules_view(rules: dict[str, Any]) -> dict[str, Any]:
    return {"mode": rules.get("mode", "reduce_term"),
            "fee_percent": rules.get("fee_percent", "0"),
            "after_periods": rules.get("after_periods", 0)}


def blank_prepayment(ctx: Context, mode: str) -> dict[str, str]:
    return {"amount": "", "full": "", "paid_on": ctx.tenant.business_date.isoformat(),
            "channel": "transfer", "reference": "", "mode": mode, "form_token": _token(),
            "previewed": ""}


async def context(ctx: Context, loan: dict[str, Any], forms: dict[str, Any]) -> dict[str, Any]:
    """What the prepayment, reschedule, write-off and recovery panels need; `forms` carries
    what a refused or previewed form shows again (its keys are taken out of it)."""
    active, written_off = loan["status"] == "active", loan["status"] == "written_off"
    can = ctx.access.can
    out: dict[str, Any] = {
        "may_prepay": active and can("loan.repay"),
        "may_reschedule": active and can("loan.reschedule"),
        "may_write_off": active and can("loan.write_off"),
        "may_recover": written_off and can("loan.repay"), "written_off": written_off,
        "modes": {k: gettext_for(ctx.locale)(v) for k, v in MODES.items()}}
    loan_id = uuid.UUID(loan["id"])
    rules: dict[str, Any] = {}
    config: dict[str, Any] = {}
    if out["may_prepay"] or out["may_reschedule"]:
        rules, config = await _terms(ctx, loan_id, out["may_reschedule"])
    out.update(
        prepay_rules=_rules_view(rules) if out["may_prepay"] else None,
        prepay=forms.pop("prepay", None)
        or blank_prepayment(ctx, rules.get("mode", "reduce_term")),
        prepay_errors=forms.pop("prepay_errors", {}), prepay_open=False,
        prepay_preview=forms.pop("prepay_preview", None),
        product_limits=config,
        resched=forms.pop("resched", None) or {"annual_rate": "", "extra_periods": "",
                                                "reason": "", "form_token": _token()},
        resched_errors=forms.pop("resched_errors", {}),
        writeoff_reason=forms.pop("writeoff_reason", ""),
        writeoff_errors=forms.pop("writeoff_errors", {}), writeoff_token=_token(),
        recovery=forms.pop("recovery", None) or {
            "amount": "", "paid_on": ctx.tenant.business_date.isoformat(),
            "channel": "transfer", "reference": "", "form_token": _token()},
        recovery_errors=forms.pop("recovery_errors", {}))
    panels = {"prepay_errors": out["may_prepay"], "resched_errors": out["may_reschedule"],
              "writeoff_errors": out["may_write_off"], "recovery_errors": out["may_recover"]}
    # a form sent from a page that is out of date (the loan settled or written off since)
    # is refused by the service; its panel is gone, so the refusal stands at the top
    out["action_refusal"] = next((message for key, shown in panels.items() if not shown
                                  for message in out[key].values()), "")
    if out["may_write_off"]:
        book = await ledger.balances(ctx, loan_id)
        total = writeoff.write_off_lines(book)[1]
        gettext = gettext_for(ctx.locale)
        out["writeoff_book"] = [(gettext(label), loans.yuan(book.get(a, 0)))
                                for a, label in BOOK.items()]
        out["writeoff_total"] = loans.yuan(total)
    if written_off:
        owed = sum(Decimal(v) for v in loan["outstanding"].values())
        written = [t for t in loan["transactions"] if t["kind"] == "write_off"]
        out["still_owed"] = str(owed)
        out["written_off_amount"] = written[-1]["amount"] if written else ""
        out["written_off_reason"] = written[-1]["reference"] if written else ""
    return out


# --- prepayment ---------------------------------------------------------------------------

def _prepay_data(values: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {k: values[k] for k in ("paid_on", "channel", "reference", "mode")}
    if values["full"]:
        data["full"] = True
    elif not values["amount"]:  # the service reads a missing amount as "pay it all off"
        raise _required("amount", *prepayment.LABELS["amount"])
    else:
        data["amount"] = values["amount"]
    return data


def _prepay_signature(values: dict[str, str], split: dict[str, Any]) -> str:
    """The figures typed and the split shown, so a confirmation of anything else is caught."""
    shown = [values[k] for k in PREPAY_FIELDS] + [split.get(k) for k in SPLIT]
    return hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode()
                          ).hexdigest()[:32]


async def _prepay_values(request: Request[Any, Any, Any]) -> dict[str, str]:
    values = await _form(request, PREPAY_FIELDS)
    values["full"] = "1" if values["full"] else ""
    return values


async def _quote(ctx: Context, loan_id: uuid.UUID, values: dict[str, str]
                 ) -> dict[str, Any]:
    return await prepayment.quote(ctx, loan_id, _prepay_data(values))


async def _prepayment_form(request: Request[Any, Any, Any], ctx: Context,
                           loan_id: uuid.UUID, values: dict[str, str],
                           errors: dict[str, str], preview: dict[str, Any] | None,
                           status: int) -> Response[Any]:
    """htmx gets the prepayment panel alone; a plain form post gets the whole page."""
    values = {**values, "previewed": _prepay_signature(values, preview) if preview else ""}
    if _is_htmx(request):
        gettext = gettext_for(ctx.locale)
        rules, _ = await _terms(ctx, loan_id, False)
        return render(request, "servicing/_prepayment.html", status=status,
                      loan={"id": str(loan_id)}, prepay=values, prepay_errors=errors,
                      prepay_preview=preview, prepay_open=True, money=money,
                      prepay_rules=_rules_view(rules),
                      modes={k: gettext(v) for k, v in MODES.items()},
                      business_date=ctx.tenant.business_date.isoformat(),
                      **_labels(ctx.locale))
    return await render_loan(request, ctx, loan_id, status=status, prepay=values,
                             prepay_errors=errors, prepay_preview=preview)


@post("/servicing/loans/{loan_id:str}/prepayment/preview", opt=REPAY, status_code=200, **UI)
async def prepayment_preview(request: Request[Any, Any, Any], ctx: CurrentContext,
                             loan_id: FromPath[str]) -> Response[Any]:
    """The split and the new schedule a prepayment would make; nothing is written."""
    wanted = _uuid(loan_id)
    values = await _prepay_values(request)
    try:
        shown = await _quote(ctx, wanted, values)
    except ValidationFailed as exc:
        return await _prepayment_form(request, ctx, wanted, values,
                                      _field_errors(exc, ctx.locale, PREPAY_FIELDS), None, 422)
    return await _prepayment_form(request, ctx, wanted, values, {}, shown, 200)


@post("/servicing/loans/{loan_id:str}/prepayment", opt=REPAY, status_code=303, **UI)
async def prepayment_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                            loan_id: FromPath[str]) -> Response[Any]:
    """Post the previewed prepayment once per form (the token is the idempotency key)."""
    wanted = _uuid(loan_id)
    values = await _prepay_values(request)
    if not _usable_token(values["form_token"]):
        values["form_token"] = _token()
        return await _prepayment_form(request, ctx, wanted, values, _expired(ctx), None, 422)

    async def act() -> str:
        data = _prepay_data(values)
        if not values["previewed"]:
            await prepayment.quote(ctx, wanted, data)  # refusals by field, first
            raise ValidationFailed([FieldError("form", "prepay_preview_stale")])
        after = await prepayment.prepay(ctx, wanted, data)
        got = {**after["prepayment"], "schedule_version": after["schedule_version"],
               "periods": after["periods"]}
        if _prepay_signature(values, got) != values["previewed"]:  # rolled back with the rest
            raise ValidationFailed([FieldError("form", "prepay_preview_stale")])
        done = "settled" if after["status"] == "settled" else "prepaid"
        return f"/servicing/loans/{wanted}?done={done}#schedule"

    try:
        body = {k: values[k] for k in (*PREPAY_FIELDS, "previewed")}
        location = await _once(ctx, "ui-prepay", values["form_token"],
                               f"/servicing/loans/{wanted}/prepayment", body, act)
    except idem.KeyReused:
        values["form_token"] = _token()
        return await _prepayment_form(request, ctx, wanted, values, _expired(ctx), None, 422)
    except ValidationFailed as exc:
        errors = _field_errors(exc, ctx.locale, PREPAY_FIELDS)
        shown = None
        if set(errors) == {"form"}:  # the figures are fine: show what they would do now
            try:
                shown = await _quote(ctx, wanted, values)
            except ValidationFailed:
                shown = None
        return await _prepayment_form(request, ctx, wanted, values, errors, shown, 422)
    return Redirect(location, status_code=303)


# --- reschedule ---------------------------------------------------------------------------

@post("/servicing/loans/{loan_id:str}/reschedule", opt={"permission": "loan.reschedule"},
      status_code=303, **UI)
async def reschedule_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                            loan_id: FromPath[str]) -> Response[Any]:
    """A new annual rate and/or extra periods for the principal not yet due, once per form."""
    wanted = _uuid(loan_id)
    values = await _form(request, RESCHEDULE_FIELDS, 200)

    def again(errors: dict[str, str]) -> Awaitable[Response[Any]]:
        return render_loan(request, ctx, wanted, status=422, resched=values,
                           resched_errors=errors)

    if not _usable_token(values["form_token"]):
        values["form_token"] = _token()
        return await again(_expired(ctx))
    data = {k: values[k] for k in RESCHEDULE_FIELDS}

    async def act() -> str:
        await reschedule.reschedule(ctx, wanted, data)
        return f"/servicing/loans/{wanted}?done=rescheduled#schedule"

    try:
        location = await _once(ctx, "ui-reschedule", values["form_token"],
                               f"/servicing/loans/{wanted}/reschedule", data, act)
    except idem.KeyReused:
        values["form_token"] = _token()
        return await again(_expired(ctx))
    except ValidationFailed as exc:
        return await again(_field_errors(exc, ctx.locale, RESCHEDULE_FIELDS))
    return Redirect(location, status_code=303)


# --- write-off and recovery ---------------------------------------------------------------

@post("/servicing/loans/{loan_id:str}/write-off", opt={"permission": "loan.write_off"},
      status_code=303, **UI)
async def write_off_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                           loan_id: FromPath[str]) -> Response[Any]:
    """Write the loan off with a reason, once per form."""
    wanted = _uuid(loan_id)
    values = await _form(request, ("reason",), 200)

    def again(errors: dict[str, str]) -> Awaitable[Response[Any]]:
        return render_loan(request, ctx, wanted, status=422, writeoff_reason=values["reason"],
                           writeoff_errors=errors)

    if not _usable_token(values["form_token"]):
        return await again(_expired(ctx))
    data = {"reason": values["reason"]}

    async def act() -> str:
        await writeoff.write_off(ctx, wanted, data)
        return f"/servicing/loans/{wanted}?done=written_off#written-off"

    try:
        location = await _once(ctx, "ui-write-off", values["form_token"],
                               f"/servicing/loans/{wanted}/write-off", data, act)
    except idem.KeyReused:
        return await again(_expired(ctx))
    except ValidationFailed as exc:
        return await again(_field_errors(exc, ctx.locale, ("reason",)))
    return Redirect(location, status_code=303)


@post("/servicing/loans/{loan_id:str}/recovery", opt=REPAY, status_code=303, **UI)
async def recovery_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                          loan_id: FromPath[str]) -> Response[Any]:
    """Money received for a written-off loan, once per form."""
    wanted = _uuid(loan_id)
    values = await _form(request, RECOVERY_FIELDS)

    def again(errors: dict[str, str]) -> Awaitable[Response[Any]]:
        return render_loan(request, ctx, wanted, status=422, recovery=values,
                           recovery_errors=errors)

    if not _usable_token(values["form_token"]):
        values["form_token"] = _token()
        return await again(_expired(ctx))
    data = {k: values[k] for k in RECOVERY_FIELDS}

    async def act() -> str:
        await writeoff.recover(ctx, wanted, data)
        return f"/servicing/loans/{wanted}?done=recovered#transactions"

    try:
        location = await _once(ctx, "ui-recover", values["form_token"],
                               f"/servicing/loans/{wanted}/recovery", data, act)
    except idem.KeyReused:
        values["form_token"] = _token()
        return await again(_expired(ctx))
    except ValidationFailed as exc:
        return await again(_field_errors(exc, ctx.locale, RECOVERY_FIELDS))
    return Redirect(location, status_code=303)


LOAN_ACTION_PAGES = [prepayment_preview, prepayment_submit, reschedule_submit,
                     write_off_submit, recovery_submit]
