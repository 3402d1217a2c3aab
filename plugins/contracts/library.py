"""Contract templates as stored per product: versioned, checked before they are saved.

`product` "*" is the tenant's default template, seeded from the sample at onboarding; a
product without its own template uses it. Saving never changes a version: it writes the
next one, so a contract records exactly the version it was rendered from."""

from __future__ import annotations

import uuid
from typing import Any

from core import audit
from core.access import require
from core.errors import FieldError, NotFound, ValidationFailed
from core.events import emit
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.contracts.tables import ContractTemplate
from plugins.contracts.templates import check_template, sample_template

__all__ = ["sample_template"]

DEFAULT_PRODUCT = "*"
MANAGE = "contract.template.manage"
PRODUCT_LABELS = {"zh-CN": "适用产品", "en": "Product"}
NAME_LABELS = {"zh-CN": "模板名称", "en": "Template name"}

register_messages({
    "contract_template_product": {
        "zh-CN": "{label}应为产品代码（字母、数字、-、_，至多 40 个字符）或 *（默认模板）",
        "en": "{label} must be a product code (letters, digits, - or _, up to 40) or * "
              "(the default template)"},
})


def _product(product: Any) -> str:
    code = str(product or "").strip()
    if code == DEFAULT_PRODUCT or (0 < len(code) <= 40 and all(
            c.isascii() and (c.isalnum() or c in "-_") for c in code)):
        return code
    raise ValidationFailed([FieldError("product", "contract_template_product", {},
                                       PRODUCT_LABELS)])


def describe(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "product": row["product"], "version": row["version"],
            "name": row["name"], "body": row["body"], "active": row["active"],
            "created_at": row["created_at"].isoformat() if row.get("created_at") else None,
            "created_by": row["created_by"]}


async def _latest(ctx: Context, product: str) -> dict[str, Any] | None:
    rows = await ContractTemplate.select().where(
        ContractTemplate.tenant_id == ctx.tenant_id, ContractTemplate.product == product,
        ContractTemplate.active == True,  # noqa: E712 - piccolo builds SQL from ==
    ).order_by(ContractTemplate.version, ascending=False).limit(1).run()
    return rows[0] if rows else None


async def save_template(ctx: Context, product: Any, body: Any, name: Any = "") -> dict[str, Any]:
    """Check and save the next version of `product`'s template (422 naming the problem and
    its line otherwise; nothing is written)."""
    require(ctx, MANAGE)
    code = _product(product)
    text = str(body or "")
    check_template(text)
    title = str(name or "").strip()[:200] or ("默认借款合同" if code == DEFAULT_PRODUCT
                                              else f"{code} 借款合同")
    async with tenant_scope(ctx):
        rows = await ContractTemplate.select(ContractTemplate.version).where(
            ContractTemplate.tenant_id == ctx.tenant_id, ContractTemplate.product == code,
        ).order_by(ContractTemplate.version, ascending=False).limit(1).run()
        version = (rows[0]["version"] if rows else 0) + 1
        row = {"id": uuid.uuid4(), "tenant_id": ctx.tenant_id, "product": code,
               "version": version, "name": title, "body": text, "active": True,
               "created_by": ctx.user_id}
        await ContractTemplate.insert(ContractTemplate(**row)).run()
        await audit.append(ctx, "contract.template.save", "contract_template", row["id"], {
            "product": [None, code], "version": [None, version], "name": [None, title],
            "length": [None, len(text)]})
        await emit(ctx, "contract.template_saved", {"id": str(row["id"]), "product": code,
                                                    "version": version})
        saved = await ContractTemplate.select().where(
            ContractTemplate.tenant_id == ctx.tenant_id,
            ContractTemplate.id == row["id"]).run()
    return describe(saved[0])


async def template_for(ctx: Context, product: str) -> dict[str, Any]:
    """The template a contract for `product` is rendered from: the product's newest, else
    the default; the shipped sample if the tenant has neither (never refused)."""
    async with tenant_scope(ctx, write=False):
        row = await _latest(ctx, product) or await _latest(ctx, DEFAULT_PRODUCT)
    if row is None:
        return {"id": None, "product": DEFAULT_PRODUCT, "version": 0, "name": "示例借款合同",
                "body": sample_template(), "active": True, "created_at": None,
                "created_by": None}
    return describe(row)


async def list_templates(ctx: Context) -> list[dict[str, Any]]:
    """The newest version of each product's template, the default first."""
    async with tenant_scope(ctx, write=False):
        rows = await ContractTemplate.select().where(
            ContractTemplate.tenant_id == ctx.tenant_id,
        ).order_by(ContractTemplate.product).order_by(ContractTemplate.version,
                                                      ascending=False).run()
    newest: dict[str, dict[str, Any]] = {}
    for r in rows:
        newest.setdefault(r["product"], r)
    return [describe(r) for r in sorted(newest.values(),
                                        key=lambda r: (r["product"] != DEFAULT_PRODUCT,
                                                       r["product"]))]


async def history(ctx: Context, product: str) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        rows = await ContractTemplate.select().where(
            ContractTemplate.tenant_id == ctx.tenant_id, ContractTemplate.product == product,
        ).order_by(ContractTemplate.version, ascending=False).run()
    if not rows and product != DEFAULT_PRODUCT:
        raise NotFound()
    return [describe(r) for r in rows]


async def seed_default(ctx: Context) -> None:
    """Onboarding: the default template from the shipped sample, once."""
    async with tenant_scope(ctx):
        if await _latest(ctx, DEFAULT_PRODUCT) is None:
            await save_template(ctx, DEFAULT_PRODUCT, sample_template(), "默认借款合同")
