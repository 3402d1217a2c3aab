"""Prepayment (提前还款): paying principal before it falls due, in part or in full.

A prepayment on `paid_on` pays, in this order: everything due by then (by the product's
allocation order), the interest of the running period accrued by days to `paid_on` (as the
payoff quote computes it), the product's prepayment fee on the principal prepaid (credited
to 6021 directly: it is earned when charged), then principal. The customer's credit
(2241, from earlier overpayments) is used first, which is why the payoff quote is net of it.

It always writes a new schedule version, so the installments keep telling what was owed and
paid: the installments already due are copied (with what was paid of them and their
penalty), the interrupted period ends as an installment due on `paid_on` whose interest is
the accrued interest just paid and whose principal is the principal prepaid (settled), and
for a partial prepayment the remaining principal is re-planned from `paid_on` on the loan's
own due dates (plugins.servicing.replan): `reduce_term` keeps about the installment and
shortens the term, `reduce_installment` keeps the number of periods and lowers the
installment. Paying the payoff total settles the loan; more than that follows the product's
overpayment rule.

The entry: Dr 1002 the amount (and Dr 2241 the credit used); Cr 1303 the principal,
Cr 1133 penalty and compound, Cr 1132/1221 interest and fees up to the receivable (Cr
6011/6021 any part not accrued yet), Cr 6021 the fee, Cr 2241 what is kept as credit. The
accrual refresh of the new version posts its own true-up (normally nothing).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from core import audit
from core.access import require
from core.errors import FieldError, ValidationFailed
from core.events import emit
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.servicing import guards, ledger, replan
from plugins.servicing.allocation import COMPONENTS, allocate
from plugins.servicing.loans import get_loan, load, yuan
from plugins.servicing.payoff import quote_payoff
from plugins.servicing.repayments import _due, _lines_of, _recognise, channel_and_date
from plugins.servicing.tables import Loan, LoanTransaction

MODES = ("reduce_term", "reduce_installment")

register_messages({
    "prepay_not_allowed": {
        "zh-CN": "本产品须还满 {periods} 期后才能提前还款（目前已到期 {done} 期）",
        "en": "this product allows prepayment only after {periods} periods ({done} so far)"},
    "prepay_too_small": {
        "zh-CN": "{label}不足以提前还本：须超过当前应还 {due} 元与当期应计利息 {accrued} 元之和"
                 "（另加提前还款手续费）",
        "en": "{label} does not reach principal: it must exceed the {due} yuan due plus the "
              "{accrued} yuan of interest accrued (and the prepayment fee)"},
    "prepay_overpaid": {
        "zh-CN": "{label}超过提前结清所需的 {total} 元，本产品不接受多缴",
        "en": "{label} exceeds the {total} yuan that settles the loan; this product refuses "
              "overpayments"},
    "prepay_mode": {"zh-CN": "{label}只能是 reduce_term（缩短期限）或 reduce_installment（减少每期还款额）",
                    "en": "{label} must be reduce_term or reduce_installment"},
    "prepay_due_passed": {
        "zh-CN": "{label}不能早于已经到期的还款日 {due_on}",
        "en": "{label} cannot be before {due_on}, a due date that has passed since"},
    "prepay_before_last": {
        "zh-CN": "{label}不能早于该贷款最近一笔交易的日期 {value_date}",
        "en": "{label} cannot be before the loan's latest transaction on {value_date}"},
})
LABELS = {"amount": ("提前还款金额", "amount"), "paid_on": ("还款日期", "payment date"),
          "channel": ("还款方式", "channel"), "mode": ("提前还款方式", "prepayment mode"),
          "full": ("全部结清", "full"), "loan": ("贷款", "loan")}


def _error(name: str, code: str, **params: Any) -> FieldError:
    zh, en = LABELS.get(name, (name, name))
    return FieldError(name, code, params, {"zh-CN": zh, "en": en})


@dataclass
class Plan:
    """What a prepayment does, in 分: the split and the new schedule version."""

    amount: int
    credit_used: int
    due_parts: dict[tuple[int, str], int]
    accrued: int
    principal: int
    fee: int
    credit: int
    full: bool
    mode: str
    paid_on: date
    rows: list[dict[str, Any]] = field(default_factory=list)
    periods: int = 0
    running_n: int = 0  # the interrupted period's installment in the new version

    def parts(self) -> dict[tuple[int, str], int]:
        out = dict(self.due_parts)
        if self.accrued:
            out[(self.running_n, "interest")] = self.accrued
        if self.principal:
            out[(self.running_n, "principal")] = self.principal
        return out


@dataclass(frozen=True)
class Request:
    """A checked prepayment request (amount None: the payoff total)."""

    amount: int | None
    paid_on: date
    channel: str
    mode: str | None
    reference: str | None


def parse(ctx: Context, data: dict[str, Any]) -> Request:
    """Check the body without the database: amount, full, date, channel, mode."""
    full = data.get("full", False)
    if not isinstance(full, bool):
        raise ValidationFailed([_error("full", "type_boolean")])
    raw = data.get("amount")
    amount = None if full or raw in (None, "") else guards.amount("amount", raw, *LABELS["amount"])
    channel, paid_on, errors = channel_and_date(ctx, data, _error)
    mode = data.get("mode") or None
    if mode is not None and mode not in MODES:
        errors.append(_error("mode", "prepay_mode"))
    if errors:
        raise ValidationFailed(errors)
    return Request(amount, paid_on, channel, mode, str(data.get("reference") or "")[:100] or None)


def check(loan: dict[str, Any], installments: list[dict[str, Any]], req: Request,
          business_date: date, last_value_date: date | None) -> None:
    """Refusals that need the loan: its status, its dates, its accrual."""
    guards.refuse_status(loan, "prepay")
    if req.paid_on < loan["disbursed_on"]:
        raise ValidationFailed([_error("paid_on", "before_disbursement",
                                       disbursed_on=loan["disbursed_on"].isoformat())])
    passed = [i["due_on"] for i in installments if req.paid_on < i["due_on"] <= business_date]
    if passed:  # the schedule from paid_on on has already been accrued and charged
        raise ValidationFailed([_error("paid_on", "prepay_due_passed",
                                       due_on=max(passed).isoformat())])
    if last_value_date is not None and req.paid_on < last_value_date:
        raise ValidationFailed([_error("paid_on", "prepay_before_last",
                                       value_date=last_value_date.isoformat())])
    guards.refuse_behind(loan, business_date)


def _split(left: int, percent: Decimal) -> tuple[int, int]:
    """Principal and fee from what is left for both: the largest principal whose fee fits;
    a fen the rounding cannot place goes to principal (the fee is then rounded down)."""
    def fee(p: int) -> int:
        return int((Decimal(p) * percent / 100).to_integral_value(ROUND_HALF_UP))

    p = int(Decimal(left) * 100 / (100 + percent))
    while p > 0 and p + fee(p) > left:
        p -= 1
    while p + 1 + fee(p + 1) <= left:
        p += 1
    return (p + 1, left - p - 1) if p + fee(p) < left else (p, fee(p))


def make_plan(loan: dict[str, Any], installments: list[dict[str, Any]], req: Request
              ) -> Plan:
    """The prepayment's split and new schedule (pure: writes nothing, raises refusals)."""
    rules = loan["terms"].get("rules", {})
    prepay = rules.get("prepayment", {})
    mode = req.mode or prepay.get("mode", "reduce_term")
    on = req.paid_on
    q = quote_payoff(loan, installments, on)
    if not q["allowed"]:
        done = sum(1 for i in installments if i["due_on"] <= on)
        raise ValidationFailed([_error("loan", "prepay_not_allowed",
                                       periods=q["allowed_after_periods"], done=done)])
    amount = q["total"] if req.amount is None else req.amount
    credit_used = loan["credit_balance"]
    available = amount + credit_used
    due_total = sum(q["overdue"].values())
    a, ahead = q["accrued_interest"], q["principal_ahead"]
    need = due_total + a + ahead + q["prepayment_fee"]
    order = rules.get("allocation", {}).get("order", COMPONENTS)
    alloc_mode = rules.get("allocation", {}).get("mode", "period_first")
    due_parts = allocate(available, [_due(i) for i in installments], on, order,
                         alloc_mode).parts if available > 0 else {}
    if available >= need:
        principal, fee, credit = ahead, q["prepayment_fee"], available - need
        if credit and rules.get("overpayment", "credit") == "refuse":
            raise ValidationFailed([_error("amount", "prepay_overpaid", total=yuan(q["total"]))])
    else:
        left = available - due_total - a
        principal, fee = _split(left, Decimal(str(prepay.get("fee_percent", "0")))) \
            if left > 0 else (0, 0)
        credit = 0
        if principal <= 0 or ahead <= 0:
            raise ValidationFailed([_error("amount", "prepay_too_small", due=yuan(due_total),
                                           accrued=yuan(a))])
    plan = Plan(amount, credit_used, due_parts, a, principal, fee, credit,
                principal >= ahead, mode, on)
    _schedule(loan, installments, plan)
    return plan


