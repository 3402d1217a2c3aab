"""esign_local: a local e-signature service speaking the protocol of e签宝 / 法大大 style
providers ("esign v1", docs/contracts.md), so the contracts plugin's remote signing is
tested and demonstrated over real HTTP without an external account.

- `xindai esign serve --port N` runs it alone (uvicorn);
- the web app mounts one instance under `/_esign` (public: every API call is HMAC-signed
  by the app, every signing page is an unguessable link), for the demo. Its app id and
  secret come from `XINDAI_ESIGN_LOCAL_APP_ID` / `XINDAI_ESIGN_LOCAL_SECRET` (defaults
  `xindai-demo` / `demo-esign-secret`: a test double, never a production signer).

The service signs with its own test CA through the contracts plugin's pure signing module
(`plugins.contracts.signing`, no database or plugin state): a test double of an external
service, shipped beside the plugin it exercises.
"""

from __future__ import annotations

from core.plugins import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_commands(cli):  # type: ignore[no-untyped-def]
    from plugins.esign_local.cli import esign

    cli.add_command(esign)


@hookimpl
def register_pages(register):  # type: ignore[no-untyped-def]
    from plugins.esign_local.mount import esign_mount

    register(esign_mount)
