"""Write-off and recovery on both engines: the loan's balances of 1303, 1132, 1221 and 1133
go against 1304 in one balanced entry, the close of business leaves the loan alone, money
received later is a recovery (Dr 1002 / Cr 1304) shown in the loan view, repayments and
prepayments are refused, refusals write nothing, and write-off needs `loan.write_off`."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from core.errors import ValidationFailed
from core.tenancy import tenant_scope
from plugins.servicing import ledger, loans, prepayment, repayments, writeoff
from plugins.servicing.tables import Loan
from tests.conftest import login
from tests.integration.test_cob import assert_book_equals_loans
from tests.integration.test_prepayment import caught_up, cents, counts, run_days

ASSETS = (ledger.LOANS, ledger.INTEREST_RECEIVABLE, ledger.FEE_RECEIVABLE,
          ledger.PENALTY_RECEIVABLE)
FEES = {"fees": [{"name": "账户管理费", "amount": "5", "when": "each_period"}]}


async def written_off(new_tenant: Any) -> tuple[Any, uuid.UUID, dict[str, int],
                                                dict[str, Any]]:
    from tests.integration.test_loans import CONFIG

    ctx, loan_id, _ = await caught_up(new_tenant, {**CONFIG, **FEES}, days=100)
    book = await ledger.balances(ctx, loan_id)
    loan = await writeoff.write_off(ctx, loan_id, {"reason": "借款人失联，诉讼无果"})
    return ctx, loan_id, book, loan


async def test_a_write_off_moves_the_balances_to_the_allowance(kernel: Any,
                                                               new_tenant: Any) -> None:
    ctx, loan_id, book, loan = await written_off(new_tenant)
    assert all(book[a] > 0 for a in ASSETS)  # principal, interest, fees and penalty owed
    total = sum(book[a] for a in ASSETS)
    assert loan["status"] == "written_off"
    assert loan["written_off_on"] == ctx.tenant.business_date.isoformat()
    assert loan["recovered"] == "0.00"
    [txn] = [t for t in loan["transactions"] if t["kind"] == "write_off"]
    assert cents(txn["amount"]) == total
    after = await ledger.balances(ctx, loan_id)
    assert all(after.get(a, 0) == 0 for a in ASSETS)
    # nothing was provided for it before: the write-off provides and uses it at once
    assert after.get(ledger.ALLOWANCE, 0) == 0 and after[ledger.IMPAIRMENT] == total
    assert cents(loan["outstanding"]["principal"]) == book[ledger.LOANS]  # still owed
    async with tenant_scope(ctx, write=False):
        row = await Loan.select().where(Loan.tenant_id == ctx.tenant_id,
                                        Loan.id == loan_id).first().run()
    assert row["interest_receivable"] == row["fees_receivable"] == 0
    await assert_book_equals_loans(ctx)
    ctx = await run_days(ctx, 3)  # the close leaves a written-off loan alone
    assert await ledger.balances(ctx, loan_id) == after
    async with tenant_scope(ctx, write=False):
        again = await Loan.select().where(Loan.tenant_id == ctx.tenant_id,
                                          Loan.id == loan_id).first().run()
    assert again["last_closed_on"] == row["last_closed_on"]
    await assert_book_equals_loans(ctx)


async def test_a_recovery_credits_the_allowance_and_shows_on_the_loan(
        kernel: Any, new_tenant: Any) -> None:
    ctx, loan_id, book, loan = await written_off(new_tenant)
    bank = (await ledger.balances(ctx))[ledger.BANK]
    after = await writeoff.recover(ctx, loan_id, {"amount": "1500", "channel": "transfer",
                                                  "reference": "法院执行款"})
    assert after["recovered"] == "1500.00" and after["status"] == "written_off"
    assert (await ledger.balances(ctx, loan_id))[ledger.ALLOWANCE] == -150_000  # Cr 1304
    assert (await ledger.balances(ctx))[ledger.BANK] == bank + 150_000
    assert after["installments"][0]["settled_on"] is not None  # the oldest is paid first
    paid = sum(cents(i["paid"]) for i in after["installments"])
    assert paid == sum(cents(i["paid"]) for i in loan["installments"]) + 150_000
    await writeoff.recover(ctx, loan_id, {"amount": "100"})
    assert (await loans.get_loan(ctx, loan_id))["recovered"] == "1600.00"
    await assert_book_equals_loans(ctx)
    ctx = await run_days(ctx, 2)
    await assert_book_equals_loans(ctx)


@pytest.mark.parametrize("action, body, text", [
    ("recover", {"amount": "0"}, "大于 0"),
    ("recover", {"amount": "abc"}, "收回金额应为"),
    ("recover", {"amount": "99999999"}, "超过核销后尚欠的"),
    ("recover", {"amount": "10", "paid_on": "2099-01-01"}, "不能晚于营业日"),
    ("recover", {"amount": "10", "paid_on": "yesterday"}, "不能早于核销日"),
    ("repay", {"amount": "10"}, "请登记为核销后收回"),
    ("prepay", {"amount": "10"}, "已核销的贷款不能提前还款"),
    ("write_off", {"reason": "again"}, "已核销的贷款不能核销"),
    ("reschedule", {"extra_periods": 1, "reason": "x"}, "已核销的贷款不能展期"),
])
async def test_refusals_after_a_write_off_write_nothing(
        kernel: Any, new_tenant: Any, action: str, body: dict[str, Any], text: str) -> None:
    from plugins.servicing import reschedule

    ctx, loan_id, _, _ = await written_off(new_tenant)
    if body.get("paid_on") == "yesterday":
        body = {**body, "paid_on": (ctx.tenant.business_date - timedelta(days=1)).isoformat()}
    call = {"recover": writeoff.recover, "repay": repayments.post_repayment,
            "prepay": prepayment.prepay, "write_off": writeoff.write_off,
            "reschedule": reschedule.reschedule}[action]
    before = await counts(ctx)
    with pytest.raises(ValidationFailed) as info:
        await call(ctx, loan_id, body)
    [error] = info.value.errors
    assert text in error.message("zh-CN"), error.message("zh-CN")
    assert error.message("en") != error.message("zh-CN")
    assert await counts(ctx) == before


async def test_an_active_loan_takes_no_recovery_and_a_write_off_needs_a_reason(
        kernel: Any, new_tenant: Any) -> None:
    ctx, loan_id, _ = await caught_up(new_tenant)
    before = await counts(ctx)
    with pytest.raises(ValidationFailed) as info:
        await writeoff.recover(ctx, loan_id, {"amount": "10"})
    assert "正常贷款不能登记核销后收回" in info.value.errors[0].message("zh-CN")
    with pytest.raises(ValidationFailed) as info:
        await writeoff.write_off(ctx, loan_id, {"reason": "  "})
    assert "核销原因为必填项" in info.value.errors[0].message("zh-CN")
    assert await counts(ctx) == before


async def test_a_reversal_on_a_written_off_loan_is_refused(kernel: Any,
                                                          new_tenant: Any) -> None:
    ctx, loan_id, _ = await caught_up(new_tenant)
    paid = await repayments.post_repayment(ctx, loan_id, {"amount": "300"})
    [txn] = [t for t in paid["transactions"] if t["kind"] == "repayment"]
    await writeoff.write_off(ctx, loan_id, {"reason": "失联"})
    before = await counts(ctx)
    with pytest.raises(ValidationFailed) as info:
        await repayments.reverse_repayment(ctx, uuid.UUID(txn["id"]), "退票")
    assert "已核销的贷款的还款不能冲正" in info.value.errors[0].message("zh-CN")
    assert await counts(ctx) == before
    await assert_book_equals_loans(ctx)


async def test_write_off_needs_its_permission_and_takes_effect_once_per_key(
        kernel: Any, client: Any, new_tenant: Any) -> None:
    from core.identity import create_user

    ctx, loan_id, _ = await caught_up(new_tenant)
    await create_user(ctx, "officer", "客户经理", "汾河 公园 晨跑 31", ["loan_officer"])
    await create_user(ctx, "cashier", "出纳", "汾河 公园 晨跑 32", ["finance"])
    url = f"/api/v1/loans/{loan_id}/write-off"
    for user, password in (("officer", "汾河 公园 晨跑 31"), ("cashier", "汾河 公园 晨跑 32")):
        h = await login(client, ctx.tenant.slug, user, password)
        r = await client.post(url, headers={**h, "Idempotency-Key": f"w-{user}"},
                              json={"reason": "x"})
        assert r.status_code == 403, (user, r.text)
    h = await login(client, ctx.tenant.slug)
    key = {"Idempotency-Key": f"wo-{uuid.uuid4()}"}
    first = await client.post(url, headers={**h, **key}, json={"reason": "失联"})
    again = await client.post(url, headers={**h, **key}, json={"reason": "失联"})
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json() and first.json()["status"] == "written_off"
    r = await client.post(f"/api/v1/loans/{loan_id}/recoveries",
                          headers={**h, "Idempotency-Key": "rc1"}, json={"amount": "20"})
    assert r.status_code == 201 and r.json()["recovered"] == "20.00"
