"""The lead screens on both engines: list with the funnel count, a lead's page, its stage,
merge and conversion buttons, the pool (claim), and the settings page's refusals."""

from __future__ import annotations

import re
from typing import Any

from core import records
from plugins.crm import leads
from tests.integration.test_ui_pages import field_error, sign_in


async def test_lead_pages(kernel: Any, new_tenant: Any, client: Any) -> None:
    ctx = await new_tenant()
    a, _ = await leads.capture(ctx, {"kind": "individual", "name": "界面甲", "mobile": "13711112222",
                                     "resident_id": "110105198001010032", "source": "phone"})
    b, _ = await leads.capture(ctx, {"kind": "individual", "name": "界面甲",
                                     "mobile": "13711112222", "product_interest": "XF01"},
                               on_duplicate="flag")
    csrf = await sign_in(client, ctx.tenant.slug)
    r = await client.get("/crm/leads")
    assert r.status_code == 200 and "转化漏斗" in r.text
    assert re.search(r'data-stage="new">(\d+)<', r.text).group(1) == "2"
    assert "疑似重复" in r.text
    r = await client.get(f"/crm/leads/{a['id']}")
    assert r.status_code == 200 and f'name="merge_id" value="{b["id"]}"' in r.text
    r = await client.post(f"/crm/leads/{a['id']}/merge", data={"_csrf": csrf, "merge_id": b["id"]})
    assert r.status_code == 303
    assert (await records.get(ctx, "lead", a["id"]))["product_interest"] == "XF01"
    r = await client.post(f"/crm/leads/{a['id']}/stage", data={"_csrf": csrf, "stage": "interested"})
    assert r.status_code == 303
    r = await client.get("/crm/leads?stage=interested")
    assert "界面甲" in r.text
    r = await client.post(f"/crm/leads/{a['id']}/convert", data={"_csrf": csrf})
    assert r.status_code == 303
    lead = await records.get(ctx, "lead", a["id"])
    assert lead["stage"] == "converted" and lead["converted_customer_id"]
    r = await client.get(f"/crm/leads/{a['id']}")
    assert f"/e/customer/{lead['converted_customer_id']}" in r.text
    # the pool: a released lead is claimed back
    c, _ = await leads.capture(ctx, {"kind": "individual", "name": "公海丙", "mobile": "13733334444"})
    r = await client.post(f"/crm/leads/{c['id']}/release", data={"_csrf": csrf})
    assert r.status_code == 303
    r = await client.get("/crm/pool")
    assert f'data-id="{c["id"]}"' in r.text and "公*" in r.text
    r = await client.post(f"/crm/pool/{c['id']}/claim", data={"_csrf": csrf})
    assert r.status_code == 303
    assert f'data-id="{c["id"]}"' not in (await client.get("/crm/pool")).text
    # settings: a stage list without `invalid` is refused next to the field
    r = await client.post("/crm/settings", data={"_csrf": csrf, "pool_days": "0",
                                                 "pool_claim_limit": "5",
                                                 "stages": "new|新|New\nconverted|转|Conv"})
    assert r.status_code == 422 and field_error(r.text, "stages") and \
        field_error(r.text, "pool_days")
    r = await client.post("/crm/settings", data={
        "_csrf": csrf, "webform_enabled": "on", "pool_days": "30", "pool_claim_limit": "5",
        "stages": "new|新线索|New\nvisited|已上门|Visited\nconverted|已转化|Converted\n"
                  "invalid|无效|Invalid"})
    assert r.status_code == 303
    r = await client.get("/crm/leads")
    assert "已上门" in r.text
    assert (await client.get(f"/f/{ctx.tenant.slug}/lead")).status_code == 200
