"""Access control through the one write path: permissions, object rules, field policies."""

from __future__ import annotations

from typing import Any

import pytest

from core import records
from core.errors import FieldsForbidden, Forbidden, NotFound
from tests.conftest import as_user, login

NEW = {"kind": "individual", "name": "郝建设", "resident_id": "11010519491231002X",
       "mobile": "13511112222", "region": "140105", "annual_income": "88000.00"}


async def customer_of(tenant: Any, owner: str) -> dict[str, Any]:
    admin = await as_user(tenant, "admin")
    page = await records.list_records(admin, "customer", per_page=200)
    users = {u: (await as_user(tenant, u)).user_id for u in ("officer", "officer2")}
    return next(r for r in page.items if r["owner_id"] == users[owner])


async def test_object_rules_own_branch_all(demo: Any) -> None:
    tenant, _ = demo
    totals = {u: (await records.list_records(await as_user(tenant, u), "customer")).total
              for u in ("officer", "officer2", "manager", "collector", "gm", "admin")}
    assert totals["admin"] == totals["gm"] >= 120
    assert totals["officer"] + totals["officer2"] == 120
    assert totals["manager"] == totals["collector"] == totals["officer"]  # 小店 branch
    theirs = await customer_of(tenant, "officer2")
    officer = await as_user(tenant, "officer")
    for attempt in (records.get(officer, "customer", theirs["id"]),
                    records.update(officer, "customer", theirs["id"], {"address": "x"})):
        with pytest.raises(NotFound):
            await attempt
    manager = await as_user(tenant, "manager")
    with pytest.raises(NotFound):  # another branch's record does not exist for him
        await records.get(manager, "customer", theirs["id"])
    mine = await customer_of(tenant, "officer")
    assert (await records.get(manager, "customer", mine["id"]))["id"] == mine["id"]


async def test_a_new_record_belongs_to_its_creator_and_unit(demo: Any) -> None:
    tenant, _ = demo
    officer = await as_user(tenant, "officer")
    rec = await records.create(officer, "customer", NEW)
    assert rec["owner_id"] == officer.user_id
    assert rec["org_unit_id"] == officer.access.org_unit_id
    other = await as_user(tenant, "officer2")
    with pytest.raises(NotFound):
        await records.get(other, "customer", rec["id"])
    await records.delete(await as_user(tenant, "manager"), "customer", rec["id"])


async def test_permissions_are_checked_in_the_write_path(demo: Any) -> None:
    tenant, _ = demo
    finance = await as_user(tenant, "finance")
    with pytest.raises(Forbidden):
        await records.create(finance, "customer", NEW)
    mine = await customer_of(tenant, "officer")
    with pytest.raises(Forbidden):
        await records.update(finance, "customer", mine["id"], {"address": "x"})
    with pytest.raises(Forbidden):
        await records.delete(await as_user(tenant, "officer"), "customer", mine["id"])


async def test_fields_a_role_may_not_write_are_refused_not_dropped(demo: Any) -> None:
    tenant, _ = demo
    officer = await as_user(tenant, "officer")
    mine = await customer_of(tenant, "officer")
    with pytest.raises(FieldsForbidden) as info:
        await records.update(officer, "customer", mine["id"],
                             {"address": "新地址", "source": "线上"})
    assert [(e.field, e.code) for e in info.value.errors] == [("source", "field_not_writable")]
    assert info.value.status == 403
    after = await records.get(officer, "customer", mine["id"])
    assert after["version"] == mine["version"] and after["address"] == mine["address"]
    with pytest.raises(FieldsForbidden):
        await records.create(officer, "customer", {**NEW, "source": "线上"})


async def test_field_read_policies_hide_and_mask(demo: Any) -> None:
    tenant, _ = demo
    mine = await customer_of(tenant, "officer")
    finance = await records.get(await as_user(tenant, "finance"), "customer", mine["id"])
    assert "address" not in finance and "wechat_id" not in finance
    assert finance["name"] == mine["name"][0] + "*" * (len(mine["name"]) - 1)
    collector = await records.get(await as_user(tenant, "collector"), "customer", mine["id"])
    assert "annual_income" not in collector and collector["name"] == mine["name"]
    for bad in ({"annual_income__gte": "1"},):
        with pytest.raises(records.XindaiError):
            await records.list_records(await as_user(tenant, "collector"), "customer", bad)
    with pytest.raises(records.XindaiError):
        await records.list_records(await as_user(tenant, "collector"), "customer",
                                   sort="-annual_income")


