"""The audit chain: every write appended, secrets never in clear, append-only, and any
tampering (change, delete, insert, reorder, truncate) found at exactly the entry."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from core import audit, db, records
from core.tables import AuditEntry
from core.tenancy import tenant_scope

NEW = {"kind": "individual", "name": "审计测试", "resident_id": "11010519491231002X",
       "mobile": "13711112222", "region": "140105"}


async def entries(ctx: Any) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        return await AuditEntry.select().where(AuditEntry.tenant_id == ctx.tenant_id) \
            .order_by(AuditEntry.seq).output(load_json=True).run()


async def test_writes_are_chained_with_diffs_and_no_secret_in_clear(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    rec = await records.create(ctx, "customer", NEW)
    await records.update(ctx, "customer", rec["id"], {"mobile": "13799998888", "name": "改名"})
    await records.delete(ctx, "customer", rec["id"])
    rows = await entries(ctx)
    mine = [r for r in rows if r["record_id"] == rec["id"]]
    assert [r["action"] for r in mine] == ["create", "update", "delete"]
    assert mine[1]["diff"]["name"] == ["审计测试", "改名"]
    old, new = mine[1]["diff"]["mobile"]
    assert old.startswith("hmac:") and new.startswith("hmac:") and old != new
    text = json.dumps(rows, default=str, ensure_ascii=False)
    for secret in ("11010519491231002X", "13711112222", "13799998888"):
        assert secret not in text
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert (await audit.verify_tenant(ctx)).ok


async def test_concurrent_writers_never_fork_the_chain(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    await asyncio.gather(*(records.create(ctx, "customer", {
        "kind": "company", "name": f"并发{i}", "credit_code": "91110000600037341L"})
        for i in range(12)))
    rows = await entries(ctx)
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert len({r["prev_hash"] for r in rows}) == len(rows)  # no two entries share a parent
    verdict = await audit.verify_tenant(ctx)
    assert verdict.ok and verdict.checked == len(rows)


async def test_the_app_role_cannot_change_or_delete_entries(new_tenant: Any) -> None:
    ctx = await new_tenant()
    engine = AuditEntry._meta.db
    for sql in ("UPDATE audit_entry SET action = 'x'", "DELETE FROM audit_entry"):
        with pytest.raises(Exception) as info:
            async with tenant_scope(ctx):
                await db.fetch(engine, sql)
        assert "append-only" in str(info.value) or "permission denied" in str(info.value)
    assert (await audit.verify_tenant(ctx)).ok


async def tamper(kernel: Any, pg_url: str | None, statements: list[str]) -> None:
    """Run statements around the append-only guards, as an intruder with the owner's or
    superuser's power would."""
    if pg_url:
        import asyncpg

        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute("SET session_replication_role = replica")  # triggers off
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()
        return
    engine = AuditEntry._meta.db
    await engine.run_ddl("DROP TRIGGER audit_entry_no_update")
    await engine.run_ddl("DROP TRIGGER audit_entry_no_delete")
    try:
        for sql in statements:
            await engine.run_ddl(sql)
    finally:
        await engine.run_ddl("CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry "
                             "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")
        await engine.run_ddl("CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry "
                             "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")


@pytest.mark.parametrize("kind,expected", [
    ("change", (5, "changed")),
    ("delete", (5, "removed")),
    ("insert", (5, "inserted_or_reordered")),
    ("reorder", (5, "inserted_or_reordered")),
    ("truncate", (9, "truncated")),
])
async def test_tampering_is_found_at_exactly_that_entry(
    request: pytest.FixtureRequest, kernel: Any, new_tenant: Any, kind: str,
    expected: tuple[int, str],
) -> None:
    ctx = await new_tenant(records=False)
    for i in range(12):
        await audit.append(ctx, "probe", "probe", i, {"n": [None, i]})
    t = f"tenant_id = '{ctx.tenant_id}'" if db.is_postgres(AuditEntry._meta.db) else \
        f"tenant_id = '{ctx.tenant_id.hex}' OR tenant_id = '{ctx.tenant_id}'"
    base = await entries(ctx)
    first = base[0]["seq"]
    at = first + 4  # the fifth entry of this tenant's chain
    shift = 1_000_000
    statements = {
        "change": [f"UPDATE audit_entry SET diff = '{{\"n\": [null, 99]}}' WHERE ({t}) AND seq = {at}"],
        "delete": [f"DELETE FROM audit_entry WHERE ({t}) AND seq = {at}"],
        "insert": [f"UPDATE audit_entry SET seq = seq + {shift} WHERE ({t}) AND seq >= {at}",
                   f"UPDATE audit_entry SET seq = seq - {shift} + 1 WHERE ({t}) "
                   f"AND seq >= {shift}"],
        "reorder": [f"UPDATE audit_entry SET seq = -1 WHERE ({t}) AND seq = {at}",
                    f"UPDATE audit_entry SET seq = {at} WHERE ({t}) AND seq = {at + 1}",
                    f"UPDATE audit_entry SET seq = {at + 1} WHERE ({t}) AND seq = -1"],
        "truncate": [f"DELETE FROM audit_entry WHERE ({t}) AND seq > {first + 7}"],
    }[kind]
    if kind == "insert":  # make room, then put a forged entry at `at`
        forged_id = uuid.uuid4()
        statements = statements[:2] + [
            f"INSERT INTO audit_entry (id, tenant_id, seq, at, user_id, username, roles, ip, "
            f"user_agent, request_id, action, entity, record_id, diff, prev_hash, hash) "
            f"SELECT '{forged_id if db.is_postgres(AuditEntry._meta.db) else forged_id.hex}', "
            f"tenant_id, {at}, at, user_id, username, roles, ip, user_agent, request_id, "
            f"'forged', entity, record_id, diff, prev_hash, hash FROM audit_entry "
            f"WHERE ({t}) AND seq = {at - 1}"]
    pg_url = None
    if db.is_postgres(AuditEntry._meta.db):
        pg_url = request.getfixturevalue("pg_database")["super"]
    await tamper(kernel, pg_url, statements)
    verdict = await audit.verify_tenant(ctx)
    assert not verdict.ok
    assert (verdict.seq, verdict.problem) == expected, verdict


