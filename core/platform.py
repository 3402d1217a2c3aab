"""The platform operator (SaaS): users of the platform tenant who manage every tenant.

A platform operator is an ordinary user of the tenant named by `XINDAI_PLATFORM_TENANT`
(default `platform`) whose role grants `platform.tenants`. The same permission in any other
tenant grants nothing here, so a lender's administrator can never reach other lenders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.access import require
from core.errors import Forbidden, NotFound, XindaiError
from core.identity import create_user, generate_password
from core.tenancy import (
    Context,
    TenantInfo,
    get_tenant,
    insert_tenant,
    list_tenants,
    tenant_scope,
    update_tenant,
)

PACKS = Path(__file__).resolve().parent.parent / "tenants"


def require_operator(ctx: Context) -> None:
    require(ctx, "platform.tenants")  # only counts inside the platform tenant


def describe(t: TenantInfo) -> dict[str, Any]:
    return {"slug": t.slug, "name": t.name, "status": t.status, "locale": t.locale,
            "timezone": t.timezone, "business_date": t.business_date.isoformat(),
            "plugins": list(t.plugins)}


async def tenants(ctx: Context) -> list[dict[str, Any]]:
    require_operator(ctx)
    return [describe(t) for t in await list_tenants()]


async def create_from_pack(ctx: Context, pack: str, slug: str) -> tuple[TenantInfo,
                                                                        dict[str, str]]:
    """Sign a lender up: a new tenant from one of the packs shipped under tenants/."""
    from core.packs import apply_pack, load_pack

    require_operator(ctx)
    folder = PACKS / pack
    if "/" in pack or pack.startswith(".") or not (folder / "pack.yaml").is_file():
        raise NotFound("unknown_pack", pack=pack)
    return await apply_pack(load_pack(folder), slug)


async def set_status(ctx: Context, slug: str, status: str) -> dict[str, Any]:
    require_operator(ctx)
    if status not in ("active", "suspended"):
        raise XindaiError("bad_status", status=status)
    from core.kernel import kernel

    if slug == kernel().settings.platform_tenant:
        raise Forbidden("forbidden_action", permission="platform.tenants")
    from core import audit

    tenant = await get_tenant(slug)
    async with tenant_scope(Context.system(tenant)):  # recorded in the lender's own chain
        await audit.append(Context(tenant=tenant, user_id=ctx.user_id,
                                   username=f"platform:{ctx.username}", roles=ctx.roles,
                                   ip=ctx.ip, access=ctx.access),
                           "tenant.status", "tenant", slug, {"status": [tenant.status, status]})
        return describe(await update_tenant(tenant, status=status))


async def init_platform(slug: str) -> tuple[TenantInfo, str]:
    """Create the platform tenant with one operator; returns the operator's password."""
    from core import admin
    from core.crypto import create_tenant_key
    from core.kernel import kernel

    tenant = await insert_tenant(slug, "平台运营 / Platform operations", plugins=[])
    system = Context.system(tenant)
    async with tenant_scope(system):
        await create_tenant_key(kernel().master_key, tenant.id)
    await admin.save_role(system, "platform_operator", "平台运营", "Platform operator",
                          ["platform.tenants", "admin.users", "admin.roles", "tokens.manage"],
                          "all")
    password = generate_password()
    await create_user(system, "operator", "平台运营", password, ["platform_operator"])
    return tenant, password
