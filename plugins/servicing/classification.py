"""Five-category classification (贷款五级分类): the floor and manual overrides.

The nightly close sets each loan's floor from its days past due (thresholds per product or
tenant; the 2023 rules for commercial banks by default). A person with `loan.classify` may
put a loan in a worse category than its floor (a borrower in bankruptcy before any
arrears, say), always with a reason; the loan then carries the worse of the two, so an
override can never hide arrears. Clearing the override returns the loan to its floor.
Every change is in the loan's classification history, audited, and emitted as an event.
"""

from __future__ import annotations

import uuid
from typing import Any

from core import audit
from core.access import require
from core.errors import FieldError, ValidationFailed
from core.events import emit
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.servicing.cob_sql import CLASS_ORDER, effective
from plugins.servicing.loans import _visible, load
from plugins.servicing.tables import Loan, LoanClassification

NAMES = {"normal": ("正常", "normal"), "attention": ("关注", "special mention"),
         "substandard": ("次级", "substandard"), "doubtful": ("可疑", "doubtful"),
         "loss": ("损失", "loss")}

register_messages({
    "classification_unknown": {
        "zh-CN": "{label}只能是 normal（正常）、attention（关注）、substandard（次级）、"
                 "doubtful（可疑）或 loss（损失）",
        "en": "{label} must be normal, attention, substandard, doubtful or loss"},
    "classification_reason": {"zh-CN": "调整五级分类须填写原因（至少 4 个字）",
                              "en": "a classification override needs a reason (4 characters "
                                    "or more)"},
    "classification_below_floor": {
        "zh-CN": "不能调至优于逾期天数决定的下限（{floor}）",
        "en": "cannot classify better than the floor set by days past due ({floor})"},
})
LABELS = {"classification": ("五级分类", "classification"), "reason": ("原因", "reason")}


def _error(field: str, code: str, **params: Any) -> FieldError:
    zh, en = LABELS[field]
    return FieldError(field, code, params, {"zh-CN": zh, "en": en})


async def override(ctx: Context, loan_id: uuid.UUID, classification: str | None,
                   reason: str) -> dict[str, Any]:
    """Set (or, with None, clear) the manual classification of a loan, with a reason."""
    require(ctx, "loan.classify")
    reason = (reason or "").strip()
    if classification is not None and classification not in CLASS_ORDER:
        raise ValidationFailed([_error("classification", "classification_unknown")])
    if len(reason) < 4:
        raise ValidationFailed([_error("reason", "classification_reason")])
    async with tenant_scope(ctx):
        loan, _ = await load(ctx, loan_id, lock=True)
        floor = loan["classification"]
        if classification is not None and CLASS_ORDER.index(classification) < CLASS_ORDER.index(
                floor):
            raise ValidationFailed([_error("classification", "classification_below_floor",
                                           floor=floor)])
        before = effective(floor, loan["classification_override"])
        after = effective(floor, classification)
        await Loan.update({Loan.classification_override: classification,
                           Loan.classification_reason: reason[:500],
                           Loan.version: loan["version"] + 1}).where(
            Loan.tenant_id == ctx.tenant_id, Loan.id == loan_id).run()
        await LoanClassification.insert(LoanClassification(
            tenant_id=ctx.tenant_id, loan_id=loan_id, changed_on=ctx.tenant.business_date,
            old=before, new=after, source="manual", reason=reason[:500],
            days_past_due=loan["days_past_due"], created_by=ctx.username)).run()
        await audit.append(ctx, "loan.classify", "loan", loan_id, {
            "from": before, "to": after, "override": classification, "floor": floor,
            "reason": reason[:500]})
        await emit(ctx, "loan.classified", {
            "loan_id": str(loan_id), "number": loan["number"], "classification": after,
            "floor": floor, "previous": before, "days_past_due": loan["days_past_due"],
            "business_date": ctx.tenant.business_date.isoformat(), "source": "manual"})
    return {"classification": after, "floor": floor, "override": classification}


async def history(ctx: Context, loan_id: uuid.UUID) -> list[dict[str, Any]]:
    """The loan's classification changes, newest first."""
    require(ctx, "loan.read")
    async with tenant_scope(ctx, write=False):
        if not await Loan.exists().where(*_visible(ctx), Loan.id == loan_id).run():
            return []
        rows = await LoanClassification.select().where(
            LoanClassification.tenant_id == ctx.tenant_id,
            LoanClassification.loan_id == loan_id).order_by(
            LoanClassification.created_at, ascending=False).run()
    return [{"changed_on": r["changed_on"].isoformat(), "old": r["old"], "new": r["new"],
             "source": r["source"], "reason": r["reason"], "days_past_due": r["days_past_due"],
             "by": r["created_by"]} for r in rows]
