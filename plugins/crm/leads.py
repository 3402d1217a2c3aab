"""Leads (线索): the entity, what happens on every capture, stages and conversion.

Every capture (web form, generic API `POST /api/v1/leads`, the UI, packs, importers that
call core.records.create) passes `on_capture`, the lead entity's `before_create` hook:
    blacklist (refused and audited) -> duplicates (409 with the matches, or captured and
    flagged `suspected_duplicate` when the caller chose `on_duplicate="flag"`, as the web
    form does) -> assignment rules (the owner) -> stage `new`.
System-managed fields (stage, pool and conversion state, merge) are readonly in the
registry, so no form or PATCH sets them; they change through the actions here, each
audited and announced like a record update (`set_system`).
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from core import audit
from core.access import require
from core.crypto import TenantKeys
from core.errors import Conflict, FieldError, NotFound, ValidationFailed
from core.events import emit
from core.fields import Choice, FieldDef, FieldType, Sensitivity
from core.i18n import register_messages
from core.registry import EntityType
from core.tenancy import Context, tenant_scope
from plugins.crm.lead_tables import Lead

SOURCES = (
    Choice("web_form", "网页表单", "Web form"), Choice("api", "接口", "API"),
    Choice("import", "批量导入", "Import"), Choice("referral", "转介绍", "Referral"),
    Choice("walk_in", "到店", "Walk-in"), Choice("phone", "电话", "Phone"),
    Choice("event", "活动", "Event"), Choice("other", "其他", "Other"),
)
DEFAULT_STAGES = [
    {"key": "new", "zh": "新线索", "en": "New"},
    {"key": "contacted", "zh": "已联系", "en": "Contacted"},
    {"key": "interested", "zh": "有意向", "en": "Interested"},
    {"key": "applied", "zh": "已进件", "en": "Applied"},
    {"key": "converted", "zh": "已转化", "en": "Converted"},
    {"key": "invalid", "zh": "无效", "en": "Invalid"},
]
FIXED_STAGES = ("new", "converted", "invalid")  # the system sets these: keys every list keeps
SYSTEM_FIELDS = ("stage", "suspected_duplicate", "last_activity_at", "pooled_at",
                 "converted_customer_id", "merged_into_id")

register_messages({
    "lead_stage_unknown": {"zh-CN": "未知的线索阶段“{stage}”", "en": "unknown lead stage '{stage}'"},
    "lead_stage_fixed": {"zh-CN": "“已转化”只能通过转为客户设置",
                         "en": "'converted' is set by converting the lead to a customer"},
    "lead_converted": {"zh-CN": "该线索已转为客户", "en": "this lead has already been converted"},
    "lead_closed": {"zh-CN": "该线索已合并或已转化，不能再操作",
                    "en": "this lead is merged or converted: no further changes"},
    "lead_stages_setting": {
        "zh-CN": "线索阶段须为若干行“键 | 中文 | English”，键不重复，且包含 new、converted、invalid",
        "en": "lead stages must be lines of 'key | Chinese label | English label' with unique "
              "keys including "
              "new, converted and invalid"},
})

P, S = Sensitivity.personal, Sensitivity.secret
_flag_duplicates: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "crm_flag_duplicates", default=False)
_last_duplicates: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "crm_last_duplicates", default=None)


async def on_capture(ctx: Context, data: Any, owner: dict[str, Any] | None
                     ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The lead entity's `before_create`: blacklist, duplicates, assignment (see above).
    Invalid input is left to core.records' validation, which reports every problem."""
    from core import records
    from plugins.crm import assignment, blacklist, dedupe

    if not isinstance(data, dict):
        return owner, {}
    async with tenant_scope(ctx, write=False):
        entity = await records.entity_for(ctx, "lead")
    try:
        records.validate(entity, data, None)
    except ValidationFailed:
        return owner, {}
    channel = str(data.get("source") or "api")
    hit = await blacklist.check(ctx, resident_id=data.get("resident_id"),
                                mobile=data.get("mobile"), credit_code=data.get("credit_code"))
    if hit is not None:
        raise await blacklist.refuse(ctx, hit, channel)
    matches = (await dedupe.find_duplicates(ctx, "lead", [data])).get(0, [])
    _last_duplicates.set(matches)
    if matches and not _flag_duplicates.get():
        raise dedupe.DuplicateFound(matches, ctx.locale)
    now = datetime.now(UTC)
    system: dict[str, Any] = {"stage": "new", "suspected_duplicate": bool(matches),
                              "last_activity_at": now}
    chosen = owner or await assignment.choose_owner(ctx, {
        k: data.get(k) for k in ("region", "product_interest", "source")})
    if chosen is None and ctx.user_id is None:
        system["pooled_at"] = now  # nobody's: straight into the public pool
    return chosen or owner, system


async def _bulk_placer(ctx: Context) -> Any:
    from plugins.crm.assignment import bulk_placer

    return await bulk_placer(ctx)