def test_check_chain_on_a_clean_and_an_empty_chain() -> None:
    assert audit.check_chain([], (0, audit.GENESIS)).ok
    assert not audit.check_chain([], (3, "f" * 64)).ok  # everything after 0 removed


async def test_a_chain_rewritten_with_its_head_still_fails_the_signed_checkpoint(
    request: pytest.FixtureRequest, kernel: Any, new_tenant: Any
) -> None:
    """An intruder who recomputes every hash and the head is caught by a signed checkpoint."""
    from core.audit_export import checkpoint

    ctx = await new_tenant(records=False)
    for i in range(4):
        await audit.append(ctx, "probe", "probe", i)
    cp = await checkpoint(ctx)
    rows = await entries(ctx)
    prev = audit.GENESIS
    forged = []
    for row in rows:  # rewrite the whole chain consistently, changing one action
        fields = audit.hashed_fields(row)
        if row["seq"] == 2:
            fields["action"] = "rewritten"
        fields["prev_hash"] = prev
        digest = audit.chain_hash(prev, fields)
        forged.append((row["seq"], fields["action"], prev, digest))
        prev = digest
    t = f"tenant_id = '{ctx.tenant_id}'" if db.is_postgres(AuditEntry._meta.db) else \
        f"tenant_id = '{ctx.tenant_id.hex}' OR tenant_id = '{ctx.tenant_id}'"
    statements = [f"UPDATE audit_entry SET action = '{a}', prev_hash = '{p}', hash = '{h}' "
                  f"WHERE ({t}) AND seq = {s}" for s, a, p, h in forged]
    statements.append(f"UPDATE audit_head SET hash = '{prev}' WHERE {t}")
    pg_url = request.getfixturevalue("pg_database")["super"] if db.is_postgres(
        AuditEntry._meta.db) else None
    await tamper(kernel, pg_url, statements)
    verdict = await audit.verify_tenant(ctx)
    assert not verdict.ok and verdict.seq == cp["seq"]
    assert verdict.problem == "differs from its checkpoint"


async def test_http_writes_carry_the_request_id_and_custom_fields_are_audited(
    client: Any, new_tenant: Any
) -> None:
    from tests.conftest import login

    ctx = await new_tenant(records=False)
    h = await login(client, ctx.tenant.slug)
    r = await client.post("/api/v1/customers", headers=h, json=NEW)
    assert r.status_code == 201
    request_id = r.headers["x-request-id"]
    r = await client.post("/api/v1/customers/fields", headers=h,
                          json={"key": "hobby", "type": "text"})
    assert r.status_code == 201
    rows = await entries(ctx)
    created = next(e for e in rows if e["action"] == "create" and e["entity"] == "customer")
    assert created["request_id"] == request_id and created["username"] == "admin"
    added = [e for e in rows if e["action"] == "custom_field.add"][-1]  # the pack added two
    assert added["record_id"] == "hobby" and added["diff"]["type"] == [None, "text"]
    assert (await audit.verify_tenant(ctx)).ok


async def test_user_and_field_policy_changes_record_old_and_new_values(new_tenant: Any
                                                                       ) -> None:
    from core import admin
    from core.identity import create_user

    ctx = await new_tenant(records=False)
    unit = await admin.create_org_unit(ctx, "tyb", "太原分行")
    uid = await create_user(ctx, "clerk", "职员", "汾河 公园 晨跑 27", ["loan_officer"])
    await admin.update_user(ctx, uid, roles=["loan_officer", "finance"], display_name="柜员",
                            org_unit_code="tyb")
    await admin.update_user(ctx, uid, roles=["loan_officer", "finance"],
                            display_name="高级柜员", org_unit_code="")
    await admin.update_user(ctx, uid, active=False)
    await admin.update_user(ctx, uid, active=True)
    for policy in ("hidden", "masked", None):
        await admin.set_field_policy(ctx, "loan_officer", "customer", "address", policy)
    rows = await entries(ctx)
    users = [(r["action"], r["diff"]) for r in rows if r["record_id"] == str(uid)]
    assert users[1:] == [
        ("user.update", {"roles": [["loan_officer"], ["loan_officer", "finance"]],
                         "display_name": ["职员", "柜员"],
                         "org_unit_id": [None, str(unit["id"])]}),
        ("user.update", {"display_name": ["柜员", "高级柜员"],  # roles unchanged: not listed
                         "org_unit_id": [str(unit["id"]), None]}),
        ("user.disable", {"active": [True, False]}),
        ("user.enable", {"active": [False, True]}),
    ]
    policies = [r["diff"] for r in rows if r["action"] == "field_policy.set"
                and r["record_id"] == "loan_officer"][-3:]
    assert policies == [{"customer.address": [None, "hidden"]},
                        {"customer.address": ["hidden", "masked"]},
                        {"customer.address": ["masked", None]}]
    assert (await audit.verify_tenant(ctx)).ok
