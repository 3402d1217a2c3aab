"""Encrypted documents on both databases: upload over the API (streaming multipart), list,
download and preview, soft delete; no plaintext on disk; files copied, cut short or
reshuffled refuse to decrypt; every access in the audit chain; object rules; limits and
types; re-encryption after a key rotation; shredding; attachment fields; a storage plugin.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core import audit, documents, keys, records
from core.docstore import CHUNK, HEADER, NONCE, TAG, LocalStorage
from core.errors import ValidationFailed
from core.tables import AuditEntry, Document
from core.tenancy import tenant_scope
from tests.conftest import as_user, login

PNG = b"\x89PNG\r\n\x1a\n"
NAME = "王小明身份证正面.png"


def png(body: bytes = b"") -> bytes:
    return PNG + b"\x00\x00\x00\rIHDR" + body


def pdf(size: int, marker: bytes = b"") -> bytes:
    """A PDF-looking file of `size` bytes (random, with `marker` in the middle)."""
    head = b"%PDF-1.7\n"
    body = os.urandom(size - len(head) - len(marker))
    return head + body[:len(body) // 2] + marker + body[len(body) // 2:]


async def first_customer(ctx: Any) -> str:
    return (await records.list_records(ctx, "customer", sort="created_at")).items[0]["id"]


def storage(kernel: Any) -> LocalStorage:
    return LocalStorage(kernel.settings.document_dir)


async def doc_row(ctx: Any, doc_id: str) -> dict[str, Any]:
    async with tenant_scope(ctx, write=False):
        return (await Document.select().where(Document.tenant_id == ctx.tenant_id,
                                               Document.id == uuid.UUID(doc_id)).run())[0]


async def audit_entries(ctx: Any, action: str) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        return await AuditEntry.select().where(
            AuditEntry.tenant_id == ctx.tenant_id, AuditEntry.action == action
        ).order_by(AuditEntry.seq).output(load_json=True).run()


async def post_file(client: Any, headers: dict[str, str], customer: str, content: bytes,
                    filename: str = NAME, kind: str = "id_front",
                    content_type: str = "image/png") -> Any:
    return await client.post(f"/api/v1/customers/{customer}/documents", headers=headers,
                             data={"kind": kind},
                             files={"file": (filename, content, content_type)})


# --- the API, end to end -----------------------------------------------------------------

async def test_upload_list_download_preview_delete_over_the_api(
    kernel: Any, client: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant()
    customer = await first_customer(ctx)
    headers = await login(client, ctx.tenant.slug)
    content = png(b"KYC-MARKER-7f3a" * 100)
    r = await post_file(client, headers, customer, content, content_type="text/plain")
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["kind"] == "id_front" and doc["size"] == len(content)
    assert doc["content_type"] == "image/png"  # from the bytes, not from the client
    assert doc["filename"] == "王***.png" and doc["key_version"] == 1

    r = await client.get(f"/api/v1/customers/{customer}/documents", headers=headers)
    assert r.status_code == 200
    assert [d["id"] for d in r.json()] == [doc["id"]]
    assert r.json()[0]["created_by_name"] == "管理员" and NAME not in r.text

    url = f"/api/v1/customers/{customer}/documents/{doc['id']}"
    r = await client.get(url, headers=headers)
    assert r.status_code == 200 and r.content == content
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-length"] == str(len(content))
    assert r.headers["cache-control"] == "no-store, private"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "filename*=UTF-8''%E7%8E%8B%E5%B0%8F%E6%98%8E" in disposition  # 王小明 (RFC 5987)
    r = await client.get(url, headers=headers, params={"inline": "true"})
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("inline;")

    uploads = await audit_entries(ctx, "document.upload")
    downloads = await audit_entries(ctx, "document.download")
    assert [e["record_id"] for e in uploads] == [doc["id"]]
    assert uploads[0]["entity"] == "document" and uploads[0]["diff"]["kind"] == [None, "id_front"]
    assert uploads[0]["diff"]["filename"][1].startswith("hmac:")
    assert [e["diff"]["disposition"] for e in downloads] == ["attachment", "inline"]
    assert all(e["diff"]["kind"] == "id_front" and e["record_id"] == doc["id"]
               for e in downloads)
    everything = str(uploads + downloads)
    assert "王小明" not in everything and NAME not in everything
    assert (await audit.verify_tenant(ctx)).ok

    r = await client.delete(url, headers=headers)
    assert r.status_code == 204
    assert (await client.get(url, headers=headers)).status_code == 404
    r = await client.get(f"/api/v1/customers/{customer}/documents", headers=headers)
    assert r.json() == []
    assert [e["record_id"] for e in await audit_entries(ctx, "document.delete")] == [doc["id"]]
    assert (await doc_row(ctx, doc["id"]))["deleted_at"] is not None  # soft delete
    assert (await audit.verify_tenant(ctx)).ok


async def test_the_stored_file_and_row_hold_no_plaintext(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()
    customer = await first_customer(ctx)
    marker = b"KYC-PLAINTEXT-MARKER-" + uuid.uuid4().hex.encode()
    content = pdf(300 * 1024, marker)
    doc = await documents.upload(ctx, "customer", customer, "credit_report", NAME, content)
    folder = Path(kernel.settings.document_dir) / str(ctx.tenant_id)
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].name == doc["id"]
    stored = files[0].read_bytes()
    assert marker not in stored and NAME.encode() not in stored and b"%PDF" not in stored
    assert len(stored) == HEADER.size + len(content) + 5 * (NONCE + TAG)  # 5 chunks of 64 KiB
    assert oct(files[0].stat().st_mode & 0o777) == "0o600"
    row = await doc_row(ctx, doc["id"])
    assert "王小明" not in str(row) and row["filename_masked"] == "王***.png"
    assert row["digest"] != hashlib.sha256(content).hexdigest()  # keyed, not a plain hash
    assert not [p for p in folder.rglob(".tmp-*")]  # no temporary file left behind


async def test_copied_truncated_and_reordered_files_do_not_decrypt(
    kernel: Any, client: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant()
    other = await new_tenant()
    customer = await first_customer(ctx)
    headers = await login(client, ctx.tenant.slug)
    content = pdf(3 * CHUNK + 100)
    a = await documents.upload(ctx, "customer", customer, "contract", "a.pdf", content)
    b = await documents.upload(ctx, "customer", customer, "contract", "b.pdf", content)
    theirs = await documents.upload(other, "customer", await first_customer(other), "contract",
                                    "c.pdf", content)
    store = storage(kernel)
    path_a, path_b = (store.path(ctx.tenant_id, uuid.UUID(d["id"])) for d in (a, b))
    original_b = path_b.read_bytes()
    url_b = f"/api/v1/customers/{customer}/documents/{b['id']}"

    async def refused() -> None:
        r = await client.get(url_b, headers=headers)
        assert r.status_code == 500, r.text
        assert r.json()["code"] == "document_unreadable"
        assert "损坏" in r.json()["title"]

    shutil.copyfile(path_a, path_b)  # another document's file
    await refused()
    shutil.copyfile(store.path(other.tenant_id, uuid.UUID(theirs["id"])), path_b)  # tenant
    await refused()
    record = NONCE + CHUNK + TAG
    chunks = [original_b[HEADER.size + i * record:HEADER.size + (i + 1) * record]
              for i in range(4)]
    path_b.write_bytes(original_b[:HEADER.size] + chunks[0] + chunks[2] + chunks[1]
                       + chunks[3])  # reordered
    await refused()
    path_b.write_bytes(original_b[:HEADER.size + 3 * record])  # cut at a chunk edge
    await refused()
    path_b.write_bytes(original_b[:-1])  # one byte short
    await refused()
    path_b.unlink()  # gone
    await refused()
    path_b.write_bytes(original_b)
    r = await client.get(url_b, headers=headers)
    assert r.status_code == 200 and r.content == content


async def test_damage_past_the_first_mib_ends_the_stream_early(kernel: Any,
                                                                new_tenant: Any) -> None:
    """A large file is checked as it streams: the download starts, then stops at the first
    chunk that does not authenticate; what was sent is the file's true beginning."""
    ctx = await new_tenant()
    customer = await first_customer(ctx)
    content = pdf(40 * CHUNK)
    doc = await documents.upload(ctx, "customer", customer, "bank_statement", "a.pdf", content)
    path = storage(kernel).path(ctx.tenant_id, uuid.UUID(doc["id"]))
    record = NONCE + CHUNK + TAG
    path.write_bytes(path.read_bytes()[:HEADER.size + 30 * record])  # cut at a chunk edge
    opened = await documents.open_document(ctx, "customer", customer, doc["id"])
    sent = bytearray()
    with pytest.raises(documents.DocumentUnreadable):
        async for piece in opened.chunks:
            sent += piece
    assert len(sent) == 29 * CHUNK and bytes(sent) == content[:len(sent)]


