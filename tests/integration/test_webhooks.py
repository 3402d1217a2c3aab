"""Outgoing webhooks on both engines against a REAL local HTTP server: an event reaches the
webhooks that want it once, signed; others get nothing; a failing receiver is retried and
every attempt logged; the secret is sealed and never audited in clear; in the saas profile
private destinations are refused (at creation and at delivery)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core import outbox, records, webhooks
from core.errors import ValidationFailed
from core.tables import AuditEntry, OutboxMessage, Webhook
from core.tenancy import tenant_scope
from tests.conftest import login

VALID = {"kind": "company", "name": "晋中示例商贸有限公司", "credit_code": "91110000600037341L"}
SIGNATURE_RE = re.compile(r"t=(\d+),v1=([0-9a-f]{64})")


class Receiver:
    """An HTTP server on 127.0.0.1 (a thread) that records every POST and answers with the
    scripted statuses, then `default`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[int] = []
        self.default = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"path": self.path, "body": body, "headers": {
                    k.lower(): v for k, v in self.headers.items()}})
                status = outer.script.pop(0) if outer.script else outer.default
                answer = b"ok" if status < 300 else b"receiver says no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def signed_by(secret: str, request: dict[str, Any]) -> bool:
    """Check the signature the way a receiver would, without xindai's code."""
    m = SIGNATURE_RE.fullmatch(request["headers"]["x-xindai-signature"])
    assert m, request["headers"]["x-xindai-signature"]
    expected = hmac.new(secret.encode(), m.group(1).encode() + b"." + request["body"],
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, m.group(2)) and abs(time.time() - int(m.group(1))) < 300


async def drain(ctx: Any, until: Any = None, rounds: int = 60) -> None:
    """Deliver due messages (no worker runs in these tests) until `until()` holds."""
    for _ in range(rounds):
        await outbox.run_due(ctx.tenant)
        if until is None or until():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not hold")


async def test_an_event_reaches_the_webhooks_that_want_it_once_signed(
        kernel: Any, new_tenant: Any, receiver: Receiver) -> None:
    ctx = await new_tenant(records=False)
    created_only, secret_a = await webhooks.create_webhook(
        ctx, receiver.url("/a"), ["customer.created"], "只要新建")
    customers, secret_b = await webhooks.create_webhook(ctx, receiver.url("/b"), ["customer.*"])
    off, _ = await webhooks.create_webhook(ctx, receiver.url("/off"), ["*"], active=False)
    assert secret_a.startswith("whsec_") and secret_a != secret_b and len(secret_a) > 40

    created = await records.create(ctx, "customer", VALID)
    assert receiver.requests == []  # nothing is sent before the relay runs
    await drain(ctx)
    [a], [b] = receiver.at("/a"), receiver.at("/b")
    assert signed_by(secret_a, a) and signed_by(secret_b, b)
    assert not signed_by(secret_b, a)
    body = json.loads(a["body"])
    assert body["type"] == "customer.created" and body["tenant"] == ctx.tenant.slug
    assert body["data"] == {"entity": "customer", "id": str(created["id"])}
    assert body["created_at"].endswith("Z")
    assert a["headers"]["content-type"] == "application/json"
    assert a["headers"]["x-xindai-event"] == "customer.created"
    assert a["headers"]["x-xindai-delivery"] == body["id"] == json.loads(b["body"])["id"]
    from core import outbox

    [event] = [m for m in await outbox.recent(ctx, kind="event")
               if m["name"] == "customer.created"]
    assert body["id"] == str(event["id"])  # the delivery id is the event's own id

    await drain(ctx)  # delivering again changes nothing: once per event and webhook
    await records.update(ctx, "customer", created["id"], {"name": "晋中示例商贸二公司"})
    await drain(ctx)
    assert len(receiver.at("/a")) == 1  # customer.updated is not for /a
    [_, updated] = receiver.at("/b")
    assert json.loads(updated["body"])["data"]["fields"] == ["name"]
    assert json.loads(updated["body"])["id"] != body["id"]
    assert receiver.at("/off") == []  # an inactive webhook gets nothing

    [log] = await webhooks.deliveries(ctx, __import__("uuid").UUID(created_only["id"]))
    assert (log["event"], log["attempt"], log["status_code"], log["delivered"]) == \
        ("customer.created", 1, 200, True)
    assert log["delivery_id"] == body["id"] and log["error"] is None
    assert off["active"] is False and customers["events"] == ["customer.*"]


