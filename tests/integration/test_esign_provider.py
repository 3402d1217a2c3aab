"""Remote signing over real HTTP: the local e-signature service (plugins.esign_local) runs
under uvicorn on a free port in its own thread, xindai's web app under uvicorn in the test's
event loop (the service calls it back). The borrower signs on the service's page; the
callbacks move the contract to `signed`, the signed PDF is downloaded, verified against the
service's CA and stored. Forged, stale, replayed and unknown-flow callbacks are refused,
change nothing and are audited as security events."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from core import records
from core.tables import AuditEntry
from core.tenancy import tenant_scope
from core.webhooks import signature_header
from plugins.contracts import esign, service
from plugins.contracts.tables import ContractCallback
from plugins.esign_local.server import Service, create_app
from plugins.servicing import products
from tests.integration.test_contracts import CONFIG, PLUGINS, approved

APP_ID, SECRET = "xindai-test", "s3cret-" + secrets.token_hex(8)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@pytest.fixture(scope="module")
def esign_server() -> Iterator[tuple[str, Service]]:
    """The local service in a thread of its own (its own event loop), as a real one is."""
    port = free_port()
    svc = Service({APP_ID: SECRET})
    server = uvicorn.Server(uvicorn.Config(create_app(svc), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait_listening(port)
    yield f"http://127.0.0.1:{port}", svc
    server.should_exit = True
    thread.join(10)


@pytest.fixture
async def xindai_url(kernel: Any) -> AsyncIterator[str]:
    """xindai's app over HTTP, in this test's loop (its connection pool lives here)."""
    from core.web.app import create_app as xindai_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(xindai_app(kernel, open_db=False), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def remote_contract(new_tenant: Any, base_url: str) -> tuple[Any, str, dict[str, Any]]:
    ctx = await new_tenant(plugins=PLUGINS)
    await products.save_product(ctx, "XD01", "经营贷", CONFIG)
    page = await records.list_records(ctx, "customer", {"kind": "individual"})
    customer = str(page.items[0]["id"])
    await esign.save_config(ctx, "remote", base_url, APP_ID, SECRET)
    payload = approved(customer)
    await service.on_application_approved(ctx, payload)
    items, _ = await service.list_contracts(ctx)
    return ctx, customer, items[0]


async def wait_status(ctx: Any, contract_id: str, status: str, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        contract = await service.get_contract(ctx, contract_id)
        if contract["status"] == status:
            return contract
        await asyncio.sleep(0.1)
    raise AssertionError(f"still {contract['status']}, expected {status}")


async def refusals(ctx: Any) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        return await AuditEntry.select().where(
            AuditEntry.tenant_id == ctx.tenant_id,
            AuditEntry.action == "security.esign_callback_refused").output(
            load_json=True).run()


async def test_the_whole_remote_flow_over_http(kernel: Any, new_tenant: Any,
                                               esign_server: Any, xindai_url: str) -> None:
    base, svc = esign_server
    ctx, customer, contract = await remote_contract(new_tenant, base)
    started = await esign.start_signing(ctx, contract["id"], xindai_url)
    assert started["status"] == "sent" and started["provider"] == "remote"
    assert started["flow_id"] and started["signer_url"].startswith(base + "/sign/")
    name = (await records.get(ctx, "customer", customer))["name"]
    async with httpx.AsyncClient(timeout=30) as http:
        page = await http.get(started["signer_url"])
        assert page.status_code == 200 and "签署" in page.text
        code = re.search(r'class="otp">(\d{6})<', page.text).group(1)  # type: ignore[union-attr]
        bad = await http.post(started["signer_url"], data={"name": name, "code": "000000"
                                                           if code != "000000" else "111111",
                                                           "agreed": "yes"})
        assert bad.status_code == 422
        done = await http.post(started["signer_url"],
                               data={"name": name, "code": code, "agreed": "yes"})
        assert done.status_code == 200 and "已签署" in done.text
    signed = await wait_status(ctx, contract["id"], "signed")
    assert signed["signed_document_id"] and len(signed["signed_sha256"]) == 64
    assert [d["event"] for d in svc.delivered][-2:] == ["signer.signed", "flow.completed"]
    result = await service.verify(ctx, contract["id"])
    assert result["ok"] and result["trusted"]
    assert [s["field_name"] for s in result["signatures"]] == ["borrower", "lender"]
    assert "本地电子签名服务" not in (result["signatures"][0]["signer_cn"] or "")
    history = [(h["action"], h["to"]) for h in await service.contract_history(ctx,
                                                                              contract["id"])]
    assert history[:2] == [("generate", "generated"), ("send", "sent")]
    assert ("sign", "signed") in history


def _signed_callback(body: dict[str, Any], secret: str = SECRET,
                     t: int | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {"Content-Type": "application/json", "X-Esign-App-Id": APP_ID,
                 "X-Esign-Signature": signature_header(secret, raw, t)}


async def test_forged_stale_replayed_and_unknown_callbacks_are_refused(
        kernel: Any, new_tenant: Any, esign_server: Any, xindai_url: str) -> None:
    base, _ = esign_server
    ctx, _, contract = await remote_contract(new_tenant, base)
    started = await esign.start_signing(ctx, contract["id"], xindai_url)
    url = f"{xindai_url}/api/v1/contracts/esign/callback/{ctx.tenant.slug}"
    flow = started["flow_id"]
    async with httpx.AsyncClient(timeout=30) as http:
        event = {"event": "flow.declined", "flow_id": flow, "nonce": uuid.uuid4().hex}
        raw, headers = _signed_callback(event, secret="not-the-secret")
        assert (await http.post(url, content=raw, headers=headers)).status_code == 401
        raw, headers = _signed_callback(event, t=int(time.time()) - 3600)  # stale timestamp
        assert (await http.post(url, content=raw, headers=headers)).status_code == 401
        raw, headers = _signed_callback({**event, "flow_id": "F-unknown"})
        assert (await http.post(url, content=raw, headers=headers)).status_code == 400
        assert (await service.get_contract(ctx, contract["id"]))["status"] == "sent"
        reasons = [r["diff"]["reason"][1] for r in await refusals(ctx)]
        assert reasons == ["bad signature", "bad signature", "unknown flow"]
        # a genuine callback is applied once; the same nonce again is a replay
        genuine = {"event": "signer.signed", "role": "borrower", "flow_id": flow,
                   "nonce": uuid.uuid4().hex}
        raw, headers = _signed_callback(genuine)
        ok = await http.post(url, content=raw, headers=headers)
        assert ok.status_code == 200, ok.text
        assert (await service.get_contract(ctx, contract["id"]))["status"] == "borrower_signed"
        raw, headers = _signed_callback(genuine)  # re-signed now, same nonce
        replay = await http.post(url, content=raw, headers=headers)
        assert replay.status_code == 400
        assert (await service.get_contract(ctx, contract["id"]))["status"] == "borrower_signed"
        assert [r["diff"]["reason"][1] for r in await refusals(ctx)][-1] == "replayed"
        async with tenant_scope(ctx, write=False):
            assert await ContractCallback.count().where(
                ContractCallback.tenant_id == ctx.tenant_id).run() == 1
        other = await http.post(f"{xindai_url}/api/v1/contracts/esign/callback/no-such-tenant",
                                content=raw, headers=headers)
        assert other.status_code == 404
