"""The web shell in a real browser (Debian's headless Chromium driven by Playwright) against
a real `xindai demo` server: sign in with a password and TOTP, create a customer, see an ID
masked as an officer and in full as a branch manager after Reveal, fail to open another
branch's customer, switch the language, and use the menu on a phone-sized screen.

Chromium comes from Debian (`deploy/system-deps.sh`), never from `playwright install`.
Without it these tests skip, except when CI is set: then they fail.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require
from tests.e2e.test_demo import free_port, start_demo, stop

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
HTMX = ROOT / "core" / "web" / "static" / "vendor" / "htmx.min.js"
NEW_ID = "11010519491231002X"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A demo server (migrated, demo tenant loaded) on a free port, and its logins."""
    if not HTMX.is_file():
        require("the htmx asset (run `make assets`)", HTMX)
    port = free_port()
    proc, logins = start_demo(tmp_path_factory.mktemp("demo"), port)
    try:
        yield {"base": f"http://127.0.0.1:{port}", "logins": logins}
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        require("playwright (pip install -e '.[test]')", exc)
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        require("Debian chromium (deploy/system-deps.sh)", CHROMIUM)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def new_page(browser: Any, width: int = 1280, height: int = 900) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height},
                                  locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def sign_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#f-tenant", "demo")
    page.fill("#f-username", username)
    page.fill("#f-password", password)
    page.click("form[action='/login'] button[type=submit]")


def test_password_and_totp_sign_in(browser: Any, demo: dict[str, Any]) -> None:
    import pyotp

    base, password = demo["base"], demo["logins"]["reviewer"]
    page = new_page(browser)
    sign_in(page, base, "reviewer", password)
    page.wait_for_url(f"{base}/")
    assert "李晓燕，您好" in page.inner_text("h1")
    page.click("a[href='/account/mfa']")
    page.click("form[action='/account/mfa/start'] button")
    assert page.locator(".qr svg").is_visible()
    secret = page.get_attribute("#totp-secret", "data-secret")
    assert secret and re.fullmatch(r"[A-Z2-7]{16,}", secret)
    totp = pyotp.TOTP(secret)
    page.fill("#f-code", totp.now())
    page.click("form[action='/account/mfa/confirm'] button")
    assert page.locator("#recovery-codes li").count() == 10
    page.click("form[action='/logout'] button")
    page.wait_for_url(f"{base}/login")

    sign_in(page, base, "reviewer", password)
    page.wait_for_url(f"{base}/mfa")
    page.fill("#f-code", "000000")
    page.click("form[action='/mfa'] button[type=submit]")
    assert "验证码不正确或已使用" in page.inner_text(".notice-error")
    page.fill("#f-code", totp.at(time.time() + 30))  # the enrolment used the current step
    page.click("form[action='/mfa'] button[type=submit]")
    page.wait_for_url(f"{base}/")
    assert "李晓燕" in page.inner_text(".user-name")
    page.context.close()


def test_masked_for_an_officer_revealed_for_a_manager_hidden_from_another_branch(
    browser: Any, demo: dict[str, Any]
) -> None:
    base, logins = demo["base"], demo["logins"]
    officer = new_page(browser)
    sign_in(officer, base, "officer", logins["officer"])
    officer.wait_for_url(f"{base}/")
    officer.click(".sidebar a[href='/e/customer']")
    officer.click("a.button.primary[href='/e/customer/new']")
    officer.select_option("#f-kind", "individual")
    officer.fill("#f-name", "浏览器测试客户")
    officer.fill("#f-resident_id", "110105194912310021")  # wrong check character
    officer.fill("#f-mobile", "13912345678")
    officer.fill("#f-annual_income", "88000")
    officer.click("form.record-form button[type=submit]")
    assert officer.inner_text("#e-resident_id") == "身份证号校验位错误"
    assert officer.input_value("#f-name") == "浏览器测试客户"  # kept
    officer.fill("#f-resident_id", NEW_ID)
    officer.click("form.record-form button[type=submit]")
    officer.wait_for_url(re.compile(r".*/e/customer/[0-9a-f-]{36}$"))
    url = officer.url
    assert officer.inner_text("#v-resident_id").strip() == "110***********002X"
    assert officer.locator("#v-resident_id button.reveal").count() == 0  # no permission
    assert NEW_ID not in officer.content()

    manager = new_page(browser)
    sign_in(manager, base, "manager", logins["manager"])
    manager.wait_for_url(f"{base}/")
    manager.goto(url)
    assert "110***********002X" in manager.inner_text("#v-resident_id")
    manager.click("#v-resident_id button.reveal")
    manager.wait_for_selector("#v-resident_id .revealed")
    assert manager.inner_text("#v-resident_id .revealed") == NEW_ID
    manager.context.close()

    # officer2 works in another branch (运城支行): their customer does not exist for officer.
    token = httpx.post(f"{base}/api/v1/auth/login", json={
        "tenant": "demo", "username": "officer2", "password": logins["officer2"]}).json()
    theirs = httpx.get(f"{base}/api/v1/customers", params={"per_page": 1},
                       headers={"Authorization": f"Bearer {token['token']}"}).json()["items"]
    response = officer.goto(f"{base}/e/customer/{theirs[0]['id']}")
    assert response is not None and response.status == 404
    assert "页面或记录不存在" in officer.inner_text("main")
    officer.context.close()


