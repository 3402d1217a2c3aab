"""Administration pages: refused without the admin permissions; users, roles, field
policies and organisation units changed through core.admin with errors next to the field."""

from __future__ import annotations

import re
from typing import Any

from tests.integration.test_ui_pages import (
    customer_ids,
    field_error,
    make_user,
    other_client,
    sign_in,
)

ADMIN_PAGES = ("/admin/users", "/admin/users/new", "/admin/roles", "/admin/roles/new",
               "/admin/roles/tenant_admin/edit", "/admin/field-policies", "/admin/org-units")


async def test_admin_pages_refuse_users_without_the_permission(
    client: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant(records=False)
    password = await make_user(ctx, "clerk", ["customer.read"])
    token = await sign_in(client, ctx.tenant.slug, "clerk", password)
    home = (await client.get("/")).text
    assert "/admin/" not in home and 'href="/e/customer"' in home  # menu: no admin entries
    for page in ADMIN_PAGES:
        r = await client.get(page)
        assert r.status_code == 403, page
        assert "没有权限" in r.text
    r = await client.post("/admin/users/new", data={
        "_csrf": token, "username": "mole", "display_name": "内鬼", "password": "mole-password-1",
        "roles": "tenant_admin"})
    assert r.status_code == 403
    r = await client.post("/admin/roles/r_clerk/edit", data={
        "_csrf": token, "permissions": "*", "scope": "all"})
    assert r.status_code == 403
    r = await client.post("/admin/org-units", data={"_csrf": token, "code": "x", "name": "x"})
    assert r.status_code == 403
    # Each permission opens only its own pages.
    password = await make_user(ctx, "hr", ["admin.users"])
    async with other_client(client) as hr:
        await sign_in(hr, ctx.tenant.slug, "hr", password)
        assert (await hr.get("/admin/users")).status_code == 200
        assert (await hr.get("/admin/roles")).status_code == 403
        assert (await hr.get("/admin/org-units")).status_code == 403
        assert "mole" not in (await hr.get("/admin/users")).text  # nothing was created


async def test_admin_creates_a_user_changes_roles_and_disables(
    client: Any, new_tenant: Any
) -> None:
    from core.admin import create_org_unit

    ctx = await new_tenant()
    await create_org_unit(ctx, "hq", "总部")
    token = await sign_in(client, ctx.tenant.slug)
    r = await client.get("/admin/users")
    assert r.status_code == 200 and "admin" in r.text and "租户管理员" in r.text
    form = {"_csrf": token, "username": "bad name!", "display_name": "李雷",
            "password": "password", "roles": "tenant_admin", "unit": "hq"}
    r = await client.post("/admin/users/new", data=form)
    assert r.status_code == 422
    assert field_error(r.text, "username") == "用户名应为 2 到 63 个字母、数字或 _ . @ -"
    assert 'value="李雷"' in r.text
    r = await client.post("/admin/users/new", data={**form, "username": "lilei"})
    assert field_error(r.text, "password") == "这个密码太常见，很容易被猜到，请换一个"
    r = await client.post("/admin/users/new", data={**form, "username": "lilei",
                                                    "password": "lilei-pass-2026"})
    assert r.status_code == 303
    r = await client.post("/admin/users/new", data={**form, "username": "lilei",
                                                    "password": "lilei-pass-2026"})
    assert field_error(r.text, "username") == "用户“lilei”已存在"
    page = (await client.get("/admin/users")).text
    user_id = re.search(r'href="/admin/users/([0-9a-f-]{36})">lilei<', page).group(1)

    async with other_client(client) as lilei:
        await sign_in(lilei, ctx.tenant.slug, "lilei", "lilei-pass-2026")
        assert len(await customer_ids(lilei)) == 2
        from core.admin import save_role

        await save_role(ctx, "viewer", "查看", "Viewer", ["customer.read"], "own")
        r = await client.post(f"/admin/users/{user_id}", data={
            "_csrf": token, "display_name": "李雷雷", "roles": "viewer", "unit": "hq"})
        assert r.status_code == 303
        assert await customer_ids(lilei) == []  # scope own now: the pack's records are not his
        assert (await lilei.get("/admin/users")).status_code == 403
        r = await client.post(f"/admin/users/{user_id}/active", data={"_csrf": token,
                                                                     "active": "false"})
        assert r.status_code == 303
        assert (await lilei.get("/")).status_code == 303  # disabling ended the session
        assert "已停用" in (await client.get("/admin/users")).text
    me = re.search(r'href="/admin/users/([0-9a-f-]{36})">admin<', page).group(1)
    r = await client.post(f"/admin/users/{me}/active", data={"_csrf": token, "active": "false"})
    assert r.status_code == 409 and "不能停用自己的账户" in r.text
    assert (await client.get("/admin/users/not-a-uuid")).status_code == 404


async def test_roles_and_field_policies_change_what_users_see(
    client: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant()
    token = await sign_in(client, ctx.tenant.slug)
    r = await client.get("/admin/roles/new")
    assert "查看客户敏感信息明文" in r.text and "customer.reveal" in r.text  # zh labels
    r = await client.get("/admin/roles/new?lang=en")
    assert "Reveal customers&#39; masked data" in r.text
    r = await client.post("/admin/roles/new", data={
        "_csrf": token, "name": "bad code!", "label_zh": "x", "label_en": "x",
        "scope": "all", "permissions": "customer.read"})
    assert r.status_code == 422 and field_error(r.text, "name").startswith("编码只能包含")
    r = await client.post("/admin/roles/new", data={
        "_csrf": token, "name": "auditor", "label_zh": "审计", "label_en": "Auditor",
        "scope": "all", "permissions": ["customer.read", "customer.reveal"]})
    assert r.status_code == 303
    assert "审计" in (await client.get("/admin/roles")).text
    r = await client.get("/admin/roles/auditor/edit")
    assert 'value="customer.reveal" checked' in r.text
    r = await client.post("/admin/roles/auditor/edit", data={
        "_csrf": token, "label_zh": "审计", "label_en": "Auditor", "scope": "all",
        "permissions": ["customer.read"]})
    assert r.status_code == 303

    r = await client.get("/admin/field-policies?entity=customer")
    assert r.status_code == 200 and 'name="p:auditor:address"' in r.text
    assert "默认（只读）" in r.text and "默认（可写）" in r.text
    r = await client.post("/admin/field-policies", data={
        "_csrf": token, "entity": "customer", "p:auditor:address": "hidden",
        "p:auditor:name": "masked", "p:auditor:wechat_id": "hidden"})
    assert r.status_code == 303
    r = await client.get(r.headers["location"])
    assert "已保存" in r.text
    assert re.search(r'name="p:auditor:address"[^>]*class="explicit"', r.text)

    from core.identity import create_user

    await create_user(ctx, "audit1", "审计员", "audit1-password-9", ["auditor"])
    async with other_client(client) as auditor:
        await sign_in(auditor, ctx.tenant.slug, "audit1", "audit1-password-9")
        (wang,) = await customer_ids(auditor, "?kind=individual")
        r = await auditor.get(f"/e/customer/{wang}")
        assert "王*" in r.text and "王小明" not in r.text  # masked by the policy
        assert "地址" not in r.text and "wx_wangxm" not in r.text  # hidden fields are absent
        assert "reveal/" not in r.text
    r = await client.post("/admin/field-policies", data={
        "_csrf": token, "entity": "customer", "p:auditor:address": "", "p:auditor:name": "",
        "p:auditor:wechat_id": ""})
    assert r.status_code == 303
    assert 'class="explicit"' not in (await client.get("/admin/field-policies")).text.split(
        "p:auditor:")[1][:200]


async def test_organisation_units_form_a_tree(client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    token = await sign_in(client, ctx.tenant.slug)
    r = await client.post("/admin/org-units", data={"_csrf": token, "code": "hq",
                                                    "name": "总部", "parent": ""})
    assert r.status_code == 303
    r = await client.post("/admin/org-units", data={"_csrf": token, "code": "ty",
                                                    "name": "太原支行", "parent": "hq"})
    assert r.status_code == 303
    r = await client.post("/admin/org-units", data={"_csrf": token, "code": "ty",
                                                    "name": "重复", "parent": "hq"})
    assert r.status_code == 409 and field_error(r.text, "code") == "机构编码“ty”已存在"
    r = await client.post("/admin/org-units", data={"_csrf": token, "code": "x y",
                                                    "name": "坏编码"})
    assert r.status_code == 422 and field_error(r.text, "code").startswith("编码只能包含")
    page = (await client.get("/admin/org-units")).text
    assert '<li class="depth-0">' in page and '<li class="depth-1">' in page
    assert page.index("总部") < page.index("太原支行")
    assert 'href="/admin/org-units?parent=ty#new-unit"' in page
