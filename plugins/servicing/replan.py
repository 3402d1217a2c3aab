"""A new schedule version for a loan (prepayment, reschedule): re-planning the principal
still ahead with the loan's frozen terms, and writing the version with its accrual re-anchored.

Why here and not in the engine: the engine plans a loan from its disbursement; a loan in
the middle of its life keeps what has fallen due (copied, with what was paid of it and its
penalty), and only what lies ahead is planned again, from the start of the running period
(or the prepayment date) with the principal still owed. The re-plan keeps the loan's own
due-date grid (the dates of the original contract, even where the engine would clamp a
re-anchored month end differently), its rounding and day count, and its per-period fees as
they were agreed (a percentage is valued on the original principal); fees taken at
disbursement are not charged again. Grace periods belong to the start of a loan: they are
not planned again, so a loan still inside them cannot be re-planned (`refuse_in_grace`).
"""

from __future__ import annotations

import math
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from core.errors import FieldError, ValidationFailed
from core.i18n import register_messages
from core.tenancy import Context
from plugins.servicing import accrual
from plugins.servicing.daycount import due_dates, nominal_fraction
from plugins.servicing.loans import fen, yuan
from plugins.servicing.request import parse_request
from plugins.servicing.schedule import Terms, TermsError, build_schedule, level_payment
from plugins.servicing.tables import Loan, LoanInstallment

COLUMNS = ("n", "due_on", "principal", "interest", "fees", "penalty", "compound",
           "principal_paid", "interest_paid", "fees_paid", "penalty_paid", "compound_paid",
           "settled_on", "penalty_e6", "compound_e6")
PAID = ("principal", "interest", "fees", "penalty", "compound")

register_messages({
    "replan_in_grace": {
        "zh-CN": "贷款仍在前 {periods} 期的宽限期内，不能调整还款计划",
        "en": "the loan is still within its first {periods} grace periods: its schedule "
              "cannot be changed"},
    "replan_terms": {"zh-CN": "无法生成新的还款计划：{label}",
                     "en": "the new schedule cannot be planned: {label}"},
})


def frozen_terms(loan: dict[str, Any]) -> Terms:
    """The terms the loan was disbursed with (loan.terms["request"])."""
    return parse_request(dict(loan["terms"]["request"]))


def refuse_in_grace(loan: dict[str, Any], on: date) -> None:
    """Raise while fewer due dates of the contract than its longest grace have passed."""
    terms = frozen_terms(loan)
    grace = max(terms.grace.principal_periods, terms.grace.interest_periods,
                terms.grace.interest_free_periods)
    if not grace:
        return
    passed = sum(1 for d in due_dates(terms.disbursed_on, grace, terms.frequency, terms.every,
                                      terms.first_due_on) if d <= on)
    if passed < grace:
        raise ValidationFailed([FieldError("loan", "replan_in_grace", {"periods": grace},
                                           {"zh-CN": "贷款", "en": "loan"})])


def grid(loan: dict[str, Any], after: date, count: int) -> list[date]:
    """The next `count` due dates of the loan's original grid after `after`."""
    terms = frozen_terms(loan)
    n = count + 24
    while True:
        dates = [d for d in due_dates(terms.disbursed_on, n, terms.frequency, terms.every,
                                      terms.first_due_on) if d > after]
        if len(dates) >= count:
            return dates[:count]
        n *= 2


def bullet_maturity(loan: dict[str, Any], periods: int) -> date:
    """A bullet loan's single due date: the last of `periods` dates of its grid."""
    terms = frozen_terms(loan)
    return due_dates(terms.disbursed_on, periods, terms.frequency, terms.every,
                     terms.first_due_on)[-1]


def _request(loan: dict[str, Any], principal: int, start: date, dates: list[date]
             ) -> dict[str, Any]:
    terms = frozen_terms(loan)
    quantum = Decimal(1).scaleb(-terms.rounding.digits)
    request = dict(loan["terms"]["request"])
    request.update(
        principal=yuan(principal), annual_rate=str(loan["annual_rate"]),
        disbursed_on=start.isoformat(),
        grace={"principal_periods": 0, "interest_periods": 0, "interest_free_periods": 0},
        fees=[{"name": f.name, "when": "each_period",
               "amount": str(f.value(terms.principal, quantum))}
              for f in terms.fees if f.when == "each_period"])
    if terms.method == "bullet":  # one installment: its interest over the days to maturity
        request.update(frequency="day", every=1, periods=(dates[-1] - start).days,
                       first_due_on=None)
    else:
        request.update(periods=len(dates), first_due_on=dates[0].isoformat())
    return request