async def test_another_branch_gets_404_for_the_record_and_its_documents(
    kernel: Any, client: Any, demo: Any
) -> None:
    tenant, logins = demo
    officer2 = await as_user(tenant, "officer2")
    theirs = (await records.list_records(officer2, "customer", per_page=1)).items[0]["id"]
    doc = await documents.upload(officer2, "customer", theirs, "id_back", "身份证.jpg",
                                 b"\xff\xd8\xff\xe0" + b"0" * 100)
    headers = await login(client, tenant.slug, "officer", logins["officer"])
    base = f"/api/v1/customers/{theirs}/documents"
    assert (await client.get(base, headers=headers)).status_code == 404
    assert (await client.get(f"{base}/{doc['id']}", headers=headers)).status_code == 404
    assert (await client.delete(f"{base}/{doc['id']}", headers=headers)).status_code == 404
    r = await post_file(client, headers, theirs, png())
    assert r.status_code == 404
    mine = (await records.list_records(await as_user(tenant, "officer"), "customer",
                                       per_page=1)).items[0]["id"]
    wrong = f"/api/v1/customers/{mine}/documents/{doc['id']}"  # their id under my record
    assert (await client.get(wrong, headers=headers)).status_code == 404
    finance = await login(client, tenant.slug, "finance", logins["finance"])  # read only
    r = await post_file(client, finance, theirs, png())
    assert r.status_code == 403
    assert (await client.get(f"{base}/{doc['id']}", headers=finance)).status_code == 200