def _schedule(loan: dict[str, Any], installments: list[dict[str, Any]], plan: Plan) -> None:
    """The new version: copied due installments, the interrupted period, the re-plan."""
    on = plan.paid_on
    rows = []
    for old in sorted(installments, key=lambda i: i["n"]):
        if old["due_on"] > on:
            continue
        row = replan.copy(old)
        for c in COMPONENTS:
            row[f"{c}_paid"] += plan.due_parts.get((row["n"], c), 0)
        if row["settled_on"] is None and all(row[f"{c}_paid"] >= row[c] for c in COMPONENTS):
            row["settled_on"] = on
        rows.append(row)
    ahead = [i for i in installments if i["due_on"] > on]
    plan.running_n = len(rows) + 1
    plan.periods = loan["periods"]
    if ahead:  # the interrupted period: what was paid of the future, and this payment
        row = replan.blank(plan.running_n, on, 0, 0, 0)
        for c in ("principal", "interest", "fees"):
            row[c] = row[f"{c}_paid"] = sum(i[f"{c}_paid"] for i in ahead)
        row["principal"] = row["principal_paid"] = row["principal"] + plan.principal
        row["interest"] = row["interest_paid"] = row["interest"] + plan.accrued
        row["settled_on"] = on
        rows.append(row)
    if not plan.full:
        before = sum(i["principal"] - i["principal_paid"] for i in ahead)
        remaining = before - plan.principal
        count = len(ahead)
        if plan.mode == "reduce_term":
            count = replan.shortest_term(loan, before, len(ahead), remaining, ahead[0])
        dates = [i["due_on"] for i in ahead][:count]
        rows.extend(replan.plan(loan, remaining, on, dates, plan.running_n + 1))
        plan.periods = loan["periods"] - len(ahead) + count
    plan.rows = rows


