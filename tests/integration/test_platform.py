"""The platform operator of a SaaS installation manages tenants; nobody else can."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import login


async def test_platform_operator_signs_up_and_suspends_a_lender(client: Any, kernel: Any,
                                                                new_tenant: Any) -> None:
    from core.platform import init_platform
    from core.tables import Tenant

    if not await Tenant.exists().where(Tenant.slug == "platform").run():
        _, password = await init_platform("platform")
        kernel._operator_password = password  # type: ignore[attr-defined]
    h = await login(client, "platform", "operator", kernel._operator_password)
    slug = f"lender-{uuid.uuid4().hex[:6]}"
    r = await client.post("/api/v1/platform/tenants", headers=h,
                          json={"pack": "demo", "slug": slug})
    assert r.status_code == 201, r.text
    assert r.json()["slug"] == slug and "admin" in r.json()["initial_passwords"]
    admin_pw = r.json()["initial_passwords"]["admin"]
    listed = (await client.get("/api/v1/platform/tenants", headers=h)).json()
    assert slug in {t["slug"] for t in listed}
    lender = await login(client, slug, "admin", admin_pw)
    # a lender's own administrator (permission "*") is no platform operator
    assert (await client.get("/api/v1/platform/tenants", headers=lender)).status_code == 403
    r = await client.patch(f"/api/v1/platform/tenants/{slug}", headers=h,
                           json={"status": "suspended"})
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    assert (await client.get("/api/v1/me", headers=lender)).status_code == 401
    r = await client.post("/api/v1/platform/tenants", headers=h,
                          json={"pack": "../etc", "slug": "x-evil"})
    assert r.status_code == 404
