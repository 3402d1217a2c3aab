"""Boot: settings -> plugins -> registry -> database binding. Shared by the web app and CLI."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field, replace
from typing import Any

from piccolo.engine.base import Engine

from core import db
from core.access import KERNEL_PERMISSIONS
from core.crypto import load_master_key
from core.declarations import (
    Job,
    MenuItem,
    PackSection,
    PeriodicJob,
    Permission,
    PluginSetting,
    RoleGrant,
    Subscription,
)
from core.document_expiry import JOBS as EXPIRY_JOBS
from core.document_expiry import KERNEL_SETTINGS
from core.document_expiry import PERIODIC_JOBS as EXPIRY_PERIODIC_JOBS
from core.kernel_jobs import KERNEL_JOBS, KERNEL_PERIODIC_JOBS
from core.plugins import PluginError, Plugins
from core.registry import Registry
from core.settings import Settings, load_settings
from core.tenancy import TenantInfo
from core.webhooks import KERNEL_SUBSCRIPTIONS
from core.webhooks import PERIODIC_JOBS as WEBHOOK_PERIODIC_JOBS
from core.webhooks import kernel_jobs as webhook_jobs

KERNEL_APPS = ["core.piccolo_app"]


@dataclass
class Kernel:
    """Everything loaded once per process; request and job state lives in `Context`."""

    settings: Settings
    plugins: Plugins
    registry: Registry
    engine: Engine
    master_key: bytes = field(repr=False)
    permissions: list[Permission] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    periodic_jobs: list[PeriodicJob] = field(default_factory=list)
    menu_items: list[MenuItem] = field(default_factory=list)
    pack_sections: list[PackSection] = field(default_factory=list)
    role_grants: list[RoleGrant] = field(default_factory=list)
    plugin_settings: list[PluginSetting] = field(default_factory=list)

    def apps(self) -> list[str]:
        """Piccolo apps in migration order: the kernel first, then each plugin's."""
        apps = list(KERNEL_APPS)
        for _, result in self.plugins.per_plugin("piccolo_apps"):
            apps.extend(result or [])
        return apps

    def plugin_names(self) -> list[str]:
        return self.plugins.names

    def setting(self, tenant: TenantInfo, key: str) -> Any:
        """A plugin setting for a tenant: the tenant's own value, else the declared default."""
        for declared in self.plugin_settings:
            if declared.key == key and tenant.enabled(declared.plugin):
                return tenant.settings.get(key, declared.default)
        raise KeyError(key)

    def builtin_role_permissions(self, tenant: TenantInfo, role: str,
                                 plugins: set[str] | None = None) -> set[str]:
        """What a built-in role gets from the kernel and the tenant's (or `plugins`') grants."""
        from core.access import KERNEL_GRANTS

        perms = set(KERNEL_GRANTS.get(role, ())) if plugins is None else set()
        for grant in self.role_grants:
            wanted = tenant.enabled(grant.plugin) if plugins is None else grant.plugin in plugins
            if grant.role == role and wanted:
                perms.update(grant.permissions)
        return perms

    def menu_for(self, tenant: TenantInfo) -> list[MenuItem]:
        """The menu entries of the plugins the tenant enabled, in display order."""
        return sorted((m for m in self.menu_items if tenant.enabled(m.plugin)),
                      key=lambda m: (m.order, m.key))

    def subscriptions_for(self, tenant: TenantInfo, event: str) -> list[Subscription]:
        """The subscriptions to `event` (and to "*", which receives every event) of the
        tenant's enabled plugins and the kernel. A handler with an `event` parameter is
        given the event's name (a "*" handler needs it to know what happened)."""
        return [_with_event(s, event) for s in self.subscriptions
                if s.event in (event, "*") and tenant.enabled(s.plugin)]

    def periodic_jobs_for(self, tenant: TenantInfo) -> list[PeriodicJob]:
        return [j for j in self.periodic_jobs if tenant.enabled(j.plugin)]

    async def gather(self, hook_name: str, tenant: TenantInfo, **kwargs: Any) -> list[Any]:
        """Call a list-returning hook (`record_panels`, `timeline_items`) on the tenant's
        plugins, awaiting awaitables; items are stamped with their plugin."""
        items: list[Any] = []
        for plugin, result in self.plugins.per_plugin(hook_name, tenant.enabled, **kwargs):
            if inspect.isawaitable(result):
                result = await result
            for item in result or ():
                items.append(replace(item, plugin=plugin) if hasattr(item, "plugin") else item)
        return items

    def provider(self, kind: str, tenant: TenantInfo) -> Any | None:
        """`choose_provider` with firstresult semantics, asking only the tenant's plugins
        (externals are asked before built-ins, as pluggy calls the last registered first)."""
        for _, result in self.plugins.per_plugin("choose_provider", tenant.enabled,
                                                 kind=kind, tenant=tenant):
            if result is not None:
                return result
        return None


def _with_event(s: Subscription, event: str) -> Subscription:
    try:
        params = inspect.signature(s.handler).parameters
    except (TypeError, ValueError):
        return s
    if "event" not in params:
        return s

    @functools.wraps(s.handler)  # keeps __qualname__: the handler's key when it has no name
    def call(ctx: Any, payload: dict[str, Any]) -> Any:
        return s.handler(ctx, payload, event=event)  # type: ignore[call-arg]

    return replace(s, handler=call)


