"""Who is calling: the bearer token becomes a `Context`, resolved once per request."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler

from core.errors import NotFound, Unauthenticated
from core.i18n import normalise_locale, pick_locale
from core.identity import authenticate
from core.tenancy import Context

_STATE_KEY = "xindai_ctx"
BAD_TOKEN_LIMIT_PER_MINUTE = 30


def request_locale(connection: ASGIConnection[Any, Any, Any, Any],
                   default: str | None = None) -> str:
    """`?lang=en` wins, then Accept-Language, then the signed-in tenant's locale, then zh-CN."""
    lang = connection.query_params.get("lang")
    if lang:
        return normalise_locale(lang)
    if default is None:
        ctx = connection.scope.get("state", {}).get(_STATE_KEY)
        default = ctx.tenant.locale if ctx is not None else "zh-CN"
    return pick_locale(connection.headers.get("accept-language"), default)


async def current_context(connection: ASGIConnection[Any, Any, Any, Any]) -> Context:
    """The authenticated context of this request (cached on the connection)."""
    cached = connection.scope.get("state", {}).get(_STATE_KEY)
    if cached is not None:
        return cached
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        from core.ratelimit import check, hit

        check("bad_token", client_ip(connection) or "-", BAD_TOKEN_LIMIT_PER_MINUTE)
        try:
            ctx = await authenticate(token.strip(), request_locale(connection),
                                     client_ip(connection), user_agent(connection))
        except Unauthenticated:
            structlog.get_logger("xindai.auth").warning("bad_token", ip=client_ip(connection))
            hit("bad_token", client_ip(connection) or "-", BAD_TOKEN_LIMIT_PER_MINUTE)
            raise
    else:
        from core.identity import mfa_required
        from core.web.sessions import context_from_session

        if connection.url.path.startswith("/api/") and \
                connection.scope.get("method", "GET") not in ("GET", "HEAD"):
            raise Unauthenticated()  # the API changes state only with a bearer token: no CSRF
        ctx = await context_from_session(connection)
        if connection.url.path.startswith("/api/") and mfa_required(ctx) and \
                not connection.scope["state"].get("xindai_totp_enabled"):
            raise Unauthenticated()  # a role that must use two factors has not enrolled yet
    from dataclasses import replace

    if not (connection.query_params.get("lang") or connection.headers.get("accept-language")):
        ctx = replace(ctx, locale=ctx.tenant.locale)
    ctx = replace(ctx, request_id=connection.scope.get("state", {}).get("request_id"))
    connection.scope.setdefault("state", {})[_STATE_KEY] = ctx
    return ctx


def client_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    return connection.client.host if connection.client else None


def user_agent(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    return (connection.headers.get("user-agent") or "")[:300] or None


async def access_guard(connection: ASGIConnection[Any, Any, Any, Any],
                       handler: BaseRouteHandler) -> None:
    """The one route guard: a handler is `public`, needs only a signed-in user
    (`authenticated`), or names its `permission` (or a tuple of permissions, all needed).
    A handler that declares none of these is
    refused, so an endpoint cannot forget its check."""
    opt = handler.opt
    if opt.get("public"):
        return
    ctx = await current_context(connection)
    permission = opt.get("permission")
    if permission:
        from core.access import require

        for needed in (permission,) if isinstance(permission, str) else permission:
            require(ctx, needed)  # a tuple: every one of them
    elif not opt.get("authenticated"):
        from core.errors import Forbidden

        raise Forbidden("forbidden_action", permission="?")


async def provide_ctx(request: Request[Any, Any, Any]) -> Context:
    """Litestar dependency `ctx`."""
    return await current_context(request)


CurrentContext = NamedDependency[Context]
"""Annotate a handler parameter `ctx: CurrentContext` to receive the caller's Context."""


def plugin_guard(plugin: str) -> Any:
    """A guard making a plugin's routes answer 404 for tenants that have not enabled it.

    A public route (a provider's callback, a signed link) has no signed-in tenant: it names
    its tenant itself and must check `tenant.enabled(plugin)` before acting."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any],
                    handler: BaseRouteHandler) -> None:
        if handler.opt.get("public"):
            return
        ctx = await current_context(connection)
        if not ctx.tenant.enabled(plugin):
            raise NotFound()

    return guard