LEAD = EntityType(
    name="lead",
    table=Lead,
    label_zh="线索",
    label_en="Lead",
    api_path="leads",
    fields=(
        FieldDef("kind", FieldType.single_select, "线索类型", "Lead type", required=True,
                 options=(Choice("individual", "个人", "Individual"),
                          Choice("company", "企业", "Company")), sortable=True),
        FieldDef("name", FieldType.text, "名称", "Name", required=True, sensitivity=P,
                 searchable=True, max_length=200, sortable=True),
        FieldDef("mobile", FieldType.phone, "手机号", "Mobile", sensitivity=S, searchable=True,
                 column=False),
        FieldDef("resident_id", FieldType.resident_id, "身份证号", "Resident ID",
                 sensitivity=S, searchable=True, column=False),
        FieldDef("credit_code", FieldType.credit_code, "统一社会信用代码",
                 "Unified social credit code", searchable=True),
        FieldDef("region", FieldType.region, "所在地区", "Region", sortable=True),
        FieldDef("product_interest", FieldType.text, "意向产品", "Product interest",
                 max_length=40),
        FieldDef("source", FieldType.single_select, "来源", "Source", options=SOURCES,
                 sortable=True),
        FieldDef("channel", FieldType.text, "渠道", "Channel", max_length=60),
        FieldDef("stage", FieldType.text, "阶段", "Stage", readonly=True, sortable=True),
        FieldDef("suspected_duplicate", FieldType.boolean, "疑似重复", "Possible duplicate",
                 readonly=True),
        FieldDef("last_activity_at", FieldType.datetime, "最近跟进", "Last activity",
                 readonly=True, sortable=True),
        FieldDef("pooled_at", FieldType.datetime, "进入公海时间", "Returned to pool at",
                 readonly=True),
        FieldDef("converted_customer_id", FieldType.reference, "转化客户", "Converted customer",
                 reference="customer", readonly=True),
        FieldDef("merged_into_id", FieldType.reference, "已合并至", "Merged into",
                 reference="lead", readonly=True),
    ),
    default_sort="-created_at",
    idempotent="optional",
    before_create=on_capture,
    bulk_placer=_bulk_placer,
)


@contextmanager
def flag_duplicates() -> Iterator[None]:
    """Within the block, a duplicate capture is stored and flagged instead of refused."""
    token = _flag_duplicates.set(True)
    try:
        yield
    finally:
        _flag_duplicates.reset(token)


