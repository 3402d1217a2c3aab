"""Rendering pages: the Jinja2 environment, the layout's common context and the menu.

Templates only display what the handlers computed: which fields exist, which values are
masked and which buttons a user gets are decided by the services (core.records,
core.access, core.admin) before a template sees anything. Output is autoescaped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, pass_context
from litestar import Request
from litestar.datastructures import Cookie
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template

from core.i18n import DEFAULT_LOCALE
from core.tenancy import Context
from core.web.ui.i18n import N_, gettext_for, translations, ui_locale

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"
CTX_KEY = "xindai_ctx"
USER_KEY = "xindai_ui_user"
LOGIN_CSRF_COOKIE = "xd_csrf"
YEAR = 365 * 24 * 3600

# htmx settings: no page snapshots in localStorage (pages hold personal data), no eval
# (the Content-Security-Policy forbids it anyway), no injected <style>, and swap the
# server's own error fragments (422, 409, 403, 404) instead of dropping them.
HTMX_CONFIG = json.dumps({
    "historyCacheSize": 0,
    "refreshOnHistoryMiss": True,
    "allowEval": False,
    "allowScriptTags": False,
    "includeIndicatorStyles": False,
    "selfRequestsOnly": True,
    "responseHandling": [
        {"code": "204", "swap": False},
        {"code": "[23]..", "swap": True},
        {"code": "(403|404|409|422|429)", "swap": True, "error": True},
        {"code": "[45]..", "swap": False, "error": True},
    ],
})


@pass_context
def _ctx_gettext(context: Any, message: str) -> str:
    return translations(context.get("lang") or DEFAULT_LOCALE).gettext(message)


@pass_context
def _ctx_ngettext(context: Any, singular: str, plural: str, n: int) -> str:
    return translations(context.get("lang") or DEFAULT_LOCALE).ngettext(singular, plural, n)


def template_dirs(extra: list[str | Path] | None = None) -> list[Path]:
    """The kernel's templates first, then the folders plugins return from the
    `template_dirs` hook (a plugin's screens extend `base.html`)."""
    return [TEMPLATES, *(Path(d) for d in extra or [])]


def make_environment(extra_dirs: list[str | Path] | None = None) -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(d)) for d in template_dirs(extra_dirs)]),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # New-style gettext: `_("Hello, %(name)s", name=x)`; the language comes from the
    # template context (`lang`), so one environment serves both languages concurrently.
    install = env.install_gettext_callables  # type: ignore[attr-defined]
    install(_ctx_gettext, _ctx_ngettext, newstyle=True)
    env.globals["HTMX_CONFIG"] = HTMX_CONFIG
    env.filters["money"] = money
    return env


def template_engine(extra_dirs: list[str | Path] | None = None) -> JinjaTemplateEngine:
    return JinjaTemplateEngine.from_environment(make_environment(extra_dirs))


# --- the layout's context ----------------------------------------------------------------

@dataclass(frozen=True)
class MenuEntry:
    key: str
    label: str
    path: str
    active: bool
    badge: str | None = None


ADMIN_MENU: tuple[tuple[str, str, str, str], ...] = (
    ("admin_users", N_("Users"), "/admin/users", "admin.users"),
    ("admin_roles", N_("Roles"), "/admin/roles", "admin.roles"),
    ("admin_field_policies", N_("Field policies"), "/admin/field-policies", "admin.roles"),
    ("admin_org_units", N_("Organisation units"), "/admin/org-units", "admin.org_units"),
    ("admin_jobs", N_("Background jobs"), "/admin/jobs", "jobs.manage"),
    ("admin_webhooks", N_("Webhooks"), "/admin/webhooks", "webhooks.manage"),
)
AUDIT_MENU = ("audit", N_("Audit log"), "/audit", "audit.read")


def menu(ctx: Context, lang: str, path: str) -> list[MenuEntry]:
    """Home, the plugins' entries the user may open, the audit log (audit.read), then the
    admin pages they may use."""
    from core.kernel import kernel

    _ = gettext_for(lang)
    entries = [MenuEntry("home", _("Home"), "/", path == "/")]
    for item in kernel().menu_for(ctx.tenant):
        if item.permission and not ctx.access.can(item.permission):
            continue
        label = item.label_en if lang == "en" else item.label_zh
        entries.append(MenuEntry(item.key, label, item.path, _under(path, item.path),
                                 item.badge))
    key, label, target, permission = AUDIT_MENU
    if ctx.access.can(permission):
        entries.append(MenuEntry(key, _(label), target, _under(path, target)))
    for key, label, target, permission in ADMIN_MENU:
        if ctx.access.can(permission):
            entries.append(MenuEntry(key, _(label), target, _under(path, target)))
    return entries


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go back to (never another site: no `//host`, no scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") \
            or "\\" in target or any(ord(c) < 32 for c in target):
        return default
    return target


def current_url(request: Request[Any, Any, Any], drop: tuple[str, ...] = ("lang",)) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in drop]
    return request.url.path + (("?" + urlencode(params)) if params else "")


def lang_links(request: Request[Any, Any, Any], lang: str) -> list[dict[str, Any]]:
    here = quote(current_url(request), safe="")
    return [{"code": code, "label": label, "active": code == lang,
             "url": f"/lang/{code}?next={here}"}
            for code, label in (("zh-CN", "中文"), ("en", "English"))]


def request_ctx(request: Request[Any, Any, Any]) -> Context | None:
    return request.scope.get("state", {}).get(CTX_KEY)


def request_user(request: Request[Any, Any, Any]) -> dict[str, Any] | None:
    return request.scope.get("state", {}).get(USER_KEY)


def page_lang(request: Request[Any, Any, Any]) -> str:
    ctx = request_ctx(request)
    return ui_locale(request, ctx.tenant.locale if ctx else None)


def money(value: Any) -> str:
    """A yuan amount for people: thousands separators, two decimals (Decimal, never float);
    the `money` filter in templates. Text that is not a number is shown as it is."""
    if value in (None, ""):
        return ""
    try:
        return f"{Decimal(str(value)):,.2f}"
    except InvalidOperation:
        return str(value)


def local_time(value: Any, tz: str | None) -> str:
    """A UTC timestamp (datetime or ISO text) in the tenant's time zone, to the minute."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is not None:
        value = value.astimezone(ZoneInfo(tz or "Asia/Shanghai"))
    return value.strftime("%Y-%m-%d %H:%M")


def render(request: Request[Any, Any, Any], template: str, status: int = 200,
           headers: dict[str, str] | None = None, cookies: list[Cookie] | None = None,
           **values: Any) -> Template:
    """A page (or fragment) with the layout's context: language, CSRF token, user, menu."""
    from core.web.sessions import csrf_of

    ctx = request_ctx(request)
    lang = page_lang(request)
    user = request_user(request)
    tz = ctx.tenant.timezone if ctx else "Asia/Shanghai"
    base: dict[str, Any] = {
        "lang": lang,
        "csrf": csrf_of(request) or request.scope.get("state", {}).get("xindai_login_csrf", ""),
        "ctx_tenant": ctx.tenant if ctx else None,
        "user": user,
        "menu": menu(ctx, lang, request.url.path) if ctx and user else [],
        "lang_links": lang_links(request, lang),
        "path": request.url.path,
        "local_time": lambda v: local_time(v, tz),
        "is_htmx": request.headers.get("hx-request") == "true",
    }
    return Template(template_name=template, context={**base, **values}, status_code=status,
                    headers=headers or {}, cookies=cookies or [])