def test_language_switch_and_the_menu_on_a_phone(
    browser: Any, demo: dict[str, Any], tmp_path: Path
) -> None:
    base = demo["base"]
    page = new_page(browser, 375, 812)
    sign_in(page, base, "finance", demo["logins"]["finance"])
    page.wait_for_url(f"{base}/")
    sidebar = page.locator(".sidebar")
    assert not sidebar.is_visible()  # collapsed on a phone
    page.click("label.nav-button")
    assert sidebar.is_visible()
    shot = tmp_path / "ui-phone-menu.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 5_000
    page.click(".sidebar a[href='/e/customer']")
    page.wait_for_url(f"{base}/e/customer")
    assert not sidebar.is_visible()
    first = page.locator(".records-table tbody tr").first
    assert first.is_visible() and first.bounding_box()["width"] <= 375
    assert "*" in page.inner_text(".records-table tbody tr >> nth=0")  # finance: names masked

    page.click(".lang-switch a[href^='/lang/en']")
    page.wait_for_url(f"{base}/e/customer")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Customer" in page.inner_text("h1") and "Sign out" in page.inner_text(".topbar")
    page.fill("#q", "no-such-customer-anywhere")
    page.locator("#records .result-count", has_text="0 records").wait_for()
    assert "/e/customer?q=no-such-customer-anywhere" in page.url  # htmx pushed the URL
    page.click(".lang-switch a[href^='/lang/zh-CN']")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert "退出" in page.inner_text(".topbar")
    page.context.close()


def tiny_png(width: int = 6, height: int = 4) -> bytes:
    """A real PNG (red pixels), so the browser can show the preview."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xc8\x1e\x1e" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_upload_a_document_on_a_customer_page_see_it_listed_and_open_it(
    browser: Any, demo: dict[str, Any], tmp_path: Path
) -> None:
    base, logins = demo["base"], demo["logins"]
    picture = tmp_path / "王建国客户身份证正面.png"
    picture.write_bytes(tiny_png())
    page = new_page(browser)
    sign_in(page, base, "officer", logins["officer"])
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/e/customer")
    page.locator(".records-table tbody tr a").first.click()
    page.wait_for_url(re.compile(r".*/e/customer/[0-9a-f-]{36}$"))
    customer_url = page.url
    assert page.inner_text("#documents h2") == "资料"
    page.select_option("#f-doc-kind", "id_front")
    page.set_input_files("#f-doc-file", str(picture))
    page.click("form.upload-form button[type=submit]")
    page.wait_for_url(f"{customer_url}#documents")
    row = page.locator(".documents-table tbody tr").first
    assert "身份证人像面" in row.inner_text() and "王***.png" in row.inner_text()
    assert "王建国" in row.inner_text()  # the uploader: the officer's display name
    assert "王建国客户身份证正面" not in page.content()  # the file name only masked

    with page.context.expect_page() as opened:
        row.locator("a.preview").click()
    preview = opened.value
    preview.wait_for_load_state()
    assert preview.evaluate("document.contentType") == "image/png"
    assert preview.evaluate("document.images[0].naturalWidth") == 6
    href = row.locator("a.download").get_attribute("href") or ""
    response = page.request.get(f"{base}{href}")  # the browser's session cookie
    assert response.status == 200 and response.body() == tiny_png()
    assert "filename*=UTF-8''" in response.headers["content-disposition"]
    preview.close()

    other = new_page(browser)  # another branch's officer: the document does not exist
    sign_in(other, base, "officer2", logins["officer2"])
    other.wait_for_url(f"{base}/")
    result = other.request.get(f"{base}{href}")
    assert result.status == 404
    other.context.close()
    page.context.close()
