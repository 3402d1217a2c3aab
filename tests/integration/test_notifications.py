"""In-app notifications on both databases: notify by user id, username and role, once per
ref and recipient; `core.events.emit` turns an event's `notify` payload into
notifications; read / read all; isolation between users and tenants; the bell and page."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core import notifications, outbox
from core.errors import ValidationFailed
from core.events import emit
from core.identity import create_user
from core.tables import Notification
from core.tenancy import tenant_scope
from tests.conftest import as_user, login
from tests.integration.test_ui_pages import sign_in

TITLE = {"zh-CN": "任务今日到期", "en": "A task is due today"}


async def _users(ctx: Any) -> dict[str, str]:
    """Two officers and a reviewer besides the pack's admin; returns username -> id."""
    ids = {}
    async with tenant_scope(ctx):
        for name, roles in (("li", ["loan_officer"]), ("zhao", ["loan_officer"]),
                            ("qian", ["risk_reviewer"])):
            ids[name] = str(await create_user(ctx, name, name, "test-password-1", roles))
    return ids


async def _rows(ctx: Any) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        return await Notification.select().where(Notification.tenant_id == ctx.tenant_id).run()


async def test_notify_users_roles_once_per_ref(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    ids = await _users(ctx)
    made = await notifications.notify(ctx, users=[ids["li"], "qian"], roles=["loan_officer"],
                                      kind="task.due", title=TITLE, link="/tasks", ref="t1:d1")
    assert made == 3  # li (named and by role: once), zhao by role, qian by name
    again = await notifications.notify(ctx, roles=["loan_officer", "risk_reviewer"],
                                       kind="task.due", title=TITLE, link="/tasks", ref="t1:d1")
    assert again == 0
    other_ref = await notifications.notify(ctx, users=["li"], kind="task.due", title=TITLE,
                                           ref="t1:d2")
    assert other_ref == 1
    no_ref = [await notifications.notify(ctx, users=["zhao"], kind="x", title=TITLE)
              for _ in range(2)]
    assert no_ref == [1, 1]  # without a ref every call notifies
    assert len(await _rows(ctx)) == 6

    li = await as_user(ctx.tenant, "li")
    mine = await notifications.list_for(li)
    assert [n["title"] for n in mine] == ["任务今日到期"] * 2
    assert await notifications.unread_count(li) == 2
    opened = await notifications.mark_read(li, mine[0]["id"])
    assert opened["read_at"] and opened["link"] in ("/tasks", None)
    assert await notifications.unread_count(li) == 1
    zhao = await as_user(ctx.tenant, "zhao")
    with pytest.raises(Exception) as caught:  # li's notification is not zhao's to read
        await notifications.mark_read(zhao, mine[1]["id"])
    assert getattr(caught.value, "status", None) == 404
    assert await notifications.mark_all_read(zhao) == 3
    assert await notifications.unread_count(zhao) == 0
    assert await notifications.unread_count(li) == 1


async def test_bad_input_is_refused_with_a_named_field(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    for title, link, field in (({"zh-CN": "只有中文"}, None, "title"),
                               (TITLE, "https://evil.example/x", "link"),
                               (TITLE, "//evil.example", "link")):
        with pytest.raises(ValidationFailed) as caught:
            await notifications.notify(ctx, users=["admin"], kind="x", title=title, link=link)
        assert caught.value.errors[0].field == field
        assert caught.value.errors[0].message("zh-CN") != caught.value.errors[0].message("en")
    assert await _rows(ctx) == []


async def test_an_event_with_a_notify_payload_notifies(kernel: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    ids = await _users(ctx)
    async with tenant_scope(ctx):
        await emit(ctx, "collections.promise_broken", {
            "loan_id": str(uuid.uuid4()),
            "notify": {"users": [ids["zhao"]], "roles": ["risk_reviewer"],
                       "title": {"zh-CN": "承诺还款已违约", "en": "A promise to pay was broken"},
                       "link": "/servicing/loans"}})
        await emit(ctx, "something.plain", {"id": "1"})  # no notify key: nothing
        await emit(ctx, "something.broken", {"notify": {"users": ["li"], "title": "x"}})
    await outbox.run_due(ctx.tenant)
    rows = await _rows(ctx)
    assert sorted(str(r["user_id"]) for r in rows) == sorted([ids["zhao"], ids["qian"]])
    assert {r["kind"] for r in rows} == {"collections.promise_broken"}
    assert {r["title_en"] for r in rows} == {"A promise to pay was broken"}
    # the malformed payload was dropped, not retried for ever: every message is finished
    async with tenant_scope(ctx, write=False):
        from core.tables import OutboxMessage
        left = await OutboxMessage.count().where(OutboxMessage.tenant_id == ctx.tenant_id,
                                                 OutboxMessage.finished_at.is_null()).run()
    assert left == 0


async def test_tenants_and_users_do_not_see_each_others(kernel: Any, new_tenant: Any) -> None:
    a = await new_tenant(records=False)
    b = await new_tenant(records=False)
    await notifications.notify(a, users=["admin"], kind="x", title=TITLE, ref="r")
    b_admin = await as_user(b.tenant, "admin")
    assert await notifications.list_for(b_admin) == []
    assert await notifications.notify(b, users=["admin"], kind="x", title=TITLE, ref="r") == 1


async def test_bell_page_and_api(kernel: Any, client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    for i in range(3):
        await notifications.notify(ctx, users=["admin"], kind="x", link="/e/customer",
                                   title={"zh-CN": f"第{i}条提醒", "en": f"Reminder {i}"})
    csrf = await sign_in(client, ctx.tenant.slug)
    page = (await client.get("/")).text
    assert 'hx-get="/notifications/badge"' in page
    bell = await client.get("/notifications/badge")
    assert 'id="bell-count">3<' in bell.text
    listing = await client.get("/notifications")
    assert "第2条提醒" in listing.text and "第0条提醒" in listing.text
    first = (await notifications.list_for(await as_user(ctx.tenant, "admin")))[0]
    r = await client.post(f"/notifications/{first['id']}/open", data={"_csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/e/customer"
    assert 'id="bell-count">2<' in (await client.get("/notifications/badge")).text
    r = await client.post("/notifications/read-all", data={"_csrf": csrf})
    assert r.status_code == 303
    assert "bell-count" not in (await client.get("/notifications/badge")).text
    # the JSON API, with a token
    await notifications.notify(ctx, users=["admin"], kind="x", title=TITLE)
    headers = await login(client, ctx.tenant.slug)
    body = (await client.get("/api/v1/notifications?unread=true", headers=headers)).json()
    assert body["unread"] == 1 and body["items"][0]["title"] == "任务今日到期"
    r = await client.post(f"/api/v1/notifications/{body['items'][0]['id']}/read",
                          headers=headers)
    assert r.status_code == 200 and r.json()["read_at"]
    r = await client.post("/api/v1/notifications/read-all", headers=headers)
    assert r.json() == {"marked": 0}
