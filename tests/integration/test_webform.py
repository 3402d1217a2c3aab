"""The public lead form on both engines: off by default (404), zh-CN and en, a good
submission becomes a pooled web_form lead, malformed mobile/ID are shown next to their
field with nothing written, honeypot / too fast / expired / replayed / forged tokens are
refused and audited, duplicates are captured flagged, blacklisted parties refused."""

from __future__ import annotations

import re
import time
from typing import Any

from core.tables import AuditEntry
from core.tenancy import tenant_scope, update_tenant
from plugins.crm import blacklist
from plugins.crm.lead_tables import Lead
from plugins.crm.webform import new_token


def csrf_of(html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', html).group(1)


def field_error(html: str, key: str) -> str:
    m = re.search(rf'<p class="field-error" id="e-{key}">([^<]*)</p>', html)
    return m.group(1) if m else ""


async def _enabled(ctx: Any) -> Any:
    return await update_tenant(ctx.tenant, settings={**ctx.tenant.settings,
                                                     "crm.webform_enabled": True})


async def _refusals(tenant: Any) -> list[str]:
    from core.tenancy import Context

    async with tenant_scope(Context.system(tenant), write=False):
        rows = await AuditEntry.select(AuditEntry.diff).where(
            AuditEntry.tenant_id == tenant.id, AuditEntry.action == "webform.refused").output(
            load_json=True).run()
    return [r["diff"]["reason"] for r in rows]


async def _leads(tenant: Any) -> list[dict[str, Any]]:
    from core.tenancy import Context

    async with tenant_scope(Context.system(tenant), write=False):
        return await Lead.select().where(Lead.tenant_id == tenant.id).run()


async def test_webform(kernel: Any, new_tenant: Any, client: Any) -> None:
    ctx = await new_tenant()
    url = f"/f/{ctx.tenant.slug}/lead"
    assert (await client.get(url)).status_code == 404  # off by default
    tenant = await _enabled(ctx)
    r = await client.get(url + "?ch=wechat-ad")
    assert r.status_code == 200 and "申请贷款" in r.text and 'value="wechat-ad"' in r.text
    assert "Apply for a loan" in (await client.get(url + "?lang=en")).text
    csrf = csrf_of(r.text)
    token = re.search(r'name="token" value="([^"]+)"', r.text).group(1)
    good = {"_csrf": csrf, "name": "网页客户", "mobile": "13612340001", "region": "140100",
            "channel": "wechat-ad", "website": ""}
    # too fast (the token of the page just served)
    r = await client.post(url, data={**good, "token": token})
    assert r.status_code == 400
    # honeypot
    r = await client.post(url, data={**good, "token": await new_token(tenant, time.time() - 10),
                                     "website": "http://spam"})
    assert r.status_code == 400
    # expired and forged
    r = await client.post(url, data={**good, "token": await new_token(tenant,
                                                                      time.time() - 5 * 3600)})
    assert r.status_code == 400
    r = await client.post(url, data={**good, "token": "1.abc.deadbeef"})
    assert r.status_code == 400
    assert await _leads(tenant) == []
    assert sorted(await _refusals(tenant)) == ["bad_token", "expired", "honeypot", "too_fast"]
    # malformed mobile and ID: next to the field, nothing written
    r = await client.post(url, data={**good, "mobile": "12345", "resident_id": "123",
                                     "token": await new_token(tenant, time.time() - 10)})
    assert r.status_code == 422
    assert "手机号" in field_error(r.text, "mobile") and "身份证号" in field_error(
        r.text, "resident_id")
    assert await _leads(tenant) == []
    # a good one
    ok_token = await new_token(tenant, time.time() - 10)
    r = await client.post(url, data={**good, "token": ok_token})
    assert r.status_code == 303 and r.headers["location"] == url + "/thanks"
    assert "感谢" in (await client.get(url + "/thanks")).text or \
        "谢谢" in (await client.get(url + "/thanks")).text
    rows = await _leads(tenant)
    assert len(rows) == 1 and rows[0]["source"] == "web_form" and \
        rows[0]["channel"] == "wechat-ad" and rows[0]["owner_id"] is None and \
        rows[0]["pooled_at"] is not None and not rows[0]["suspected_duplicate"]
    # the same token again: a replay
    r = await client.post(url, data={**good, "token": ok_token})
    assert r.status_code == 400 and "replay" in await _refusals(tenant)
    # a duplicate is captured, flagged
    r = await client.post(url, data={**good, "token": await new_token(tenant, time.time() - 10)})
    assert r.status_code == 303
    rows = await _leads(tenant)
    assert len(rows) == 2 and sum(r["suspected_duplicate"] for r in rows) == 1
    # blacklisted: neutral refusal, audited, nothing written
    from core.tenancy import Context

    await blacklist.add(Context.system(tenant), "mobile", "13612340002", "欺诈")
    r = await client.post(url, data={**good, "mobile": "13612340002",
                                     "token": await new_token(tenant, time.time() - 10)})
    assert r.status_code == 422 and "致电" in r.text
    assert len(await _leads(tenant)) == 2
    async with tenant_scope(Context.system(tenant), write=False):
        assert await AuditEntry.exists().where(AuditEntry.tenant_id == tenant.id,
                                               AuditEntry.action == "blacklist.refused").run()


async def test_webform_rate_limited(kernel: Any, new_tenant: Any, client: Any) -> None:
    from plugins.crm.webform import WEBFORM_PER_MINUTE

    ctx = await new_tenant()
    tenant = await _enabled(ctx)
    url = f"/f/{tenant.slug}/lead"
    r = await client.get(url)
    data = {"_csrf": csrf_of(r.text), "name": "", "mobile": "", "token": "x"}
    statuses = [(await client.post(url, data=data)).status_code
                for _ in range(WEBFORM_PER_MINUTE + 1)]
    assert statuses[-1] == 429 and 429 not in statuses[:-1]
