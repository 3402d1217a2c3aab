"""Close of business on both engines: accrual that adds up to the schedule, penalty and
compound interest to the cent (DOMAIN.md), days past due, buckets and the classification
floor with its history and events, reminders, the business date moving one day at a time,
a second run that changes nothing, and a ledger that always equals the loans."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from core.errors import ValidationFailed
from core.tables import OutboxMessage
from core.tenancy import tenant_scope
from plugins.servicing import cob, ledger, loans, products, repayments
from plugins.servicing.schedule import due_dates
from plugins.servicing.tables import Loan, LoanClassification, LoanInstallment, Posting
from tests.integration.test_loans import CONFIG, setup

BULLET = {**CONFIG, "method": "bullet", "term_min": 1, "rate_min": "6",
          "day_count": "actual/360",
          "penalty": {"multiplier": "1.5", "compound": True, "grace_days": 0}}


async def fresh(ctx: Any) -> Any:
    return await cob.refreshed(ctx)


async def disburse(ctx: Any, customer: str, on: date, product: str = "XD01",
                   **extra: Any) -> dict[str, Any]:
    data = {"customer_id": customer, "product": product, "amount": "10000", "periods": 12,
            "disbursed_on": on.isoformat(), **extra}
    return await loans.disburse(ctx, data)


async def state(ctx: Any) -> dict[str, Any]:
    """Everything the close may change, for comparing runs."""
    async with tenant_scope(ctx, write=False):
        rows = await Loan.select().where(Loan.tenant_id == ctx.tenant_id).order_by(Loan.id) \
            .output(load_json=True).run()
        for r in rows:
            r.pop("created_at")
        inst = await LoanInstallment.select().where(
            LoanInstallment.tenant_id == ctx.tenant_id).order_by(LoanInstallment.id).run()
        postings = await Posting.count().where(Posting.tenant_id == ctx.tenant_id)
    return {"loans": rows, "installments": inst, "postings": postings,
            "book": await ledger.balances(ctx)}


async def assert_book_equals_loans(ctx: Any) -> None:
    """Each loan's receivables and principal equal its postings; the book balances."""
    async with tenant_scope(ctx, write=False):
        rows = await Loan.select().where(Loan.tenant_id == ctx.tenant_id).run()
    for loan in rows:
        async with tenant_scope(ctx, write=False):
            _, inst = await loans.load(ctx, loan["id"])
        book = await ledger.balances(ctx, loan["id"])
        if loan["status"] == "written_off":
            continue
        owed = {c: sum(i[c] - i[f"{c}_paid"] for i in inst)
                for c in ("principal", "penalty", "compound")}
        assert book.get(ledger.LOANS, 0) == owed["principal"], loan["number"]
        assert book.get(ledger.INTEREST_RECEIVABLE, 0) == loan["interest_receivable"]
        assert book.get(ledger.FEE_RECEIVABLE, 0) == loan["fees_receivable"]
        assert book.get(ledger.PENALTY_RECEIVABLE, 0) == owed["penalty"] + owed["compound"]
        assert loan["interest_receivable"] >= 0 and loan["fees_receivable"] >= 0
    assert sum((await ledger.balances(ctx)).values()) == 0


