"""The servicing screens in a real browser against a real `xindai demo` server: finance
opens a product and previews its schedule (htmx, no page reload), disburses a loan for a
demo customer after seeing the quote, lands on the loan page with its schedule; on a demo
loan finance previews a repayment, sees its allocation, confirms it and finds it among the
transactions, then downloads the statement; the loan and product pages fit a 375 px phone
(screenshots kept under the test's tmp folder, or under $UI_SHOTS when set)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from tests.e2e.test_ui_browser import browser, demo, new_page, sign_in

__all__ = ["browser", "demo"]  # the fixtures, used by name


def fits(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_finance_previews_a_product_and_disburses_a_loan(
        browser: Any, demo: dict[str, Any], tmp_path: Path) -> None:
    base, password = demo["base"], demo["logins"]["finance"]
    page = new_page(browser)
    sign_in(page, base, "finance", password)
    page.wait_for_url(f"{base}/")
    page.click(".sidebar a[href='/servicing/products']")
    page.wait_for_url(f"{base}/servicing/products")
    page.click("a[href='/servicing/products/JY01']")
    page.wait_for_url(f"{base}/servicing/products/JY01")

    # the live preview: typing replaces the schedule in place, the page is not reloaded
    page.evaluate("window.__samePage = true")
    page.fill("#f-amount", "10000")
    page.fill("#f-periods", "12")
    page.fill("#f-annual_rate", "12")
    page.locator("#quote .schedule-table tbody tr").nth(11).wait_for()
    page.locator("#quote .schedule-table td.total", has_text="888.49").first.wait_for()
    assert page.locator("#quote .schedule-table tbody tr").count() == 12
    assert page.locator("#quote .schedule-table td.total").first.inner_text() == "888.49"
    assert page.evaluate("window.__samePage === true")
    page.fill("#f-amount", "999")
    page.locator("#quote .field-error", has_text="贷款金额应在").wait_for()
    assert page.evaluate("window.__samePage === true")

    # a demo customer (finance sees names masked), then the disbursement form
    page.goto(f"{base}/e/customer")
    href = page.locator(".records-table tbody a[href^='/e/customer/']").first.get_attribute(
        "href")
    assert href
    customer_id = href.rsplit("/", 1)[-1]
    page.goto(f"{base}/servicing/disburse?customer_id={customer_id}")
    assert page.input_value("#f-customer_id") == customer_id
    page.select_option("#f-product", "JY01")
    page.fill("#f-amount", "20000")
    page.fill("#f-periods", "12")
    page.click("button:has-text('显示还款计划')")
    page.locator("#disburse-quote .schedule-table tbody tr").nth(11).wait_for()
    assert "年化利率" in page.inner_text("#disburse-quote")
    page.click("#confirm-disburse")
    page.wait_for_url(f"{base}/servicing/loans/*")
    assert "已放款" in page.inner_text("main")
    assert page.locator(".schedule-table tbody tr").count() == 12
    number = page.inner_text("h1.loan-number")
    assert number.startswith("DK20261120")
    loan_url = page.url
    page.goto(f"{base}/servicing/loans")
    assert number in page.inner_text(".loans-table")
    page.context.close()

    phone = new_page(browser, 375, 812)
    sign_in(phone, base, "finance", password)
    phone.wait_for_url(f"{base}/")
    for url, name in ((loan_url, "loan"), (f"{base}/servicing/products/JY01", "product"),
                      (f"{base}/servicing/disburse", "disburse")):
        phone.goto(url)
        phone.wait_for_load_state()
        shot = tmp_path / f"servicing-{name}-375.png"
        phone.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 5_000
        assert fits(phone), url
    phone.context.close()


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("UI_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_finance_previews_and_confirms_a_repayment_on_a_demo_loan(
        browser: Any, demo: dict[str, Any], tmp_path: Path) -> None:
    base, password = demo["base"], demo["logins"]["finance"]
    page = new_page(browser)
    sign_in(page, base, "finance", password)
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/servicing/loans?status=active")
    page.click(".loans-table tr:has-text('80,000.00') td.title-cell a")  # 46 days past due
    page.wait_for_url(re.compile(r".*/servicing/loans/[0-9a-f-]{36}$"))
    loan_url = page.url
    number = page.inner_text("h1.loan-number")
    assert page.input_value("#f-paid_on") == "2026-11-20"  # the business date

    # the preview comes in place (htmx), nothing is posted yet
    page.evaluate("window.__samePage = true")
    page.fill("#f-amount", "10000")
    page.select_option("#f-channel", "cash")
    page.fill("#f-reference", "E2E-收据-001")
    page.click("#preview-repayment")
    page.locator("#repayment-preview .allocation-table tbody tr").first.wait_for()
    preview = page.inner_text("#repayment-preview")
    assert "利息" in preview and "本金" in preview and "10,000.00" in preview and "罚息" in preview
    assert page.locator("#repayment-preview .allocation-table tbody tr").count() >= 2
    assert page.evaluate("window.__samePage === true")
    assert "E2E-收据-001" not in page.inner_text(".transactions-table")
    page.screenshot(path=str(shots(tmp_path) / "loan-repayment-preview.png"), full_page=True)

    # a refusal stands next to its field, in Chinese
    page.fill("#f-amount", "-1")
    page.click("#preview-repayment")
    page.locator("#e-amount").wait_for()
    assert "还款金额应为大于 0" in page.inner_text("#e-amount")
    assert page.locator("#confirm-repayment").count() == 0

    page.fill("#f-amount", "10000")
    page.click("#preview-repayment")
    page.locator("#confirm-repayment").wait_for()
    page.click("#confirm-repayment")
    page.wait_for_url(re.compile(r".*done=repaid.*"))
    assert "还款已入账" in page.inner_text(".done-notice")
    row = page.locator(".transactions-table tr", has_text="E2E-收据-001")
    assert row.count() == 1 and "现金" in row.inner_text() and "10,000.00" in row.inner_text()
    assert row.locator("summary", has_text="冲正").count() == 1
    page.screenshot(path=str(shots(tmp_path) / "loan-after-repayment.png"), full_page=True)

    # the payoff panel follows the date (htmx), the statement downloads with its name
    page.fill("#f-on", "2026-12-01")
    page.locator("#f-on").dispatch_event("change")
    page.locator("#payoff-panel input[value='2026-12-01']").wait_for()
    assert "结清应还合计" in page.inner_text("#payoff-panel")
    with page.expect_download() as download:
        page.click("a.statement-pdf")
    assert download.value.suggested_filename == f"对账单-{number}.pdf"
    assert page.url.startswith(loan_url)
    page.context.close()


def test_gm_writes_a_loan_off_and_finance_posts_a_recovery(
        browser: Any, demo: dict[str, Any], tmp_path: Path) -> None:
    base, logins = demo["base"], demo["logins"]
    page = new_page(browser)
    sign_in(page, base, "gm", logins["gm"])
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/servicing/loans?status=active")
    page.click(".loans-table tr:has-text('60,000.00') td.title-cell a")  # M3, 76 days past due
    page.wait_for_url(re.compile(r".*/servicing/loans/[0-9a-f-]{36}$"))
    loan_url = page.url
    assert page.locator("#prepayment-form").count() == 0  # gm takes no money
    assert "第 1 版" in page.inner_text("#schedule-title")

    # the warning and the amounts come first; a reason is required
    page.click("#writeoff-panel summary")
    warning = page.inner_text(".writeoff-warning")
    assert "贷款损失准备（1304）" in warning and "核销合计" in warning
    total = page.inner_text(".writeoff-total")
    page.screenshot(path=str(shots(tmp_path) / "loan-write-off.png"), full_page=True)
    page.click("#confirm-write-off")
    page.locator("#e-writeoff-reason").wait_for()
    assert page.inner_text("#e-writeoff-reason") == "核销原因为必填项"
    page.fill("#f-writeoff-reason", "诉讼终结，无可执行财产（E2E）")
    page.click("#confirm-write-off")
    page.wait_for_url(re.compile(r".*done=written_off.*"))
    assert "贷款已核销" in page.inner_text(".done-notice")
    assert page.inner_text("#written-off .written-off-on") == "2026-11-20"
    assert page.inner_text("#written-off .written-off-amount") == total
    assert "已核销" in page.inner_text(".page-head")
    assert page.locator("#recovery-form").count() == 0  # gm may not post money
    page.context.close()

    for width, height, name in ((1280, 900, "desktop"), (375, 812, "375")):
        cashier = new_page(browser, width, height)
        sign_in(cashier, base, "finance", logins["finance"])
        cashier.wait_for_url(f"{base}/")
        cashier.goto(loan_url)
        if name == "desktop":
            assert cashier.locator("#repayment-form").count() == 0
            cashier.fill("#f-recovery-amount", "1000")
            cashier.select_option("#f-recovery-channel", "cash")
            cashier.fill("#f-recovery-reference", "E2E-收回-001")
            cashier.click("#confirm-recovery")
            cashier.wait_for_url(re.compile(r".*done=recovered.*"))
            assert "核销后收回已入账" in cashier.inner_text(".done-notice")
            assert cashier.inner_text("#written-off .recovered") == "1,000.00"
            row = cashier.locator(".transactions-table tr", has_text="E2E-收回-001")
            assert row.count() == 1 and "核销后收回" in row.inner_text()
        else:
            assert fits(cashier), loan_url
        cashier.screenshot(path=str(shots(tmp_path) / f"loan-written-off-{name}.png"),
                           full_page=True)
        cashier.context.close()


def test_finance_previews_and_confirms_a_partial_prepayment(
        browser: Any, demo: dict[str, Any], tmp_path: Path) -> None:
    base, password = demo["base"], demo["logins"]["finance"]
    page = new_page(browser)
    sign_in(page, base, "finance", password)
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/servicing/loans?status=active")
    page.click(".loans-table tr:has-text('100,000.00') td.title-cell a")  # current, 6 paid
    page.wait_for_url(re.compile(r".*/servicing/loans/[0-9a-f-]{36}$"))
    assert "第 1 版" in page.inner_text("#schedule-title")
    page.evaluate("window.__samePage = true")
    page.click("#prepayment-panel summary")
    assert page.input_value("#f-prepay-mode") == "reduce_term"  # JY01's default
    page.fill("#f-prepay-amount", "20000")
    page.click("#preview-prepayment")
    page.locator("#prepayment-preview .new-schedule-table tbody tr").first.wait_for()
    assert page.evaluate("window.__samePage === true")  # swapped in place
    preview = page.inner_text("#prepayment-preview")
    assert "提前归还本金" in preview and "提前还款手续费" in preview and "缩短期限" in preview
    page.screenshot(path=str(shots(tmp_path) / "loan-prepayment-preview.png"), full_page=True)
    page.click("#confirm-prepayment")
    page.wait_for_url(re.compile(r".*done=prepaid.*"))
    assert "提前还款已入账" in page.inner_text(".done-notice")
    assert "第 2 版" in page.inner_text("#schedule-title")
    assert page.locator(".schedule-table tbody tr").count() < 13  # the term is shorter
    loan_url = page.url.split("?", 1)[0]
    page.context.close()

    phone = new_page(browser, 375, 812)
    sign_in(phone, base, "finance", password)
    phone.wait_for_url(f"{base}/")
    phone.goto(loan_url)
    phone.click("#prepayment-panel summary")
    phone.fill("#f-prepay-amount", "5000")
    phone.select_option("#f-prepay-mode", "reduce_installment")
    phone.click("#preview-prepayment")
    phone.locator("#confirm-prepayment").wait_for()
    assert "减少月供" in phone.inner_text("#prepayment-preview")
    assert fits(phone), loan_url
    phone.screenshot(path=str(shots(tmp_path) / "loan-prepayment-375.png"), full_page=True)
    phone.context.close()


def test_gm_creates_a_product_in_the_editor_with_a_live_preview(
        browser: Any, demo: dict[str, Any], tmp_path: Path) -> None:
    base, password = demo["base"], demo["logins"]["gm"]
    page = new_page(browser)
    sign_in(page, base, "gm", password)
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/servicing/products")
    page.click("#new-product")
    page.wait_for_url(f"{base}/servicing/products/new")
    page.evaluate("window.__samePage = true")
    page.fill("#f-code", "E2E01")
    page.fill("#f-name", "浏览器测试产品")
    for key, value in (("amount_min", "10000"), ("amount_max", "200000"), ("term_min", "6"),
                       ("term_max", "24"), ("rate_min", "8"), ("rate_max", "24"),
                       ("rate_default", "12"), ("sample_amount", "10000"),
                       ("sample_periods", "12")):
        page.fill(f"#f-{key}", value)
    first = page.locator("#editor-preview .schedule-table td.total").first
    page.locator("#editor-preview .schedule-table td.total", has_text="888.49").first.wait_for()
    assert first.inner_text() == "888.49"  # 等额本息, DOMAIN.md's example

    # a change of method changes the preview in place, nothing saved
    page.select_option("#f-method", "equal_principal")
    page.locator("#editor-preview .schedule-table td.total", has_text="933.33").first.wait_for()
    # a fee row comes from the server (htmx), and the APR follows the fee
    page.click("button.add-fee")
    page.locator("#f-fee-0-name").wait_for()
    page.fill("#f-fee-0-name", "服务费")
    page.fill("#f-fee-0-value", "1")
    page.locator("#editor-preview .apr", has_text=re.compile(r"^1[3-9]\.")).wait_for()
    # the allocation order is moved with the arrows
    page.click("button[aria-label='将利息上移']")
    page.locator(".alloc-order li").nth(2).filter(has_text="利息").wait_for()
    # quoted as a daily rate, 12 is 万分之12 a day: 43.20% a year on 360 days
    page.select_option("#f-rate_quote", "daily_wan")
    page.locator("#editor-preview .quoted-rate", has_text="年化 43.20%").wait_for()
    page.locator("#f-rate_min + .help", has_text="日利率").wait_for()
    page.select_option("#f-rate_quote", "annual")
    page.locator("#f-rate_min + .help", has_text="年利率").wait_for()
    page.locator("#editor-preview .quoted-rate").wait_for(state="detached")
    assert page.evaluate("window.__samePage === true")
    assert page.input_value("#f-fee-0-name") == "服务费"  # typed values survive the swap
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots(tmp_path) / "product-editor.png"), full_page=True)

    page.click("#save-product")
    page.wait_for_url(f"{base}/servicing/products/E2E01?saved=1")
    assert "已保存：当前为第 1 版" in page.inner_text(".saved-notice")
    assert "等额本金" in page.inner_text("main")
    page.click("#edit-product")
    page.wait_for_url(f"{base}/servicing/products/E2E01/edit")
    assert "已放款的贷款保持放款时固定的条款" in page.inner_text(".frozen-note")
    page.fill("#f-rate_max", "10")  # below the default: refused next to its field
    page.click("#save-product")
    page.locator("#e-rate_default").wait_for()
    assert page.inner_text("#e-rate_default") == "默认利率应在 8 至 10 之间"
    page.fill("#f-rate_max", "20")
    page.click("#save-product")
    page.wait_for_url(f"{base}/servicing/products/E2E01?saved=2")
    assert "第 2 版" in page.inner_text(".saved-notice")
    page.context.close()

    phone = new_page(browser, 375, 812)
    sign_in(phone, base, "gm", password)
    phone.wait_for_url(f"{base}/")
    phone.goto(f"{base}/servicing/products/E2E01/edit")
    phone.locator("#editor-preview .schedule-table").wait_for()
    assert fits(phone)
    phone.screenshot(path=str(shots(tmp_path) / "product-editor-375.png"), full_page=True)
    phone.context.close()
