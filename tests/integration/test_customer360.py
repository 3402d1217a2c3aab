"""The customer 360 view on both databases: the generic detail page with the plugins'
panels (record_panels): follow-ups, tasks, servicing's loans and repayments, the timeline
(timeline_items merged with audited changes) and the change history under the reader's
field policies: hidden fields left out, masked and secret ones never in clear."""

from __future__ import annotations

from typing import Any

from core import records
from core.history import record_history
from core.kernel import kernel as current_kernel
from plugins.crm import activity
from tests.conftest import as_user
from tests.integration.test_ui_pages import sign_in

LOAN_CUSTOMER = "14050219820309165X"  # the demo's current loan, repaid six times


async def test_panels_come_from_the_plugins(kernel: Any, demo: Any, new_tenant: Any) -> None:
    tenant, _ = demo
    admin = await as_user(tenant, "admin")
    cid = (await records.find_ids(admin, "customer", "resident_id", LOAN_CUSTOMER))[0]
    panels = await current_kernel().gather("record_panels", tenant, ctx=admin,
                                           entity="customer", record_id=cid)
    by_key = {p.key: p for p in panels}
    assert {"followups", "tasks", "timeline", "history", "servicing_loans"} <= set(by_key)
    assert by_key["servicing_loans"].plugin == "servicing"
    loans = by_key["servicing_loans"].context["loans"]
    assert "100,000.00" in [loan["amount"] for loan in loans]
    kinds = [m["kind"] for m in by_key["servicing_loans"].context["movements"]]
    assert kinds.count("还款") >= 6 and "放款" not in kinds
    # a tenant without servicing gets no loan panel; other entities get nothing from crm
    small = await new_tenant()
    small_admin = await as_user(small.tenant, "admin")
    some = (await records.list_records(small_admin, "customer")).items[0]["id"]
    keys = [p.key for p in await current_kernel().gather(
        "record_panels", small.tenant, ctx=small_admin, entity="customer", record_id=some)]
    assert "servicing_loans" not in keys and "followups" in keys
    assert await current_kernel().gather("record_panels", small.tenant, ctx=small_admin,
                                         entity="loan", record_id=some) == []


async def test_history_follows_field_policies(kernel: Any, demo: Any) -> None:
    tenant, _ = demo
    admin = await as_user(tenant, "admin")
    finance = await as_user(tenant, "finance")  # name masked, address hidden (demo pack)
    rec = await records.create(admin, "customer", {
        "kind": "individual", "name": "历史测试", "resident_id": "11010519491231002X",
        "address": "太原市小店区坞城路1号", "mobile": "13800138000"})
    await records.update(admin, "customer", rec["id"], {
        "address": "太原市迎泽区迎泽大街2号", "mobile": "13900139000", "name": "历史测试乙",
        "industry": "coal"})
    mine = await record_history(admin, "customer", rec["id"])
    change = {c["key"]: c for c in mine[0]["changes"]}
    assert mine[0]["action"] == "update" and mine[1]["action"] == "create"
    assert change["address"]["old"] == "太原市小店区坞城路1号"
    assert change["industry"]["new"] == "煤炭与采矿"
    assert change["mobile"]["concealed"] and change["mobile"]["new"] == ""
    theirs = await record_history(finance, "customer", rec["id"])
    seen = {c["key"]: c for c in theirs[0]["changes"]}
    assert "address" not in seen  # hidden from finance
    assert seen["name"]["concealed"] and "历史测试" not in str(theirs)
    assert "13900139000" not in str(theirs) and "13900139000" not in str(mine)


async def test_the_360_page_shows_everything(kernel: Any, client: Any, demo: Any) -> None:
    tenant, passwords = demo
    admin = await as_user(tenant, "admin")
    cid = (await records.find_ids(admin, "customer", "resident_id", LOAN_CUSTOMER))[0]
    await activity.log_followup(admin, "customer", cid, {
        "kind": "call", "content": "提醒本期还款日，客户确认按时还款", "outcome": "reached",
        "next_step": "月底回访", "next_follow_up_on": "2026-11-30", "create_task": True})
    await sign_in(client, tenant.slug, "admin", passwords["admin"])
    page = await client.get(f"/e/customer/{cid}")
    assert page.status_code == 200
    html = page.text
    for panel in ("followups", "tasks", "servicing_loans", "timeline", "history"):
        assert f'id="panel-{panel}"' in html, panel
    assert html.index('id="panel-followups"') < html.index('id="documents"') \
        < html.index('id="panel-timeline"')
    assert "14050219820309165X" not in html  # the resident ID stays masked on the page
    timeline = html.split('id="timeline"', 1)[1]
    assert "提醒本期还款日" in timeline and "跟进（电话） · 已联系上" in timeline
    assert "新建任务：月底回访" in timeline
    assert "/servicing/loans/" in html.split('id="panel-servicing_loans"', 1)[1]
