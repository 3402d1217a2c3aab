"""Tenants and the tenant-scoped transaction every piece of tenant work runs in.

`tenant_scope(ctx)` opens one database transaction and, on PostgreSQL, sets
`app.tenant_id` transaction-locally (`set_config(..., true)`), so row-level security
applies to every query inside it and nothing leaks to the next user of the pooled
connection. The application filter (`tenant_id = ctx.tenant.id`) is applied as well by
the data layer, because SQLite has no RLS.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from piccolo.engine.sqlite import TransactionType

from core.access import NONE, SYSTEM, Access
from core.db import TENANT_SETTING, fetch, is_postgres
from core.errors import Conflict, NotFound, XindaiError
from core.tables import Tenant

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


KERNEL = "core"  # the owner name of contributions the kernel makes itself (jobs, handlers)


@dataclass(frozen=True)
class TenantInfo:
    """What the kernel knows of a tenant while serving it."""

    id: uuid.UUID
    slug: str
    name: str
    status: str
    locale: str
    timezone: str
    business_date: date
    plugins: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    def enabled(self, plugin: str) -> bool:
        """The kernel's own contributions (plugin "core") exist for every tenant."""
        return plugin == KERNEL or plugin in self.plugins

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TenantInfo:
        return cls(
            id=row["id"] if isinstance(row["id"], uuid.UUID) else uuid.UUID(str(row["id"])),
            slug=row["slug"],
            name=row["name"],
            status=row["status"],
            locale=row["locale"],
            timezone=row["timezone"],
            business_date=row["business_date"],
            plugins=tuple(_json(row["plugins"]) or ()),
            settings=_json(row["settings"]) or {},
        )


def _json(value: Any) -> Any:
    if isinstance(value, str):
        import json

        return json.loads(value)
    return value


@dataclass(frozen=True)
class Context:
    """Who is acting, for which tenant, in which language: passed explicitly to all services."""

    tenant: TenantInfo
    user_id: str | None = None
    username: str | None = None
    roles: tuple[str, ...] = ()
    locale: str = "zh-CN"
    request_id: str | None = None
    access: Access = NONE  # fail closed: a context without access may do nothing
    ip: str | None = None
    user_agent: str | None = None

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.tenant.id

    @classmethod
    def system(cls, tenant: TenantInfo, locale: str | None = None) -> Context:
        """The kernel acting for a tenant (packs, jobs, CLI): every permission, all records."""
        return cls(tenant=tenant, username="system", roles=("system",),
                   locale=locale or tenant.locale, access=SYSTEM)


_scoped: contextvars.ContextVar[uuid.UUID | None] = contextvars.ContextVar(
    "xindai_scoped_tenant", default=None
)


@asynccontextmanager
async def tenant_scope(ctx: Context, write: bool = True) -> AsyncIterator[Context]:
    """Run the block in one transaction bound to ctx's tenant (RLS on PostgreSQL).

    Nested scopes for the same tenant join the outer transaction; a nested scope for a
    different tenant is a programming error and is refused.
    """
    engine = Tenant._meta.db
    outer = _scoped.get()
    if outer is not None:
        if outer != ctx.tenant_id:
            raise RuntimeError("nested tenant_scope for a different tenant")
        yield ctx
        return
    if is_postgres(engine):
        tx = engine.transaction()
    else:
        tx = engine.transaction(
            transaction_type=TransactionType.immediate if write else TransactionType.deferred
        )
    token = _scoped.set(ctx.tenant_id)
    try:
        async with tx:
            if is_postgres(engine):
                await fetch(engine, "SELECT set_config({}, {}, true)", TENANT_SETTING,
                            str(ctx.tenant_id))
            yield ctx
    finally:
        _scoped.reset(token)


def scoped_tenant() -> uuid.UUID | None:
    """The tenant of the enclosing tenant_scope, if any."""
    return _scoped.get()


async def get_tenant(slug: str) -> TenantInfo:
    rows = await Tenant.select().where(Tenant.slug == slug).run()
    if not rows:
        raise NotFound("tenant_not_found", slug=slug)
    return TenantInfo.from_row(rows[0])


async def get_tenant_by_id(tenant_id: uuid.UUID) -> TenantInfo:
    rows = await Tenant.select().where(Tenant.id == tenant_id).run()
    if not rows:
        raise NotFound("tenant_not_found", slug=str(tenant_id))
    return TenantInfo.from_row(rows[0])


async def list_tenants() -> list[TenantInfo]:
    rows = await Tenant.select().order_by(Tenant.slug).run()
    return [TenantInfo.from_row(r) for r in rows]


async def insert_tenant(
    slug: str,
    name: str,
    plugins: list[str],
    locale: str = "zh-CN",
    timezone: str = "Asia/Shanghai",
    business_date: date | None = None,
    settings: dict[str, Any] | None = None,
) -> TenantInfo:
    """Insert the tenant row (the caller seeds keys, defaults and pack contents)."""
    if not SLUG_RE.match(slug):
        raise XindaiError("tenant_slug", slug=slug)
    if await Tenant.exists().where(Tenant.slug == slug).run():
        raise Conflict("tenant_exists", slug=slug)
    row = Tenant(
        slug=slug,
        name=name,
        locale=locale,
        timezone=timezone,
        business_date=business_date or date.today(),
        plugins=list(plugins),
        settings=settings or {},
    )
    await row.save().run()
    return await get_tenant(slug)


async def update_tenant(tenant: TenantInfo, **values: Any) -> TenantInfo:
    await Tenant.update({getattr(Tenant, k): v for k, v in values.items()}).where(
        Tenant.id == tenant.id
    ).run()
    return await get_tenant_by_id(tenant.id)


async def set_plugin_enabled(slug: str, plugin: str, enabled: bool) -> TenantInfo:
    """Enable or disable a loaded plugin for one tenant; enabling runs its onboarding hook."""
    from core.kernel import kernel

    k = kernel()
    if plugin not in k.plugin_names():
        raise NotFound("unknown_plugin", plugin=plugin)
    tenant = await get_tenant(slug)
    plugins = [p for p in tenant.plugins if p != plugin] + ([plugin] if enabled else [])
    changed = TenantInfo(**{**tenant.__dict__, "plugins": tuple(plugins)})
    ctx = Context.system(changed)
    async with tenant_scope(ctx):  # one transaction: a failing onboarding enables nothing
        await Tenant.update({Tenant.plugins: plugins}).where(Tenant.id == tenant.id).run()
        from core import audit

        await audit.append(ctx, "plugin.enable" if enabled else "plugin.disable", "plugin",
                           plugin)
        if enabled:
            from core.admin import ensure_builtin_roles

            await ensure_builtin_roles(ctx, {plugin})
            await run_onboarding(ctx, {plugin})
    return await get_tenant_by_id(tenant.id)


async def run_onboarding(ctx: Context, plugins: set[str] | None = None) -> None:
    """Run `tenant_onboarding` of the tenant's enabled plugins (or just `plugins`)."""
    import inspect

    from core.kernel import kernel

    def wanted(name: str) -> bool:
        return ctx.tenant.enabled(name) and (plugins is None or name in plugins)

    for _, result in kernel().plugins.per_plugin("tenant_onboarding", wanted, ctx=ctx):
        if inspect.isawaitable(result):
            await result
