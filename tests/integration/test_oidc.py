"""OIDC sign-in through a real local OpenID Connect provider (tests/fixtures/oidc_provider.py).

The app runs in-process (httpx ASGITransport, host `testserver`); the provider listens on
127.0.0.1 in a thread. A test plays the browser: it asks the app for the login redirect,
follows it to the provider over real HTTP, and brings the provider's answer back to the
app's callback, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey

from core.tables import AuthEvent, User, WebSession
from core.tenancy import Context, tenant_scope, update_tenant
from tests.fixtures.oidc_provider import Provider, running_provider

CLIENT_ID = "xindai-test"
SECRET = "provider+issued/client=secret"  # form-encoded for client_secret_basic
CALLBACK = "http://testserver/auth/oidc/callback"
ADMIN = {"sub": "idp-7f3a-0001", "preferred_username": "admin", "name": "管理员",
         "email": "admin@bank.example"}


@pytest.fixture
def oidc_provider() -> Iterator[Provider]:
    from core.oidc import forget_cached_providers

    with running_provider(CLIENT_ID, SECRET, [CALLBACK], dict(ADMIN)) as provider:
        yield provider
    forget_cached_providers()


async def configure(ctx: Context, provider: Provider, monkeypatch: pytest.MonkeyPatch,
                    **extra: Any) -> Context:
    env = f"XINDAI_TEST_OIDC_SECRET_{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.setenv(env, SECRET)
    oidc = {"issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret_env": env,
            "username_claim": "preferred_username", "scopes": "openid profile email",
            **extra}
    tenant = await update_tenant(ctx.tenant, settings={**ctx.tenant.settings, "oidc": oidc})
    return Context.system(tenant)


@pytest.fixture
async def tenant(new_tenant: Any, oidc_provider: Provider,
                 monkeypatch: pytest.MonkeyPatch) -> Context:
    return await configure(await new_tenant(records=False), oidc_provider, monkeypatch)


async def to_provider_and_back(client: httpx.AsyncClient, slug: str,
                               provider: Provider, **headers: str) -> str:
    """The browser's first two legs: the app's redirect, then the provider's answer."""
    r = await client.get(f"/auth/oidc/{slug}/login", headers=headers)
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    assert location.startswith(f"{provider.issuer}/authorize?")
    query = httpx.URL(location).params
    assert query["code_challenge_method"] == "S256" and query["nonce"] and query["state"]
    assert "xd_oidc" in r.headers["set-cookie"] and "httponly" in r.headers["set-cookie"].lower()
    async with httpx.AsyncClient(timeout=10) as browser:  # real HTTP to the provider
        back = await browser.get(location)
    assert back.status_code == 302, back.text
    assert back.headers["location"].startswith(CALLBACK + "?")
    return back.headers["location"]


async def sign_in(client: httpx.AsyncClient, slug: str, provider: Provider,
                  **headers: str) -> httpx.Response:
    back = await to_provider_and_back(client, slug, provider, **headers)
    return await client.get(back, headers=headers)


async def events(ctx: Context, kind: str) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        return await AuthEvent.select().where(AuthEvent.tenant_id == ctx.tenant_id,
                                              AuthEvent.kind == kind) \
            .output(load_json=True).run()


async def admin_row(ctx: Context) -> dict[str, Any]:
    async with tenant_scope(ctx, write=False):
        rows = await User.select().where(User.tenant_id == ctx.tenant_id,
                                         User.username == "admin").run()
    return rows[0]


