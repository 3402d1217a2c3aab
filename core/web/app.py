"""The Litestar application factory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar, Router, get
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.response import Redirect

import core
from core import kernel as K
from core.errors import XindaiError
from core.web.api import api_router
from core.web.context import plugin_guard
from core.web.oidc import oidc_router
from core.web.errors import http_error, internal_error, xindai_error


class AccessLog:
    """One log line per request: method, path, status, milliseconds. Never the query string,
    which can hold ID numbers and mobiles (`?resident_id=...`)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log = structlog.get_logger("xindai.access")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def remember(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember)
        finally:
            self.log.info("request", method=scope["method"], path=scope["path"],
                          status=status["code"],
                          ms=round((time.perf_counter() - start) * 1000, 1))


@get("/", include_in_schema=False)
async def root() -> Redirect:
    """Until the web shell exists, the root points at the API description."""
    return Redirect("/api/v1/openapi.json")


def plugin_routers(k: K.Kernel) -> list[Any]:
    """Each plugin's routes, guarded so a tenant without the plugin gets 404."""
    by_plugin: dict[str, list[Any]] = {}
    for plugin, handler in k.plugins.collect_owned("register_routes"):
        by_plugin.setdefault(plugin, []).append(handler)
    return [
        Router(path="/", route_handlers=handlers, guards=[plugin_guard(plugin)])
        for plugin, handlers in by_plugin.items()
    ]


def create_app(k: K.Kernel | None = None, run_jobs: bool = False,
               open_db: bool = True) -> Litestar:
    """Build the ASGI app; `run_jobs` starts the in-process worker (embedded mode).

    `open_db=False` leaves the connection pool to the caller (tests share one kernel).
    """
    k = k or K.boot()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if open_db:
            await K.start(k)
        worker = None
        if run_jobs:
            from core.jobs import start_embedded_worker

            worker = start_embedded_worker(k)
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            if open_db:
                await K.stop(k)

    return Litestar(
        route_handlers=[api_router(list(k.registry.entities.values()), plugin_routers(k)),
                        oidc_router, root],
        lifespan=[lifespan],
        middleware=[AccessLog],
        exception_handlers={
            XindaiError: xindai_error,
            HTTPException: http_error,
            Exception: internal_error,
        },
        openapi_config=OpenAPIConfig(
            title="xindai API", version=core.__version__, path="/api/v1",
            description="信贷客户管理系统 API / xindai loan customer management API",
            render_plugins=[JsonRenderPlugin(), YamlRenderPlugin()],
        ),
        debug=False,
    )
