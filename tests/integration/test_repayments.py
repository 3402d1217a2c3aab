"""Repayments on both engines: allocated by the product's order to what is due, posted to
a balanced ledger that still equals the loan, overpayment kept as credit or refused,
settlement when all is paid, refusals that write nothing, the money route once per key."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.errors import ValidationFailed
from core.tenancy import tenant_scope
from plugins.servicing import ledger, loans, products, repayments
from plugins.servicing.tables import LoanTransaction
from tests.conftest import as_user, login
from tests.integration.test_loans import CONFIG, setup


async def disbursed_in_the_past(ctx: Any, customer: str, days: int = 100,
                                **extra: Any) -> dict[str, Any]:
    on = ctx.tenant.business_date - timedelta(days=days)
    return await loans.disburse(ctx, {"customer_id": customer, "product": "XD01",
                                      "amount": "10000", "periods": 12,
                                      "disbursed_on": on.isoformat(), **extra})


async def test_a_repayment_pays_what_is_due_oldest_first(kernel: Any, new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    loan = await disbursed_in_the_past(ctx, customer)  # three installments are due
    loan_id = uuid.UUID(loan["id"])
    after = await repayments.post_repayment(ctx, loan_id, {"amount": "1000",
                                                           "channel": "cash"})
    first, second = after["installments"][0], after["installments"][1]
    assert first["paid"] == "888.49" and first["settled_on"] == ctx.tenant.business_date \
        .isoformat()
    assert second["paid"] == "111.51" and second["settled_on"] is None
    # interest of the first period (100.00) then its principal (788.49), then period 2's
    # interest (92.12) and 19.39 of its principal
    interest = sum(Decimal(i["interest"]) for i in loan["installments"])
    assert Decimal(after["outstanding"]["interest"]) == interest - Decimal("192.12")
    book = await ledger.balances(ctx, loan_id)
    principal_left = sum(int(i["principal"].replace(".", "")) for i in loan["installments"]) \
        - (78849 + 1939)
    assert book[ledger.LOANS] == principal_left
    assert book[ledger.LOANS] == int(after["outstanding"]["principal"].replace(".", ""))
    assert sum((await ledger.balances(ctx)).values()) == 0


async def test_an_overpayment_is_kept_as_credit_or_refused(kernel: Any, new_tenant: Any
                                                           ) -> None:
    ctx, customer = await setup(new_tenant)
    loan = await disbursed_in_the_past(ctx, customer, days=40)  # one installment due
    after = await repayments.post_repayment(ctx, uuid.UUID(loan["id"]), {"amount": "900"})
    assert after["credit_balance"] == "11.51"
    assert (await ledger.balances(ctx))[ledger.CUSTOMER_CREDIT] == -1151
    await products.save_product(ctx, "STRICT", "不收多缴", {**CONFIG, "overpayment": "refuse"})
    strict = await loans.disburse(ctx, {
        "customer_id": customer, "product": "STRICT", "amount": "10000", "periods": 12,
        "disbursed_on": (ctx.tenant.business_date - timedelta(days=40)).isoformat()})
    with pytest.raises(ValidationFailed) as info:
        await repayments.post_repayment(ctx, uuid.UUID(strict["id"]), {"amount": "900"})
    assert "不接受多缴" in info.value.errors[0].message("zh-CN")
    assert "888.49" in info.value.errors[0].message("en")


async def test_paying_everything_settles_the_loan(kernel: Any, new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    loan = await disbursed_in_the_past(ctx, customer, days=400)  # all twelve are due
    total = sum(Decimal(i["total"]) for i in loan["installments"])
    after = await repayments.post_repayment(ctx, uuid.UUID(loan["id"]), {"amount": str(total)})
    assert after["status"] == "settled" and after["outstanding"]["principal"] == "0.00"
    assert (await ledger.balances(ctx, uuid.UUID(loan["id"])))[ledger.LOANS] == 0
    with pytest.raises(ValidationFailed) as info:
        await repayments.post_repayment(ctx, uuid.UUID(loan["id"]), {"amount": "1"})
    assert "settled" in info.value.errors[0].message("en")


@pytest.mark.parametrize("change, text", [
    ({"amount": "0"}, "大于 0"),
    ({"amount": "12.345"}, "最多两位小数"),
    ({"paid_on": "2099-01-01"}, "不能晚于营业日"),
    ({"paid_on": "2000-01-01"}, "不能早于放款日"),
    ({"channel": "bitcoin"}, "cash（现金）或 transfer（转账）"),
])
async def test_bad_repayments_are_refused_and_write_nothing(
        kernel: Any, new_tenant: Any, change: dict[str, Any], text: str) -> None:
    ctx, customer = await setup(new_tenant)
    loan = await disbursed_in_the_past(ctx, customer)
    with pytest.raises(ValidationFailed) as info:
        await repayments.post_repayment(ctx, uuid.UUID(loan["id"]),
                                        {"amount": "100", **change})
    assert text in info.value.errors[0].message("zh-CN"), info.value.errors[0].message("zh-CN")
    async with tenant_scope(ctx, write=False):
        assert await LoanTransaction.count().where(
            LoanTransaction.tenant_id == ctx.tenant_id,
            LoanTransaction.kind == "repayment") == 0


async def test_the_repayment_route_takes_effect_once_per_key(kernel: Any, client: Any,
                                                             new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    loan = await disbursed_in_the_past(ctx, customer)
    h = await login(client, ctx.tenant.slug)
    url = f"/api/v1/loans/{loan['id']}/repayments"
    key = {"Idempotency-Key": f"pay-{uuid.uuid4()}"}
    first = await client.post(url, headers={**h, **key}, json={"amount": "500"})
    again = await client.post(url, headers={**h, **key}, json={"amount": "500"})
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json()
    async with tenant_scope(ctx, write=False):
        assert await LoanTransaction.count().where(
            LoanTransaction.tenant_id == ctx.tenant_id,
            LoanTransaction.kind == "repayment") == 1
    assert first.json()["installments"][0]["paid"] == "500.00"


async def test_reversing_a_repayment_reallocates_the_later_ones(kernel: Any,
                                                                new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    loan = await disbursed_in_the_past(ctx, customer)
    loan_id = uuid.UUID(loan["id"])
    await repayments.post_repayment(ctx, loan_id, {"amount": "1000"})
    after_b = await repayments.post_repayment(ctx, loan_id, {"amount": "500"})
    a, b = [t for t in after_b["transactions"] if t["kind"] == "repayment"]
    assert after_b["installments"][1]["paid"] == "611.51"
    after = await repayments.reverse_repayment(ctx, uuid.UUID(a["id"]), "退票")
    # as if only the 500 had been paid: it now sits on the oldest installment
    assert [i["paid"] for i in after["installments"][:2]] == ["500.00", "0.00"]
    assert after["installments"][0]["settled_on"] is None
    assert [t["kind"] for t in after["transactions"]] == ["disbursement", "repayment",
                                                          "repayment", "reversal"]
    book = await ledger.balances(ctx, loan_id)
    assert book[ledger.LOANS] == int(after["outstanding"]["principal"].replace(".", ""))
    assert book[ledger.BANK] == -1_000_000 + 50_000  # paid out, then only the 500 stays
    assert sum((await ledger.balances(ctx)).values()) == 0
    with pytest.raises(ValidationFailed) as info:
        await repayments.reverse_repayment(ctx, uuid.UUID(a["id"]))
    assert "已冲正" in info.value.errors[0].message("zh-CN")
    assert b["id"] != a["id"]


async def test_reversing_the_payment_that_settled_a_loan_reopens_it(kernel: Any,
                                                                    new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    loan = await disbursed_in_the_past(ctx, customer, days=400)
    total = sum(Decimal(i["total"]) for i in loan["installments"])
    settled = await repayments.post_repayment(ctx, uuid.UUID(loan["id"]),
                                              {"amount": str(total + 5)})
    assert settled["status"] == "settled" and settled["credit_balance"] == "5.00"
    [payment] = [t for t in settled["transactions"] if t["kind"] == "repayment"]
    reopened = await repayments.reverse_repayment(ctx, uuid.UUID(payment["id"]))
    assert reopened["status"] == "active" and reopened["credit_balance"] == "0.00"
    assert reopened["outstanding"]["principal"] == "10000.00"
    assert (await ledger.balances(ctx, uuid.UUID(loan["id"])))[ledger.LOANS] == 1_000_000


async def test_the_reversal_route(kernel: Any, client: Any, new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    loan = await disbursed_in_the_past(ctx, customer)
    h = await login(client, ctx.tenant.slug)
    paid = await client.post(f"/api/v1/loans/{loan['id']}/repayments",
                             headers={**h, "Idempotency-Key": "p1"}, json={"amount": "300"})
    [txn] = [t for t in paid.json()["transactions"] if t["kind"] == "repayment"]
    url = f"/api/v1/loans/transactions/{txn['id']}/reversal"
    r = await client.post(url, headers={**h, "Idempotency-Key": "r1"}, json={"reason": "退票"})
    assert r.status_code == 201, r.text
    assert r.json()["installments"][0]["paid"] == "0.00"
    again = await client.post(url, headers={**h, "Idempotency-Key": "r2"}, json={})
    assert again.status_code == 422 and "已冲正" in again.text


async def test_the_demo_has_loans_in_every_state_and_a_balanced_book(
        kernel: Any, demo: Any) -> None:
    from core.tenancy import Context

    tenant, _ = demo
    ctx = Context.system(tenant)
    listed = await loans.list_loans(ctx)
    # other tests may add loans to the shared demo tenant: the pack's own states are there
    assert {"active", "settled", "written_off"} <= {loan["status"] for loan in listed}
    assert {"M0", "M1", "M2", "M3", "M3+"} <= {loan["bucket"] for loan in listed}
    outstanding = 0
    for item in listed:
        loan = await loans.get_loan(ctx, uuid.UUID(item["id"]))
        if loan["status"] != "written_off":  # off the books; still owed, for recovery
            outstanding += int(loan["outstanding"]["principal"].replace(".", ""))
    book = await ledger.balances(ctx)
    assert book[ledger.LOANS] == outstanding and sum(book.values()) == 0
    officer = await as_user(tenant, "officer")
    mine = await loans.list_loans(officer)
    assert 0 < len(mine) < len(listed)  # an officer sees the loans of own customers only


async def test_a_bad_loan_in_a_pack_names_its_line(kernel: Any, tmp_path: Any) -> None:
    from core.packs import PackError, apply_pack, load_pack

    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "pack.yaml").write_text("""format: 1
