"""Idempotency-Key on both databases: one effect per key, the first answer replayed, other
parameters refused, 5xx not stored, keys per user, expiry and purge, concurrent duplicates.

The money route is the example plugin's `POST /api/v1/example/payments` (an idempotent
route that records the payer as a customer and answers with a fresh id and time); the
generic entity create is tested through the customer entity.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from core import idempotency as idem
from core import records
from core.tables import IdempotencyKey
from core.tenancy import Context, tenant_scope
from tests.conftest import login

PAY = "/api/v1/example/payments"


async def payer_records(ctx: Context, payer: str) -> int:
    page = await records.list_records(ctx, "customer", {"name": payer})
    return page.total


async def keys_of(ctx: Context) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        return await IdempotencyKey.select().where(
            IdempotencyKey.tenant_id == ctx.tenant_id).output(load_json=True).run()


async def setup(client: Any, new_tenant: Any) -> tuple[Context, dict[str, str]]:
    ctx = await new_tenant(plugins=["crm", "example"], records=False)
    return ctx, await login(client, ctx.tenant.slug)


def key() -> str:
    return f"pay-{uuid.uuid4()}"


async def test_a_retry_gets_the_first_answer_and_makes_no_second_record(
    client: Any, new_tenant: Any
) -> None:
    ctx, h = await setup(client, new_tenant)
    k = key()
    first = await client.post(PAY, headers={**h, "Idempotency-Key": k},
                              json={"payer": "甲公司", "amount": "1200.50"})
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    # the same request, its JSON keys in another order and spaced differently, in English
    again = await client.post(f"{PAY}?lang=en", headers={**h, "Idempotency-Key": k},
                              content=b'{ "amount": "1200.50",  "payer": "\\u7532\\u516c\\u53f8" }')
    assert again.status_code == 201
    assert again.content == first.content  # same id, same time: the stored answer
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    assert await payer_records(ctx, "甲公司") == 1
    stored = await keys_of(ctx)
    assert [(r["key"], r["status"], r["response_status"]) for r in stored] == [(k, "done", 201)]
    assert "甲公司" not in stored[0]["response_body"]  # sealed with the tenant's data key
    assert first.json()["payment"] not in stored[0]["response_body"]


async def test_the_same_key_with_other_parameters_is_refused(
    client: Any, new_tenant: Any
) -> None:
    ctx, h = await setup(client, new_tenant)
    k = key()
    r = await client.post(PAY, headers={**h, "Idempotency-Key": k},
                          json={"payer": "乙公司", "amount": "100.00"})
    assert r.status_code == 201
    r = await client.post(PAY, headers={**h, "Idempotency-Key": k},
                          json={"payer": "乙公司", "amount": "100.01"})
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"
    assert r.json()["title"] == f"Idempotency-Key“{k}”已用于另一个内容不同的请求；新的业务请使用新的键"
    r = await client.post(f"{PAY}?lang=en", headers={**h, "Idempotency-Key": k},
                          json={"payer": "丙公司", "amount": "100.00"})
    assert r.json()["title"] == (f"Idempotency-Key '{k}' was already used for a different "
                                 "request; use a new key for a new operation")
    # the same key on another idempotent route is another request too
    r = await client.post("/api/v1/customers", headers={**h, "Idempotency-Key": k},
                          json={"kind": "company", "name": "乙公司", "credit_code":
                                "91110000600037341L"})
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"
    assert await payer_records(ctx, "乙公司") == 1 and await payer_records(ctx, "丙公司") == 0


async def test_the_header_is_required_checked_and_comes_after_access(
    client: Any, new_tenant: Any
) -> None:
    ctx, h = await setup(client, new_tenant)
    body = {"payer": "丁公司", "amount": "5.00"}
    r = await client.post(PAY, headers=h, json=body)
    assert r.status_code == 400 and r.json()["code"] == "idempotency_key_missing"
    assert "Idempotency-Key" in r.json()["title"] and "请求头" in r.json()["title"]
    r = await client.post(PAY, headers={**h, "Accept-Language": "en"}, json=body)
    assert r.json()["title"].startswith("this endpoint requires the Idempotency-Key header")
    for bad in ("two words", "x" * 256, ""):
        r = await client.post(PAY, headers={**h, "Idempotency-Key": bad}, json=body)
        assert r.status_code == 400, bad
        assert r.json()["code"] == ("idempotency_key_missing" if bad == "" else
                                    "idempotency_key_invalid")
    assert (await client.post(PAY, headers={**h, "Idempotency-Key": "x" * 255},
                              json=body)).status_code == 201
    # no token: 401, not 400; and a refused request leaves no key behind
    r = await client.post(PAY, json=body)
    assert r.status_code == 401
    r = await client.post(PAY, headers={"Idempotency-Key": "anon"}, json=body)
    assert r.status_code == 401
    assert [row["key"] for row in await keys_of(ctx)] == ["x" * 255]


async def test_twenty_concurrent_duplicates_have_one_effect_and_one_answer(
    client: Any, new_tenant: Any
) -> None:
    ctx, h = await setup(client, new_tenant)
    k = key()
    body = {"payer": "并发公司", "amount": "88.80", "delay": "0.2"}
    answers = await asyncio.gather(*[
        client.post(PAY, headers={**h, "Idempotency-Key": k}, json=body) for _ in range(20)])
    assert {r.status_code for r in answers} == {201}
    assert len({r.content for r in answers}) == 1
    assert sum(1 for r in answers if "idempotent-replayed" in r.headers) == 19
    assert await payer_records(ctx, "并发公司") == 1


async def test_a_5xx_is_not_stored_and_its_writes_are_undone(
    client: Any, new_tenant: Any
) -> None:
    from xindai_example_plugin import FAIL_NEXT

    ctx, h = await setup(client, new_tenant)
    k, body = key(), {"payer": "戊公司", "amount": "10.00"}
    FAIL_NEXT.add("戊公司")
    r = await client.post(PAY, headers={**h, "Idempotency-Key": k}, json=body)
    assert r.status_code == 500 and r.json()["code"] == "internal"
    assert await payer_records(ctx, "戊公司") == 0  # the record written before the crash
    assert await keys_of(ctx) == []  # nothing stored: the client may retry
    r = await client.post(PAY, headers={**h, "Idempotency-Key": k}, json=body)
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    again = await client.post(PAY, headers={**h, "Idempotency-Key": k}, json=body)
    assert again.content == r.content and again.headers["idempotent-replayed"] == "true"
    assert await payer_records(ctx, "戊公司") == 1


async def test_a_4xx_is_stored_and_replayed(client: Any, new_tenant: Any) -> None:
    ctx, h = await setup(client, new_tenant)
    k, body = key(), {"payer": "己公司", "amount": "12.345"}  # fen at most: refused
    r = await client.post(PAY, headers={**h, "Idempotency-Key": k}, json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "money_digits"
    again = await client.post(PAY, headers={**h, "Idempotency-Key": k}, json=body)
    assert again.status_code == 422 and again.content == r.content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"].startswith("application/problem+json")
    assert await payer_records(ctx, "己公司") == 0


async def test_keys_belong_to_their_user(client: Any, new_tenant: Any) -> None:
    from core.identity import create_user

    ctx, h = await setup(client, new_tenant)
    await create_user(ctx, "second", "第二位", "another-pass-9", ["tenant_admin"])
    h2 = await login(client, ctx.tenant.slug, "second", "another-pass-9")
    k, body = key(), {"payer": "庚公司", "amount": "1.00"}
    a = await client.post(PAY, headers={**h, "Idempotency-Key": k}, json=body)
    b = await client.post(PAY, headers={**h2, "Idempotency-Key": k}, json=body)
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers and a.json()["payment"] != b.json()["payment"]
    assert await payer_records(ctx, "庚公司") == 2
    # a different body from the second user is not compared with the first user's key
    c = await client.post(PAY, headers={**h2, "Idempotency-Key": key()},
                          json={**body, "amount": "2.00"})
    assert c.status_code == 201


async def test_expired_keys_are_new_and_purged(
    client: Any, new_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, h = await setup(client, new_tenant)
    old, kept = key(), key()
    for k in (old, kept):
        r = await client.post(PAY, headers={**h, "Idempotency-Key": k},
                              json={"payer": "辛公司", "amount": "3.00"})
        assert r.status_code == 201
    async with tenant_scope(ctx):
        await IdempotencyKey.update({IdempotencyKey.expires_at: idem.now() - timedelta(
            seconds=1)}).where(IdempotencyKey.tenant_id == ctx.tenant_id,
                               IdempotencyKey.key == old).run()
    # expired: the same key with another body is a new request, not a 422
    r = await client.post(PAY, headers={**h, "Idempotency-Key": old},
                          json={"payer": "壬公司", "amount": "4.00"})
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert await payer_records(ctx, "壬公司") == 1
    rows = {r["key"]: r for r in await keys_of(ctx)}
    assert rows[old]["expires_at"] > idem.now() + timedelta(hours=23)  # a fresh 24 h
    # purge: only expired rows go, only this tenant's
    other, h_other = await setup(client, new_tenant)
    await client.post(PAY, headers={**h_other, "Idempotency-Key": old},
                      json={"payer": "癸公司", "amount": "1.00"})
    later = idem.now() + timedelta(hours=25)
    monkeypatch.setattr(idem, "now", lambda: later)
    assert await idem.purge_expired(ctx) == 2
    assert await keys_of(ctx) == []
    assert len(await keys_of(other)) == 1
    monkeypatch.undo()
    assert await idem.purge_expired(other) == 0


async def test_the_ttl_comes_from_the_settings(
    client: Any, new_tenant: Any, kernel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, h = await setup(client, new_tenant)
    monkeypatch.setattr(kernel, "settings", replace(kernel.settings, idempotency_ttl_hours=2))
    r = await client.post(PAY, headers={**h, "Idempotency-Key": "ttl"},
                          json={"payer": "子公司", "amount": "1.00"})
    assert r.status_code == 201
    row = (await keys_of(ctx))[0]
    assert timedelta(hours=2) - timedelta(minutes=1) < row["expires_at"] - row["created_at"] \
        <= timedelta(hours=2)


async def test_a_duplicate_waits_for_the_running_first_then_gives_up_with_409(
    client: Any, new_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, h = await setup(client, new_tenant)
    monkeypatch.setattr(idem, "WAIT_SECONDS", 0.2)
    k, body = key(), {"payer": "丑公司", "amount": "1.00", "delay": "1.0"}
    first = asyncio.ensure_future(client.post(PAY, headers={**h, "Idempotency-Key": k},
                                              json=body))
    await asyncio.sleep(0.3)
    r = await client.post(PAY, headers={**h, "Idempotency-Key": k}, json=body)
    assert r.status_code == 409 and r.json()["code"] == "idempotency_in_progress"
    assert "仍在处理中" in r.json()["title"]
    done = await first
    assert done.status_code == 201
    r = await client.post(PAY, headers={**h, "Idempotency-Key": k}, json=body)
    assert r.content == done.content and r.headers["idempotent-replayed"] == "true"


async def test_a_dead_claim_is_taken_over_after_its_lease_and_fenced(
    client: Any, new_tenant: Any
) -> None:
    """A process that died mid-request left an in_progress row (and, since the answer is
    stored in the request's transaction, no effect). After the lease a retry runs."""
    ctx, h = await setup(client, new_tenant)
    from core.identity import user_context
    from core.tables import User

    async with tenant_scope(ctx, write=False):
        admin = (await User.select().where(User.tenant_id == ctx.tenant_id,
                                           User.username == "admin").run())[0]
    user = await user_context(ctx.tenant, admin, "zh-CN")
    body = b'{"payer":"\xe5\xaf\x85\xe5\x85\xac\xe5\x8f\xb8","amount":"1.00"}'
    fp = idem.fingerprint("POST", PAY, "", body)
    dead = await idem.begin(user, "crashed", "POST", PAY, fp)
    assert isinstance(dead, idem.Claim)
    async with tenant_scope(ctx):
        await IdempotencyKey.update({IdempotencyKey.locked_at: idem.now() - timedelta(
            seconds=idem.LEASE_SECONDS + 1)}).where(IdempotencyKey.id == dead.id).run()
    r = await client.post(PAY, headers={**h, "Idempotency-Key": "crashed"}, content=body)
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert await payer_records(ctx, "寅公司") == 1
    # the dead holder, should it wake up, can no longer store an answer
    with pytest.raises(idem.Fenced):
        await idem.complete(user, dead, idem.Answer(200, [], b"{}"))
    r2 = await client.post(PAY, headers={**h, "Idempotency-Key": "crashed"}, content=body)
    assert r2.content == r.content


async def test_customer_create_takes_an_optional_key(client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    h = await login(client, ctx.tenant.slug)
    body = {"kind": "company", "name": "卯公司", "credit_code": "91110000600037341L"}
    k = key()
    a = await client.post("/api/v1/customers", headers={**h, "Idempotency-Key": k}, json=body)
    b = await client.post("/api/v1/customers", headers={**h, "Idempotency-Key": k}, json=body)
    assert a.status_code == b.status_code == 201 and a.json()["id"] == b.json()["id"]
    assert b.headers["idempotent-replayed"] == "true"
    assert await payer_records(ctx, "卯公司") == 1
    for _ in range(2):  # without a key: plain creates
        assert (await client.post("/api/v1/customers", headers=h, json=body)).status_code == 201
    assert await payer_records(ctx, "卯公司") == 3
    r = await client.post("/api/v1/customers", headers={**h, "Idempotency-Key": "a b"},
                          json=body)
    assert r.status_code == 400 and r.json()["code"] == "idempotency_key_invalid"


async def test_an_entity_can_require_the_key_on_create(
    kernel: Any, new_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from core.web.app import create_app

    customer = kernel.registry.entities["customer"]
    monkeypatch.setitem(kernel.registry.entities, "customer", replace(customer, idempotent=True))
    app = create_app(kernel, open_db=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as c:
        ctx = await new_tenant(records=False)
        h = await login(c, ctx.tenant.slug)
        body = {"kind": "company", "name": "辰公司", "credit_code": "91110000600037341L"}
        r = await c.post("/api/v1/customers", headers=h, json=body)
        assert r.status_code == 400 and r.json()["code"] == "idempotency_key_missing"
        r = await c.post("/api/v1/customers", headers={**h, "Idempotency-Key": "c-1"}, json=body)
        assert r.status_code == 201
        doc = (await c.get("/api/v1/openapi.json")).json()
    params = doc["paths"]["/api/v1/customers"]["post"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in params] == \
        [("Idempotency-Key", "header", True)]
    assert await payer_records(ctx, "辰公司") == 1


def test_routes_that_cannot_be_idempotent_are_refused_at_start() -> None:
    from litestar import Litestar, get, post

    from core.web.idempotency import check_routes

    @post("/a", opt={"public": True, "idempotent": True})
    async def public_route() -> None: ...

    @get("/b", opt={"authenticated": True, "idempotent": True})
    async def read_route() -> None: ...

    @post("/c", opt={"authenticated": True, "idempotent": "yes"})
    async def odd_mode() -> None: ...

    @post("/d", opt={"authenticated": True, "idempotent": True})
    async def fine() -> None: ...

    for handler, words in ((public_route, "public"), (read_route, "change state"),
                           (odd_mode, "True or 'optional'")):
        with pytest.raises(ValueError, match=words):
            check_routes(Litestar([handler, fine]))
    check_routes(Litestar([fine]))


def test_fingerprint_is_canonical_but_tells_requests_apart() -> None:
    fp = idem.fingerprint
    base = fp("POST", "/p", "", b'{"a": 1, "b": [1, 2]}')
    assert base == fp("post", "/p", "lang=en", b'{"b":[1,2],"a":1}')
    assert len({base, fp("POST", "/q", "", b'{"a":1,"b":[1,2]}'),
                fp("PUT", "/p", "", b'{"a":1,"b":[1,2]}'),
                fp("POST", "/p", "x=1", b'{"a":1,"b":[1,2]}'),
                fp("POST", "/p", "", b'{"a":1,"b":[2,1]}'),
                fp("POST", "/p", "", b"not json")}) == 6


async def test_duplicates_across_two_server_processes_have_one_effect(
    pg: Any, new_pg_tenant: Any, tmp_path: Any
) -> None:
    """Two `xindai serve` processes (each its own connection pool) on one PostgreSQL: 20
    concurrent requests with one key, split between them, make one record and one answer."""
    import httpx

    ctx = await new_pg_tenant(plugins=["crm", "example"], records=False)
    servers = [_serve(pg.settings, tmp_path / f"web{i}") for i in range(2)]
    try:
        bases = [await _ready(proc, port) for proc, port in servers]
        async with httpx.AsyncClient(timeout=60) as http:
            r = await http.post(f"{bases[0]}/api/v1/auth/login", json={
                "tenant": ctx.tenant.slug, "username": "admin", "password": "test-password-1"})
            h = {"Authorization": f"Bearer {r.json()['token']}", "Idempotency-Key": key()}
            body = {"payer": "两进程公司", "amount": "66.00", "delay": "0.3"}
            answers = await asyncio.gather(*[
                http.post(f"{bases[i % 2]}{PAY}", headers=h, json=body) for i in range(20)])
    finally:
        for proc, _ in servers:
            _stop(proc)
    assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
    assert len({r.content for r in answers}) == 1
    assert sum(1 for r in answers if "idempotent-replayed" in r.headers) == 19
    assert await payer_records(ctx, "两进程公司") == 1


def _serve(settings: Any, data_dir: Any) -> tuple[Any, int]:
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import FIXTURES, ROOT
    from tests.e2e.test_demo import free_port

    data_dir.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINDAI_")}
    env.update({
        "XINDAI_DATA_DIR": str(data_dir), "XINDAI_DATABASE_URL": settings.database_url,
        "XINDAI_KEY_FILE": str(settings.key_file.resolve()),
        "XINDAI_AUDIT_KEY_FILE": str(settings.audit_key_file.resolve()),
        "XINDAI_DB_POOL_SIZE": "5", "XINDAI_LOG_LEVEL": "warning",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(FIXTURES / "external")]),
    })
    xindai = str(Path(sys.executable).parent / "xindai")
    proc = subprocess.Popen([xindai, "serve", "--no-jobs", "--port", str(port)], cwd=data_dir,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    return proc, port


async def _ready(proc: Any, port: int) -> str:
    import httpx

    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"xindai serve stopped: {proc.stderr.read()}")
        try:
            async with httpx.AsyncClient() as http:
                if (await http.get(f"{base}/api/v1/health")).status_code == 200:
                    return base
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("xindai serve did not start in 30 s")


def _stop(proc: Any) -> None:
    import signal
    import subprocess

    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