async def test_too_large_is_413_in_chinese_and_nothing_is_kept(
    kernel: Any, client: Any, new_tenant: Any, monkeypatch: Any
) -> None:
    ctx = await new_tenant()
    customer = await first_customer(ctx)
    headers = await login(client, ctx.tenant.slug)
    monkeypatch.setattr(kernel, "settings",
                        replace(kernel.settings, document_max_bytes=64 * 1024))
    r = await post_file(client, headers, customer, png(b"x" * 64 * 1024))
    assert r.status_code == 413
    assert r.json()["title"] == "文件太大：最大 64 KiB"
    r = await post_file(client, {**headers, "Accept-Language": "en"}, customer,
                        png(b"x" * 64 * 1024))
    assert r.status_code == 413 and r.json()["title"] == "the file is too large: at most 64 KiB"
    import httpx

    from core.web.app import create_app  # a route limit from the small setting: 1.1 MiB

    app = create_app(kernel, open_db=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as small:
        r = await post_file(small, headers, customer, png(b"x" * 1536 * 1024))
        assert r.status_code == 413 and r.json()["code"] == "document_too_large"
    r = await post_file(client, headers, customer, png(b"x" * 1000))  # under the limit: fine
    assert r.status_code == 201
    async with tenant_scope(ctx, write=False):
        assert await Document.count().where(Document.tenant_id == ctx.tenant_id).run() == 1
    folder = Path(kernel.settings.document_dir) / str(ctx.tenant_id)
    assert len([p for p in folder.rglob("*") if p.is_file()]) == 1


@pytest.mark.parametrize("content,filename", [
    (b"just some text, KYC", "notes.png"),  # a name proves nothing
    (b"GIF89a" + b"0" * 50, "anim.gif"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x.svg"),
    (b"", "empty.pdf"),
])
async def test_wrong_types_are_422_and_nothing_is_kept(
    kernel: Any, client: Any, new_tenant: Any, content: bytes, filename: str
) -> None:
    ctx = await new_tenant()
    customer = await first_customer(ctx)
    headers = await login(client, ctx.tenant.slug)
    r = await post_file(client, headers, customer, content, filename, content_type="image/png")
    assert r.status_code == 422 and r.json()["code"] == "document_type"
    assert "PDF、JPEG、PNG 或 WEBP" in r.json()["title"]
    assert not (Path(kernel.settings.document_dir) / str(ctx.tenant_id)).exists() or not [
        p for p in (Path(kernel.settings.document_dir) / str(ctx.tenant_id)).rglob("*")
        if p.is_file()]


async def test_bad_requests_are_refused_clearly(client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()
    customer = await first_customer(ctx)
    headers = await login(client, ctx.tenant.slug)
    r = await post_file(client, headers, customer, png(), kind="selfie")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kind"
    assert "资料类型" in r.json()["errors"][0]["message"]
    r = await client.post(f"/api/v1/customers/{customer}/documents", headers=headers,
                          data={"kind": "other"}, files={"other": ("a.png", png())})
    assert r.status_code == 422 and r.json()["code"] == "document_file_required"
    r = await client.post(f"/api/v1/customers/{customer}/documents", headers=headers,
                          data={"kind": "other"}, files={"file": ("", b"")})  # none chosen
    assert r.status_code == 422 and r.json()["title"] == "请选择要上传的文件"
    r = await client.post(f"/api/v1/customers/{customer}/documents", headers=headers,
                          json={"kind": "other"})
    assert r.status_code == 415 and r.json()["code"] == "document_multipart"
    r = await client.post(f"/api/v1/customers/{customer}/documents",
                          headers={**headers, "Content-Type": "multipart/form-data; boundary=x"},
                          content=b"--x\r\nContent-Disposition: form-data; name=\"file\"; fil")
    assert r.status_code == 400
    r = await client.get(f"/api/v1/customers/{customer}/documents")  # no token, no cookie
    assert r.status_code == 401
    async with tenant_scope(ctx, write=False):
        assert await Document.count().where(Document.tenant_id == ctx.tenant_id).run() == 0


async def test_a_5_mib_file_round_trips_byte_for_byte(client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()
    customer = await first_customer(ctx)
    headers = await login(client, ctx.tenant.slug)
    content = pdf(5 * 1024 * 1024 + 123)
    r = await post_file(client, headers, customer, content, "流水.pdf", "bank_statement",
                        "application/pdf")
    assert r.status_code == 201, r.text
    url = f"/api/v1/customers/{customer}/documents/{r.json()['id']}"
    received = bytearray()
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(content))
        async for piece in response.aiter_raw():
            received += piece
    assert hashlib.sha256(received).digest() == hashlib.sha256(content).digest()


async def test_rotation_then_reencryption_keeps_documents_readable(
    kernel: Any, client: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant()
    customer = await first_customer(ctx)
    content = pdf(CHUNK * 2 + 7)
    made = [await documents.upload(ctx, "customer", customer, "contract", f"合同{i}.pdf",
                                   content) for i in range(3)]
    await documents.delete_document(ctx, "customer", customer, made[2]["id"])
    path = storage(kernel).path(ctx.tenant_id, uuid.UUID(made[0]["id"]))
    before = path.read_bytes()
    assert struct.unpack_from(">I", before, 5)[0] == 1  # header: key version 1
    assert await keys.rotate(ctx) == 2
    status = await keys.status(ctx)
    assert status.stale["document"] == 3 and not status.done  # the deleted one too
    fresh = await documents.upload(ctx, "customer", customer, "other", "new.pdf", content)
    assert fresh["key_version"] == 2
    assert await keys.reencrypt(ctx) >= 3
    assert (await keys.status(ctx)).stale["document"] == 0
    after = path.read_bytes()
    assert struct.unpack_from(">I", after, 5)[0] == 2 and after != before
    for doc in made:
        row = await doc_row(ctx, doc["id"])
        assert row["key_version"] == 2
    headers = await login(client, ctx.tenant.slug)
    for doc in (made[0], made[1], fresh):
        r = await client.get(f"/api/v1/customers/{customer}/documents/{doc['id']}",
                             headers=headers)
        assert r.status_code == 200 and r.content == content
    assert "合同0.pdf" in r.headers["content-disposition"] or r.headers[
        "content-disposition"].endswith("new.pdf")
    names = {(await documents.open_document(ctx, "customer", customer, d["id"])).filename
             for d in made[:2]}
    assert names == {"合同0.pdf", "合同1.pdf"}  # the sealed names were re-encrypted too
    assert not list(path.parent.glob(".tmp-*"))
    assert (await audit.verify_tenant(ctx)).ok


async def test_shredding_removes_the_files_and_makes_documents_unreadable(
    kernel: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant()
    customer = await first_customer(ctx)
    doc = await documents.upload(ctx, "customer", customer, "id_front", NAME, png())
    folder = Path(kernel.settings.document_dir) / str(ctx.tenant_id)
    assert folder.exists()
    await keys.shred(ctx, ctx.tenant.slug)
    assert not folder.exists()
    with pytest.raises(documents.DocumentUnreadable):
        await documents.open_document(ctx, "customer", customer, doc["id"])
    entry = (await audit_entries(ctx, "keys.shred"))[0]
    assert entry["diff"] == {"documents": [None, 1]}


async def test_attachment_fields_take_documents_of_the_same_tenant_and_record(
    new_tenant: Any
) -> None:
    from core.customfields import add_custom_field

    ctx = await new_tenant()
    other = await new_tenant()
    await add_custom_field(ctx, "customer", {"key": "id_copy", "type": "attachment",
                                             "label": {"zh-CN": "身份证复印件", "en": "ID copy"}})
    a, b = (r["id"] for r in (await records.list_records(ctx, "customer")).items[:2])
    doc_a = await documents.upload(ctx, "customer", a, "id_front", "a.png", png())
    doc_b = await documents.upload(ctx, "customer", b, "id_front", "b.png", png())
    theirs = await documents.upload(other, "customer", await first_customer(other),
                                    "id_front", "c.png", png())
    rec = await records.update(ctx, "customer", a, {"id_copy": doc_a["id"]})
    assert rec["id_copy"] == doc_a["id"]
    for wrong in (doc_b["id"], theirs["id"], str(uuid.uuid4())):
        with pytest.raises(ValidationFailed) as info:
            await records.update(ctx, "customer", b if wrong != doc_b["id"] else a,
                                 {"id_copy": wrong})
        assert info.value.errors[0].code == "attachment_unknown"
        assert "不是本记录已上传的资料" in info.value.errors[0].message("zh-CN")
    await documents.delete_document(ctx, "customer", b, doc_b["id"])
    with pytest.raises(ValidationFailed):
        await records.update(ctx, "customer", b, {"id_copy": doc_b["id"]})
    await records.update(ctx, "customer", a, {"name": "改名不影响附件"})  # unchanged: fine


async def test_a_storage_plugin_replaces_local_files(kernel: Any, client: Any,
                                                     new_tenant: Any) -> None:
    from xindai_example_plugin import MemoryStorage

    ctx = await new_tenant(plugins=["crm", "example"])
    customer = await first_customer(ctx)
    headers = await login(client, ctx.tenant.slug)
    content = pdf(200_000)
    r = await post_file(client, headers, customer, content, "a.pdf", "contract")
    assert r.status_code == 201, r.text
    key = f"{ctx.tenant_id}/{r.json()['id']}"
    assert b"%PDF" not in MemoryStorage.objects[key]  # the provider saw ciphertext only
    assert not (Path(kernel.settings.document_dir) / str(ctx.tenant_id)).exists()
    r = await client.get(f"/api/v1/customers/{customer}/documents/{r.json()['id']}",
                         headers=headers)
    assert r.content == content
    await keys.shred(ctx, ctx.tenant.slug)
    assert key not in MemoryStorage.objects
