"""Issue 7's flow end to end, in a real browser against a real `xindai demo` server, every
step clicked the way a user does: the officer captures a lead, converts it, uploads the ID
card (both sides) on the customer's 360 page, creates and submits an application of 300,000
(the local credit bureau answers, the score appears); the reviewer and then the branch
manager approve in their inboxes (300,000 falls in the 100,000–500,000 band); the contract
is generated on approval, signed in person and by the lender, and verified; finance is
notified, disburses from the application and the application reads 已放款. A second test
walks the inbox and the application page in English. Screenshots go under the test's tmp
folder (or $UI_SHOTS)."""

from __future__ import annotations

import io
import os
import random
import re
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from core.validators import check_resident_id, resident_id_check_char
from tests.e2e.test_ui_browser import browser, demo, new_page, sign_in

__all__ = ["browser", "demo"]  # the fixtures, used by name

UUID = r"[0-9a-f-]{36}"


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("UI_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def resident_id(rng: random.Random) -> str:
    """A valid 18-digit resident ID, different on every run (birth date and sequence)."""
    born = date(1975, 1, 1) + timedelta(days=rng.randrange(7000))
    first17 = f"330106{born:%Y%m%d}{rng.randrange(1000):03d}"
    return check_resident_id(first17 + resident_id_check_char(first17))


def png_bytes() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 200), (236, 242, 248))
    ImageDraw.Draw(image).rectangle((16, 16, 110, 150), outline=(40, 80, 140), width=3)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def pdf_bytes() -> bytes:
    """The smallest well-formed one-page PDF (offsets computed, so readers accept it)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def poll(page: Any, done: Callable[[], bool], seconds: float = 60) -> None:
    """Reload until `done` (the demo's in-process outbox worker delivers events shortly)."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting on {page.url}"
        time.sleep(1)
        page.reload()


def signed_in(browser: Any, demo: dict[str, Any], who: str) -> Any:
    page = new_page(browser)
    sign_in(page, demo["base"], who, demo["logins"][who])
    page.wait_for_url(f"{demo['base']}/")
    return page


def upload(page: Any, kind: str, label: str, name: str, mime: str, data: bytes) -> None:
    """Choose the kind and the file in the documents panel; the row shows the kind (the
    file name is personal data, shown masked)."""
    form = page.locator("form.upload-form")
    form.locator("#f-doc-kind").select_option(kind)
    form.locator("#f-doc-file").set_input_files({"name": name, "mimeType": mime,
                                                 "buffer": data})
    form.locator("button[type=submit]").click()
    page.locator(".documents-table tbody tr", has_text=label).wait_for()


def test_lead_to_disbursed_loan(browser: Any, demo: dict[str, Any], tmp_path: Path) -> None:
    base, folder = demo["base"], shots(tmp_path)
    rng = random.Random()
    rid = resident_id(rng)
    mobile = f"139{rng.randrange(10**8):08d}"
    name = f"端到端{rng.choice('甲乙丙丁戊己庚辛')}{rng.randrange(1000, 9999)}"

    # 1. the officer captures a lead, finds it under 线索, converts it
    officer = signed_in(browser, demo, "officer")
    officer.click(".sidebar a[href='/crm/leads']")
    officer.wait_for_url(f"{base}/crm/leads")
    officer.click("a.button.primary[href='/e/lead/new']")
    officer.select_option("#f-kind", "individual")
    officer.fill("#f-name", name)
    officer.fill("#f-mobile", mobile)
    officer.fill("#f-resident_id", rid)
    officer.click("form.record-form button[type=submit]")
    officer.wait_for_url(re.compile(rf".*/{UUID}$"))
    officer.click(".sidebar a[href='/crm/leads']")
    officer.wait_for_url(f"{base}/crm/leads")
    officer.click(f".leads-table a:has-text('{name}')")
    officer.wait_for_url(re.compile(rf".*/crm/leads/{UUID}$"))
    officer.click("button:has-text('转为客户')")
    officer.wait_for_url(re.compile(r".*note=converted"))
    assert "已转为客户" in officer.inner_text("#lead-note")
    officer.click("#open-customer")
    officer.wait_for_url(re.compile(rf".*/e/customer/{UUID}$"))
    customer_url = officer.url
    customer_id = customer_url.rsplit("/", 1)[-1]
    assert name in officer.inner_text("main")

    # 2. the ID card, both sides, through the documents panel of the 360 view
    upload(officer, "id_front", "身份证人像面", "id-front.png", "image/png", png_bytes())
    upload(officer, "id_back", "身份证国徽面", "id-back.pdf", "application/pdf", pdf_bytes())
    assert officer.locator(".documents-table tbody tr").count() == 2

    # 3. the application: live schedule and APR, saved as a draft, submitted
    officer.click(".sidebar a[href='/applications']")
    officer.wait_for_url(f"{base}/applications")
    officer.click("#new-application")
    officer.wait_for_url(f"{base}/applications/new")
    officer.select_option("#f-customer_id", customer_id)
    officer.select_option("#f-product", "JY01")
    officer.fill("#f-amount", "300000")
    officer.fill("#f-periods", "12")
    officer.fill("#f-purpose", "购进原材料（端到端测试）")
    officer.fill("#f-consent_ref", f"SQ-E2E-{rng.randrange(10**6):06d}")
    officer.locator("#application-quote .schedule-table tbody tr").nth(11).wait_for()
    assert officer.locator("#application-quote .schedule-table tbody tr").count() == 12
    apr = officer.inner_text("#application-quote .apr")
    assert re.fullmatch(r"\d+\.\d+%", apr), apr
    officer.click("#save-application")
    officer.wait_for_url(re.compile(rf".*/applications/{UUID}$"))
    application_url = officer.url
    application_id = application_url.rsplit("/", 1)[-1]
    assert officer.inner_text("#application-status").strip() == "草稿"
    assert officer.locator("#checklist li.done[data-kind='id_front']").count() == 1
    assert officer.locator("#checklist li.done[data-kind='id_back']").count() == 1
    officer.click("#submit-application")
    officer.wait_for_url(application_url)
    assert officer.inner_text("#application-status").strip() == "审批中"
    assert re.fullmatch(r"\d{3}", officer.inner_text("#credit-report .bureau-score").strip())
    assert re.fullmatch(r"\d+", officer.inner_text("#score .score-total").strip())
    number = officer.locator("nav.breadcrumb span").last.inner_text().strip()
    assert number
    # maker-checker: the officer sees the approval, with nothing to decide
    officer.click("#approvals a.button")
    officer.wait_for_url(re.compile(rf".*/approvals/{UUID}$"))
    approval_url = officer.url
    assert officer.locator("#decision-form").count() == 0
    assert officer.locator("button[value=approve]").count() == 0
    officer.context.close()

    # 4. the reviewer and then the branch manager approve in their inboxes
    for who, comment in (("reviewer", "征信良好，经营流水稳定，同意。"),
                         ("manager", "额度在支行权限内，同意放款。")):
        page = signed_in(browser, demo, who)
        page.click(".sidebar a[href='/approvals']")
        page.wait_for_url(f"{base}/approvals")
        assert int(page.inner_text("#count-pending .metric-value")) >= 1
        row = page.locator(".inbox-table tr.inbox-row", has_text=number)
        assert "300,000.00" in row.inner_text()
        if who == "reviewer":
            page.screenshot(path=str(folder / "origination-inbox.png"), full_page=True)
        row.locator("td.title-cell a").click()
        page.wait_for_url(approval_url)
        page.fill("#f-comment", comment)
        page.click("#decision-form button[value=approve]")
        page.wait_for_url(re.compile(r".*/approvals.*"))
        page.context.close()

    # 5. approved, both comments in the timeline; the contract generated on approval
    officer = signed_in(browser, demo, "officer")
    officer.goto(application_url)
    assert officer.inner_text("#application-status").strip() == "已批准"
    timeline = officer.inner_text("#approvals")
    assert "征信良好，经营流水稳定，同意。" in timeline and "额度在支行权限内，同意放款。" in timeline
    officer.screenshot(path=str(folder / "origination-application-approved.png"),
                       full_page=True)
    officer.click(".sidebar a[href='/contracts']")
    officer.wait_for_url(f"{base}/contracts")
    poll(officer, lambda: number in officer.inner_text("main"))
    row = officer.locator(".contracts-table tr", has_text=number)
    assert "已生成" in row.inner_text()
    row.locator("a").first.click()
    officer.wait_for_url(re.compile(rf".*/contracts/{UUID}$"))
    contract_url = officer.url
    officer.click("button.send-button")
    code = officer.inner_text(".one-time-code .otp").strip()
    assert len(code) == 6 and code.isdigit()
    officer.fill("#f-name", name)
    officer.fill("#f-code", code)
    officer.check("input[name=agreed]")
    officer.click("button.borrower-sign-button")
    officer.wait_for_url(f"{contract_url}?done=borrower")
    officer.click("button.lender-sign-button")
    officer.wait_for_url(f"{contract_url}?done=signed")
    assert officer.inner_text(".contract-status").strip() == "已签署"
    officer.click("button.verify-button")
    officer.locator(".verification").wait_for()
    assert "验签通过" in officer.inner_text(".verification")
    officer.screenshot(path=str(folder / "origination-contract-signed.png"), full_page=True)
    officer.context.close()

    # 6. finance is told, disburses from the application, the application is done
    finance = signed_in(browser, demo, "finance")
    finance.locator("#bell-count").wait_for()
    poll(finance, lambda: finance.locator("#bell-count").count() > 0
         and int(finance.inner_text("#bell-count") or 0) >= 1)
    finance.goto(f"{base}/notifications")
    poll(finance, lambda: number in finance.inner_text("main"))
    assert "待放款" in finance.locator("li, tr", has_text=number).first.inner_text()
    finance.goto(application_url)
    poll(finance, lambda: finance.inner_text("#application-status").strip() == "待放款")
    finance.click("#disburse-application")
    finance.wait_for_url(f"{base}/servicing/disburse?application={application_id}")
    assert finance.input_value("#f-customer_id") == customer_id
    assert finance.input_value("#f-amount") in ("300000", "300000.00")
    assert finance.input_value("#f-periods") == "12"
    assert finance.locator("#f-amount[readonly]").count() == 1
    assert finance.locator("#f-product[disabled]").count() == 1  # the approved product
    # the schedule to confirm is there at once: nothing to fill in
    assert finance.locator("#disburse-quote .schedule-table tbody tr").count() == 12
    assert "年化利率" in finance.inner_text("#disburse-quote")
    finance.screenshot(path=str(folder / "origination-disburse.png"), full_page=True)
    finance.click("#confirm-disburse")
    finance.wait_for_url(re.compile(rf".*/servicing/loans/{UUID}(\?.*)?$"))
    assert "已放款" in finance.inner_text("main")
    assert finance.locator(".schedule-table tbody tr").count() == 12
    finance.goto(application_url)
    poll(finance, lambda: finance.inner_text("#application-status").strip() == "已放款")
    finance.context.close()


def test_the_inbox_and_an_application_in_english(browser: Any, demo: dict[str, Any],
                                                 tmp_path: Path) -> None:
    """The reviewer switches to English with the language switcher and walks the inbox,
    an approval and its application (demo applications, nothing decided)."""
    base = demo["base"]
    page = signed_in(browser, demo, "reviewer")
    page.click(".sidebar a[href='/approvals']")
    page.wait_for_url(f"{base}/approvals")
    page.click(".lang-switch a[href^='/lang/en']")
    page.wait_for_url(f"{base}/approvals")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.inner_text("h1") == "Approvals"
    assert "Pending" in page.inner_text("#count-pending")
    assert "Risk review" in page.inner_text(".inbox-table")
    heads = page.locator(".inbox-table thead").inner_text()
    assert "Amount (CNY)" in heads and "Submitted by" in heads
    page.screenshot(path=str(shots(tmp_path) / "origination-inbox-en.png"), full_page=True)

    row = page.locator(".inbox-table tr.inbox-row", has_text="JY01").first
    if not row.count():
        row = page.locator(".inbox-table tr.inbox-row").first
    row.locator("td.title-cell a").click()
    page.wait_for_url(re.compile(rf".*/approvals/{UUID}$"))
    assert "Your decision" in page.inner_text("#s-decide")
    assert page.inner_text("#decision-form button[value=approve]") == "Approve"
    assert "Current step: Risk review" in page.inner_text("#s-step")
    page.click("a.button:has-text('Open the')")
    page.wait_for_url(re.compile(rf".*/applications/{UUID}$"))
    assert page.inner_text("#application-status").strip() == "In approval"
    for section, label in (("#checklist", "Required documents"),
                           ("#credit-report", "Credit report"), ("#score", "Score"),
                           ("#approvals", "Approval"), ("#history", "Status history")):
        assert page.inner_text(f"{section} h2").startswith(label), section
    timeline = page.inner_text("#approvals")
    assert "Submitted for approval" in timeline and "Step started · Risk review" in timeline
    assert not re.search(r"[\u4e00-\u9fff]", page.inner_text(".page-head"))
    page.screenshot(path=str(shots(tmp_path) / "origination-application-en.png"),
                    full_page=True)
    page.context.close()
