"""The loan page's other money movements, on both engines: a prepayment previewed (its split
and new schedule shown, nothing written) then confirmed once however often the form is
sent, making schedule version 2 shown on the page; paying off in full; prepayment refusals
next to their fields in the user's language; a reschedule through its form; a write-off
then a recovery through theirs; and each route refused to whoever lacks its permission
(a loan officer everywhere, finance on the write-off)."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

from core.tenancy import Context, tenant_scope
from plugins.servicing import cob, loans, payoff, prepayment
from plugins.servicing.tables import LoanTransaction
from tests.conftest import as_user
from tests.integration.test_ui_loan_actions import TOKEN_RE, past_loan, written
from tests.integration.test_ui_pages import field_error, other_client, sign_in
from tests.integration.test_ui_servicing import visible_customer

PREVIEWED_RE = re.compile(r'name="previewed" value="([^"]*)"')
HX = {"HX-Request": "true"}


async def caught_up(tenant: Any, customer: str, days: int = 100) -> dict[str, Any]:
    """A back-dated JY01 loan (see past_loan) closed through yesterday, as a schedule
    change needs: the demo tenant's business date stays where it is."""
    loan = await past_loan(tenant, customer, days)
    await cob.catch_up(await as_user(tenant, "finance"))
    return loan


def token_of(html: str, action: str) -> str:
    """The one-time token of the form posting to `action`."""
    m = re.search(re.escape(f'action="{action}"') + r'.*?name="form_token" value="([^"]+)"',
                  html, re.S)
    assert m, action
    return m.group(1)


def form_error(html: str, prefix: str) -> str:
    m = re.search(rf'id="e-{prefix}form">([^<]*)<', html)
    return m.group(1) if m else ""


async def kinds(tenant: Any, loan_id: str) -> list[str]:
    async with tenant_scope(Context.system(tenant), write=False):
        rows = await LoanTransaction.select(LoanTransaction.kind).where(
            LoanTransaction.tenant_id == tenant.id,
            LoanTransaction.loan_id == uuid.UUID(loan_id)).order_by(
            LoanTransaction.created_at).run()
    return [r["kind"] for r in rows]


def shown(amount: str) -> str:
    return f"{Decimal(amount):,.2f}"


async def test_a_prepayment_is_previewed_then_posted_once_as_schedule_version_2(
        client: Any, demo: Any) -> None:
    tenant, passwords = demo
    csrf = await sign_in(client, tenant.slug, "finance", passwords["finance"])
    loan = await caught_up(tenant, await visible_customer(tenant, "finance"))
    url = f"/servicing/loans/{loan['id']}"
    page = (await client.get(url)).text
    assert 'id="prepayment-form"' in page and "提前还款" in page
    assert "schedule-version\">第 1 版<" in page
    assert re.search(r'<option value="reduce_term" selected>缩短期限</option>', page)  # JY01's
    assert "减少月供" in page and "还满 3 期后可以提前还款" in page
    form = {"_csrf": csrf, "form_token": token_of(page, f"{url}/prepayment"),
            "amount": "3000", "paid_on": "", "channel": "transfer",
            "reference": "TQ-0001", "mode": "reduce_installment"}
    before = await written(tenant)

    r = await client.post(f"{url}/prepayment/preview", headers=HX, data=form)
    assert r.status_code == 200, r.text
    assert "<html" not in r.text and 'id="prepayment-panel"' in r.text
    finance = await as_user(tenant, "finance")
    q = await prepayment.quote(finance, uuid.UUID(loan["id"]),
                               {"amount": "3000", "mode": "reduce_installment"})
    assert q["schedule_version"] == 2 and q["full"] is False
    for css, key in (("accrued", "accrued_interest"), ("prepayment-fee", "prepayment_fee"),
                     ("principal", "principal"), ("credit", "credit")):
        assert f'class="{css}">{shown(q[key])}<' in r.text, css
    assert Decimal(q["due"]["interest"]) > 0
    assert f'class="due-interest">{shown(q["due"]["interest"])}<' in r.text
    last = q["installments"][-1]["due_on"]
    assert f"新的还款计划（第 2 版，减少月供）：最后一期 {last} 到期" in r.text
    rows = re.findall(r"<tr>\s*<td class=\"num\">(\d+)</td>", r.text.split(
        "new-schedule-table", 1)[1])
    assert [int(n) for n in rows] == [i["n"] for i in q["installments"]]
    assert 'id="confirm-prepayment"' in r.text and "确认提前还款 3,000.00 元" in r.text
    previewed = PREVIEWED_RE.search(r.text).group(1)  # type: ignore[union-attr]
    assert previewed
    assert await written(tenant) == before  # no transaction, journal or audit entry

    # a confirmation nobody previewed, or of other figures, is sent back with the new split
    r = await client.post(f"{url}/prepayment", data={**form, "previewed": ""})
    assert r.status_code == 422 and "<html" in r.text
    assert "试算之后金额、日期、方式或贷款情况有改动" in form_error(r.text, "prepay-")
    assert 'id="confirm-prepayment"' in r.text
    r = await client.post(f"{url}/prepayment", data={**form, "amount": "4000",
                                                     "previewed": previewed})
    assert r.status_code == 422 and "确认提前还款 4,000.00 元" in r.text
    assert await written(tenant) == before

    first = await client.post(f"{url}/prepayment", data={**form, "previewed": previewed})
    second = await client.post(f"{url}/prepayment", data={**form, "previewed": previewed})
    assert first.status_code == second.status_code == 303, first.text
    assert first.headers["location"] == second.headers["location"] == \
        f"{url}?done=prepaid#schedule"
    assert (await kinds(tenant, loan["id"])).count("prepayment") == 1
    txns, entries, _ = await written(tenant)
    assert (txns, entries) == (before[0] + 1, before[1] + 1)
    after = await loans.get_loan(finance, uuid.UUID(loan["id"]))
    assert after["schedule_version"] == 2
    assert [i["due_on"] for i in after["installments"]] == [
        i["due_on"] for i in q["installments"]]

    page = (await client.get(first.headers["location"])).text
    assert "提前还款已入账" in page and "schedule-version\">第 2 版<" in page
    assert "TQ-0001" in page and "提前还款" in page
    assert token_of(page, f"{url}/prepayment") != form["form_token"]


