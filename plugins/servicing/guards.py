"""Refusals shared by the money movements of a loan: what its status allows, and whether its
accrual is current enough to change its schedule.

The loan's status is shown in the person's language through the error's label ("已结清的贷款"
/ "a settled loan"), so one message per action reads right for every status. A schedule
may only change on a loan closed up to the day before the business date: `accrual.refresh`
trues up what was recognised to the new schedule's target *at the last close*, and interest
recognised at payment for days the close has not reached yet would be taken back as if it
had never been earned.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from core.errors import FieldError, ValidationFailed
from core.i18n import register_messages

STATUS = {"active": ("正常贷款", "an active loan"), "settled": ("已结清的贷款", "a settled loan"),
          "written_off": ("已核销的贷款", "a written-off loan")}

register_messages({
    "loan_state_repay": {"zh-CN": "{label}不能还款", "en": "{label} cannot take a repayment"},
    "loan_state_repay_written_off": {
        "zh-CN": "{label}不能还款：核销后收到的款项请登记为核销后收回",
        "en": "{label} cannot take a repayment: post money received as a recovery"},
    "loan_state_prepay": {"zh-CN": "{label}不能提前还款", "en": "{label} cannot be prepaid"},
    "loan_state_reschedule": {"zh-CN": "{label}不能展期或变更利率",
                              "en": "{label} cannot be rescheduled"},
    "loan_state_write_off": {"zh-CN": "{label}不能核销，只有正常贷款可以核销",
                             "en": "{label} cannot be written off: only an active loan can"},
    "loan_state_recover": {"zh-CN": "{label}不能登记核销后收回，只有已核销的贷款可以",
                           "en": "{label} cannot take a recovery: only a written-off loan can"},
    "loan_state_reverse": {"zh-CN": "{label}的还款不能冲正",
                           "en": "a repayment of {label} cannot be reversed"},
    "loan_accrual_behind": {
        "zh-CN": "该贷款的日终只做到 {last_closed_on}，营业日为 {business_date}：请先执行日终，"
                 "再调整还款计划",
        "en": "the loan was last closed on {last_closed_on} and the business date is "
              "{business_date}: run the close of business before changing its schedule"},
})


def refuse_status(loan: dict[str, Any], action: str, allowed: str = "active") -> None:
    """Raise unless the loan's status is `allowed`; `action` names the message
    (repay, prepay, reschedule, write_off, recover, reverse)."""
    status = loan["status"]
    if status == allowed:
        return
    code = f"loan_state_{action}"
    if action == "repay" and status == "written_off":
        code = "loan_state_repay_written_off"
    zh, en = STATUS.get(status, (status, status))
    raise ValidationFailed([FieldError("loan", code, {"status": status},
                                       {"zh-CN": zh, "en": en})])


def refuse_behind(loan: dict[str, Any], business_date: date) -> None:
    """Raise when the close of business has not reached the day before `business_date`."""
    closed = loan["last_closed_on"]
    if closed is None or closed < business_date - timedelta(days=1):
        raise ValidationFailed([FieldError(
            "loan", "loan_accrual_behind",
            {"last_closed_on": closed.isoformat() if closed else "-",
             "business_date": business_date.isoformat()},
            {"zh-CN": "贷款", "en": "loan"})])


def amount(name: str, raw: Any, zh: str, en: str) -> int:
    """An amount in 分 checked as loans.money does, its message naming the field as the
    action calls it (提前还款金额, 收回金额) rather than the loan amount."""
    from plugins.servicing.loans import fen, money

    try:
        return fen(money(name, raw))
    except ValidationFailed as exc:
        raise ValidationFailed([FieldError(e.field, e.code, e.params, {"zh-CN": zh, "en": en})
                                for e in exc.errors]) from None
