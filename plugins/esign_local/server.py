"""A local e-signature service speaking "esign v1" (docs/contracts.md), for tests and demos.

It plays the part of e签宝 / 法大大: apps (id + secret) create signing flows, upload a PDF,
start them, fetch a signer's URL, read a flow and download the signed file; every request
is HMAC-signed by the app (`core.webhooks.signature` over `<t>.<METHOD>\\n<path>\\n<nonce>\\n
<body>`, five-minute window, nonces single-use). The signer's URL is a page served here: the
borrower confirms with their name, a one-time code (a real service sends it by SMS; this one
prints it on the page, being a test double) and their consent. The service then signs the
borrower's field with a certificate it issues to the borrower under its own test CA, signs
the lender's field for the organisation (静默签署), and calls the app's callback URL with
`signer.signed` and `flow.completed` (signed over `<t>.<body>`, each with a fresh nonce,
retried a few times).

State is kept in memory: a restart forgets the flows (it is a test double, not a product).
Run alone with `xindai esign serve --port N`, or mounted in the web app under /_esign."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from html import escape
from typing import Any

import httpx
import structlog
from litestar import Litestar, Request, Response, get, post, put
from litestar.exceptions import HTTPException
from litestar.params import FromPath

from core.webhooks import signature, signature_header
from plugins.contracts import signing

log = structlog.get_logger("xindai.esign_local")
TOLERANCE_S = 300
CALLBACK_TRIES = 3
CA_NAME = "本地电子签名服务（测试）"


@dataclass
class Signer:
    role: str
    field: str
    name: str
    id_number: str = ""
    mobile: str = ""
    auto: bool = False
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    code: str = field(default_factory=lambda: f"{secrets.randbelow(10**6):06d}")
    status: str = "waiting"
    signed_at: float | None = None


@dataclass
class Flow:
    id: str
    app_id: str
    title: str
    callback_url: str
    signers: list[Signer]
    status: str = "draft"  # draft -> signing -> completed | declined | expired
    document: bytes = b""
    signed: bytes = b""


class Service:
    """The service's state: apps, flows, its CA and what it has seen."""

    def __init__(self, apps: dict[str, str], public_url: str = "") -> None:
        self.apps = dict(apps)
        self.public_url = public_url.rstrip("/")
        self.flows: dict[str, Flow] = {}
        self.nonces: dict[str, float] = {}
        self.ca = signing.new_tenant_ca(CA_NAME)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.delivered: list[dict[str, Any]] = []  # callbacks sent (for tests and logs)

    def authenticate(self, request: Request[Any, Any, Any], body: bytes) -> str:
        app_id = request.headers.get("x-esign-app-id", "")
        secret = self.apps.get(app_id)
        nonce = request.headers.get("x-esign-nonce", "")
        header = request.headers.get("x-esign-signature", "")
        parts = dict(p.strip().partition("=")[::2] for p in header.split(",") if "=" in p)
        if secret is None or not nonce or not parts.get("t", "").isdigit():
            raise HTTPException(status_code=401, detail="unknown app or unsigned request")
        t = int(parts["t"])
        path = request.scope.get("root_path", "") + request.url.path
        expected = signature(secret, t, f"{request.method}\n{path}\n{nonce}\n".encode() + body)
        now = time.time()
        if abs(now - t) > TOLERANCE_S or not hmac.compare_digest(expected, parts.get("v1", "")):
            raise HTTPException(status_code=401, detail="bad signature")
        if nonce in self.nonces:
            raise HTTPException(status_code=401, detail="replayed nonce")
        self.nonces = {n: at for n, at in self.nonces.items() if now - at < TOLERANCE_S}
        self.nonces[nonce] = now
        return app_id

    def flow(self, app_id: str, flow_id: str) -> Flow:
        flow = self.flows.get(flow_id)
        if flow is None or flow.app_id != app_id:
            raise HTTPException(status_code=404, detail="unknown flow")
        return flow

    def by_token(self, token: str) -> tuple[Flow, Signer]:
        for flow in self.flows.values():
            for s in flow.signers:
                if hmac.compare_digest(s.token, token):
                    return flow, s
        raise HTTPException(status_code=404, detail="unknown signing link")

    def base(self, request: Request[Any, Any, Any]) -> str:
        if self.public_url:
            return self.public_url
        root = request.scope.get("root_path", "")
        return str(request.base_url).rstrip("/") + root

    # -- signing --------------------------------------------------------------------------

    async def sign(self, flow: Flow, signer: Signer) -> None:
        """The signer's signature with a certificate this service issues to them, then the
        automatic signers (the lender's organisation)."""
        pdf = flow.signed or flow.document
        for s in [signer, *[x for x in flow.signers if x.auto and x.status == "waiting"]]:
            key, cert = await asyncio.to_thread(
                signing.issue_signer_certificate, self.ca.ca_key_pem, self.ca.ca_cert_pem,
                s.name[:20], organisation=None if s.auto else "个人")
            pdf = await signing.async_sign_pdf(
                pdf, key, cert, self.ca.ca_cert_pem, s.field,
                reason=f"{s.name} 签署（{'企业自动签署' if s.auto else '短信验证码意愿认证'}）",
                location="本地电子签名服务")
            s.status, s.signed_at = "signed", time.time()
        flow.signed = pdf
        events = [{"event": "signer.signed", "role": signer.role}]
        if all(s.status == "signed" for s in flow.signers):
            flow.status = "completed"
            events.append({"event": "flow.completed"})
        task = asyncio.ensure_future(self.callback(flow, events))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def callback(self, flow: Flow, events: list[dict[str, Any]]) -> None:
        """Deliver events in order, each signed with a fresh nonce; a few retries."""
        secret = self.apps[flow.app_id]
        for event in events:
            body = json.dumps({**event, "flow_id": flow.id, "nonce": secrets.token_hex(16),
                               "occurred_at": int(time.time())}).encode()
            for attempt in range(CALLBACK_TRIES):
                try:
                    async with httpx.AsyncClient(timeout=30) as client:
                        r = await client.post(flow.callback_url, content=body, headers={
                            "Content-Type": "application/json",
                            "X-Esign-App-Id": flow.app_id,
                            "X-Esign-Signature": signature_header(secret, body)})
                    self.delivered.append({**event, "status": r.status_code})
                    if r.status_code < 500:
                        break
                except httpx.HTTPError as exc:
                    log.warning("callback_failed", flow=flow.id, error=str(exc))
                await asyncio.sleep(0.5 * (attempt + 1))


