"""Assignment rules on both engines: first matching rule wins; named officer, round robin
in turn, least loaded; rules validated whole; the pack section and the UI page."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import ValidationFailed
from plugins.crm import assignment, leads
from tests.integration.test_ui_pages import make_user


async def _officers(ctx: Any, n: int) -> list[str]:
    names = []
    for i in range(n):
        await make_user(ctx, f"lo{i}", ["lead.read", "lead.create", "lead.update"],
                        scope="own")
        names.append(f"lo{i}")
    return names


async def test_rules(kernel: Any, new_tenant: Any) -> None:
    from core.admin import list_users

    ctx = await new_tenant()
    names = await _officers(ctx, 3)
    with pytest.raises(ValidationFailed) as exc:
        await assignment.save_rules(ctx, [{"name": "坏", "action": "round_robin",
                                           "officers": ["nobody"], "region_prefix": "1"}])
    assert {e.code for e in exc.value.errors} == {"rule_officers", "rule_region"}
    await assignment.save_rules(ctx, [
        {"name": "太原经营贷", "region_prefix": "1401", "product_interest": "JY01",
         "action": "officer", "officers": [names[0]]},
        {"name": "网页轮流", "source": "web_form", "action": "round_robin",
         "officers": names[1:]},
        {"name": "其余最少", "action": "least_loaded", "officers": names},
    ])
    ids = {u["username"]: str(u["id"]) for u in await list_users(ctx)}
    lead, _ = await leads.capture(ctx, {"kind": "individual", "name": "甲", "region": "140105",
                                        "product_interest": "JY01", "source": "web_form"})
    assert lead["owner_id"] == ids[names[0]]
    turns = []
    for i in range(4):
        lead, _ = await leads.capture(ctx, {"kind": "individual", "name": f"网{i}",
                                            "region": "310101", "source": "web_form"})
        turns.append(lead["owner_id"])
    assert turns == [ids[names[1]], ids[names[2]], ids[names[1]], ids[names[2]]]
    # least loaded: names[0] holds 1, the others 2 each
    lead, _ = await leads.capture(ctx, {"kind": "individual", "name": "乙", "source": "phone"})
    assert lead["owner_id"] == ids[names[0]]
    assert [r["name"] for r in await assignment.list_rules(ctx)] == [
        "太原经营贷", "网页轮流", "其余最少"]


async def test_rules_page(kernel: Any, new_tenant: Any, client: Any) -> None:
    from tests.integration.test_ui_pages import sign_in

    ctx = await new_tenant()
    csrf = await sign_in(client, ctx.tenant.slug)
    r = await client.post("/crm/assignment-rules", data={
        "_csrf": csrf, "r-1-name": "全部给管理员", "r-1-action": "officer",
        "r-1-officers": "admin", "r-1-active": "on", "r-1-position": "1"})
    assert r.status_code == 303, r.text
    assert (await assignment.list_rules(ctx))[0]["officers"] == ["admin"]
    r = await client.post("/crm/assignment-rules", data={
        "_csrf": csrf, "r-1-name": "x", "r-1-action": "officer", "r-1-officers": "ghost"})
    assert r.status_code == 422 and "ghost" in r.text
    assert (await assignment.list_rules(ctx))[0]["name"] == "全部给管理员"