tenant:
  slug: badloan
  name: 坏贷款
  plugins: [crm, servicing]
products:
  P1:
    name: 产品
    config: {amount_min: "1000", amount_max: "5000", term_min: 3, term_max: 12,
             rate_min: "6", rate_max: "24"}
loans:
  - customer: {credit_code: 91110000600037341L}
    product: P1
    amount: "100"
    periods: 6
""", encoding="utf-8")
    with pytest.raises(PackError) as info:
        await apply_pack(load_pack(folder))
    assert "pack.yaml:12" in str(info.value) and "找不到客户" in str(info.value)


async def test_a_payoff_quote_owes_accrued_interest_not_future_interest(
        kernel: Any, client: Any, new_tenant: Any) -> None:
    from plugins.servicing import payoff

    config = {**CONFIG, "prepayment": {"after_periods": 2, "fee_percent": "1",
                                       "mode": "reduce_term"}}
    ctx, customer = await setup(new_tenant, config)
    loan = await disbursed_in_the_past(ctx, customer, days=45)  # period 1 due, period 2 runs
    first, second = loan["installments"][0], loan["installments"][1]
    on = ctx.tenant.business_date
    q = await payoff.payoff(ctx, uuid.UUID(loan["id"]), on)
    assert q["overdue"]["interest"] == first["interest"] == "100.00"
    assert Decimal(q["overdue"]["principal"]) == Decimal(first["principal"])
    due1, due2 = (date.fromisoformat(first["due_on"]), date.fromisoformat(second["due_on"]))
    share = Decimal(second["interest"]) * (on - due1).days / (due2 - due1).days
    assert Decimal(q["accrued_interest"]) == share.quantize(Decimal("0.01"),
                                                             rounding="ROUND_HALF_UP")
    ahead = Decimal("10000") - Decimal(first["principal"])
    assert Decimal(q["principal_ahead"]) == ahead
    assert Decimal(q["prepayment_fee"]) == (ahead / 100).quantize(Decimal("0.01"),
                                                                  rounding="ROUND_HALF_UP")
    assert q["allowed"] is False and q["allowed_after_periods"] == 2  # one period done
    assert Decimal(q["total"]) == Decimal("100.00") + Decimal(first["principal"]) + ahead \
        + Decimal(q["accrued_interest"]) + Decimal(q["prepayment_fee"])
    h = await login(client, ctx.tenant.slug)
    r = await client.get(f"/api/v1/loans/{loan['id']}/payoff", headers=h,
                         params={"on": on.isoformat()})
    assert r.status_code == 200 and r.json() == q
    r = await client.get(f"/api/v1/loans/{loan['id']}/payoff", headers=h,
                         params={"on": "2000-01-01"})
    assert r.status_code == 422 and "不能早于放款日" in r.text
