"""What an application for a product needs before it may be submitted: document kinds
(core.documents.KINDS) and keys of the tenant's custom fields on `application`.

Set per product by the pack section `application_requirements:` (or `set_for_product`):

    application_requirements:
      "*":  [id_front, id_back, credit_report]           # every other product
      JY01: {documents: [id_front, id_back, credit_report, bank_statement],
             fields: [business_licence_no]}

A product without its own entry uses `*`, and without that DEFAULT. Documents count when
they are on the customer (KYC, uploaded once) or on the application itself.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from core import audit
from core.access import require
from core.documents import KINDS
from core.errors import FieldError, ValidationFailed
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.origination.tables import Requirement

DEFAULT = {"documents": ["id_front", "id_back", "credit_report"], "fields": []}

register_messages({
    "requirement_kind": {"zh-CN": "{label}：未知的资料类型 {got}（可用：{known}）",
                         "en": "{label}: unknown document kind {got} (known: {known})"},
    "requirement_field": {"zh-CN": "{label}：进件没有自定义字段 {got}",
                          "en": "{label}: applications have no custom field {got}"},
    "requirement_shape": {
        "zh-CN": "{label}：应为资料类型列表，或包含 documents（资料类型列表）和 fields（字段列表）的映射",
        "en": "{label}: must be a list of document kinds, or a mapping of documents (kinds) and "
              "fields (keys)"},
})


def _rows_to_dict(row: dict[str, Any]) -> dict[str, list[str]]:
    return {"documents": list(row["documents"] or []), "fields": list(row["fields"] or [])}


async def for_product(ctx: Context, product: str) -> dict[str, list[str]]:
    async with tenant_scope(ctx, write=False):
        rows = await Requirement.select().where(
            Requirement.tenant_id == ctx.tenant_id,
            Requirement.product.is_in([product, "*"])).output(load_json=True).run()
    by = {r["product"]: r for r in rows}
    row = by.get(product) or by.get("*")
    return _rows_to_dict(row) if row else {k: list(v) for k, v in DEFAULT.items()}


async def all_products(ctx: Context) -> dict[str, dict[str, list[str]]]:
    async with tenant_scope(ctx, write=False):
        rows = await Requirement.select().where(
            Requirement.tenant_id == ctx.tenant_id).order_by(Requirement.product).output(
            load_json=True).run()
    return {r["product"]: _rows_to_dict(r) for r in rows}


def parse(product: str, value: Any, custom_keys: set[str]) -> dict[str, list[str]]:
    """One product's entry, checked: known document kinds and custom-field keys."""
    label = {"zh-CN": f"application_requirements.{product}",
             "en": f"application_requirements.{product}"}
    if isinstance(value, list):
        value = {"documents": value, "fields": []}
    if not isinstance(value, dict) or not isinstance(value.get("documents", []), list) \
            or not isinstance(value.get("fields", []), list):
        raise ValidationFailed([FieldError(product, "requirement_shape", {}, label)])
    docs = [str(d) for d in value.get("documents", [])]
    fields = [str(f) for f in value.get("fields", [])]
    errors = [FieldError(product, "requirement_kind", {"got": d, "known": ", ".join(KINDS)},
                         label) for d in docs if d not in KINDS]
    errors += [FieldError(product, "requirement_field", {"got": f}, label)
               for f in fields if f not in custom_keys]
    if errors:
        raise ValidationFailed(errors)
    return {"documents": list(dict.fromkeys(docs)), "fields": list(dict.fromkeys(fields))}


async def set_for_product(ctx: Context, product: str, value: Any) -> dict[str, list[str]]:
    """Replace one product's requirements (permission `scorecard.manage`: risk policy)."""
    from core import records

    require(ctx, "scorecard.manage")
    entity = await records.entity_for(ctx, "application")
    parsed = parse(product, value, {f.key for f in entity.fields if f.custom})
    async with tenant_scope(ctx):
        await Requirement.delete().where(Requirement.tenant_id == ctx.tenant_id,
                                         Requirement.product == product).run()
        await Requirement.insert(Requirement(
            id=uuid.uuid4(), tenant_id=ctx.tenant_id, product=product,
            documents=parsed["documents"], fields=parsed["fields"],
            updated_at=datetime.now(UTC))).run()
        await audit.append(ctx, "application.requirements", "application", None, {
            "product": [None, product], "documents": [None, parsed["documents"]],
            "fields": [None, parsed["fields"]]})
    return parsed
