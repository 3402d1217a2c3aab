"""Applications go through the tenant's approval workflow.

Submission starts the application's approval (or, after a return for more information,
resumes the same one with the new figures) in the submission's own transaction, so an
application is never `in_approval` without someone's task in an inbox, and a tenant
without a workflow for applications is told so instead of leaving the application stuck.
The workflow's outcome moves the application (`applications.decided`) in the decision's
transaction.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.tenancy import Context
from plugins.origination import applications, approvals
from plugins.origination import approval_store as store

SUBJECT = "application"


def facts(app: dict[str, Any]) -> dict[str, Any]:
    """What workflow conditions may route on: money as Decimal, never float."""
    return {"amount": Decimal(str(app["amount"])), "product": app.get("product"),
            "grade": app.get("grade"), "region": app.get("region"),
            "term": int(app["periods"]) if app.get("periods") is not None else None,
            "score": app.get("score"), "purpose": app.get("purpose")}


def title(app: dict[str, Any]) -> dict[str, str]:
    amount = f"{Decimal(str(app['amount'])):,.2f}"
    return {"zh-CN": f"进件 {app['number']} · {app.get('product')} · {amount} 元",
            "en": f"Application {app['number']} · {app.get('product')} · CNY {amount}"}


async def submitted(ctx: Context, app: dict[str, Any], resubmission: bool) -> dict[str, Any]:
    """Called by `applications.submit` inside its transaction, after the status moved to
    `submitted`: the application enters approval."""
    app = await applications.start_approval(ctx, app["id"])
    open_row = await store.open_instance(ctx, SUBJECT, str(app["id"])) if resubmission \
        else None
    if open_row is not None:
        await approvals.act(ctx, open_row["id"], "resubmit", facts=facts(app))
    else:
        await approvals.start(ctx, subject=SUBJECT, subject_id=app["id"], facts=facts(app),
                              submitted_by=ctx.username or "", title=title(app),
                              link=f"/applications/{app['id']}")
    return app


@approvals.on_outcome(SUBJECT)
async def _outcome(ctx: Context, subject_id: Any, outcome: str, comment: str,
                   decided_by: str) -> None:
    await applications.decided(ctx, subject_id, outcome, comment, decided_by)
