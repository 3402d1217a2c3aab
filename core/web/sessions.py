"""Browser sessions: an HttpOnly cookie holding a random token; the server keeps its SHA-256.

- The cookie is `SameSite=Lax`, `HttpOnly`, and `Secure` when the request came over TLS.
- Signing in creates a new session (the id rotates on every sign-in and after MFA).
- Idle timeout (tenant setting `session_idle_minutes`, default 30) and absolute timeout
  (`session_hours`, default 12); disabling a user or changing a password revokes every
  session server-side (core.identity.revoke_credentials).
- Each session has its own CSRF secret; forms and htmx requests must echo it.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from litestar.connection import ASGIConnection

from core.errors import Unauthenticated, XindaiError
from core.identity import digest, now, tenant_of_token, user_context
from core.tables import User, WebSession
from core.tenancy import Context, TenantInfo, get_tenant_by_id, tenant_scope

COOKIE = "xd_session"
PREFIX = "xd_"
TOUCH_EVERY = timedelta(minutes=1)


def _bounded(value: Any, default: int, low: int, high: int) -> int:
    """A tenant's timeout setting, kept sane: a bad value falls back to the default."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if low <= number <= high else default


def idle_limit(tenant: TenantInfo) -> timedelta:
    return timedelta(minutes=_bounded(tenant.settings.get("session_idle_minutes"), 30, 1, 1440))


def absolute_limit(tenant: TenantInfo) -> timedelta:
    return timedelta(hours=_bounded(tenant.settings.get("session_hours"), 12, 1, 168))


async def start_session(ctx: Context, user: dict[str, Any], mfa_passed: bool) -> str:
    """A new session for `user`; returns the cookie value (shown to nobody else)."""
    token = f"{PREFIX}{ctx.tenant_id.hex}_{secrets.token_urlsafe(32)}"
    async with tenant_scope(ctx):
        await WebSession.insert(WebSession(
            tenant_id=ctx.tenant_id, user_id=user["id"], digest=digest(token),
            csrf=secrets.token_urlsafe(24), mfa_passed=mfa_passed,
            expires_at=now() + absolute_limit(ctx.tenant), ip=ctx.ip,
            user_agent=(ctx.user_agent or "")[:300] or None,
        )).run()
    return token


async def session_row(token: str) -> tuple[TenantInfo, dict[str, Any]] | None:
    """The live session for a cookie value, or None (expired, idle, revoked, unknown)."""
    tenant_id = tenant_of_token(token)
    if tenant_id is None:
        return None
    try:
        tenant = await get_tenant_by_id(tenant_id)
    except XindaiError:
        return None
    if tenant.status != "active":
        return None
    ctx = Context.system(tenant)
    async with tenant_scope(ctx, write=False):
        rows = await WebSession.select().where(
            WebSession.tenant_id == tenant.id, WebSession.digest == digest(token),
            WebSession.revoked_at.is_null(), WebSession.expires_at > now(),
        ).run()
    if not rows or rows[0]["last_seen_at"] + idle_limit(tenant) < now():
        return None
    row = rows[0]
    if row["last_seen_at"] + TOUCH_EVERY < now():
        async with tenant_scope(ctx):
            await WebSession.update({WebSession.last_seen_at: now()}).where(
                WebSession.tenant_id == tenant.id, WebSession.id == row["id"]).run()
    return tenant, row


async def end_session(token: str) -> None:
    found = await session_row(token)
    if found is None:
        return
    tenant, row = found
    async with tenant_scope(Context.system(tenant)):
        await WebSession.update({WebSession.revoked_at: now()}).where(
            WebSession.tenant_id == tenant.id, WebSession.id == row["id"]).run()


async def mark_mfa_passed(tenant: TenantInfo, row: dict[str, Any], ctx: Context,
                          user: dict[str, Any]) -> str:
    """After the second factor: end the half-signed-in session and start a full one."""
    async with tenant_scope(Context.system(tenant)):
        await WebSession.update({WebSession.revoked_at: now()}).where(
            WebSession.tenant_id == tenant.id, WebSession.id == row["id"]).run()
    return await start_session(ctx, user, mfa_passed=True)


async def session_user(tenant: TenantInfo, row: dict[str, Any]) -> dict[str, Any] | None:
    async with tenant_scope(Context.system(tenant), write=False):
        users = await User.select().where(User.tenant_id == tenant.id,
                                          User.id == row["user_id"], User.active.eq(True)) \
            .output(load_json=True).run()
    return users[0] if users else None


async def context_from_session(connection: ASGIConnection[Any, Any, Any, Any],
                               need_mfa: bool = True) -> Context:
    """The signed-in user's Context from the session cookie (second factor passed)."""
    from core.web.context import client_ip, request_locale, user_agent

    token = connection.cookies.get(COOKIE)
    found = await session_row(token) if token else None
    if found is None:
        raise Unauthenticated()
    tenant, row = found
    user = await session_user(tenant, row)
    if user is None or (need_mfa and user["totp_enabled"] and not row["mfa_passed"]):
        raise Unauthenticated()
    locale = request_locale(connection, connection.cookies.get("xd_lang") or tenant.locale)
    ctx = await user_context(tenant, user, locale, ip=client_ip(connection),
                             user_agent=user_agent(connection))
    state = connection.scope.setdefault("state", {})
    state["xindai_session"] = row
    state["xindai_totp_enabled"] = bool(user["totp_enabled"])
    return ctx


def csrf_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    row = connection.scope.get("state", {}).get("xindai_session")
    return row["csrf"] if row else None


def cookie_kwargs(connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
    secure = connection.url.scheme == "https" or \
        connection.headers.get("x-forwarded-proto") == "https"
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": "/"}
