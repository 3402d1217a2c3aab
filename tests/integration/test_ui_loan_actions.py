"""What a cashier does on a loan's page, on both engines: preview a repayment (the
allocation shown, nothing written), confirm it once however often the form is sent,
refusals next to their fields in the user's language, reverse a repayment with a reason,
quote a payoff for a date, download the statement as PDF and Excel (audited), and a loan
officer without loan.repay refused on every money route."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any

from core import records
from core.tables import AuditEntry
from core.tenancy import Context, tenant_scope
from plugins.servicing import loans, payoff, repayments
from plugins.servicing.tables import JournalEntry, LoanTransaction
from tests.conftest import as_user, login
from tests.integration.test_ui_pages import field_error, other_client, sign_in
from tests.integration.test_ui_servicing import visible_customer

TOKEN_RE = re.compile(r'name="form_token" value="([^"]+)"')
PREVIEWED_RE = re.compile(r'name="previewed" value="([^"]*)"')


async def past_loan(tenant: Any, customer: str, days: int = 100) -> dict[str, Any]:
    """A JY01 loan of 10,000 at 12% over 12 months disbursed `days` ago (installments of
    888.49; three are due after 100 days)."""
    finance = await as_user(tenant, "finance")
    on = tenant.business_date - timedelta(days=days)
    return await loans.disburse(finance, {"customer_id": customer, "product": "JY01",
                                          "amount": "10000", "periods": 12,
                                          "annual_rate": "12",
                                          "disbursed_on": on.isoformat()})


async def written(tenant: Any) -> tuple[int, int, int]:
    """Loan transactions, journal entries and audit entries of the tenant."""
    ctx = Context.system(tenant)
    async with tenant_scope(ctx, write=False):
        return (await LoanTransaction.count().where(LoanTransaction.tenant_id == tenant.id),
                await JournalEntry.count().where(JournalEntry.tenant_id == tenant.id),
                await AuditEntry.count().where(AuditEntry.tenant_id == tenant.id))


async def repayment_form(client: Any, loan_id: str) -> dict[str, str]:
    r = await client.get(f"/servicing/loans/{loan_id}")
    assert r.status_code == 200, r.text
    assert 'id="repayment-form"' in r.text
    return {"form_token": TOKEN_RE.search(r.text).group(1)}  # type: ignore[union-attr]


async def test_the_preview_shows_the_allocation_and_writes_nothing(client: Any,
                                                                   demo: Any) -> None:
    tenant, passwords = demo
    csrf = await sign_in(client, tenant.slug, "finance", passwords["finance"])
    loan = await past_loan(tenant, await visible_customer(tenant, "finance"))
    page = (await client.get(f"/servicing/loans/{loan['id']}")).text
    assert "登记还款" in page and f'value="{tenant.business_date.isoformat()}"' in page
    assert "现金" in page and "转账" in page
    form = {"_csrf": csrf, **await repayment_form(client, loan["id"]), "amount": "1000",
            "paid_on": "", "channel": "cash", "reference": "收据 0001"}
    h = await login(client, tenant.slug, "finance", passwords["finance"])  # signing in audits
    before = await written(tenant)

    r = await client.post(f"/servicing/loans/{loan['id']}/repayment/preview",
                          headers={"HX-Request": "true"}, data=form)
    assert r.status_code == 200, r.text
    assert "<html" not in r.text and 'id="repayment-panel"' in r.text
    # period 1: interest 100.00 + principal 788.49 (settled); period 2: 92.12 + 19.39
    rows = re.findall(r"<tr>\s*<td class=\"num\">(\d+)</td>(.*?)</tr>", r.text, re.S)
    assert [n for n, _ in rows] == ["1", "2"]
    assert "100.00" in rows[0][1] and "788.49" in rows[0][1] and "已结清" in rows[0][1]
    assert "92.12" in rows[1][1] and "19.39" in rows[1][1] and "已结清" not in rows[1][1]
    assert "利息" in r.text and "本金" in r.text and "罚息" in r.text and "复利" in r.text
    assert re.search(r'class="applied">1,000.00<', r.text)
    assert re.search(r'class="credit">0.00<', r.text)
    assert 'id="confirm-repayment"' in r.text and "确认还款 1,000.00 元" in r.text

    # more than is due: the rest is shown as the customer's credit
    due = sum(Decimal(i["total"]) for i in loan["installments"][:3])
    r = await client.post(f"/servicing/loans/{loan['id']}/repayment/preview",
                          headers={"HX-Request": "true"}, data={**form, "amount": str(due + 5)})
    assert r.status_code == 200 and re.search(r'class="credit">5.00<', r.text)

    # the API preview: the same split, as JSON
    api = await client.post(f"/api/v1/loans/{loan['id']}/repayments/preview", headers=h,
                            json={"amount": "1000", "channel": "cash"})
    assert api.status_code == 200, api.text
    body = api.json()
    assert body["by_component"] == {"fees": "0.00", "penalty": "0.00", "compound": "0.00",
                                    "interest": "192.12", "principal": "807.88"}
    assert [(i["n"], i["total"], i["settles"]) for i in body["installments"]] == [
        (1, "888.49", True), (2, "111.51", False)]
    assert body["credit"] == "0.00" and body["paid_on"] == tenant.business_date.isoformat()
    assert await written(tenant) == before  # no transaction, journal or audit entry
    after = await loans.get_loan(await as_user(tenant, "finance"), uuid.UUID(loan["id"]))
    assert after["installments"] == loan["installments"]


async def test_confirming_posts_once_however_often_the_form_is_sent(client: Any,
                                                                    demo: Any) -> None:
    tenant, passwords = demo
    csrf = await sign_in(client, tenant.slug, "finance", passwords["finance"])
    loan = await past_loan(tenant, await visible_customer(tenant, "finance"))
    url = f"/servicing/loans/{loan['id']}"
    form = {"_csrf": csrf, **await repayment_form(client, loan["id"]), "amount": "888.49",
            "paid_on": tenant.business_date.isoformat(), "channel": "transfer",
            "reference": "YH20261120001"}
    before = await written(tenant)

    # a confirmation of figures nobody previewed is sent back with their allocation
    r = await client.post(f"{url}/repayment", data={**form, "previewed": ""})
    assert r.status_code == 422 and "试算之后金额、日期或方式有改动" in r.text
    assert 'id="confirm-repayment"' in r.text and "888.49" in r.text
    assert (await written(tenant))[:2] == before[:2]

    r = await client.post(f"{url}/repayment/preview", headers={"HX-Request": "true"},
                          data=form)
    previewed = PREVIEWED_RE.search(r.text).group(1)  # type: ignore[union-attr]
    assert previewed
    # figures changed after the preview: not posted, the new allocation shown instead
    r = await client.post(f"{url}/repayment", data={**form, "amount": "500",
                                                    "previewed": previewed})
    assert r.status_code == 422 and "试算之后" in r.text and "确认还款 500.00 元" in r.text
    assert (await written(tenant))[:2] == before[:2]

    first = await client.post(f"{url}/repayment", data={**form, "previewed": previewed})
    second = await client.post(f"{url}/repayment", data={**form, "previewed": previewed})
    assert first.status_code == second.status_code == 303, first.text
    assert first.headers["location"] == second.headers["location"]
    assert first.headers["location"].startswith(f"{url}?done=repaid")
    txns, entries, _ = await written(tenant)
    assert (txns, entries) == (before[0] + 1, before[1] + 1)
    finance = await as_user(tenant, "finance")
    after = await loans.get_loan(finance, uuid.UUID(loan["id"]))
    assert after["installments"][0]["paid"] == "888.49"
    assert [t["reference"] for t in after["transactions"] if t["kind"] == "repayment"] == [
        "YH20261120001"]

    page = await client.get(first.headers["location"])
    assert page.status_code == 200 and "还款已入账。" in page.text
    assert "YH20261120001" in page.text and "转账" in page.text
    assert TOKEN_RE.search(page.text).group(1) != form["form_token"]  # type: ignore[union-attr]


async def test_refusals_stand_next_to_their_fields_in_the_users_language(client: Any,
                                                                         demo: Any) -> None:
    tenant, passwords = demo
    csrf = await sign_in(client, tenant.slug, "finance", passwords["finance"])
    loan = await past_loan(tenant, await visible_customer(tenant, "finance"))
    url = f"/servicing/loans/{loan['id']}"
    form = {"_csrf": csrf, **await repayment_form(client, loan["id"]), "amount": "100",
            "paid_on": "", "channel": "cash", "reference": ""}
    hx = {"HX-Request": "true"}
    before = await written(tenant)

    r = await client.post(f"{url}/repayment/preview", headers=hx, data={**form, "amount": "-5"})
    assert r.status_code == 422 and 'id="confirm-repayment"' not in r.text
    assert "还款金额应为大于 0" in field_error(r.text, "amount")
    assert 'value="-5"' in r.text  # what was typed stays in the field
    r = await client.post(f"{url}/repayment/preview", headers=hx, data={**form, "amount": ""})
    assert field_error(r.text, "amount") == "还款金额为必填项"
    late = (tenant.business_date + timedelta(days=1)).isoformat()
    r = await client.post(f"{url}/repayment/preview", headers=hx, data={**form,
                                                                        "paid_on": late})
    assert r.status_code == 422
    assert f"还款日期不能晚于营业日 {tenant.business_date.isoformat()}" == field_error(
        r.text, "paid_on")
    r = await client.post(f"{url}/repayment/preview?lang=en", headers=hx,
                          data={**form, "amount": "12.345", "paid_on": late})
    assert "amount must be an amount in yuan" in field_error(r.text, "amount")
    assert "payment date cannot be after the business date" in field_error(r.text, "paid_on")
    early = (tenant.business_date - timedelta(days=101)).isoformat()
    r = await client.post(f"{url}/repayment/preview", headers=hx, data={**form,
                                                                        "paid_on": early})
    assert "不能早于放款日" in field_error(r.text, "paid_on")
    # the confirm route refuses the same way (a whole page, the field marked) and posts nothing
    r = await client.post(f"{url}/repayment", data={**form, "amount": "-5", "previewed": "x"})
    assert r.status_code == 422 and "<html" in r.text
    assert "还款金额应为大于 0" in field_error(r.text, "amount")
    assert 'aria-invalid="true" aria-describedby="e-amount"' in r.text
    assert (await written(tenant))[:2] == before[:2]

    # a settled loan takes no repayment (and its page offers none)
    finance = await as_user(tenant, "finance")
    total = sum(Decimal(i["total"]) for i in loan["installments"])
    old = await past_loan(tenant, await visible_customer(tenant, "finance"), days=400)
    await repayments.post_repayment(finance, uuid.UUID(old["id"]), {"amount": str(total)})
    page = (await client.get(f"/servicing/loans/{old['id']}")).text
    assert 'id="repayment-form"' not in page and 'id="payoff-panel"' not in page
    r = await client.post(f"/servicing/loans/{old['id']}/repayment/preview", headers=hx,
                          data=form)
    assert r.status_code == 422
    assert "不能还款" in re.search(r'id="e-form">([^<]*)<', r.text).group(1)  # type: ignore[union-attr]


async def test_a_repayment_is_reversed_from_the_transaction_list(client: Any,
                                                                 demo: Any) -> None:
    tenant, passwords = demo
    csrf = await sign_in(client, tenant.slug, "finance", passwords["finance"])
    loan = await past_loan(tenant, await visible_customer(tenant, "finance"))
    finance = await as_user(tenant, "finance")
    paid = await repayments.post_repayment(finance, uuid.UUID(loan["id"]),
                                           {"amount": "1000", "reference": "退票测试"})
    txn = next(t["id"] for t in paid["transactions"] if t["kind"] == "repayment")
    url = f"/servicing/loans/{loan['id']}"
    page = (await client.get(url)).text
    action = f"{url}/transactions/{txn}/reversal"
    assert f'action="{action}"' in page and "确认冲正" in page
    token = re.search(re.escape(action) + r'".*?name="form_token" value="([^"]+)"', page,
                      re.S).group(1)  # type: ignore[union-attr]
    disbursement = next(t["id"] for t in paid["transactions"] if t["kind"] == "disbursement")
    assert f"{url}/transactions/{disbursement}/reversal" not in page  # only repayments

    r = await client.post(action, data={"_csrf": csrf, "form_token": token, "reason": " "})
    assert r.status_code == 422 and field_error(r.text, "reason") == "冲正原因为必填项"
    assert re.search(r'<details class="reverse" open>', r.text)

    data = {"_csrf": csrf, "form_token": token, "reason": "转账退票"}
    first = await client.post(action, data=data)
    second = await client.post(action, data=data)
    assert first.status_code == second.status_code == 303, first.text
    assert first.headers["location"] == second.headers["location"]
    after = await loans.get_loan(finance, uuid.UUID(loan["id"]))
    assert [t["kind"] for t in after["transactions"]] == ["disbursement", "repayment",
                                                          "reversal"]
    assert after["installments"][0]["paid"] == "0.00"
    page = (await client.get(first.headers["location"])).text
    assert "还款已冲正" in page and "已冲正" in page and "转账退票" in page
    assert f'action="{action}"' not in page  # a reversed repayment offers no second reversal
    # a reversal already done is refused by the service, shown at the form
    token2 = TOKEN_RE.findall(page)[0]
    r = await client.post(action, data={**data, "form_token": token2})
    assert r.status_code == 422
    assert "该还款已冲正，不能再次冲正" in re.search(r'id="e-reversal"[^>]*>([^<]*)<', r.text).group(1)  # type: ignore[union-attr]


async def test_the_payoff_panel_quotes_any_date(client: Any, demo: Any) -> None:
    tenant, passwords = demo
    await sign_in(client, tenant.slug, "finance", passwords["finance"])
    loan = await past_loan(tenant, await visible_customer(tenant, "finance"))
    finance = await as_user(tenant, "finance")
    url = f"/servicing/loans/{loan['id']}"
    today = await payoff.payoff(finance, uuid.UUID(loan["id"]))
    page = (await client.get(url)).text
    assert 'id="payoff-panel"' in page and "提前结清试算" in page
    total = f"{Decimal(today['total']):,.2f}"
    assert f'<strong class="total">{total}</strong>' in page
    assert "可以提前结清" in page  # three periods are done; JY01 allows it after three

    on = tenant.business_date + timedelta(days=10)
    r = await client.get(f"{url}/payoff?on={on.isoformat()}", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text
    later = await payoff.payoff(finance, uuid.UUID(loan["id"]), on)
    for key in ("principal_ahead", "accrued_interest", "prepayment_fee", "total"):
        assert f"{Decimal(later[key]):,.2f}" in r.text, key
    assert f'value="{on.isoformat()}"' in r.text
    assert f"{Decimal(later['overdue']['interest']):,.2f}" in r.text

    r = await client.get(f"{url}/payoff?on=2000-01-01", headers={"HX-Request": "true"})
    assert r.status_code == 422 and "结清日期不能早于放款日" in field_error(r.text, "on")
    r = await client.get(f"{url}/payoff?on=someday&lang=en")  # without htmx: the whole page
    assert r.status_code == 422 and "<html" in r.text
    assert "payoff date must be a date as YYYY-MM-DD" in field_error(r.text, "on")

    young = await past_loan(tenant, await visible_customer(tenant, "finance"), days=40)
    r = await client.get(f"/servicing/loans/{young['id']}")
    assert "须还满 3 期后方可提前结清" in r.text


async def test_the_statement_downloads_as_pdf_and_excel_and_is_audited(client: Any,
                                                                       demo: Any) -> None:
    import openpyxl
    import pypdf

    tenant, passwords = demo
    await sign_in(client, tenant.slug, "finance", passwords["finance"])
    customer = await visible_customer(tenant, "finance")
    loan = await past_loan(tenant, customer)
    finance = await as_user(tenant, "finance")
    await repayments.post_repayment(finance, uuid.UUID(loan["id"]),
                                    {"amount": "888.49", "channel": "cash",
                                     "reference": "RCPT-77"})
    page = (await client.get(f"/servicing/loans/{loan['id']}")).text
    pdf_url = f"/api/v1/loans/{loan['id']}/statement?format=pdf&amp;lang=zh-CN"
    assert f'href="{pdf_url}"' in page and "对账单（Excel）" in page
    h = await login(client, tenant.slug, "finance", passwords["finance"])  # signing in audits
    audits = (await written(tenant))[2]

    r = await client.get(pdf_url.replace("&amp;", "&"))  # the page's link, signed in
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == (
        f"attachment; filename=\"statement-{loan['number']}.pdf\"; "
        f"filename*=UTF-8''%E5%AF%B9%E8%B4%A6%E5%8D%95-{loan['number']}.pdf")
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(BytesIO(r.content)).pages)
    assert loan["number"] in text and "888.49" in text and "888.47" in text
    assert "贷款对账单" in text and tenant.name in text and "RCPT-77" in text
    assert "10,000.00" in text and tenant.business_date.isoformat() in text
    admin = await as_user(tenant, "admin")
    name = str((await records.get(admin, "customer", customer))["name"])
    assert name not in text and f"{name[0]}{'*' * (len(name) - 1)}" in text  # masked

    r = await client.get(f"/api/v1/loans/{loan['id']}/statement?format=xlsx", headers=h)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "filename*=UTF-8''%E5%AF%B9%E8%B4%A6%E5%8D%95-" in r.headers["content-disposition"]
    book = openpyxl.load_workbook(BytesIO(r.content))
    assert book.sheetnames == ["对账单", "还款计划", "交易明细"]
    summary = {row[0]: row[1] for row in book["对账单"].iter_rows(min_row=3, values_only=True)
               if row[0]}
    assert summary["贷款编号"] == loan["number"]
    assert Decimal(str(summary["贷款金额（元）"])) == Decimal("10000")
    schedule = book["还款计划"]
    assert [c.value for c in schedule[1]][:6] == ["期次", "应还日期", "本金", "利息", "费用",
                                                  "合计"]
    first = schedule[2]
    assert first[0].value == 1 and first[5].number_format == "0.00"
    assert isinstance(first[5].value, int | float) and Decimal(str(first[5].value)) == \
        Decimal("888.49")
    assert Decimal(str(first[6].value)) == Decimal("888.49")  # paid
    assert Decimal(str(schedule[13][5].value)) == Decimal("888.47")  # the last installment
    txns = list(book["交易明细"].iter_rows(min_row=2, values_only=True))
    assert [(t[1], Decimal(str(t[2])), t[3], t[4]) for t in txns] == [
        ("放款", Decimal("10000"), "转账", None), ("还款", Decimal("888.49"), "现金", "RCPT-77")]

    r = await client.get(f"/api/v1/loans/{loan['id']}/statement?format=doc", headers=h)
    assert r.status_code == 422 and "对账单格式只能是 pdf 或 xlsx" in r.text
    r = await client.get(f"/api/v1/loans/{loan['id']}/statement?format=doc&lang=en",
                         headers=h)
    assert r.status_code == 422 and "format must be pdf or xlsx" in r.text
    async with tenant_scope(Context.system(tenant), write=False):
        rows = await AuditEntry.select(AuditEntry.action, AuditEntry.record_id,
                                       AuditEntry.diff).where(
            AuditEntry.tenant_id == tenant.id, AuditEntry.action == "loan.statement",
            AuditEntry.record_id == loan["id"]).output(load_json=True).run()
    assert sorted(r["diff"]["format"] for r in rows) == ["pdf", "xlsx"]
    assert (await written(tenant))[2] == audits + 2


async def test_an_officer_without_loan_repay_is_refused_on_the_money_routes(
        client: Any, demo: Any) -> None:
    tenant, passwords = demo
    customer = await visible_customer(tenant, "officer")
    loan = await past_loan(tenant, customer)
    finance = await as_user(tenant, "finance")
    paid = await repayments.post_repayment(finance, uuid.UUID(loan["id"]), {"amount": "100"})
    txn = next(t["id"] for t in paid["transactions"] if t["kind"] == "repayment")
    url = f"/servicing/loans/{loan['id']}"
    before = await written(tenant)
    async with other_client(client) as officer:
        csrf = await sign_in(officer, tenant.slug, "officer", passwords["officer"])
        page = await officer.get(url)
        assert page.status_code == 200
        assert 'id="repayment-form"' not in page.text and "/reversal" not in page.text
        assert 'id="payoff-panel"' in page.text  # reading is allowed
        data = {"_csrf": csrf, "form_token": "t" * 24, "amount": "100", "previewed": "x",
                "reason": "x"}
        for path in (f"{url}/repayment/preview", f"{url}/repayment",
                     f"{url}/transactions/{txn}/reversal"):
            r = await officer.post(path, data=data)
            assert r.status_code == 403, path
            assert "没有权限" in r.text
        h = await login(officer, tenant.slug, "officer", passwords["officer"])
        r = await officer.post(f"/api/v1/loans/{loan['id']}/repayments/preview", headers=h,
                               json={"amount": "100"})
        assert r.status_code == 403
        assert (await officer.get(f"{url}/payoff", headers={"HX-Request": "true"})
                ).status_code == 200
        r = await officer.get(f"/api/v1/loans/{loan['id']}/statement?format=pdf")
        assert r.status_code == 200  # loan.read is enough for a statement
    assert (await written(tenant))[:2] == before[:2]
