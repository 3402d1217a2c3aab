"""Who is calling: the bearer token becomes a `Context`, resolved once per request."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler

from core.errors import NotFound, Unauthenticated
from core.i18n import normalise_locale, pick_locale
from core.identity import authenticate
from core.tenancy import Context

_STATE_KEY = "xindai_ctx"


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
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated()
    ctx = await authenticate(token.strip(), request_locale(connection))
    if not (connection.query_params.get("lang") or connection.headers.get("accept-language")):
        from dataclasses import replace

        ctx = replace(ctx, locale=ctx.tenant.locale)
    connection.scope.setdefault("state", {})[_STATE_KEY] = ctx
    return ctx


async def provide_ctx(request: Request[Any, Any, Any]) -> Context:
    """Litestar dependency `ctx`."""
    return await current_context(request)


CurrentContext = NamedDependency[Context]
"""Annotate a handler parameter `ctx: CurrentContext` to receive the caller's Context."""


def plugin_guard(plugin: str) -> Any:
    """A guard making a plugin's routes answer 404 for tenants that have not enabled it."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        ctx = await current_context(connection)
        if not ctx.tenant.enabled(plugin):
            raise NotFound()

    return guard
