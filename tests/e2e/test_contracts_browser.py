"""Signing a contract in person, in a real browser against a real `xindai demo` server: an
application of 300,000 is approved (the event the origination plugin emits, sent here by a
separate process on the demo's database), the contract appears in the officer's 合同 list,
the officer opens signing, the borrower confirms with name, one-time code and consent, the
lender signs, the page shows 已签署 and the verification passes. Screenshots are kept under
the test's tmp folder (or $UI_SHOTS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_demo import free_port, start_demo, stop
from tests.e2e.test_ui_browser import browser, new_page, sign_in

__all__ = ["browser"]
ROOT = Path(__file__).resolve().parents[2]

APPROVE = """
import asyncio, json, uuid
from core import records
from core.events import emit
from core.kernel import boot, start, stop
from core.tables import User
from core.tenancy import Context, get_tenant, tenant_scope

async def main():
    k = boot()
    await start(k)
    try:
        ctx = Context.system(await get_tenant("demo"))
        async with tenant_scope(ctx, write=False):
            [officer] = await User.select(User.id).where(
                User.tenant_id == ctx.tenant_id, User.username == "officer").run()
        page = await records.list_records(ctx, "customer", {"kind": "individual"},
                                          per_page=200)
        mine = [c for c in page.items if c["owner_id"] == str(officer["id"])]
        customer = mine[0]
        payload = {"application_id": str(uuid.uuid4()), "number": "SQ-E2E-0001",
                   "customer_id": customer["id"], "product": "JY01", "amount": "300000",
                   "periods": 12, "annual_rate": None}
        async with tenant_scope(ctx):
            await emit(ctx, "application.approved", payload)
        print(json.dumps({"name": customer["name"], **payload}, ensure_ascii=False))
    finally:
        await stop(k)

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("contracts-demo")
    port = free_port()
    proc, logins = start_demo(data_dir, port)
    try:
        yield {"base": f"http://127.0.0.1:{port}", "logins": logins, "dir": data_dir}
    finally:
        stop(proc)


def approve(data_dir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINDAI_")}
    env.update(XINDAI_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", APPROVE], cwd=data_dir, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_officer_signs_a_contract_in_person(browser: Any, demo_dir: dict[str, Any],
                                               tmp_path: Path) -> None:
    base = demo_dir["base"]
    shots = Path(os.environ.get("UI_SHOTS") or tmp_path)
    approved = approve(demo_dir["dir"])
    page = new_page(browser)
    sign_in(page, base, "officer", demo_dir["logins"]["officer"])
    page.wait_for_url(f"{base}/")
    page.click(".sidebar a[href='/contracts']")
    page.wait_for_url(f"{base}/contracts")
    deadline = time.monotonic() + 60  # the demo's in-process worker generates it
    while "SQ-E2E-0001" not in page.inner_text("main") and time.monotonic() < deadline:
        time.sleep(1)
        page.reload()
    row = page.locator(".contracts-table tr", has_text="SQ-E2E-0001")
    assert "已生成" in row.inner_text() and "300,000.00" in row.inner_text()
    row.locator("a").first.click()
    page.wait_for_url(f"{base}/contracts/*")
    contract_url = page.url
    page.click("button.send-button")
    code = page.inner_text(".one-time-code .otp").strip()
    assert len(code) == 6 and code.isdigit()
    page.screenshot(path=str(shots / "contract-sign-page.png"), full_page=True)
    page.fill("#f-name", "某某人")  # the wrong name is refused next to the field
    page.fill("#f-code", code)
    page.check("input[name=agreed]")
    page.click("button.borrower-sign-button")
    assert "借款人姓名与客户资料不一致" in page.inner_text(".sign-form")
    page.fill("#f-name", approved["name"])
    page.fill("#f-code", code)
    page.check("input[name=agreed]")
    page.click("button.borrower-sign-button")
    page.wait_for_url(f"{contract_url}?done=borrower")
    assert "借款人已签" in page.inner_text(".contract-status")
    page.click("button.lender-sign-button")
    page.wait_for_url(f"{contract_url}?done=signed")
    assert page.inner_text(".contract-status").strip() == "已签署"
    page.click("button.verify-button")
    page.locator(".verification").wait_for()
    assert "验签通过" in page.inner_text(".verification")
    assert page.locator(".signatures-table tbody tr").count() == 2
    page.screenshot(path=str(shots / "contract-signed.png"), full_page=True)
    with page.expect_popup() as popup:
        page.click("a.doc-signed")
    pdf = popup.value
    assert "/pdf/signed" in pdf.url
    page.context.close()
