"""Payoff quote (提前结清试算): what settles a loan on a given date.

Everything still owed on installments due by that date, all principal not yet due, the
interest of the running period accrued pro rata by days (previous due date, or the
disbursement, to the payoff date; rounded half-up to the fen), and the product's
prepayment fee on the principal repaid early. Interest of later periods is not owed.
Read-only: it writes nothing.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from core.access import require
from core.errors import ValidationFailed
from core.tenancy import Context, tenant_scope
from plugins.servicing.allocation import COMPONENTS
from plugins.servicing.loans import _error, load, yuan


def quote_payoff(loan: dict[str, Any], installments: list[dict[str, Any]], on: date
                 ) -> dict[str, Any]:
    """The payoff breakdown in 分 (pure: the loan row and its current installments)."""
    rows = sorted(installments, key=lambda i: i["n"])
    owed = {c: 0 for c in COMPONENTS}
    principal_ahead = accrued = 0
    previous = loan["disbursed_on"]  # the start of the running period
    running = True
    for row in rows:
        if row["due_on"] <= on:
            for c in COMPONENTS:
                owed[c] += row[c] - row[f"{c}_paid"]
            previous = row["due_on"]
            continue
        principal_ahead += row["principal"] - row["principal_paid"]
        if running:  # the first period not yet due: its interest by days elapsed
            running = False
            days, length = (on - previous).days, (row["due_on"] - previous).days
            share = Decimal(row["interest"]) * days / length
            accrued = max(int(share.to_integral_value(ROUND_HALF_UP)) - row["interest_paid"],
                          0)
    rules = loan["terms"].get("rules", {}).get("prepayment", {})
    periods_done = sum(1 for r in rows if r["due_on"] <= on)
    allowed = periods_done >= int(rules.get("after_periods", 0))
    fee = int((Decimal(principal_ahead) * Decimal(str(rules.get("fee_percent", "0"))) / 100)
              .to_integral_value(ROUND_HALF_UP)) if principal_ahead else 0
    total = sum(owed.values()) + principal_ahead + accrued + fee
    return {"on": on, "overdue": owed, "principal_ahead": principal_ahead,
            "accrued_interest": accrued, "prepayment_fee": fee,
            "allowed": allowed, "allowed_after_periods": int(rules.get("after_periods", 0)),
            "credit_balance": loan["credit_balance"],
            "total": max(total - loan["credit_balance"], 0)}


async def payoff(ctx: Context, loan_id: uuid.UUID, on: date | None = None) -> dict[str, Any]:
    """The payoff quote of a visible loan, in yuan, for `on` (default the business date)."""
    require(ctx, "loan.read")
    on = on or ctx.tenant.business_date
    async with tenant_scope(ctx, write=False):
        loan, installments = await load(ctx, loan_id)
    if on < loan["disbursed_on"]:
        raise ValidationFailed([_error("on", "before_disbursement",
                                       disbursed_on=loan["disbursed_on"].isoformat())])
    q = quote_payoff(loan, installments, on)
    return {"loan_id": str(loan_id), "on": on.isoformat(), "allowed": q["allowed"],
            "allowed_after_periods": q["allowed_after_periods"],
            "overdue": {c: yuan(v) for c, v in q["overdue"].items()},
            "principal_ahead": yuan(q["principal_ahead"]),
            "accrued_interest": yuan(q["accrued_interest"]),
            "prepayment_fee": yuan(q["prepayment_fee"]),
            "credit_balance": yuan(q["credit_balance"]), "total": yuan(q["total"])}
