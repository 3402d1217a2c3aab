"""Servicing's panels on the customer 360 view (`record_panels` hook): the customer's loans
and their latest money movements, read only, for users with `loan.read`. Loans follow the
object rules of plugins.servicing.loans (an officer sees the loans of their own customers).
"""

from __future__ import annotations

from typing import Any

from core.declarations import Panel
from core.tenancy import Context, tenant_scope

MOVEMENTS = 20


async def customer_panels(ctx: Context, customer_id: str) -> list[Panel]:
    import uuid

    from core.web.ui.i18n import gettext_for
    from plugins.servicing.loans import _visible, list_loans, yuan
    from plugins.servicing.pages import STATUSES, TRANSACTIONS, money
    from plugins.servicing.tables import Loan, LoanTransaction

    if not ctx.access.can("loan.read"):
        return []
    _ = gettext_for(ctx.locale)
    cid = uuid.UUID(str(customer_id))
    loans = await list_loans(ctx, customer_id=cid)
    numbers = {row["id"]: row["number"] for row in loans}
    movements: list[dict[str, Any]] = []
    if loans:
        async with tenant_scope(ctx, write=False):
            visible = Loan.select(Loan.id).where(*_visible(ctx), Loan.customer_id == cid)
            rows = await LoanTransaction.select(
                LoanTransaction.id, LoanTransaction.loan_id, LoanTransaction.kind,
                LoanTransaction.amount, LoanTransaction.value_date, LoanTransaction.channel,
            ).where(LoanTransaction.tenant_id == ctx.tenant_id,
                    LoanTransaction.loan_id.is_in(visible),
                    LoanTransaction.kind != "disbursement").order_by(
                LoanTransaction.value_date, ascending=False).limit(MOVEMENTS).run()
        movements = [{"loan_id": str(r["loan_id"]), "number": numbers.get(str(r["loan_id"]), ""),
                      "kind": _(TRANSACTIONS.get(r["kind"], r["kind"])),
                      "amount": money(yuan(r["amount"])),
                      "value_date": r["value_date"].isoformat()} for r in rows]
    items = [{**row, "amount": money(row["amount"]),
              "status_label": _(STATUSES.get(row["status"], row["status"]))} for row in loans]
    return [Panel("servicing_loans", "贷款", "Loans", "servicing/_customer_loans.html",
                  {"loans": items, "movements": movements,
                   "can_disburse": ctx.access.can("loan.disburse"),
                   "customer_id": str(cid)}, order=30)]
