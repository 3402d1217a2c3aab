"""Webhooks and the background jobs page in a real browser against a real `xindai demo`
server (its own worker and relay deliver): the admin creates a webhook, sees the secret
once, a customer is created and the delivery reaches a real receiver, signed; the delivery
log shows the attempt; the failed delivery is on the jobs page's Failed list and Retry
makes it done; the pages fit a 375 px phone.

The server runs with XINDAI_WEBHOOK_ATTEMPTS=1, so a delivery is dead after its first
failure instead of after hours of backoff.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import require
from tests.e2e.test_demo import free_port, start_demo, stop
from tests.e2e.test_ui_browser import HTMX, browser, new_page, sign_in
from tests.integration.test_webhooks import Receiver, signed_by

__all__ = ["browser"]  # the fixture, used by name
COMPANY = ("太原浏览器推送测试有限公司", "91110000600037341L")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not HTMX.is_file():
        require("the htmx asset (run `make assets`)", HTMX)
    port = free_port()
    proc, logins = start_demo(tmp_path_factory.mktemp("demo-hooks"), port,
                              {"XINDAI_WEBHOOK_ATTEMPTS": "1"})
    # read the server's log as it comes: a full pipe would block the server
    threading.Thread(target=lambda: proc.stdout and proc.stdout.read(), daemon=True).start()
    try:
        yield {"base": f"http://127.0.0.1:{port}", "logins": logins}
    finally:
        stop(proc)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def wait_until(predicate: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def shows(page: Any, url: str, selector: str, text: str) -> bool:
    """Load `url` again; does `selector` hold `text`?"""
    page.goto(url)
    found = page.locator(selector)
    return found.count() > 0 and text in found.first.inner_text()


def fits(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_a_webhook_delivery_fails_is_retried_from_the_jobs_page_and_arrives(
        browser: Any, demo: dict[str, Any], receiver: Receiver) -> None:
    base = demo["base"]
    page = new_page(browser)
    sign_in(page, base, "admin", demo["logins"]["admin"])
    page.wait_for_url(f"{base}/")
    # the demo's own events (its customers were loaded at start) are delivered first: a
    # webhook gets the events still queued when it is created
    token = httpx.post(f"{base}/api/v1/auth/login", json={
        "tenant": "demo", "username": "admin", "password": demo["logins"]["admin"]}).json()
    auth = {"Authorization": f"Bearer {token['token']}"}
    wait_until(lambda: httpx.get(f"{base}/api/v1/jobs", headers=auth,
                                 params={"status": "open"}).json() == [], 60)
    page.click(".sidebar a[href='/admin/webhooks']")
    page.wait_for_url(f"{base}/admin/webhooks")
    assert "还没有 Webhook" in page.inner_text("main")
    page.fill("#f-url", receiver.url("/erp"))
    page.fill("#f-description", "ERP 客户同步")
    page.check("input[name=events][value='customer.created']")
    page.click("form[action='/admin/webhooks'] button[type=submit]")
    secret = page.inner_text("#webhook-secret").strip()
    assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{43}", secret)
    assert "只显示这一次" in page.inner_text(".secret-panel")
    page.goto(f"{base}/admin/webhooks")
    assert secret not in page.content()  # once only
    assert "ERP 客户同步" in page.inner_text(".webhooks-table")

    receiver.default = 500  # the receiver is down for the first delivery
    page.click(".sidebar a[href='/e/customer']")
    page.click("a.button.primary[href='/e/customer/new']")
    page.select_option("#f-kind", "company")
    page.fill("#f-name", COMPANY[0])
    page.fill("#f-credit_code", COMPANY[1])
    page.click("form.record-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/e/customer/[0-9a-f-]{36}$"))
    customer_id = page.url.rsplit("/", 1)[1]
    wait_until(lambda: len(receiver.requests) == 1)
    [first] = receiver.requests
    assert signed_by(secret, first) and customer_id in first["body"].decode()

    page.goto(f"{base}/admin/webhooks")
    page.click(".webhooks-table td.title-cell a")
    page.wait_for_url(re.compile(r".*/admin/webhooks/[0-9a-f-]{36}$"))
    log_url = page.url
    wait_until(lambda: shows(page, log_url, ".deliveries-table", "500"))
    assert "失败" in page.inner_text(".deliveries-table")

    page.click(".sidebar a[href='/admin/jobs']")
    page.wait_for_url(f"{base}/admin/jobs")
    page.click(".filter-tabs a[href='/admin/jobs?status=dead']")
    dead = page.locator("tr.status-dead", has_text="Webhook 推送")
    assert dead.count() == 1 and "HTTP 500" in dead.inner_text()
    assert "HTTP 500" in page.inner_text("tr.status-dead details.job-error summary")
    page.click("tr.status-dead details.job-error summary")  # expands the arguments
    assert customer_id in page.inner_text("tr.status-dead details.job-error pre")
    receiver.default = 200  # back up
    dead.locator("button", has_text="重试").click()
    page.wait_for_url(f"{base}/admin/jobs?status=dead")
    assert "没有失败的作业或事件" in page.inner_text("main")
    wait_until(lambda: len(receiver.requests) == 2)
    assert receiver.requests[1]["body"] == first["body"] and signed_by(secret,
                                                                        receiver.requests[1])
    page.goto(f"{base}/admin/jobs?kind=job")
    row = page.locator("tr.job-row", has_text="Webhook 推送").first
    row.locator(".badge.job-status", has_text="已完成").wait_for(timeout=10_000)  # htmx polls
    wait_until(lambda: shows(page, log_url, ".deliveries-table", "已送达"))
    log = page.inner_text(".deliveries-table")
    assert "已送达" in log and "200" in log and "500" in log
    page.context.close()


def test_the_pages_fit_a_phone(browser: Any, demo: dict[str, Any]) -> None:
    base = demo["base"]
    page = new_page(browser, 375, 812)
    sign_in(page, base, "admin", demo["logins"]["admin"])
    page.wait_for_url(f"{base}/")
    for path in ("/admin/jobs", "/admin/jobs?status=dead", "/admin/webhooks"):
        page.goto(f"{base}{path}")
        assert fits(page), path
    page.click("label.nav-button")
    assert page.locator(".sidebar a[href='/admin/jobs']").is_visible()
    page.context.close()