async def test_a_webhook_created_after_an_event_does_not_receive_it(
        kernel: Any, new_tenant: Any, receiver: Receiver) -> None:
    ctx = await new_tenant(records=False)
    await records.create(ctx, "customer", VALID)  # queued, not yet delivered
    await webhooks.create_webhook(ctx, receiver.url("/late"), ["*"])
    await drain(ctx)
    assert receiver.at("/late") == []
    await records.create(ctx, "customer", {**VALID, "name": "晋中示例商贸三公司"})
    await drain(ctx)
    assert len(receiver.at("/late")) == 1


async def test_a_failing_receiver_is_retried_with_every_attempt_logged(
        kernel: Any, new_tenant: Any, receiver: Receiver, monkeypatch: Any) -> None:
    import uuid

    monkeypatch.setattr(outbox, "BACKOFF_BASE_S", 0.01)
    ctx = await new_tenant(records=False)
    hook, secret = await webhooks.create_webhook(ctx, receiver.url(), ["*"])
    receiver.script = [500, 502]
    await records.create(ctx, "customer", VALID)
    await drain(ctx, lambda: len(receiver.requests) == 3)
    ids = {r["headers"]["x-xindai-delivery"] for r in receiver.requests}
    bodies = {r["body"] for r in receiver.requests}
    assert len(ids) == 1 and len(bodies) == 1  # the same delivery, byte for byte
    assert all(signed_by(secret, r) for r in receiver.requests)
    log = await webhooks.deliveries(ctx, uuid.UUID(hook["id"]))
    assert [(d["attempt"], d["status_code"], d["delivered"]) for d in reversed(log)] == [
        (1, 500, False), (2, 502, False), (3, 200, True)]
    assert log[-1]["error"] == "HTTP 500: receiver says no"
    assert all(d["duration_ms"] >= 0 for d in log)
    [job] = await outbox.recent(ctx, kind="job")
    assert (job["name"], job["status"], job["attempts"]) == ("core.webhooks.deliver", "done", 3)
    assert job["max_attempts"] == kernel.settings.webhook_attempts
    await drain(ctx)
    assert len(receiver.requests) == 3


async def test_a_network_error_is_logged_and_retried(kernel: Any, new_tenant: Any) -> None:
    import socket
    import uuid

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = await new_tenant(records=False)
    hook, _ = await webhooks.create_webhook(ctx, f"http://127.0.0.1:{port}/", ["*"])
    await records.create(ctx, "customer", VALID)
    await outbox.run_due(ctx.tenant)
    [attempt] = await webhooks.deliveries(ctx, uuid.UUID(hook["id"]))
    assert attempt["status_code"] is None and not attempt["delivered"]
    assert "ConnectError" in attempt["error"]
    [job] = await outbox.recent(ctx, kind="job")
    assert job["status"] == "retrying" and "ConnectError" in job["last_error"]


async def test_a_deleted_or_inactive_webhook_skips_queued_deliveries(
        kernel: Any, new_tenant: Any, receiver: Receiver) -> None:
    import uuid

    ctx = await new_tenant(records=False)
    gone, _ = await webhooks.create_webhook(ctx, receiver.url("/gone"), ["*"])
    paused, _ = await webhooks.create_webhook(ctx, receiver.url("/paused"), ["*"])
    await records.create(ctx, "customer", VALID)
    await outbox.run_due(ctx.tenant, rounds=1)  # the event only: two jobs are queued
    assert len(await outbox.recent(ctx, kind="job")) == 2
    await webhooks.delete_webhook(ctx, uuid.UUID(gone["id"]))
    await webhooks.update_webhook(ctx, uuid.UUID(paused["id"]), active=False)
    await drain(ctx)
    assert receiver.requests == []
    assert {j["status"] for j in await outbox.recent(ctx, kind="job")} == {"done"}


