"""The local credit bureau: a small ASGI app (Litestar) that speaks the protocol of
plugins.bureau_local.protocol, verifies every signature and answers deterministic synthetic
reports. It stands in for a real bureau in demos and tests, over real HTTP.

Run it on its own with `xindai bureau serve --port N`, or let `start_in_thread` run it
inside the current process (the demo does this: see plugins.bureau_local).
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar, Request, Response, post

from plugins.bureau_local import protocol, reports

NONCE_RE = re.compile(r"[0-9a-fA-F]{16,64}")
MESSAGES = {
    "1001": "缺少签名请求头 / signature headers missing",
    "1002": "未知的 AppKey / unknown app key",
    "1003": "签名不匹配 / signature does not match",
    "1004": "时间戳超出允许范围 / timestamp out of window",
    "1005": "请求随机数重复使用 / nonce reused",
    "2000": "请求体不是 JSON 对象 / body is not a JSON object",
    "2001": "缺少授权书编号 / consent reference missing",
    "2002": "证件号码无效 / resident ID invalid",
    "2003": "缺少姓名 / name missing",
    "2004": "查询原因不允许 / reason not allowed",
}


class _Nonces:
    """Nonces seen in the last NONCE_TTL_S seconds (a replayed request is refused)."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()

    def fresh(self, key: str) -> bool:
        now = time.monotonic()
        with self.lock:
            for old in [k for k, at in self.seen.items() if now - at > protocol.NONCE_TTL_S]:
                del self.seen[old]
            if key in self.seen:
                return False
            self.seen[key] = now
            return True


def _answer(status: int, code: str, request_id: str, data: Any = None) -> Response[Any]:
    body: dict[str, Any] = {"code": code, "message": "成功" if code == "0000" else MESSAGES[code],
                            "request_id": request_id}
    if data is not None:
        body["data"] = data
    return Response(body, status_code=status, media_type="application/json")


def create_app(apps: dict[str, str]) -> Litestar:
    """The bureau for the given {app key: secret} pairs."""
    nonces = _Nonces()

    @post(protocol.PATH, status_code=200)
    async def credit_report(request: Request[Any, Any, Any]) -> Response[Any]:
        body = await request.body()
        h = request.headers
        app_key, ts = h.get("x-bureau-appkey", ""), h.get("x-bureau-timestamp", "")
        nonce, sig = h.get("x-bureau-nonce", ""), h.get("x-bureau-signature", "")
        if not (app_key and ts.isdigit() and NONCE_RE.fullmatch(nonce) and sig):
            return _answer(401, "1001", "")
        secret = apps.get(app_key)
        if secret is None:
            return _answer(401, "1002", "")
        expected = protocol.signature(secret, "POST", protocol.PATH, ts, nonce, body)
        if not hmac.compare_digest(expected, sig.lower()):
            return _answer(401, "1003", "")
        if abs(int(ts) - int(time.time() * 1000)) > protocol.WINDOW_MS:
            return _answer(401, "1004", "")
        if not nonces.fresh(f"{app_key}:{nonce}"):
            return _answer(401, "1005", "")
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return _answer(400, "2000", "")
        request_id = str(data.get("request_id") or "")[:64]
        name = str(data.get("name") or "").strip()
        id_number = str(data.get("id_number") or "").strip().upper()
        consent = str(data.get("consent_ref") or "").strip()
        if not consent:
            return _answer(400, "2001", request_id)
        if not reports.valid_resident_id(id_number):
            return _answer(400, "2002", request_id)
        if not name:
            return _answer(400, "2003", request_id)
        if data.get("reason", "loan_approval") not in protocol.REASONS:
            return _answer(400, "2004", request_id)
        now = datetime.now(UTC)
        summary = reports.summary_for(id_number)
        report_no = reports.report_number(id_number, now)
        pdf = reports.render_pdf(name, id_number, consent, report_no, summary, now)
        return _answer(200, "0000", request_id, {
            "report_no": report_no, "generated_at": now.isoformat(), "summary": summary,
            "report": {"format": "pdf", "content": base64.b64encode(pdf).decode()}})

    return Litestar(route_handlers=[credit_report], openapi_config=None, debug=False)


@dataclass
class Running:
    """A bureau served by uvicorn in a background thread."""

    url: str
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_in_thread(apps: dict[str, str], host: str = "127.0.0.1", port: int = 0) -> Running:
    """Serve the bureau on host:port (0: a free port) until `stop()`; returns once it
    accepts connections."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    config = uvicorn.Config(create_app(apps), log_level="warning", lifespan="off",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="bureau-local", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the local credit bureau did not start")
        time.sleep(0.02)
    return Running(f"http://{host}:{bound}", server, thread)