async def _last_value_date(ctx: Context, loan_id: uuid.UUID) -> date | None:
    rows = await LoanTransaction.select(LoanTransaction.value_date).where(
        LoanTransaction.tenant_id == ctx.tenant_id, LoanTransaction.loan_id == loan_id,
        LoanTransaction.kind != "disbursement").order_by(
        LoanTransaction.value_date, ascending=False).limit(1).run()
    return rows[0]["value_date"] if rows else None


def split_view(plan: Plan) -> dict[str, Any]:
    """The split in yuan, as the quote and the answer show it."""
    due: dict[str, int] = {c: 0 for c in COMPONENTS}
    for (_, c), v in plan.due_parts.items():
        due[c] += v
    return {"paid_on": plan.paid_on.isoformat(), "amount": yuan(plan.amount),
            "full": plan.full, "mode": plan.mode, "credit_used": yuan(plan.credit_used),
            "due": {c: yuan(v) for c, v in due.items()},
            "accrued_interest": yuan(plan.accrued), "prepayment_fee": yuan(plan.fee),
            "principal": yuan(plan.principal), "credit": yuan(plan.credit)}


def _rows_view(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"n": r["n"], "due_on": r["due_on"].isoformat(), "principal": yuan(r["principal"]),
             "interest": yuan(r["interest"]), "fees": yuan(r["fees"]),
             "total": yuan(r["principal"] + r["interest"] + r["fees"]),
             "paid": yuan(sum(r[f"{c}_paid"] for c in COMPONENTS)),
             "settled_on": r["settled_on"].isoformat() if r["settled_on"] else None}
            for r in rows]