async def test_paying_off_in_full_settles_the_loan(client: Any, demo: Any) -> None:
    tenant, passwords = demo
    csrf = await sign_in(client, tenant.slug, "finance", passwords["finance"])
    loan = await caught_up(tenant, await visible_customer(tenant, "finance"))
    url = f"/servicing/loans/{loan['id']}"
    page = (await client.get(url)).text
    form = {"_csrf": csrf, "form_token": token_of(page, f"{url}/prepayment"), "amount": "",
            "full": "1", "paid_on": "", "channel": "cash", "reference": "", "mode":
            "reduce_term"}
    r = await client.post(f"{url}/prepayment/preview", headers=HX, data=form)
    assert r.status_code == 200, r.text
    total = (await payoff.payoff(await as_user(tenant, "finance"), uuid.UUID(loan["id"]))
             )["total"]
    assert f"确认提前还款 {shown(total)} 元" in r.text and "settles-loan" in r.text
    previewed = PREVIEWED_RE.search(r.text).group(1)  # type: ignore[union-attr]
    r = await client.post(f"{url}/prepayment", data={**form, "previewed": previewed})
    assert r.status_code == 303 and r.headers["location"] == f"{url}?done=settled#schedule"
    page = (await client.get(r.headers["location"])).text
    assert "已全部结清" in page and 'id="prepayment-form"' not in page
    assert 'id="repayment-form"' not in page and "/reversal" not in page


