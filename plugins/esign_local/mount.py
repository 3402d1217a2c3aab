"""The local e-signature service mounted in the web app under /_esign (for the demo)."""

from __future__ import annotations

import os
from typing import Any

from litestar import asgi

from plugins.esign_local.server import Service, create_app

PREFIX = "/_esign"
_app: Any = None


def credentials() -> tuple[str, str]:
    return (os.environ.get("XINDAI_ESIGN_LOCAL_APP_ID", "xindai-demo"),
            os.environ.get("XINDAI_ESIGN_LOCAL_SECRET", "demo-esign-secret"))


def mounted_app() -> Any:
    """One service per process, made on first use (its CA is generated then)."""
    global _app
    if _app is None:
        app_id, secret = credentials()
        _app = create_app(Service({app_id: secret}))
    return _app


# public: the service authenticates its own API calls (HMAC) and signing links (tokens);
# csrf "stream": the shell's CSRF check leaves the POSTs to the service's own checks.
@asgi(PREFIX, is_mount=True, opt={"public": True, "csrf": "stream"}, copy_scope=True)
async def esign_mount(scope: Any, receive: Any, send: Any) -> None:
    path = scope.get("path", "")
    if path.startswith(PREFIX):
        path = path[len(PREFIX):] or "/"
    inner = {**scope, "path": path, "raw_path": path.encode(), "root_path": PREFIX}
    await mounted_app()(inner, receive, send)