async def quote(ctx: Context, loan_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """What a prepayment would do (read-only): the split and the new schedule."""
    require(ctx, "loan.read")
    req = parse(ctx, data)
    async with tenant_scope(ctx, write=False):
        loan, installments = await load(ctx, loan_id)
        check(loan, installments, req, ctx.tenant.business_date,
              await _last_value_date(ctx, loan_id))
    plan = make_plan(loan, installments, req)
    return {"loan_id": str(loan_id), **split_view(plan), "periods": plan.periods,
            "schedule_version": loan["schedule_version"] + 1,
            "installments": _rows_view(plan.rows)}


async def prepay(ctx: Context, loan_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """`{"amount"? | "full": true, "paid_on"?, "channel", "reference"?, "mode"?}` -> the loan
    after the prepayment, with the split under "prepayment"."""
    require(ctx, "loan.repay")
    req = parse(ctx, data)
    async with tenant_scope(ctx):
        loan, installments = await load(ctx, loan_id, lock=True)
        check(loan, installments, req, ctx.tenant.business_date,
              await _last_value_date(ctx, loan_id))
        plan = make_plan(loan, installments, req)
        allocation = _recognise(loan, plan.parts(), plan.credit)
        version = await replan.write_version(ctx, loan, plan.rows)
        allocation.update(fee=plan.fee, credit_used=plan.credit_used, mode=plan.mode,
                          full=plan.full, schedule_version=version)
        values: dict[Any, Any] = {
            Loan.credit_balance: plan.credit, Loan.periods: plan.periods,
            Loan.version: loan["version"] + 1,
            **{getattr(Loan, k): loan[k] for k in ("interest_receivable", "fees_receivable",
                                                   "interest_accrued", "fees_accrued")}}
        if plan.full:
            values.update({Loan.status: "settled", Loan.settled_on: plan.paid_on})
        await Loan.update(values).where(Loan.tenant_id == ctx.tenant_id,
                                        Loan.id == loan_id).run()
        txn = LoanTransaction(
            tenant_id=ctx.tenant_id, loan_id=loan_id, kind="prepayment", amount=plan.amount,
            value_date=plan.paid_on, channel=req.channel, reference=req.reference,
            allocation=allocation, created_by=ctx.username)
        await LoanTransaction.insert(txn).run()
        await ledger.post(ctx, f"prepayment:{txn.id}", plan.paid_on, _lines(plan, allocation),
                          f"提前还款 {loan['number']}", loan_id, txn.id)
        split = split_view(plan)
        await audit.append(ctx, "loan.prepay", "loan", loan_id, {
            **split, "channel": req.channel, "schedule_version": version})
        await emit(ctx, "loan.prepaid", {"loan_id": str(loan_id), "transaction_id": str(txn.id),
                                         "amount": split["amount"], "full": plan.full,
                                         "principal": split["principal"]})
    return {**await get_loan(ctx, loan_id), "prepayment": split}


def _lines(plan: Plan, allocation: dict[str, Any]) -> list[ledger.Line]:
    """The repayment's lines plus the credit used and the fee, one net line per account."""
    lines = [*_lines_of(allocation, plan.amount), ledger.Line(ledger.FEE_INCOME, credit=plan.fee),
             ledger.Line(ledger.CUSTOMER_CREDIT, debit=plan.credit_used)]
    net: dict[str, int] = {}
    for line in lines:
        net[line.account] = net.get(line.account, 0) + line.debit - line.credit
    return [ledger.Line(a, debit=v) if v > 0 else ledger.Line(a, credit=-v)
            for a, v in net.items() if v]