def plan(loan: dict[str, Any], principal: int, start: date, dates: list[date], first_n: int
         ) -> list[dict[str, Any]]:
    """Installments (numbered from `first_n`) repaying `principal` 分 from `start` on
    `dates` with the loan's terms and its current annual rate."""
    try:
        schedule = build_schedule(parse_request(_request(loan, principal, start, dates)))
    except TermsError as exc:
        raise ValidationFailed([FieldError(exc.field, "replan_terms", {},
                                           {"zh-CN": exc.zh, "en": exc.en})]) from None
    rows = schedule.installments[-len(dates):]
    return [blank(first_n + i, due_on, fen(row.principal), fen(row.interest), fen(row.fees))
            for i, (due_on, row) in enumerate(zip(dates, rows, strict=True))]


def blank(n: int, due_on: date, principal: int, interest: int, fees: int) -> dict[str, Any]:
    """A new installment with nothing paid."""
    return {"n": n, "due_on": due_on, "principal": principal, "interest": interest,
            "fees": fees, "penalty": 0, "compound": 0, "principal_paid": 0,
            "interest_paid": 0, "fees_paid": 0, "penalty_paid": 0, "compound_paid": 0,
            "settled_on": None, "penalty_e6": 0, "compound_e6": 0}


def copy(row: dict[str, Any]) -> dict[str, Any]:
    """An installment carried into the new version as it is (paid amounts and penalty)."""
    return {c: row[c] for c in COLUMNS}


def shortest_term(loan: dict[str, Any], before: int, periods: int, after: int,
                  running: dict[str, Any]) -> int:
    """How many periods repay `after` 分 at about the installment the loan has now
    (reduce_term). Equal installments: the fewest periods whose level payment is at most
    the level of `before` over `periods`; equal principal and flat: the principal part of
    the running installment; interest-only and bullet loans have nothing to shorten."""
    terms = frozen_terms(loan)
    if terms.method in ("equal_principal", "flat"):
        part = running["principal"]
        return periods if part <= 0 else max(1, min(periods, math.ceil(after / part)))
    if terms.method != "equal_installment":
        return periods
    fraction = nominal_fraction(terms.frequency, terms.every, terms.interest_basis,
                                terms.day_count)
    with localcontext() as ctx:
        ctx.prec = 50
        rate = Decimal(str(loan["annual_rate"])) / 100 * fraction.numerator / fraction.denominator
        target = level_payment(Decimal(before), rate, periods).to_integral_value(ROUND_HALF_UP)
        for n in range(1, periods + 1):
            if level_payment(Decimal(after), rate, n).to_integral_value(ROUND_HALF_UP) <= target:
                return n
    return periods


async def write_version(ctx: Context, loan: dict[str, Any], rows: list[dict[str, Any]]
                        ) -> int:
    """Insert `rows` as the loan's next schedule version, make it current and re-anchor
    the accrual (true-up posted under `accrual:<loan>:v<version>`). `loan` must carry the
    current column values; it is updated in place."""
    version = loan["schedule_version"] + 1
    await LoanInstallment.insert(*[
        LoanInstallment(tenant_id=ctx.tenant_id, loan_id=loan["id"], schedule_version=version,
                        **row) for row in rows]).run()
    await Loan.update({Loan.schedule_version: version,
                       Loan.maturity_on: max(r["due_on"] for r in rows)}).where(
        Loan.tenant_id == ctx.tenant_id, Loan.id == loan["id"]).run()
    loan["schedule_version"] = version
    loan["maturity_on"] = max(r["due_on"] for r in rows)
    await accrual.refresh(ctx, loan, rows, key=f"accrual:{loan['id']}:v{version}")
    return version
