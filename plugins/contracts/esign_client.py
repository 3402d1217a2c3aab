"""The client side of the e-signature service protocol ("esign v1", docs/contracts.md),
modelled on e签宝 / 法大大 open APIs: create a signing flow, upload the document, start,
get a signer's URL, read the flow, download the signed file; the service calls back.

Every request is signed with the app secret: `X-Esign-Signature: t=<unix>,v1=<hex>` where
the hex is HMAC-SHA256 of `<t>.<METHOD>\\n<path>\\n<nonce>\\n<body>` (the kernel's webhook
signature, `core.webhooks.signature`, over that message), with `X-Esign-App-Id` and a fresh
`X-Esign-Nonce`. Callbacks are signed the same way over `<t>.<body>` alone; the body
carries its own nonce."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.webhooks import signature, verify_signature

TIMEOUT_S = 20.0
TOLERANCE_S = 300
APP_HEADER = "X-Esign-App-Id"
NONCE_HEADER = "X-Esign-Nonce"
SIGNATURE_HEADER = "X-Esign-Signature"


class ClientError(Exception):
    """The service could not be reached or refused the request."""


def request_message(method: str, path: str, nonce: str, body: bytes) -> bytes:
    return f"{method.upper()}\n{path}\n{nonce}\n".encode() + body


def sign_request(secret: str, method: str, path: str, body: bytes,
                 timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """The signature headers (without the app id) for one request."""
    t = int(time.time()) if timestamp is None else timestamp
    n = nonce or secrets.token_hex(16)
    mac = signature(secret, t, request_message(method, path, n, body))
    return {NONCE_HEADER: n, SIGNATURE_HEADER: f"t={t},v1={mac}"}


def verify_callback(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """A callback's signature is the service's and recent (within TOLERANCE_S)."""
    return verify_signature(secret, header or "", body, TOLERANCE_S, now)


class ESignClient:
    """One tenant's app at the service at `base_url` (e.g. https://esign.example/ or the
    local server mounted at http://host/_esign)."""

    def __init__(self, base_url: str, app_id: str, secret: str,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.prefix = urlsplit(self.base_url).path
        self.app_id, self.secret, self.transport = app_id, secret, transport

    async def _call(self, method: str, path: str, body: bytes = b"",
                    content_type: str = "application/json") -> httpx.Response:
        headers = {APP_HEADER: self.app_id, "Content-Type": content_type,
                   **sign_request(self.secret, method, self.prefix + path, body)}
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S, transport=self.transport) as c:
                response = await c.request(method, self.base_url + path, content=body,
                                           headers=headers)
        except httpx.HTTPError as exc:
            raise ClientError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise ClientError(f"HTTP {response.status_code}: {response.text[:200]}")
        return response

    async def _json(self, method: str, path: str, payload: Any = None) -> Any:
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        return (await self._call(method, path, body)).json()

    async def create_flow(self, title: str, callback_url: str,
                          signers: list[dict[str, Any]]) -> str:
        """A new flow; signers in order, each {role, field, name, id_number?, mobile?, auto?}
        (`auto`: the service signs for the organisation, 静默签署)."""
        out = await self._json("POST", "/v1/flows", {"title": title, "callback_url": callback_url,
                                                     "signers": signers})
        return str(out["flow_id"])

    async def upload(self, flow_id: str, pdf: bytes, filename: str) -> dict[str, Any]:
        response = await self._call("PUT", f"/v1/flows/{flow_id}/document", pdf,
                                    "application/pdf")
        return response.json()

    async def start(self, flow_id: str) -> dict[str, Any]:
        return await self._json("POST", f"/v1/flows/{flow_id}/start", {})

    async def signer_url(self, flow_id: str, role: str) -> str:
        return str((await self._json("GET", f"/v1/flows/{flow_id}/signers/{role}/url"))["url"])

    async def flow(self, flow_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/v1/flows/{flow_id}")

    async def download(self, flow_id: str) -> bytes:
        response = await self._call("GET", f"/v1/flows/{flow_id}/document/signed")
        if not response.content.startswith(b"%PDF-"):
            raise ClientError("the signed document is not a PDF")
        return response.content

    async def ca_pem(self) -> bytes:
        response = await self._call("GET", "/v1/ca")
        return response.content
