"""Reschedule (展期 / 利率变更): new terms for what has not fallen due yet.

Installments due by the business date stay as they are (what was paid of them, their
penalty; overdue amounts remain overdue: a reschedule is not a way to cure arrears without
a payment). The principal not yet due is planned again, in a new schedule version, from
the start of the running period (the last due date, or the disbursement) to the next due
date and on: with a new annual rate (within the product's range, effective for the whole
running period, whose interest accrued so far is trued up by the accrual refresh), with
`extra_periods` more periods on the loan's own due-date grid (the whole term within the
product's term_max), or both. The old version is kept as history. The penalty rate follows
the new rate (the product's multiplier, frozen at disbursement).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from core import audit
from core.access import require
from core.errors import FieldError, ValidationFailed
from core.events import emit
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.servicing import accrual, guards, replan
from plugins.servicing.loans import _int, get_loan, load, money
from plugins.servicing.products import product_by_id, range_errors
from plugins.servicing.tables import Loan

register_messages({
    "reschedule_nothing": {"zh-CN": "请给出新的年利率（annual_rate）或展期期数（extra_periods）",
                           "en": "give a new annual_rate or extra_periods"},
    "reschedule_term_max": {
        "zh-CN": "{label}过多：展期后共 {periods} 期，超过产品上限 {max} 期",
        "en": "{label} too many: {periods} periods in all would exceed the product's "
              "maximum of {max}"},
    "reschedule_none_ahead": {
        "zh-CN": "所有还款期均已到期，没有可以重新安排的本金",
        "en": "every installment has fallen due: there is no principal ahead to reschedule"},
})
LABELS = {"extra_periods": ("展期期数", "extra periods"), "reason": ("原因", "reason"),
          "annual_rate": ("年利率", "annual rate"), "loan": ("贷款", "loan")}


def _error(name: str, code: str, **params: Any) -> FieldError:
    zh, en = LABELS.get(name, (name, name))
    return FieldError(name, code, params, {"zh-CN": zh, "en": en})


def _parse(data: dict[str, Any]) -> tuple[Decimal | None, int, str]:
    reason = str(data.get("reason") or "").strip()
    if not reason:
        raise ValidationFailed([_error("reason", "required")])
    rate = None if data.get("annual_rate") in (None, "") else money("annual_rate",
                                                                     data["annual_rate"])
    extra = 0 if data.get("extra_periods") in (None, "") else _int("extra_periods",
                                                                   data["extra_periods"])
    if rate is None and not extra:
        raise ValidationFailed([_error("loan", "reschedule_nothing")])
    return rate, extra, reason[:200]


def make_rows(loan: dict[str, Any], installments: list[dict[str, Any]], on: date,
              extra: int) -> list[dict[str, Any]]:
    """The new version (pure): the due installments copied, the rest re-planned. `loan`
    carries the new annual rate."""
    due = [i for i in installments if i["due_on"] <= on]
    ahead = [i for i in installments if i["due_on"] > on]
    if not ahead:
        raise ValidationFailed([_error("loan", "reschedule_none_ahead")])
    start = max((i["due_on"] for i in due), default=loan["disbursed_on"])
    principal = sum(i["principal"] - i["principal_paid"] for i in ahead)
    if replan.frozen_terms(loan).method == "bullet":
        dates = [replan.bullet_maturity(loan, loan["periods"] + extra)]
    else:
        dates = [i["due_on"] for i in ahead]
        dates += replan.grid(loan, dates[-1], extra) if extra else []
    rows = [replan.copy(i) for i in sorted(due, key=lambda i: i["n"])]
    return rows + replan.plan(loan, principal, start, dates, len(rows) + 1)


async def reschedule(ctx: Context, loan_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """`{"annual_rate"?, "extra_periods"?, "reason"}` -> the loan with its new schedule."""
    require(ctx, "loan.reschedule")
    rate, extra, reason = _parse(data)
    on = ctx.tenant.business_date
    async with tenant_scope(ctx):
        loan, installments = await load(ctx, loan_id, lock=True)
        guards.refuse_status(loan, "reschedule")
        product = await product_by_id(ctx, loan["product_id"])
        config = product["config"]
        errors = range_errors(config, rate=rate)
        periods = loan["periods"] + extra
        if extra and periods > int(config["term_max"]):
            errors.append(_error("extra_periods", "reschedule_term_max", periods=periods,
                                 max=config["term_max"]))
        if errors:
            raise ValidationFailed(errors)
        guards.refuse_behind(loan, on)
        replan.refuse_in_grace(loan, on)
        old_rate = loan["annual_rate"]
        new_rate = str(rate) if rate is not None else old_rate
        rows = make_rows({**loan, "annual_rate": new_rate}, installments, on, extra)
        loan["annual_rate"] = new_rate
        version = await replan.write_version(ctx, loan, rows)
        day_count = loan["terms"]["request"].get("day_count", "actual/360")
        penalty = accrual.penalty_columns(Decimal(new_rate), loan["terms"].get("rules", {}),
                                          day_count)
        await Loan.update({Loan.annual_rate: new_rate, Loan.periods: periods,
                           Loan.version: loan["version"] + 1,
                           **{getattr(Loan, k): v for k, v in penalty.items()}}).where(
            Loan.tenant_id == ctx.tenant_id, Loan.id == loan_id).run()
        await audit.append(ctx, "loan.reschedule", "loan", loan_id, {
            "old_rate": old_rate, "annual_rate": new_rate, "extra_periods": extra,
            "periods": periods, "schedule_version": version, "reason": reason,
            "effective_from": on.isoformat()})
        await emit(ctx, "loan.rescheduled", {"loan_id": str(loan_id), "annual_rate": new_rate,
                                             "extra_periods": extra,
                                             "schedule_version": version})
    return await get_loan(ctx, loan_id)
