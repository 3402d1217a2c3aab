"""The loan page and what a cashier does on it (mounted by `register_pages`):

    GET  /servicing/loans/{id}                            terms, balances, schedule, payments
    POST /servicing/loans/{id}/repayment/preview          htmx: the allocation, nothing written
    POST /servicing/loans/{id}/repayment                  confirm: post the repayment once
    POST /servicing/loans/{id}/transactions/{t}/reversal  reverse a repayment once, with a reason
    GET  /servicing/loans/{id}/payoff?on=                 htmx: the payoff quote for a date
    POST /servicing/loans/{id}/classification             override the classification (reason)

Money moves only after the person has seen where it goes: the repayment form shows the
allocation (plugins.servicing.preview, the same split and refusals as posting) and the
confirm button comes with it; a confirmation whose figures differ from the ones previewed
is sent back with the new allocation. As on the disbursement form, each form carries a
one-time token that is the key of the kernel's idempotency store, so a double click posts
once and both requests land on the same page. Statements download from the API
(`GET /api/v1/loans/{id}/statement`), which a signed-in browser may read.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from core import idempotency as idem
from core.errors import FieldError, NotFound, ValidationFailed
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from core.web.context import CurrentContext
from core.web.ui.i18n import N_, gettext_for
from core.web.ui.render import render
from plugins.servicing import classification, loans, payoff, repayments
from plugins.servicing import preview as previews
from plugins.servicing.pages import (
    CLASSIFICATIONS,
    TRANSACTIONS,
    _customer_names,
    _label,
    _status,
    money,
)
from plugins.servicing.tables import LoanTransaction

UI = {"include_in_schema": False}
LOANS = {"permission": "loan.read"}
REPAY = {"permission": "loan.repay"}
REPAY_FIELDS = ("amount", "paid_on", "channel", "reference")
CHANNELS = {"transfer": N_("Bank transfer"), "cash": N_("Cash")}
COMPONENTS = {"fees": N_("Fees"), "penalty": N_("Penalty interest"),
              "compound": N_("Compound interest"), "interest": N_("Interest"),
              "principal": N_("Principal")}
DONE = {"repaid": N_("The repayment was posted."),
        "classified": N_("The classification was changed."),
        "reversed": N_("The repayment was reversed; later repayments were allocated again.")}
EXPIRED = N_("The form has expired; check the figures and confirm again.")

register_messages({
    "preview_stale": {"zh-CN": "试算之后金额、日期或方式有改动：请核对下面新的试算结果，再确认还款",
                      "en": "the figures changed after the preview: check the new allocation "
                            "below and confirm again"},
})
REASON = {"zh-CN": "冲正原因", "en": "reason"}


def _uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound() from None


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def _errors(exc: ValidationFailed, lang: str) -> dict[str, str]:
    """Messages by form field; problems of the loan or transaction as a whole under `form`."""
    out: dict[str, str] = {}
    for e in exc.errors:
        key = e.field if e.field in (*REPAY_FIELDS, "reason", "on") else "form"
        out.setdefault(key, e.message(lang))
    return out


def _signature(values: dict[str, str]) -> str:
    """What the preview showed, so a confirmation of other figures can be caught."""
    return hashlib.sha256(json.dumps([values[k] for k in REPAY_FIELDS]).encode()).hexdigest()[:32]


def _blank_repayment(ctx: Context) -> dict[str, str]:
    return {"amount": "", "paid_on": ctx.tenant.business_date.isoformat(),
            "channel": "transfer", "reference": "", "form_token": secrets.token_urlsafe(24),
            "previewed": ""}


async def _repayment_values(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    values = {k: str(form.get(k) or "").strip()[:100] for k in REPAY_FIELDS}
    values["form_token"] = str(form.get("form_token") or "")[:255]
    values["previewed"] = str(form.get("previewed") or "")[:64]
    return values


async def _repayment_states(ctx: Context, loan_id: uuid.UUID) -> tuple[set[str], set[str]]:
    """(repayments that may still be reversed, repayments already reversed) of a loan the
    caller has just read: the loan view does not say which repayment a reversal undid."""
    async with tenant_scope(ctx, write=False):
        rows = await LoanTransaction.select(
            LoanTransaction.id, LoanTransaction.kind, LoanTransaction.reversed_by).where(
            LoanTransaction.tenant_id == ctx.tenant_id,
            LoanTransaction.loan_id == loan_id).run()
    standing = {str(r["id"]) for r in rows if r["kind"] == "repayment" and not r["reversed_by"]}
    undone = {str(r["id"]) for r in rows if r["kind"] == "repayment" and r["reversed_by"]}
    return standing, undone


async def _payoff(ctx: Context, loan_id: uuid.UUID, raw: str
                  ) -> tuple[dict[str, Any] | None, dict[str, str]]:
    try:
        on = loans._date("on", raw, ctx.tenant.business_date)
        return await payoff.payoff(ctx, loan_id, on), {}
    except ValidationFailed as exc:
        return None, _errors(exc, ctx.locale)


def _labels(lang: str) -> dict[str, Any]:
    _ = gettext_for(lang)
    return {"channels": {k: _(v) for k, v in CHANNELS.items()},
            "components": {k: _(v) for k, v in COMPONENTS.items()}}


async def render_loan(request: Request[Any, Any, Any], ctx: Context, loan_id: uuid.UUID,
                      status: int = 200, **forms: Any) -> Response[Any]:
    """The whole loan page; `forms` carries what a refused or previewed form shows again
    (repay, repay_errors, preview, payoff_on, payoff, payoff_errors, reversal,
    reversal_reason, reversal_errors; those of pages_loan_actions.context)."""
    from plugins.servicing import pages_loan_actions as actions  # it imports this module

    loan = await loans.get_loan(ctx, loan_id)
    names = await _customer_names(ctx, [loan["customer_id"]]) \
        if ctx.access.can("customer.read") else {}
    active = loan["status"] == "active"
    may_repay = ctx.access.can("loan.repay")
    standing, undone = await _repayment_states(ctx, loan_id)
    labels = _labels(ctx.locale)
    transactions = [{
        **t, "kind_label": _label(TRANSACTIONS, t["kind"], ctx.locale),
        "channel_label": labels["channels"].get(t["channel"] or "", t["channel"] or ""),
        "reversible": may_repay and active and t["id"] in standing, "reversed": t["id"] in undone,
        "token": secrets.token_urlsafe(24)} for t in loan["transactions"]]
    payoff_on = forms.pop("payoff_on", None) or ctx.tenant.business_date.isoformat()
    if "payoff" not in forms and active:
        forms["payoff"], forms["payoff_errors"] = await _payoff(ctx, loan_id, payoff_on)
    done = request.query_params.get("done") or ""
    done_messages = {**DONE, **actions.DONE}
    more = await actions.context(ctx, loan, forms)
    history = await classification.history(ctx, loan_id)
    for h in history:
        h["old_label"] = _label(CLASSIFICATIONS, h["old"] or "", ctx.locale) if h["old"] else ""
        h["new_label"] = _label(CLASSIFICATIONS, h["new"], ctx.locale)
    return render(
        request, "servicing/loan.html", status=status, loan=loan, quote=None,
        customer=names.get(loan["customer_id"], ""), money=money,
        status_label=_status(loan["status"], ctx.locale),
        classification_label=_label(CLASSIFICATIONS, loan["classification"], ctx.locale),
        transactions=transactions, created=request.query_params.get("new") == "1",
        done=gettext_for(ctx.locale)(done_messages[done]) if done in done_messages else "",
        may_repay=may_repay and active, active=active, **labels,
        business_date=ctx.tenant.business_date.isoformat(),
        repay=forms.pop("repay", None) or _blank_repayment(ctx),
        repay_errors=forms.pop("repay_errors", {}), preview=forms.pop("preview", None),
        payoff_on=payoff_on, payoff=forms.pop("payoff", None),
        payoff_errors=forms.pop("payoff_errors", {}), reversal=forms.pop("reversal", ""),
        reversal_reason=forms.pop("reversal_reason", ""),
        reversal_errors=forms.pop("reversal_errors", {}),
        classification_history=history, may_classify=ctx.access.can("loan.classify"),
        floor_label=_label(CLASSIFICATIONS, loan["classification_floor"], ctx.locale),
        classes=[(c, _label(CLASSIFICATIONS, c, ctx.locale)) for c in CLASSIFICATIONS],
        classify=forms.pop("classify", {}), classify_errors=forms.pop("classify_errors", {}),
        **more)


@get("/servicing/loans/{loan_id:str}", opt=LOANS, **UI)
async def loan_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                    loan_id: FromPath[str]) -> Response[Any]:
    return await render_loan(request, ctx, _uuid(loan_id))


# --- repayment ----------------------------------------------------------------------------

async def _repayment_form(request: Request[Any, Any, Any], ctx: Context, loan_id: uuid.UUID,
                          values: dict[str, str], errors: dict[str, str],
                          preview: dict[str, Any] | None, status: int) -> Response[Any]:
    """htmx gets the repayment panel alone (errors next to their fields); a plain form
    post gets the whole page."""
    if preview is not None:
        values = {**values, "previewed": _signature(values)}
    if _is_htmx(request):
        return render(request, "servicing/_repayment.html", status=status,
                      loan={"id": str(loan_id)},
                      repay=values, repay_errors=errors, preview=preview, money=money,
                      business_date=ctx.tenant.business_date.isoformat(),
                      **_labels(ctx.locale))
    return await render_loan(request, ctx, loan_id, status=status, repay=values,
                             repay_errors=errors, preview=preview)


@post("/servicing/loans/{loan_id:str}/repayment/preview", opt=REPAY, status_code=200, **UI)
async def repayment_preview(request: Request[Any, Any, Any], ctx: CurrentContext,
                            loan_id: FromPath[str]) -> Response[Any]:
    """Where the payment would go; nothing is written."""
    wanted = _uuid(loan_id)
    values = await _repayment_values(request)
    try:
        shown = await previews.preview_repayment(ctx, wanted, values)
    except ValidationFailed as exc:
        return await _repayment_form(request, ctx, wanted, values, _errors(exc, ctx.locale),
                                     None, 422)
    return await _repayment_form(request, ctx, wanted, values, {}, shown, 200)


async def _once(ctx: Context, scope: str, token: str, path: str, values: dict[str, str],
                act: Callable[[], Awaitable[str]]) -> str:
    """Run `act` (which answers the page to go to) once per form token: a repeat of the
    same form goes where the first went. A refusal frees the token for corrected figures."""
    body = json.dumps(values, sort_keys=True).encode()
    fp = hashlib.sha256(b"POST\n" + path.encode() + b"\n" + body).hexdigest()
    outcome = await idem.begin(ctx, f"{scope}:{token}", "POST", path, fp)
    if isinstance(outcome, idem.Answer):
        return dict((k.lower(), v) for k, v in outcome.headers).get("location", path)
    try:
        async with tenant_scope(ctx):
            location = await act()
            await idem.complete(ctx, outcome, idem.Answer(303, [("location", location)], b""))
    except BaseException:
        await idem.release(ctx, outcome)
        raise
    return location


def _usable_token(token: str) -> bool:
    return bool(token) and bool(idem.KEY_RE.fullmatch(token))


@post("/servicing/loans/{loan_id:str}/repayment", opt=REPAY, status_code=303, **UI)
async def repayment_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                           loan_id: FromPath[str]) -> Response[Any]:
    """Post the previewed repayment once per form (the token is the idempotency key)."""
    wanted = _uuid(loan_id)
    values = await _repayment_values(request)
    data = {k: values[k] for k in REPAY_FIELDS}
    expired = {"form": gettext_for(ctx.locale)(EXPIRED)}
    if not _usable_token(values["form_token"]):
        values["form_token"] = secrets.token_urlsafe(24)
        return await _repayment_form(request, ctx, wanted, values, expired, None, 422)

    async def act() -> str:
        await previews.preview_repayment(ctx, wanted, data)  # refusals by field, first
        if values["previewed"] != _signature(values):
            raise ValidationFailed([FieldError("form", "preview_stale")])
        await repayments.post_repayment(ctx, wanted, data)
        return f"/servicing/loans/{wanted}?done=repaid#transactions"

    try:
        location = await _once(ctx, "ui-repay", values["form_token"],
                               f"/servicing/loans/{wanted}/repayment", data, act)
    except idem.KeyReused:
        values["form_token"] = secrets.token_urlsafe(24)
        return await _repayment_form(request, ctx, wanted, values, expired, None, 422)
    except ValidationFailed as exc:
        errors = _errors(exc, ctx.locale)
        shown = None
        if set(errors) == {"form"}:  # the figures are fine: show where they would go now
            try:
                shown = await previews.preview_repayment(ctx, wanted, data)
            except ValidationFailed:
                shown = None
        return await _repayment_form(request, ctx, wanted, values, errors, shown, 422)
    return Redirect(location, status_code=303)


# --- reversal -----------------------------------------------------------------------------

@post("/servicing/loans/{loan_id:str}/transactions/{transaction_id:str}/reversal", opt=REPAY,
      status_code=303, **UI)
async def reversal_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                          loan_id: FromPath[str], transaction_id: FromPath[str]
                          ) -> Response[Any]:
    """Reverse one repayment of this loan, with a reason, once per form."""
    wanted, txn = _uuid(loan_id), _uuid(transaction_id)
    form = await request.form()
    reason = str(form.get("reason") or "").strip()[:100]
    token = str(form.get("form_token") or "")[:255]

    def again(errors: dict[str, str]) -> Awaitable[Response[Any]]:
        return render_loan(request, ctx, wanted, status=422, reversal=str(txn),
                           reversal_reason=reason, reversal_errors=errors)

    expired = {"form": gettext_for(ctx.locale)(EXPIRED)}
    if not _usable_token(token):
        return await again(expired)
    if not reason:
        return await again({"reason": FieldError("reason", "required", {}, REASON)
                            .message(ctx.locale)})

    async def act() -> str:
        loan = await loans.get_loan(ctx, wanted)
        if str(txn) not in {t["id"] for t in loan["transactions"]}:
            raise NotFound()
        await repayments.reverse_repayment(ctx, txn, reason)
        return f"/servicing/loans/{wanted}?done=reversed#transactions"

    try:
        location = await _once(ctx, "ui-reverse", token,
                               f"/servicing/loans/{wanted}/transactions/{txn}/reversal",
                               {"reason": reason}, act)
    except idem.KeyReused:
        return await again(expired)
    except ValidationFailed as exc:
        return await again(_errors(exc, ctx.locale))
    return Redirect(location, status_code=303)


# --- payoff -------------------------------------------------------------------------------

@get("/servicing/loans/{loan_id:str}/payoff", opt=LOANS, **UI)
async def payoff_panel(request: Request[Any, Any, Any], ctx: CurrentContext,
                       loan_id: FromPath[str]) -> Response[Any]:
    """The payoff quote for `?on=` (the business date when empty); nothing is written."""
    wanted = _uuid(loan_id)
    on = (request.query_params.get("on") or "").strip()[:20]
    quote, errors = await _payoff(ctx, wanted, on)
    status = 422 if errors else 200
    if _is_htmx(request):
        return render(request, "servicing/_payoff.html", status=status,
                      loan={"id": str(wanted)},
                      payoff=quote, payoff_errors=errors, money=money,
                      payoff_on=on or ctx.tenant.business_date.isoformat(),
                      **_labels(ctx.locale))
    return await render_loan(request, ctx, wanted, status=status, payoff_on=on,
                             payoff=quote, payoff_errors=errors)




# --- classification -----------------------------------------------------------------------

@post("/servicing/loans/{loan_id:str}/classification", opt={"permission": "loan.classify"},
      status_code=303, **UI)
async def classification_submit(request: Request[Any, Any, Any], ctx: CurrentContext,
                                loan_id: FromPath[str]) -> Response[Any]:
    """Set or clear the manual classification; refusals come back next to their fields."""
    target = _uuid(loan_id)
    form = await request.form()
    values = {"classification": str(form.get("classification") or ""),
              "reason": str(form.get("reason") or "")}
    try:
        await classification.override(ctx, target, values["classification"] or None,
                                      values["reason"])
    except ValidationFailed as exc:
        return await render_loan(request, ctx, target, status=422, classify=values,
                                 classify_errors=_errors(exc, ctx.locale))
    return Redirect(f"/servicing/loans/{target}?done=classified#classification",
                    status_code=303)


LOAN_PAGES = [loan_page, repayment_preview, repayment_submit, reversal_submit, payoff_panel,
              classification_submit]
"""The money movements beyond a repayment (prepayment, reschedule, write-off, recovery)
are in plugins.servicing.pages_loan_actions (LOAN_ACTION_PAGES)."""