async def capture(ctx: Context, data: dict[str, Any], on_duplicate: str = "refuse"
                  ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Create a lead through the one write path; returns it and the duplicates it matched
    (`on_duplicate="flag"` stores a duplicate flagged instead of refusing it)."""
    from core import records

    _last_duplicates.set(None)
    if on_duplicate == "flag":
        with flag_duplicates():
            lead = await records.create(ctx, "lead", data)
    else:
        lead = await records.create(ctx, "lead", data)
    return lead, _last_duplicates.get() or []


# --- stages ------------------------------------------------------------------------------------

def stages(ctx: Context) -> list[dict[str, str]]:
    """The tenant's funnel stages, in order (setting `crm.lead_stages`)."""
    from core.kernel import kernel

    value = kernel().setting(ctx.tenant, "crm.lead_stages")
    return value if valid_stages(value) else DEFAULT_STAGES


def valid_stages(value: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    keys = []
    for s in value:
        if not isinstance(s, dict) or not all(isinstance(s.get(k), str) and s.get(k)
                                              for k in ("key", "zh", "en")):
            return False
        keys.append(s["key"])
    return len(keys) == len(set(keys)) and all(k in keys for k in FIXED_STAGES)


def stage_label(ctx: Context, key: str, locale: str | None = None) -> str:
    for s in stages(ctx):
        if s["key"] == key:
            return s["en"] if (locale or ctx.locale) == "en" else s["zh"]
    return key


# --- system fields -------------------------------------------------------------------------------

def decrypt_lead(keys: TenantKeys, row: dict[str, Any]) -> dict[str, Any]:
    """A stored lead's plain values, secrets decrypted (for merge and conversion only)."""
    sealed = row.get("sealed") or {}
    out = {k: row.get(k) for k in ("id", "kind", "name", "credit_code", "region",
                                   "product_interest", "source", "channel", "owner_id")}
    for key in ("mobile", "resident_id"):
        token = sealed.get(key)
        out[key] = keys.decrypt("lead", key, row["id"], token) if token else None
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


async def set_system(ctx: Context, lead_id: Any, values: dict[str, Any], action: str,
                     owner: dict[str, Any] | None = None, clear_owner: bool = False
                     ) -> dict[str, Any]:
    """Change system-managed fields (and the owner) of one lead: version + 1, an audit
    entry `action` with the diff, and `lead.updated` with the changed names."""
    try:
        lid = uuid.UUID(str(lead_id))
    except ValueError:
        raise NotFound() from None
    async with tenant_scope(ctx):
        rows = await Lead.select().where(Lead.tenant_id == ctx.tenant_id, Lead.id == lid,
                                         Lead.deleted_at.is_null()).run()
        if not rows:
            raise NotFound()
        current = rows[0]
        changes = dict(values)
        if owner is not None:
            changes.update(owner_id=uuid.UUID(str(owner["id"])),
                           org_unit_id=owner.get("org_unit_id"))
        elif clear_owner:
            changes.update(owner_id=None)
        diff = {k: [_plain(current[k]), _plain(v)] for k, v in changes.items()
                if current[k] != v}
        if not diff:
            return current
        now = datetime.now(UTC)
        done = await Lead.update({
            **{getattr(Lead, k): v for k, v in changes.items()},
            Lead.version: current["version"] + 1, Lead.updated_at: now,
            Lead.updated_by: ctx.user_id,
        }).where(Lead.tenant_id == ctx.tenant_id, Lead.id == lid,
                 Lead.version == current["version"]).returning(Lead.id).run()
        if not done:
            raise Conflict("version_conflict")
        await audit.append(ctx, action, "lead", lid, diff)
        await emit(ctx, "lead.updated", {"entity": "lead", "id": str(lid),
                                         "fields": sorted(diff)})
        return {**current, **changes}


async def _visible_open(ctx: Context, lead_id: Any) -> dict[str, Any]:
    """The lead as ctx may see it (404 otherwise), refusing merged or converted ones."""
    from core import records

    lead = await records.get(ctx, "lead", lead_id)
    if lead.get("merged_into_id") or lead.get("converted_customer_id"):
        raise Conflict("lead_closed")
    return lead


async def set_stage(ctx: Context, lead_id: Any, stage: str) -> dict[str, Any]:
    """Move a lead along the funnel (lead.update); audited as `lead.stage`."""
    from core import records

    require(ctx, "lead.update")
    if stage not in [s["key"] for s in stages(ctx)]:
        raise ValidationFailed([FieldError("stage", "lead_stage_unknown", {"stage": stage})])
    if stage == "converted":
        raise ValidationFailed([FieldError("stage", "lead_stage_fixed")])
    async with tenant_scope(ctx):
        lead = await _visible_open(ctx, lead_id)
        await set_system(ctx, lead["id"], {"stage": stage,
                                           "last_activity_at": datetime.now(UTC)}, "lead.stage")
        return await records.get(ctx, "lead", lead["id"])


async def touch(ctx: Context, lead_id: Any) -> None:
    """Record contact with a lead now (a follow-up): the pool's clock starts again."""
    async with tenant_scope(ctx):
        await set_system(ctx, lead_id, {"last_activity_at": datetime.now(UTC)},
                         "lead.activity")


# --- conversion ---------------------------------------------------------------------------------

async def convert(ctx: Context, lead_id: Any) -> dict[str, Any]:
    """Create the customer from the lead (identifiers kept, through core.records), link it
    (`converted_customer_id`, stage `converted`) and emit `lead.converted`. The lead stays
    with its history. A blacklisted party is refused (and the attempt audited)."""
    from core import records
    from core.crypto import tenant_keys
    from core.kernel import kernel
    from plugins.crm import blacklist

    require(ctx, "lead.convert")
    require(ctx, "customer.create")
    lead = await records.get(ctx, "lead", lead_id)
    if lead.get("converted_customer_id"):
        raise Conflict("lead_converted")
    if lead.get("merged_into_id"):
        raise Conflict("lead_closed")
    keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
    async with tenant_scope(ctx, write=False):
        rows = await Lead.select().where(Lead.tenant_id == ctx.tenant_id,
                                         Lead.id == uuid.UUID(lead["id"])).output(
            load_json=True).run()
    plain = decrypt_lead(keys, rows[0])
    hit = await blacklist.check(ctx, resident_id=plain["resident_id"], mobile=plain["mobile"],
                                credit_code=plain["credit_code"])
    if hit is not None:
        raise await blacklist.refuse(ctx, hit, "conversion")
    data = {k: plain[k] for k in ("kind", "name", "resident_id", "mobile", "credit_code",
                                  "region", "source") if plain.get(k) not in (None, "")}
    async with tenant_scope(ctx):
        customer = await records.create(ctx, "customer", data)
        await set_system(ctx, lead["id"], {
            "converted_customer_id": uuid.UUID(customer["id"]), "stage": "converted",
            "last_activity_at": datetime.now(UTC)}, "lead.convert")
        await emit(ctx, "lead.converted", {"id": lead["id"], "customer_id": customer["id"]})
        return {"lead": await records.get(ctx, "lead", lead["id"]), "customer": customer}


class LeadsProvider:
    """Provider `leads`: what other plugins may do to leads without importing crm."""

    async def touch(self, ctx: Context, lead_id: Any) -> None:
        """A follow-up happened now: the lead's pool clock restarts."""
        await touch(ctx, lead_id)

    async def stage_label(self, ctx: Context, key: str) -> str:
        return stage_label(ctx, key)


LEADS_PROVIDER = LeadsProvider()