async def test_reveal_needs_its_permission_and_is_recorded(demo: Any) -> None:
    from core.tables import AuthEvent
    from core.tenancy import Context, tenant_scope

    tenant, _ = demo
    mine = await customer_of(tenant, "officer")
    officer = await as_user(tenant, "officer")
    assert "*" in (await records.get(officer, "customer", mine["id"]))["mobile"]
    with pytest.raises(Forbidden):
        await records.reveal_field(officer, "customer", mine["id"], "mobile")
    manager = await as_user(tenant, "manager")
    clear = await records.reveal_field(manager, "customer", mine["id"], "mobile")
    assert clear.isdigit() and len(clear) == 11 and clear[-4:] == mine["mobile"][-4:]
    async with tenant_scope(Context.system(tenant), write=False):
        events = await AuthEvent.select().where(
            AuthEvent.tenant_id == tenant.id, AuthEvent.kind == "reveal",
            AuthEvent.username == "manager").output(load_json=True).run()
    assert any(e["detail"] == {"entity": "customer", "record": mine["id"], "field": "mobile"}
               for e in events)


async def test_every_field_of_every_entity_against_every_demo_role(demo: Any, kernel: Any
                                                                    ) -> None:
    """What a role reads of each field matches its policy: hidden absent, masked masked,
    read/write in clear (secret fields masked until revealed); write only where allowed."""
    from core.access import field_policy

    tenant, _ = demo
    admin = await as_user(tenant, "admin")
    for name in kernel.registry.entities:
        entity = await records.entity_for(admin, name)
        sample = (await records.list_records(admin, name, per_page=1)).items[0]
        full = await records.get(admin, name, sample["id"], reveal=True)
        for username in ("officer", "reviewer", "manager", "finance", "collector", "gm",
                         "compliance", "admin"):
            ctx = await as_user(tenant, username)
            if not ctx.access.can(f"{name}.read"):
                continue
            try:
                seen = await records.get(ctx, name, sample["id"])
            except NotFound:
                continue  # outside the role's object rule
            for f in entity.fields:
                policy = field_policy(ctx, entity, f)
                value = full.get(f.key)
                if policy == "hidden":
                    assert f.key not in seen, (username, f.key)
                elif value is None:
                    assert seen[f.key] is None
                elif policy == "masked" or f.is_secret:
                    assert seen[f.key] != value and "*" in str(seen[f.key]), (username, f.key)
                else:
                    assert seen[f.key] == value, (username, f.key)
                if policy != "write" and f.key in seen:
                    with pytest.raises((FieldsForbidden, Forbidden)):
                        await records.update(ctx, name, sample["id"], {f.key: value})


async def test_http_answers_follow_the_same_rules(client: Any, demo: Any) -> None:
    tenant, passwords = demo
    theirs = await customer_of(tenant, "officer2")
    h = await login(client, tenant.slug, "officer", passwords["officer"])
    assert (await client.get(f"/api/v1/customers/{theirs['id']}", headers=h)).status_code == 404
    r = await client.post("/api/v1/customers", headers=h, json={**NEW, "source": "线上"})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "field_not_writable"
    r = await client.post(f"/api/v1/customers/{theirs['id']}/reveal/mobile", headers=h)
    assert r.status_code == 403
    hm = await login(client, tenant.slug, "manager", passwords["manager"])
    mine = await customer_of(tenant, "officer")
    r = await client.post(f"/api/v1/customers/{mine['id']}/reveal/resident_id", headers=hm)
    if mine.get("resident_id"):
        assert r.status_code == 200 and r.json()["value"].endswith(mine["resident_id"][-4:])
    me = (await client.get("/api/v1/me", headers=h)).json()
    assert me["scope"] == "own" and "customer.read" in me["permissions"]


async def test_masked_fields_cannot_be_searched_or_filtered(demo: Any) -> None:
    """Finance sees names masked: searching or filtering by name would reveal them."""
    tenant, _ = demo
    finance = await as_user(tenant, "finance")
    mine = await customer_of(tenant, "officer")
    found = await records.list_records(finance, "customer", q=mine["name"])
    assert mine["id"] not in {r["id"] for r in found.items}
    with pytest.raises(records.XindaiError):
        await records.list_records(finance, "customer", {"name__contains": mine["name"][0]})
    with pytest.raises(records.XindaiError):
        await records.list_records(finance, "customer", sort="name")


