"""The product editor on both engines (plugins.servicing.pages_products): the general
manager creates a product through the form and changes it (version 2, loans keep their
frozen terms), refusals stand next to their field with nothing saved, the live preview
quotes the unsaved form, fee rows and the allocation order are changed by the server,
users without product.manage get 403, and a product quoting a daily rate (万分之N) is
disbursed at its exact annual equivalent with its APR."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest

from core.errors import ValidationFailed
from core.tenancy import tenant_scope
from plugins.servicing import loans, products, reschedule
from plugins.servicing.tables import Loan
from tests.conftest import as_user
from tests.integration.test_ui_pages import field_error, other_client, sign_in
from tests.integration.test_ui_servicing import visible_customer

HX = {"HX-Request": "true"}


class _Form(HTMLParser):
    """What a browser would send for the product form: inputs, checked boxes, selected
    options (the first option when none is), the textareas' text; no buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self._select: str | None = None
        self._first: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and a.get("name"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.data[a["name"]] = a.get("value") or "on"
            else:
                self.data[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select, self._first = a.get("name"), None
        elif tag == "option" and self._select:
            if self._first is None:
                self._first = a.get("value", "")
                self.data.setdefault(self._select, self._first)
            if "selected" in a:
                self.data[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def form_of(html: str) -> dict[str, str]:
    parser = _Form()
    parser.feed(html[html.index('id="product-form"'):])
    return parser.data


async def frozen_terms(ctx: Any, loan_id: str) -> dict[str, Any]:
    """What the loan froze at disbursement (the schedule request, rules, product version)."""
    async with tenant_scope(ctx, write=False):
        rows = await Loan.select(Loan.terms).where(Loan.tenant_id == ctx.tenant_id,
                                                   Loan.id == uuid.UUID(loan_id)).output(
            load_json=True).run()
    return rows[0]["terms"]


def new_code() -> str:
    return "T" + uuid.uuid4().hex[:6].upper()


FILLED = {"name": "测试经营贷", "amount_min": "10000", "amount_max": "300000",
          "term_min": "6", "term_max": "36", "rate_min": "8", "rate_max": "24",
          "rate_default": "12"}


async def new_form(client: Any, csrf: str, **changes: str) -> dict[str, str]:
    r = await client.get("/servicing/products/new")
    assert r.status_code == 200, r.text
    return {**form_of(r.text), **FILLED, **changes, "_csrf": csrf}


async def test_gm_creates_a_product_in_the_form_and_changes_it(client: Any, demo: Any
                                                                ) -> None:
    tenant, passwords = demo
    csrf = await sign_in(client, tenant.slug, "gm", passwords["gm"])
    r = await client.get("/servicing/products")
    assert r.status_code == 200 and 'href="/servicing/products/new"' in r.text
    assert "新建产品" in r.text
    code = new_code()
    data = await new_form(client, csrf, code=code, method="equal_principal")
    assert data["active"] == "on" and data["alloc-0"] == "fees" and data["day_count"] == \
        "actual/360"

    # a fee row is added by the server, the allocation order moved: nothing is saved yet
    r = await client.post("/servicing/products/new", headers=HX, data={**data, "op": "add_fee"})
    assert r.status_code == 200 and 'name="fee-0-name"' in r.text
    data = {**form_of(r.text), "_csrf": csrf}
    data.update({"fee-0-name": "服务费", "fee-0-kind": "percent", "fee-0-value": "1",
                 "fee-0-when": "disbursement"})
    r = await client.post("/servicing/products/new", data={**data, "op": "up:3"})
    assert r.status_code == 200
    data = {**form_of(r.text), "_csrf": csrf}
    assert [data[f"alloc-{i}"] for i in range(5)] == ["fees", "penalty", "interest",
                                                      "compound", "principal"]
    assert data["fee-0-name"] == "服务费"  # the rows came back with what was typed
    r = await client.post("/servicing/products/new", data={**data, "op": "add_fee"})
    data = {**form_of(r.text), "_csrf": csrf}
    data.update({"fee-1-name": "账户管理费", "fee-1-kind": "amount", "fee-1-value": "20",
                 "fee-1-when": "each_period"})
    r = await client.post("/servicing/products/new", data={**data, "op": "remove_fee:0"})
    data = {**form_of(r.text), "_csrf": csrf}
    assert data["fee-0-name"] == "账户管理费" and "fee-1-name" not in data
    gm = await as_user(tenant, "gm")
    assert code not in {p["code"] for p in await products.list_products(gm)}

    data.update({"penalty_kind": "annual_rate", "penalty_value": "36", "penalty_grace_days": "5",
                 "prepay_after": "3", "prepay_fee": "2", "prepay_mode": "reduce_installment",
                 "overpayment": "refuse", "class_attention": "1", "class_substandard": "61",
                 "class_doubtful": "181", "class_loss": "361", "alloc_mode": "item_first",
                 "day_count": "actual/365"})
    data.pop("penalty_compound", None)  # unticked
    r = await client.post("/servicing/products/new", data={**data, "op": "save"})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/servicing/products/{code}?saved=1"
    saved = await products.get_product(gm, code)
    c = saved["config"]
    assert (saved["name"], saved["version"], saved["active"]) == ("测试经营贷", 1, True)
    assert c["method"] == "equal_principal" and c["day_count"] == "actual/365"
    assert c["fees"] == [{"name": "账户管理费", "amount": "20", "when": "each_period"}]
    assert c["allocation"] == {"order": ["fees", "penalty", "interest", "compound",
                                         "principal"], "mode": "item_first"}
    assert c["penalty"] == {"annual_rate": "36", "compound": False, "grace_days": 5}
    assert c["prepayment"] == {"after_periods": 3, "fee_percent": "2",
                               "mode": "reduce_installment"}
    assert c["overpayment"] == "refuse" and "rate_quote" not in c
    assert c["classification"] == {"attention": 1, "substandard": 61, "doubtful": 181,
                                   "loss": 361}
    r = await client.get(r.headers["location"])
    assert r.status_code == 200 and "已保存：当前为第 1 版" in r.text
    assert f'href="/servicing/products/{code}/edit"' in r.text

    # a loan disbursed now keeps these terms when the product changes
    finance = await as_user(tenant, "finance")
    customer = await visible_customer(tenant, "finance")
    loan = await loans.disburse(finance, {"customer_id": customer, "product": code,
                                          "amount": "12000", "periods": 12})

    r = await client.get(f"/servicing/products/{code}/edit")
    assert r.status_code == 200 and "已放款的贷款保持放款时固定的条款" in r.text
    data = {**form_of(r.text), "_csrf": csrf}
    assert "code" not in data and data["version"] == "1" and data["method"] == \
        "equal_principal" and data["fee-0-value"] == "20" and data["class_doubtful"] == "181"
    data.update({"method": "equal_installment", "rate_max": "20", "name": "测试经营贷二"})
    r = await client.post(f"/servicing/products/{code}/edit", data={**data, "op": "save"})
    assert r.status_code == 303 and r.headers["location"].endswith("?saved=2")
    saved = await products.get_product(gm, code)
    assert (saved["version"], saved["name"], saved["config"]["method"],
            saved["config"]["rate_max"]) == (2, "测试经营贷二", "equal_installment", "20")
    assert saved["config"]["fees"] == c["fees"]  # the rest as it was
    assert "已保存：当前为第 2 版" in (await client.get(r.headers["location"])).text
    terms = await frozen_terms(finance, loan["id"])
    assert terms["product_version"] == 1 and terms["request"]["method"] == "equal_principal"
    assert terms["request"]["annual_rate"] == "12"

    # the same form sent again is stale: someone else's version 2 is not overwritten
    r = await client.post(f"/servicing/products/{code}/edit", data={**data, "op": "save"})
    assert r.status_code == 422 and "该产品已被他人修改（现为第 2 版）" in r.text
    # saved unchanged from a fresh form: no new version
    data = {**form_of((await client.get(f"/servicing/products/{code}/edit")).text),
            "_csrf": csrf}
    r = await client.post(f"/servicing/products/{code}/edit", data={**data, "op": "save"})
    assert r.status_code == 303 and r.headers["location"].endswith("?saved=same")
    assert (await products.get_product(gm, code))["version"] == 2


async def test_refusals_stand_next_to_their_field_and_nothing_is_saved(
        client: Any, demo: Any) -> None:
    tenant, passwords = demo
    csrf = await sign_in(client, tenant.slug, "gm", passwords["gm"])
    gm = await as_user(tenant, "gm")
    before = await products.list_products(gm)
    code = new_code()
    data = await new_form(client, csrf, code=code)

    r = await client.post("/servicing/products/new", data={**data, "rate_min": "30",
                                                           "op": "save"})
    assert r.status_code == 422
    assert field_error(r.text, "rate_min") == "最低利率不能大于上限 24"
    assert 'value="30"' in r.text and f'value="{code}"' in r.text  # the form as sent
    r = await client.post("/servicing/products/new?lang=en",
                          data={**data, "rate_min": "30", "op": "save"})
    assert field_error(r.text, "rate_min") == "minimum rate cannot exceed the maximum, 24"
    r = await client.post("/servicing/products/new",
                          data={**data, "alloc-1": "interest", "op": "save"})
    assert r.status_code == 422 and "冲账顺序须恰好包含" in field_error(r.text, "allocation")
    r = await client.post("/servicing/products/new", data={**data, "code": "JY01",
                                                           "op": "save"})
    assert r.status_code == 422 and "已有代码为 JY01 的产品" in field_error(r.text, "code")
    r = await client.post("/servicing/products/new", data={**data, "code": "a b",
                                                           "op": "save"})
    assert "产品代码须以字母或数字开头" in field_error(r.text, "code")
    r = await client.post("/servicing/products/new", data={**data, "term_max": "x",
                                                           "every": "0", "op": "save"})
    assert r.status_code == 422 and "应为整数" in field_error(r.text, "term_max")
    r = await client.post("/servicing/products/new", data={
        **data, "op": "save", "fee-0-name": "服务费", "fee-0-kind": "percent",
        "fee-0-value": "abc", "fee-0-when": "disbursement"})
    assert "应为不小于 0 的数字" in field_error(r.text, "fee-0-value")
    r = await client.post("/servicing/products/new", data={**data, "class_loss": "30",
                                                           "op": "save"})
    assert "五级分类下限" in field_error(r.text, "classification")
    r = await client.post("/servicing/products/new", data={**data, "rounding_multiple": "0",
                                                           "op": "save"})
    assert r.status_code == 422 and field_error(r.text, "rounding_multiple")
    assert await products.list_products(gm) == before

    # an edit refused changes nothing either
    r = await client.get("/servicing/products/XF01/edit")
    data = {**form_of(r.text), "_csrf": csrf}
    r = await client.post("/servicing/products/XF01/edit", data={
        **data, "rate_default": "30", "op": "save"})
    assert r.status_code == 422 and field_error(r.text, "rate_default") == \
        "默认利率应在 7.2 至 18 之间"
    assert await products.list_products(gm) == before


async def test_the_preview_quotes_the_unsaved_form(client: Any, demo: Any) -> None:
    tenant, passwords = demo
    csrf = await sign_in(client, tenant.slug, "gm", passwords["gm"])
    code = new_code()
    r = await client.get("/servicing/products/new")
    assert 'hx-post="/servicing/product-editor/preview"' in r.text
    data = {**(await new_form(client, csrf, code=code)), "sample_amount": "10000",
            "sample_periods": "12", "sample_rate": "12"}
    r = await client.post("/servicing/product-editor/preview", headers=HX, data=data)
    assert r.status_code == 200 and "<html" not in r.text
    assert r.text.count("888.49") == 11 and "888.47" in r.text  # DOMAIN.md's example
    assert '<strong class="apr">12.00%</strong>' in r.text
    # a fee at disbursement raises the APR, a change of method changes the schedule
    fee = {"fee-0-name": "服务费", "fee-0-kind": "percent", "fee-0-value": "1",
           "fee-0-when": "disbursement"}
    r = await client.post("/servicing/product-editor/preview", headers=HX,
                          data={**data, **fee})
    apr = re.search(r'<strong class="apr">([0-9.]+)%</strong>', r.text)
    assert apr and Decimal(apr.group(1)) > 12
    r = await client.post("/servicing/product-editor/preview", headers=HX,
                          data={**data, "method": "equal_principal"})
    assert "888.49" not in r.text and "933.33" in r.text  # 833.33 principal + 100 interest
    # the product's default rate when the sample leaves it empty
    r = await client.post("/servicing/product-editor/preview", headers=HX,
                          data={**data, "sample_rate": "", "rate_default": "12"})
    assert r.text.count("888.49") == 11
    # what saving would refuse, the preview says, by field
    r = await client.post("/servicing/product-editor/preview", headers=HX,
                          data={**data, "rate_min": "30"})
    assert r.status_code == 422 and '<li data-field="rate_min">最低利率不能大于上限 24</li>' in r.text
    r = await client.post("/servicing/product-editor/preview", headers=HX,
                          data={**data, "sample_amount": "999"})
    assert r.status_code == 422 and "贷款金额应在 10000 至 300000 之间" in r.text
    gm = await as_user(tenant, "gm")
    assert code not in {p["code"] for p in await products.list_products(gm)}
    r = await client.post("/servicing/product-editor/preview", data={
        k: v for k, v in data.items() if k != "_csrf"})
    assert r.status_code == 403  # no CSRF token, nothing computed


async def test_without_product_manage_there_is_no_editor(client: Any, demo: Any) -> None:
    tenant, passwords = demo
    for username in ("finance", "officer"):
        async with other_client(client) as browser:
            csrf = await sign_in(browser, tenant.slug, username, passwords[username])
            r = await browser.get("/servicing/products")
            assert r.status_code == 200 and 'href="/servicing/products/new"' not in r.text
            r = await browser.get("/servicing/products/JY01")
            assert r.status_code == 200 and "/servicing/products/JY01/edit" not in r.text
            for path in ("/servicing/products/new", "/servicing/products/JY01/edit"):
                r = await browser.get(path)
                assert r.status_code == 403 and "没有权限" in r.text, (username, path)
            data = {"_csrf": csrf, **FILLED, "code": new_code(), "op": "save",
                    "method": "equal_installment"}
            for path in ("/servicing/products/new", "/servicing/products/JY01/edit",
                         "/servicing/product-editor/preview"):
                r = await browser.post(path, data=data)
                assert r.status_code == 403, (username, path)
    gm = await as_user(tenant, "gm")
    assert (await products.get_product(gm, "JY01"))["version"] == 1


async def test_a_daily_rate_product_is_quoted_and_disbursed_at_its_annual_equivalent(
        client: Any, demo: Any) -> None:
    tenant, passwords = demo
    csrf = await sign_in(client, tenant.slug, "gm", passwords["gm"])
    code = new_code()
    data = await new_form(client, csrf, code=code, rate_quote="daily_wan", rate_min="3",
                          rate_max="6", rate_default="5")
    r = await client.post("/servicing/products/new", data={**data, "op": "save"})
    assert r.status_code == 303, r.text
    page = (await client.get(f"/servicing/products/{code}")).text
    assert "日利率万分之 3 – 6" in page and "日利率（万分之）" in page
    assert "日利率万分之5（年化 18.00%）" in page  # the preview at the default rate
    r = await client.post(f"/servicing/products/{code}/preview", headers=HX, data={
        "_csrf": csrf, "amount": "10000", "periods": "12", "annual_rate": "7"})
    assert r.status_code == 422 and "日利率应在万分之 3 至万分之 6 之间" in r.text

    finance = await as_user(tenant, "finance")
    customer = await visible_customer(tenant, "finance")
    loan = await loans.disburse(finance, {"customer_id": customer, "product": code,
                                          "amount": "10000", "periods": 12,
                                          "annual_rate": "4.5"})
    assert loan["annual_rate"] == "16.2"  # 4.5 × 360 / 100
    quote = products.quote((await products.get_product(finance, code))["config"],
                           Decimal("10000"), 12, Decimal("4.5"), tenant.business_date)
    assert loan["apr"] == str(quote.apr) and quote.apr == Decimal("16.20")
    assert (await frozen_terms(finance, loan["id"]))["request"]["annual_rate"] == "16.2"

    # a reschedule takes an annual rate: it is held to the range's annual equivalents
    r = await client.get(f"/servicing/loans/{loan['id']}")
    assert r.status_code == 200 and "目前 16.2%；产品允许 10.8% 至 21.6%" in r.text
    gm = await as_user(tenant, "gm")
    with pytest.raises(ValidationFailed) as info:
        await reschedule.reschedule(gm, uuid.UUID(loan["id"]), {"annual_rate": "30",
                                                                "reason": "测试"})
    assert info.value.errors[0].message("zh-CN") == "年利率应在 10.8 至 21.6 之间"

    # the disbursement form names the daily rate and its annual equivalent
    async with other_client(client) as browser:
        token = await sign_in(browser, tenant.slug, "finance", passwords["finance"])
        r = await browser.post("/servicing/disburse/quote", headers=HX, data={
            "_csrf": token, "form_token": "t" * 24, "customer_id": customer,
            "product": code, "amount": "10000", "periods": "12", "annual_rate": "4.5"})
        assert r.status_code == 200 and "日利率万分之4.5（年化 16.20%）" in r.text
        r = await browser.post("/servicing/disburse/quote", headers=HX, data={
            "_csrf": token, "form_token": "t" * 24, "customer_id": customer,
            "product": code, "amount": "10000", "periods": "12", "annual_rate": "18"})
        assert r.status_code == 422 and "日利率应在万分之 3 至万分之 6 之间" in r.text