async def test_prepayment_refusals_stand_next_to_their_fields(client: Any, demo: Any) -> None:
    tenant, passwords = demo
    csrf = await sign_in(client, tenant.slug, "finance", passwords["finance"])
    customer = await visible_customer(tenant, "finance")
    loan = await caught_up(tenant, customer)
    young = await caught_up(tenant, customer, days=40)
    behind = await past_loan(tenant, customer)  # never closed
    url = f"/servicing/loans/{loan['id']}"
    form = {"_csrf": csrf, "form_token": "t" * 24, "amount": "3000", "paid_on": "",
            "channel": "transfer", "reference": "", "mode": "reduce_term"}
    before = await written(tenant)

    r = await client.post(f"{url}/prepayment/preview", headers=HX, data={**form, "amount": ""})
    assert r.status_code == 422 and field_error(r.text, "prepay-amount") == "提前还款金额为必填项"
    assert 'aria-describedby="e-prepay-amount"' in r.text
    r = await client.post(f"{url}/prepayment/preview", headers=HX, data={**form, "amount": "-5"})
    assert "提前还款金额应为大于 0" in field_error(r.text, "prepay-amount")
    assert 'value="-5"' in r.text and 'id="confirm-prepayment"' not in r.text
    r = await client.post(f"{url}/prepayment/preview", headers=HX, data={**form, "amount": "10"})
    assert "提前还款金额不足以提前还本" in field_error(r.text, "prepay-amount")
    r = await client.post(f"{url}/prepayment/preview?lang=en", headers=HX,
                          data={**form, "amount": "10"})
    assert "amount does not reach principal" in field_error(r.text, "prepay-amount")
    r = await client.post(f"{url}/prepayment/preview", headers=HX,
                          data={**form, "paid_on": "2000-01-01"})
    assert "还款日期不能早于放款日" in field_error(r.text, "prepay-paid_on")
    r = await client.post(f"/servicing/loans/{young['id']}/prepayment/preview", headers=HX,
                          data=form)
    assert r.status_code == 422
    assert "本产品须还满 3 期后才能提前还款" in form_error(r.text, "prepay-")
    r = await client.post(f"/servicing/loans/{behind['id']}/prepayment/preview", headers=HX,
                          data=form)
    assert "请先执行日终" in form_error(r.text, "prepay-")
    # the confirm route refuses the same way (the whole page, the field marked)
    r = await client.post(f"{url}/prepayment", data={**form, "amount": "10", "previewed": "x"})
    assert r.status_code == 422 and "<html" in r.text
    assert "提前还款金额不足以提前还本" in field_error(r.text, "prepay-amount")
    assert re.search(r'<details class="action-details" open>\s*<summary class="button small">'
                     r"提前还本或提前结清", r.text)
    assert await written(tenant) == before


async def test_a_loan_is_rescheduled_through_its_form(client: Any, demo: Any) -> None:
    tenant, passwords = demo
    csrf = await sign_in(client, tenant.slug, "finance", passwords["finance"])
    loan = await caught_up(tenant, await visible_customer(tenant, "finance"))
    url = f"/servicing/loans/{loan['id']}"
    page = (await client.get(url)).text
    action = f"{url}/reschedule"
    assert f'action="{action}"' in page and "展期或调整利率" in page
    assert "产品允许 8% 至 24%" in page and "最多共 36 期" in page
    form = {"_csrf": csrf, "form_token": token_of(page, action), "annual_rate": "10",
            "extra_periods": "2", "reason": ""}
    before = await written(tenant)

    r = await client.post(action, data=form)
    assert r.status_code == 422 and field_error(r.text, "resched-reason") == "原因为必填项"
    assert 'value="10"' in r.text  # what was typed stays
    r = await client.post(action, data={**form, "annual_rate": "", "extra_periods": "",
                                        "reason": "客户申请"})
    assert "请给出新的年利率" in form_error(r.text, "resched-")
    r = await client.post(action, data={**form, "annual_rate": "30", "reason": "客户申请"})
    assert "年利率" in field_error(r.text, "resched-annual_rate")
    assert "24" in field_error(r.text, "resched-annual_rate")
    r = await client.post(action, data={**form, "extra_periods": "40", "reason": "客户申请"})
    assert "超过产品上限 36 期" in field_error(r.text, "resched-extra_periods")
    assert await written(tenant) == before

    data = {**form, "reason": "经营困难，展期两期"}
    first = await client.post(action, data=data)
    second = await client.post(action, data=data)
    assert first.status_code == second.status_code == 303, first.text
    assert first.headers["location"] == second.headers["location"] == \
        f"{url}?done=rescheduled#schedule"
    after = await loans.get_loan(await as_user(tenant, "finance"), uuid.UUID(loan["id"]))
    assert (after["schedule_version"], after["periods"], after["annual_rate"]) == (2, 14, "10")
    page = (await client.get(first.headers["location"])).text
    assert "还款计划已调整" in page and "schedule-version\">第 2 版<" in page
    assert page.count('<tr>\n        <td class="num">') >= 14


