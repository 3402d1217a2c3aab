"""Repayments (还款): a payment allocated by the product's order, posted to the ledger.

In one tenant transaction, with the loan row locked: the installments' paid amounts, the
repayment transaction (with its allocation), the balanced ledger entry, the audit entry
and the `repayment.posted` event. A loan whose installments are all paid is settled.
Refused input writes nothing.

The entry: Dr 1002 银行存款; Cr 1303 贷款 the principal; Cr 1133 应收罚息 penalty and
compound interest (charged by the nightly close, so always recognised); Cr 1132 应收利息 /
1221 其他应收款 the interest and fees already accrued, and Cr 6011 利息收入 / 6021 手续费收入
whatever part was not accrued yet (it is recognised now, and the close will not accrue it
again); Cr 2241 其他应付款 what is kept as the customer's credit. Taking a repayment back
restores the receivables (what was due stays recognised) and the principal.
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
from plugins.servicing import guards, ledger
from plugins.servicing.allocation import COMPONENTS, Allocation, Due, allocate
from plugins.servicing.loans import _date, fen, get_loan, load, money
from plugins.servicing.tables import Loan, LoanInstallment, LoanTransaction

CHANNELS = ("cash", "transfer")
# Where each component of a payment is credited (interest and fees: up to the receivable).
ASSET = {"principal": ledger.LOANS, "interest": ledger.INTEREST_RECEIVABLE,
         "fees": ledger.FEE_RECEIVABLE, "penalty": ledger.PENALTY_RECEIVABLE,
         "compound": ledger.PENALTY_RECEIVABLE}
INCOME = {"interest": ledger.INTEREST_INCOME, "fees": ledger.FEE_INCOME}

register_messages({
    "loan_not_active": {"zh-CN": "贷款状态为 {status}，不能还款",
                        "en": "the loan is {status}: it cannot take a repayment"},
    "overpayment_refused": {"zh-CN": "还款金额超过当前应还 {due} 元，本产品不接受多缴",
                            "en": "the payment exceeds the {due} yuan due; this product "
                                  "refuses overpayments"},
    "channel_invalid": {"zh-CN": "{label}只能是 cash（现金）或 transfer（转账）",
                        "en": "{label} must be cash or transfer"},
})
LABELS = {"amount": ("还款金额", "amount"), "paid_on": ("还款日期", "payment date"),
          "channel": ("还款方式", "channel"), "loan": ("贷款", "loan"),
          "transaction": ("交易", "transaction")}


def _error(field: str, code: str, **params: Any) -> FieldError:
    zh, en = LABELS.get(field, (field, field))
    return FieldError(field, code, params, {"zh-CN": zh, "en": en})


def _due(row: dict[str, Any]) -> Due:
    return Due(row["n"], row["due_on"], {c: row[c] for c in COMPONENTS},
               {c: row[f"{c}_paid"] for c in COMPONENTS})


def channel_and_date(ctx: Context, data: dict[str, Any], error: Any = None
                     ) -> tuple[str, date, list[FieldError]]:
    """A money movement's channel (cash or transfer) and value date (the business date by
    default, never later), with the refusals of both; `error` labels them for the caller's
    form (repayment, prepayment, recovery)."""
    error = error or _error
    errors: list[FieldError] = []
    channel = data.get("channel") or "transfer"
    if channel not in CHANNELS:
        errors.append(error("channel", "channel_invalid"))
    business_date = ctx.tenant.business_date
    paid_on = business_date
    try:
        paid_on = _date("paid_on", data.get("paid_on"), business_date)
        if paid_on > business_date:
            errors.append(error("paid_on", "after_business_date",
                                business_date=business_date.isoformat()))
    except ValidationFailed as exc:
        errors.extend(error(e.field, e.code, **e.params) for e in exc.errors)
    return str(channel), paid_on, errors


def checked_input(ctx: Context, data: dict[str, Any]) -> tuple[int, date, str]:
    """Amount (分), value date and channel of a payment, or every refusal of the three at
    once (a form shows each next to its field)."""
    errors: list[FieldError] = []
    amount = 0
    if data.get("amount") in (None, ""):
        errors.append(_error("amount", "required"))
    else:
        try:
            amount = fen(money("amount", data.get("amount")))
        except ValidationFailed as exc:
            errors.extend(_relabel(e) for e in exc.errors)
    channel, paid_on, more = channel_and_date(ctx, data)
    errors += more
    if errors:
        raise ValidationFailed(errors)
    return amount, paid_on, channel


def _relabel(error: FieldError) -> FieldError:
    """loans.money/_date label a field by the loan's terms ("贷款金额"); say 还款金额."""
    return _error(error.field, error.code, **error.params) if error.field in LABELS else error


