"""Follow-ups on the customer 360 view in a real browser against a real `xindai demo`
server: the officer sees the bell's unread count (the manager assigned a task in the demo
pack), opens 我的任务, goes from a task to its customer, logs a follow-up with the form on
the customer page (htmx), and finds it in the timeline above the older ones; a refused form shows the
field's message in place. Screenshots under the test's tmp folder (or $UI_SHOTS)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from tests.e2e.test_ui_browser import browser, demo, new_page, sign_in

__all__ = ["browser", "demo"]  # the fixtures, used by name


def test_log_a_followup_on_the_360_page_and_see_it_in_the_timeline(
        browser: Any, demo: dict[str, Any], tmp_path: Path) -> None:
    shots = Path(os.environ.get("UI_SHOTS") or tmp_path)
    base, password = demo["base"], demo["logins"]["officer"]
    page = new_page(browser)
    sign_in(page, base, "officer", password)
    page.wait_for_url(f"{base}/")
    page.locator("#bell-count").wait_for()  # loaded by htmx after the page
    assert int(page.inner_text("#bell-count")) >= 1

    page.click(".sidebar a[href='/tasks']")
    page.wait_for_url(f"{base}/tasks")
    assert int(page.inner_text("#count-overdue strong")) >= 1
    page.click("a:has-text('确认还款到账')")
    page.wait_for_url(re.compile(r".*/tasks/[0-9a-f-]{36}$"))
    page.click("a:has-text('打开记录')")
    page.wait_for_url(re.compile(r".*/e/customer/[0-9a-f-]{36}$"))
    customer_url = page.url
    for panel in ("followups", "tasks", "servicing_loans", "timeline", "history"):
        assert page.locator(f"#panel-{panel}").count() == 1, panel

    form = page.locator("#followup-form")
    form.locator("#f-kind").select_option("visit")
    form.locator("#f-content").fill("")
    form.locator("#followup-submit").click()
    page.locator("#followup-form .field-error", has_text="跟进内容为必填项").wait_for()
    assert page.url == customer_url  # refused in place, nothing written

    form = page.locator("#followup-form")
    form.locator("#f-kind").select_option("visit")
    form.locator("#f-outcome").select_option("agreed")
    form.locator("#f-content").fill("上门拜访，核对了本月进货单据，客户同意下周提供流水。")
    form.locator("#f-next_step").fill("取回银行流水")
    form.locator("#f-next_follow_up_on").fill("2026-11-27")
    form.locator("#f-create_task").check()
    form.locator("#followup-submit").click()
    page.wait_for_url(re.compile(re.escape(customer_url) + r"\?followup=[0-9a-f-]{36}#panel-timeline$"))
    item = page.locator("#timeline li", has_text="核对了本月进货单据")
    item.wait_for()
    assert "跟进（拜访） · 已约定下一步" in item.inner_text()
    texts = page.locator("#timeline li").all_inner_texts()
    ours = next(i for i, t in enumerate(texts) if "核对了本月进货单据" in t)
    older = next(i for i, t in enumerate(texts) if "货款已到账" in t)  # the demo's 11-19 call
    assert ours < older  # newest first
    assert "取回银行流水" in page.inner_text("#panel-tasks")
    page.locator("#panel-timeline").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "activity-timeline.png"), full_page=False)
    page.context.close()
