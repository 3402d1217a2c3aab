"""The background jobs and webhooks pages on both engines: an admin creates a webhook, sees
its secret once and its delivery log; the jobs page shows progress (refreshing itself while
something runs) and the dead-letter list with a Retry button that works; an officer and
users without the permissions are refused."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import replace
from typing import Any

from core import jobs, outbox, records
from core.webhooks import DELIVER_JOB
from tests.conftest import login
from tests.integration.test_ui_pages import field_error, make_user, other_client, sign_in
from tests.integration.test_webhooks import VALID, Receiver, drain, receiver, signed_by

__all__ = ["receiver"]  # the fixture, used by name
SECRET_RE = re.compile(r'<code class="secret" id="webhook-secret">(whsec_[A-Za-z0-9_-]+)</code>')
DEAD_ROW_RE = re.compile(r'<tr id="job-([0-9a-f-]{36})" class="job-row status-dead">')


async def test_officers_and_users_without_the_permissions_are_refused(
        client: Any, demo: Any, new_tenant: Any) -> None:
    tenant, passwords = demo
    await sign_in(client, tenant.slug, "officer", passwords["officer"])
    home = (await client.get("/")).text
    assert "/admin/jobs" not in home and "/admin/webhooks" not in home
    for page in ("/admin/jobs", "/admin/jobs?status=dead", "/admin/webhooks",
                 f"/admin/webhooks/{uuid.uuid4()}"):
        r = await client.get(page)
        assert r.status_code == 403 and "没有权限" in r.text, page
    h = await login(client, tenant.slug, "officer", passwords["officer"])
    for path in ("/api/v1/webhooks", "/api/v1/jobs", f"/api/v1/jobs/{uuid.uuid4()}"):
        assert (await client.get(path, headers=h)).status_code == 403, path
    r = await client.post(f"/api/v1/jobs/{uuid.uuid4()}/retry", headers=h)
    assert r.status_code == 403

    ctx = await new_tenant(records=False)
    password = await make_user(ctx, "ops", ["jobs.manage"])
    async with other_client(client) as ops:
        token = await sign_in(ops, ctx.tenant.slug, "ops", password)
        home = (await ops.get("/")).text
        assert 'href="/admin/jobs"' in home and "后台作业" in home
        assert "/admin/webhooks" not in home
        assert (await ops.get("/admin/jobs")).status_code == 200
        assert (await ops.get("/admin/webhooks")).status_code == 403
        r = await ops.post("/admin/webhooks", data={
            "_csrf": token, "url": "https://example.com/", "events": "*"})
        assert r.status_code == 403
    admin = await login(client, ctx.tenant.slug)
    assert (await client.get("/api/v1/webhooks", headers=admin)).json() == []


async def test_an_admin_creates_a_webhook_sees_the_secret_once_and_its_deliveries(
        client: Any, new_tenant: Any, receiver: Receiver) -> None:
    ctx = await new_tenant(records=False)
    token = await sign_in(client, ctx.tenant.slug)
    r = await client.get("/admin/webhooks")
    assert r.status_code == 200 and "还没有 Webhook。" in r.text
    assert 'value="customer.created"' in r.text and "新建客户" in r.text
    assert 'value="*"' in r.text and "全部事件" in r.text
    assert 'href="/admin/webhooks"' in r.text  # the menu entry

    # mistakes come back next to their field, nothing is created
    r = await client.post("/admin/webhooks", data={
        "_csrf": token, "url": "ftp://erp.example.com/", "events": "customer.created"})
    assert r.status_code == 422 and "http://" in field_error(r.text, "url")
    r = await client.post("/admin/webhooks", data={"_csrf": token, "url": receiver.url()})
    assert r.status_code == 422 and "至少选择一个事件类型" in field_error(r.text, "events")
    r = await client.post("/admin/webhooks", data={
        "_csrf": token, "url": receiver.url(), "events": "customer.created",
        "other_events": "Customer_Created"})
    assert r.status_code == 422 and "Customer_Created" in field_error(r.text, "events")
    assert "还没有 Webhook。" in r.text

    r = await client.post("/admin/webhooks", data={
        "_csrf": token, "url": receiver.url(), "description": "ERP 同步",
        "events": ["customer.created", "customer.deleted"], "other_events": "example.ping",
        "active": "true"})
    assert r.status_code == 200, r.text
    secret = SECRET_RE.search(r.text).group(1)  # type: ignore[union-attr]
    assert "只显示这一次" in r.text
    listed = (await client.get("/admin/webhooks")).text
    assert secret not in listed and secret[6:] not in listed  # shown once, never again
    hook_id = re.search(r'href="/admin/webhooks/([0-9a-f-]{36})"', listed).group(1)  # type: ignore[union-attr]
    assert "ERP 同步" in listed and "新建客户、删除客户、example.ping" in listed

    created = await records.create(ctx, "customer", VALID)
    await drain(ctx)
    [request] = receiver.requests
    assert signed_by(secret, request) and created["id"] in request["body"].decode()
    page = await client.get(f"/admin/webhooks/{hook_id}")
    assert page.status_code == 200 and secret not in page.text
    assert '<tr class="delivery delivered">' in page.text and "已送达" in page.text
    assert '<td data-label="HTTP 状态码" class="num status-code">200</td>' in page.text
    assert request["headers"]["x-xindai-delivery"][:8] in page.text
    assert "最近一次推送" in listed

    # change the event types on the detail page
    r = await client.post(f"/admin/webhooks/{hook_id}", data={
        "_csrf": token, "url": receiver.url(), "description": "ERP 同步",
        "events": "customer.updated", "other_events": ""})
    assert r.status_code == 303 and r.headers["location"].endswith("?saved=1")
    page = (await client.get(r.headers["location"])).text
    assert "已保存" in page and 'value="customer.updated" checked' in page
    await records.update(ctx, "customer", created["id"], {"name": "晋中示例商贸二公司"})
    await drain(ctx)
    assert len(receiver.requests) == 2

    # switch off: nothing more is sent; then delete
    r = await client.post(f"/admin/webhooks/{hook_id}/active",
                          data={"_csrf": token, "active": "false"})
    assert r.status_code == 303
    assert "已停用" in (await client.get("/admin/webhooks")).text
    await records.update(ctx, "customer", created["id"], {"name": "晋中示例商贸三公司"})
    await drain(ctx)
    assert len(receiver.requests) == 2
    r = await client.post(f"/admin/webhooks/{hook_id}/delete", data={})
    assert r.status_code == 403  # no CSRF token: refused, nothing deleted
    r = await client.post(f"/admin/webhooks/{hook_id}/delete", data={"_csrf": token})
    assert r.status_code == 303
    assert (await client.get(f"/admin/webhooks/{hook_id}")).status_code == 404
    audit = (await client.get("/audit?entity=webhook")).text
    assert "创建 Webhook" in audit and "删除 Webhook" in audit and secret not in audit


async def test_the_dead_letter_list_retries_a_failed_delivery(
        client: Any, kernel: Any, new_tenant: Any, receiver: Receiver, monkeypatch: Any
) -> None:
    from core import webhooks

    monkeypatch.setattr(kernel, "jobs", [replace(j, max_retries=0) if j.name == DELIVER_JOB
                                         else j for j in kernel.jobs])
    ctx = await new_tenant(records=False)
    await webhooks.create_webhook(ctx, receiver.url(), ["customer.created"])
    receiver.default = 503
    await records.create(ctx, "customer", VALID)
    await drain(ctx)
    token = await sign_in(client, ctx.tenant.slug)
    r = await client.get("/admin/jobs?status=dead")
    assert r.status_code == 200
    [dead] = DEAD_ROW_RE.findall(r.text)
    assert "Webhook 推送 · customer.created" in r.text and "HTTP 503" in r.text
    assert f'action="/admin/jobs/{dead}/retry"' in r.text and ">重试</button>" in r.text
    assert 'hx-trigger="every 2s"' not in r.text  # nothing runs: no polling
    everything = (await client.get("/admin/jobs")).text
    assert "新建客户" in everything and "已完成" in everything  # the event itself

    receiver.default = 200
    r = await client.post(f"/admin/jobs/{dead}/retry", data={"next": "/admin/jobs?status=dead"})
    assert r.status_code == 403  # CSRF
    r = await client.post(f"/admin/jobs/{dead}/retry",
                          data={"_csrf": token, "next": "/admin/jobs?status=dead"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/jobs?status=dead"
    r = await client.get("/admin/jobs?status=dead")
    assert DEAD_ROW_RE.findall(r.text) == [] and "没有失败的作业或事件" in r.text
    r = await client.get("/admin/jobs?kind=job")
    assert "待重试" in r.text and 'hx-trigger="every 2s"' in r.text  # due now: it refreshes
    r = await client.post(f"/admin/jobs/{dead}/retry", data={"_csrf": token})
    assert r.status_code == 409  # no longer dead
    await drain(ctx)
    assert len(receiver.requests) == 2
    row = await outbox.get(ctx, uuid.UUID(dead))
    assert row is not None and row["status"] == "done"
    assert "重试失败的作业" in (await client.get("/audit?action=job.retry")).text


async def test_the_jobs_page_shows_progress_and_refreshes_while_a_job_runs(
        client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    message_id = await jobs.enqueue(ctx, "example.steps", total=4, pause=0.15)
    await sign_in(client, ctx.tenant.slug)
    waiting = (await client.get("/admin/jobs?kind=job")).text
    assert "等待中" in waiting and 'hx-trigger="every 2s"' in waiting
    task = asyncio.create_task(outbox.deliver(ctx.tenant_id, message_id))
    for _ in range(100):
        row = await outbox.get(ctx, message_id)
        if row and row["progress_total"] and row["status"] == "running":
            break
        await asyncio.sleep(0.02)
    r = await client.get("/admin/jobs?kind=job", headers={"HX-Request": "true",
                                                          "HX-Target": "jobs"})
    assert r.text.lstrip().startswith('<div id="jobs"')  # the table alone, to swap in
    assert "<h1>" not in r.text and 'hx-trigger="every 2s"' in r.text
    assert "运行中" in r.text and '<progress max="4" value="' in r.text
    assert await task == "done"
    r = await client.get("/admin/jobs?kind=job", headers={"HX-Request": "true",
                                                          "HX-Target": "jobs"})
    assert 'hx-trigger="every 2s"' not in r.text and "已完成" in r.text  # polling stops
    assert "4 / 4" in r.text
    en = (await client.get("/admin/jobs?lang=en")).text
    assert "Background jobs" in en and "Done" in en
