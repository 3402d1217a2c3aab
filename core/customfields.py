"""Custom fields that a tenant adds to an entity at run time (the seeds' "form engine")."""

from __future__ import annotations

from typing import Any

from core import audit
from core.access import require
from core.errors import Conflict, FieldError, NotFound, ValidationFailed
from core.fields import FieldDef, FieldProblem, field_from_dict
from core.tables import CustomField
from core.tenancy import Context, tenant_scope


def _row_to_field(row: dict[str, Any]) -> FieldDef:
    return field_from_dict({**row, "rules": row.get("rules") or {}}, custom=True)


async def custom_fields(ctx: Context, entity: str) -> list[FieldDef]:
    """The tenant's custom fields of `entity`, in display order."""
    async with tenant_scope(ctx, write=False):
        rows = await CustomField.select().where(
            CustomField.tenant_id == ctx.tenant_id, CustomField.entity == entity
        ).order_by(CustomField.position).output(load_json=True).run()
    return [_row_to_field(r) for r in rows]


async def add_custom_field(ctx: Context, entity: str, spec: dict[str, Any]) -> FieldDef:
    """Validate a field spec and store it; the key may not clash with any existing field."""
    from core.records import entity_for

    try:
        f = field_from_dict(spec, custom=True)
    except FieldProblem as exc:
        raise ValidationFailed([FieldError("key" if "key" in exc.code else "type", exc.code,
                                           {"type": spec.get("type"), **exc.params})]) from None
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise ValidationFailed([FieldError("rules", "pattern", {"label": str(exc)})]) from None
    require(ctx, "admin.fields")
    async with tenant_scope(ctx):
        current = await entity_for(ctx, entity)
        if current.field(f.key) is not None or f.key in ("id", "version", "created_at",
                                                        "updated_at"):
            raise Conflict("custom_field_exists", field=f.key)
        await CustomField.insert(CustomField(
            tenant_id=ctx.tenant_id, entity=entity, key=f.key, type=str(f.type),
            label_zh=f.label_zh, label_en=f.label_en, required=f.required,
            sensitivity=str(f.sensitivity), searchable=f.searchable,
            options=[{"value": c.value, "zh": c.zh, "en": c.en} for c in f.options],
            rules={k: v for k, v in {
                "max_length": f.max_length,
                "min_value": None if f.min_value is None else str(f.min_value),
                "max_value": None if f.max_value is None else str(f.max_value),
                "pattern": f.pattern, "reference": f.reference,
            }.items() if v is not None},
            position=f.position or len(current.fields),
        )).run()
        await audit.append(ctx, "custom_field.add", entity, f.key,
                           {"type": [None, str(f.type)], "required": [None, f.required],
                            "sensitivity": [None, str(f.sensitivity)]})
    return f


async def remove_custom_field(ctx: Context, entity: str, key: str) -> None:
    """Remove a field definition; stored values stay in the records (for audit) but hide."""
    require(ctx, "admin.fields")
    async with tenant_scope(ctx):
        deleted = await CustomField.delete().where(
            CustomField.tenant_id == ctx.tenant_id, CustomField.entity == entity,
            CustomField.key == key,
        ).returning(CustomField.id).run()
        if not deleted:
            raise NotFound()
        await audit.append(ctx, "custom_field.remove", entity, key)