async def test_the_secret_is_sealed_and_never_audited_in_clear(kernel: Any, new_tenant: Any,
                                                               receiver: Receiver) -> None:
    import uuid

    ctx = await new_tenant(records=False)
    hook, secret = await webhooks.create_webhook(ctx, receiver.url(), ["customer.created"])
    await webhooks.update_webhook(ctx, uuid.UUID(hook["id"]), events=["customer.deleted"],
                                  description="仅删除")
    await webhooks.delete_webhook(ctx, uuid.UUID(hook["id"]))
    async with tenant_scope(ctx, write=False):
        entries = await AuditEntry.select().where(
            AuditEntry.tenant_id == ctx.tenant_id, AuditEntry.entity == "webhook").order_by(
            AuditEntry.seq).output(load_json=True).run()
    assert [e["action"] for e in entries] == ["webhook.create", "webhook.update",
                                             "webhook.delete"]
    assert entries[1]["diff"] == {"events": [["customer.created"], ["customer.deleted"]],
                                  "description": ["", "仅删除"]}
    assert entries[0]["diff"]["secret"][1].startswith("hmac:")
    dumped = json.dumps(entries, default=str)
    assert secret not in dumped and secret[6:] not in dumped
    kept, secret = await webhooks.create_webhook(ctx, receiver.url(), ["*"])
    async with tenant_scope(ctx, write=False):
        [row] = await Webhook.select().where(Webhook.tenant_id == ctx.tenant_id).run()
    assert secret[6:] not in row["secret"] and "whsec" not in row["secret"]
    assert "secret" not in kept and "secret" not in (await webhooks.list_webhooks(ctx))[0]


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/hook", "http://",
                                 "https://user:pw@example.com/", "http://exa mple.com/",
                                 "https://example.com/" + "x" * 500])
async def test_bad_urls_and_event_types_are_refused(kernel: Any, new_tenant: Any,
                                                    url: str) -> None:
    ctx = await new_tenant(records=False)
    with pytest.raises(ValidationFailed) as bad:
        await webhooks.create_webhook(ctx, url, ["*"])
    assert bad.value.errors[0].code == "webhook_url"
    for events, code in (([], "webhook_events"), (["Customer Created"], "webhook_event_name"),
                         (["customer..created"], "webhook_event_name")):
        with pytest.raises(ValidationFailed) as bad:
            await webhooks.create_webhook(ctx, "https://example.com/hook", events)
        assert bad.value.errors[0].code == code
    assert await webhooks.list_webhooks(ctx) == []


async def test_the_saas_profile_refuses_private_destinations(
        kernel: Any, new_tenant: Any, receiver: Receiver, monkeypatch: Any) -> None:
    import uuid

    ctx = await new_tenant(records=False)
    onprem_hook, _ = await webhooks.create_webhook(ctx, receiver.url(), ["*"])  # embedded: ok
    monkeypatch.setattr(kernel, "settings", replace(kernel.settings, profile="saas"))
    for url in (receiver.url(), "http://localhost:8080/", "http://10.1.2.3/",
                "http://169.254.169.254/latest/meta-data/", "http://[::1]/",
                "http://[::ffff:127.0.0.1]/", "http://192.168.1.20/", "http://100.64.0.1/",
                "http://0.0.0.0/"):
        with pytest.raises(ValidationFailed) as refused:
            await webhooks.create_webhook(ctx, url, ["*"])
        assert refused.value.errors[0].code == "webhook_private_address", url
    with pytest.raises(ValidationFailed) as refused:
        await webhooks.update_webhook(ctx, uuid.UUID(onprem_hook["id"]), url="http://10.0.0.8/")
    assert "10.0.0.8" in refused.value.errors[0].message("en")
    assert await webhooks.public_addresses("8.8.8.8", 443) == ["8.8.8.8"]
    # the check is made again at delivery: the webhook created before reaches nothing
    await records.create(ctx, "customer", VALID)
    await outbox.run_due(ctx.tenant)
    assert receiver.requests == []
    [attempt] = await webhooks.deliveries(ctx, uuid.UUID(onprem_hook["id"]))
    assert "private" in attempt["error"] and attempt["status_code"] is None


