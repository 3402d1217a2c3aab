"""Products, quotes and disbursement on both engines: the schedule is frozen to the cent,
the ledger balances and equals the loan, refused input writes nothing, the money route
takes an Idempotency-Key, and loans follow their customer's visibility."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core import records
from core.errors import Conflict, ValidationFailed
from core.tenancy import tenant_scope
from plugins.servicing import ledger, loans, products
from plugins.servicing.tables import JournalEntry, Loan, LoanInstallment
from tests.conftest import as_user, login

CONFIG = {
    "method": "equal_installment", "frequency": "month", "interest_basis": "per_period",
    "amount_min": "1000", "amount_max": "500000", "term_min": 3, "term_max": 36,
    "rate_min": "6", "rate_max": "24", "rate_default": "12",
}


async def setup(new_tenant: Any, config: dict[str, Any] | None = None) -> tuple[Any, str]:
    ctx = await new_tenant(plugins=["crm", "servicing"])
    await products.save_product(ctx, "XD01", "经营贷", config or CONFIG)
    page = await records.list_records(ctx, "customer", {"kind": "individual"})
    return ctx, str(page.items[0]["id"])


async def test_a_disbursed_loan_freezes_its_schedule_to_the_cent(kernel: Any,
                                                                 new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    loan = await loans.disburse(ctx, {"customer_id": customer, "product": "XD01",
                                      "amount": "10000", "periods": 12})
    assert loan["number"].startswith(f"DK{ctx.tenant.business_date:%Y%m%d}")
    assert (loan["amount"], loan["annual_rate"], loan["status"]) == ("10000.00", "12", "active")
    first, last = loan["installments"][0], loan["installments"][-1]
    assert first["total"] == "888.49" and last["total"] == "888.47"  # DOMAIN.md
    assert sum(int(i["principal"].replace(".", "")) for i in loan["installments"]) == 1000000
    assert loan["outstanding"]["principal"] == "10000.00"
    assert loan["apr"] == "12.00"
    # changing the product later leaves the loan's frozen terms alone
    await products.save_product(ctx, "XD01", "经营贷", {**CONFIG, "rate_default": "18"})
    again = await loans.get_loan(ctx, uuid.UUID(loan["id"]))
    assert again["installments"] == loan["installments"] and again["annual_rate"] == "12"


async def test_the_ledger_balances_and_equals_the_loan(kernel: Any, new_tenant: Any) -> None:
    config = {**CONFIG, "fees": [{"name": "服务费", "percent": "2", "when": "disbursement"}]}
    ctx, customer = await setup(new_tenant, config)
    loan = await loans.disburse(ctx, {"customer_id": customer, "product": "XD01",
                                      "amount": "100000", "periods": 12})
    book = await ledger.balances(ctx)
    assert book[ledger.LOANS] == 10_000_000  # Dr 贷款 100,000.00
    assert book[ledger.BANK] == -9_800_000  # Cr 银行存款 98,000.00 paid out
    assert book[ledger.FEE_INCOME] == -200_000  # Cr 手续费收入 2,000.00
    assert sum(book.values()) == 0
    assert (await ledger.balances(ctx, uuid.UUID(loan["id"])))[ledger.LOANS] == 10_000_000
    rows = await ledger.trial_balance(ctx)
    assert sum(r["debit"] for r in rows) == sum(r["credit"] for r in rows) == 10_000_000
    from decimal import Decimal

    assert Decimal(loan["apr"]) > Decimal("12")  # the fee raises the annualised rate


async def test_an_entry_is_posted_once_and_must_balance(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm", "servicing"], records=False)
    on = ctx.tenant.business_date
    with pytest.raises(ValidationFailed) as info:
        await ledger.post(ctx, "x:1", on, [ledger.Line(ledger.LOANS, debit=100),
                                           ledger.Line(ledger.BANK, credit=99)])
    assert "借贷不平衡" in info.value.errors[0].message("zh-CN")
    with pytest.raises(ValidationFailed):
        await ledger.post(ctx, "x:2", on, [ledger.Line("9999", debit=1),
                                           ledger.Line(ledger.BANK, credit=1)])
    await ledger.post(ctx, "x:3", on, [ledger.Line(ledger.LOANS, debit=1),
                                       ledger.Line(ledger.BANK, credit=1)])
    with pytest.raises(Conflict):  # the key is unique per tenant: no second posting
        async with tenant_scope(ctx):
            await ledger.post(ctx, "x:3", on, [ledger.Line(ledger.LOANS, debit=1),
                                               ledger.Line(ledger.BANK, credit=1)])
    async with tenant_scope(ctx, write=False):
        assert await JournalEntry.count().where(JournalEntry.tenant_id == ctx.tenant_id) == 1


@pytest.mark.parametrize("change, field, text", [
    ({"amount": "999.99"}, "amount", "贷款金额应在 1000 至 500000 之间"),
    ({"amount": "1000.001"}, "amount", "最多两位小数"),
    ({"amount": -5}, "amount", "大于 0"),
    ({"periods": 48}, "periods", "期数应在 3 至 36 之间"),
    ({"annual_rate": "36"}, "annual_rate", "年利率应在 6 至 24 之间"),
    ({"disbursed_on": "2099-01-01"}, "disbursed_on", "不能晚于营业日"),
    ({"disbursed_on": "2026-02-30"}, "disbursed_on", "YYYY-MM-DD"),
])
async def test_bad_input_is_refused_by_name_and_nothing_is_written(
        kernel: Any, new_tenant: Any, change: dict[str, Any], field: str, text: str) -> None:
    ctx, customer = await setup(new_tenant)
    with pytest.raises(ValidationFailed) as info:
        await loans.disburse(ctx, {"customer_id": customer, "product": "XD01",
                                   "amount": "10000", "periods": 12, **change})
    [error] = info.value.errors
    assert error.field == field and text in error.message("zh-CN"), error.message("zh-CN")
    assert error.message("en") != error.message("zh-CN")
    async with tenant_scope(ctx, write=False):
        assert await Loan.count().where(Loan.tenant_id == ctx.tenant_id) == 0
        assert await LoanInstallment.count().where(LoanInstallment.tenant_id == ctx.tenant_id) \
            == 0
        assert await JournalEntry.count().where(JournalEntry.tenant_id == ctx.tenant_id) == 0


async def test_a_product_with_bad_ranges_is_refused(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm", "servicing"], records=False)
    with pytest.raises(ValidationFailed):
        await products.save_product(ctx, "BAD", "坏", {**CONFIG, "amount_min": "600000"})
    with pytest.raises(ValidationFailed):
        await products.save_product(ctx, "BAD", "坏", {**CONFIG, "method": "magic"})
    with pytest.raises(ValidationFailed):
        await products.save_product(ctx, "BAD", "坏", {**CONFIG, "surprise": 1})
    assert await products.list_products(ctx) == []


async def test_the_api_quotes_and_disburses_once_per_key(kernel: Any, client: Any,
                                                         new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    h = await login(client, ctx.tenant.slug)
    r = await client.post("/api/v1/products/XD01/quote", headers=h,
                          json={"amount": "10000", "periods": 12})
    assert r.status_code == 200, r.text
    assert r.json()["installments"][0]["total"] == "888.49" and r.json()["apr"] == "12.00"
    body = {"customer_id": customer, "product": "XD01", "amount": "10000", "periods": 12}
    r = await client.post("/api/v1/loans", headers=h, json=body)
    assert r.status_code == 400 and r.json()["code"] == "idempotency_key_missing"
    key = {"Idempotency-Key": f"loan-{uuid.uuid4()}"}
    first = await client.post("/api/v1/loans", headers={**h, **key}, json=body)
    again = await client.post("/api/v1/loans", headers={**h, **key}, json=body)
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
    assert len(await loans.list_loans(ctx)) == 1
    r = await client.post("/api/v1/loans", headers={**h, "Idempotency-Key": "k2"},
                          json={**body, "amount": "10"})
    assert r.status_code == 422 and "贷款金额" in r.text
    got = await client.get(f"/api/v1/loans/{first.json()['id']}", headers=h)
    assert got.status_code == 200 and got.json()["number"] == first.json()["number"]
    tb = (await client.get("/api/v1/ledger/trial-balance", headers=h)).json()
    assert tb["total_debit"] == tb["total_credit"] == "10000.00"


async def test_an_officer_sees_only_loans_of_own_customers(kernel: Any, new_tenant: Any
                                                          ) -> None:
    from core.identity import create_user

    ctx, customer = await setup(new_tenant)
    await create_user(ctx, "officer", "客户经理", "汾河 公园 晨跑 31", ["loan_officer"])
    loan = await loans.disburse(ctx, {"customer_id": customer, "product": "XD01",
                                      "amount": "10000", "periods": 12})
    officer = await as_user(ctx.tenant, "officer")
    assert await loans.list_loans(officer) == []  # not the officer's customer
    from core.errors import Forbidden, NotFound

    with pytest.raises(NotFound):
        await loans.get_loan(officer, uuid.UUID(loan["id"]))
    with pytest.raises(Forbidden):
        await loans.disburse(officer, {"customer_id": customer, "product": "XD01",
                                       "amount": "10000", "periods": 12})
