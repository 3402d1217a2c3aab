"""bureau_local: a local credit bureau (征信) that speaks HTTP like a real one.

Demos and tests need a bureau without a contract with 百行 or 朴道. This plugin serves one
(plugins.bureau_local.server) with deterministic synthetic reports, and offers it to the
lender's side in two ways:

- `xindai bureau serve --port N [--app-key K --secret S]`: a standalone server;
- embedded: for a tenant that enabled this plugin and left `origination.bureau_url`
  empty, the first credit query of the process starts the bureau in a background thread
  on a free local port with a random secret, and `choose_provider("credit_bureau_endpoint")`
  tells the origination plugin's HTTP client where it is and how to sign. So `make demo`
  needs no extra command, and the query still goes over real HTTP with a real signature.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from core.plugins import hookimpl

__version__ = "0.1.0"

_embedded: dict[str, Any] = {}
_lock = threading.Lock()


def embedded_endpoint() -> dict[str, str]:
    """The in-process bureau (started on first use): base URL, app key and secret."""
    with _lock:
        if not _embedded:
            from plugins.bureau_local.server import start_in_thread

            key, secret = "xindai-embedded", secrets.token_hex(32)
            running = start_in_thread({key: secret})
            _embedded.update(base_url=running.url, app_key=key, secret=secret,
                             running=running)
        return {k: _embedded[k] for k in ("base_url", "app_key", "secret")}


@hookimpl
def choose_provider(kind, tenant):  # type: ignore[no-untyped-def]
    if kind == "credit_bureau_endpoint":
        return embedded_endpoint()
    return None


@hookimpl
def register_commands(cli):  # type: ignore[no-untyped-def]
    import click

    @cli.group("bureau")
    def bureau() -> None:
        """The local credit bureau (synthetic reports, for demos and tests)."""

    @bureau.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8765, show_default=True, type=int)
    @click.option("--app-key", default="xindai-demo", show_default=True)
    @click.option("--secret", envvar="XINDAI_BUREAU_SECRET", default=None,
                  help="the app key's signing secret (env XINDAI_BUREAU_SECRET); "
                       "a random one is printed when absent")
    def serve(host: str, port: int, app_key: str, secret: str | None) -> None:
        """Serve the bureau until interrupted."""
        import uvicorn

        from plugins.bureau_local.server import create_app

        if not secret:
            secret = secrets.token_hex(32)
            click.echo(f"secret: {secret}")
        click.echo(f"本地征信服务 / local credit bureau: http://{host}:{port} "
                   f"(app key {app_key})")
        uvicorn.run(create_app({app_key: secret}), host=host, port=port, log_level="info")
