"""The JSON API on both databases: sign-in, CRUD, errors in the caller's language, isolation."""

from __future__ import annotations

from typing import Any

from tests.conftest import login

NEW = {"kind": "individual", "name": "郭晓东", "resident_id": "11010519491231002X",
       "mobile": "+86 186 0351 2233", "region": "140107", "annual_income": "66000"}


async def test_login_failures_are_uniform_and_localised(client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    for body in ({"tenant": ctx.tenant.slug, "username": "admin", "password": "wrong-pass"},
                 {"tenant": ctx.tenant.slug, "username": "nobody", "password": "x" * 10},
                 {"tenant": "no-such-tenant", "username": "admin", "password": "x" * 10}):
        r = await client.post("/api/v1/auth/login", json=body)
        assert r.status_code == 401
        assert r.json()["title"] == "用户名或密码错误"
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.post("/api/v1/auth/login", headers={"Accept-Language": "en-US"},
                          json={"tenant": ctx.tenant.slug, "username": "admin", "password": "no"})
    assert r.json()["title"] == "wrong username or password"


async def test_requests_without_a_valid_token_are_refused(client: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer xd_00_nonsense"},
                    {"Authorization": "Basic abc"}):
        r = await client.get("/api/v1/customers", headers=headers)
        assert r.status_code == 401
        assert r.json()["code"] == "unauthenticated"


async def test_crud_through_http(client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    h = await login(client, ctx.tenant.slug)
    r = await client.post("/api/v1/customers", headers=h, json={**NEW, "wechat_id": "wx_guo"})
    assert r.status_code == 201, r.text
    rec = r.json()
    assert rec["mobile"] == "186****2233" and rec["annual_income"] == "66000.00"
    r = await client.get(f"/api/v1/customers/{rec['id']}", headers=h)
    assert r.json()["wechat_id"] == "wx_guo"
    r = await client.patch(f"/api/v1/customers/{rec['id']}", headers={**h, "If-Match": '"1"'},
                           json={"address": "太原市杏花岭区府西街 9 号"})
    assert r.status_code == 200 and r.json()["version"] == 2
    r = await client.patch(f"/api/v1/customers/{rec['id']}", headers={**h, "If-Match": "1"},
                           json={"address": "别处"})
    assert r.status_code == 409 and r.json()["code"] == "version_conflict"
    r = await client.get("/api/v1/customers", headers=h,
                         params={"mobile": "18603512233", "sort": "-name"})
    assert [i["id"] for i in r.json()["items"]] == [rec["id"]]
    r = await client.delete(f"/api/v1/customers/{rec['id']}", headers=h)
    assert r.status_code == 204
    r = await client.get(f"/api/v1/customers/{rec['id']}", headers=h)
    assert r.status_code == 404


async def test_validation_errors_name_the_field_in_the_users_language(
    client: Any, new_tenant: Any
) -> None:
    ctx = await new_tenant(records=False)
    h = await login(client, ctx.tenant.slug)
    bad = {**NEW, "resident_id": "110105194912310021", "favourite": "x"}
    r = await client.post("/api/v1/customers", headers=h, json=bad)
    assert r.status_code == 422
    errors = {e["field"]: e for e in r.json()["errors"]}
    assert errors["resident_id"]["message"] == "身份证号校验位错误"
    assert errors["favourite"]["code"] == "unknown_field"
    r = await client.post("/api/v1/customers?lang=en", headers=h, json=bad)
    assert {e["field"]: e["message"] for e in r.json()["errors"]}["resident_id"] == \
        "Resident ID has a wrong check character"
    r = await client.post("/api/v1/customers", headers=h, content=b"[1, 2]")
    assert r.status_code == 400
    r = await client.get("/api/v1/customers", headers=h)
    assert r.json()["total"] == 0  # nothing was half-written


async def test_custom_fields_through_http(client: Any, new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    h = await login(client, ctx.tenant.slug)
    r = await client.post("/api/v1/customers/fields", headers=h, json={
        "key": "house_owner", "type": "boolean", "label": {"zh-CN": "是否有房", "en": "Owns a home"},
        "required": True})
    assert r.status_code == 201, r.text
    r = await client.get("/api/v1/customers/fields", headers={**h, "Accept-Language": "en"})
    labels = {f["key"]: f["label"] for f in r.json()}
    assert labels["house_owner"] == "Owns a home" and labels["resident_id"] == "Resident ID"
    r = await client.post("/api/v1/customers", headers=h, json=NEW)
    assert r.status_code == 422
    assert r.json()["errors"][0] == {
        "field": "house_owner", "code": "required", "message": "是否有房为必填项",
        "message_zh": "是否有房为必填项", "message_en": "Owns a home is required"}
    r = await client.post("/api/v1/customers", headers=h, json={**NEW, "house_owner": "否"})
    assert r.status_code == 201 and r.json()["house_owner"] is False
    r = await client.delete("/api/v1/customers/fields/house_owner", headers=h)
    assert r.status_code == 204


async def test_another_tenants_records_answer_404(client: Any, new_tenant: Any) -> None:
    a, b = await new_tenant(), await new_tenant()
    ha, hb = await login(client, a.tenant.slug), await login(client, b.tenant.slug)
    b_items = (await client.get("/api/v1/customers", headers=hb)).json()["items"]
    a_items = (await client.get("/api/v1/customers", headers=ha)).json()["items"]
    assert len(b_items) == 2 and not {i["id"] for i in a_items} & {i["id"] for i in b_items}
    for item in b_items:
        url = f"/api/v1/customers/{item['id']}"
        assert (await client.get(url, headers=ha)).status_code == 404
        assert (await client.patch(url, headers=ha, json={"name": "x"})).status_code == 404
        assert (await client.delete(url, headers=ha)).status_code == 404
    r = await client.get("/api/v1/customers", headers=ha,
                         params={"resident_id": "11010519491231002X"})
    found = {i["id"] for i in r.json()["items"]}  # both tenants hold this ID number
    assert len(found) == 1 and found <= {x["id"] for x in a_items}
    assert (await client.get(f"/api/v1/customers/{b_items[0]['id']}", headers=hb)).status_code \
        == 200


async def test_openapi_document_is_served(client: Any) -> None:
    r = await client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["info"]["title"] == "xindai API"
    assert {"/api/v1/customers", "/api/v1/customers/{record_id}", "/api/v1/auth/login"} <= \
        set(doc["paths"])
    ops = [op["operationId"] for path in doc["paths"].values() for op in path.values()
           if isinstance(op, dict) and "operationId" in op]
    assert len(ops) == len(set(ops))


async def test_root_sends_a_signed_out_visitor_to_the_login_page(client: Any) -> None:
    r = await client.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login"


async def test_a_suspended_tenant_cannot_sign_in_or_use_tokens(client: Any, new_tenant: Any
                                                               ) -> None:
    from core.tenancy import update_tenant

    ctx = await new_tenant(records=False)
    h = await login(client, ctx.tenant.slug)
    await update_tenant(ctx.tenant, status="suspended")
    assert (await client.get("/api/v1/customers", headers=h)).status_code == 401
    r = await client.post("/api/v1/auth/login", json={
        "tenant": ctx.tenant.slug, "username": "admin", "password": "test-password-1"})
    assert r.status_code == 401
