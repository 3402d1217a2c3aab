"""Leads imported from a spreadsheet are placed like captured ones, on both engines: stage
新线索, source 批量导入 when the file has none, owners by the assignment rules (named
officer, round robin going on from the rule's cursor, least loaded counting the rows
placed so far), and the round-robin cursor moved on for the next capture."""

from __future__ import annotations

from typing import Any

from core import imports, records
from core.admin import list_users
from plugins.crm import assignment, leads
from tests.integration.test_assignment import _officers
from tests.integration.test_imports import xlsx


async def test_imported_leads_follow_the_assignment_rules(kernel: Any,
                                                          new_tenant: Any) -> None:
    ctx = await new_tenant()
    names = await _officers(ctx, 3)
    await assignment.save_rules(ctx, [
        {"name": "太原给一号", "region_prefix": "1401", "action": "officer",
         "officers": [names[0]]},
        {"name": "运城轮流", "region_prefix": "1408", "action": "round_robin",
         "officers": names[1:]},
    ])
    ids = {str(u["id"]): u["username"] for u in await list_users(ctx)}
    header = ["名称", "线索类型", "手机号", "所在地区", "来源"]
    rows = [[f"太原{i}", "个人", f"1370000{i:04d}", "140105", None] for i in range(2)]
    rows += [[f"运城{i}", "个人", f"1370001{i:04d}", "140802", "转介绍"] for i in range(3)]
    rows += [["外省", "个人", "13700020000", "310101", None]]
    job = await imports.upload(ctx, "lead", "线索.xlsx", xlsx(header, rows))
    out = await imports.run(ctx, job["id"], commit=True)
    assert out.created == 6, out
    page = await records.list_records(ctx, "lead", per_page=50, sort="created_at")
    got = {r["name"]: r for r in page.items}
    assert {r["stage"] for r in got.values()} == {"new"}
    assert got["太原0"]["source"] == "import" and got["运城0"]["source"] == "referral"
    assert [ids[got[f"太原{i}"]["owner_id"]] for i in range(2)] == [names[0]] * 2
    assert [ids[got[f"运城{i}"]["owner_id"]] for i in range(3)] == [
        names[1], names[2], names[1]]
    assert got["外省"]["owner_id"] == ctx.user_id or got["外省"]["pooled_at"]
    # the next capture takes the next turn after the import's three
    lead, _ = await leads.capture(ctx, {"kind": "individual", "name": "运城后来",
                                        "region": "140802", "source": "phone"})
    assert ids[lead["owner_id"]] == names[2]


async def test_a_blacklisted_row_stops_the_import(kernel: Any, new_tenant: Any) -> None:
    """crm's blacklist screens the whole batch at once (`check_many`); the listed mobile's
    row is named, and nothing of the file is written."""
    from plugins.crm import blacklist

    ctx = await new_tenant()
    await blacklist.add(ctx, "mobile", "13700030002", "提供虚假材料")
    header = ["名称", "线索类型", "手机号", "所在地区"]
    rows = [[f"甲{i}", "个人", f"1370003{i:04d}", "140105"] for i in range(5)]
    job = await imports.upload(ctx, "lead", "线索.xlsx", xlsx(header, rows))
    out = await imports.run(ctx, job["id"], commit=True)
    assert (out.created, out.blacklisted, out.error_count) == (0, 1, 1), out
    assert [(e["row"], e["code"]) for e in out.errors] == [(4, "import_blacklisted")]
    assert (await records.list_records(ctx, "lead")).total == 0
