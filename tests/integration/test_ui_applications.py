"""The 进件 screens on both engines: an officer fills in a new application with the live
schedule preview, an out-of-range amount is refused beside its field with nothing saved,
the application page shows the checklist and refuses submission while documents are
missing, then submits (credit report and score breakdown shown); the scorecard editor
refuses overlapping bins and previews a sample; permissions keep others out."""

from __future__ import annotations

import re
from typing import Any

from core import documents, records
from core.tenancy import Context
from plugins.origination.tables import Application
from plugins.servicing import products
from tests.integration.test_applications import CARD, CONFIG, JPEG, PDF, count
from tests.integration.test_ui_pages import sign_in

HX = {"HX-Request": "true"}


async def setup(new_tenant: Any) -> tuple[Context, str]:
    from plugins.origination import approvals, scorecards
    from plugins.origination.examples import DEMO_WORKFLOW

    ctx = await new_tenant(plugins=["crm", "servicing", "origination", "bureau_local"])
    await products.save_product(ctx, "XD01", "经营贷", CONFIG)
    await scorecards.save(ctx, {**CARD, "variables": CARD["variables"] + [
        {"variable": "industry", "bins": [{"values": ["coal", "wholesale_retail"], "points": 5},
                                          {"other": True, "points": 0}]},
        {"variable": "region", "bins": [{"values": ["140105"], "points": 5},
                                        {"other": True, "points": 0}]}]})
    await approvals.save_workflow(ctx, {**DEMO_WORKFLOW, "subject": "application"})
    page = await records.list_records(ctx, "customer", {"kind": "individual"})
    return ctx, str(page.items[0]["id"])


async def test_new_application_preview_refusal_and_submission(kernel: Any, new_tenant: Any,
                                                             client: Any) -> None:
    ctx, customer = await setup(new_tenant)
    csrf = await sign_in(client, ctx.tenant.slug)
    r = await client.get(f"/applications/new?customer_id={customer}")
    assert r.status_code == 200 and "王小明" in r.text and 'value="XD01"' in r.text
    form = {"_csrf": csrf, "customer_id": customer, "product": "XD01", "amount": "10000",
            "periods": "12", "annual_rate": "", "purpose": "进货",
            "consent_ref": "AUTH-2026-01"}
    r = await client.post("/applications/new/preview", data=form, headers=HX)
    assert r.status_code == 200 and "888.49" in r.text and "12.00%" in r.text  # DOMAIN.md
    r = await client.post("/applications/new", data={**form, "amount": "900000"})
    assert r.status_code == 422 and "500000" in r.text
    assert await count(ctx, Application) == 0
    r = await client.post("/applications/new", data=form)
    assert r.status_code == 303
    location = r.headers["location"]
    page = await client.get(location)
    assert "身份证人像面" in page.text and "草稿" in page.text
    r = await client.post(f"{location}/submit", data={"_csrf": csrf})
    assert r.status_code == 422 and "缺少必需的资料" in r.text
    await records.update(ctx, "customer", customer, {"industry": "wholesale_retail"})
    await documents.upload(ctx, "customer", customer, "id_front", "f.jpg", JPEG)
    await documents.upload(ctx, "customer", customer, "id_back", "b.pdf", PDF)
    r = await client.post(f"{location}/submit", data={"_csrf": csrf})
    assert r.status_code == 303
    page = await client.get(location)
    assert "审批中" in page.text and 'id="approvals"' in page.text
    assert re.search(r'class="bureau-score">\d+<', page.text)
    assert "征信评分" in page.text and re.search(r'class="score-grade">[ABC]<', page.text)
    # categories read as words, not codes: the value, the bin, the application's region
    assert "<td>批发零售</td><td>煤炭与采矿、批发零售</td>" in page.text, page.text
    assert "<td>太原市小店区 (140105)</td>" in page.text
    assert "XD01 · 经营贷" in page.text
    assert "<strong>审批中</strong> · 管理员" in page.text  # who, by display name
    listing = await client.get("/applications?status=in_approval&owner=mine")
    assert location.rsplit("/", 1)[1] in listing.text
    assert "SQ" not in (await client.get("/applications?status=draft")).text.split(
        "applications-table")[-1]


async def test_the_scorecard_editor_validates_and_previews(kernel: Any, new_tenant: Any,
                                                          client: Any) -> None:
    ctx, _ = await setup(new_tenant)
    csrf = await sign_in(client, ctx.tenant.slug)
    page = await client.get("/scorecards?lang=en")
    assert page.status_code == 200 and "bureau_score" in page.text
    bad = ("code: retail\nbase_points: 600\nvariables:\n  - variable: bureau_score\n"
           "    bins:\n      - {max: 600, points: 1}\n      - {min: 550, points: 2}\n"
           "grades:\n  - {grade: A}\n")
    r = await client.post("/scorecards", data={"_csrf": csrf, "definition": bad,
                                              "sample": "bureau_score: 1"})
    assert r.status_code == 422 and "重叠" in r.text
    r = await client.post("/scorecards/preview", headers=HX, data={
        "_csrf": csrf, "definition": bad.replace("shoe", ""), "sample": "x: 1"})
    assert r.status_code == 422
    good = bad.replace("{min: 550, points: 2}", "{min: 600, points: 2}")
    r = await client.post("/scorecards/preview", headers=HX, data={
        "_csrf": csrf, "definition": good, "sample": "bureau_score: 650"})
    assert r.status_code == 200 and 'class="score-total">602<' in r.text
    r = await client.post("/scorecards", data={"_csrf": csrf, "definition": good,
                                              "sample": ""})
    assert r.status_code == 303 and "saved=2" in r.headers["location"]


async def test_a_draft_is_edited_with_the_same_checks(kernel: Any, new_tenant: Any,
                                                      client: Any) -> None:
    from plugins.origination import applications
    from tests.integration.test_applications import form

    ctx, customer = await setup(new_tenant)
    app = await applications.create(ctx, form(customer))
    csrf = await sign_in(client, ctx.tenant.slug)
    page = await client.get(f"/applications/{app['id']}")
    assert f'href="/applications/{app["id"]}/edit"' in page.text
    r = await client.get(f"/applications/{app['id']}/edit")
    assert r.status_code == 200 and 'value="50000.00"' in r.text and "修改进件" in r.text
    values = {"_csrf": csrf, "product": "XD01", "amount": "900000", "periods": "12",
              "annual_rate": "", "purpose": "进货", "consent_ref": "SQ-AUTH-0001"}
    r = await client.post(f"/applications/{app['id']}/edit", data=values)
    assert r.status_code == 422 and "500000" in r.text  # the product's range, by the field
    assert (await records.get(ctx, "application", app["id"]))["amount"] == "50000.00"
    r = await client.post(f"/applications/{app['id']}/edit",
                          data={**values, "amount": "80000", "periods": "24"})
    assert r.status_code == 303
    saved = await records.get(ctx, "application", app["id"])
    assert (saved["amount"], saved["periods"], saved["customer_id"]) == ("80000.00", 24,
                                                                         customer)
    await applications.withdraw(ctx, app["id"])  # no longer editable: back to its page
    r = await client.get(f"/applications/{app['id']}/edit")
    assert r.status_code == 303 and r.headers["location"] == f"/applications/{app['id']}"
