"""The built-in credit-bureau provider: an HTTP client of the bureau protocol (JSON, an app
key, an HMAC-SHA256 signature over method, path, timestamp, nonce and body digest; see
docs/origination.md). It reaches a real bureau gateway or the local one (bureau_local)
the same way."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

import httpx

from core import setting_secrets
from core.tenancy import Context
from plugins.origination.credit import BureauError, CreditReport

PATH = "/v1/credit-reports"
TIMEOUT_S = 15.0


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    digest = hashlib.sha256(body).hexdigest()
    text = f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{digest}".encode()
    return hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()


class HttpCreditBureau:
    """`query` over HTTP; the bureau's error codes become BureauError with its message."""

    name = "http"

    def __init__(self, base_url: str, app_key: str, secret: str | None) -> None:
        """`secret` None: the tenant's sealed `origination.bureau_secret`, revealed per query."""
        self.base_url = base_url.rstrip("/")
        self.app_key, self.secret = app_key, secret

    def headers(self, body: bytes, secret: str) -> dict[str, str]:
        ts, nonce = str(int(time.time() * 1000)), secrets.token_hex(16)
        return {"Content-Type": "application/json", "X-Bureau-AppKey": self.app_key,
                "X-Bureau-Timestamp": ts, "X-Bureau-Nonce": nonce,
                "X-Bureau-Signature": sign(secret, "POST", PATH, ts, nonce, body)}

    async def query(self, ctx: Context, *, name: str, resident_id: str,
                    consent_ref: str) -> CreditReport:
        body = json.dumps({"name": name, "id_number": resident_id, "consent_ref": consent_ref,
                           "reason": "loan_approval", "request_id": uuid.uuid4().hex},
                          ensure_ascii=False).encode()
        secret = self.secret if self.secret is not None else await setting_secrets.reveal(
            ctx, "origination.bureau_secret")
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
                r = await client.post(self.base_url + PATH, content=body,
                                      headers=self.headers(body, secret))
        except httpx.HTTPError as exc:
            raise BureauError("bureau_failed", reason=type(exc).__name__) from None
        try:
            answer = r.json()
        except ValueError:
            answer = {}
        if r.status_code != 200 or answer.get("code") != "0000":
            code = str(answer.get("code") or r.status_code)
            reason = str(answer.get("message") or f"HTTP {r.status_code}")
            if 400 <= r.status_code < 500:
                raise BureauError("bureau_refused", reason=reason, bureau_code=code)
            raise BureauError("bureau_failed", reason=reason)
        data = answer.get("data") or {}
        try:
            pdf = base64.b64decode(data["report"]["content"], validate=True)
            return CreditReport(bureau=self.name, report_ref=str(data["report_no"]),
                                summary=dict(data["summary"]), document=pdf, raw=data)
        except (KeyError, TypeError, ValueError):
            raise BureauError("bureau_failed", reason="malformed answer") from None


def provider_for(tenant: Any) -> HttpCreditBureau | None:
    """The tenant's configured bureau, else the local one when bureau_local is enabled."""
    from core.kernel import kernel

    settings = tenant.settings or {}
    url = str(settings.get("origination.bureau_url") or "")
    if url:
        return HttpCreditBureau(url, str(settings.get("origination.bureau_app_key") or ""),
                                None)
    endpoint = kernel().provider("credit_bureau_endpoint", tenant)
    if endpoint:
        return HttpCreditBureau(endpoint["base_url"], endpoint["app_key"], endpoint["secret"])
    return None