async def test_a_back_dated_loan_catches_up_and_accrues_its_schedule(kernel: Any,
                                                                     new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    today = ctx.tenant.business_date
    loan = await disburse(ctx, customer, today - timedelta(days=100))
    run = await cob.close_business_date(ctx)
    assert run["status"] == "done" and run["loans"] == 101  # 101 loan-days, one loan
    ctx = await fresh(ctx)
    assert ctx.tenant.business_date == today + timedelta(days=1)
    async with tenant_scope(ctx, write=False):
        row, inst = await loans.load(ctx, uuid.UUID(loan["id"]))
    assert row["last_closed_on"] == today
    due = [i for i in inst if i["due_on"] <= today]
    running = next(i for i in inst if i["due_on"] > today)
    start = due[-1]["due_on"]
    days = (today - start).days + 1
    length = (running["due_on"] - start).days
    expected = sum(i["interest"] for i in due) + (2 * running["interest"] * days + length) \
        // (2 * length)
    assert row["interest_accrued"] == row["interest_receivable"] == expected
    # days past due as of the new business date; the bucket and the floor follow
    assert row["days_past_due"] == (ctx.tenant.business_date - due[0]["due_on"]).days
    assert row["bucket"] == "M3" and row["classification"] == "attention"
    assert sum(i["penalty"] for i in inst) > 0 and sum(i["compound"] for i in inst) > 0
    await assert_book_equals_loans(ctx)


async def test_penalty_and_compound_interest_to_the_cent(kernel: Any, new_tenant: Any) -> None:
    """DOMAIN.md: 10,000 overdue 30 days at 7.2% × 1.5 on actual/360 is 90.00; compound
    interest on the unpaid 60.00 of interest, same terms, is 0.54 (accrued exactly, not
    rounded day by day: 0.018 a day would otherwise become 0.60)."""
    ctx, customer = await setup(new_tenant)
    await products.save_product(ctx, "BL", "一次性还本付息", BULLET)
    today = ctx.tenant.business_date
    start = today - timedelta(days=30)
    on = start
    while due_dates(on, 1, "month", 1, None)[0] != start:  # due exactly 30 days ago
        on -= timedelta(days=1)
    loan = await disburse(ctx, customer, on, "BL", periods=1, annual_rate="7.2")
    assert loan["installments"][0]["interest"] == "60.00"
    await cob.close_business_date(ctx)
    async with tenant_scope(ctx, write=False):
        row, inst = await loans.load(ctx, uuid.UUID(loan["id"]))
    assert (inst[0]["penalty"], inst[0]["compound"]) == (9000, 54)
    assert row["days_past_due"] == 31 and row["bucket"] == "M2"
    await assert_book_equals_loans(await fresh(ctx))


async def test_grace_days_charge_nothing_then_everything(kernel: Any, new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    graced = {**BULLET, "penalty": {"multiplier": "1.5", "compound": False, "grace_days": 3}}
    await products.save_product(ctx, "BL", "一次性还本付息", graced)
    today = ctx.tenant.business_date
    made = {}
    for overdue in (3, 4):
        on = today - timedelta(days=overdue)
        while due_dates(on, 1, "month", 1, None)[0] != today - timedelta(days=overdue):
            on -= timedelta(days=1)
        made[overdue] = await disburse(ctx, customer, on, "BL", periods=1, annual_rate="7.2")
    await cob.close_business_date(ctx)
    async with tenant_scope(ctx, write=False):
        _, within = await loans.load(ctx, uuid.UUID(made[3]["id"]))
        _, beyond = await loans.load(ctx, uuid.UUID(made[4]["id"]))
    assert within[0]["penalty"] == 0  # three days of grace: nothing
    assert beyond[0]["penalty"] == 4 * 300 and beyond[0]["compound"] == 0  # four days


async def test_a_second_run_changes_nothing_and_skipping_a_day_is_refused(
        kernel: Any, new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    today = ctx.tenant.business_date
    await disburse(ctx, customer, today - timedelta(days=75))
    await cob.close_business_date(ctx)
    before = await state(ctx)
    again = await cob.close_business_date(ctx, today)  # already closed: the same run
    assert again["business_date"] == today.isoformat() and again["status"] == "done"
    assert await state(ctx) == before
    with pytest.raises(ValidationFailed) as info:
        await cob.close_business_date(ctx, today + timedelta(days=5))
    message = info.value.errors[0].message("zh-CN")
    assert (today + timedelta(days=1)).isoformat() in message and "跳过" in message
    assert await state(ctx) == before


async def test_repayments_collect_the_receivables_and_the_book_stays_equal(
        kernel: Any, new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    today = ctx.tenant.business_date
    loan = await disburse(ctx, customer, today - timedelta(days=65))
    await cob.close_business_date(ctx)
    ctx = await fresh(ctx)
    loan_id = uuid.UUID(loan["id"])
    before = (await ledger.balances(ctx, loan_id))[ledger.INTEREST_RECEIVABLE]
    paid = await repayments.post_repayment(ctx, loan_id, {"amount": "1000"})
    after = await ledger.balances(ctx, loan_id)
    assert after[ledger.INTEREST_RECEIVABLE] < before
    await assert_book_equals_loans(ctx)
    txn = next(t for t in paid["transactions"] if t["kind"] == "repayment")
    await repayments.reverse_repayment(ctx, uuid.UUID(txn["id"]), "退票")
    assert (await ledger.balances(ctx, loan_id))[ledger.INTEREST_RECEIVABLE] == before
    await assert_book_equals_loans(ctx)
    await cob.close_business_date(ctx)
    await assert_book_equals_loans(await fresh(ctx))


async def test_classification_history_events_and_reminders(kernel: Any,
                                                           new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    today = ctx.tenant.business_date
    late = await disburse(ctx, customer, today - timedelta(days=150))  # 4 installments due
    soon = None
    for back in range(1, 40):  # a loan whose first installment falls due in 3 days
        on = today - timedelta(days=back)
        if due_dates(on, 1, "month", 1, None)[0] == today + timedelta(days=4):
            soon = await disburse(ctx, customer, on)
            break
    assert soon is not None
    await cob.close_business_date(ctx)
    async with tenant_scope(ctx, write=False):
        history = await LoanClassification.select().where(
            LoanClassification.tenant_id == ctx.tenant_id,
            LoanClassification.loan_id == uuid.UUID(late["id"])).order_by(
            LoanClassification.changed_on).run()
        events = await OutboxMessage.select(OutboxMessage.name, OutboxMessage.payload).where(
            OutboxMessage.tenant_id == ctx.tenant_id).output(load_json=True).run()
    assert [(h["old"], h["new"]) for h in history] == [("normal", "attention"),
                                                      ("attention", "substandard")]
    assert history[1]["days_past_due"] == 91
    names = [e["name"] for e in events]
    assert "loan.classified" in names and "loan.overdue_stage" in names
    stages = [e["payload"]["bucket"] for e in events if e["name"] == "loan.overdue_stage"
              and e["payload"]["loan_id"] == late["id"]]
    assert stages == ["M1", "M2", "M3", "M3+"]
    due_soon = [e["payload"] for e in events if e["name"] == "installment.due_soon"]
    assert any(p["loan_id"] == soon["id"] and p["days"] == 3 and p["n"] == 1
               and p["amount"] == "888.49" for p in due_soon)


async def test_a_manual_classification_is_never_better_than_the_floor(kernel: Any,
                                                                       new_tenant: Any) -> None:
    from core.errors import Forbidden
    from core.tables import AuditEntry
    from plugins.servicing import classification

    ctx, customer = await setup(new_tenant)
    loan = await disburse(ctx, customer, ctx.tenant.business_date - timedelta(days=45))
    await cob.close_business_date(ctx)
    ctx = await fresh(ctx)
    loan_id = uuid.UUID(loan["id"])
    assert (await loans.get_loan(ctx, loan_id))["classification"] == "attention"
    with pytest.raises(ValidationFailed) as info:
        await classification.override(ctx, loan_id, "normal", "客户承诺还款")
    assert "下限" in info.value.errors[0].message("zh-CN")
    with pytest.raises(ValidationFailed) as info:
        await classification.override(ctx, loan_id, "doubtful", "破产")
    assert info.value.errors[0].field == "reason"
    with pytest.raises(ValidationFailed):
        await classification.override(ctx, loan_id, "terrible", "客户已申请破产重整")
    done = await classification.override(ctx, loan_id, "doubtful", "客户已申请破产重整")
    assert done == {"classification": "doubtful", "floor": "attention", "override": "doubtful"}
    shown = await loans.get_loan(ctx, loan_id)
    assert (shown["classification"], shown["classification_floor"]) == ("doubtful", "attention")
    await cob.close_business_date(ctx)  # the close keeps the override
    ctx = await fresh(ctx)
    assert (await loans.get_loan(ctx, loan_id))["classification"] == "doubtful"
    await classification.override(ctx, loan_id, None, "重整计划获批，恢复按逾期天数分类")
    assert (await loans.get_loan(ctx, loan_id))["classification"] == "attention"
    changes = await classification.history(ctx, loan_id)
    assert [(c["source"], c["new"]) for c in changes[:2]] == [("manual", "attention"),
                                                             ("manual", "doubtful")]
    async with tenant_scope(ctx, write=False):
        audited = await AuditEntry.count().where(AuditEntry.tenant_id == ctx.tenant_id,
                                                 AuditEntry.action == "loan.classify")
    assert audited == 2
    officer = ctx.__class__(tenant=ctx.tenant, username="o")  # no permissions at all
    with pytest.raises(Forbidden):
        await classification.override(officer, loan_id, "loss", "无权限的人试图调整")


async def test_catch_up_closes_back_dated_loans_and_keeps_the_date(kernel: Any,
                                                                   new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    today = ctx.tenant.business_date
    loan = await disburse(ctx, customer, today - timedelta(days=70))
    assert await cob.catch_up(ctx) == 70
    ctx = await fresh(ctx)
    assert ctx.tenant.business_date == today
    async with tenant_scope(ctx, write=False):
        row, _ = await loans.load(ctx, uuid.UUID(loan["id"]))
    assert row["last_closed_on"] == today - timedelta(days=1) and row["days_past_due"] > 0
    await assert_book_equals_loans(ctx)
    run = await cob.close_business_date(ctx)  # tonight's close takes the last day only
    assert run["loans"] == 1


async def test_the_close_through_the_api_and_the_screen(kernel: Any, new_tenant: Any,
                                                        client: Any) -> None:
    from core import outbox
    from tests.conftest import login
    from tests.integration.test_ui_pages import sign_in

    ctx, customer = await setup(new_tenant)
    today = ctx.tenant.business_date
    loan = await disburse(ctx, customer, today - timedelta(days=40))
    h = await login(client, ctx.tenant.slug)
    r = await client.post("/api/v1/cob/runs", headers=h,
                          json={"business_date": (today + timedelta(days=2)).isoformat()})
    assert r.status_code == 422 and "跳过" in r.text
    r = await client.post("/api/v1/cob/runs", headers=h, json={})
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    await outbox.run_due(ctx.tenant)
    r = await client.get("/api/v1/cob/runs", headers=h)
    body = r.json()
    assert body["business_date"] == (today + timedelta(days=1)).isoformat()
    assert body["runs"][0]["status"] == "done" and body["runs"][0]["loans"] == 41
    csrf = await sign_in(client, ctx.tenant.slug)
    page = await client.get("/servicing/cob")
    assert page.status_code == 200 and "日终" in page.text and "cob-done" in page.text
    r = await client.post(f"/servicing/loans/{loan['id']}/classification",
                          data={"_csrf": csrf, "classification": "loss", "reason": "短"})
    assert r.status_code == 422 and "原因" in r.text
    r = await client.post(f"/servicing/loans/{loan['id']}/classification",
                          data={"_csrf": csrf, "classification": "substandard",
                                "reason": "借款人经营恶化"})
    assert r.status_code == 303
    page = await client.get(f"/servicing/loans/{loan['id']}")
    assert "借款人经营恶化" in page.text and "classification-history" in page.text
    r = await client.post("/servicing/cob/run", data={"_csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/servicing/cob?queued=1"


async def test_account_statements_and_the_ledger_screens(kernel: Any, new_tenant: Any,
                                                         client: Any) -> None:
    from tests.conftest import login
    from tests.integration.test_ui_pages import sign_in

    ctx, customer = await setup(new_tenant)
    today = ctx.tenant.business_date
    loan = await disburse(ctx, customer, today - timedelta(days=40))
    await cob.close_business_date(ctx)
    ctx = await fresh(ctx)
    loan_id = uuid.UUID(loan["id"])
    found = await ledger.account_statement(ctx, ledger.INTEREST_RECEIVABLE, loan_id=loan_id)
    assert len(found["lines"]) == 41  # one accrual a day, 41 closed days
    assert found["closing"] == found["lines"][-1]["balance"] == (
        await ledger.balances(ctx, loan_id))[ledger.INTEREST_RECEIVABLE]
    later = await ledger.account_statement(ctx, ledger.INTEREST_RECEIVABLE,
                                           start=today - timedelta(days=10), loan_id=loan_id)
    assert later["opening"] + sum(line["debit"] for line in later["lines"]) == later["closing"]
    assert len(later["lines"]) == 11
    with pytest.raises(ValidationFailed):
        await ledger.account_statement(ctx, "9999")
    h = await login(client, ctx.tenant.slug)
    r = await client.get(f"/api/v1/ledger/accounts/1303/statement?loan_id={loan_id}",
                         headers=h)
    assert r.status_code == 200 and r.json()["closing"] == "10000.00", r.text
    await sign_in(client, ctx.tenant.slug)
    page = await client.get("/servicing/ledger")
    assert page.status_code == 200 and "试算平衡表" in page.text and "1132" in page.text
    page = await client.get("/servicing/ledger/1132")
    assert page.status_code == 200 and "日终计提" in page.text and loan["number"] in page.text


async def test_the_chart_of_accounts_is_configurable(kernel: Any, new_tenant: Any) -> None:
    ctx, _ = await setup(new_tenant)
    await ledger.configure_chart(ctx, {"1002": "银行存款（基本户）",
                                       "6051": {"name": "其他业务收入", "kind": "income"}})
    chart = {a["code"]: a for a in await ledger.chart(ctx)}
    assert chart["1002"]["name"] == "银行存款（基本户）" and chart["6051"]["kind"] == "income"
    for bad in ({"1303": {"name": "贷款", "kind": "income"}},  # a built-in keeps its kind
                {"7001": "没有类别的新科目"}, {"12": "太短"}, {"1002": ""}):
        with pytest.raises(ValidationFailed) as info:
            await ledger.configure_chart(ctx, bad)
        assert "会计科目" in info.value.errors[0].message("zh-CN")
    assert {a["code"] for a in await ledger.chart(ctx)} == set(chart)
    from plugins.servicing.pack import export_ledger

    exported = await export_ledger(ctx)
    assert exported["accounts"]["6051"] == {"name": "其他业务收入", "kind": "income"}
