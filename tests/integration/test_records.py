"""The one write path on both databases: validation, custom fields, secrets, listing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from core import records
from core.errors import Conflict, NotFound, ValidationFailed, XindaiError

VALID = {"kind": "individual", "name": "孙丽", "resident_id": "140105199003071242",
         "mobile": "13912345678", "region": "140105", "annual_income": "98000.50"}


async def count(ctx: Any) -> int:
    return (await records.list_records(ctx, "customer")).total


async def test_create_returns_masked_secrets_and_exact_money(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    rec = await records.create(ctx, "customer", VALID)
    assert rec["resident_id"] == "140***********1242"
    assert rec["mobile"] == "139****5678"
    assert rec["annual_income"] == "98000.50"
    full = await records.get(ctx, "customer", rec["id"], reveal=True)
    assert full["resident_id"] == "140105199003071242"
    assert full["mobile"] == "13912345678"
    assert (await records.get(ctx, "customer", rec["id"]))["mobile"] == "139****5678"


async def test_invalid_input_names_every_field_and_writes_nothing(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    bad = {**VALID, "resident_id": "140105199003071243", "mobile": "12345",
           "annual_income": 0.1, "nickname": "x", "region": "990000"}
    with pytest.raises(ValidationFailed) as info:
        await records.create(ctx, "customer", bad)
    codes = {e.field: e.code for e in info.value.errors}
    assert codes == {"resident_id": "resident_id_checksum", "mobile": "mobile",
                     "annual_income": "float_refused", "nickname": "unknown_field",
                     "region": "region"}
    messages = {e.field: (e.message("zh-CN"), e.message("en")) for e in info.value.errors}
    assert messages["resident_id"] == ("身份证号校验位错误", "Resident ID has a wrong check character")
    assert await count(ctx) == 0


async def test_required_and_cross_field_rules(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    with pytest.raises(ValidationFailed) as info:
        await records.create(ctx, "customer", {"kind": "individual", "name": "周"})
    assert [(e.field, e.code) for e in info.value.errors] == [("resident_id", "required")]
    with pytest.raises(ValidationFailed) as info:
        await records.create(ctx, "customer", {"kind": "company", "name": "某公司"})
    assert [(e.field, e.code) for e in info.value.errors] == [("credit_code", "required")]
    with pytest.raises(ValidationFailed) as info:
        await records.create(ctx, "customer", {"name": "无类型"})
    assert ("kind", "required") in [(e.field, e.code) for e in info.value.errors]


async def test_custom_fields_are_validated_and_stored(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    with pytest.raises(ValidationFailed) as info:
        await records.create(ctx, "customer", {**VALID, "credit_limit_wish": "999.99"})
    assert info.value.errors[0].code == "min_value"
    assert "意向额度" in info.value.errors[0].message("zh-CN")
    assert "Requested limit" in info.value.errors[0].message("en")
    rec = await records.create(ctx, "customer", {**VALID, "credit_limit_wish": "50000",
                                                 "wechat_id": "wx_sun"})
    assert rec["credit_limit_wish"] == "50000.00"
    found = await records.list_records(ctx, "customer", {"wechat_id": "wx_sun"})
    assert [r["id"] for r in found.items] == [rec["id"]]
    assert (await records.list_records(ctx, "customer", {"wechat_id": "wx_none"})).total == 0


async def test_tenant_adds_every_custom_field_type(new_tenant: Any) -> None:
    from core.customfields import add_custom_field
    from core.fields import FieldType

    ctx = await new_tenant(records=False)
    samples = {
        "text": "文本", "long_text": "多行\n文本", "integer": "42", "decimal": "3.14159",
        "money": "12.30", "percent": "7.25", "date": "2026-02-28",
        "datetime": "2026-11-22T10:00:00+08:00", "boolean": "是", "single_select": "a",
        "multi_select": ["a", "b"], "phone": "+8613800138000", "email": "A@Example.com",
        "resident_id": "11010519491231002X", "credit_code": "91110000600037341L",
        "region": "140105", "attachment": None, "reference": None,
    }
    opts = [{"value": "a", "zh": "甲", "en": "A"}, {"value": "b", "zh": "乙", "en": "B"}]
    for ftype in FieldType:
        spec: dict[str, Any] = {"key": f"f_{ftype.value}", "type": ftype.value,
                                "label": {"zh-CN": f"字段{ftype.value}", "en": ftype.value}}
        if "select" in ftype.value:
            spec["options"] = opts
        if ftype == FieldType.reference:
            spec["reference"] = "customer"
        await add_custom_field(ctx, "customer", spec)
    target = await records.create(ctx, "customer", VALID)
    samples["reference"] = target["id"]
    from core import documents

    doc = await documents.upload(ctx, "customer", target["id"], "other", "a.pdf", b"%PDF-1.4\n")
    samples["attachment"] = doc["id"]  # an uploaded document of the tenant
    data = {**VALID,
            **{f"f_{k}": v for k, v in samples.items()}}
    from core.validators import resident_id_check_char
    data["resident_id"] = "14010519900307121" + resident_id_check_char("14010519900307121")
    rec = await records.create(ctx, "customer", data)
    assert rec["f_money"] == "12.30" and rec["f_integer"] == 42
    assert rec["f_boolean"] is True and rec["f_multi_select"] == ["a", "b"]
    assert rec["f_email"] == "a@example.com"
    assert rec["f_phone"] == "138****8000"  # phone custom fields default to secret
    assert rec["f_resident_id"] == "110***********002X"
    assert rec["f_reference"] == target["id"]
    with pytest.raises(ValidationFailed) as info:
        await records.create(ctx, "customer", {**VALID, "f_reference": "7d1f7c0e-0000-4000-8000-000000000000"})
    assert info.value.errors[0].code == "reference"


async def test_custom_field_definitions_are_checked(new_tenant: Any) -> None:
    from core.customfields import add_custom_field

    ctx = await new_tenant(records=False)
    with pytest.raises(ValidationFailed):
        await add_custom_field(ctx, "customer", {"key": "Bad Key", "type": "text"})
    with pytest.raises(ValidationFailed):
        await add_custom_field(ctx, "customer", {"key": "ok", "type": "colour"})
    with pytest.raises(Conflict):
        await add_custom_field(ctx, "customer", {"key": "mobile", "type": "text"})
    with pytest.raises(NotFound):
        await add_custom_field(ctx, "loan", {"key": "x", "type": "text"})


async def test_update_merges_checks_version_and_reindexes(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    rec = await records.create(ctx, "customer", VALID)
    changed = await records.update(ctx, "customer", rec["id"], {"mobile": "13700001111"},
                                   expected_version=1)
    assert changed["version"] == 2 and changed["mobile"] == "137****1111"
    assert changed["name"] == "孙丽"
    assert await records.find_ids(ctx, "customer", "mobile", "13912345678") == []
    assert await records.find_ids(ctx, "customer", "mobile", "137 0000 1111") == [rec["id"]]
    with pytest.raises(Conflict):
        await records.update(ctx, "customer", rec["id"], {"name": "孙丽丽"}, expected_version=1)
    with pytest.raises(ValidationFailed) as info:
        await records.update(ctx, "customer", rec["id"], {"name": ""})
    assert info.value.errors[0].code == "required"
    with pytest.raises(ValidationFailed) as info:
        await records.update(ctx, "customer", rec["id"], {"id": "x", "version": 9})
    assert {e.code for e in info.value.errors} == {"readonly_field"}
    again = await records.get(ctx, "customer", rec["id"])
    assert again["version"] == 2 and again["name"] == "孙丽"


async def test_soft_delete_hides_the_record(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    rec = await records.create(ctx, "customer", VALID)
    await records.delete(ctx, "customer", rec["id"])
    with pytest.raises(NotFound):
        await records.get(ctx, "customer", rec["id"])
    with pytest.raises(NotFound):
        await records.delete(ctx, "customer", rec["id"])
    assert await count(ctx) == 0
    assert await records.find_ids(ctx, "customer", "resident_id", VALID["resident_id"]) == []
    from core.tenancy import tenant_scope

    t = (await records.entity_for(ctx, "customer")).table
    async with tenant_scope(ctx):
        rows = await t.select(t.deleted_at).where(t.tenant_id == ctx.tenant_id).run()
    assert len(rows) == 1 and rows[0]["deleted_at"] is not None


async def test_list_filters_sort_paginate_search(new_tenant: Any) -> None:
    from core.validators import resident_id_check_char

    ctx = await new_tenant(records=False)
    for i in range(25):
        body = f"14010519900101{i:03d}"
        await records.create(ctx, "customer", {
            "kind": "individual", "name": f"客户{i:02d}",
            "resident_id": body + resident_id_check_char(body),
            "mobile": f"1380000{i:04d}", "region": "140105" if i % 2 else "140802",
            "annual_income": f"{10000 + i * 1000}.00",
        })
    page = await records.list_records(ctx, "customer", sort="name", page=2, per_page=10)
    assert page.total == 25 and [r["name"] for r in page.items][0] == "客户10"
    assert len(page.items) == 10
    last = await records.list_records(ctx, "customer", sort="-annual_income", page=3,
                                      per_page=10)
    assert [r["annual_income"] for r in last.items] == [f"{10000 + i * 1000}.00"
                                                       for i in range(4, -1, -1)]
    rich = await records.list_records(ctx, "customer", {"annual_income__gte": "30000"})
    assert rich.total == 5
    ranged = await records.list_records(ctx, "customer",
                                        {"region": "140802", "annual_income__lt": "20000"})
    assert sorted(r["name"] for r in ranged.items) == [f"客户{i:02d}" for i in (0, 2, 4, 6, 8)]
    by_name = await records.list_records(ctx, "customer", q="客户2")
    assert by_name.total == 5  # 客户20-24
    by_mobile = await records.list_records(ctx, "customer", q="13800000007")
    assert [r["name"] for r in by_mobile.items] == ["客户07"]
    body = "14010519900101013"
    by_id = await records.list_records(ctx, "customer",
                                       {"resident_id": body + resident_id_check_char(body)})
    assert [r["name"] for r in by_id.items] == ["客户13"]
    for bad in ({"nope": "1"}, {"name__like": "x"}, {"mobile__gte": "1"}):
        with pytest.raises(XindaiError):
            await records.list_records(ctx, "customer", bad)
    with pytest.raises(XindaiError):
        await records.list_records(ctx, "customer", sort="mobile")
    with pytest.raises(XindaiError):
        await records.list_records(ctx, "customer", per_page=500)


async def test_money_never_loses_a_fen(new_tenant: Any) -> None:
    ctx = await new_tenant(records=False)
    big = "987654321012.34"
    rec = await records.create(ctx, "customer", {**VALID, "annual_income": big})
    assert (await records.get(ctx, "customer", rec["id"]))["annual_income"] == big
    assert Decimal(rec["annual_income"]) == Decimal(big)


async def test_concurrent_updates_never_lose_a_change(new_tenant: Any, monkeypatch: Any) -> None:
    """Two writers read version 1 at once: one wins, the other gets 409, nothing is lost."""
    import asyncio

    ctx = await new_tenant(records=False)
    rec = await records.create(ctx, "customer", VALID)
    original = records._check_references

    async def slow(*args: Any) -> None:
        await asyncio.sleep(0.2)  # both writers are past their read before either writes
        await original(*args)

    monkeypatch.setattr(records, "_check_references", slow)
    results = await asyncio.gather(
        records.update(ctx, "customer", rec["id"], {"wechat_id": "wx_first"}),
        records.update(ctx, "customer", rec["id"], {"address": "第二个地址"}),
        return_exceptions=True,
    )
    monkeypatch.setattr(records, "_check_references", original)
    wins = [r for r in results if isinstance(r, dict)]
    losses = [r for r in results if isinstance(r, Exception)]
    final = await records.get(ctx, "customer", rec["id"])
    from core.db import is_postgres
    from core.tables import Tenant

    assert bool(losses) == is_postgres(Tenant._meta.db)
    if losses:  # PostgreSQL: the writers overlapped; the loser is told, not silently lost
        assert len(wins) == 1 and isinstance(losses[0], Conflict)
        assert final["version"] == 2
    else:  # SQLite: write transactions are serial, so both applied in turn
        assert final["version"] == 3
        assert final["wechat_id"] == "wx_first" and final["address"] == "第二个地址"
    for won in wins:
        for key in ("wechat_id", "address"):
            if won[key] is not None:
                assert final[key] == won[key]


async def test_custom_boolean_filter_and_secret_custom_search(new_tenant: Any) -> None:
    from core.customfields import add_custom_field

    ctx = await new_tenant(records=False)
    await add_custom_field(ctx, "customer", {"key": "owns_home", "type": "boolean"})
    await add_custom_field(ctx, "customer", {"key": "visa_until", "type": "datetime",
                                             "sensitivity": "secret", "searchable": True})
    a = await records.create(ctx, "customer", {**VALID, "owns_home": True,
                                                "visa_until": "2027-01-01T00:00:00+08:00"})
    await records.create(ctx, "customer", {**VALID, "owns_home": False})
    for raw in ("true", "1", "是"):
        found = await records.list_records(ctx, "customer", {"owns_home": raw})
        assert [r["id"] for r in found.items] == [a["id"]]
    assert (await records.list_records(ctx, "customer", {"owns_home": "否"})).total == 1
    found = await records.list_records(ctx, "customer",
                                       {"visa_until": "2027-01-01T00:00:00+08:00"})
    assert [r["id"] for r in found.items] == [a["id"]]


async def test_a_500_logs_no_personal_data(client: Any, new_tenant: Any, monkeypatch: Any,
                                          capsys: Any) -> None:
    from tests.conftest import login

    ctx = await new_tenant(records=False)
    h = await login(client, ctx.tenant.slug)

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(records, "_write_blind_indexes", broken)
    capsys.readouterr()
    r = await client.post("/api/v1/customers", headers=h, json=VALID)
    assert r.status_code == 500 and r.json()["code"] == "internal"
    out = capsys.readouterr()
    log = out.out + out.err
    assert "disk on fire" in log  # the error is logged ...
    for secret in (VALID["resident_id"], VALID["mobile"]):
        assert secret not in log  # ... without the values being written
    assert (await records.list_records(ctx, "customer")).total == 0
