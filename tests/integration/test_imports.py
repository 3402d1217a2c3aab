"""Spreadsheet import and export of registry entities (core.imports), on both engines."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

pytestmark = pytest.mark.asyncio


def resident_id(i: int) -> str:
    from core.validators import resident_id_check_char

    body = f"1401051985{(i // 1000) % 12 + 1:02d}{i % 28 + 1:02d}{i % 1000:03d}"
    return body + resident_id_check_char(body)


HEADER = ["客户类型", "名称", "身份证号", "手机号", "所在地区", "年收入（元）", "微信号"]


def person(i: int) -> list[Any]:
    return ["个人", f"导入客户{i}", resident_id(i), f"137{i:08d}", "140105", 50000 + i,
            f"wx{i}"]


def xlsx(header: list[str], rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def report_rows(data: bytes) -> list[tuple[Any, ...]]:
    sheet = load_workbook(BytesIO(data)).worksheets[0]
    return list(sheet.iter_rows(values_only=True))


async def customers(ctx: Any) -> int:
    from core import records

    return (await records.list_records(ctx, "customer")).total


async def upload(ctx: Any, header: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    from core import imports

    return await imports.upload(ctx, "customer", "客户.xlsx", xlsx(header, rows))


async def test_template_round_trip(kernel: Any, new_tenant: Any) -> None:
    """The template's header is matched in full; rows typed under it import; an export
    has the same columns and imports again into another tenant."""
    from core import imports

    ctx = await new_tenant(records=False)
    data = await imports.template(ctx, "customer")
    book = load_workbook(BytesIO(data))
    header = [c.value for c in book.worksheets[0][1]]
    assert header[:3] == ["客户类型 *", "名称 *", "身份证号"]
    assert "微信号" in header and "意向额度" in header  # the tenant's custom fields
    guide = [r for r in book.worksheets[1].iter_rows(values_only=True)]
    assert any(r[1] == "kind" and "个人" in (r[4] or "") for r in guide)
    sheet = book.worksheets[0]
    col = {h.rstrip(" *"): i for i, h in enumerate(header)}
    for i in range(3):
        line = [None] * len(header)
        line[col["客户类型"]], line[col["名称"]] = "个人", f"模板客户{i}"
        line[col["身份证号"]], line[col["手机号"]] = resident_id(i), f"135{i:08d}"
        line[col["意向额度"]] = "20000.50"
        sheet.append(line)
    out = BytesIO()
    book.save(out)
    job = await imports.upload(ctx, "customer", "t.xlsx", out.getvalue())
    assert job["mapping_errors"] == []
    assert len(job["mapping"]) == len(header)
    result = await imports.run(ctx, job["id"], commit=True)
    assert (result.error_count, result.created) == (0, 3)
    assert await customers(ctx) == 3
    exported = await imports.export_bytes(ctx, "customer", reveal=True)
    rows = report_rows(exported)
    assert list(rows[0]) == header
    other = await new_tenant(records=False)
    again = await imports.upload(other, "customer", "e.xlsx", exported)
    out2 = await imports.run(other, again["id"], commit=True)
    assert (out2.error_count, out2.created) == (0, 3)
    from core import records

    page = await records.list_records(other, "customer", sort="created_at")
    assert {i["credit_limit_wish"] for i in page.items} == {"20000.50"}


async def test_wrong_columns_are_refused(kernel: Any, new_tenant: Any) -> None:
    from core import imports
    from core.errors import ValidationFailed

    ctx = await new_tenant(records=False)
    job = await upload(ctx, ["姓名?", "证件"], [["a", "b"]])
    assert job["mapping"] == {}
    assert any("客户类型" in m for m in job["mapping_errors"])
    with pytest.raises(ValidationFailed) as err:
        await imports.start(ctx, job["id"], commit=False)
    assert {e.code for e in err.value.errors} == {"import_column_missing"}
    with pytest.raises(ValidationFailed):
        await imports.set_mapping(ctx, job["id"], {"0": "name", "1": "name"})
    fixed = await imports.set_mapping(ctx, job["id"], {"0": "name"})
    assert fixed["mapping"] == {"0": "name"}
    assert any("客户类型" in m for m in fixed["mapping_errors"])  # still missing: kind


async def test_bad_ids_and_mobiles_are_reported(kernel: Any, new_tenant: Any) -> None:
    from core import imports

    ctx = await new_tenant(records=False)
    rows = [person(i) for i in range(5)]
    rows[1][2] = resident_id(1)[:-1] + ("0" if resident_id(1)[-1] != "0" else "1")
    rows[3][3] = "12345"
    job = await upload(ctx, HEADER, rows)
    out = await imports.run(ctx, job["id"], commit=True)
    assert out.created == 0 and await customers(ctx) == 0
    found = {(e["row"], e["column"], e["code"]) for e in out.errors}
    assert found == {(3, "身份证号", "resident_id_checksum"), (5, "手机号", "mobile")}
    info = await imports.describe(ctx, job["id"])
    assert info["status"] == "invalid" and info["error_count"] == 2


async def test_duplicates_in_file_and_in_database(kernel: Any, new_tenant: Any) -> None:
    from core import imports

    ctx = await new_tenant()  # the pack's 王小明 has 11010519491231002X / 13800138000
    rows = [person(i) for i in range(4)]
    rows[2][2] = rows[0][2]  # same ID as row 2 of the sheet
    rows[3][3] = "13800138000"  # mobile already stored
    job = await upload(ctx, HEADER, rows)
    out = await imports.run(ctx, job["id"], commit=False)
    found = {(e["row"], e["field"], e["code"]): e for e in out.errors}
    assert found[(4, "resident_id", "import_duplicate_in_file")]["params"]["first_row"] == 2
    assert (5, "mobile", "import_duplicate_existing") in found
    assert out.valid == 2 and out.error_count == 2


async def test_one_bad_row_in_ten_thousand_commits_nothing(kernel: Any, new_tenant: Any
                                                           ) -> None:
    """All or nothing: 9,999 good rows and one bad one leave no record, no audit entry
    and no event behind; the report names the row, the column and the reason in zh-CN
    and en."""
    from core import imports
    from core.tables import AuditEntry, OutboxMessage
    from core.tenancy import tenant_scope

    ctx = await new_tenant(records=False)
    rows = [person(i) for i in range(10_000)]
    rows[7_776][3] = "1380013800"  # ten digits: sheet row 7,778
    job = await upload(ctx, HEADER, rows)
    async with tenant_scope(ctx, write=False):
        audits = await AuditEntry.count().where(AuditEntry.tenant_id == ctx.tenant_id).run()
    out = await imports.run(ctx, job["id"], commit=True)
    assert (out.total, out.error_count, out.created) == (10_000, 1, 0)
    assert await customers(ctx) == 0
    async with tenant_scope(ctx, write=False):
        assert await OutboxMessage.count().where(
            OutboxMessage.tenant_id == ctx.tenant_id,
            OutboxMessage.name == "customer.created").run() == 0
        assert await AuditEntry.count().where(
            AuditEntry.tenant_id == ctx.tenant_id, AuditEntry.action == "create").run() == 0
        assert await AuditEntry.count().where(
            AuditEntry.tenant_id == ctx.tenant_id).run() == audits
    zh = report_rows(await imports.report_bytes(ctx, job["id"], "zh-CN"))
    assert zh[0] == ("行号", "列", "级别", "原因")
    assert zh[1][:3] == (7778, "手机号", "错误") and "手机号" in zh[1][3] and "有效" in zh[1][3]
    en = report_rows(await imports.report_bytes(ctx, job["id"], "en"))
    assert en[0] == ("Row", "Column", "Level", "Reason")
    assert en[1][0] == 7778 and "Mobile" in en[1][3] and "not a valid" in en[1][3]
    fixed = rows[:]
    fixed[7_776] = person(7_776)
    job2 = await upload(ctx, HEADER, fixed)
    out2 = await imports.run(ctx, job2["id"], commit=True)
    assert (out2.error_count, out2.created) == (0, 10_000)
    assert await customers(ctx) == 10_000
    from core.audit import verify_tenant

    assert (await verify_tenant(ctx)).ok


async def test_dry_run_writes_nothing(kernel: Any, new_tenant: Any, monkeypatch: Any) -> None:
    """Through the background job: the dry run writes nothing; the commit reports its
    progress while it runs (on PostgreSQL from inside its transaction, on another
    connection) and then writes every row."""
    from core import imports, outbox

    monkeypatch.setattr(imports, "BATCH", 10)
    monkeypatch.setattr(imports, "PROGRESS_EVERY", 10)
    reported: list[tuple[int, Any, Any]] = []
    real = outbox.progress

    async def spy(ctx: Any, done: int, total: Any = None, note: Any = None,
                  message_id: Any = None) -> None:
        reported.append((done, total, note))
        await real(ctx, done, total, note, message_id=message_id)

    monkeypatch.setattr(outbox, "progress", spy)
    ctx = await new_tenant(records=False)
    job = await upload(ctx, HEADER, [person(i) for i in range(30)])
    started = await imports.start(ctx, job["id"], commit=False)
    assert started["status"] == "queued"
    await outbox.run_due(ctx.tenant)
    info = await imports.describe(ctx, job["id"])
    assert (info["status"], info["total_rows"], info["valid_rows"]) == ("checked", 30, 30)
    assert await customers(ctx) == 0
    await imports.start(ctx, job["id"], commit=True)
    await outbox.run_due(ctx.tenant)
    info = await imports.describe(ctx, job["id"])
    assert (info["status"], info["created_count"]) == ("committed", 30)
    assert await customers(ctx) == 30
    import uuid

    message = await outbox.get(ctx, uuid.UUID(info["message_id"]))
    assert message is not None and message["progress_note"] == "done"
    assert message["progress_done"] == message["progress_total"] == 30
    assert (10, 30, "checking") in reported
    if kernel.engine.engine_type == "postgres":  # SQLite: one writer, memory only
        assert (20, 30, "writing") in reported


async def test_export_masks_unless_revealed(kernel: Any, new_tenant: Any) -> None:
    from core import imports
    from core.errors import Forbidden
    from core.tables import AuditEntry
    from core.tenancy import tenant_scope

    ctx = await new_tenant()
    masked = report_rows(await imports.export_bytes(ctx, "customer",
                                                    filters={"kind": "individual"}))
    header = list(masked[0])
    rid, mobile = header.index("身份证号"), header.index("手机号")
    assert len(masked) == 2
    assert masked[1][rid] == "110***********002X" and masked[1][mobile] == "138****8000"
    clear = report_rows(await imports.export_bytes(ctx, "customer", reveal=True,
                                                   sort="created_at"))
    assert clear[1][rid] == "11010519491231002X"
    async with tenant_scope(ctx, write=False):
        rows = await AuditEntry.select().where(AuditEntry.tenant_id == ctx.tenant_id,
                                               AuditEntry.action == "export") \
            .output(load_json=True).run()
    assert [(r["diff"]["rows"], r["diff"]["reveal"]) for r in rows] == [(1, False), (2, True)]
    assert rows[0]["diff"]["filters"] == ["kind"]
    from dataclasses import replace

    from core.access import Access

    reader = replace(ctx, access=Access(frozenset({"customer.read", "records.export"}), "all"))
    data = report_rows(await imports.export_bytes(reader, "customer"))
    assert data[1][rid] != "11010519491231002X"
    with pytest.raises(Forbidden):
        await imports.export_bytes(reader, "customer", reveal=True)
    with pytest.raises(Forbidden):
        await imports.export_bytes(replace(reader, access=Access(frozenset({"customer.read"}),
                                                                 "all")), "customer")


async def test_custom_field_imports(kernel: Any, new_tenant: Any) -> None:
    from core import imports, records
    from core.customfields import add_custom_field

    ctx = await new_tenant(records=False)
    await add_custom_field(ctx, "customer", {
        "key": "channel", "type": "single_select", "label": {"zh-CN": "获客渠道", "en": "Channel"},
        "options": [{"value": "web", "zh": "官网", "en": "Website"},
                    {"value": "branch", "zh": "网点", "en": "Branch"}]})
    rows = [person(i) + ["网点", "5000"] for i in range(2)]
    rows[1][7] = "Website"
    job = await upload(ctx, [*HEADER, "Channel", "意向额度"], rows)
    assert job["mapping"]["7"] == "channel" and job["mapping"]["8"] == "credit_limit_wish"
    out = await imports.run(ctx, job["id"], commit=True)
    assert out.created == 2, out.errors
    items = (await records.list_records(ctx, "customer", sort="created_at")).items
    assert sorted(i["channel"] for i in items) == ["branch", "web"]
    bad = await upload(ctx, [*HEADER, "Channel", "意向额度"], [person(9) + ["手机", "500"]])
    out = await imports.run(ctx, bad["id"], commit=True)
    assert {(e["field"], e["code"]) for e in out.errors} == {("channel", "choice"),
                                                             ("credit_limit_wish", "min_value")}


async def test_import_needs_permissions(kernel: Any, new_tenant: Any) -> None:
    from dataclasses import replace

    from core import imports
    from core.access import Access
    from core.errors import Forbidden

    ctx = await new_tenant(records=False)
    officer = replace(ctx, access=Access(frozenset({"customer.read", "customer.create"}),
                                         "all"))
    with pytest.raises(Forbidden):
        await imports.template(officer, "customer")
    with pytest.raises(Forbidden):
        await imports.upload(officer, "customer", "x.xlsx", xlsx(HEADER, [person(1)]))


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def test_api_flow(kernel: Any, new_tenant: Any, client: Any) -> None:
    """Template, upload, dry run, commit, status, error report and export over HTTP."""
    from core import outbox
    from tests.conftest import login

    ctx = await new_tenant(records=False)
    auth = await login(client, ctx.tenant.slug)
    r = await client.get("/api/v1/imports/template?entity=customer", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"].startswith(XLSX)
    assert load_workbook(BytesIO(r.content)).worksheets[0]["A1"].value == "客户类型 *"
    r = await client.get("/api/v1/imports/template?entity=customer",
                         headers={**auth, "Accept-Language": "en"})
    rows = [person(i) for i in range(3)]
    r = await client.post("/api/v1/imports?entity=customer", headers=auth,
                          files={"file": ("客户.xlsx", xlsx(HEADER, rows), XLSX)})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["mapping"]["2"] == "resident_id" and job["status"] == "uploaded"
    r = await client.put(f"/api/v1/imports/{job['id']}/mapping", headers=auth,
                         json={"mapping": {**job["mapping"], "6": ""}})  # leave WeChat out
    assert r.status_code == 200 and "6" not in r.json()["mapping"]
    r = await client.post(f"/api/v1/imports/{job['id']}/dry-run", headers=auth)
    assert r.status_code == 202 and r.json()["status"] == "queued"
    r = await client.post(f"/api/v1/imports/{job['id']}/commit", headers=auth)
    assert r.status_code == 409  # one run at a time
    await outbox.run_due(ctx.tenant)
    r = await client.get(f"/api/v1/imports/{job['id']}", headers=auth)
    assert (r.json()["status"], r.json()["valid_rows"]) == ("checked", 3)
    assert (await client.post(f"/api/v1/imports/{job['id']}/commit",
                              headers=auth)).status_code == 202
    await outbox.run_due(ctx.tenant)
    r = await client.get(f"/api/v1/imports/{job['id']}", headers=auth)
    assert (r.json()["status"], r.json()["created_count"]) == ("committed", 3)
    page = (await client.get("/api/v1/customers?sort=created_at", headers=auth)).json()
    assert page["total"] == 3 and all(i.get("wechat_id") is None for i in page["items"])
    r = await client.get("/api/v1/customers/export?kind=individual", headers=auth)
    assert r.status_code == 200, r.text
    exported = report_rows(r.content)
    assert len(exported) == 4 and any("137****0000" in row for row in exported[1:])
    assert not any("13700000000" in row for row in exported)
    bad = await client.post("/api/v1/imports?entity=customer", headers=auth,
                            files={"file": ("b.xlsx", xlsx(HEADER, [person(0)]), XLSX)})
    bad_id = bad.json()["id"]
    await client.post(f"/api/v1/imports/{bad_id}/commit", headers=auth)
    await outbox.run_due(ctx.tenant)
    r = await client.get(f"/api/v1/imports/{bad_id}", headers=auth)
    assert r.json()["status"] == "invalid" and r.json()["errors"][0]["row"] == 2
    r = await client.get(f"/api/v1/imports/{bad_id}/errors?lang=en", headers=auth)
    rows_en = report_rows(r.content)
    assert rows_en[1][0] == 2 and "already exists" in rows_en[1][3]
    r = await client.post("/api/v1/imports?entity=customer", headers=auth,
                          files={"file": ("x.xlsx", b"not a workbook", XLSX)})
    assert r.status_code == 422 and "xlsx" in r.text


async def test_pages(kernel: Any, new_tenant: Any, client: Any) -> None:
    """The list's 导入 button, the upload form, the mapping page and the export link."""
    from core import outbox
    from tests.integration.test_ui_pages import sign_in

    ctx = await new_tenant()
    token = await sign_in(client, ctx.tenant.slug)
    r = await client.get("/e/customer")
    assert 'href="/imports/new/customer"' in r.text and "/imports/export/customer" in r.text
    r = await client.get("/imports/new/customer")
    assert r.status_code == 200 and "下载模板" in r.text
    r = await client.post("/imports/new/customer", data={"_csrf": token},
                          files={"file": ("c.xlsx", xlsx(HEADER, [person(5)]), XLSX)})
    assert r.status_code == 303, r.text
    page = r.headers["location"]
    r = await client.get(page)
    assert r.status_code == 200 and "试运行" in r.text and 'name="col_2"' in r.text
    r = await client.post(f"{page}/commit", data={"_csrf": token})
    assert r.status_code == 303
    await outbox.run_due(ctx.tenant)
    r = await client.get(page)
    assert "已导入" in r.text
    r = await client.get("/imports/export/customer?kind=individual")
    assert r.status_code == 200
    assert len(report_rows(r.content)) == 3  # the pack's individual and the imported one
    r = await client.post("/imports/new/customer", data={"_csrf": "forged"},
                          files={"file": ("c.xlsx", xlsx(HEADER, [person(6)]), XLSX)})
    assert r.status_code == 403


