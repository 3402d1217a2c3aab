"""Every hook a xindai plugin can implement. Each one is documented in docs/plugins.md.

Conventions (after pytest, datasette and llm):
- hooks that contribute things receive a `register` callback and call it once per item;
- hooks may return an awaitable where they do I/O; the kernel awaits it;
- `choose_provider` is `firstresult`: the first plugin that answers wins.
Implement a hook with `@core.hookimpl` in a module registered as a plugin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from core.declarations import (
        Job,
        MenuItem,
        PackSection,
        Panel,
        PeriodicJob,
        Permission,
        PluginSetting,
        RoleGrant,
        Subscription,
        TimelineItem,
    )
    from core.registry import EntityType
    from core.tenancy import Context, TenantInfo

hookspec = pluggy.HookspecMarker("xindai")


@hookspec
def piccolo_apps() -> list[str]:
    """Return the module paths of the piccolo apps (tables and migrations) the plugin owns.

    Each module defines `APP_CONFIG`; `xindai migrate` runs their migrations in
    dependency order on SQLite and PostgreSQL alike.
    """


@hookspec
def register_entities(register: Callable[[EntityType], None]) -> None:
    """Declare entity types and their fields (type, labels, required, sensitivity, search).

    The registry drives validation, the generic API, masking, encryption and packs.
    """


@hookspec
def register_permissions(register: Callable[[Permission], None]) -> None:
    """Declare the permissions (one per action, e.g. `customer.read`) the plugin checks."""


@hookspec
def register_routes(register: Callable[[Any], None]) -> None:
    """Contribute Litestar route handlers, controllers or routers.

    The kernel wraps them so they answer 404 for a tenant that has not enabled the plugin.
    """


@hookspec
def register_pages(register: Callable[[Any], None]) -> None:
    """Contribute web-shell pages: Litestar handlers (Jinja2 + htmx) mounted at the root of
    the UI router, so they get its guards: session sign-in, the CSRF check on every POST,
    `access_guard` (each handler declares opt public/authenticated/permission) and the HTML
    error pages. Like plugin API routes they answer 404 for a tenant without the plugin.
    """


@hookspec
def template_dirs() -> list[str]:
    """Return folders of Jinja2 templates the plugin contributes to the web shell.

    They are searched after the kernel's own (core/web/templates), in plugin order, so a
    plugin's page can `{% extends "base.html" %}`; name templates under a folder of the
    plugin's name (`servicing/loan.html`) to avoid clashes.
    """


@hookspec
def register_role_grants(register: Callable[[RoleGrant], None]) -> None:
    """Grant the plugin's permissions to the built-in roles (客户经理, 风控专员, 部门经理, 财务,
    催收员, 总经理, 合规, 租户管理员), so every new tenant starts with working roles.

    A tenant's pack may redefine a role; enabling the plugin later adds its grants.
    """


@hookspec
def register_menu_items(register: Callable[[MenuItem], None]) -> None:
    """Contribute entries to the web shell's menu (hidden where the plugin is disabled)."""


@hookspec
def register_event_handlers(register: Callable[[Subscription], None]) -> None:
    """Subscribe handlers to domain events (`customer.created`, ...; `"*"` for all).

    Handlers run after the event's change committed, once in effect, only for tenants
    that enabled the plugin, with that tenant's context; a handler with an `event`
    parameter also gets the event type.
    """


@hookspec
def register_jobs(register: Callable[[Job], None]) -> None:
    """Declare background jobs the plugin can enqueue (run per tenant, with retries)."""


@hookspec
def register_periodic_jobs(register: Callable[[PeriodicJob], None]) -> None:
    """Declare cron-like periodic jobs, fired per tenant in the tenant's time zone."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the `xindai` command line (a click group)."""


@hookspec
def register_settings(register: Callable[[PluginSetting], None]) -> None:
    """Declare per-tenant settings the plugin reads, with their defaults."""


@hookspec
def register_pack_sections(register: Callable[[PackSection], None]) -> None:
    """Declare top-level tenant-pack sections (e.g. `products`) the plugin loads and exports."""


@hookspec
def tenant_onboarding(ctx: Context) -> Awaitable[None] | None:
    """Seed a new tenant's defaults (runs inside the new tenant's transaction).

    Called for each plugin enabled for the tenant, when the tenant is created or the plugin
    is enabled for it.
    """


@hookspec(firstresult=True)
def choose_provider(kind: str, tenant: TenantInfo) -> Any | None:
    """Return the provider to use for `kind` (e.g. "sms", "credit_bureau") for `tenant`.

    The first plugin to return something other than None wins, so a tenant-specific
    provider plugin can take precedence over the built-in local one.
    """


@hookspec
def record_panels(ctx: Context, entity: str, record_id: str
                  ) -> Awaitable[list[Panel]] | list[Panel] | None:
    """Return panels (`core.declarations.Panel`) for the detail page of one record, e.g. a
    customer's loans on the customer 360 view (`/e/customer/<id>`).

    Called only for plugins the tenant enabled, after the page checked that ctx may read
    the record; return [] for entities you do not know and when ctx lacks your permission.
    Read only: a panel never writes. Sorted by `order` across plugins.
    """


@hookspec
def timeline_items(ctx: Context, entity: str, record_id: str
                   ) -> Awaitable[list[TimelineItem]] | list[TimelineItem] | None:
    """Return dated events of one record (`core.declarations.TimelineItem`) for its
    timeline: follow-ups, applications, loans, repayments, collection actions.

    Same rules as `record_panels`: enabled plugins only, read only, [] when not yours or
    not permitted. The page merges every plugin's items newest first.
    """
