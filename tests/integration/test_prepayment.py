"""Prepayments on both engines: a full one equals the payoff quote and settles the loan; a
partial one writes a new schedule version (reduce_installment keeps the periods and lowers
the installment, reduce_term shortens the term) whose principal is what is still owed; the
fee goes to 6021; refusals name the field and the limit and write nothing; the route takes
effect once per Idempotency-Key; the book equals the loans after each operation and after
the close of business has run for a few days."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ValidationFailed
from core.tenancy import tenant_scope
from plugins.servicing import cob, ledger, loans, payoff, prepayment, products, repayments
from plugins.servicing.loans import yuan
from plugins.servicing.tables import JournalEntry, LoanInstallment, LoanTransaction
from tests.conftest import login
from tests.integration.test_cob import assert_book_equals_loans
from tests.integration.test_loans import CONFIG, setup


def cents(value: str) -> int:
    return int(Decimal(value) * 100)


async def fresh(ctx: Any) -> Any:
    return await cob.refreshed(ctx)


async def caught_up(new_tenant: Any, config: dict[str, Any] | None = None, days: int = 45,
                    **extra: Any) -> tuple[Any, uuid.UUID, str]:
    """A loan disbursed `days` ago with the close of business caught up to yesterday."""
    ctx, customer = await setup(new_tenant, config)
    on = ctx.tenant.business_date - timedelta(days=days)
    loan = await loans.disburse(ctx, {"customer_id": customer, "product": "XD01",
                                      "amount": "10000", "periods": 12,
                                      "disbursed_on": on.isoformat(), **extra})
    await cob.close_business_date(ctx)
    return await fresh(ctx), uuid.UUID(loan["id"]), customer


async def run_days(ctx: Any, days: int) -> Any:
    for _ in range(days):
        await cob.close_business_date(ctx)
        ctx = await fresh(ctx)
    return ctx


async def counts(ctx: Any) -> tuple[int, int, int]:
    async with tenant_scope(ctx, write=False):
        return (await LoanTransaction.count().where(LoanTransaction.tenant_id == ctx.tenant_id),
                await JournalEntry.count().where(JournalEntry.tenant_id == ctx.tenant_id),
                await LoanInstallment.count().where(
                    LoanInstallment.tenant_id == ctx.tenant_id))


async def test_a_full_prepayment_equals_the_payoff_and_settles(kernel: Any,
                                                               new_tenant: Any) -> None:
    config = {**CONFIG, "prepayment": {"after_periods": 0, "fee_percent": "1",
                                       "mode": "reduce_term"}}
    ctx, loan_id, _ = await caught_up(new_tenant, config)  # period 1 overdue, penalty on it
    q = await payoff.payoff(ctx, loan_id)
    assert Decimal(q["overdue"]["penalty"]) > 0 and Decimal(q["accrued_interest"]) > 0
    after = await prepayment.prepay(ctx, loan_id, {"full": True, "channel": "transfer"})
    assert after["status"] == "settled" and after["outstanding"]["principal"] == "0.00"
    assert after["prepayment"]["amount"] == q["total"] and after["prepayment"]["full"] is True
    assert after["prepayment"]["prepayment_fee"] == q["prepayment_fee"]
    assert after["schedule_version"] == 2
    assert [t["amount"] for t in after["transactions"] if t["kind"] == "prepayment"] \
        == [q["total"]]
    book = await ledger.balances(ctx, loan_id)
    for account in (ledger.LOANS, ledger.INTEREST_RECEIVABLE, ledger.FEE_RECEIVABLE,
                    ledger.PENALTY_RECEIVABLE):
        assert book.get(account, 0) == 0, account
    assert book[ledger.BANK] == -1_000_000 + cents(q["total"])
    assert all(i["settled_on"] for i in after["installments"])
    await assert_book_equals_loans(ctx)
    ctx = await run_days(ctx, 3)
    await assert_book_equals_loans(ctx)
    assert await ledger.balances(ctx, loan_id) == book  # a settled loan is not closed again
    with pytest.raises(ValidationFailed) as info:
        await prepayment.prepay(ctx, loan_id, {"amount": "100"})
    assert "已结清的贷款" in info.value.errors[0].message("zh-CN")
    assert "a settled loan" in info.value.errors[0].message("en")


async def test_reduce_installment_keeps_the_periods_and_lowers_the_installment(
        kernel: Any, new_tenant: Any) -> None:
    ctx, loan_id, _ = await caught_up(new_tenant)
    before = await loans.get_loan(ctx, loan_id)
    on = ctx.tenant.business_date
    q = await payoff.payoff(ctx, loan_id)
    due = sum(cents(v) for v in q["overdue"].values())
    after = await prepayment.prepay(ctx, loan_id, {"amount": "3000",
                                                   "mode": "reduce_installment"})
    split = after["prepayment"]
    assert split["full"] is False and split["mode"] == "reduce_installment"
    assert split["accrued_interest"] == q["accrued_interest"]
    assert cents(split["principal"]) == 300_000 - due - cents(q["accrued_interest"])
    old_ahead = [i for i in before["installments"] if i["due_on"] > on.isoformat()]
    new_ahead = [i for i in after["installments"] if i["due_on"] > on.isoformat()]
    assert len(new_ahead) == len(old_ahead) == 11
    assert [i["due_on"] for i in new_ahead] == [i["due_on"] for i in old_ahead]
    assert after["maturity_on"] == before["maturity_on"] and after["periods"] == 12
    assert Decimal(new_ahead[1]["total"]) < Decimal(old_ahead[1]["total"])
    # the interrupted period: due today, its accrued interest and the principal, settled
    [cut] = [i for i in after["installments"] if i["due_on"] == on.isoformat()]
    assert (cut["interest"], cut["principal"], cut["settled_on"]) == (
        split["accrued_interest"], split["principal"], on.isoformat())
    # the new version's principal is still the loan's; what is ahead is what is owed
    assert sum(cents(i["principal"]) for i in after["installments"]) == 1_000_000
    assert sum(cents(i["principal"]) for i in new_ahead) == cents(
        after["outstanding"]["principal"]) == 1_000_000 - cents(
        before["installments"][0]["principal"]) - cents(split["principal"])
    assert (await ledger.balances(ctx, loan_id))[ledger.LOANS] == cents(
        after["outstanding"]["principal"])
    await assert_book_equals_loans(ctx)
    async with tenant_scope(ctx, write=False):  # accrual was current: nothing to true up
        assert await JournalEntry.count().where(JournalEntry.tenant_id == ctx.tenant_id,
                                                JournalEntry.key.like("accrual:%")) == 0
    ctx = await run_days(ctx, 4)
    await assert_book_equals_loans(ctx)
    async with tenant_scope(ctx, write=False):  # the old version stays as history
        assert await LoanInstallment.count().where(
            LoanInstallment.tenant_id == ctx.tenant_id, LoanInstallment.loan_id == loan_id,
            LoanInstallment.schedule_version == 1) == 12


async def test_reduce_term_shortens_the_loan_at_about_the_same_installment(
        kernel: Any, new_tenant: Any) -> None:
    ctx, loan_id, _ = await caught_up(new_tenant)
    before = await loans.get_loan(ctx, loan_id)
    on = ctx.tenant.business_date.isoformat()
    after = await prepayment.prepay(ctx, loan_id, {"amount": "4000", "mode": "reduce_term"})
    old_ahead = [i for i in before["installments"] if i["due_on"] > on]
    new_ahead = [i for i in after["installments"] if i["due_on"] > on]
    assert len(new_ahead) < len(old_ahead) and after["periods"] < 12
    assert after["maturity_on"] < before["maturity_on"]
    assert after["maturity_on"] == new_ahead[-1]["due_on"]
    level = Decimal(old_ahead[1]["total"])
    assert all(Decimal(i["total"]) <= level for i in new_ahead[1:-1])
    assert Decimal(new_ahead[1]["total"]) > level - 100  # about the same installment
    assert sum(cents(i["principal"]) for i in new_ahead) == cents(
        after["outstanding"]["principal"])
    await assert_book_equals_loans(ctx)
    ctx = await run_days(ctx, 3)
    await assert_book_equals_loans(ctx)
    # a repayment on the new schedule and a second prepayment keep the book equal
    await repayments.post_repayment(ctx, loan_id, {"amount": "50"})
    again = await prepayment.prepay(ctx, loan_id, {"amount": "1000"})
    assert again["schedule_version"] == 3
    await assert_book_equals_loans(ctx)


async def test_the_prepayment_fee_is_income_and_the_amount_is_used_to_the_fen(
        kernel: Any, new_tenant: Any) -> None:
    config = {**CONFIG, "prepayment": {"after_periods": 1, "fee_percent": "2",
                                       "mode": "reduce_installment"}}
    ctx, loan_id, _ = await caught_up(new_tenant, config)
    q = await payoff.payoff(ctx, loan_id)
    income_before = (await ledger.balances(ctx)).get(ledger.FEE_INCOME, 0)
    after = await prepayment.prepay(ctx, loan_id, {"amount": "2000.01"})
    split = after["prepayment"]
    principal, fee = cents(split["principal"]), cents(split["prepayment_fee"])
    due = sum(cents(v) for v in q["overdue"].values())
    assert principal + fee == 200_001 - due - cents(q["accrued_interest"])
    assert abs(fee - principal * 2 / 100) <= 1  # 2% of the principal prepaid, to the fen
    assert (await ledger.balances(ctx)).get(ledger.FEE_INCOME, 0) == income_before - fee
    await assert_book_equals_loans(ctx)


async def test_more_than_the_payoff_is_credit_or_refused(kernel: Any, new_tenant: Any) -> None:
    ctx, loan_id, customer = await caught_up(new_tenant)
    q = await payoff.payoff(ctx, loan_id)
    after = await prepayment.prepay(ctx, loan_id, {"amount": str(Decimal(q["total"]) + 5)})
    assert after["status"] == "settled" and after["credit_balance"] == "5.00"
    assert (await ledger.balances(ctx))[ledger.CUSTOMER_CREDIT] == -500
    await products.save_product(ctx, "STRICT", "不收多缴", {**CONFIG, "overpayment": "refuse"})
    strict = await loans.disburse(ctx, {
        "customer_id": customer, "product": "STRICT", "amount": "10000", "periods": 12})
    total = (await payoff.payoff(ctx, uuid.UUID(strict["id"])))["total"]
    with pytest.raises(ValidationFailed) as info:
        await prepayment.prepay(ctx, uuid.UUID(strict["id"]),
                                {"amount": str(Decimal(total) + 1)})
    assert total in info.value.errors[0].message("zh-CN")
    assert "不接受多缴" in info.value.errors[0].message("zh-CN")
    await assert_book_equals_loans(ctx)


async def test_the_customers_credit_is_used_first(kernel: Any, new_tenant: Any) -> None:
    ctx, loan_id, _ = await caught_up(new_tenant)
    q = await payoff.payoff(ctx, loan_id)
    due = sum(Decimal(v) for v in q["overdue"].values())
    await repayments.post_repayment(ctx, loan_id, {"amount": str(due + 20)})  # 20 credit
    q = await payoff.payoff(ctx, loan_id)
    assert q["credit_balance"] == "20.00"
    after = await prepayment.prepay(ctx, loan_id, {"amount": q["total"]})
    assert after["status"] == "settled" and after["credit_balance"] == "0.00"
    assert after["prepayment"]["credit_used"] == "20.00"
    assert (await ledger.balances(ctx)).get(ledger.CUSTOMER_CREDIT, 0) == 0
    await assert_book_equals_loans(ctx)


async def test_a_back_dated_prepayment_trues_up_the_accrual(kernel: Any,
                                                             new_tenant: Any) -> None:
    ctx, loan_id, _ = await caught_up(new_tenant)  # the first due date was ~15 days ago
    on = ctx.tenant.business_date - timedelta(days=5)
    q = await payoff.payoff(ctx, loan_id, on)
    income = (await ledger.balances(ctx)).get(ledger.INTEREST_INCOME, 0)
    after = await prepayment.prepay(ctx, loan_id, {"amount": "5000", "paid_on": on.isoformat()})
    assert after["prepayment"]["accrued_interest"] == q["accrued_interest"]
    async with tenant_scope(ctx, write=False):
        [entry] = await JournalEntry.select().where(
            JournalEntry.tenant_id == ctx.tenant_id,
            JournalEntry.key == f"accrual:{loan_id}:v2").run()
    assert entry["posted_on"] == ctx.tenant.business_date
    # the days closed after `on` accrued on the old balance: less is earned on the new one
    assert (await ledger.balances(ctx)).get(ledger.INTEREST_INCOME, 0) > income
    await assert_book_equals_loans(ctx)
    ctx = await run_days(ctx, 3)
    await assert_book_equals_loans(ctx)


async def test_reversing_a_repayment_made_before_a_prepayment(kernel: Any,
                                                             new_tenant: Any) -> None:
    ctx, loan_id, _ = await caught_up(new_tenant)
    paid = await repayments.post_repayment(ctx, loan_id, {"amount": "500"})
    [txn] = [t for t in paid["transactions"] if t["kind"] == "repayment"]
    await prepayment.prepay(ctx, loan_id, {"amount": "3000"})
    after = await repayments.reverse_repayment(ctx, uuid.UUID(txn["id"]), "退票")
    assert after["installments"][0]["settled_on"] is None  # owed again, on the new version
    await assert_book_equals_loans(ctx)
    ctx = await run_days(ctx, 3)
    await assert_book_equals_loans(ctx)
    with pytest.raises(ValidationFailed) as info:  # a prepayment is not reversed this way
        prepaid = next(t for t in after["transactions"] if t["kind"] == "prepayment")
        await repayments.reverse_repayment(ctx, uuid.UUID(prepaid["id"]))
    assert "不是还款" in info.value.errors[0].message("zh-CN")


@pytest.mark.parametrize("change, text", [
    ({"amount": "-5"}, "大于 0"),
    ({"amount": "abc"}, "最多两位小数"),
    ({"amount": "100.001"}, "最多两位小数"),
    ({"amount": 100.5}, "收到 100.5"),
    ({"amount": "10"}, "不足以提前还本"),
    ({"paid_on": "2099-01-01"}, "不能晚于营业日"),
    ({"paid_on": "2000-01-01"}, "不能早于放款日"),
    ({"paid_on": "back"}, "不能早于已经到期的还款日"),
    ({"mode": "faster"}, "reduce_term（缩短期限）"),
    ({"full": "yes"}, "必须是“是”或“否”"),
    ({"channel": "bitcoin"}, "cash（现金）或 transfer（转账）"),
])
async def test_bad_prepayments_are_refused_and_write_nothing(
        kernel: Any, new_tenant: Any, change: dict[str, Any], text: str) -> None:
    ctx, loan_id, _ = await caught_up(new_tenant)
    if change.get("paid_on") == "back":  # before the first due date, which has passed
        change = {"paid_on": (ctx.tenant.business_date - timedelta(days=30)).isoformat()}
    before = await counts(ctx)
    with pytest.raises(ValidationFailed) as info:
        await prepayment.prepay(ctx, loan_id, {"amount": "3000", **change})
    [error] = info.value.errors
    assert text in error.message("zh-CN"), error.message("zh-CN")
    assert error.message("en") != error.message("zh-CN")
    assert await counts(ctx) == before


async def test_prepayment_waits_for_the_products_periods_and_the_close(
        kernel: Any, new_tenant: Any) -> None:
    config = {**CONFIG, "prepayment": {"after_periods": 3, "fee_percent": "0",
                                       "mode": "reduce_term"}}
    ctx, loan_id, customer = await caught_up(new_tenant, config)
    before = await counts(ctx)
    with pytest.raises(ValidationFailed) as info:
        await prepayment.prepay(ctx, loan_id, {"amount": "3000"})
    assert "须还满 3 期" in info.value.errors[0].message("zh-CN")
    assert "after 3 periods" in info.value.errors[0].message("en")
    # a back-dated loan the close has not caught up with cannot change its schedule yet
    late = await loans.disburse(ctx, {
        "customer_id": customer, "product": "XD01", "amount": "10000", "periods": 12,
        "disbursed_on": (ctx.tenant.business_date - timedelta(days=100)).isoformat()})
    before = await counts(ctx)
    with pytest.raises(ValidationFailed) as info:
        await prepayment.prepay(ctx, uuid.UUID(late["id"]), {"amount": "100"})
    assert "请先执行日终" in info.value.errors[0].message("zh-CN")
    assert await counts(ctx) == before


async def test_the_quote_shows_what_the_prepayment_does_and_writes_nothing(
        kernel: Any, client: Any, new_tenant: Any) -> None:
    ctx, loan_id, _ = await caught_up(new_tenant)
    h = await login(client, ctx.tenant.slug)
    before = await counts(ctx)
    body = {"amount": "3000", "mode": "reduce_term"}
    r = await client.post(f"/api/v1/loans/{loan_id}/prepayments/quote", headers=h, json=body)
    assert r.status_code == 200, r.text
    quoted = r.json()
    assert await counts(ctx) == before
    url = f"/api/v1/loans/{loan_id}/prepayments"
    r = await client.post(url, headers=h, json=body)
    assert r.status_code == 400 and r.json()["code"] == "idempotency_key_missing"
    key = {"Idempotency-Key": f"prepay-{uuid.uuid4()}"}
    first = await client.post(url, headers={**h, **key}, json=body)
    again = await client.post(url, headers={**h, **key}, json=body)
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
    done = first.json()
    assert done["installments"] == quoted["installments"]
    assert {k: done["prepayment"][k] for k in ("principal", "accrued_interest", "due")} == {
        k: quoted[k] for k in ("principal", "accrued_interest", "due")}
    async with tenant_scope(ctx, write=False):
        assert await LoanTransaction.count().where(
            LoanTransaction.tenant_id == ctx.tenant_id,
            LoanTransaction.kind == "prepayment") == 1
    r = await client.post(url, headers={**h, "Idempotency-Key": "p2"}, json={"amount": "1.001"})
    assert r.status_code == 422 and "提前还款金额" in r.text


async def test_a_loan_officer_may_not_prepay(kernel: Any, client: Any, new_tenant: Any) -> None:
    from core.identity import create_user

    ctx, loan_id, _ = await caught_up(new_tenant)
    await create_user(ctx, "officer", "客户经理", "汾河 公园 晨跑 31", ["loan_officer"])
    h = await login(client, ctx.tenant.slug, "officer", "汾河 公园 晨跑 31")
    r = await client.post(f"/api/v1/loans/{loan_id}/prepayments",
                          headers={**h, "Idempotency-Key": "o1"}, json={"amount": "3000"})
    assert r.status_code == 403, r.text


OPS = st.lists(st.one_of(
    st.tuples(st.just("repay"), st.integers(1, 150_000)),
    st.tuples(st.just("prepay"), st.integers(1, 700_000),
              st.sampled_from(prepayment.MODES)),
    st.tuples(st.just("full"), st.just(0)),
    st.tuples(st.just("close"), st.integers(1, 35)),
), min_size=1, max_size=6)


async def assert_nothing_negative(ctx: Any) -> None:
    """No loan's asset balance below zero, no installment paid beyond what it charged."""
    async with tenant_scope(ctx, write=False):
        rows = await LoanInstallment.select().where(LoanInstallment.tenant_id == ctx.tenant_id)
    for row in rows:
        for c in ("principal", "interest", "fees", "penalty", "compound"):
            assert 0 <= row[f"{c}_paid"] <= row[c], (row["n"], c)
    book = await ledger.balances(ctx)
    assert book.get(ledger.CUSTOMER_CREDIT, 0) <= 0
    for account in (ledger.LOANS, ledger.INTEREST_RECEIVABLE, ledger.FEE_RECEIVABLE,
                    ledger.PENALTY_RECEIVABLE):
        assert book.get(account, 0) >= 0, account


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, back=st.integers(0, 70))
async def test_random_money_movements_keep_the_book_equal_to_the_loans(
        sqlite: Any, ops: list[tuple[Any, ...]], back: int) -> None:
    """Repayments, partial and full prepayments and closes of business in any order: after
    each, the book equals the loans and nothing is negative; a refusal writes nothing."""
    from tests.conftest import _tenant_factory

    config = {**CONFIG, "fees": [{"name": "管理费", "percent": "0.1", "when": "each_period"}],
              "prepayment": {"after_periods": 0, "fee_percent": "1", "mode": "reduce_term"}}
    ctx, loan_id, _ = await caught_up(_tenant_factory(), config, days=back)
    for op, value, *rest in ops:
        before = await counts(ctx)
        try:
            if op == "repay":
                await repayments.post_repayment(ctx, loan_id, {"amount": yuan(value)})
            elif op == "prepay":
                await prepayment.prepay(ctx, loan_id, {"amount": yuan(value), "mode": rest[0]})
            elif op == "full":
                await prepayment.prepay(ctx, loan_id, {"full": True})
            else:
                ctx = await run_days(ctx, value)
        except ValidationFailed:
            assert await counts(ctx) == before
        await assert_book_equals_loans(ctx)
        await assert_nothing_negative(ctx)
