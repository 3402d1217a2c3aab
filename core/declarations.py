"""Small value types that plugins hand to the kernel through hooks.

They live apart from the modules that consume them so a plugin can import them without
pulling in the web stack or the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.tenancy import Context


@dataclass(frozen=True)
class Permission:
    """One action a role may be granted, e.g. `customer.read`."""

    code: str
    label_zh: str
    label_en: str


@dataclass(frozen=True)
class MenuItem:
    """An entry in the web shell's menu; shown only where the plugin is enabled."""

    key: str
    label_zh: str
    label_en: str
    path: str
    permission: str | None = None
    order: int = 100
    plugin: str = ""
    # A path the shell fetches with htmx after the page loads, for the entry's count (an
    # approval inbox's pending items): it answers a small HTML fragment, empty for none.
    badge: str | None = None


EventHandler = Callable[["Context", dict[str, Any]], Awaitable[None] | None]


@dataclass(frozen=True)
class Subscription:
    """A plugin's handler for a domain event such as `customer.created`, or `"*"` for every
    event; `name` keys its once-only delivery, so keep it stable."""

    event: str
    handler: EventHandler
    name: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class Job:
    """A background job a plugin can enqueue; it runs inside one tenant's context.

    A transactional job runs in one tenant transaction with its completion marker, so it
    takes effect exactly once. A long job (`transactional=False`) commits its own chunks,
    reports `core.outbox.progress`, and must be resumable: after a crash it runs again.
    Its keyword arguments travel as JSON.
    """

    name: str
    fn: Callable[..., Awaitable[Any] | Any]
    time_limit_s: int = 600
    max_retries: int = 5
    plugin: str = ""
    transactional: bool = True


@dataclass(frozen=True)
class PeriodicJob:
    """A job fired on a cron schedule, per tenant, in the tenant's time zone."""

    name: str
    cron: str  # five-field cron, e.g. "30 23 * * *"
    job: str  # name of a registered Job
    plugin: str = ""


@dataclass(frozen=True)
class PluginSetting:
    """A per-tenant setting a plugin offers, with its default."""

    key: str
    label_zh: str
    label_en: str
    default: Any
    plugin: str = ""
    secret: bool = False  # sealed at rest, read with core.setting_secrets.reveal


@dataclass(frozen=True)
class RoleGrant:
    """Permissions a plugin gives one of the built-in roles (core.access.BUILTIN_ROLES)."""

    role: str
    permissions: tuple[str, ...]
    plugin: str = ""


@dataclass(frozen=True)
class PackSection:
    """A top-level section of a tenant pack that a plugin loads and exports."""

    name: str
    load: Callable[[Context, Any, PackSource], Awaitable[None]]
    export: Callable[[Context], Awaitable[Any]]
    order: int = 100
    plugin: str = ""
    after_records: bool = False  # loaded after the pack's records (it refers to them)


@dataclass
class PackSource:
    """Where a pack section came from, so errors can name the file and line."""

    path: str
    lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Panel:
    """A section a plugin adds to a record's detail page (the customer 360 view): the
    plugin's own template, rendered with `context` (available as `panel.context`)."""

    key: str
    label_zh: str
    label_en: str
    template: str  # e.g. "servicing/_customer_loans.html", in the plugin's template_dirs
    context: dict[str, Any] = field(default_factory=dict)
    order: int = 100
    plugin: str = ""

    def label(self, locale: str | None) -> str:
        return self.label_en if locale == "en" else self.label_zh


@dataclass(frozen=True)
class TimelineItem:
    """One dated thing that happened to a record, for its timeline (a follow-up, a loan
    disbursed, a repayment, a change). Texts are shown as given: no secrets in clear."""

    at: Any  # datetime (aware) or date
    kind: str  # short type for the icon and filter, e.g. "followup", "repayment"
    title_zh: str
    title_en: str
    detail: str = ""
    link: str | None = None
    by: str = ""  # who did it (display name), if known
    plugin: str = ""

    def title(self, locale: str | None) -> str:
        return self.title_en if locale == "en" else self.title_zh