async def test_every_tenant_gets_the_builtin_roles_with_plugin_grants(new_tenant: Any) -> None:
    from core import admin
    from core.access import BUILTIN_ROLES
    from core.tenancy import Context, set_plugin_enabled

    ctx = await new_tenant(records=False)
    roles = {r["name"]: r for r in await admin.list_roles(ctx)}
    assert set(roles) == {r[0] for r in BUILTIN_ROLES}
    assert {"customer.read", "customer.create", "tokens.manage"} <= set(
        roles["loan_officer"]["permissions"])
    assert roles["branch_manager"]["scope"] == "branch"
    assert roles["tenant_admin"]["permissions"] == ["*"]  # the pack's own definition
    bare = await new_tenant(plugins=[], records=False)
    officer = {r["name"]: r for r in await admin.list_roles(bare)}["loan_officer"]
    assert officer["permissions"] == ["records.import", "tokens.manage"]  # kernel grants
    tenant = await set_plugin_enabled(bare.tenant.slug, "crm", True)
    officer = {r["name"]: r for r in await admin.list_roles(Context.system(tenant))}[
        "loan_officer"]
    assert "customer.create" in officer["permissions"]


async def test_a_policy_of_one_role_does_not_narrow_another_role(demo: Any) -> None:
    """finance masks names; a user who is finance AND loan officer sees them in clear."""
    from core.identity import user_context
    from core.tables import User
    from core.tenancy import Context, tenant_scope

    tenant, _ = demo
    async with tenant_scope(Context.system(tenant), write=False):
        row = (await User.select().where(User.tenant_id == tenant.id,
                                         User.username == "officer").output(load_json=True)
               .run())[0]
    both = await user_context(tenant, {**row, "roles": ["finance", "loan_officer"]}, "zh-CN")
    mine = await customer_of(tenant, "officer")
    seen = await records.get(both, "customer", mine["id"])
    assert seen["name"] == mine["name"] and "address" in seen
    assert (await records.get(await as_user(tenant, "finance"), "customer", mine["id"]))[
        "name"] != mine["name"]


async def test_administrators_cannot_grant_more_than_they_hold(new_tenant: Any) -> None:
    from core import admin
    from core.identity import create_user

    ctx = await new_tenant(records=False)
    await admin.save_role(ctx, "hr", "人事", "HR", ["admin.users"], "all")
    await create_user(ctx, "hr1", "人事专员", "汾河 公园 晨跑 26", ["hr"])
    await create_user(ctx, "clerk", "职员", "汾河 公园 晨跑 27", ["loan_officer"])
    hr = await as_user(ctx.tenant, "hr1")
    users = {u["username"]: u for u in await admin.list_users(hr)}
    for attempt in (
        admin.update_user(hr, users["hr1"]["id"], roles=["tenant_admin"]),  # self
        admin.update_user(hr, users["clerk"]["id"], roles=["tenant_admin"]),  # beyond own
        admin.update_user(hr, users["admin"]["id"], active=False),  # someone stronger
        create_user(hr, "mole", "内鬼", "汾河 公园 晨跑 28", ["tenant_admin"]),
        admin.save_role(hr, "hr", "人事", "HR", ["*"], "all"),
    ):
        with pytest.raises(Forbidden):
            await attempt
    roles = {r["name"]: r for r in await admin.list_roles(ctx)}
    assert roles["hr"]["permissions"] == ["admin.users"]
    assert {u["username"]: u["roles"] for u in await admin.list_users(ctx)}["clerk"] == [
        "loan_officer"]


async def test_exact_search_on_secrets_needs_write_or_reveal_and_is_recorded(demo: Any
                                                                              ) -> None:
    from core.tables import AuthEvent
    from core.tenancy import Context, tenant_scope

    tenant, _ = demo
    manager = await as_user(tenant, "manager")
    mine = await customer_of(tenant, "officer")
    mobile = await records.reveal_field(manager, "customer", mine["id"], "mobile")
    finance = await as_user(tenant, "finance")  # reads mobiles masked, cannot reveal
    with pytest.raises(records.XindaiError):
        await records.list_records(finance, "customer", {"mobile": mobile})
    assert mine["id"] not in {r["id"] for r in
                              (await records.list_records(finance, "customer", q=mobile)).items}
    officer = await as_user(tenant, "officer")  # enters mobiles (write): may look one up
    found = await records.list_records(officer, "customer", {"mobile": mobile})
    assert [r["id"] for r in found.items] == [mine["id"]]
    async with tenant_scope(Context.system(tenant), write=False):
        events = await AuthEvent.select(AuthEvent.detail).where(
            AuthEvent.tenant_id == tenant.id, AuthEvent.kind == "secret_search",
            AuthEvent.username == "officer").output(load_json=True).run()
    assert {"entity": "customer", "field": "mobile", "matches": 1} in [e["detail"]
                                                                       for e in events]
