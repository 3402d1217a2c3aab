"""PostgreSQL row-level security: every tenant table is covered, and nothing crosses tenants."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core import db, records
from core.tenancy import tenant_scope

pytestmark = pytest.mark.postgres


async def test_every_tenant_table_has_forced_rls_with_check(pg: Any) -> None:
    """Read the catalogs: a table with tenant_id and no forced RLS + WITH CHECK fails here."""
    rows = await db.fetch(pg.engine, """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid
                  AND p.polqual IS NOT NULL AND p.polwithcheck IS NOT NULL) AS policies,
               pg_get_userbyid(c.relowner) AS owner
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
             AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()
    """)
    names = {r["relname"] for r in rows}
    assert {"crm_customer", "custom_field", "blind_index", "app_user", "tenant_key"} <= names
    bad = [r["relname"] for r in rows
           if not (r["relrowsecurity"] and r["relforcerowsecurity"] and r["policies"] >= 1)]
    assert bad == []
    assert {r["owner"] for r in rows} == {"xindai_test_owner"}


async def test_rls_is_exactly_our_policy_and_a_permissive_extra_is_caught(
    pg: Any, pg_database: dict[str, str]
) -> None:
    """Permissive policies are ORed: one extra `USING (true)` would open every tenant."""
    import asyncpg

    assert await db.rls_problems(pg.engine) == []
    owner = await asyncpg.connect(pg_database["owner"])
    try:
        await owner.execute("CREATE POLICY open_door ON crm_customer USING (true)")
        assert await db.rls_problems(pg.engine) == ["crm_customer"]
        with pytest.raises(db.DatabaseError) as info:
            await db.check_row_level_security(pg.engine)
        assert "crm_customer" in str(info.value)
    finally:
        await owner.execute("DROP POLICY IF EXISTS open_door ON crm_customer")
        await owner.close()
    assert await db.rls_problems(pg.engine) == []


async def test_every_declared_tenant_table_is_covered(pg: Any) -> None:
    """The model side: every table of every piccolo app with tenant_id is under RLS."""
    from piccolo.conf.apps import AppRegistry

    covered = set(await db.tenant_tables(pg.engine))
    declared = {
        t._meta.tablename
        for app in AppRegistry(apps=pg.apps()).app_configs.values()
        for t in app.table_classes
        if any(c._meta.name == "tenant_id" for c in t._meta.columns)
    }
    assert "crm_customer" in declared
    assert declared - covered == set()


async def test_app_role_is_not_privileged_and_owns_nothing(pg: Any) -> None:
    """Owns no table of the schema (the close's session-private work tables aside)."""
    role = await db.fetch(pg.engine, "SELECT current_user AS u, rolsuper, rolbypassrls "
                          "FROM pg_roles WHERE rolname = current_user")
    assert role[0]["u"] == "xindai_test_app"
    assert not role[0]["rolsuper"] and not role[0]["rolbypassrls"]
    owned = await db.fetch(pg.engine, "SELECT count(*) AS n FROM pg_tables "
                           "WHERE tableowner = current_user AND schemaname NOT LIKE 'pg_temp%'")
    assert owned[0]["n"] == 0
    await db.check_app_role(pg.engine)  # does not raise


@pytest.mark.parametrize("who", ["super", "owner"])
async def test_start_up_refuses_superuser_and_owner(pg: Any, pg_database: dict[str, str],
                                                    who: str) -> None:
    engine = db.make_engine(pg_database[who])
    await db.open_engine(engine, 1)
    try:
        with pytest.raises(db.DatabaseError) as info:
            await db.check_app_role(engine)
        assert "XINDAI_DATABASE_URL" in str(info.value)
    finally:
        await db.close_engine(engine)
        db.bind(pg.engine)


async def test_start_up_refuses_an_app_role_without_temporary_tables(pg: Any) -> None:
    """The setup in the operator guide revokes everything from PUBLIC; without its GRANT
    TEMPORARY the nightly close could not run, so `check` says what to grant."""
    import asyncpg

    from core.scratch import drop_database, scratch_postgres
    from tests.conftest import PG_ADMIN_URL

    env, name = await scratch_postgres(PG_ADMIN_URL, "xindai_notemp")
    conn = await asyncpg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        await conn.execute(f"REVOKE ALL ON DATABASE {name} FROM PUBLIC")
        await conn.execute(f"GRANT CONNECT ON DATABASE {name} TO xindai_test_app")
    finally:
        await conn.close()
    engine = db.make_engine(env["XINDAI_DATABASE_URL"])
    await db.open_engine(engine, 1)
    try:
        with pytest.raises(db.DatabaseError) as info:
            await db.check_app_role(engine)
        assert "GRANT TEMPORARY" in str(info.value) and "临时表" in str(info.value)
    finally:
        await db.close_engine(engine)
        db.bind(pg.engine)
        await drop_database(PG_ADMIN_URL, name)


async def test_tenant_a_cannot_see_tenant_b_even_without_the_app_filter(new_pg_tenant: Any
                                                                        ) -> None:
    a, b = await new_pg_tenant(), await new_pg_tenant()
    b_ids = [r["id"] for r in (await records.list_records(b, "customer")).items]
    assert len(b_ids) == 2
    from core.tables import Tenant

    engine = Tenant._meta.db
    async with tenant_scope(a):
        # raw SQL, no tenant filter: only RLS stands between A and B's rows
        seen = await db.fetch(engine, "SELECT id FROM crm_customer WHERE id = ANY({}::uuid[])",
                              [uuid.UUID(i) for i in b_ids])
        assert seen == []
        everything = await db.fetch(engine, "SELECT DISTINCT tenant_id FROM crm_customer")
        assert [r["tenant_id"] for r in everything] == [a.tenant_id]
        keys = await db.fetch(engine, "SELECT DISTINCT tenant_id FROM tenant_key")
        assert [r["tenant_id"] for r in keys] == [a.tenant_id]
    # through the data layer
    for rid in b_ids:
        with pytest.raises(records.NotFound):
            await records.get(a, "customer", rid)
        with pytest.raises(records.NotFound):
            await records.update(a, "customer", rid, {"name": "入侵"})
        with pytest.raises(records.NotFound):
            await records.delete(a, "customer", rid)
    assert (await records.get(b, "customer", b_ids[0]))["name"] != "入侵"


async def test_writes_for_another_tenant_are_refused_by_the_policy(new_pg_tenant: Any) -> None:
    import asyncpg

    from core.tables import Tenant

    a, b = await new_pg_tenant(records=False), await new_pg_tenant(records=False)
    engine = Tenant._meta.db
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
        async with tenant_scope(a):
            await db.fetch(engine, "INSERT INTO role (id, tenant_id, name, label_zh, label_en, "
                           "permissions) VALUES ({}, {}, 'x', 'x', 'x', '[]')",
                           uuid.uuid4(), b.tenant_id)
    rec = await records.create(b, "customer", {"kind": "company", "name": "乙公司",
                                               "credit_code": "91110000600037341L"})
    async with tenant_scope(a):
        moved = await db.fetch(engine, "UPDATE crm_customer SET tenant_id = {} WHERE id = {} "
                               "RETURNING id", a.tenant_id, uuid.UUID(rec["id"]))
        assert moved == []  # B's row is invisible to A, so nothing to update
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
        async with tenant_scope(b):
            await db.fetch(engine, "UPDATE crm_customer SET tenant_id = {} WHERE id = {}",
                           a.tenant_id, uuid.UUID(rec["id"]))


async def test_outside_a_tenant_scope_nothing_is_visible(new_pg_tenant: Any) -> None:
    from core.tables import Tenant

    await new_pg_tenant()
    engine = Tenant._meta.db
    assert await db.fetch(engine, "SELECT id FROM crm_customer") == []


async def test_the_tenant_setting_does_not_leak_across_pooled_connections(
    new_pg_tenant: Any, pg: Any
) -> None:
    import asyncio

    from core.tables import Tenant

    a = await new_pg_tenant()
    engine = Tenant._meta.db

    async def scoped_count() -> int:
        async with tenant_scope(a):
            await asyncio.sleep(0.01)  # hold the connection so the pool hands out others
            return (await db.fetch(engine, "SELECT count(*) AS n FROM crm_customer"))[0]["n"]

    assert await asyncio.gather(*(scoped_count() for _ in range(8))) == [2] * 8
    # every connection of the pool, after use, reads the setting as empty
    size = engine.pool.get_size()
    conns = [await engine.pool.acquire() for _ in range(size)]
    try:
        for conn in conns:
            assert await conn.fetchval("SELECT current_setting('app.tenant_id', true)") in (
                None, "")
            assert await conn.fetchval("SELECT count(*) FROM crm_customer") == 0
    finally:
        for conn in conns:
            await engine.pool.release(conn)


async def test_migrate_is_idempotent_and_reasserts_rls(pg: Any) -> None:
    from core import kernel as K

    assert await K.migrate(pg) == []
    tables = await db.tenant_tables(pg.engine)
    assert "crm_customer" in tables