async def test_blacklist_and_duplicate_finder_providers(kernel: Any, new_tenant: Any,
                                                        monkeypatch: Any) -> None:
    """`party_screen` refuses listed identifiers (and the refusal is audited);
    `duplicate_finder` adds warnings, or errors when a match says `block`."""
    from core import imports
    from core.tables import AuditEntry
    from core.tenancy import tenant_scope

    listed = resident_id(1)
    seen: dict[str, Any] = {}

    class Screen:
        async def check(self, ctx: Any, resident_id: str | None = None,
                        mobile: str | None = None, credit_code: str | None = None
                        ) -> dict[str, Any] | None:
            return {"reason": "blacklist"} if resident_id == listed else None

    class Finder:
        async def find_duplicates(self, ctx: Any, entity_name: str,
                                  rows: list[dict[str, Any]]) -> dict[int, list[Any]]:
            seen["entity"], seen["names"] = entity_name, [r["name"] for r in rows]
            out: dict[int, list[Any]] = {}
            for i, r in enumerate(rows):
                if r["name"] == "导入客户2":
                    out[i] = [{"reason": "与客户 导入客户二 姓名相近", "field": "name"}]
                if r["name"] == "导入客户3":
                    out[i] = [{"reason": "同名同地址", "field": "name", "block": True}]
            return out

    providers = {"party_screen": Screen(), "duplicate_finder": Finder()}
    monkeypatch.setattr(kernel, "provider", lambda kind, tenant: providers.get(kind))
    ctx = await new_tenant(records=False)
    job = await upload(ctx, HEADER, [person(i) for i in range(5)])
    out = await imports.run(ctx, job["id"], commit=True)
    found = {(e["row"], e["code"], e["level"]) for e in out.errors}
    assert found == {(3, "import_blacklisted", "error"),
                     (4, "import_possible_duplicate", "warning"),
                     (5, "import_possible_duplicate", "error")}
    assert seen["entity"] == "customer" and "导入客户1" not in seen["names"]
    assert out.created == 0 and (out.error_count, out.warning_count) == (2, 1)
    en = report_rows(await imports.report_bytes(ctx, job["id"], "en"))
    assert ("Warning" in en[2][2]) and "possible duplicate" in en[2][3]
    async with tenant_scope(ctx, write=False):
        rows = await AuditEntry.select().where(
            AuditEntry.tenant_id == ctx.tenant_id,
            AuditEntry.action == "import.blacklist_refused").output(load_json=True).run()
    assert [r["diff"]["rows"] for r in rows] == [1]
    ok = await upload(ctx, HEADER, [person(i) for i in (2, 4)])
    out = await imports.run(ctx, ok["id"], commit=True)
    assert (out.created, out.warning_count) == (2, 1)  # a warning does not stop it


async def test_files_not_imported_expire(kernel: Any, new_tenant: Any) -> None:
    from core import imports
    from core.docstore import DocumentMissing
    from core.errors import Conflict

    ctx = await new_tenant(records=False)
    old = await upload(ctx, HEADER, [person(1)])
    done = await upload(ctx, HEADER, [person(2)])
    await imports.run(ctx, done["id"], commit=True)
    assert await imports.cleanup(ctx, keep_days=1) == 0  # too young
    assert await imports.cleanup(ctx, keep_days=0) == 1  # the committed one had no file left
    assert (await imports.describe(ctx, old["id"]))["status"] == "expired"
    with pytest.raises(Conflict) as err:
        await imports.start(ctx, old["id"], commit=True)
    assert err.value.code == "import_expired"
    with pytest.raises(DocumentMissing):
        await imports._load_file(ctx, __import__("uuid").UUID(old["id"]))
