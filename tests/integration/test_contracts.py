"""Contracts on both engines: generated when an application is approved (the event the
origination plugin emits), templates checked before saving, in-person signing with the
tenant's certificate and its verification, tampering detected, the PDFs encrypted on disk,
and who may do what."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from core import documents, records
from core.errors import Forbidden, ValidationFailed
from core.events import emit
from core.identity import create_user
from core.outbox import run_due
from core.tables import AuditEntry, OutboxMessage
from core.tenancy import tenant_scope
from plugins.contracts import certs, esign, library, service, signing
from plugins.contracts.tables import Contract, ContractTemplate
from plugins.servicing import products
from tests.conftest import as_user, login

CONFIG = {
    "method": "equal_installment", "frequency": "month", "interest_basis": "per_period",
    "amount_min": "1000", "amount_max": "500000", "term_min": 3, "term_max": 36,
    "rate_min": "6", "rate_max": "24", "rate_default": "12",
}
PLUGINS = ["crm", "servicing", "contracts"]


async def setup(new_tenant: Any) -> tuple[Any, str]:
    ctx = await new_tenant(plugins=PLUGINS)
    await products.save_product(ctx, "XD01", "经营贷", CONFIG)
    page = await records.list_records(ctx, "customer", {"kind": "individual"})
    return ctx, str(page.items[0]["id"])


def approved(customer: str, amount: str = "300000") -> dict[str, Any]:
    return {"application_id": str(uuid.uuid4()), "number": "SQ2026000001",
            "customer_id": customer, "product": "XD01", "amount": amount, "periods": 12,
            "annual_rate": "12"}


async def generated(ctx: Any, customer: str) -> dict[str, Any]:
    payload = approved(customer)
    await service.on_application_approved(ctx, payload)
    items, _ = await service.list_contracts(ctx)
    return next(c for c in items if c["application_id"] == payload["application_id"])


async def events_named(ctx: Any, name: str) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        return await OutboxMessage.select().where(
            OutboxMessage.tenant_id == ctx.tenant_id,
            OutboxMessage.name == name).output(load_json=True).run()


async def pdf_text(ctx: Any, contract: dict[str, Any], which: str) -> bytes:
    opened = await service.open_pdf(ctx, contract["id"], which)
    return b"".join([p async for p in opened.chunks])


async def test_a_contract_is_generated_when_an_application_is_approved(
        kernel: Any, new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    payload = approved(customer)
    async with tenant_scope(ctx):
        await emit(ctx, "application.approved", payload)
    await run_due(ctx.tenant)
    items, total = await service.list_contracts(ctx)
    assert total == 1
    contract = items[0]
    assert contract["status"] == "generated" and contract["number"].startswith("HT2")
    assert contract["amount"] == "300000.00" and contract["application_id"] == \
        payload["application_id"]
    assert contract["apr"] == "12.00" and contract["template_version"] == 1
    pdf = await pdf_text(ctx, contract, "unsigned")
    assert pdf.startswith(b"%PDF-")
    import io

    from pypdf import PdfReader

    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert contract["number"] in text and "300,000.00" in text and "叁拾万元整" in text
    # stored through the document store, on the borrower's record, as a contract
    docs = await documents.list_documents(ctx, "customer", customer)
    assert [d["kind"] for d in docs] == ["contract"]
    [event] = await events_named(ctx, "contract.generated")
    assert event["payload"]["contract_id"] == contract["id"]
    # the manual action regenerates: the open contract is cancelled and replaced
    again = await service.generate(ctx, payload["application_id"])
    assert again["number"] != contract["number"]
    old = await service.get_contract(ctx, contract["id"])
    assert old["status"] == "cancelled"
    with pytest.raises(ValidationFailed) as info:
        await service.generate(ctx, str(uuid.uuid4()))  # never approved
    assert "审批通过" in info.value.errors[0].message("zh-CN")


async def test_a_template_with_an_unknown_variable_is_refused(kernel: Any, new_tenant: Any,
                                                              client: Any) -> None:
    ctx, _ = await setup(new_tenant)
    before = await library.history(ctx, "*")
    with pytest.raises(ValidationFailed) as info:
        await library.save_template(ctx, "XD01", "# 合同\n担保人：{{ guarantor_name }}\n")
    assert "guarantor_name" in info.value.errors[0].message("zh-CN")
    async with tenant_scope(ctx, write=False):
        assert await ContractTemplate.count().where(
            ContractTemplate.tenant_id == ctx.tenant_id).run() == len(before) == 1
    headers = await login(client, ctx.tenant.slug)
    r = await client.put("/api/v1/contract-templates/XD01", headers=headers,
                         json={"body": "# 合同\n{{ borrower_nmae }}\n"})
    assert r.status_code == 422 and "borrower_nmae" in r.text
    saved = await library.save_template(ctx, "XD01", "# 经营贷合同\n{{ borrower_name }}\n"
                                                     "{{ contract_number }}\n")
    assert saved["version"] == 1 and (await library.template_for(ctx, "XD01"))["id"] == \
        saved["id"]
    assert (await library.template_for(ctx, "OTHER"))["product"] == "*"


async def test_local_signing_verifies_and_tampering_does_not(kernel: Any,
                                                             new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    contract = await generated(ctx, customer)
    started = await esign.start_signing(ctx, contract["id"])
    assert started["status"] == "sent" and started["provider"] == "local"
    code = started["shown_code"]
    assert code and len(code) == 6  # no SMS provider: shown to the officer
    name = (await records.get(ctx, "customer", customer))["name"]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    with pytest.raises(ValidationFailed) as info:
        await esign.borrower_confirm(ctx, contract["id"], name, wrong, True)
    assert info.value.errors[0].field == "code"
    with pytest.raises(ValidationFailed) as info:
        await esign.borrower_confirm(ctx, contract["id"], "李四", code, True)
    assert info.value.errors[0].field == "borrower_name"
    assert (await service.get_contract(ctx, contract["id"]))["status"] == "sent"
    async with tenant_scope(ctx, write=False):
        refused = await AuditEntry.count().where(
            AuditEntry.tenant_id == ctx.tenant_id,
            AuditEntry.action == "security.contract_sign_refused").run()
    assert refused == 2
    signed = await esign.borrower_confirm(ctx, contract["id"], name, code, True)
    assert signed["status"] == "borrower_signed"
    done = await esign.lender_sign(ctx, contract["id"])
    assert done["status"] == "signed" and done["signed_at"]
    result = await service.verify(ctx, contract["id"])
    assert result["ok"] and result["trusted"] and result["intact"]
    assert [s["field_name"] for s in result["signatures"]] == ["borrower", "lender"]
    assert result["sha256_matches"] is True
    [event] = await events_named(ctx, "contract.signed")
    assert event["payload"]["contract_id"] == contract["id"]
    assert event["payload"]["notify"]["roles"] == ["finance"]
    assert event["payload"]["notify"]["link"] == f"/contracts/{contract['id']}"
    history = [h["to"] for h in await service.contract_history(ctx, contract["id"])]
    assert history == ["generated", "sent", "borrower_signed", "signed"]
    # one byte of the signed bytes changed: every signature reports it
    pdf = bytearray(await pdf_text(ctx, contract, "signed"))
    at = pdf.index(b"stream\n") + 20
    pdf[at] = (pdf[at] + 1) % 256
    tampered = await signing.async_verify_pdf(bytes(pdf), [await certs.trust_root(ctx)])
    assert not tampered.ok and not tampered.intact
    # a second time is refused: the contract is signed
    with pytest.raises(Exception) as again:
        await esign.lender_sign(ctx, contract["id"])
    assert "已签署" in again.value.message("zh-CN")


async def test_contract_files_are_encrypted_on_disk(kernel: Any, new_tenant: Any) -> None:
    from core.kernel import kernel as current

    ctx, customer = await setup(new_tenant)
    contract = await generated(ctx, customer)
    folder = Path(current().settings.document_dir)
    files = [p for p in folder.rglob("*") if p.is_file() and str(ctx.tenant_id) in str(p)]
    assert files, "the contract file is in the document directory"
    for path in files:
        raw = path.read_bytes()
        assert b"%PDF" not in raw and contract["number"].encode() not in raw
    async with tenant_scope(ctx, write=False):
        [row] = await Contract.select().where(Contract.tenant_id == ctx.tenant_id).run()
    assert row["unsigned_document_id"] is not None and len(row["unsigned_sha256"]) == 64


async def test_who_may_do_what(kernel: Any, new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    async with tenant_scope(ctx):
        for username, role in (("fin", "finance"), ("gm1", "general_manager"),
                               ("off", "loan_officer")):
            await create_user(ctx, username, username, "test-password-1", [role])
    contract = await generated(ctx, customer)
    finance = await as_user(ctx.tenant, "fin")
    assert (await service.get_contract(finance, contract["id"]))["number"] == contract["number"]
    with pytest.raises(Forbidden):
        await esign.start_signing(finance, contract["id"])
    with pytest.raises(Forbidden):
        await service.generate(finance, contract["application_id"])
    with pytest.raises(Forbidden):
        await library.save_template(finance, "*", library.sample_template())
    gm = await as_user(ctx.tenant, "gm1")
    assert (await library.save_template(gm, "*", library.sample_template()))["version"] == 2
    officer = await as_user(ctx.tenant, "off")
    with pytest.raises(Forbidden):
        await library.save_template(officer, "*", library.sample_template())
    # the officer sees only contracts of customers they own (this one is the admin's)
    items, total = await service.list_contracts(officer)
    assert total == 0


async def test_the_demo_pack_gives_a_product_its_own_template(kernel: Any, demo: Any) -> None:
    from core.tenancy import Context

    tenant, _ = demo
    ctx = Context.system(tenant)
    jy01 = await library.template_for(ctx, "JY01")
    assert jy01["product"] == "JY01" and jy01["name"] == "小微经营贷借款合同"
    assert jy01["body"].startswith("# 小微经营贷借款合同")
    assert (await library.template_for(ctx, "XF01"))["product"] == "*"