def split(loan: dict[str, Any], installments: list[dict[str, Any]], amount: int,
          paid_on: date) -> Allocation:
    """Where a payment goes: the loan's frozen allocation order and mode (pure); refuses
    a loan that is not active, a date before disbursement, and an overpayment the product
    refuses."""
    guards.refuse_status(loan, "repay")  # settled, or written off: a recovery instead
    if paid_on < loan["disbursed_on"]:
        raise ValidationFailed([_error("paid_on", "before_disbursement",
                                       disbursed_on=loan["disbursed_on"].isoformat())])
    rules = loan["terms"].get("rules", {})
    order = rules.get("allocation", {}).get("order", COMPONENTS)
    mode = rules.get("allocation", {}).get("mode", "period_first")
    result = allocate(amount, [_due(i) for i in installments], paid_on, order, mode)
    if result.left and rules.get("overpayment", "credit") == "refuse":
        raise ValidationFailed([_error("amount", "overpayment_refused",
                                       due=_yuan(result.applied))])
    return result


async def post_repayment(ctx: Context, loan_id: uuid.UUID, data: dict[str, Any]
                         ) -> dict[str, Any]:
    """`{"amount": "888.49", "paid_on"?: business date, "channel": "cash"|"transfer",
    "reference"?}` -> the loan after the repayment, with the allocation."""
    require(ctx, "loan.repay")
    amount, paid_on, channel = checked_input(ctx, data)
    async with tenant_scope(ctx):
        loan, installments = await load(ctx, loan_id, lock=True)  # repayments queue up
        result = split(loan, installments, amount, paid_on)
        await _apply(ctx, installments, result.parts, paid_on)
        allocation = _recognise(loan, result.parts, result.left)
        txn = LoanTransaction(
            tenant_id=ctx.tenant_id, loan_id=loan_id, kind="repayment", amount=amount,
            value_date=paid_on, channel=channel, reference=data.get("reference") or None,
            allocation=allocation, created_by=ctx.username)
        await LoanTransaction.insert(txn).run()
        await ledger.post(ctx, f"repayment:{txn.id}", paid_on, _lines_of(allocation, amount),
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
    """Add `parts` (negative when taking a repayment back) to the installments' paid
    amounts, in the database and in `installments` itself."""
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
            if row["settled_on"] is None:
                row["settled_on"] = paid_on
                values[LoanInstallment.settled_on] = paid_on
        elif row["settled_on"] is not None:
            row["settled_on"] = None
            values[LoanInstallment.settled_on] = None
        await LoanInstallment.update(values).where(
            LoanInstallment.tenant_id == ctx.tenant_id, LoanInstallment.id == row["id"]).run()


async def _settle_if_paid(ctx: Context, loan: dict[str, Any], paid_on: date,
                          credit: int) -> bool:
    left = await LoanInstallment.count().where(
        LoanInstallment.tenant_id == ctx.tenant_id, LoanInstallment.loan_id == loan["id"],
        LoanInstallment.schedule_version == loan["schedule_version"],
        LoanInstallment.settled_on.is_null())
    values: dict[Any, Any] = {Loan.credit_balance: loan["credit_balance"] + credit,
                              Loan.version: loan["version"] + 1, **_accrual_values(loan)}
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


register_messages({
    "not_a_repayment": {"zh-CN": "该交易不是还款，不能冲正", "en": "only a repayment can be reversed"},
    "already_reversed": {"zh-CN": "该还款已冲正，不能再次冲正",
                         "en": "this repayment was already reversed"},
})


def _recognise(loan: dict[str, Any], parts: dict[tuple[int, str], int], credit: int
               ) -> dict[str, Any]:
    """The stored allocation of a payment, with how much interest and fees it recognises
    (paid beyond what was accrued); `loan`'s accrual columns are updated to match."""
    by_component: dict[str, int] = {}
    for (_, component), value in parts.items():
        by_component[component] = by_component.get(component, 0) + value
    recognised = {}
    for component in ("interest", "fees"):
        paid = by_component.get(component, 0)
        from_receivable = min(paid, max(loan[f"{component}_receivable"], 0))
        recognised[component] = paid - from_receivable
        loan[f"{component}_receivable"] -= from_receivable
        loan[f"{component}_accrued"] += paid - from_receivable
    return {"parts": [[n, c, v] for (n, c), v in parts.items()], "credit": credit,
            "recognised": recognised}


def _accrual_values(loan: dict[str, Any]) -> dict[Any, Any]:
    return {getattr(Loan, k): loan[k] for k in ("interest_receivable", "fees_receivable",
                                                "interest_accrued", "fees_accrued")}


def _components(allocation: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, component, value in allocation.get("parts", []):
        out[component] = out.get(component, 0) + value
    return out


def _lines_of(allocation: dict[str, Any], amount: int) -> list[ledger.Line]:
    """The ledger lines of a repayment, from its stored allocation."""
    recognised = allocation.get("recognised", {})
    lines = [ledger.Line(ledger.BANK, debit=amount)]
    for component, value in _components(allocation).items():
        now = recognised.get(component, 0)
        if value - now:
            lines.append(ledger.Line(ASSET[component], credit=value - now))
        if now:
            lines.append(ledger.Line(INCOME[component], credit=now))
    if allocation.get("credit"):
        lines.append(ledger.Line(ledger.CUSTOMER_CREDIT, credit=allocation["credit"]))
    return _merge(lines)


def _take_back_lines(allocation: dict[str, Any], amount: int) -> list[ledger.Line]:
    """Taking a repayment back: the bank is credited, what it paid is owed again (income
    it recognised stays recognised: it moves back to the receivable)."""
    lines = [ledger.Line(ledger.BANK, credit=amount)]
    for component, value in _components(allocation).items():
        lines.append(ledger.Line(ASSET[component], debit=value))
    if allocation.get("credit"):
        lines.append(ledger.Line(ledger.CUSTOMER_CREDIT, debit=allocation["credit"]))
    return _merge(lines)


async def reverse_repayment(ctx: Context, transaction_id: uuid.UUID, reason: str = ""
                            ) -> dict[str, Any]:
    """Undo a repayment (a bounced transfer, a wrong loan). Repayments booked after it are
    taken back and allocated again without it, as if it had never been, so the oldest
    installments are paid first again. Every step is posted; nothing is deleted."""
    require(ctx, "loan.repay")
    async with tenant_scope(ctx):
        found = await LoanTransaction.select().where(
            LoanTransaction.tenant_id == ctx.tenant_id,
            LoanTransaction.id == transaction_id).output(load_json=True).run()
        if not found:
            raise NotFound()
        target = found[0]
        loan, installments = await load(ctx, target["loan_id"], lock=True)
        if loan["status"] == "written_off":  # off the book: taking a payment back would
            guards.refuse_status(loan, "reverse")  # put it back on
        if target["kind"] != "repayment":
            raise ValidationFailed([_error("transaction", "not_a_repayment")])
        if target["reversed_by"] is not None:
            raise ValidationFailed([_error("transaction", "already_reversed")])
        active = await LoanTransaction.select().where(
            LoanTransaction.tenant_id == ctx.tenant_id,
            LoanTransaction.loan_id == loan["id"], LoanTransaction.kind == "repayment",
            LoanTransaction.reversed_by.is_null()).output(load_json=True).run()
        active.sort(key=lambda t: (t["value_date"], t["created_at"]))
        start = next(i for i, t in enumerate(active) if t["id"] == transaction_id)
        redo = active[start:]
        reversal = LoanTransaction(
            tenant_id=ctx.tenant_id, loan_id=loan["id"], kind="reversal",
            amount=target["amount"], value_date=ctx.tenant.business_date,
            reverses=transaction_id, reference=reason[:100] or None, created_by=ctx.username)
        credit = loan["credit_balance"]
        for txn in reversed(redo):  # take back, newest first
            parts = {(n, c): -v for n, c, v in txn["allocation"].get("parts", [])}
            await _apply(ctx, installments, parts, txn["value_date"])
            credit -= txn["allocation"].get("credit", 0)
            taken = _components(txn["allocation"])
            loan["interest_receivable"] += taken.get("interest", 0)
            loan["fees_receivable"] += taken.get("fees", 0)
            await ledger.post(ctx, f"reverse:{txn['id']}:{reversal.id}",
                              ctx.tenant.business_date,
                              _take_back_lines(txn["allocation"], txn["amount"]),
                              f"冲回 {loan['number']}", loan["id"], txn["id"])
        await LoanTransaction.insert(reversal).run()
        await LoanTransaction.update({LoanTransaction.reversed_by: reversal.id}).where(
            LoanTransaction.tenant_id == ctx.tenant_id,
            LoanTransaction.id == transaction_id).run()
        rules = loan["terms"].get("rules", {})
        order = rules.get("allocation", {}).get("order", COMPONENTS)
        mode = rules.get("allocation", {}).get("mode", "period_first")
        for txn in redo[1:]:  # allocate the later ones again, oldest first
            result = allocate(txn["amount"], [_due(i) for i in installments],
                              txn["value_date"], order, mode)
            await _apply(ctx, installments, result.parts, txn["value_date"])
            credit += result.left
            allocation = _recognise(loan, result.parts, result.left)
            await LoanTransaction.update({LoanTransaction.allocation: allocation}).where(
                LoanTransaction.tenant_id == ctx.tenant_id,
                LoanTransaction.id == txn["id"]).run()
            await ledger.post(ctx, f"reallocate:{txn['id']}:{reversal.id}",
                              ctx.tenant.business_date, _lines_of(allocation, txn["amount"]),
                              f"重新冲账 {loan['number']}", loan["id"], txn["id"])
        unsettled = any(i["settled_on"] is None for i in installments)
        values: dict[Any, Any] = {Loan.credit_balance: credit, Loan.version: loan["version"] + 1,
                                  **_accrual_values(loan)}
        if loan["status"] == "settled" and unsettled:
            values.update({Loan.status: "active", Loan.settled_on: None})
        await Loan.update(values).where(Loan.tenant_id == ctx.tenant_id,
                                        Loan.id == loan["id"]).run()
        await audit.append(ctx, "loan.reverse_repayment", "loan", loan["id"], {
            "transaction_id": str(transaction_id), "amount": _yuan(target["amount"]),
            "reason": reason[:200], "reallocated": len(redo) - 1})
        await emit(ctx, "repayment.reversed", {"loan_id": str(loan["id"]),
                                               "transaction_id": str(transaction_id)})
    return await get_loan(ctx, loan["id"])
