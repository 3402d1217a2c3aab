"""Reschedules on both engines: a rate change or a term extension writes a new schedule
version for the principal not yet due, keeps what has fallen due as it was, trues up the
running period's accrual, stays within the product's ranges (refusals write nothing), needs
`loan.reschedule`, and keeps the book equal to the loans through later closes."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.errors import ValidationFailed
from core.tenancy import tenant_scope
from plugins.servicing import ledger, loans, prepayment, reschedule
from plugins.servicing.tables import JournalEntry, Loan
from tests.conftest import login
from tests.integration.test_cob import assert_book_equals_loans
from tests.integration.test_prepayment import caught_up, cents, counts, run_days


def ahead(loan: dict[str, Any], on: date) -> list[dict[str, Any]]:
    return [i for i in loan["installments"] if i["due_on"] > on.isoformat()]


async def test_a_rate_change_replans_what_is_not_due(kernel: Any, new_tenant: Any) -> None:
    ctx, loan_id, _ = await caught_up(new_tenant, days=75)  # two periods due, one unpaid
    on = ctx.tenant.business_date
    before = await loans.get_loan(ctx, loan_id)
    after = await reschedule.reschedule(ctx, loan_id, {"annual_rate": "18",
                                                       "reason": "客户申请利率调整"})
    assert after["annual_rate"] == "18" and after["schedule_version"] == 2
    due_before = [i for i in before["installments"] if i["due_on"] <= on.isoformat()]
    assert after["installments"][:len(due_before)] == due_before  # past dues stay as they are
    new, old = ahead(after, on), ahead(before, on)
    assert [i["due_on"] for i in new] == [i["due_on"] for i in old]
    assert sum(cents(i["principal"]) for i in new) == sum(cents(i["principal"]) for i in old)
    assert Decimal(new[1]["interest"]) > Decimal(old[1]["interest"])
    assert Decimal(new[1]["total"]) > Decimal(old[1]["total"])
    async with tenant_scope(ctx, write=False):
        row = await Loan.select().where(Loan.tenant_id == ctx.tenant_id,
                                        Loan.id == loan_id).first().run()
        trued = await JournalEntry.count().where(JournalEntry.tenant_id == ctx.tenant_id,
                                                 JournalEntry.key == f"accrual:{loan_id}:v2")
    assert row["penalty_rate_e6"] == 270_000  # 18% × 1.5
    assert trued == 1  # the running period's interest accrued so far, at the new rate
    await assert_book_equals_loans(ctx)
    ctx = await run_days(ctx, 3)
    await assert_book_equals_loans(ctx)


async def test_an_extension_adds_periods_on_the_loans_grid(kernel: Any, new_tenant: Any) -> None:
    ctx, loan_id, _ = await caught_up(new_tenant)
    on = ctx.tenant.business_date
    before = await loans.get_loan(ctx, loan_id)
    after = await reschedule.reschedule(ctx, loan_id, {"extra_periods": 6, "reason": "展期"})
    assert after["periods"] == 18 and len(after["installments"]) == 18
    assert after["annual_rate"] == before["annual_rate"]
    new, old = ahead(after, on), ahead(before, on)
    assert len(new) == len(old) + 6 and new[:len(old)][0]["due_on"] == old[0]["due_on"]
    assert after["maturity_on"] == new[-1]["due_on"] > before["maturity_on"]
    last = date.fromisoformat(before["maturity_on"])
    assert date.fromisoformat(new[-1]["due_on"]) > last + timedelta(days=170)
    assert Decimal(new[1]["total"]) < Decimal(old[1]["total"])  # a lower installment
    assert sum(cents(i["principal"]) for i in after["installments"]) == 1_000_000
    assert sum(cents(i["principal"]) for i in new) == sum(cents(i["principal"]) for i in old)
    assert (await ledger.balances(ctx, loan_id))[ledger.LOANS] == cents(
        after["outstanding"]["principal"])
    await assert_book_equals_loans(ctx)
    ctx = await run_days(ctx, 3)
    await assert_book_equals_loans(ctx)
    # a prepayment after the reschedule plans on the rescheduled terms
    paid = await prepayment.prepay(ctx, loan_id, {"amount": "5000",
                                                  "mode": "reduce_installment"})
    assert paid["schedule_version"] == 3 and paid["periods"] == 18
    await assert_book_equals_loans(ctx)


@pytest.mark.parametrize("body, field, text", [
    ({"annual_rate": "36", "reason": "x"}, "annual_rate", "年利率应在 6 至 24 之间"),
    ({"annual_rate": "-1", "reason": "x"}, "annual_rate", "大于 0"),
    ({"annual_rate": "12.345", "reason": "x"}, "annual_rate", "最多两位小数"),
    ({"extra_periods": 30, "reason": "x"}, "extra_periods", "超过产品上限 36 期"),
    ({"extra_periods": "two", "reason": "x"}, "extra_periods", "应为整数"),
    ({"extra_periods": 3}, "reason", "原因为必填项"),
    ({"reason": "x"}, "loan", "请给出新的年利率"),
])
async def test_bad_reschedules_are_refused_and_write_nothing(
        kernel: Any, new_tenant: Any, body: dict[str, Any], field: str, text: str) -> None:
    ctx, loan_id, _ = await caught_up(new_tenant)
    before = await counts(ctx)
    with pytest.raises(ValidationFailed) as info:
        await reschedule.reschedule(ctx, loan_id, body)
    [error] = info.value.errors
    assert error.field == field and text in error.message("zh-CN"), error.message("zh-CN")
    assert error.message("en") != error.message("zh-CN")
    assert await counts(ctx) == before


async def test_only_an_active_loan_is_rescheduled(kernel: Any, new_tenant: Any) -> None:
    ctx, loan_id, _ = await caught_up(new_tenant)
    await prepayment.prepay(ctx, loan_id, {"full": True})
    before = await counts(ctx)
    with pytest.raises(ValidationFailed) as info:
        await reschedule.reschedule(ctx, loan_id, {"annual_rate": "10", "reason": "x"})
    assert "已结清的贷款不能展期" in info.value.errors[0].message("zh-CN")
    assert await counts(ctx) == before


async def test_reschedule_needs_its_permission_and_a_key(kernel: Any, client: Any,
                                                         new_tenant: Any) -> None:
    from core.identity import create_user

    ctx, loan_id, _ = await caught_up(new_tenant)
    await create_user(ctx, "officer", "客户经理", "汾河 公园 晨跑 31", ["loan_officer"])
    url = f"/api/v1/loans/{loan_id}/reschedule"
    body = {"extra_periods": 2, "reason": "展期"}
    officer = await login(client, ctx.tenant.slug, "officer", "汾河 公园 晨跑 31")
    r = await client.post(url, headers={**officer, "Idempotency-Key": "o1"}, json=body)
    assert r.status_code == 403, r.text
    h = await login(client, ctx.tenant.slug)
    first = await client.post(url, headers={**h, "Idempotency-Key": "rs1"}, json=body)
    again = await client.post(url, headers={**h, "Idempotency-Key": "rs1"}, json=body)
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json() and first.json()["periods"] == 14
    assert (await loans.get_loan(ctx, loan_id))["schedule_version"] == 2


@pytest.mark.parametrize("method", ["equal_principal", "interest_only", "flat", "bullet"])
async def test_every_method_is_prepaid_and_rescheduled_with_the_book_equal(
        kernel: Any, new_tenant: Any, method: str) -> None:
    from tests.integration.test_loans import CONFIG

    config = {**CONFIG, "method": method,
              "fees": [{"name": "管理费", "amount": "3", "when": "each_period"}]}
    ctx, loan_id, _ = await caught_up(new_tenant, config, days=40)
    before = await loans.get_loan(ctx, loan_id)
    short = await prepayment.prepay(ctx, loan_id, {"amount": "2000", "mode": "reduce_term"})
    assert Decimal(short["outstanding"]["principal"]) < Decimal(before["outstanding"]["principal"])
    if method == "equal_principal":  # the principal part is kept: fewer periods
        assert short["periods"] < before["periods"]
    if method in ("interest_only", "bullet"):  # nothing to shorten
        assert short["maturity_on"] == before["maturity_on"]
    await assert_book_equals_loans(ctx)
    ctx = await run_days(ctx, 2)
    longer = await reschedule.reschedule(ctx, loan_id, {"annual_rate": "9", "extra_periods": 2,
                                                        "reason": "展期并降息"})
    assert longer["maturity_on"] > short["maturity_on"] and longer["annual_rate"] == "9"
    assert sum(cents(i["principal"]) for i in longer["installments"]) == 1_000_000
    await assert_book_equals_loans(ctx)
    ctx = await run_days(ctx, 3)
    await assert_book_equals_loans(ctx)
    await prepayment.prepay(ctx, loan_id, {"full": True})
    await assert_book_equals_loans(ctx)
