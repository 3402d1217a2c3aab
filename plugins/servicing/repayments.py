"""Repayments (还款): a payment allocated by the product's order, posted to the ledger.

In one tenant transaction, with the loan row locked: the installments' paid amounts, the
repayment transaction (with its allocation), the balanced ledger entry (Dr 1002 银行存款;
Cr 1303 贷款 principal, 6011 利息收入 interest, 6021 手续费收入 fees, 6012 罚息收入
penalty and compound interest, 2241 其他应付款 what is kept as the customer's credit), the
audit entry and the `repayment.posted` event. A loan whose installments are all paid is
settled. Refused input writes nothing.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from core import audit
from core.access import require
from core.errors import FieldError, NotFound, ValidationFailed
from core.events import emit
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.servicing import ledger
from plugins.servicing.allocation import COMPONENTS, Due, allocate
from plugins.servicing.loans import _date, _visible, fen, get_loan, money
from plugins.servicing.tables import Loan, LoanInstallment, LoanTransaction

CHANNELS = ("cash", "transfer")
INCOME = {"principal": ledger.LOANS, "interest": ledger.INTEREST_INCOME,
          "fees": ledger.FEE_INCOME, "penalty": ledger.PENALTY_INCOME,
          "compound": ledger.PENALTY_INCOME}

register_messages({
    "loan_not_active": {"zh-CN": "贷款状态为 {status}，不能还款",
                        "en": "the loan is {status}: it cannot take a repayment"},
    "before_disbursement": {"zh-CN": "{label}不能早于放款日 {disbursed_on}",
                            "en": "{label} cannot be before the disbursement date {disbursed_on}"},
    "overpayment_refused": {"zh-CN": "还款金额超过当前应还 {due} 元，本产品不接受多缴",
                            "en": "the payment exceeds the {due} yuan due; this product "
                                  "refuses overpayments"},
    "channel_invalid": {"zh-CN": "{label}只能是 cash（现金）或 transfer（转账）",
                        "en": "{label} must be cash or transfer"},
})
LABELS = {"amount": ("还款金额", "amount"), "paid_on": ("还款日期", "payment date"),
          "channel": ("还款方式", "channel"), "loan": ("贷款", "loan")}


def _error(field: str, code: str, **params: Any) -> FieldError:
    zh, en = LABELS.get(field, (field, field))
    return FieldError(field, code, params, {"zh-CN": zh, "en": en})


def _due(row: dict[str, Any]) -> Due:
    return Due(row["n"], row["due_on"], {c: row[c] for c in COMPONENTS},
               {c: row[f"{c}_paid"] for c in COMPONENTS})


async def post_repayment(ctx: Context, loan_id: uuid.UUID, data: dict[str, Any]
                         ) -> dict[str, Any]:
    """`{"amount": "888.49", "paid_on"?: business date, "channel": "cash"|"transfer",
    "reference"?}` -> the loan after the repayment, with the allocation."""
    require(ctx, "loan.repay")
    amount = fen(money("amount", data.get("amount")))
    channel = data.get("channel") or "transfer"
    if channel not in CHANNELS:
        raise ValidationFailed([_error("channel", "channel_invalid")])
    business_date = ctx.tenant.business_date
    paid_on = _date("paid_on", data.get("paid_on"), business_date)
    if paid_on > business_date:
        raise ValidationFailed([_error("paid_on", "after_business_date",
                                       business_date=business_date.isoformat())])
    async with tenant_scope(ctx):
        query = Loan.select().where(*_visible(ctx), Loan.id == loan_id)
        if Loan._meta.db.engine_type == "postgres":
            query = query.lock_rows("UPDATE")  # repayments of one loan queue up
        rows = await query.output(load_json=True).run()
        if not rows:
            raise NotFound()
        loan = rows[0]
        if loan["status"] != "active":
            raise ValidationFailed([_error("loan", "loan_not_active", status=loan["status"])])
        if paid_on < loan["disbursed_on"]:
            raise ValidationFailed([_error("paid_on", "before_disbursement",
                                           disbursed_on=loan["disbursed_on"].isoformat())])
        installments = await LoanInstallment.select().where(
            LoanInstallment.tenant_id == ctx.tenant_id, LoanInstallment.loan_id == loan_id,
            LoanInstallment.schedule_version == loan["schedule_version"]).run()
        rules = loan["terms"].get("rules", {})
        order = rules.get("allocation", {}).get("order", COMPONENTS)
        mode = rules.get("allocation", {}).get("mode", "period_first")
        result = allocate(amount, [_due(i) for i in installments], paid_on, order, mode)
        if result.left and rules.get("overpayment", "credit") == "refuse":
            raise ValidationFailed([_error("amount", "overpayment_refused",
                                           due=_yuan(result.applied))])
        await _apply(ctx, installments, result.parts, paid_on)
        txn = LoanTransaction(
            tenant_id=ctx.tenant_id, loan_id=loan_id, kind="repayment", amount=amount,
            value_date=paid_on, channel=channel, reference=data.get("reference") or None,
            allocation={"parts": [[n, c, v] for (n, c), v in result.parts.items()],
                        "credit": result.left},
            created_by=ctx.username)
        await LoanTransaction.insert(txn).run()
        lines = [ledger.Line(ledger.BANK, debit=amount)]
        for component, value in result.by_component().items():
            lines.append(ledger.Line(INCOME[component], credit=value))
        if result.left:
            lines.append(ledger.Line(ledger.CUSTOMER_CREDIT, credit=result.left))
        await ledger.post(ctx, f"repayment:{txn.id}", paid_on, _merge(lines),
                          f"还款 {loan['number']}", loan_id, txn.id)
        settled = await _settle_if_paid(ctx, loan, paid_on, result.left)
        await audit.append(ctx, "loan.repay", "loan", loan_id, {
            "amount": _yuan(amount), "paid_on": paid_on.isoformat(), "channel": channel,
            "allocated": {c: _yuan(v) for c, v in result.by_component().items()},
            "credit": _yuan(result.left), "settled": settled})
        await emit(ctx, "repayment.posted", {"loan_id": str(loan_id),
                                             "transaction_id": str(txn.id),
                                             "amount": _yuan(amount), "settled": settled})
    return await get_loan(ctx, loan_id)


async def _apply(ctx: Context, installments: list[dict[str, Any]],
                 parts: dict[tuple[int, str], int], paid_on: date) -> None:
    by_n = {i["n"]: i for i in installments}
    for n in sorted({n for n, _ in parts}):
        row = by_n[n]
        values: dict[Any, Any] = {}
        for component in COMPONENTS:
            add = parts.get((n, component), 0)
            if add:
                row[f"{component}_paid"] += add
                values[getattr(LoanInstallment, f"{component}_paid")] = row[f"{component}_paid"]
        if all(row[f"{c}_paid"] >= row[c] for c in COMPONENTS):
            values[LoanInstallment.settled_on] = paid_on
        await LoanInstallment.update(values).where(
            LoanInstallment.tenant_id == ctx.tenant_id, LoanInstallment.id == row["id"]).run()


async def _settle_if_paid(ctx: Context, loan: dict[str, Any], paid_on: date,
                          credit: int) -> bool:
    left = await LoanInstallment.count().where(
        LoanInstallment.tenant_id == ctx.tenant_id, LoanInstallment.loan_id == loan["id"],
        LoanInstallment.schedule_version == loan["schedule_version"],
        LoanInstallment.settled_on.is_null())
    values: dict[Any, Any] = {Loan.credit_balance: loan["credit_balance"] + credit,
                              Loan.version: loan["version"] + 1}
    if not left:
        values.update({Loan.status: "settled", Loan.settled_on: paid_on})
    await Loan.update(values).where(Loan.tenant_id == ctx.tenant_id,
                                    Loan.id == loan["id"]).run()
    return not left


def _merge(lines: list[ledger.Line]) -> list[ledger.Line]:
    """One line per account and side (penalty and compound both credit 6012)."""
    merged: dict[tuple[str, str], int] = {}
    for line in lines:
        side = "debit" if line.debit else "credit"
        merged[(line.account, side)] = merged.get((line.account, side), 0) + (
            line.debit or line.credit)
    return [ledger.Line(account, debit=v) if side == "debit" else ledger.Line(account, credit=v)
            for (account, side), v in merged.items()]


def _yuan(amount: int) -> str:
    from plugins.servicing.loans import yuan

    return yuan(amount)