def create_app(service: Service) -> Litestar:
    """The service as an ASGI app."""

    async def authed(request: Request[Any, Any, Any]) -> tuple[str, bytes]:
        body = await request.body()
        return service.authenticate(request, body), body

    @post("/v1/flows", status_code=201)
    async def create_flow(request: Request[Any, Any, Any]) -> dict[str, Any]:
        app_id, body = await authed(request)
        data = json.loads(body or b"{}")
        signers = [Signer(role=str(s["role"]), field=str(s["field"]), name=str(s["name"]),
                          id_number=str(s.get("id_number") or ""),
                          mobile=str(s.get("mobile") or ""), auto=bool(s.get("auto")))
                   for s in data.get("signers") or []]
        if not signers or not str(data.get("callback_url", "")).startswith("http"):
            raise HTTPException(status_code=400, detail="signers and callback_url required")
        flow = Flow(id="F" + secrets.token_hex(12), app_id=app_id,
                    title=str(data.get("title") or "")[:200],
                    callback_url=str(data["callback_url"]), signers=signers)
        service.flows[flow.id] = flow
        return {"flow_id": flow.id}

    @put("/v1/flows/{flow_id:str}/document")
    async def upload(request: Request[Any, Any, Any], flow_id: FromPath[str]) -> dict[str, Any]:
        app_id, body = await authed(request)
        flow = service.flow(app_id, flow_id)
        if not body.startswith(b"%PDF-") or flow.status != "draft":
            raise HTTPException(status_code=400, detail="a PDF, before the flow starts")
        flow.document = body
        return {"file_id": flow.id + "-doc", "sha256": hashlib.sha256(body).hexdigest()}

    @post("/v1/flows/{flow_id:str}/start", status_code=200)
    async def start(request: Request[Any, Any, Any], flow_id: FromPath[str]) -> dict[str, Any]:
        app_id, _ = await authed(request)
        flow = service.flow(app_id, flow_id)
        if not flow.document:
            raise HTTPException(status_code=400, detail="no document")
        flow.status = "signing"
        return {"status": flow.status}

    @get("/v1/flows/{flow_id:str}/signers/{role:str}/url")
    async def signer_url(request: Request[Any, Any, Any], flow_id: FromPath[str],
                         role: FromPath[str]) -> dict[str, Any]:
        app_id, _ = await authed(request)
        flow = service.flow(app_id, flow_id)
        signer = next((s for s in flow.signers if s.role == role), None)
        if signer is None:
            raise HTTPException(status_code=404, detail="unknown signer")
        return {"url": f"{service.base(request)}/sign/{signer.token}"}

    @get("/v1/flows/{flow_id:str}")
    async def read_flow(request: Request[Any, Any, Any], flow_id: FromPath[str]
                        ) -> dict[str, Any]:
        app_id, _ = await authed(request)
        flow = service.flow(app_id, flow_id)
        return {"flow_id": flow.id, "status": flow.status, "title": flow.title,
                "signers": [{"role": s.role, "status": s.status, "signed_at": s.signed_at}
                            for s in flow.signers]}

    @get("/v1/flows/{flow_id:str}/document/signed", media_type="application/pdf")
    async def download(request: Request[Any, Any, Any], flow_id: FromPath[str]) -> Response[bytes]:
        app_id, _ = await authed(request)
        flow = service.flow(app_id, flow_id)
        if flow.status != "completed":
            raise HTTPException(status_code=409, detail="the flow is not completed")
        return Response(flow.signed, media_type="application/pdf")

    @get("/v1/ca", media_type="application/x-pem-file")
    async def ca(request: Request[Any, Any, Any]) -> Response[bytes]:
        await authed(request)
        return Response(service.ca.ca_cert_pem, media_type="application/x-pem-file")

    def page(body: str, status: int = 200) -> Response[str]:
        return Response(f"<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
                        f"<meta name=\"viewport\" content=\"width=device-width\">"
                        f"<title>电子签名</title></head><body><main>{body}</main></body></html>",
                        media_type="text/html", status_code=status)

    def sign_form(flow: Flow, signer: Signer, token: str, error: str = "") -> str:
        root = ""
        return (f"<h1>签署：{escape(flow.title)}</h1>"
                f"<p>签署人：{escape(signer.name[:1])}**</p>"
                f"<p><a href=\"{root}{token}/document\" target=\"_blank\">查看合同（PDF）</a></p>"
                + (f"<p role=\"alert\" class=\"error\">{escape(error)}</p>" if error else "")
                + f"<p class=\"demo-code\">短信验证码已发送至 {escape(signer.mobile[:3])}****"
                f"{escape(signer.mobile[-4:])}（本地测试服务，验证码：<b class=\"otp\">"
                f"{signer.code}</b>）</p>"
                f"<form method=\"post\"><label>姓名 <input name=\"name\" required></label><br>"
                f"<label>验证码 <input name=\"code\" required></label><br>"
                f"<label><input type=\"checkbox\" name=\"agreed\" value=\"yes\"> 本人已阅读并同意"
                f"合同全部条款</label><br><button type=\"submit\">确认签署</button></form>")

    @get("/sign/{token:str}", media_type="text/html")
    async def sign_page(token: FromPath[str]) -> Response[str]:
        flow, signer = service.by_token(token)
        if signer.status == "signed":
            return page("<h1>已签署</h1><p>感谢，您已完成签署。</p>")
        if flow.status != "signing":
            return page("<h1>签署未开放</h1>", 409)
        return page(sign_form(flow, signer, f"{token}"))

    @get("/sign/{token:str}/document", media_type="application/pdf")
    async def sign_document(token: FromPath[str]) -> Response[bytes]:
        flow, _ = service.by_token(token)
        return Response(flow.document, media_type="application/pdf",
                        headers={"Content-Disposition": "inline"})

    @post("/sign/{token:str}", media_type="text/html", status_code=200)
    async def sign_submit(request: Request[Any, Any, Any], token: FromPath[str]
                          ) -> Response[str]:
        flow, signer = service.by_token(token)
        form = await request.form()
        if signer.status == "signed" or flow.status != "signing":
            return page("<h1>签署未开放</h1>", 409)
        name, code = str(form.get("name") or "").strip(), str(form.get("code") or "").strip()
        if name != signer.name or not hmac.compare_digest(code, signer.code):
            return page(sign_form(flow, signer, token, "姓名或验证码不正确"), 422)
        if form.get("agreed") != "yes":
            return page(sign_form(flow, signer, token, "请确认已阅读并同意合同条款"), 422)
        await service.sign(flow, signer)
        return page("<h1 class=\"done\">已签署</h1><p>签署完成，结果已通知贷款机构。</p>")

    return Litestar(route_handlers=[create_flow, upload, start, signer_url, read_flow,
                                    download, ca, sign_page, sign_document, sign_submit],
                    debug=False)
