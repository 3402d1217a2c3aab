"""Identity: passwords, lockout, TOTP, integration tokens, sessions and their revocation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyotp
import pytest

from core import identity
from core.errors import Forbidden, Unauthenticated, XindaiError
from core.tables import ApiToken, AuthEvent, User, WebSession
from core.tenancy import Context, tenant_scope
from tests.conftest import as_user, login


async def events(tenant: Any, username: str) -> list[str]:
    async with tenant_scope(Context.system(tenant), write=False):
        rows = await AuthEvent.select(AuthEvent.kind).where(
            AuthEvent.tenant_id == tenant.id, AuthEvent.username == username
        ).order_by(AuthEvent.created_at).run()
    return [r["kind"] for r in rows]


def test_password_rules() -> None:
    for bad in ("short", "x" * 129, "password123", "qwertyuiop", "Iloveyou1"):
        with pytest.raises(XindaiError):
            identity.hash_password(bad)
    stored = identity.hash_password("晋商票号 1823 日升昌")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert identity.verify_password(stored, "晋商票号 1823 日升昌")
    assert not identity.verify_password(stored, "晋商票号 1823 日升昌 ")


async def test_lockout_after_five_failures_and_every_failure_recorded(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    slug = ctx.tenant.slug
    for _ in range(4):
        with pytest.raises(Unauthenticated) as info:
            await identity.check_password_login(slug, "admin", "wrong-password")
        assert info.value.code == "bad_credentials"
    with pytest.raises(Unauthenticated) as info:
        await identity.check_password_login(slug, "admin", "wrong-password")
    assert info.value.code == "account_locked"
    with pytest.raises(Unauthenticated) as info:  # the right password does not help now
        await identity.check_password_login(slug, "admin", "test-password-1")
    assert info.value.code == "account_locked"
    assert await events(ctx.tenant, "admin") == ["login_failed"] * 4 + ["account_locked",
                                                                          "login_locked"]
    async with tenant_scope(ctx):  # time passes
        await User.update({User.locked_until: identity.now() - timedelta(seconds=1)}).where(
            User.tenant_id == ctx.tenant_id).run()
    tenant, user = await identity.check_password_login(slug, "admin", "test-password-1")
    assert user["username"] == "admin"
    with pytest.raises(Unauthenticated):
        await identity.check_password_login(slug, "nobody", "whatever-pass")
    assert (await events(ctx.tenant, "nobody")) == ["login_failed"]


async def test_api_login_is_rate_limited(client: Any, new_tenant: Any, monkeypatch: Any
                                         ) -> None:
    import core.ratelimit

    ctx = await new_tenant(records=False)
    from types import SimpleNamespace

    frozen = core.ratelimit.time.monotonic()
    monkeypatch.setattr(core.ratelimit, "time", SimpleNamespace(monotonic=lambda: frozen))
    codes = []
    for _ in range(22):
        r = await client.post("/api/v1/auth/login", json={
            "tenant": ctx.tenant.slug, "username": "ghost", "password": "nope-nope"})
        codes.append(r.status_code)
    assert codes[:20] == [401] * 20 and codes[20:] == [429, 429]


async def test_totp_enrolment_single_use_codes_and_recovery(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    admin = await as_user(ctx.tenant, "admin")
    secret, uri = await identity.start_totp_enrolment(admin)
    assert uri.startswith("otpauth://totp/") and secret in uri
    with pytest.raises(XindaiError):
        await identity.confirm_totp_enrolment(admin, "000000")
    totp = pyotp.TOTP(secret)
    first = totp.now()  # the same code below: a 30 s step may end between the two calls
    codes = await identity.confirm_totp_enrolment(admin, first)
    assert len(codes) == 10 and len(set(codes)) == 10
    async with tenant_scope(ctx):
        stored = (await User.select(User.totp_secret).where(
            User.tenant_id == ctx.tenant_id, User.username == "admin").run())[0]["totp_secret"]
    assert secret not in stored  # sealed with the tenant's key
    assert not await identity.verify_second_factor(admin, first)  # already used
    step = int(identity.now().timestamp()) // 30
    assert await identity.verify_second_factor(admin, totp.generate_otp(step + 1))
    assert not await identity.verify_second_factor(admin, totp.generate_otp(step + 1))
    assert await identity.verify_second_factor(admin, codes[0])
    assert not await identity.verify_second_factor(admin, codes[0])  # recovery codes too
    with pytest.raises(Unauthenticated) as info:  # password-only API sign-in is refused
        await identity.login(ctx.tenant.slug, "admin", "test-password-1", "zh-CN")
    assert info.value.code == "mfa_use_web"


async def test_integration_tokens_are_scoped_expiring_revocable(client: Any, demo: Any) -> None:
    tenant, passwords = demo
    h = await login(client, tenant.slug, "officer", passwords["officer"])
    r = await client.post("/api/v1/tokens", headers=h,
                          json={"name": "报表同步", "scopes": ["customer.read"], "days": 30})
    assert r.status_code == 201, r.text
    token, token_id = r.json()["token"], r.json()["id"]
    listed = (await client.get("/api/v1/tokens", headers=h)).json()
    assert [t["name"] for t in listed] == ["报表同步"] and "token" not in listed[0]
    th = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/customers", headers=th)).status_code == 200
    r = await client.post("/api/v1/customers", headers=th, json={"kind": "company"})
    assert r.status_code == 403  # the token cannot create, although its user can
    r = await client.post("/api/v1/tokens", headers=h,
                          json={"name": "越权", "scopes": ["customer.delete"], "days": 30})
    assert r.status_code == 403
    r = await client.post("/api/v1/tokens", headers=h,
                          json={"name": "太久", "scopes": ["customer.read"], "days": 999})
    assert r.status_code == 400
    async with tenant_scope(Context.system(tenant), write=False):
        stored = await ApiToken.select(ApiToken.digest).where(
            ApiToken.tenant_id == tenant.id, ApiToken.name == "报表同步").run()
    assert stored[0]["digest"] == identity.digest(token) and token not in str(stored)
    assert (await client.delete(f"/api/v1/tokens/{token_id}", headers=h)).status_code == 204
    assert (await client.get("/api/v1/customers", headers=th)).status_code == 401


async def test_a_token_of_another_tenant_is_refused(client: Any, new_tenant: Any) -> None:
    a, b = await new_tenant(records=False), await new_tenant(records=False)
    token = (await login(client, a.tenant.slug))["Authorization"].split()[1]
    forged = token.replace(a.tenant_id.hex, b.tenant_id.hex)
    r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


async def test_password_change_and_disabling_end_sessions_and_tokens(new_tenant: Any) -> None:
    from core.web.sessions import session_row, start_session

    ctx = await new_tenant(records=False)
    tenant, user = await identity.check_password_login(ctx.tenant.slug, "admin",
                                                       "test-password-1")
    admin = await as_user(tenant, "admin")
    cookie = await start_session(admin, user, mfa_passed=True)
    token, _ = await identity.login(tenant.slug, "admin", "test-password-1", "zh-CN")
    assert await session_row(cookie) is not None
    with pytest.raises(Forbidden):
        await identity.change_password(admin, "not-the-password", "晋祠 难老泉 2026")
    await identity.change_password(admin, "test-password-1", "晋祠 难老泉 2026")
    assert await session_row(cookie) is None
    with pytest.raises(Unauthenticated):
        await identity.authenticate(token, "zh-CN")
    token2, _ = await identity.login(tenant.slug, "admin", "晋祠 难老泉 2026", "zh-CN")
    await identity.set_user_active(admin, user["id"], False)
    with pytest.raises(Unauthenticated):
        await identity.authenticate(token2, "zh-CN")
    with pytest.raises(Unauthenticated):
        await identity.check_password_login(tenant.slug, "admin", "晋祠 难老泉 2026")


async def test_sessions_expire_when_idle_and_absolutely(new_tenant: Any) -> None:
    from core.web.sessions import session_row, start_session

    ctx = await new_tenant(records=False)
    tenant, user = await identity.check_password_login(ctx.tenant.slug, "admin",
                                                       "test-password-1")
    admin = await as_user(tenant, "admin")
    idle = await start_session(admin, user, mfa_passed=True)
    old = await start_session(admin, user, mfa_passed=True)
    async with tenant_scope(ctx):
        await WebSession.update({WebSession.last_seen_at: identity.now() - timedelta(hours=1)}) \
            .where(WebSession.digest == identity.digest(idle)).run()
        await WebSession.update({WebSession.expires_at: identity.now() - timedelta(seconds=1)}) \
            .where(WebSession.digest == identity.digest(old)).run()
    assert await session_row(idle) is None and await session_row(old) is None


async def test_mandatory_mfa_for_chosen_roles_blocks_password_only_api_login(
    new_tenant: Any
) -> None:
    from core.tenancy import update_tenant

    ctx = await new_tenant(records=False)
    await identity.login(ctx.tenant.slug, "admin", "test-password-1", "zh-CN")
    await update_tenant(ctx.tenant, settings={"mfa_required_roles": ["tenant_admin"]})
    with pytest.raises(Unauthenticated) as info:
        await identity.login(ctx.tenant.slug, "admin", "test-password-1", "zh-CN")
    assert info.value.code == "mfa_use_web"


async def test_an_administrator_resets_a_lost_second_factor(new_tenant: Any) -> None:
    from core.web.sessions import session_row, start_session

    ctx = await new_tenant(records=False)
    admin = await as_user(ctx.tenant, "admin")
    secret, _ = await identity.start_totp_enrolment(admin)
    await identity.confirm_totp_enrolment(admin, pyotp.TOTP(secret).now())
    with pytest.raises(identity.Conflict):  # enrolling again cannot silently replace it
        await identity.start_totp_enrolment(admin)
    _, user = await identity.check_password_login(ctx.tenant.slug, "admin", "test-password-1")
    cookie = await start_session(admin, user, mfa_passed=True)
    with pytest.raises(Forbidden):  # not one's own: that is what a second factor prevents
        await identity.reset_totp(admin, user["id"])
    await identity.create_user(ctx, "admin2", "另一位管理员", "晋阳湖 南岸 2026",
                               ["tenant_admin"])
    await identity.reset_totp(await as_user(ctx.tenant, "admin2"), user["id"])
    assert await session_row(cookie) is None
    assert not (await identity.get_user(admin, user["id"]))["totp_enabled"]
    assert "mfa_reset" in await events(ctx.tenant, "admin")


async def test_lockout_does_not_tell_real_names_from_unknown_ones(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    answers = {}
    for name in ("admin", "nobody-here"):
        codes = []
        for _ in range(6):
            with pytest.raises(Unauthenticated) as info:
                await identity.check_password_login(ctx.tenant.slug, name, "wrong-password")
            codes.append(info.value.code)
        answers[name] = codes
    assert answers["admin"] == answers["nobody-here"] == ["bad_credentials"] * 4 + [
        "account_locked"] * 2


async def test_wrong_second_factor_codes_lock_the_account(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    admin = await as_user(ctx.tenant, "admin")
    secret, _ = await identity.start_totp_enrolment(admin)
    await identity.confirm_totp_enrolment(admin, pyotp.TOTP(secret).now())
    for _ in range(5):
        assert not await identity.verify_second_factor(admin, "000000")
    step = int(identity.now().timestamp()) // 30
    assert not await identity.verify_second_factor(  # even a right code, while locked
        admin, pyotp.TOTP(secret).generate_otp(step + 1))
    with pytest.raises(Unauthenticated) as info:
        await identity.check_password_login(ctx.tenant.slug, "admin", "test-password-1")
    assert info.value.code == "account_locked"


async def test_the_api_changes_state_only_with_bearer_tokens(client: Any, new_tenant: Any
                                                             ) -> None:
    """A browser session cookie reads the API but cannot write through it (no CSRF there)."""
    from core.web.sessions import COOKIE, start_session

    ctx = await new_tenant(records=False)
    _, user = await identity.check_password_login(ctx.tenant.slug, "admin", "test-password-1")
    cookie = await start_session(await as_user(ctx.tenant, "admin"), user, mfa_passed=True)
    client.cookies.set(COOKIE, cookie)
    try:
        assert (await client.get("/api/v1/me")).status_code == 200
        r = await client.post("/api/v1/tokens",
                              json={"name": "x", "scopes": ["customer.read"], "days": 1})
        assert r.status_code == 401
    finally:
        client.cookies.clear()


async def test_the_platform_slug_is_reserved(kernel: Any) -> None:
    from core.packs import PackError, apply_pack, load_pack
    from tests.conftest import SMALL_PACK

    with pytest.raises(PackError) as info:
        await apply_pack(load_pack(SMALL_PACK), slug=kernel.settings.platform_tenant)
    assert "reserved" in str(info.value)


async def test_parallel_guesses_all_count_towards_the_lockout(new_tenant: Any) -> None:
    import asyncio

    ctx = await new_tenant(records=False)

    async def guess() -> str:
        try:
            await identity.check_password_login(ctx.tenant.slug, "admin", "wrong-password")
        except Unauthenticated as exc:
            return exc.code
        return "ok"

    await asyncio.gather(*(guess() for _ in range(8)))
    with pytest.raises(Unauthenticated) as info:
        await identity.check_password_login(ctx.tenant.slug, "admin", "test-password-1")
    assert info.value.code == "account_locked"


async def test_an_unenrolled_user_of_a_mfa_role_cannot_read_the_api_with_a_cookie(
    client: Any, new_tenant: Any
) -> None:
    from core.tenancy import update_tenant
    from core.web.sessions import COOKIE, start_session

    ctx = await new_tenant(records=False)
    tenant = await update_tenant(ctx.tenant, settings={"mfa_required_roles": ["tenant_admin"]})
    _, user = await identity.check_password_login(tenant.slug, "admin", "test-password-1")
    cookie = await start_session(await as_user(tenant, "admin"), user, mfa_passed=True)
    client.cookies.set(COOKIE, cookie)
    try:
        assert (await client.get("/api/v1/customers")).status_code == 401
    finally:
        client.cookies.clear()