async def test_the_api_manages_webhooks_and_retries_dead_jobs(
        client: Any, kernel: Any, new_tenant: Any, receiver: Receiver, monkeypatch: Any
) -> None:
    from core.webhooks import DELIVER_JOB

    ctx = await new_tenant(records=False)
    h = await login(client, ctx.tenant.slug)
    r = await client.post("/api/v1/webhooks", headers=h, json={
        "url": receiver.url(), "events": ["customer.created"], "description": "ERP"})
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["secret"].startswith("whsec_") and hook["active"] is True
    listed = (await client.get("/api/v1/webhooks", headers=h)).json()
    assert [w["id"] for w in listed] == [hook["id"]] and "secret" not in listed[0]
    assert "secret" not in (await client.get(f"/api/v1/webhooks/{hook['id']}", headers=h)).json()
    r = await client.post("/api/v1/webhooks", headers={**h, "Accept-Language": "zh-CN"},
                          json={"url": "ftp://x", "events": ["*"]})
    assert r.status_code == 422 and "http://" in r.text
    r = await client.patch(f"/api/v1/webhooks/{hook['id']}", headers=h,
                           json={"events": ["*"], "active": False})
    assert r.status_code == 200 and r.json()["events"] == ["*"] and not r.json()["active"]
    await client.patch(f"/api/v1/webhooks/{hook['id']}", headers=h, json={"active": True})

    # a delivery that dies (two attempts here), listed as dead, retried through the API
    monkeypatch.setattr(outbox, "BACKOFF_BASE_S", 0.01)
    monkeypatch.setattr(kernel, "jobs", [replace(j, max_retries=1) if j.name == DELIVER_JOB
                                         else j for j in kernel.jobs])
    receiver.default = 503
    await records.create(ctx, "customer", VALID)
    await drain(ctx, lambda: len(receiver.requests) == 2)
    r = await client.get("/api/v1/jobs", headers=h, params={"status": "dead"})
    [dead] = r.json()
    assert dead["name"] == DELIVER_JOB and "HTTP 503" in dead["last_error"]
    one = (await client.get(f"/api/v1/jobs/{dead['id']}", headers=h)).json()
    assert one["status"] == "dead" and one["attempts"] == 2
    receiver.default = 204
    r = await client.post(f"/api/v1/jobs/{dead['id']}/retry", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "retrying"  # due now, error kept
    r = await client.post(f"/api/v1/jobs/{dead['id']}/retry", headers=h)
    assert r.status_code == 409 and r.json()["code"] == "job_not_dead"
    await drain(ctx)
    assert (await client.get(f"/api/v1/jobs/{dead['id']}", headers=h)).json()["status"] == "done"
    r = await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=h)
    assert [(d["attempt"], d["status_code"]) for d in r.json()] == [(3, 204), (2, 503), (1, 503)]
    events = (await client.get("/api/v1/jobs", headers=h, params={"kind": "event"})).json()
    assert {e["name"] for e in events} == {"customer.created"}
    r = await client.delete(f"/api/v1/webhooks/{hook['id']}", headers=h)
    assert r.status_code == 204
    assert (await client.get(f"/api/v1/webhooks/{hook['id']}", headers=h)).status_code == 404
    async with tenant_scope(ctx, write=False):
        retried = await AuditEntry.count().where(AuditEntry.tenant_id == ctx.tenant_id,
                                                 AuditEntry.action == "job.retry")
        assert retried == 1
        assert await OutboxMessage.count().where(OutboxMessage.tenant_id == ctx.tenant_id,
                                                 OutboxMessage.dead_at.is_not_null()) == 0


async def test_without_the_permissions_the_api_refuses(client: Any, new_tenant: Any) -> None:
    from tests.integration.test_ui_pages import make_user

    ctx = await new_tenant(records=False)
    password = await make_user(ctx, "clerk", ["customer.read", "jobs.manage"])
    h = await login(client, ctx.tenant.slug, "clerk", password)
    assert (await client.get("/api/v1/webhooks", headers=h)).status_code == 403
    r = await client.post("/api/v1/webhooks", headers=h,
                          json={"url": "https://example.com/", "events": ["*"]})
    assert r.status_code == 403
    assert (await client.get("/api/v1/jobs", headers=h)).status_code == 200  # its one right
    password = await make_user(ctx, "viewer", ["customer.read"])
    h = await login(client, ctx.tenant.slug, "viewer", password)
    assert (await client.get("/api/v1/jobs", headers=h)).status_code == 403
