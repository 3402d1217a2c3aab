"""Repayment preview (还款试算): where a payment would go, before anyone posts it.

The cashier sees, per installment and component, what `repayments.post_repayment` would
book and what would be left over (kept as credit, or refused when the product says so),
so a wrong amount or date is caught before money moves. It refuses exactly what posting
refuses (the same `repayments.checked_input` and `repayments.split`), inside a
read-only tenant scope: it writes nothing, takes no lock and needs no idempotency key.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from core.access import require
from core.tenancy import Context, tenant_scope
from plugins.servicing.allocation import COMPONENTS, Allocation
from plugins.servicing.loans import load, yuan
from plugins.servicing.repayments import checked_input, split


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
    amount, paid_on, channel = checked_input(ctx, data)
    async with tenant_scope(ctx, write=False):
        loan, installments = await load(ctx, loan_id)
    result = split(loan, installments, amount, paid_on)
    out = describe(loan, installments, result, amount, paid_on)
    out.update(channel=channel, reference=str(data.get("reference") or "")[:100] or None)
    if out["overpayment"] != "refuse":
        out["overpayment"] = "credit"
    return out
