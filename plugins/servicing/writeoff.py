"""Write-off (核销) of a loan judged uncollectable, and recovery (核销后收回) of money received
after it.

A write-off takes the loan off the book in one balanced entry: Cr 1303 贷款, 1132 应收利息,
1221 其他应收款 and 1133 应收罚息 for the loan's whole balance of each, against Dr 1304
贷款损失准备 (the allowance; providing for it, Dr 6701 / Cr 1304, is the lender's own
period-end entry and not posted here). The loan becomes `written_off` with its receivables
at zero, so the close of business (which closes active loans only) stops accruing and
charging it; its installments keep what is owed, for collections and recoveries. The
customer's credit (2241), if any, is not touched: it is still owed to the customer.

A recovery is money received for a written-off loan: Dr 1002 银行存款 / Cr 1304, a
`recovery` transaction, and the amount marked paid on the installments (all of them count
as due: the loan was written off as a whole) by the product's allocation order, so what is
still owed stays visible. A recovery beyond what is owed is refused.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from core import audit
from core.access import require
from core.errors import FieldError, ValidationFailed
from core.events import emit
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.servicing import guards, ledger
from plugins.servicing.allocation import COMPONENTS, allocate
from plugins.servicing.loans import get_loan, load, yuan
from plugins.servicing.repayments import _apply, _due, channel_and_date
from plugins.servicing.tables import Loan, LoanTransaction

ACCOUNTS = (ledger.LOANS, ledger.INTEREST_RECEIVABLE, ledger.FEE_RECEIVABLE,
            ledger.PENALTY_RECEIVABLE)

register_messages({
    "writeoff_nothing": {"zh-CN": "该贷款账面余额为零，没有可以核销的金额",
                         "en": "the loan has no balance on the book to write off"},
    "recovery_exceeds": {"zh-CN": "{label}超过核销后尚欠的 {owed} 元",
                         "en": "{label} exceeds the {owed} yuan still owed"},
    "before_write_off": {"zh-CN": "{label}不能早于核销日 {written_off_on}",
                         "en": "{label} cannot be before the write-off date {written_off_on}"},
})
LABELS = {"reason": ("核销原因", "reason"), "amount": ("收回金额", "amount"),
          "paid_on": ("收回日期", "recovery date"), "channel": ("收款方式", "channel"),
          "loan": ("贷款", "loan")}


def _error(name: str, code: str, **params: Any) -> FieldError:
    zh, en = LABELS.get(name, (name, name))
    return FieldError(name, code, params, {"zh-CN": zh, "en": en})


def write_off_lines(book: dict[str, int]) -> tuple[list[ledger.Line], int]:
    """Credit each of the loan's asset balances (a negative one is debited) against the
    loan-loss allowance, Dr 1304. What the allowance does not yet hold for the loan is
    provided for in the same entry (Dr 6701 资产减值损失 / Cr 1304), so the allowance never
    shows a debit balance for a loan nobody had provided for."""
    lines = []
    for account in ACCOUNTS:
        value = book.get(account, 0)
        if value > 0:
            lines.append(ledger.Line(account, credit=value))
        elif value < 0:
            lines.append(ledger.Line(account, debit=-value))
    total = sum(book.get(a, 0) for a in ACCOUNTS)
    if total > 0:
        provided = max(-book.get(ledger.ALLOWANCE, 0), 0)  # a credit balance held for it
        shortfall = total - min(provided, total)
        if shortfall:
            lines += [ledger.Line(ledger.IMPAIRMENT, debit=shortfall),
                      ledger.Line(ledger.ALLOWANCE, credit=shortfall)]
        lines.append(ledger.Line(ledger.ALLOWANCE, debit=total))
    return lines, total


async def write_off(ctx: Context, loan_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """`{"reason"}` -> the written-off loan."""
    require(ctx, "loan.write_off")
    reason = str(data.get("reason") or "").strip()
    if not reason:
        raise ValidationFailed([_error("reason", "required")])
    on = ctx.tenant.business_date
    async with tenant_scope(ctx):
        loan, _ = await load(ctx, loan_id, lock=True)
        guards.refuse_status(loan, "write_off")
        book = await ledger.balances(ctx, loan_id)
        lines, total = write_off_lines(book)
        if total <= 0:
            raise ValidationFailed([_error("loan", "writeoff_nothing")])
        balances = {a: book.get(a, 0) for a in ACCOUNTS}
        txn = LoanTransaction(tenant_id=ctx.tenant_id, loan_id=loan_id, kind="write_off",
                              amount=total, value_date=on, reference=reason[:100],
                              allocation={"balances": balances}, created_by=ctx.username)
        await LoanTransaction.insert(txn).run()
        await ledger.post(ctx, f"write_off:{txn.id}", on, lines, f"核销 {loan['number']}",
                          loan_id, txn.id)
        await Loan.update({Loan.status: "written_off", Loan.written_off_on: on,
                           Loan.interest_receivable: 0, Loan.fees_receivable: 0,
                           Loan.version: loan["version"] + 1}).where(
            Loan.tenant_id == ctx.tenant_id, Loan.id == loan_id).run()
        shown = {a: yuan(v) for a, v in balances.items()}
        await audit.append(ctx, "loan.write_off", "loan", loan_id, {
            "amount": yuan(total), "balances": shown, "reason": reason[:200],
            "written_off_on": on.isoformat()})
        await emit(ctx, "loan.written_off", {"loan_id": str(loan_id), "number": loan["number"],
                                             "amount": yuan(total)})
    return await get_loan(ctx, loan_id)


async def recover(ctx: Context, loan_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """`{"amount", "paid_on"?, "channel", "reference"?}` -> the loan after the recovery."""
    require(ctx, "loan.repay")
    amount = guards.amount("amount", data.get("amount"), *LABELS["amount"])
    channel, paid_on, errors = channel_and_date(ctx, data, _error)
    if errors:
        raise ValidationFailed(errors)
    async with tenant_scope(ctx):
        loan, installments = await load(ctx, loan_id, lock=True)
        guards.refuse_status(loan, "recover", allowed="written_off")
        if paid_on < loan["written_off_on"]:
            raise ValidationFailed([_error("paid_on", "before_write_off",
                                           written_off_on=loan["written_off_on"].isoformat())])
        owed = sum(i[c] - i[f"{c}_paid"] for i in installments for c in COMPONENTS)
        if amount > owed:
            raise ValidationFailed([_error("amount", "recovery_exceeds", owed=yuan(owed))])
        rules = loan["terms"].get("rules", {}).get("allocation", {})
        result = allocate(amount, [_due(i) for i in installments], date.max,
                          rules.get("order", COMPONENTS), rules.get("mode", "period_first"))
        await _apply(ctx, installments, result.parts, paid_on)
        txn = LoanTransaction(
            tenant_id=ctx.tenant_id, loan_id=loan_id, kind="recovery", amount=amount,
            value_date=paid_on, channel=channel, reference=data.get("reference") or None,
            allocation={"parts": [[n, c, v] for (n, c), v in result.parts.items()]},
            created_by=ctx.username)
        await LoanTransaction.insert(txn).run()
        await ledger.post(ctx, f"recovery:{txn.id}", paid_on,
                          [ledger.Line(ledger.BANK, debit=amount),
                           ledger.Line(ledger.ALLOWANCE, credit=amount)],
                          f"核销后收回 {loan['number']}", loan_id, txn.id)
        await Loan.update({Loan.version: loan["version"] + 1}).where(
            Loan.tenant_id == ctx.tenant_id, Loan.id == loan_id).run()
        await audit.append(ctx, "loan.recover", "loan", loan_id, {
            "amount": yuan(amount), "paid_on": paid_on.isoformat(), "channel": channel})
        await emit(ctx, "loan.recovered", {"loan_id": str(loan_id), "transaction_id": str(txn.id),
                                           "amount": yuan(amount)})
    return await get_loan(ctx, loan_id)
