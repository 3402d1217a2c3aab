"""The web shell: server-rendered pages (Jinja2 + htmx) over the same services as the API.

    ui_router(entities, plugin_pages)
                         every page, guarded by access_guard (opt public / authenticated /
                         permission, as in the API) and ui_guard (CSRF, MFA enrolment);
                         plugin_pages are the plugins' routers (register_pages), each
                         with its own 404 guard for tenants without the plugin
    static_router()      /static from core/web/static (own CSS; vendor/ holds htmx, copied
                         from npm by `make assets`, never from a CDN)
    template_config(dirs)  Litestar's JinjaTemplateEngine on our environment (i18n
                         extension); `dirs` are the plugins' template folders
"""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.di import Provide
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from core.registry import EntityType
from core.web.context import access_guard, provide_ctx
from core.web.ui import admin, audit, auth, home, imports, jobs, notifications, webhooks
from core.web.ui.entities import entity_routes
from core.web.ui.i18n import load_all
from core.web.ui.render import STATIC, template_engine
from core.web.ui.security import UI_EXCEPTION_HANDLERS, SecurityHeaders, ui_guard

__all__ = ["SecurityHeaders", "static_router", "template_config", "ui_router"]


def ui_router(entities: list[EntityType], plugin_pages: list[Any] | None = None) -> Router:
    load_all()  # a broken catalogue stops start-up, not a request
    handlers: list[Any] = [
        auth.login_page, auth.login_submit, auth.mfa_page, auth.mfa_submit, auth.logout,
        auth.switch_language, auth.password_page, auth.password_submit, auth.mfa_settings,
        auth.mfa_start, auth.mfa_confirm, home.home, *admin.ADMIN_HANDLERS,
        *audit.AUDIT_HANDLERS, *jobs.JOBS_HANDLERS, *webhooks.WEBHOOK_HANDLERS,
        *notifications.NOTIFICATION_PAGES,
        *imports.IMPORT_PAGES,
    ]
    handlers.extend(entity_routes(e) for e in entities)
    handlers.extend(plugin_pages or [])
    return Router(path="/", route_handlers=handlers, dependencies={"ctx": Provide(provide_ctx)},
                  guards=[access_guard, ui_guard], exception_handlers=UI_EXCEPTION_HANDLERS)


def static_router() -> Router:
    from litestar.datastructures import CacheControlHeader

    return create_static_files_router(
        path="/static", directories=[STATIC], opt={"public": True},
        cache_control=CacheControlHeader(max_age=3600, public=True),
    )


def template_config(dirs: list[str] | None = None) -> TemplateConfig[Any]:
    return TemplateConfig(instance=template_engine(list(dirs or [])))
