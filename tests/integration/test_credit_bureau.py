"""The credit bureau over real HTTP: the local bureau runs on a free port (uvicorn in a
thread), the lender's HTTP client signs its requests; a forged signature, a replayed nonce
and a query without the customer's consent are refused, and each query is audited."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from core import documents, records
from core.errors import ValidationFailed
from core.tables import AuditEntry
from core.tenancy import tenant_scope
from plugins.bureau_local import reports
from plugins.bureau_local.server import start_in_thread
from plugins.origination import applications, credit
from plugins.origination.bureau_client import PATH, HttpCreditBureau, sign
from plugins.servicing import products

KEY, SECRET = "lender-1", secrets.token_hex(32)
RESIDENT_ID = "11010519491231002X"


@pytest.fixture(scope="module")
def bureau() -> Iterator[str]:
    running = start_in_thread({KEY: SECRET})
    yield running.url
    running.stop()


async def test_a_signed_query_gets_a_deterministic_report(bureau: str) -> None:
    client = HttpCreditBureau(bureau, KEY, SECRET)
    first = await client.query(None, name="王小明", resident_id=RESIDENT_ID,  # type: ignore[arg-type]
                               consent_ref="AUTH-1")
    second = await client.query(None, name="王小明", resident_id=RESIDENT_ID,  # type: ignore[arg-type]
                                consent_ref="AUTH-2")
    assert first.document.startswith(b"%PDF-")
    assert first.summary == second.summary == reports.summary_for(RESIDENT_ID)
    assert first.report_ref.startswith("BR") and 300 <= first.summary["bureau_score"] <= 900
    other = reports.summary_for("14050219820309165X")
    assert other != first.summary  # the figures follow the ID number


async def _raw(url: str, body: dict[str, Any], secret: str = SECRET, key: str = KEY,
               nonce: str | None = None, ts: str | None = None,
               tamper: bool = False) -> httpx.Response:
    data = json.dumps(body).encode()
    ts = ts or str(int(time.time() * 1000))
    nonce = nonce or secrets.token_hex(16)
    headers = {"X-Bureau-AppKey": key, "X-Bureau-Timestamp": ts, "X-Bureau-Nonce": nonce,
               "X-Bureau-Signature": sign(secret, "POST", PATH, ts, nonce, data),
               "Content-Type": "application/json"}
    if tamper:  # signed one body, send another
        data = json.dumps({**body, "id_number": "14050219820309165X"}).encode()
    async with httpx.AsyncClient() as c:
        return await c.post(url + PATH, content=data, headers=headers)


async def test_forged_replayed_and_stale_requests_are_refused(bureau: str) -> None:
    body = {"name": "王小明", "id_number": RESIDENT_ID, "consent_ref": "AUTH-1"}
    forged = await _raw(bureau, body, secret="not-the-secret")
    assert forged.status_code == 401 and forged.json()["code"] == "1003"
    tampered = await _raw(bureau, body, tamper=True)
    assert tampered.status_code == 401 and tampered.json()["code"] == "1003"
    assert (await _raw(bureau, body, key="nobody")).json()["code"] == "1002"
    stale = await _raw(bureau, body, ts=str(int(time.time() * 1000) - 3_600_000))
    assert stale.json()["code"] == "1004"
    nonce = secrets.token_hex(16)
    assert (await _raw(bureau, body, nonce=nonce)).status_code == 200
    assert (await _raw(bureau, body, nonce=nonce)).json()["code"] == "1005"
    async with httpx.AsyncClient() as c:
        bare = await c.post(bureau + PATH, json=body)
    assert bare.status_code == 401 and bare.json()["code"] == "1001"
    no_consent = await _raw(bureau, {**body, "consent_ref": ""})
    assert no_consent.status_code == 400 and no_consent.json()["code"] == "2001"
    bad_id = await _raw(bureau, {**body, "id_number": "110105194912310021"})
    assert bad_id.json()["code"] == "2002"


async def test_the_client_reports_the_bureau_refusal(bureau: str) -> None:
    client = HttpCreditBureau(bureau, KEY, "a-wrong-secret")
    with pytest.raises(credit.BureauError) as info:
        await client.query(None, name="王小明", resident_id=RESIDENT_ID,  # type: ignore[arg-type]
                           consent_ref="AUTH-1")
    assert info.value.params["bureau_code"] == "1003"
    assert "征信机构拒绝" in info.value.message("zh-CN")


async def test_a_credit_check_needs_consent_and_is_stored_and_audited(
        kernel: Any, new_tenant: Any, bureau: str) -> None:
    ctx = await new_tenant(plugins=["crm", "servicing", "origination"])
    settings = {"origination.bureau_url": bureau, "origination.bureau_app_key": KEY,
                "origination.bureau_secret": SECRET}
    ctx = replace(ctx, tenant=replace(ctx.tenant, settings={**ctx.tenant.settings,
                                                             **settings}))
    await products.save_product(ctx, "XD01", "经营贷", {
        "method": "equal_installment", "frequency": "month", "interest_basis": "per_period",
        "amount_min": "1000", "amount_max": "500000", "term_min": 3, "term_max": 36,
        "rate_min": "6", "rate_max": "24", "rate_default": "12"})
    page = await records.list_records(ctx, "customer", {"kind": "individual"})
    customer = page.items[0]["id"]
    app = await applications.create(ctx, {"customer_id": customer, "product": "XD01",
                                          "amount": "20000", "periods": 6})
    with pytest.raises(ValidationFailed) as info:
        await credit.check(ctx, app["id"])
    assert info.value.errors[0].field == "consent_ref"
    assert "授权书" in info.value.errors[0].message("zh-CN")
    await applications.update(ctx, app["id"], {"consent_ref": "AUTH-2026-0007"})
    done = await credit.check(ctx, app["id"])
    assert done["summary"] == {k: reports.summary_for(RESIDENT_ID)[k]
                               for k in credit.SUMMARY_KEYS}
    download = await documents.open_document(ctx, "application", app["id"],
                                             done["document_id"])
    body = b"".join([piece async for piece in download.chunks])
    assert download.kind == "credit_report" and body.startswith(b"%PDF-")
    async with tenant_scope(ctx, write=False):
        rows = await AuditEntry.select(AuditEntry.action, AuditEntry.diff).where(
            AuditEntry.tenant_id == ctx.tenant_id,
            AuditEntry.action.like("credit.%")).order_by(AuditEntry.seq).output(
            load_json=True).run()
    assert [r["action"] for r in rows] == ["credit.query_refused", "credit.query"]
    assert rows[1]["diff"]["consent_ref"][1] == "AUTH-2026-0007"
    assert rows[1]["diff"]["report"][1].startswith("BR")