_current: Kernel | None = None


def boot(settings: Settings | None = None, plugins: Plugins | None = None) -> Kernel:
    """Load settings and plugins, build the registry and bind the database engine (no I/O
    except reading or creating the master key file)."""
    global _current
    settings = settings or load_settings()
    from core.logging import configure_logging

    configure_logging(settings.log_level)
    plugins = plugins or Plugins(settings.plugins, settings.disable_plugins)
    registry = Registry()
    for plugin, entity in plugins.collect_owned("register_entities"):
        from dataclasses import replace

        registry.add(replace(entity, plugin=plugin))
    engine = db.make_engine(settings.database_url)
    k = Kernel(
        settings=settings,
        plugins=plugins,
        registry=registry,
        engine=engine,
        master_key=load_master_key(settings),
        permissions=[Permission(*p) for p in KERNEL_PERMISSIONS]
        + plugins.collect("register_permissions"),
        subscriptions=[*KERNEL_SUBSCRIPTIONS, *plugins.collect("register_event_handlers")],
        jobs=[*KERNEL_JOBS, *EXPIRY_JOBS, *webhook_jobs(settings),
              *plugins.collect("register_jobs")],
        periodic_jobs=[*KERNEL_PERIODIC_JOBS, *WEBHOOK_PERIODIC_JOBS, *EXPIRY_PERIODIC_JOBS,
                       *plugins.collect("register_periodic_jobs")],
        menu_items=plugins.collect("register_menu_items"),
        pack_sections=plugins.collect("register_pack_sections"),
        role_grants=plugins.collect("register_role_grants"),
        plugin_settings=[*KERNEL_SETTINGS, *plugins.collect("register_settings")],
    )
    check_periodic_jobs(k)
    db.bind(engine, k.apps())
    from core.jobs import setup_broker

    setup_broker(settings.redis_url, settings.redis_namespace)
    _current = k
    return k


def check_periodic_jobs(k: Kernel) -> None:
    """A periodic job must name a registered job and carry a valid cron expression."""
    from core.scheduler import validate_cron

    names = {j.name for j in k.jobs}
    for pj in k.periodic_jobs:
        problem = validate_cron(pj.cron)
        if problem or pj.job not in names:
            raise PluginError(
                f"插件 {pj.plugin} 的定时作业 {pj.name} 无效 / plugin {pj.plugin}: periodic job "
                f"{pj.name} is invalid: {problem or f'no job named {pj.job}'}")


def kernel() -> Kernel:
    if _current is None:
        raise RuntimeError("the kernel has not been booted")
    return _current


async def start(k: Kernel) -> None:
    """Open the connection pool and refuse an app role that would bypass RLS."""
    db.bind(k.engine, k.apps())
    await db.open_engine(k.engine, k.settings.db_pool_size)
    await db.check_app_role(k.engine)
    await db.check_row_level_security(k.engine)
    await check_master_key(k)


async def check_master_key(k: Kernel) -> None:
    """Refuse to run with a master key that does not unwrap the tenants' data keys (a lost or
    swapped key file would otherwise make every secret field unreadable, one error at a time).
    """
    from core.crypto import DecryptionError, unwrap_data_key
    from core.tables import Tenant, TenantKey
    from core.tenancy import Context, get_tenant_by_id, tenant_scope

    keys: list[dict[str, Any]] = []
    for row in await Tenant.select(Tenant.id).limit(20).run():  # the first with a key
        tenant = await get_tenant_by_id(row["id"])
        async with tenant_scope(Context.system(tenant), write=False):
            keys = await TenantKey.select().where(TenantKey.tenant_id == tenant.id) \
                .limit(1).run()
        if keys:
            break
    if not keys:
        return
    try:
        unwrap_data_key(k.master_key, tenant.id, keys[0]["version"], keys[0]["wrapped"])
    except DecryptionError:
        raise db.DatabaseError(
            "XINDAI_MASTER_KEY / XINDAI_KEY_FILE: 主密钥与数据库中的数据密钥不匹配，请恢复正确的"
            "密钥文件 / the master key does not unwrap this database's data keys: restore the "
            "right key file (or XINDAI_MASTER_KEY)"
        ) from None


async def stop(k: Kernel) -> None:
    await db.close_engine(k.engine)


async def migrate(k: Kernel) -> list[str]:
    """Apply all migrations as the owner role, then (PostgreSQL) enforce RLS and grants."""
    url = k.settings.migrate_database_url or k.settings.database_url
    owner = db.make_engine(url)
    await db.open_engine(owner, 2)
    try:
        applied = await db.run_migrations(owner, k.apps())
        if db.is_postgres(owner):
            app_role = db.role_of(k.settings.database_url)
            owner_role = db.role_of(url)
            await db.enforce_row_level_security(
                owner, app_role if app_role and app_role != owner_role else None
            )
    finally:
        await db.close_engine(owner)
        db.bind(k.engine, k.apps())
    return applied
