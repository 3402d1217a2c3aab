"""The servicing screens on both engines: products with a live schedule preview, the loans
list under object rules, the loan page, and the disbursement form (permission loan.disburse,
refusals by field, one loan per form however often it is sent); a tenant without the
plugin gets 404."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from core import records
from plugins.servicing import loans
from tests.conftest import as_user
from tests.integration.test_ui_pages import field_error, other_client, sign_in

TOKEN_RE = re.compile(r'name="form_token" value="([^"]+)"')
LOAN_RE = re.compile(r'href="/servicing/loans/([0-9a-f-]{36})"')


async def visible_customer(tenant: Any, username: str, not_for: str | None = None) -> str:
    """A customer `username` may see (and `not_for` may not, if given)."""
    ctx = await as_user(tenant, username)
    mine = [str(r["id"]) for r in (await records.list_records(ctx, "customer", {},
                                                              per_page=100)).items]
    if not_for:
        other = await as_user(tenant, not_for)
        theirs = {str(r["id"]) for r in (await records.list_records(
            other, "customer", {}, per_page=100)).items}
        mine = [c for c in mine if c not in theirs]
    assert mine
    return mine[0]


async def test_finance_sees_products_and_previews_a_schedule_without_reload(
        client: Any, demo: Any) -> None:
    tenant, passwords = demo
    token = await sign_in(client, tenant.slug, "finance", passwords["finance"])
    home = (await client.get("/")).text
    for path in ("/servicing/products", "/servicing/loans", "/servicing/disburse"):
        assert f'href="{path}"' in home, path
    r = await client.get("/servicing/products")
    assert r.status_code == 200 and "贷款产品" in r.text
    assert "JY01" in r.text and "XF01" in r.text and "等额本息" in r.text and "先息后本" in r.text
    assert "10,000.00 – 500,000.00" in r.text
    r = await client.get("/servicing/products/JY01")
    assert r.status_code == 200 and 'id="quote"' in r.text and "年化利率（IRR，含费用）" in r.text
    assert 'hx-post="/servicing/products/JY01/preview"' in r.text
    r = await client.post("/servicing/products/JY01/preview", headers={"HX-Request": "true"},
                          data={"_csrf": token, "amount": "10000", "periods": "12",
                                "annual_rate": "12"})
    assert r.status_code == 200 and "<html" not in r.text  # a fragment, not a page
    assert r.text.count("888.49") == 11 and "888.47" in r.text  # DOMAIN.md: the last is 888.47
    apr = re.search(r'<strong class="apr">([0-9.]+)%</strong>', r.text)
    assert apr and Decimal(apr.group(1)) > 12  # the 1% fee at disbursement raises the APR
    r = await client.post("/servicing/products/JY01/preview", headers={"HX-Request": "true"},
                          data={"_csrf": token, "amount": "999", "periods": "12"})
    assert r.status_code == 422 and "贷款金额应在 10000 至 500000 之间" in r.text
    r = await client.post("/servicing/products/JY01/preview",
                          data={"amount": "10000", "periods": "12"})
    assert r.status_code == 403  # no CSRF token, nothing computed
    r = await client.get("/servicing/products/NOPE")
    assert r.status_code == 404 and "没有代码为 NOPE 的贷款产品" in r.text


async def test_disbursing_from_the_form_creates_one_loan_and_shows_it(
        client: Any, demo: Any) -> None:
    tenant, passwords = demo
    csrf = await sign_in(client, tenant.slug, "finance", passwords["finance"])
    customer = await visible_customer(tenant, "finance")
    r = await client.get(f"/servicing/disburse?customer_id={customer}")
    assert r.status_code == 200 and f'value="{customer}"' in r.text
    form_token = TOKEN_RE.search(r.text).group(1)  # type: ignore[union-attr]
    data = {"_csrf": csrf, "form_token": form_token, "customer_id": customer,
            "product": "JY01", "amount": "10000", "periods": "12", "annual_rate": "12"}
    r = await client.post("/servicing/disburse/quote", headers={"HX-Request": "true"},
                          data=data)
    assert r.status_code == 200 and "888.49" in r.text and "将固定的还款计划" in r.text

    # refused input comes back in the form with the field's message; nothing is written
    ctx = await as_user(tenant, "finance")
    before = len(await loans.list_loans(ctx, customer))
    r = await client.post("/servicing/disburse", data={**data, "amount": "10000.001"})
    assert r.status_code == 422 and "最多两位小数" in field_error(r.text, "amount")
    assert 'value="10000.001"' in r.text and f'value="{form_token}"' in r.text
    r = await client.post("/servicing/disburse", data={**data, "customer_id": "nobody"})
    assert r.status_code == 422 and "找不到编号为" in field_error(r.text, "customer_id")
    r = await client.post("/servicing/disburse?lang=en", data={**data, "periods": "48"})
    assert r.status_code == 422 and "term must be between 6 and 36" in field_error(r.text,
                                                                                    "periods")
    assert len(await loans.list_loans(ctx, customer)) == before

    # the same form sent twice (a double click, a re-sent page) disburses once
    first = await client.post("/servicing/disburse", data=data)
    second = await client.post("/servicing/disburse", data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert len(await loans.list_loans(ctx, customer)) == before + 1
    # a new form is a new loan
    token2 = TOKEN_RE.search((await client.get("/servicing/disburse")).text).group(1)  # type: ignore[union-attr]
    assert token2 != form_token

    r = await client.get(first.headers["location"])
    assert r.status_code == 200 and "已放款，还款计划已固定。" in r.text
    assert f'href="/e/customer/{customer}"' in r.text and "JY01" in r.text
    assert "10,000.00" in r.text and r.text.count("888.49") == 11
    assert "年化利率（IRR，含费用）" in r.text and "放款" in r.text  # the transaction
    number = re.search(r'<h1 class="loan-number">(DK\d+)</h1>', r.text)
    assert number
    listing = (await client.get("/servicing/loans")).text
    assert number.group(1) in listing


async def test_officers_see_their_own_customers_loans_and_cannot_disburse(
        client: Any, demo: Any) -> None:
    tenant, passwords = demo
    finance = await as_user(tenant, "finance")
    mine = await visible_customer(tenant, "officer", not_for="officer2")
    theirs = await visible_customer(tenant, "officer2", not_for="officer")
    own = await loans.disburse(finance, {"customer_id": mine, "product": "XF01",
                                         "amount": "20000", "periods": 6})
    other = await loans.disburse(finance, {"customer_id": theirs, "product": "XF01",
                                           "amount": "30000", "periods": 6})
    async with other_client(client) as officer:
        csrf = await sign_in(officer, tenant.slug, "officer", passwords["officer"])
        home = (await officer.get("/")).text
        assert 'href="/servicing/loans"' in home and 'href="/servicing/disburse"' not in home
        r = await officer.get("/servicing/loans")
        assert r.status_code == 200
        shown = set(LOAN_RE.findall(r.text))
        assert own["id"] in shown and other["id"] not in shown
        assert (await officer.get(f"/servicing/loans/{own['id']}")).status_code == 200
        assert (await officer.get(f"/servicing/loans/{other['id']}")).status_code == 404
        r = await officer.get("/servicing/disburse")
        assert r.status_code == 403 and "没有权限" in r.text
        before = len(await loans.list_loans(finance, mine))
        r = await officer.post("/servicing/disburse", data={
            "_csrf": csrf, "form_token": "x" * 20, "customer_id": mine, "product": "XF01",
            "amount": "20000", "periods": "6"})
        assert r.status_code == 403
        assert len(await loans.list_loans(finance, mine)) == before


async def test_a_tenant_without_servicing_has_no_such_pages(client: Any,
                                                              new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm"], records=False)
    await sign_in(client, ctx.tenant.slug)
    assert "/servicing/" not in (await client.get("/")).text
    for path in ("/servicing/products", "/servicing/loans", "/servicing/disburse"):
        assert (await client.get(path)).status_code == 404, path
