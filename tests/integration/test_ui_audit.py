"""The audit log page on both databases: compliance searches and filters the tenant's entries,
checks the chain and downloads a signed export that the offline verifier accepts; users
without audit.read are refused; secret values never appear in clear."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core.audit import Verdict
from tests.conftest import as_user
from tests.integration.test_ui_pages import other_client, sign_in

WHO_RE = re.compile(r'<span class="who">([^<]*)</span>')
ACT_RE = re.compile(r'<span class="act" title="([^"]+)">')
SEQ_RE = re.compile(r'<td data-label="#" class="num seq-cell">(\d+)</td>')
WANG_LAN = ("141102197812061004", "17732287174")  # a demo customer's resident ID, mobile
NEW_MOBILE = "13912345678"


def today(tenant: Any) -> str:
    return datetime.now(ZoneInfo(tenant.timezone)).date().isoformat()


async def officer_changes_a_customer(tenant: Any) -> str:
    """The officer creates a customer and changes its mobile; returns the record id."""
    from core import records

    officer = await as_user(tenant, "officer")
    created = await records.create(officer, "customer", {
        "kind": "individual", "name": "审计页测试", "resident_id": "11010519491231002X",
        "mobile": "+86 186 0351 2233", "region": "140107"})
    await records.update(officer, "customer", created["id"], {"mobile": NEW_MOBILE})
    return created["id"]


async def test_compliance_searches_and_filters_the_log(client: Any, demo: Any) -> None:
    tenant, passwords = demo
    record_id = await officer_changes_a_customer(tenant)
    await sign_in(client, tenant.slug, "compliance", passwords["compliance"])
    home = (await client.get("/")).text
    assert 'href="/audit"' in home and "审计日志" in home  # the menu entry
    r = await client.get("/audit")
    assert r.status_code == 200, r.text
    assert "审计日志" in r.text and "哈希链状态" in r.text and "导出" in r.text
    seqs = [int(s) for s in SEQ_RE.findall(r.text)]
    assert len(seqs) == 50 and seqs == sorted(seqs, reverse=True)  # newest first, 50 a page
    assert 'rel="next"' in r.text
    page2 = await client.get("/audit?page=2")
    assert max(int(s) for s in SEQ_RE.findall(page2.text)) < min(seqs)

    # By user: only the officer's entries, shown with the officer's role.
    r = await client.get("/audit?user=officer")
    assert set(WHO_RE.findall(r.text)) == {"officer"} and "客户经理" in r.text
    # By action (a select of the actions present), and by record.
    r = await client.get("/audit")
    assert '<option value="update">' in r.text and '<option value="login_ok">' in r.text
    r = await client.get("/audit?action=update&user=officer")
    assert set(ACT_RE.findall(r.text)) == {"update"} and "修改记录" in r.text
    r = await client.get(f"/audit?record={record_id}")
    assert set(ACT_RE.findall(r.text)) == {"create", "update"}
    assert "审计页测试" in r.text  # a public value of the diff
    assert "（已加密，仅显示摘要）" in r.text  # the mobile: a keyed hash only
    assert NEW_MOBILE not in r.text and "18603512233" not in r.text
    assert "11010519491231002X" not in r.text
    # By date, in the tenant's time zone.
    r = await client.get(f"/audit?record={record_id}&from={today(tenant)}&to={today(tenant)}")
    assert len(SEQ_RE.findall(r.text)) == 2
    r = await client.get(f"/audit?record={record_id}&to=2000-01-01")
    assert SEQ_RE.findall(r.text) == [] and "没有符合条件的审计记录" in r.text
    r = await client.get("/audit?from=2030-01-02&to=2030-01-01")
    assert r.status_code == 422 and "起始日期晚于截止日期" in r.text
    for bad in ("from=yesterday", "to=9999-12-31", "from=0001-01-01"):
        r = await client.get(f"/audit?{bad}")
        assert r.status_code == 422 and "YYYY-MM-DD" in r.text, bad
    # htmx swaps only the table, like the entity lists.
    r = await client.get("/audit?user=officer", headers={"HX-Request": "true",
                                                         "HX-Target": "entries"})
    assert r.status_code == 200 and "<html" not in r.text and 'class="who"' in r.text
    # English, and the time shown in the tenant's time zone.
    r = await client.get(f"/audit?record={record_id}&lang=en")
    assert "Audit log" in r.text and "(encrypted: digest only)" in r.text
    assert "Record changed" in r.text and "Loan officer" in r.text
    newest = await _entries_of(tenant, record_id)
    local = newest[0]["at"].astimezone(ZoneInfo(tenant.timezone)).strftime("%Y-%m-%d %H:%M:%S")
    assert local in r.text and "Asia/Shanghai" in r.text


async def _entries_of(tenant: Any, record_id: str) -> list[dict[str, Any]]:
    from core.tables import AuditEntry
    from core.tenancy import Context, tenant_scope

    async with tenant_scope(Context.system(tenant), write=False):
        return await AuditEntry.select().where(
            AuditEntry.tenant_id == tenant.id, AuditEntry.record_id == record_id
        ).order_by(AuditEntry.seq, ascending=False).run()


def test_days_are_the_tenants_days() -> None:
    from core.web.ui.audit import day_range

    since, before = day_range(date(2026, 11, 23), date(2026, 11, 24), "Asia/Shanghai")
    assert since.astimezone(UTC) == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    assert before.astimezone(UTC) == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert day_range(None, None, "Asia/Shanghai") == (None, None)


async def test_users_without_audit_read_are_refused(client: Any, demo: Any) -> None:
    tenant, passwords = demo
    token = await sign_in(client, tenant.slug, "officer", passwords["officer"])
    assert 'href="/audit"' not in (await client.get("/")).text
    r = await client.get("/audit")
    assert r.status_code == 403 and "没有权限" in r.text
    for path in ("/audit/verify", "/audit/export"):
        r = await client.post(path, data={"_csrf": token})
        assert r.status_code == 403, path
    # The general manager reads the log but may not export it.
    async with other_client(client) as gm:
        token = await sign_in(gm, tenant.slug, "gm", passwords["gm"])
        r = await gm.get("/audit")
        assert r.status_code == 200 and 'action="/audit/export"' not in r.text
        r = await gm.post("/audit/export", data={"_csrf": token})
        assert r.status_code == 403 and "content-disposition" not in r.headers


async def test_export_downloads_a_zip_the_offline_verifier_accepts(
    client: Any, demo: Any, tmp_path: Path
) -> None:
    from core.audit_verify import verify_export

    tenant, passwords = demo
    await officer_changes_a_customer(tenant)
    token = await sign_in(client, tenant.slug, "compliance", passwords["compliance"])
    page = (await client.get("/audit")).text
    assert 'action="/audit/export"' in page and "xindai audit verify FILE.zip" in page
    r = await client.post("/audit/export", data={"from": today(tenant), "to": today(tenant)})
    assert r.status_code == 403  # no CSRF token: refused before anything runs
    r = await client.post("/audit/export", data={"_csrf": token, "from": today(tenant),
                                                 "to": today(tenant)})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == \
        f'attachment; filename="audit-{tenant.slug}-{today(tenant)}.zip"'
    assert r.headers["cache-control"] == "no-store"
    path = tmp_path / "today.zip"
    path.write_bytes(r.content)
    verdict = verify_export(path)
    assert verdict.ok and verdict.checked >= 2, verdict.describe()
    r = await client.post("/audit/export", data={"_csrf": token})  # the whole log
    path = tmp_path / "all.zip"
    path.write_bytes(r.content)
    assert verify_export(path).ok
    # The exports are themselves in the log; a reversed range is refused with a message.
    r = await client.get("/audit?action=audit.export&user=compliance")
    assert len(SEQ_RE.findall(r.text)) >= 2 and "导出审计日志" in r.text
    r = await client.post("/audit/export", data={"_csrf": token, "from": "2030-01-02",
                                                 "to": "2030-01-01"})
    assert r.status_code == 422 and "起始日期晚于截止日期" in r.text
    assert 'value="2030-01-02"' in r.text


async def test_the_chain_check_shows_intact_or_the_broken_entry(
    client: Any, demo: Any, monkeypatch: Any
) -> None:
    from core import audit

    tenant, passwords = demo
    token = await sign_in(client, tenant.slug, "compliance", passwords["compliance"])
    htmx = {"HX-Request": "true", "X-CSRF-Token": token}
    assert (await client.post("/audit/verify", headers={"HX-Request": "true"})).status_code \
        == 403  # CSRF
    r = await client.post("/audit/verify", headers=htmx)
    assert r.status_code == 200 and "<html" not in r.text
    assert "完整" in r.text and "所有哈希值均一致" in r.text
    r = await client.post("/audit/verify?lang=en", headers=htmx)
    assert "Intact" in r.text and "every hash matches" in r.text
    r = await client.post("/audit/verify", data={"_csrf": token})  # without JavaScript
    assert r.status_code == 200 and "<html" in r.text and "完整" in r.text

    async def broken(ctx: Any) -> Verdict:
        return Verdict(False, 41, 42, "changed")

    monkeypatch.setattr(audit, "verify_tenant", broken)
    r = await client.post("/audit/verify", headers=htmx)
    assert "在第 42 条记录处断裂" in r.text and "该条记录被篡改" in r.text
    r = await client.post("/audit/verify?lang=en", headers=htmx)
    assert "Broken at entry 42" in r.text and "the entry was changed" in r.text


async def test_the_page_never_shows_a_resident_id_or_mobile_in_clear(
    client: Any, demo: Any
) -> None:
    from core import records

    tenant, passwords = demo
    admin = await as_user(tenant, "admin")
    found = await records.list_records(admin, "customer", {"resident_id": WANG_LAN[0]})
    assert found.total == 1
    await records.update(admin, "customer", found.items[0]["id"], {"mobile": NEW_MOBILE})
    await records.update(admin, "customer", found.items[0]["id"], {"mobile": WANG_LAN[1]})
    await sign_in(client, tenant.slug, "compliance", passwords["compliance"])
    url, pages = "/audit", 0
    while url:
        r = await client.get(url)
        assert r.status_code == 200
        for secret in (*WANG_LAN, NEW_MOBILE):
            assert secret not in r.text, (url, secret)
        m = re.search(r'href="([^"]+)" hx-get="[^"]+" hx-target="#entries" hx-push-url="true" '
                      r'rel="next"', r.text)
        url = m.group(1).replace("&amp;", "&") if m else ""
        pages += 1
    assert pages >= 2
    r = await client.get(f"/audit?record={found.items[0]['id']}")
    assert r.text.count("（已加密，仅显示摘要）") >= 4
