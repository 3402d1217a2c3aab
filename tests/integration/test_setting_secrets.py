"""Secret tenant settings on both engines: a pack's credit-bureau secret is sealed when the
tenant is created (no plain text in the database), a credit check signs with it against
the local bureau over real HTTP, an export gives it back for the round trip, and
`set-secret` replaces it (audited without the value) or refuses an undeclared key."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core import records, setting_secrets
from core.errors import NotFound, XindaiError
from core.packs import apply_pack, export_pack, load_pack
from core.tables import AuditEntry, Tenant
from core.tenancy import Context, get_tenant, tenant_scope
from plugins.bureau_local.server import start_in_thread
from plugins.origination import applications, credit
from plugins.servicing import products
from tests.conftest import SMALL_PACK

KEY, SECRET = "lender-sealed", secrets.token_hex(32)
NEW_SECRET = secrets.token_hex(32)
PRODUCT = {"method": "equal_installment", "frequency": "month", "interest_basis": "per_period",
           "amount_min": "1000", "amount_max": "500000", "term_min": 3, "term_max": 36,
           "rate_min": "6", "rate_max": "24", "rate_default": "12"}


@pytest.fixture(scope="module")
def bureau() -> Iterator[Any]:
    running = start_in_thread({KEY: SECRET})
    yield running
    running.stop()


async def _raw_settings(tenant_id: uuid.UUID) -> str:
    row = await Tenant.select(Tenant.settings).where(Tenant.id == tenant_id).first().run()
    value = row["settings"]
    return value if isinstance(value, str) else json.dumps(value)


async def _check(ctx: Context) -> dict[str, Any]:
    await products.save_product(ctx, "XD01", "经营贷", PRODUCT)
    customer = (await records.list_records(ctx, "customer", {"kind": "individual"})).items[0]
    app = await applications.create(ctx, {"customer_id": customer["id"], "product": "XD01",
                                          "amount": "20000", "periods": 6,
                                          "consent_ref": "AUTH-2026-0100"})
    return await credit.check(ctx, app["id"])


async def test_a_pack_secret_is_sealed_used_exported_and_replaced(
        kernel: Any, bureau: Any, tmp_path: Path) -> None:
    pack = load_pack(SMALL_PACK)
    pack.doc["tenant"]["plugins"] = ["crm", "servicing", "origination"]
    pack.doc["tenant"]["settings"] = {"origination.bureau_url": bureau.url,
                                      "origination.bureau_app_key": KEY,
                                      "origination.bureau_secret": SECRET}
    info, _ = await apply_pack(pack, slug=f"t-{uuid.uuid4().hex[:10]}")
    raw = await _raw_settings(info.id)
    assert SECRET not in raw and '"sealed"' in raw and bureau.url in raw
    ctx = Context.system(await get_tenant(info.slug))
    assert setting_secrets.is_sealed(ctx.tenant.settings["origination.bureau_secret"])
    assert await setting_secrets.reveal(ctx, "origination.bureau_secret") == SECRET
    done = await _check(ctx)  # the client signed with the revealed secret: the bureau agreed
    assert done["summary"]["bureau_score"] > 0

    out = await export_pack(info.slug, tmp_path / "export", False)
    exported = yaml.safe_load(Path(out).read_text(encoding="utf-8"))
    assert exported["tenant"]["settings"]["origination.bureau_secret"] == SECRET

    with pytest.raises(NotFound) as unknown:
        await setting_secrets.set_secret(info.slug, "origination.bureau_url", "x")
    assert "不是已声明的保密配置项" in unknown.value.message("zh-CN")
    with pytest.raises(XindaiError) as empty:
        await setting_secrets.set_secret(info.slug, "origination.bureau_secret", "  ")
    assert empty.value.code == "setting_secret_empty"
    await setting_secrets.set_secret(info.slug, "origination.bureau_secret", NEW_SECRET)
    raw = await _raw_settings(info.id)
    assert NEW_SECRET not in raw and SECRET not in raw
    ctx = Context.system(await get_tenant(info.slug))
    assert await setting_secrets.reveal(ctx, "origination.bureau_secret") == NEW_SECRET
    with pytest.raises(credit.BureauError) as refused:  # the bureau knows the old one only
        await _check(ctx)
    assert refused.value.params["bureau_code"] == "1003"
    async with tenant_scope(ctx, write=False):
        rows = await AuditEntry.select(AuditEntry.action, AuditEntry.diff).where(
            AuditEntry.tenant_id == ctx.tenant_id,
            AuditEntry.action == "tenant.setting.secret").run()
    assert len(rows) == 1 and NEW_SECRET not in json.dumps(rows[0]["diff"])
