"""Repayment preview (还款试算): where a payment would go, before anyone posts it.

The cashier sees, per installment and component, what `repayments.post_repayment` would
book and what would be left over (kept as credit, or refused when the product says so),
so a wrong amount or date is caught before money moves. It refuses exactly what posting
refuses, with the same message codes, and reads through `loans.load` and
`allocation.allocate` (the same inputs and the same pure split as posting), inside a
read-only tenant scope: it writes nothing, takes no lock and needs no idempotency key.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from core.access import require
from core.errors import FieldError, ValidationFailed
from core.tenancy import Context, tenant_scope
from plugins.servicing import repayments  # noqa: F401 - registers the repayment messages
from plugins.servicing.allocation import COMPONENTS, Allocation, Due, allocate
from plugins.servicing.loans import _date, fen, load, money, yuan
from plugins.servicing.repayments import CHANNELS

LABELS = {"amount": ("还款金额", "amount"), "paid_on": ("还款日期", "payment date"),
          "channel": ("还款方式", "channel"), "loan": ("贷款", "loan")}


def _error(field: str, code: str, **params: Any) -> FieldError:
    zh, en = LABELS[field]
    return FieldError(field, code, params, {"zh-CN": zh, "en": en})


def _checked_input(ctx: Context, data: dict[str, Any]) -> tuple[int, date, str]:
    """Amount (分), value date and channel, or every refusal of the three at once (a form
    shows each next to its field)."""
    errors: list[FieldError] = []
    amount = 0
    if data.get("amount") in (None, ""):
        errors.append(_error("amount", "required"))
    else:
        try:
            amount = fen(money("amount", data.get("amount")))
        except ValidationFailed as exc:
            errors.extend(_relabel(e) for e in exc.errors)
    channel = data.get("channel") or "transfer"
    if channel not in CHANNELS:
        errors.append(_error("channel", "channel_invalid"))
    business_date = ctx.tenant.business_date
    paid_on = business_date
    try:
        paid_on = _date("paid_on", data.get("paid_on"), business_date)
        if paid_on > business_date:
            errors.append(_error("paid_on", "after_business_date",
                                 business_date=business_date.isoformat()))
    except ValidationFailed as exc:
        errors.extend(_relabel(e) for e in exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return amount, paid_on, str(channel)


def _relabel(error: FieldError) -> FieldError:
    """loans.money/_date label a field by the loan's terms ("贷款金额"); say 还款金额."""
    return _error(error.field, error.code, **error.params) if error.field in LABELS else error


def _due(row: dict[str, Any]) -> Due:
    return Due(row["n"], row["due_on"], {c: row[c] for c in COMPONENTS},
               {c: row[f"{c}_paid"] for c in COMPONENTS})


def split(loan: dict[str, Any], installments: list[dict[str, Any]], amount: int,
          paid_on: date) -> Allocation:
    """The allocation posting would make: the loan's frozen order and mode (pure)."""
    rules = loan["terms"].get("rules", {})
    order = rules.get("allocation", {}).get("order", COMPONENTS)
    mode = rules.get("allocation", {}).get("mode", "period_first")
    return allocate(amount, [_due(i) for i in installments], paid_on, order, mode)


def describe(loan: dict[str, Any], installments: list[dict[str, Any]], result: Allocation,
             amount: int, paid_on: date) -> dict[str, Any]:
    """The allocation in yuan, per installment (and whether it would be settled) and per
    component, with what is left over and what the product does with it (pure)."""
    by_n = {i["n"]: i for i in installments}
    rows = []
    for n in sorted({n for n, _ in result.parts}):
        parts = {c: result.parts.get((n, c), 0) for c in COMPONENTS}
        row = by_n[n]
        settles = all(row[f"{c}_paid"] + parts[c] >= row[c] for c in COMPONENTS)
        rows.append({"n": n, "due_on": row["due_on"].isoformat(),
                     **{c: yuan(v) for c, v in parts.items()},
                     "total": yuan(sum(parts.values())), "settles": settles})
    settled_now = {r["n"] for r in rows if r["settles"]}
    open_after = [i for i in installments if i["settled_on"] is None
                  and i["n"] not in settled_now]
    by_component = result.by_component()
    return {
        "loan_id": str(loan["id"]), "number": loan["number"], "amount": yuan(amount),
        "paid_on": paid_on.isoformat(), "installments": rows,
        "by_component": {c: yuan(by_component.get(c, 0)) for c in COMPONENTS},
        "applied": yuan(result.applied), "left": yuan(result.left),
        "overpayment": loan["terms"].get("rules", {}).get("overpayment", "credit"),
        "credit": yuan(result.left), "settles_loan": not open_after,
    }


async def preview_repayment(ctx: Context, loan_id: uuid.UUID, data: dict[str, Any]
                            ) -> dict[str, Any]:
    """`{"amount", "paid_on"?, "channel"?, "reference"?}` as for posting -> the allocation
    the repayment would get now; raises ValidationFailed where posting would."""
    require(ctx, "loan.repay")
    amount, paid_on, channel = _checked_input(ctx, data)
    async with tenant_scope(ctx, write=False):
        loan, installments = await load(ctx, loan_id)
    if loan["status"] != "active":
        raise ValidationFailed([_error("loan", "loan_not_active", status=loan["status"])])
    if paid_on < loan["disbursed_on"]:
        raise ValidationFailed([_error("paid_on", "before_disbursement",
                                       disbursed_on=loan["disbursed_on"].isoformat())])
    result = split(loan, installments, amount, paid_on)
    if result.left and loan["terms"].get("rules", {}).get("overpayment", "credit") == "refuse":
        raise ValidationFailed([_error("amount", "overpayment_refused",
                                       due=yuan(result.applied))])
    out = describe(loan, installments, result, amount, paid_on)
    out.update(channel=channel, reference=str(data.get("reference") or "")[:100] or None)
    if out["overpayment"] != "refuse":
        out["overpayment"] = "credit"
    return out
