"""`xindai esign serve`: run the local e-signature service alone."""

from __future__ import annotations

import click


@click.group()
def esign() -> None:
    """本地电子签名服务（测试替身） / The local e-signature service (a test double)."""


@esign.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--app-id", default="xindai-demo", show_default=True)
@click.option("--secret", envvar="XINDAI_ESIGN_LOCAL_SECRET", default="demo-esign-secret",
              show_default=True)
@click.option("--public-url", default="", help="The address signers' links start with.")
def serve(host: str, port: int, app_id: str, secret: str, public_url: str) -> None:
    """Serve esign v1 on HOST:PORT (state in memory)."""
    import uvicorn

    from plugins.esign_local.server import Service, create_app

    app = create_app(Service({app_id: secret}, public_url or f"http://{host}:{port}"))
    click.echo(f"esign v1 at http://{host}:{port} (app {app_id})")
    uvicorn.run(app, host=host, port=port, log_level="warning")
