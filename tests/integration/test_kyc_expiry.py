"""KYC expiry on both databases: an expiry date with the upload (form and API) or set
later (audited), badges for expiring (tenant setting, default 30 days) and expired
documents, the periodic job notifying the record's owner once per document and stage,
and the in-browser preview of an uploaded PNG and PDF."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from core import documents, notifications, outbox, records
from core.document_expiry import expiry_job
from core.errors import ValidationFailed
from core.jobs import enqueue
from core.tables import AuditEntry
from core.tenancy import tenant_scope
from tests.conftest import as_user, login
from tests.integration.test_ui_pages import sign_in

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00"
       b"\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe"
       b"\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]"
       b"/Count 1>>endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


async def first_customer(ctx: Any) -> str:
    return (await records.list_records(ctx, "customer", sort="created_at")).items[0]["id"]


async def test_expiry_states_job_and_notifications(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()  # business date 2026-11-20
    admin = await as_user(ctx.tenant, "admin")
    customer = await first_customer(admin)  # owned by nobody: created by the pack (system)
    mine = await records.create(admin, "customer", {
        "kind": "individual", "name": "到期测试", "resident_id": "11010519491231002X"})
    soon = await documents.upload(admin, "customer", mine["id"], "id_front", "a.png", PNG,
                                  expires_on="2026-12-10")
    gone = await documents.upload(admin, "customer", mine["id"], "id_back", "b.png", PNG,
                                  expires_on="2026-11-01")
    later = await documents.upload(admin, "customer", mine["id"], "credit_report", "c.pdf",
                                   PDF, expires_on="2027-06-30")
    await documents.upload(admin, "customer", customer, "id_front", "d.png", PNG,
                           expires_on="2026-11-02")  # a record without owner: nobody told
    assert soon["expires_on"] == "2026-12-10"
    today = ctx.tenant.business_date
    assert [documents.expiry_state(d["expires_on"], today, 30) for d in (soon, gone, later)] \
        == ["expiring", "expired", ""]
    assert documents.expiry_state("2026-12-10", today, 10) == ""

    async with tenant_scope(ctx):  # as the scheduler would: through the outbox
        await enqueue(ctx, "core.documents.expiry")
    await outbox.run_due(ctx.tenant)
    notes = await notifications.list_for(admin)
    assert sorted(n["title"] for n in notes) == [
        "客户资料「身份证人像面」将于 2026-12-10 到期", "客户资料「身份证国徽面」已于 2026-11-01 过期"]
    assert {n["link"] for n in notes} == {f"/e/customer/{mine['id']}#documents"}
    assert await expiry_job(ctx) == 0  # once per document and stage
    assert await expiry_job(ctx, on="2026-12-11") == 1  # the first one has now expired
    # a tenant that warns 60 days ahead also hears of the one due in 2027? no: 222 days
    wide = replace(ctx, tenant=replace(ctx.tenant, settings={
        **ctx.tenant.settings, "documents.expiry_warning_days": 300}))
    assert await expiry_job(wide) == 1


async def test_set_expiry_audited_and_bad_dates_refused(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()
    admin = await as_user(ctx.tenant, "admin")
    customer = await first_customer(admin)
    with pytest.raises(ValidationFailed) as caught:
        await documents.upload(admin, "customer", customer, "id_front", "a.png", PNG,
                               expires_on="2026-02-30")
    assert caught.value.errors[0].field == "expires_on"
    assert "有效期至" in caught.value.errors[0].message("zh-CN")
    assert await documents.list_documents(admin, "customer", customer) == []
    doc = await documents.upload(admin, "customer", customer, "id_front", "a.png", PNG)
    assert doc["expires_on"] is None
    changed = await documents.set_expiry(admin, "customer", customer, doc["id"], "2036-01-01")
    assert changed["expires_on"] == "2036-01-01"
    async with tenant_scope(ctx, write=False):
        entry = (await AuditEntry.select().where(
            AuditEntry.tenant_id == ctx.tenant_id,
            AuditEntry.action == "document.expiry").output(load_json=True).run())[0]
    assert entry["diff"]["expires_on"] == [None, "2036-01-01"]


async def test_badges_form_api_and_preview(kernel: Any, client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()
    customer = await first_customer(ctx)
    headers = await login(client, ctx.tenant.slug)
    r = await client.post(f"/api/v1/customers/{customer}/documents", headers=headers,
                          data={"kind": "id_front", "expires_on": "2026-12-01"},
                          files={"file": ("front.png", PNG, "image/png")})
    assert r.status_code == 201 and r.json()["expires_on"] == "2026-12-01"
    png_id = r.json()["id"]
    r = await client.post(f"/api/v1/customers/{customer}/documents", headers=headers,
                          data={"kind": "credit_report"},
                          files={"file": ("report.pdf", PDF, "application/pdf")})
    pdf_id = r.json()["id"]
    r = await client.patch(f"/api/v1/customers/{customer}/documents/{pdf_id}",
                           headers=headers, json={"expires_on": "2026-10-01"})
    assert r.status_code == 200 and r.json()["expires_on"] == "2026-10-01"
    r = await client.patch(f"/api/v1/customers/{customer}/documents/{pdf_id}",
                           headers=headers, json={"expires_on": "soon"})
    assert r.status_code == 422

    csrf = await sign_in(client, ctx.tenant.slug)
    page = (await client.get(f"/e/customer/{customer}")).text
    row_png = page.split(f'id="doc-{png_id}"', 1)[1].split("</tr>", 1)[0]
    row_pdf = page.split(f'id="doc-{pdf_id}"', 1)[1].split("</tr>", 1)[0]
    assert "30 天内到期" in row_png and "已过期" not in row_png
    assert "已过期" in row_pdf
    r = await client.post(f"/e/customer/{customer}/documents/{png_id}/expiry",
                          data={"_csrf": csrf, "expires_on": "2030-01-01"})
    assert r.status_code == 303
    page = (await client.get(f"/e/customer/{customer}")).text
    assert "到期" not in page.split(f'id="doc-{png_id}"', 1)[1].split("</tr>", 1)[0]
    # preview in the browser: inline, the right type, the exact bytes
    for doc_id, body, ctype in ((png_id, PNG, "image/png"), (pdf_id, PDF, "application/pdf")):
        r = await client.get(f"/e/customer/{customer}/documents/{doc_id}?inline=1")
        assert r.status_code == 200 and r.headers["content-type"].startswith(ctype)
        assert r.headers["content-disposition"].startswith("inline")
        assert r.content == body
