"""The blacklist (黑名单): identifiers that may not become leads, customers' applications or
imports. An entry keeps only a keyed digest (the tenant's blind-index key, purpose
"blacklist") and a masked form, so the list itself reveals no ID number or mobile.

Other plugins screen a party through the provider `choose_provider(kind="party_screen")`
(see `PartyScreen`); the crm plugin itself checks every lead capture (core.records'
`before_create` hook of the lead entity, see plugins.crm.leads).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from core import audit
from core import validators as v
from core.access import require
from core.crypto import TenantKeys, tenant_keys
from core.errors import Conflict, FieldError, NotFound, ValidationFailed, XindaiError
from core.events import emit
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.crm.lead_tables import BlacklistEntry

KINDS = ("resident_id", "mobile", "credit_code")
LABELS = {"resident_id": ("身份证号", "Resident ID"), "mobile": ("手机号", "Mobile"),
          "credit_code": ("统一社会信用代码", "Unified social credit code"),
          "reason": ("原因", "Reason"), "kind": ("类型", "Type")}
_CHECK = {"resident_id": v.check_resident_id, "mobile": v.check_mobile,
          "credit_code": v.check_credit_code}
_MASK = {"resident_id": v.mask_resident_id, "mobile": v.mask_mobile,
         "credit_code": v.mask_generic}
MAX_REASON = 300

register_messages({
    "blacklisted": {"zh-CN": "{label}在黑名单中，不予受理", "en": "{label} is on the blacklist: refused"},
    "blacklist_exists": {"zh-CN": "该{label}已在黑名单中", "en": "this {label} is already on the blacklist"},
    "blacklist_kind": {"zh-CN": "类型须为身份证号、手机号或统一社会信用代码",
                       "en": "the type must be resident ID, mobile or credit code"},
    "blacklist_reason": {"zh-CN": "请填写加入黑名单的原因（最多 300 字）",
                         "en": "give the reason for blacklisting (at most 300 characters)"},
})


class Blacklisted(XindaiError):
    """A capture or application refused because an identifier is blacklisted (audited)."""

    status = 422
    code = "blacklisted"


def _err(key: str, code: str, **params: Any) -> FieldError:
    zh, en = LABELS.get(key, (key, key))
    return FieldError(key, code, params, {"zh-CN": zh, "en": en})


def normalise(kind: str, raw: Any) -> str | None:
    """The canonical form of an identifier, or None when it is empty or malformed."""
    if raw in (None, "") or not isinstance(raw, str) or kind not in _CHECK:
        return None
    try:
        return _CHECK[kind](raw)
    except v.InvalidValue:
        return None


def digest(keys: TenantKeys, kind: str, value: str) -> str:
    return keys.blind_index("blacklist", kind, value)


async def _keys(ctx: Context) -> TenantKeys:
    from core.kernel import kernel

    return await tenant_keys(kernel().master_key, ctx.tenant_id)


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(r["id"]), "kind": r["kind"], "masked": r["masked"], "reason": r["reason"],
            "created_at": r["created_at"].isoformat() if r["created_at"] else None,
            "created_by": r["created_by"],
            "removed_at": r["removed_at"].isoformat() if r["removed_at"] else None,
            "removed_by": r["removed_by"]}


async def add(ctx: Context, kind: str, value: Any, reason: Any) -> dict[str, Any]:
    """Blacklist one identifier (permission blacklist.manage); the reason is required."""
    require(ctx, "blacklist.manage")
    errors = []
    if kind not in KINDS:
        errors.append(_err("kind", "blacklist_kind"))
    reason_text = reason.strip() if isinstance(reason, str) else ""
    if not reason_text or len(reason_text) > MAX_REASON:
        errors.append(_err("reason", "blacklist_reason"))
    value_text = None
    if kind in KINDS:
        try:
            value_text = _CHECK[kind](value if isinstance(value, str) else "")
        except v.InvalidValue as exc:
            errors.append(_err(kind, exc.code if value else "required"))
    if errors:
        raise ValidationFailed(errors)
    assert value_text is not None
    keys = await _keys(ctx)
    async with tenant_scope(ctx):
        d = digest(keys, kind, value_text)
        if await BlacklistEntry.exists().where(
                BlacklistEntry.tenant_id == ctx.tenant_id, BlacklistEntry.kind == kind,
                BlacklistEntry.digest == d, BlacklistEntry.removed_at.is_null()).run():
            zh, en = LABELS[kind]
            raise Conflict("blacklist_exists", label=zh if ctx.locale != "en" else en)
        row = BlacklistEntry(tenant_id=ctx.tenant_id, kind=kind, digest=d,
                             masked=_MASK[kind](value_text), reason=reason_text,
                             created_by=ctx.username)
        await row.save().run()
        await audit.append(ctx, "blacklist.add", "blacklist", row.id,
                           {"kind": kind, "masked": row.masked, "reason": reason_text})
        await emit(ctx, "blacklist.added", {"id": str(row.id), "kind": kind})
        rows = await BlacklistEntry.select().where(BlacklistEntry.id == row.id).run()
        return _row(rows[0])


async def remove(ctx: Context, entry_id: Any) -> None:
    """Lift an entry (it stays listed as removed, for the record)."""
    require(ctx, "blacklist.manage")
    try:
        eid = uuid.UUID(str(entry_id))
    except ValueError:
        raise NotFound() from None
    async with tenant_scope(ctx):
        done = await BlacklistEntry.update({
            BlacklistEntry.removed_at: datetime.now(UTC),
            BlacklistEntry.removed_by: ctx.username,
        }).where(BlacklistEntry.tenant_id == ctx.tenant_id, BlacklistEntry.id == eid,
                 BlacklistEntry.removed_at.is_null()).returning(BlacklistEntry.kind).run()
        if not done:
            raise NotFound()
        await audit.append(ctx, "blacklist.remove", "blacklist", eid, {"kind": done[0]["kind"]})
        await emit(ctx, "blacklist.removed", {"id": str(eid)})


async def list_entries(ctx: Context, include_removed: bool = False) -> list[dict[str, Any]]:
    require(ctx, "blacklist.manage")
    async with tenant_scope(ctx, write=False):
        where = [BlacklistEntry.tenant_id == ctx.tenant_id]
        if not include_removed:
            where.append(BlacklistEntry.removed_at.is_null())
        rows = await BlacklistEntry.select().where(*where).order_by(
            BlacklistEntry.created_at, ascending=False).run()
    return [_row(r) for r in rows]


async def check_many(ctx: Context, rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """For each row (dicts with resident_id / mobile / credit_code), the first active entry
    it hits: {row index: {"entry_id", "reason", "matched"}}. One query for all the rows."""
    keys = await _keys(ctx)
    wanted: dict[tuple[str, str], list[int]] = {}
    for i, row in enumerate(rows):
        for kind in KINDS:
            value = normalise(kind, row.get(kind))
            if value is not None:
                wanted.setdefault((kind, digest(keys, kind, value)), []).append(i)
    if not wanted:
        return {}
    found: dict[int, dict[str, Any]] = {}
    digests = sorted({d for _, d in wanted})
    async with tenant_scope(ctx, write=False):
        for start in range(0, len(digests), 500):
            hits = await BlacklistEntry.select(
                BlacklistEntry.id, BlacklistEntry.kind, BlacklistEntry.digest,
                BlacklistEntry.reason,
            ).where(BlacklistEntry.tenant_id == ctx.tenant_id,
                    BlacklistEntry.digest.is_in(digests[start:start + 500]),
                    BlacklistEntry.removed_at.is_null()).run()
            for h in hits:
                for i in wanted.get((h["kind"], h["digest"]), ()):
                    found.setdefault(i, {"entry_id": str(h["id"]), "reason": h["reason"],
                                         "matched": h["kind"]})
    return found


async def check(ctx: Context, *, resident_id: Any = None, mobile: Any = None,
                credit_code: Any = None) -> dict[str, Any] | None:
    """The entry these identifiers hit, or None when they are clear."""
    hits = await check_many(ctx, [{"resident_id": resident_id, "mobile": mobile,
                                   "credit_code": credit_code}])
    return hits.get(0)


async def refuse(ctx: Context, hit: dict[str, Any], channel: str, entity: str = "lead"
                 ) -> Blacklisted:
    """Record a refused attempt (its own transaction, so it stays when the caller's work is
    rolled back) and return the error to raise."""
    async with tenant_scope(ctx):
        await audit.append(ctx, "blacklist.refused", entity, None,
                           {"entry_id": hit["entry_id"], "matched": hit["matched"],
                            "channel": channel})
    zh, en = LABELS[hit["matched"]]
    return Blacklisted(label=en if ctx.locale == "en" else zh)


async def customer_identifiers(ctx: Context, customer_id: Any) -> dict[str, Any]:
    """A customer's resident ID, mobile and credit code, decrypted for screening only."""
    from plugins.crm.tables import Customer

    try:
        cid = uuid.UUID(str(customer_id))
    except ValueError:
        raise NotFound() from None
    async with tenant_scope(ctx, write=False):
        rows = await Customer.select(Customer.id, Customer.sealed, Customer.credit_code).where(
            Customer.tenant_id == ctx.tenant_id, Customer.id == cid,
            Customer.deleted_at.is_null()).output(load_json=True).run()
    if not rows:
        raise NotFound()
    keys = await _keys(ctx)
    sealed = rows[0]["sealed"] or {}
    out: dict[str, Any] = {"credit_code": rows[0]["credit_code"]}
    for key in ("resident_id", "mobile"):
        token = sealed.get(key)
        out[key] = keys.decrypt("customer", key, cid, token) if token else None
    return out


class PartyScreen:
    """Provider `party_screen`: is a party blacklisted? None when clear."""

    async def check(self, ctx: Context, *, customer_id: Any = None, resident_id: Any = None,
                    mobile: Any = None, credit_code: Any = None) -> dict[str, Any] | None:
        if customer_id is not None:
            ids = await customer_identifiers(ctx, customer_id)
            resident_id = resident_id or ids["resident_id"]
            mobile = mobile or ids["mobile"]
            credit_code = credit_code or ids["credit_code"]
        return await check(ctx, resident_id=resident_id, mobile=mobile,
                           credit_code=credit_code)

    async def check_many(self, ctx: Context, rows: list[dict[str, Any]]
                         ) -> dict[int, dict[str, Any]]:
        """`check` for many parties at once (an import's batch): {row index: hit}."""
        return await check_many(ctx, rows)


PARTY_SCREEN = PartyScreen()
