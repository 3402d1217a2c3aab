"""The Litestar application factory."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar, Request, Response, Router
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin

import core
from core import kernel as K
from core.errors import XindaiError
from core.web.api import api_router
from core.web.context import plugin_guard
from core.web.errors import http_error, internal_error, xindai_error
from core.web.idempotency import check_routes, documented
from core.web.oidc import oidc_router
from core.web.ui import SecurityHeaders, static_router, template_config, ui_router


class AccessLog:
    """One log line per request: request id, method, path, status, milliseconds. Never the
    query string, which can hold ID numbers and mobiles (`?resident_id=...`). The request id
    (also sent back as `X-Request-ID`) is carried into every audit entry of the request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log = structlog.get_logger("xindai.access")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def remember(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, remember)
        finally:
            self.log.info("request", request_id=request_id, method=scope["method"],
                          path=scope["path"],
                          status=status["code"],
                          ms=round((time.perf_counter() - start) * 1000, 1))


def any_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Errors before a route is found (an unknown path): problem details under /api, an HTML
    page elsewhere (the UI routes have their own handlers, see core.web.ui.security)."""
    if request.url.path.startswith("/api/"):
        return http_error(request, exc)
    from core.web.ui.security import ui_http_error

    return ui_http_error(request, exc)


def plugin_routers(k: K.Kernel, hook: str = "register_routes") -> list[Any]:
    """Each plugin's routes (or pages), guarded so a tenant without the plugin gets 404."""
    by_plugin: dict[str, list[Any]] = {}
    for plugin, handler in k.plugins.collect_owned(hook):
        by_plugin.setdefault(plugin, []).append(handler)
    wrap = documented if hook == "register_routes" else list
    return [
        Router(path="/", route_handlers=wrap(handlers), guards=[plugin_guard(plugin)])
        for plugin, handlers in by_plugin.items()
    ]


def plugin_template_dirs(k: K.Kernel) -> list[str]:
    """The template folders the plugins return from `template_dirs`, in plugin order."""
    return [str(d) for dirs in reversed(k.plugins.hook.template_dirs()) for d in dirs or []]


def create_app(k: K.Kernel | None = None, run_jobs: bool = False,
               open_db: bool = True) -> Litestar:
    """Build the ASGI app; `run_jobs` starts workers, relay and scheduler in-process
    (embedded mode).

    `open_db=False` leaves the connection pool to the caller (tests share one kernel).
    """
    k = k or K.boot()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if open_db:
            await K.start(k)
        runtime = None
        if run_jobs:  # embedded mode: workers, relay and scheduler in this process
            from core.jobs import Runtime

            runtime = Runtime(threads=2, relay=True, scheduler=True)
            await runtime.start()
        try:
            yield
        finally:
            if runtime is not None:
                await runtime.stop()
            if open_db:
                await K.stop(k)

    entities = list(k.registry.entities.values())
    app = Litestar(
        route_handlers=[api_router(entities, plugin_routers(k)), oidc_router,
                        ui_router(entities, plugin_routers(k, "register_pages")),
                        static_router()],
        lifespan=[lifespan],
        middleware=[AccessLog, SecurityHeaders],
        template_config=template_config(plugin_template_dirs(k)),
        exception_handlers={
            XindaiError: xindai_error,
            HTTPException: any_http_error,
            Exception: internal_error,
        },
        openapi_config=OpenAPIConfig(
            title="xindai API", version=core.__version__, path="/api/v1",
            description="信贷客户管理系统 API / xindai loan customer management API",
            render_plugins=[JsonRenderPlugin(), YamlRenderPlugin()],
        ),
        debug=False,
    )
    check_routes(app)
    return app
