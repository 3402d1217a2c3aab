"""The web shell over HTTP on both databases: sign-in and out, sessions, CSRF, the generic
list / detail / create / edit views, masking and reveal, errors in the user's language,
escaping, tenant isolation, language switch, password change and TOTP."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pyotp

CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')
ID_RE = re.compile(r'href="/e/customer/([0-9a-f-]{36})"')
NEW = {"kind": "individual", "name": "郭晓东", "resident_id": "11010519491231002X",
       "mobile": "+86 186 0351 2233", "region": "140107", "annual_income": "66000"}


def csrf_of(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, html[:500]
    return m.group(1)


def other_client(client: httpx.AsyncClient, base_url: str = "http://testserver"
                 ) -> httpx.AsyncClient:
    """A second browser on the same app (its own cookie jar)."""
    return httpx.AsyncClient(transport=client._transport, base_url=base_url)


async def sign_in(client: httpx.AsyncClient, tenant: str, username: str = "admin",
                  password: str = "test-password-1") -> str:
    """Sign in through the form; returns the session's CSRF token."""
    r = await client.get("/login")
    r = await client.post("/login", data={"_csrf": csrf_of(r.text), "tenant": tenant,
                                          "username": username, "password": password})
    assert r.status_code == 303, r.text
    r = await client.get("/")
    assert r.status_code == 200, r.text
    return csrf_of(r.text)


def field_error(html: str, key: str) -> str:
    """The error message shown next to field `key` of a form."""
    m = re.search(rf'<p class="field-error" id="e-{key}">([^<]*)</p>', html)
    return m.group(1) if m else ""


async def customer_ids(client: httpx.AsyncClient, query: str = "") -> list[str]:
    r = await client.get(f"/e/customer{query}")
    assert r.status_code == 200, r.text
    return list(dict.fromkeys(ID_RE.findall(r.text)))


async def make_user(ctx: Any, username: str, permissions: list[str], scope: str = "all",
                    unit: str | None = None) -> str:
    """A user with a role of its own; returns the password."""
    from core import admin
    from core.identity import create_user

    await admin.save_role(ctx, f"r_{username}", f"角色{username}", f"Role {username}",
                          permissions, scope)
    unit_id = (await admin.unit_by_code(ctx, unit))["id"] if unit else None
    password = f"{username}-secret-pw-1"
    await create_user(ctx, username, f"用户{username}", password, [f"r_{username}"], unit_id)
    return password


# --- signing in and out ------------------------------------------------------------------

