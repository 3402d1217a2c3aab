"""Loans (贷款): disbursement with the schedule frozen, and the loan as a user reads it.

Disbursement writes, in one tenant transaction: the loan (with its terms frozen), its
installments (schedule version 1), the disbursement transaction, the balanced ledger entry
(Dr 1303 贷款; Cr 1002 银行存款 the net amount, Cr 6021 手续费收入 the fees taken at
disbursement), the audit entry and the `loan.disbursed` event. Refused input writes
nothing. A loan is visible to whoever may see its customer (object rules of the customer's
owner and unit, copied onto the loan).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from core import audit, records
from core.access import object_clause, require
from core.errors import FieldError, NotFound, ValidationFailed
from core.events import emit
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.servicing import accrual, ledger
from plugins.servicing.cob_sql import effective
from plugins.servicing.products import get_product, terms_for
from plugins.servicing.response import to_contract
from plugins.servicing.schedule import build_schedule
from plugins.servicing.tables import Loan, LoanInstallment, LoanTransaction

FEN = Decimal("0.01")

register_messages({
    "money_invalid": {"zh-CN": "{label}应为大于 0、最多两位小数的金额（元），收到 {got}",
                      "en": "{label} must be an amount in yuan above 0 with at most two "
                            "decimals, got {got}"},
    "date_invalid": {"zh-CN": "{label}应为 YYYY-MM-DD 格式的日期，收到 {got}",
                     "en": "{label} must be a date as YYYY-MM-DD, got {got}"},
    "after_business_date": {"zh-CN": "{label}不能晚于营业日 {business_date}",
                            "en": "{label} cannot be after the business date {business_date}"},
    "integer_invalid": {"zh-CN": "{label}应为整数，收到 {got}",
                        "en": "{label} must be a whole number, got {got}"},
    "before_disbursement": {"zh-CN": "{label}不能早于放款日 {disbursed_on}",
                            "en": "{label} cannot be before the disbursement date {disbursed_on}"},
    "application_not_ready": {"zh-CN": "进件 {number} 的状态为“{status}”，合同签署后（待放款）才能放款",
                              "en": "application {number} is {status}; it can be disbursed "
                                    "once its contract is signed (ready to disburse)"},
    "application_disbursed": {"zh-CN": "进件 {number} 已放款，不能重复放款",
                              "en": "application {number} has already been disbursed"},
    "schedule_digits": {"zh-CN": "放款的还款计划须精确到分（rounding.digits ≤ 2）",
                        "en": "a disbursed schedule must be in fen (rounding.digits at most 2)"},
})

LABELS = {"amount": ("贷款金额", "amount"), "disbursed_on": ("放款日期", "disbursement date"),
          "periods": ("期数", "term"), "annual_rate": ("年利率", "annual rate"),
          "customer_id": ("客户", "customer"),
          "application_id": ("进件", "application"), "on": ("结清日期", "payoff date")}


def _error(field: str, code: str, **params: Any) -> FieldError:
    zh, en = LABELS.get(field, (field, field))
    return FieldError(field, code, params, {"zh-CN": zh, "en": en})


def money(field: str, raw: Any) -> Decimal:
    """A positive amount in yuan with at most two decimals (strings or integers, no floats)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValidationFailed([_error(field, "money_invalid", got=repr(raw))])
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValidationFailed([_error(field, "money_invalid", got=repr(raw))]) from None
    if not value.is_finite() or value <= 0 or value != value.quantize(FEN):
        raise ValidationFailed([_error(field, "money_invalid", got=repr(raw))])
    return value


def fen(amount: Decimal) -> int:
    return int((amount * 100).to_integral_exact())


def yuan(amount_fen: int) -> str:
    return str((Decimal(amount_fen) / 100).quantize(FEN))


def _date(field: str, raw: Any, default: date) -> date:
    if raw in (None, ""):
        return default
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise ValidationFailed([_error(field, "date_invalid", got=repr(raw))]) from None


