"""Documents in the web shell on both databases: the record page lists them and uploads
through a form (CSRF checked before any byte is stored), previews and downloads them, and
shows refusals in the user's language."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from core import documents, records
from core.tables import Document
from core.tenancy import tenant_scope
from tests.integration.test_ui_pages import NEW, csrf_of, make_user, other_client, sign_in

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40


async def customer_page(client: Any, ctx: Any) -> tuple[str, str]:
    customer = (await records.list_records(ctx, "customer", sort="created_at")).items[0]["id"]
    return customer, f"/e/customer/{customer}"


async def count_documents(ctx: Any) -> int:
    async with tenant_scope(ctx, write=False):
        return await Document.count().where(Document.tenant_id == ctx.tenant_id).run()


def stored_files(kernel: Any, ctx: Any) -> list[Path]:
    folder = Path(kernel.settings.document_dir) / str(ctx.tenant_id)
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


async def test_upload_list_preview_download_and_delete_on_the_record_page(
    kernel: Any, client: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant()
    token = await sign_in(client, ctx.tenant.slug)
    customer, page = await customer_page(client, ctx)
    r = await client.get(page)
    assert r.status_code == 200
    assert "资料" in r.text and "尚无资料。" in r.text
    assert 'enctype="multipart/form-data"' in r.text and "最大 20 MiB" in r.text
    assert '<option value="id_front">身份证人像面</option>' in r.text

    r = await client.post(f"{page}/documents", data={"_csrf": token, "kind": "id_front"},
                          files={"file": ("王小明身份证.png", PNG, "image/png")})
    assert r.status_code == 303 and r.headers["location"] == f"{page}#documents"
    r = await client.get(page)
    row = re.search(r'<tr id="doc-([0-9a-f-]{36})">(.*?)</tr>', r.text, re.S)
    assert row, r.text
    doc_id, cells = row.group(1), row.group(2)
    assert "身份证人像面" in cells and "王***.png" in cells and "管理员" in cells
    assert "王小明身份证" not in r.text
    assert f'href="{page}/documents/{doc_id}?inline=1" target="_blank"' in cells

    r = await client.get(f"{page}/documents/{doc_id}?inline=1")
    assert r.status_code == 200 and r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"].startswith("inline;")
    r = await client.get(f"{page}/documents/{doc_id}")
    assert r.headers["content-disposition"].startswith("attachment;")

    r = await client.post(f"{page}/documents/{doc_id}/delete", data={"_csrf": token})
    assert r.status_code == 303
    assert "尚无资料。" in (await client.get(page)).text
    assert (await client.get(f"{page}/documents/{doc_id}")).status_code == 404
    assert stored_files(kernel, ctx)  # soft delete: the encrypted file stays for retention


async def test_a_forged_upload_is_refused_before_anything_is_stored(
    kernel: Any, client: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant()
    token = await sign_in(client, ctx.tenant.slug)
    _, page = await customer_page(client, ctx)
    attempts = [
        {"data": {"kind": "other"}},  # no token
        {"data": {"kind": "other", "_csrf": "forged"}},
        {"data": {"kind": "other"}, "headers": {"X-CSRF-Token": "forged"}},
    ]
    for extra in attempts:
        r = await client.post(f"{page}/documents", files={"file": ("a.png", PNG, "image/png")},
                              **extra)
        assert r.status_code == 403, r.text
        assert "安全校验失败" in r.text
    # the token after the file: the file would be stored before the check, so refused
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + PNG + (
        f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n"
        f"{token}\r\n--{boundary}--\r\n").encode()
    r = await client.post(f"{page}/documents", content=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 403
    assert await count_documents(ctx) == 0 and not stored_files(kernel, ctx)
    r = await client.post(f"{page}/documents", data={"kind": "other"},
                          headers={"X-CSRF-Token": token},
                          files={"file": ("a.png", PNG, "image/png")})  # htmx style: fine
    assert r.status_code == 303 and await count_documents(ctx) == 1


async def test_refusals_show_on_the_page_in_the_users_language(
    kernel: Any, client: Any, new_tenant: Any, monkeypatch: Any
) -> None:
    ctx = await new_tenant()
    token = await sign_in(client, ctx.tenant.slug)
    _, page = await customer_page(client, ctx)
    monkeypatch.setattr(kernel, "settings", replace(kernel.settings, document_max_bytes=2048))
    r = await client.post(f"{page}/documents", data={"_csrf": token, "kind": "contract"},
                          files={"file": ("big.png", PNG + b"0" * 4096, "image/png")})
    assert r.status_code == 413
    assert "文件太大：最大 2 KiB" in r.text and 'id="upload-error"' in r.text
    assert '<option value="contract" selected>' in r.text  # the choice is kept
    r = await client.post(f"{page}/documents", data={"_csrf": token, "kind": "contract"},
                          files={"file": ("x.png", b"MZ\x90\x00 not an image", "image/png")})
    assert r.status_code == 422 and "只能上传 PDF、JPEG、PNG 或 WEBP 文件" in r.text
    r = await client.post(f"{page}/documents?lang=en",
                          data={"_csrf": token, "kind": "contract"},
                          files={"file": ("x.png", b"plain text", "image/png")})
    assert r.status_code == 422 and "only PDF, JPEG, PNG or WEBP files" in r.text
    assert await count_documents(ctx) == 0 and not stored_files(kernel, ctx)


async def test_read_only_users_see_documents_but_no_upload_form_and_other_branches_404(
    client: Any, new_tenant: Any
) -> None:
    from core import admin

    ctx = await new_tenant()
    await admin.create_org_unit(ctx, "hq", "总部")
    await admin.create_org_unit(ctx, "east", "东区", "hq")
    await admin.create_org_unit(ctx, "west", "西区", "hq")
    east_pw = await make_user(ctx, "east_officer", ["customer.read", "customer.create",
                                                    "customer.update"], "branch", "east")
    west_pw = await make_user(ctx, "west_officer", ["customer.read", "customer.update"],
                              "branch", "west")
    reader_pw = await make_user(ctx, "reader", ["customer.read"], "all")
    from tests.conftest import as_user

    east = await as_user(ctx.tenant, "east_officer")
    rec = await records.create(east, "customer", NEW)
    doc = await documents.upload(east, "customer", rec["id"], "id_front", "a.png", PNG)
    page = f"/e/customer/{rec['id']}"

    async with other_client(client) as reader_browser:
        await sign_in(reader_browser, ctx.tenant.slug, "reader", reader_pw)
        r = await reader_browser.get(page)
        assert r.status_code == 200 and f'id="doc-{doc["id"]}"' in r.text
        assert 'enctype="multipart/form-data"' not in r.text and "button small danger" not in r.text
        assert (await reader_browser.get(f"{page}/documents/{doc['id']}")).status_code == 200
        token = csrf_of(r.text)
        r = await reader_browser.post(f"{page}/documents", data={"_csrf": token, "kind": "other"},
                                      files={"file": ("b.png", PNG, "image/png")})
        assert r.status_code == 403

    async with other_client(client) as west_browser:
        token = await sign_in(west_browser, ctx.tenant.slug, "west_officer", west_pw)
        assert (await west_browser.get(page)).status_code == 404
        r = await west_browser.get(f"{page}/documents/{doc['id']}")
        assert r.status_code == 404 and "页面或记录不存在" in r.text
        r = await west_browser.post(f"{page}/documents", data={"_csrf": token, "kind": "other"},
                                    files={"file": ("b.png", PNG, "image/png")})
        assert r.status_code == 404
        r = await west_browser.post(f"{page}/documents/{doc['id']}/delete",
                                    data={"_csrf": token})
        assert r.status_code == 404
    assert len(await documents.list_documents(east, "customer", rec["id"])) == 1
    assert east_pw
