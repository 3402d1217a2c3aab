"""Accrual (计提) of interest and per-period fees, and the loan's frozen penalty terms.

Interest and per-period fees are recognised day by day over their period: at the close of
day d a period running from `start` (the previous due date, or the disbursement) to `due`
has accrued `round_half_up(amount × min(d + 1 − start, due − start) / (due − start))`, so
the day of disbursement counts and the due date belongs to the next period (算头不算尾),
and a period is fully accrued at the close of the day before its due date. The target is
cumulative, so the daily amounts of a period always add up to its scheduled amount.

The loan row caches the running period (`accrual_*`), which makes the nightly close a
row-local computation; `refresh` re-anchors the cache after a new schedule version and
trues up what was recognised. Penalty terms are frozen as integers (rates in millionths,
the day basis) so the close computes penalty in SQL on both engines without floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from core.tenancy import Context, tenant_scope
from plugins.servicing import ledger

DAY_BASIS = {"30/360": 360, "actual/360": 360, "actual/365": 365, "actual/364": 364,
             "actual/actual": 0}
MILLION = Decimal(1_000_000)


def round_div(numerator: int, denominator: int) -> int:
    """Integer division rounded half up, for non-negative numerators (as the SQL does)."""
    return (2 * numerator + denominator) // (2 * denominator)


def penalty_columns(annual_rate: Decimal, rules: dict[str, Any], day_count: str
                    ) -> dict[str, int]:
    """The loan's penalty terms as integers: the penalty rate is the contract rate times
    the multiplier (or a fixed annual rate); compound interest on unpaid interest runs at
    the penalty rate when the product enables it."""
    penalty = rules.get("penalty") or {}
    if penalty.get("annual_rate") not in (None, ""):
        rate = Decimal(str(penalty["annual_rate"]))
    else:
        rate = annual_rate * Decimal(str(penalty.get("multiplier", "1.5")))
    rate_e6 = int((rate / 100 * MILLION).to_integral_value(ROUND_HALF_UP))
    return {"penalty_rate_e6": rate_e6,
            "compound_rate_e6": rate_e6 if penalty.get("compound", True) else 0,
            "day_basis": DAY_BASIS.get(day_count, 360),
            "penalty_grace_days": int(penalty.get("grace_days", 0))}


def days_in_year(on: date) -> int:
    return 366 if (on.year % 4 == 0 and on.year % 100 != 0) or on.year % 400 == 0 else 365


def daily_penalty(amount: int, rate_e6: int, basis: int, on: date) -> int:
    """One day's penalty in 分 on `amount` 分 at an annual rate in millionths."""
    return round_div(amount * rate_e6, (basis or days_in_year(on)) * 1_000_000)


@dataclass(frozen=True)
class Running:
    """The accrual state of a loan after the close of a day (what the loan row caches)."""

    n: int  # the installment whose period runs; past the last when start is None
    start: date | None
    due: date | None
    interest: int
    fees: int
    base_interest: int  # interest of the completed periods
    base_fees: int

    def target(self, closed_on: date) -> tuple[int, int]:
        """Interest and fees accrued in total by the close of `closed_on`."""
        if self.start is None or self.due is None:
            return self.base_interest, self.base_fees
        length = (self.due - self.start).days
        days = min(max((closed_on - self.start).days + 1, 0), length)
        return (self.base_interest + round_div(self.interest * days, length),
                self.base_fees + round_div(self.fees * days, length))


def running(installments: list[dict[str, Any]], disbursed_on: date, closed_on: date
            ) -> Running:
    """The running period after the close of `closed_on` (installments of one version)."""
    base_i = base_f = 0
    start = disbursed_on
    for row in sorted(installments, key=lambda r: r["n"]):
        if row["due_on"] > closed_on + timedelta(days=1):
            return Running(row["n"], start, row["due_on"], row["interest"], row["fees"],
                           base_i, base_f)
        base_i += row["interest"]
        base_f += row["fees"]
        start = row["due_on"]
    last = max((r["n"] for r in installments), default=0)
    return Running(last + 1, None, None, 0, 0, base_i, base_f)


def cache_columns(state: Running) -> dict[str, Any]:
    """The loan columns holding `state` (names as in tables.Loan)."""
    return {"accrual_n": state.n, "accrual_start": state.start, "accrual_due": state.due,
            "accrual_interest": state.interest, "accrual_fees": state.fees,
            "accrual_base_interest": state.base_interest, "accrual_base_fees": state.base_fees}


async def refresh(ctx: Context, loan: dict[str, Any], installments: list[dict[str, Any]],
                  key: str) -> dict[str, int]:
    """Re-anchor a loan's accrual after its schedule changed (a new version written in the
    caller's transaction): cache the running period of `installments` and true up what was
    recognised to the new schedule's target at the last close, posted under `key`.
    Returns the true-up in 分 ({"interest": ±, "fees": ±})."""
    from plugins.servicing.tables import Loan

    closed = loan["last_closed_on"] or loan["disbursed_on"] - timedelta(days=1)
    state = running(installments, loan["disbursed_on"], closed)
    interest, fees = state.target(closed)
    delta_i, delta_f = interest - loan["interest_accrued"], fees - loan["fees_accrued"]
    lines = [*_true_up(ledger.INTEREST_RECEIVABLE, ledger.INTEREST_INCOME, delta_i),
             *_true_up(ledger.FEE_RECEIVABLE, ledger.FEE_INCOME, delta_f)]
    async with tenant_scope(ctx):
        if lines:
            await ledger.post(ctx, key, ctx.tenant.business_date, lines,
                              f"计提调整 {loan['number']}", loan["id"])
        values = {getattr(Loan, k): v for k, v in cache_columns(state).items()}
        values.update({Loan.interest_accrued: interest, Loan.fees_accrued: fees,
                       Loan.interest_receivable: loan["interest_receivable"] + delta_i,
                       Loan.fees_receivable: loan["fees_receivable"] + delta_f})
        await Loan.update(values).where(Loan.tenant_id == ctx.tenant_id,
                                        Loan.id == loan["id"]).run()
    for k, v in cache_columns(state).items():
        loan[k] = v
    loan.update(interest_accrued=interest, fees_accrued=fees,
                interest_receivable=loan["interest_receivable"] + delta_i,
                fees_receivable=loan["fees_receivable"] + delta_f)
    return {"interest": delta_i, "fees": delta_f}


def _true_up(receivable: str, income: str, delta: int) -> list[ledger.Line]:
    if delta > 0:
        return [ledger.Line(receivable, debit=delta), ledger.Line(income, credit=delta)]
    if delta < 0:
        return [ledger.Line(income, debit=-delta), ledger.Line(receivable, credit=-delta)]
    return []