async def test_a_loan_is_written_off_then_a_recovery_is_posted(client: Any,
                                                               demo: Any) -> None:
    tenant, passwords = demo
    customer = await visible_customer(tenant, "finance")
    loan = await past_loan(tenant, customer)
    url = f"/servicing/loans/{loan['id']}"
    csrf = await sign_in(client, tenant.slug, "gm", passwords["gm"])
    page = (await client.get(url)).text
    action = f"{url}/write-off"
    assert f'action="{action}"' in page and "核销" in page and "贷款损失准备" in page
    assert 'id="prepayment-form"' not in page  # gm may not take money
    total = re.search(r'class="writeoff-total">([^<]*)<', page).group(1)  # type: ignore[union-attr]
    assert Decimal(total.replace(",", "")) >= Decimal("10000")
    form = {"_csrf": csrf, "form_token": token_of(page, action), "reason": " "}
    r = await client.post(action, data=form)
    assert r.status_code == 422 and field_error(r.text, "writeoff-reason") == "核销原因为必填项"
    assert await kinds(tenant, loan["id"]) == ["disbursement"]

    data = {**form, "reason": "诉讼终结，无可执行财产"}
    first = await client.post(action, data=data)
    second = await client.post(action, data=data)
    assert first.status_code == second.status_code == 303, first.text
    assert first.headers["location"] == second.headers["location"] == \
        f"{url}?done=written_off#written-off"
    assert await kinds(tenant, loan["id"]) == ["disbursement", "write_off"]
    page = (await client.get(first.headers["location"])).text
    today = tenant.business_date.isoformat()
    assert "贷款已核销" in page and "已核销" in page
    assert re.search(rf'class="written-off-on">{today}<', page)
    assert f'class="written-off-amount">{total}<' in page
    assert re.search(r'class="recovered">0.00<', page)
    assert 'id="recovery-form"' not in page and f'action="{action}"' not in page  # gm
    # a write-off form of a page from before (another token) is refused, said at the top
    r = await client.post(action, data={**data, "form_token": "u" * 24})
    assert r.status_code == 422
    assert "已核销的贷款不能核销" in re.search(r'id="e-action">([^<]*)<', r.text).group(1)  # type: ignore[union-attr]

    async with other_client(client) as cashier:
        csrf = await sign_in(cashier, tenant.slug, "finance", passwords["finance"])
        page = (await cashier.get(url)).text
        recovery = f"{url}/recovery"
        assert 'id="recovery-form"' in page and 'id="repayment-form"' not in page
        owed = re.search(r'class="still-owed">([^<]*)<', page).group(1)  # type: ignore[union-attr]
        form = {"_csrf": csrf, "form_token": token_of(page, recovery), "amount": "99999999",
                "paid_on": "", "channel": "cash", "reference": "SH-001"}
        r = await cashier.post(recovery, data=form)
        assert r.status_code == 422
        assert f"收回金额超过核销后尚欠的 {owed.replace(',', '')} 元" == field_error(
            r.text, "recovery-amount")
        r = await cashier.post(recovery, data={**form, "amount": "500",
                                               "paid_on": "2000-01-01"})
        assert "收回日期不能早于核销日" in field_error(r.text, "recovery-paid_on")
        data = {**form, "amount": "500"}
        first = await cashier.post(recovery, data=data)
        second = await cashier.post(recovery, data=data)
        assert first.status_code == second.status_code == 303, first.text
        assert first.headers["location"] == f"{url}?done=recovered#transactions"
        assert await kinds(tenant, loan["id"]) == ["disbursement", "write_off", "recovery"]
        page = (await cashier.get(first.headers["location"])).text
        assert "核销后收回已入账" in page and re.search(r'class="recovered">500.00<', page)
        assert "SH-001" in page and "核销后收回" in page
        still = Decimal(owed.replace(",", "")) - 500
        assert f'class="still-owed">{still:,.2f}<' in page


async def test_each_route_is_refused_without_its_permission(client: Any, demo: Any) -> None:
    tenant, passwords = demo
    loan = await past_loan(tenant, await visible_customer(tenant, "officer"))
    url = f"/servicing/loans/{loan['id']}"
    before = await written(tenant)
    data = {"form_token": "t" * 24, "amount": "100", "reason": "x", "annual_rate": "10",
            "previewed": "x"}
    async with other_client(client) as officer:
        csrf = await sign_in(officer, tenant.slug, "officer", passwords["officer"])
        page = (await officer.get(url)).text
        for form in ("prepayment-form", "reschedule-form", "writeoff-form", "recovery-form"):
            assert f'id="{form}"' not in page, form
        for path in ("prepayment/preview", "prepayment", "reschedule", "write-off",
                     "recovery"):
            r = await officer.post(f"{url}/{path}", data={"_csrf": csrf, **data})
            assert r.status_code == 403 and "没有权限" in r.text, path
    async with other_client(client) as finance:
        csrf = await sign_in(finance, tenant.slug, "finance", passwords["finance"])
        page = (await finance.get(url)).text
        assert 'id="writeoff-form"' not in page and 'id="reschedule-form"' in page
        r = await finance.post(f"{url}/write-off", data={"_csrf": csrf, **data})
        assert r.status_code == 403
    assert (await written(tenant))[:2] == before[:2]
    page_tokens = TOKEN_RE.findall(page)
    assert len(page_tokens) == len(set(page_tokens))  # every form its own token