def refused(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.text
    assert "xd_session=" not in r.headers.get("set-cookie", "")


# --- the whole flow -----------------------------------------------------------------------

async def test_sign_in_through_the_provider(client: httpx.AsyncClient, tenant: Context,
                                            oidc_provider: Provider) -> None:
    r = await sign_in(client, tenant.tenant.slug, oidc_provider)
    assert r.status_code == 302, r.text
    assert r.headers["location"] == "/"
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("xd_session="))
    assert "httponly" in session.lower() and "samesite=lax" in session.lower()
    assert any(c.startswith("xd_oidc=") and "max-age=0" in c.lower() for c in cookies)

    me = await client.get("/api/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "admin"
    assert me.json()["tenant"]["slug"] == tenant.tenant.slug

    assert (await admin_row(tenant))["oidc_subject"] == ADMIN["sub"]
    ok = await events(tenant, "login_ok")
    assert [e["detail"]["channel"] for e in ok] == ["oidc"]
    async with tenant_scope(tenant, write=False):
        sessions = await WebSession.select().where(WebSession.tenant_id == tenant.tenant_id).run()
    assert [s["mfa_passed"] for s in sessions] == [True]  # the bank's IdP did the MFA

    # Matched by subject from now on: a rename at the provider keeps the account.
    oidc_provider.user = {**ADMIN, "preferred_username": "renamed-at-the-bank"}
    client.cookies.clear()
    r = await sign_in(client, tenant.tenant.slug, oidc_provider)
    assert r.status_code == 302, r.text
    assert (await client.get("/api/v1/me")).json()["username"] == "admin"
    assert len(await events(tenant, "oidc_linked")) == 1
    assert len(await events(tenant, "login_ok")) == 2


async def test_mfa_not_trusted(client: httpx.AsyncClient, new_tenant: Any,
                               oidc_provider: Provider, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = await configure(await new_tenant(records=False), oidc_provider, monkeypatch,
                          mfa_trusted=False)
    r = await sign_in(client, ctx.tenant.slug, oidc_provider)
    assert r.status_code == 302, r.text
    async with tenant_scope(ctx, write=False):
        sessions = await WebSession.select().where(WebSession.tenant_id == ctx.tenant_id).run()
    assert [s["mfa_passed"] for s in sessions] == [False]


async def test_client_secret_post(client: httpx.AsyncClient, new_tenant: Any,
                                  oidc_provider: Provider,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = await configure(await new_tenant(records=False), oidc_provider, monkeypatch,
                          token_auth_method="client_secret_post")
    r = await sign_in(client, ctx.tenant.slug, oidc_provider)
    assert r.status_code == 302, r.text
    assert (await client.get("/api/v1/me")).json()["username"] == "admin"


# --- refusals -----------------------------------------------------------------------------

async def test_tampered_state_is_refused(client: httpx.AsyncClient, tenant: Context,
                                         oidc_provider: Provider) -> None:
    slug = tenant.tenant.slug
    back = httpx.URL(await to_provider_and_back(client, slug, oidc_provider))
    forged = back.copy_set_param("state", back.params["state"][:-2] + "xx")
    refused(await client.get(str(forged)), 400, "oidc_state")
    # The refusal dropped the pending-sign-in cookie; a new attempt, with a non-ASCII state.
    back = httpx.URL(await to_provider_and_back(client, slug, oidc_provider))
    refused(await client.get(str(back.copy_set_param("state", "伪造的状态"))), 400, "oidc_state")
    failures = await events(tenant, "login_failed")
    assert [f["detail"]["reason"] for f in failures] == ["oidc_state_mismatch"] * 2

    # An altered pending-sign-in cookie does not decrypt; a missing one is refused too.
    back = httpx.URL(await to_provider_and_back(client, slug, oidc_provider))
    sealed = client.cookies["xd_oidc"]
    client.cookies.clear()
    client.cookies.set("xd_oidc", sealed[:-4] + ("AAAA" if sealed[-4:] != "AAAA" else "BBBB"),
                       domain="testserver.local", path="/auth/oidc")
    assert len(client.cookies.jar) == 1
    refused(await client.get(str(back)), 400, "oidc_state")
    client.cookies.clear()
    refused(await client.get(str(back)), 400, "oidc_state")
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_unknown_user_is_refused_and_recorded(client: httpx.AsyncClient,
                                                    tenant: Context,
                                                    oidc_provider: Provider) -> None:
    oidc_provider.user = {"sub": "idp-7f3a-9999", "preferred_username": "stranger",
                          "name": "陌生人"}
    r = await sign_in(client, tenant.tenant.slug, oidc_provider)
    refused(r, 401, "oidc_unknown_user")
    assert "尚未在本系统开通" in r.json()["title"]  # zh-CN by default
    [failure] = await events(tenant, "login_failed")
    assert failure["username"] == "stranger"
    assert failure["detail"]["reason"] == "oidc_unknown_user"
    assert failure["detail"]["channel"] == "oidc"
    assert (await admin_row(tenant))["oidc_subject"] is None  # nobody was bound or created
    async with tenant_scope(tenant, write=False):
        assert not await User.exists().where(User.tenant_id == tenant.tenant_id,
                                             User.username == "stranger").run()

    # The same refusal, in English, as a page for a browser.
    r = await sign_in(client, tenant.tenant.slug, oidc_provider,
                      **{"accept-language": "en", "accept": "text/html"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("text/html")
    assert "has not been set up in this system" in r.text


@pytest.mark.parametrize("overrides", [
    {"aud": ["another-client"]},
    {"nonce": "not-the-nonce-we-sent"},
    {"iss": "http://127.0.0.1:1/other-issuer"},
    {"exp": int(datetime(2020, 1, 1, tzinfo=UTC).timestamp())},
], ids=["wrong-audience", "wrong-nonce", "wrong-issuer", "expired"])
async def test_bad_id_token_is_refused(client: httpx.AsyncClient, tenant: Context,
                                       oidc_provider: Provider,
                                       overrides: dict[str, Any]) -> None:
    oidc_provider.id_token_overrides = overrides
    refused(await sign_in(client, tenant.tenant.slug, oidc_provider), 401, "oidc_token_invalid")
    [failure] = await events(tenant, "login_failed")
    assert failure["detail"]["reason"] == "oidc_token_invalid"
    assert (await admin_row(tenant))["oidc_subject"] is None
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_forged_signature_is_refused(client: httpx.AsyncClient, tenant: Context,
                                           oidc_provider: Provider) -> None:
    oidc_provider.rogue_key = RSAKey.generate_key(2048, parameters={"kid": oidc_provider.kid})
    refused(await sign_in(client, tenant.tenant.slug, oidc_provider), 401, "oidc_token_invalid")


async def test_provider_refusal(client: httpx.AsyncClient, tenant: Context,
                                oidc_provider: Provider) -> None:
    oidc_provider.deny = True
    r = await sign_in(client, tenant.tenant.slug, oidc_provider, **{"accept-language": "en"})
    refused(r, 401, "oidc_provider_error")
    assert r.json()["title"].startswith("The identity provider refused")
    [failure] = await events(tenant, "login_failed")
    assert failure["detail"]["error"] == "access_denied"


async def test_disabled_user_is_refused(client: httpx.AsyncClient, tenant: Context,
                                        oidc_provider: Provider) -> None:
    from core.identity import set_user_active

    await set_user_active(tenant, (await admin_row(tenant))["id"], False)
    refused(await sign_in(client, tenant.tenant.slug, oidc_provider), 401, "oidc_user_inactive")


async def test_tenant_without_oidc(client: httpx.AsyncClient, new_tenant: Any,
                                   oidc_provider: Provider,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    plain = await new_tenant(records=False)
    refused(await client.get(f"/auth/oidc/{plain.tenant.slug}/login"), 400,
            "oidc_not_configured")
    refused(await client.get("/auth/oidc/no-such-tenant/login"), 400, "oidc_not_configured")
    # Configured, but the secret's environment variable is not set in this process.
    ctx = await configure(plain, oidc_provider, monkeypatch)
    monkeypatch.delenv(ctx.tenant.settings["oidc"]["client_secret_env"])
    refused(await client.get(f"/auth/oidc/{ctx.tenant.slug}/login"), 400, "oidc_misconfigured")