async def test_sign_in_sets_a_safe_session_cookie_and_sign_out_ends_it(
    client: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant()
    r = await client.get(f"/login?tenant={ctx.tenant.slug}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert f'value="{ctx.tenant.slug}"' in r.text and "登录" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    r = await client.post("/login", data={"_csrf": csrf_of(r.text), "tenant": ctx.tenant.slug,
                                          "username": "admin", "password": "test-password-1"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("xd_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http in tests; TLS below
    home = await client.get("/")
    assert home.status_code == 200
    assert "管理员" in home.text and ctx.tenant.name in home.text and "客户" in home.text
    token = csrf_of(home.text)
    r = await client.post("/logout", data={"_csrf": token})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = await client.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login"

    async with other_client(client, "https://testserver") as tls:
        r = await tls.get("/login")
        r = await tls.post("/login", data={
            "_csrf": csrf_of(r.text), "tenant": ctx.tenant.slug, "username": "admin",
            "password": "test-password-1"})
        cookie = next(c for c in r.headers.get_list("set-cookie")
                      if c.startswith("xd_session="))
        assert "Secure" in cookie


async def test_a_wrong_password_shows_one_message_and_reveals_nothing(
    client: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant(records=False)
    slug = ctx.tenant.slug
    texts = set()
    for tenant, username, password in ((slug, "admin", "wrong-password"),
                                       (slug, "nobody", "wrong-password"),
                                       ("no-such-tenant", "admin", "wrong-password")):
        r = await client.get("/login")
        r = await client.post("/login", data={"_csrf": csrf_of(r.text), "tenant": tenant,
                                              "username": username, "password": password})
        assert r.status_code == 401
        assert "用户名或密码错误" in r.text
        assert f'value="{username}"' in r.text and "wrong-password" not in r.text
        texts.add(re.sub(r'value="[^"]*"', "", r.text))
        assert "xd_session" not in r.headers.get("set-cookie", "")
    assert len(texts) == 1  # the same page whether the tenant or user exists or not
    r = await client.get("/login?lang=en")
    r = await client.post("/login?lang=en", data={"_csrf": csrf_of(r.text), "tenant": slug,
                                                  "username": "admin", "password": "nope"})
    assert r.status_code == 401 and "wrong username or password" in r.text


async def test_sign_in_is_rate_limited(client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    r = await client.get("/login")
    token = csrf_of(r.text)
    statuses = []
    for _ in range(22):
        r = await client.post("/login", data={"_csrf": token, "tenant": ctx.tenant.slug,
                                              "username": "ghost", "password": "x" * 9})
        statuses.append(r.status_code)
    assert statuses[:20] == [401] * 20 and statuses[-1] == 429
    assert "请求过于频繁" in r.text


async def test_pages_need_a_session_and_the_api_keeps_answering_401(client: Any) -> None:
    r = await client.get("/e/customer?kind=company")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fe%2Fcustomer%3Fkind%3Dcompany"
    r = await client.get("/e/customer", headers={"HX-Request": "true"})
    assert r.status_code == 401 and r.headers["hx-redirect"].startswith("/login")
    client.cookies.set("xd_session", "xd_00000000000000000000000000000000_forged")
    r = await client.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = await client.get("/api/v1/customers")
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    r = await client.get("/no/such/page")
    assert r.status_code == 404 and "<html" in r.text and "页面或记录不存在" in r.text


async def test_every_state_change_needs_the_csrf_token(client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    token = await sign_in(client, ctx.tenant.slug)
    form = {**NEW}
    for headers, data in (({}, form), ({}, {**form, "_csrf": "forged"}),
                          ({"X-CSRF-Token": "forged"}, form)):
        r = await client.post("/e/customer/new", headers=headers, data=data)
        assert r.status_code == 403, r.text
        assert "安全校验失败" in r.text and "未保存任何内容" in r.text
    r = await client.post("/e/customer/new?lang=en", data=form)
    assert r.status_code == 403 and "Nothing was saved" in r.text
    r = await client.post("/logout", data={})
    assert r.status_code == 403
    assert await customer_ids(client) == []  # nothing was written
    r = await client.post("/e/customer/new", headers={"X-CSRF-Token": token}, data=form)
    assert r.status_code == 303  # the htmx header is accepted like the form field
    # A token from another session does not work either.
    async with other_client(client) as other:
        other_token = await sign_in(other, ctx.tenant.slug)
    r = await client.post("/e/customer/new", data={**form, "_csrf": other_token})
    assert r.status_code == 403
    # The sign-in form (no session yet) uses a double-submit cookie.
    async with other_client(client) as anon:
        r = await anon.post("/login", data={"_csrf": "x", "tenant": ctx.tenant.slug,
                                            "username": "admin", "password": "test-password-1"})
        assert r.status_code == 403
    # The API takes bearer tokens and has no CSRF check.
    from tests.conftest import login

    h = await login(client, ctx.tenant.slug)
    assert (await client.post("/api/v1/customers", headers=h, json={
        **NEW, "resident_id": "110105194912310045"})).status_code in (201, 422)


# --- the generic entity views ----------------------------------------------------------------

async def test_the_list_filters_searches_sorts_and_swaps_with_htmx(
    client: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant()
    await sign_in(client, ctx.tenant.slug)
    r = await client.get("/e/customer")
    assert "共 2 条" in r.text and "王小明" in r.text and "太原市测试商贸有限公司" in r.text
    assert "138****8000" in r.text and "13800138000" not in r.text
    assert 'name="kind"' in r.text and 'name="annual_income__gte"' in r.text  # filters
    r = await client.get("/e/customer?kind=company")
    assert "共 1 条" in r.text and "王小明" not in r.text
    r = await client.get("/e/customer?annual_income__gte=100000")
    assert "共 1 条" in r.text and "王小明" in r.text
    r = await client.get("/e/customer?q=13900139000")  # exact match on a secret field
    assert "共 1 条" in r.text and "太原市测试商贸有限公司" in r.text
    asc = (await client.get("/e/customer?sort=name")).text
    desc = (await client.get("/e/customer?sort=-name")).text
    assert asc.index("王小明") > asc.index("太原市") and desc.index("王小明") < desc.index("太原市")
    assert 'href="/e/customer?sort=-name"' in asc  # clicking the header again reverses
    r = await client.get("/e/customer?kind=company",
                         headers={"HX-Request": "true", "HX-Target": "records"})
    assert r.status_code == 200 and "<html" not in r.text and "共 1 条" in r.text
    r = await client.get("/e/customer?annual_income__gte=lots")
    assert r.status_code == 422 and "年收入（元）必须是数字" in r.text
    r = await client.get("/e/customer?per_page=10&page=3")
    assert r.status_code == 200 and "第 3 / 1 页" in r.text


async def test_detail_shows_masked_values_and_reveal_is_permissioned_and_recorded(
    client: Any, new_tenant: Any
) -> None:
    from core.tables import AuthEvent
    from core.tenancy import tenant_scope

    ctx = await new_tenant()
    await sign_in(client, ctx.tenant.slug)
    (wang,) = await customer_ids(client, "?kind=individual")
    r = await client.get(f"/e/customer/{wang}")
    assert r.status_code == 200
    assert "110***********002X" in r.text and "11010519491231002X" not in r.text
    assert f'hx-post="/e/customer/{wang}/reveal/resident_id"' in r.text
    token = csrf_of(r.text)
    r = await client.post(f"/e/customer/{wang}/reveal/resident_id",
                          headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert r.status_code == 200 and "11010519491231002X" in r.text and "<html" not in r.text
    async with tenant_scope(ctx, write=False):
        events = await AuthEvent.select().where(AuthEvent.tenant_id == ctx.tenant_id,
                                                AuthEvent.kind == "reveal").run()
    assert len(events) == 1
    r = await client.post(f"/e/customer/{wang}/reveal/resident_id")  # no token
    assert r.status_code == 403

    password = await make_user(ctx, "viewer", ["customer.read"])
    async with other_client(client) as viewer:
        token = await sign_in(viewer, ctx.tenant.slug, "viewer", password)
        r = await viewer.get(f"/e/customer/{wang}")
        assert "110***********002X" in r.text and "reveal/" not in r.text
        assert "/edit" not in r.text
        r = await viewer.post(f"/e/customer/{wang}/reveal/resident_id",
                              headers={"X-CSRF-Token": token})
        assert r.status_code == 403 and "11010519491231002X" not in r.text
        assert (await viewer.get("/e/customer/new")).status_code == 403


async def test_form_errors_appear_next_to_the_field_in_the_users_language(
    client: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant(records=False)
    token = await sign_in(client, ctx.tenant.slug)
    bad = {**NEW, "resident_id": "110105194912310021", "annual_income": "1.005", "_csrf": token}
    r = await client.post("/e/customer/new", data=bad)
    assert r.status_code == 422
    assert field_error(r.text, "resident_id") == "身份证号校验位错误"
    assert field_error(r.text, "annual_income") == "年收入（元）最多两位小数（精确到分）"
    assert 'value="110105194912310021"' in r.text and 'value="郭晓东"' in r.text  # kept
    assert '<option value="individual" selected>' in r.text
    r = await client.post("/e/customer/new?lang=en", data=bad)
    assert field_error(r.text, "resident_id") == "Resident ID has a wrong check character"
    r = await client.post("/e/customer/new", data={"_csrf": token, "kind": "individual"})
    assert field_error(r.text, "name") == "名称为必填项"
    r = await client.post("/e/customer/new", data={"_csrf": token, "kind": "individual",
                                                   "name": "郭晓东"})
    assert field_error(r.text, "resident_id") == "身份证号为必填项"  # a cross-field rule
    r = await client.post("/e/customer/new", data={**NEW, "name": "长" * 201, "_csrf": token})
    assert r.status_code == 422 and field_error(r.text, "name") == "名称最多 200 个字符"
    assert await customer_ids(client) == []


async def test_create_then_edit_with_optimistic_locking(client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    token = await sign_in(client, ctx.tenant.slug)
    r = await client.post("/e/customer/new", data={**NEW, "wechat_id": "wx_guo",
                                                   "_csrf": token})
    assert r.status_code == 303
    url = r.headers["location"]
    r = await client.get(url)
    assert "郭晓东" in r.text and "186****2233" in r.text and "66,000.00" in r.text
    assert "wx_guo" in r.text  # a custom field
    r = await client.get(url + "/edit")
    assert r.status_code == 200 and 'name="version" value="1"' in r.text
    assert 'placeholder="110***********002X"' in r.text  # secrets are never prefilled
    edit = {"_csrf": token, "version": "1", "kind": "individual", "name": "郭晓东",
            "address": "太原市杏花岭区府西街 9 号", "annual_income": "66000.00",
            "region": "140107", "wechat_id": "wx_guo"}
    r = await client.post(url + "/edit", data=edit)
    assert r.status_code == 303 and r.headers["location"] == url
    r = await client.get(url)
    assert "府西街 9 号" in r.text and "110***********002X" in r.text  # the ID was kept
    assert "版本 2" in r.text
    r = await client.post(url + "/edit", data={**edit, "address": "别处"})  # stale version 1
    assert r.status_code == 409 and "记录已被他人修改，请刷新后重试" in r.text
    assert 'value="别处"' in r.text  # what the user typed is still there
    assert "府西街 9 号" in (await client.get(url)).text


async def test_script_in_text_fields_is_shown_as_text(client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    token = await sign_in(client, ctx.tenant.slug)
    evil = "<script>alert(1)</script>"
    r = await client.post("/e/customer/new", data={**NEW, "name": evil, "address": evil,
                                                   "_csrf": token})
    assert r.status_code == 303
    for page in (r.headers["location"], "/e/customer", "/"):
        text = (await client.get(page)).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and evil not in text


async def test_another_tenants_or_branchs_record_is_a_404_page(
    client: Any, new_tenant: Any
) -> None:
    a, b = await new_tenant(), await new_tenant()
    await sign_in(client, b.tenant.slug)
    b_ids = await customer_ids(client)
    assert len(b_ids) == 2
    async with other_client(client) as other:
        token = await sign_in(other, a.tenant.slug)
        for rid in b_ids:
            r = await other.get(f"/e/customer/{rid}")
            assert r.status_code == 404 and "页面或记录不存在" in r.text
            assert (await other.get(f"/e/customer/{rid}/edit")).status_code == 404
            r = await other.post(f"/e/customer/{rid}/edit", data={"_csrf": token, "name": "x"})
            assert r.status_code == 404
        assert (await other.get("/e/customer/not-a-uuid")).status_code == 404
        assert (await other.get("/e/no_such_entity")).status_code == 404
        a_ids = await customer_ids(other)
    # Inside one tenant: an officer (scope own) does not see the admin's customers.
    password = await make_user(a, "officer", ["customer.read"], scope="own")
    async with other_client(client) as officer:
        await sign_in(officer, a.tenant.slug, "officer", password)
        assert "共 0 条" in (await officer.get("/e/customer")).text
        r = await officer.get(f"/e/customer/{a_ids[0]}")
        assert r.status_code == 404 and "页面或记录不存在" in r.text


async def test_the_language_switch_remembers_the_choice(client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant()
    await sign_in(client, ctx.tenant.slug)
    r = await client.get("/lang/en?next=/e/customer")
    assert r.status_code == 303 and r.headers["location"] == "/e/customer"
    assert "xd_lang=en" in r.headers["set-cookie"]
    r = await client.get("/e/customer")
    assert '<html lang="en">' in r.text and "Customer type" in r.text and "Sign out" in r.text
    r = await client.get("/?lang=zh-CN")  # one page in another language, nothing remembered
    assert '<html lang="zh-CN">' in r.text and "退出" in r.text
    assert "set-cookie" not in r.headers
    assert '<html lang="en">' in (await client.get("/")).text
    r = await client.get("/lang/zh-CN?next=//evil.example")
    assert r.headers["location"] == "/"  # only local pages to go back to
    assert '<html lang="zh-CN">' in (await client.get("/")).text


async def test_password_change_checks_each_field_and_ends_other_sessions(
    client: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant(records=False)
    token = await sign_in(client, ctx.tenant.slug)
    async with other_client(client) as elsewhere:
        await sign_in(elsewhere, ctx.tenant.slug)
        url = "/account/password"
        r = await client.post(url, data={"_csrf": token, "current": "test-password-1",
                                         "new": "a-new-long-password", "repeat": "different"})
        assert r.status_code == 422
        assert field_error(r.text, "repeat") == "两次输入的新密码不一致。"
        r = await client.post(url, data={"_csrf": token, "current": "wrong-password",
                                         "new": "a-new-long-password",
                                         "repeat": "a-new-long-password"})
        assert field_error(r.text, "current") == "当前密码不正确"
        r = await client.post(url + "?lang=en", data={"_csrf": token,
                                                      "current": "test-password-1",
                                                      "new": "password", "repeat": "password"})
        assert field_error(r.text, "new") == \
            "this password is too common and easy to guess; choose another"
        r = await client.post(url, data={"_csrf": token, "current": "test-password-1",
                                         "new": "a-new-long-password",
                                         "repeat": "a-new-long-password"})
        assert r.status_code == 303
        r = await client.get(r.headers["location"])
        assert r.status_code == 200 and "密码已修改" in r.text  # this browser stays in
        assert (await elsewhere.get("/")).status_code == 303  # the other session ended
    async with other_client(client) as again:
        await sign_in(again, ctx.tenant.slug, password="a-new-long-password")


async def test_sign_in_with_totp_after_enrolling_in_the_ui(client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    token = await sign_in(client, ctx.tenant.slug)
    r = await client.get("/account/mfa")
    assert "设置双因素认证" in r.text
    r = await client.post("/account/mfa/start", data={"_csrf": token})
    assert r.status_code == 200 and "<svg" in r.text
    secret = re.search(r'data-secret="([A-Z2-7]+)"', r.text).group(1)
    totp = pyotp.TOTP(secret)
    r = await client.post("/account/mfa/confirm", data={"_csrf": token, "code": "000000",
                                                        "secret": secret})
    assert r.status_code == 422 and "验证码不正确或已使用" in r.text and "<svg" in r.text
    r = await client.post("/account/mfa/confirm", data={"_csrf": token, "code": totp.now(),
                                                        "secret": secret})
    assert r.status_code == 200
    codes = re.findall(r"<li><code>([0-9a-f]{8}-[0-9a-f]{8})</code></li>", r.text)
    assert len(codes) == 10
    await client.post("/logout", data={"_csrf": token})

    r = await client.get("/login")
    r = await client.post("/login", data={"_csrf": csrf_of(r.text), "tenant": ctx.tenant.slug,
                                          "username": "admin", "password": "test-password-1"})
    assert r.status_code == 303 and r.headers["location"] == "/mfa"
    assert (await client.get("/")).status_code == 303  # not signed in before the code
    r = await client.get("/login")
    assert r.status_code == 303 and r.headers["location"] == "/mfa"
    r = await client.get("/mfa")
    half_token = csrf_of(r.text)
    r = await client.post("/mfa", data={"_csrf": half_token, "code": "123456"})
    assert r.status_code == 401 and "验证码不正确或已使用" in r.text
    r = await client.post("/mfa", data={"code": totp.at(time.time() + 30)})
    assert r.status_code == 403  # CSRF applies to the half-signed-in session too
    r = await client.post("/mfa", data={"_csrf": half_token,
                                        "code": totp.at(time.time() + 30)})
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert (await client.get("/")).status_code == 200
    async with other_client(client) as other:  # a recovery code works once
        r = await other.get("/login")
        await other.post("/login", data={"_csrf": csrf_of(r.text), "tenant": ctx.tenant.slug,
                                         "username": "admin", "password": "test-password-1"})
        half = csrf_of((await other.get("/mfa")).text)
        r = await other.post("/mfa", data={"_csrf": half, "code": codes[0]})
        assert r.status_code == 303


async def test_a_tenant_can_require_totp_for_a_role(client: Any, new_tenant: Any) -> None:
    from core.tenancy import update_tenant

    ctx = await new_tenant(records=False)
    await update_tenant(ctx.tenant, settings={**ctx.tenant.settings,
                                              "mfa_required_roles": ["tenant_admin"]})
    r = await client.get("/login")
    r = await client.post("/login", data={"_csrf": csrf_of(r.text), "tenant": ctx.tenant.slug,
                                          "username": "admin", "password": "test-password-1"})
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa"
    for page in ("/", "/e/customer", "/admin/users"):
        r = await client.get(page)
        assert r.status_code == 303 and r.headers["location"] == "/account/mfa"
    r = await client.get("/account/mfa")
    assert r.status_code == 200 and "贵机构要求你的角色使用双因素认证" in r.text


async def test_the_sign_in_page_offers_single_sign_on_where_configured(
    client: Any, new_tenant: Any
) -> None:
    from core.tenancy import update_tenant

    ctx = await new_tenant(records=False)
    r = await client.get(f"/login?tenant={ctx.tenant.slug}")
    assert "/auth/oidc/" not in r.text
    await update_tenant(ctx.tenant, settings={**ctx.tenant.settings, "oidc": {
        "issuer": "https://idp.bank.example", "client_id": "xindai"}})
    r = await client.get(f"/login?tenant={ctx.tenant.slug}")
    assert f'href="/auth/oidc/{ctx.tenant.slug}/login"' in r.text and "统一身份认证" in r.text


async def test_expired_or_tampered_sessions_go_back_to_the_sign_in_page(
    client: Any, new_tenant: Any
) -> None:
    from datetime import timedelta

    from core.identity import now
    from core.tables import WebSession
    from core.tenancy import tenant_scope

    a, b = await new_tenant(records=False), await new_tenant(records=False)
    await sign_in(client, a.tenant.slug)
    cookie = client.cookies.get("xd_session")
    # The same secret presented as another tenant's session is unknown there.
    client.cookies.set("xd_session", cookie.replace(a.tenant_id.hex, b.tenant_id.hex))
    assert (await client.get("/")).status_code == 303
    client.cookies.set("xd_session", cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"))
    assert (await client.get("/")).status_code == 303
    client.cookies.set("xd_session", cookie)
    assert (await client.get("/")).status_code == 200
    async with tenant_scope(a):  # 31 minutes without a request: past the idle timeout
        await WebSession.update({WebSession.last_seen_at: now() - timedelta(minutes=31)}) \
            .where(WebSession.tenant_id == a.tenant_id).run()
    r = await client.get("/e/customer")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