def _int(field: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
        raise ValidationFailed([_error(field, "integer_invalid", got=repr(raw))])
    return int(raw)


async def _next_number(ctx: Context, on: date) -> str:
    prefix = f"DK{on:%Y%m%d}"
    count = await Loan.count().where(Loan.tenant_id == ctx.tenant_id,
                                     Loan.number.like(f"{prefix}%"))
    return f"{prefix}{count + 1:04d}"


APPLICATION_TERMS = ("customer_id", "product", "amount", "periods", "annual_rate")


async def application_terms(ctx: Context, application_id: Any) -> dict[str, Any]:
    """The approved terms of an application (进件) whose contract is signed: what is
    disbursed is what was approved and signed, whatever else a form sends. Read through the
    registry (the application belongs to the origination plugin), so its object rules and
    field policies apply to the person disbursing."""
    try:
        app_id = uuid.UUID(str(application_id))
    except ValueError:
        raise ValidationFailed([_error("application_id", "required")]) from None
    application = await records.get(ctx, "application", app_id)  # 404 unless visible
    number = application.get("number") or str(app_id)
    if application.get("status") == "disbursed":
        raise ValidationFailed([_error("application_id", "application_disbursed",
                                       number=number)])
    if application.get("status") != "ready_to_disburse":
        raise ValidationFailed([_error("application_id", "application_not_ready",
                                       number=number, status=application.get("status"))])
    terms = {key: application.get(key) for key in APPLICATION_TERMS}
    return {**{k: ("" if v is None else str(v)) for k, v in terms.items()},
            "application_id": str(app_id)}


async def disburse(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Disburse a loan: `customer_id`, `product` (code), `amount` (yuan), `periods`, and
    optionally `annual_rate` (percent; the product's default), `disbursed_on` (the business
    date), `channel` and `reference`. With `application_id` the terms are the application's
    (approved, contract signed), and the application is disbursed at most once."""
    require(ctx, "loan.disburse")
    if data.get("application_id"):
        data = {**data, **await application_terms(ctx, data["application_id"])}
    try:
        customer_id = uuid.UUID(str(data.get("customer_id")))
    except ValueError:
        raise ValidationFailed([_error("customer_id", "required")]) from None
    customer = await records.get(ctx, "customer", customer_id)  # 404 unless visible
    product = await get_product(ctx, str(data.get("product", "")))
    if not product["active"]:
        raise ValidationFailed([_error("product", "product_inactive", product=product["code"])])
    principal = money("amount", data.get("amount"))
    periods = _int("periods", data.get("periods"))
    rate = None if data.get("annual_rate") in (None, "") else money("annual_rate",
                                                                     data["annual_rate"])
    business_date = ctx.tenant.business_date
    on = _date("disbursed_on", data.get("disbursed_on"), business_date)
    if on > business_date:
        raise ValidationFailed([_error("disbursed_on", "after_business_date",
                                       business_date=business_date.isoformat())])
    terms = terms_for(product["config"], principal, periods, rate, on)
    if terms.rounding.digits > 2:
        raise ValidationFailed([_error("rounding", "schedule_digits")])
    schedule = build_schedule(terms)
    contract = to_contract(schedule)
    fees_now = fen(schedule.disbursement_fees)
    rows = [{"n": i.n, "due_on": i.due_on, "principal": fen(i.principal),
             "interest": fen(i.interest), "fees": fen(i.fees)} for i in schedule.installments]
    never_closed = on - timedelta(days=1)  # the close of `on` accrues its first day
    async with tenant_scope(ctx):
        loan = Loan(
            tenant_id=ctx.tenant_id, number=await _next_number(ctx, on),
            customer_id=customer_id, product_id=product["id"], product_code=product["code"],
            application_id=uuid.UUID(data["application_id"]) if data.get("application_id")
            else None, principal=fen(principal), annual_rate=str(terms.annual_rate), periods=periods,
            disbursed_on=on, maturity_on=schedule.installments[-1].due_on,
            terms={"request": _request_of(terms), "rules": _rules(product["config"]),
                   "apr": contract["apr"], "product_version": product["version"]},
            last_closed_on=never_closed, owner_id=customer.get("owner_id"),
            org_unit_id=customer.get("org_unit_id"), created_by=ctx.username,
            **accrual.cache_columns(accrual.running(rows, on, never_closed)),
            **accrual.penalty_columns(terms.annual_rate, product["config"], terms.day_count))
        await Loan.insert(loan).run()
        await LoanInstallment.insert(*[
            LoanInstallment(tenant_id=ctx.tenant_id, loan_id=loan.id, schedule_version=1, **r)
            for r in rows]).run()
        txn = LoanTransaction(tenant_id=ctx.tenant_id, loan_id=loan.id, kind="disbursement",
                              amount=fen(principal), value_date=on,
                              channel=data.get("channel") or "transfer",
                              reference=(data.get("reference") or None),
                              allocation={"fees_at_disbursement": fees_now},
                              created_by=ctx.username)
        await LoanTransaction.insert(txn).run()
        lines = [ledger.Line(ledger.LOANS, debit=fen(principal)),
                 ledger.Line(ledger.BANK, credit=fen(principal) - fees_now)]
        if fees_now:
            lines.append(ledger.Line(ledger.FEE_INCOME, credit=fees_now))
        await ledger.seed_chart(ctx)
        await ledger.post(ctx, f"disbursement:{txn.id}", on, lines,
                          f"放款 {loan.number}", loan.id, txn.id)
        await audit.append(ctx, "loan.disburse", "loan", loan.id, {
            "number": loan.number, "customer_id": str(customer_id),
            "product": product["code"], "amount": str(principal), "periods": periods,
            "annual_rate": str(terms.annual_rate), "disbursed_on": on.isoformat(),
            "apr": contract["apr"], "application_id": data.get("application_id")})
        await emit(ctx, "loan.disbursed", {"loan_id": str(loan.id), "number": loan.number,
                                           "customer_id": str(customer_id),
                                           "amount": str(principal),
                                           "application_id": data.get("application_id")})
    return await get_loan(ctx, loan.id)


def _request_of(terms: Any) -> dict[str, Any]:
    """The frozen schedule request, JSON-ready (Decimals and dates as strings)."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, Decimal | date):
            return str(value)
        return value

    return plain(asdict(terms))


def _rules(config: dict[str, Any]) -> dict[str, Any]:
    return {k: config[k] for k in ("penalty", "allocation", "prepayment", "overpayment")
            if k in config}


def _visible(ctx: Context) -> list[Any]:
    where = [Loan.tenant_id == ctx.tenant_id]
    clause = object_clause(ctx, Loan)
    if clause is not None:
        where.append(clause)
    return where


async def load(ctx: Context, loan_id: uuid.UUID, lock: bool = False
               ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A loan ctx may see and its current installments (by n), inside the caller's tenant
    scope; `lock` takes the loan row (PostgreSQL), so money movements of one loan queue."""
    query = Loan.select().where(*_visible(ctx), Loan.id == loan_id)
    if lock and Loan._meta.db.engine_type == "postgres":
        query = query.lock_rows("UPDATE")
    rows = await query.output(load_json=True).run()
    if not rows:
        raise NotFound()
    installments = await LoanInstallment.select().where(
        LoanInstallment.tenant_id == ctx.tenant_id, LoanInstallment.loan_id == loan_id,
        LoanInstallment.schedule_version == rows[0]["schedule_version"]).order_by(
        LoanInstallment.n).run()
    return rows[0], installments


async def get_loan(ctx: Context, loan_id: uuid.UUID) -> dict[str, Any]:
    """The loan with its current schedule, balances, transactions and ledger balances."""
    require(ctx, "loan.read")
    async with tenant_scope(ctx, write=False):
        loan, installments = await load(ctx, loan_id)
        transactions = await LoanTransaction.select().where(
            LoanTransaction.tenant_id == ctx.tenant_id, LoanTransaction.loan_id == loan_id
        ).order_by(LoanTransaction.created_at).output(load_json=True).run()
    return view(loan, installments, transactions)


def view(loan: dict[str, Any], installments: list[dict[str, Any]],
         transactions: list[dict[str, Any]]) -> dict[str, Any]:
    """The loan as the API and the UI show it: money as decimal strings in yuan."""
    outstanding = {c: sum(i[c] - i[f"{c}_paid"] for i in installments)
                   for c in ("principal", "interest", "fees", "penalty", "compound")}
    return {
        "id": str(loan["id"]), "number": loan["number"], "status": loan["status"],
        "customer_id": str(loan["customer_id"]), "product": loan["product_code"],
        "amount": yuan(loan["principal"]), "annual_rate": loan["annual_rate"],
        "application_id": str(loan["application_id"]) if loan.get("application_id") else None,
        "apr": loan["terms"].get("apr"), "periods": loan["periods"],
        "disbursed_on": loan["disbursed_on"].isoformat(),
        "maturity_on": loan["maturity_on"].isoformat(),
        "days_past_due": loan["days_past_due"], "bucket": loan["bucket"],
        "classification": effective(loan["classification"], loan["classification_override"]),
        "classification_floor": loan["classification"],
        "classification_override": loan["classification_override"],
        "classification_reason": loan["classification_reason"],
        "receivable": {"interest": yuan(loan["interest_receivable"]),
                       "fees": yuan(loan["fees_receivable"])},
        "last_closed_on": loan["last_closed_on"].isoformat() if loan["last_closed_on"] else None,
        "credit_balance": yuan(loan["credit_balance"]),
        "written_off_on": loan["written_off_on"].isoformat() if loan["written_off_on"] else None,
        "recovered": yuan(sum(t["amount"] for t in transactions if t["kind"] == "recovery")),
        "outstanding": {k: yuan(v) for k, v in outstanding.items()},
        "schedule_version": loan["schedule_version"],
        "installments": [{
            "n": i["n"], "due_on": i["due_on"].isoformat(), "principal": yuan(i["principal"]),
            "interest": yuan(i["interest"]), "fees": yuan(i["fees"]),
            "total": yuan(i["principal"] + i["interest"] + i["fees"]),
            "paid": yuan(sum(i[f"{c}_paid"] for c in ("principal", "interest", "fees",
                                                      "penalty", "compound"))),
            "settled_on": i["settled_on"].isoformat() if i["settled_on"] else None,
        } for i in installments],
        "transactions": [{
            "id": str(t["id"]), "kind": t["kind"], "amount": yuan(t["amount"]),
            "value_date": t["value_date"].isoformat(), "channel": t["channel"],
            "reference": t["reference"],
        } for t in transactions],
    }


async def list_loans(ctx: Context, customer_id: uuid.UUID | None = None,
                     status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    require(ctx, "loan.read")
    async with tenant_scope(ctx, write=False):
        query = Loan.select(Loan.id, Loan.number, Loan.status, Loan.customer_id,
                            Loan.product_code, Loan.principal, Loan.disbursed_on,
                            Loan.days_past_due, Loan.bucket).where(*_visible(ctx))
        if customer_id is not None:
            query = query.where(Loan.customer_id == customer_id)
        if status:
            query = query.where(Loan.status == status)
        rows = await query.order_by(Loan.disbursed_on, ascending=False).limit(limit).run()
    return [{**r, "id": str(r["id"]), "customer_id": str(r["customer_id"]),
             "amount": yuan(r.pop("principal")), "disbursed_on": r["disbursed_on"].isoformat()}
            for r in rows]
