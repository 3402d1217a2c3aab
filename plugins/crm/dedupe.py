"""Duplicate detection for leads and customers, one row or a whole import at a time.

A row duplicates a live lead or customer of the tenant when
- its resident ID or mobile equals theirs (exact, through the blind index: no decryption),
- its credit code equals theirs, or
- its normalised name (Unicode NFKC, no spaces or middle dots, case-folded) equals theirs
  and they share the region (same six-digit code) or the masked mobile (`138****8000`,
  the first three and last four digits). A name alone is too common to flag (王伟), and
  the masked mobile is stored in clear, so the comparison needs no decryption either.
Rows of the same batch are compared with each other by the same rules (`row` instead of
`id` in the match). Merged-away leads are not candidates.

`find_duplicates` is what importers call (provider `duplicate_finder`); `merge` keeps one
lead and folds another into it.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Any

from core import audit
from core import validators as v
from core.access import require
from core.crypto import TenantKeys, tenant_keys
from core.errors import Conflict, NotFound, XindaiError
from core.events import emit
from core.i18n import register_messages
from core.tables import BlindIndex
from core.tenancy import Context, tenant_scope
from plugins.crm.lead_tables import Lead
from plugins.crm.tables import Customer

ENTITIES = ("lead", "customer")
SECRET_KEYS = ("resident_id", "mobile")
CHUNK = 500
_SPACES = re.compile(r"[\s·•・.]+")

register_messages({
    "lead_duplicate": {"zh-CN": "疑似重复：已有 {count} 条线索或客户的{fields}与之相同",
                       "en": "possible duplicate: {count} lead(s) or customer(s) share the {fields}"},
    "lead_merge_self": {"zh-CN": "不能把线索合并到它自己", "en": "a lead cannot be merged into itself"},
    "lead_merged_already": {"zh-CN": "该线索已被合并", "en": "this lead has already been merged"},
})
FIELD_NAMES = {"resident_id": ("身份证号", "resident ID"), "mobile": ("手机号", "mobile"),
               "credit_code": ("统一社会信用代码", "credit code"), "name": ("名称", "name")}


class DuplicateFound(Conflict):
    """409 with the matches in the problem details (`duplicates`)."""

    code = "lead_duplicate"

    def __init__(self, matches: list[dict[str, Any]], locale: str | None) -> None:
        fields = sorted({m["matched"] for m in matches})
        i = 1 if locale == "en" else 0
        sep = ", " if locale == "en" else "、"
        super().__init__(count=len({(m["entity"], m.get("id")) for m in matches}),
                         fields=sep.join(FIELD_NAMES[f][i] for f in fields))
        self.details = {"duplicates": matches}


def normalise_name(name: Any) -> str:
    if not isinstance(name, str):
        return ""
    return _SPACES.sub("", unicodedata.normalize("NFKC", name)).casefold()


def _identifiers(row: dict[str, Any]) -> dict[str, Any]:
    """The row's well-formed identifiers (malformed ones are for validation to report)."""
    out: dict[str, Any] = {}
    for key, check in (("resident_id", v.check_resident_id), ("mobile", v.check_mobile),
                       ("credit_code", v.check_credit_code)):
        raw = row.get(key)
        if isinstance(raw, str) and raw.strip():
            try:
                out[key] = check(raw)
            except v.InvalidValue:
                pass
    out["name"] = normalise_name(row.get("name"))
    region = row.get("region")
    out["region"] = region.strip() if isinstance(region, str) else None
    out["masked_mobile"] = v.mask_mobile(out["mobile"]) if "mobile" in out else None
    return out


def _chunks(items: list[Any]) -> list[list[Any]]:
    return [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)] or []


async def find_duplicates(ctx: Context, entity: str, rows: list[dict[str, Any]]
                          ) -> dict[int, list[dict[str, Any]]]:
    """{row index: [match, ...]} for the rows that duplicate a live lead or customer or an
    earlier row of the batch. A match is {"entity", "id" (or "row"), "matched", "name"
    (masked)}. A handful of set-based queries whatever the number of rows."""
    from core.kernel import kernel

    keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
    idents = [_identifiers(r) for r in rows]
    out: dict[int, list[dict[str, Any]]] = {}

    def add(i: int, match: dict[str, Any]) -> None:
        lst = out.setdefault(i, [])
        if match not in lst:
            lst.append(match)

    _within_batch(entity, idents, add)
    async with tenant_scope(ctx, write=False):
        await _by_blind_index(ctx, keys, idents, add)
        await _by_credit_code(ctx, idents, add)
        await _by_name(ctx, idents, add)
    return out


def _within_batch(entity: str, idents: list[dict[str, Any]], add: Any) -> None:
    first: dict[tuple[str, Any], int] = {}
    for i, ident in enumerate(idents):
        keys = [(k, ident[k]) for k in ("resident_id", "mobile", "credit_code") if k in ident]
        if ident["name"]:
            for scope in ("region", "masked_mobile"):
                if ident.get(scope):
                    keys.append(("name", (ident["name"], scope, ident[scope])))
        for key in keys:
            if key in first:
                add(i, {"entity": entity, "row": first[key], "matched": key[0]})
            else:
                first[key] = i


async def _live(ctx: Context, entity: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """{id: name} of the live (not deleted, not merged-away) records among `ids`."""
    t = Lead if entity == "lead" else Customer
    found: dict[uuid.UUID, str] = {}
    for part in _chunks(ids):
        where = [t.tenant_id == ctx.tenant_id, t.id.is_in(part), t.deleted_at.is_null()]
        if t is Lead:
            where.append(Lead.merged_into_id.is_null())
        for r in await t.select(t.id, t.name).where(*where).run():
            found[r["id"]] = r["name"]
    return found


async def _by_blind_index(ctx: Context, keys: TenantKeys, idents: list[dict[str, Any]],
                          add: Any) -> None:
    wanted: dict[tuple[str, str, str], list[int]] = {}
    for i, ident in enumerate(idents):
        for key in SECRET_KEYS:
            if key in ident:
                for entity in ENTITIES:
                    d = keys.blind_index(entity, key, ident[key])
                    wanted.setdefault((entity, key, d), []).append(i)
    if not wanted:
        return
    hits: list[dict[str, Any]] = []
    for part in _chunks(sorted({d for _, _, d in wanted})):
        hits.extend(await BlindIndex.select(
            BlindIndex.entity, BlindIndex.field, BlindIndex.digest, BlindIndex.record_id,
        ).where(BlindIndex.tenant_id == ctx.tenant_id, BlindIndex.entity.is_in(list(ENTITIES)),
                BlindIndex.field.is_in(list(SECRET_KEYS)), BlindIndex.digest.is_in(part)).run())
    for entity in ENTITIES:
        live = await _live(ctx, entity, [h["record_id"] for h in hits if h["entity"] == entity])
        for h in hits:
            if h["entity"] == entity and h["record_id"] in live:
                for i in wanted.get((entity, h["field"], h["digest"]), ()):
                    add(i, {"entity": entity, "id": str(h["record_id"]), "matched": h["field"],
                            "name": v.mask_name(live[h["record_id"]])})


async def _by_credit_code(ctx: Context, idents: list[dict[str, Any]], add: Any) -> None:
    codes = sorted({i["credit_code"] for i in idents if "credit_code" in i})
    if not codes:
        return
    for entity, t in (("lead", Lead), ("customer", Customer)):
        for part in _chunks(codes):
            where = [t.tenant_id == ctx.tenant_id, t.credit_code.is_in(part),
                     t.deleted_at.is_null()]
            if t is Lead:
                where.append(Lead.merged_into_id.is_null())
            for r in await t.select(t.id, t.name, t.credit_code).where(*where).run():
                for i, ident in enumerate(idents):
                    if ident.get("credit_code") == r["credit_code"]:
                        add(i, {"entity": entity, "id": str(r["id"]), "matched": "credit_code",
                                "name": v.mask_name(r["name"])})


async def _by_name(ctx: Context, idents: list[dict[str, Any]], add: Any) -> None:
    """Same normalised name and same region or masked mobile. Stored names are compared as
    typed (trimmed) and normalised: the query asks for both spellings through the
    (tenant_id, name) index."""
    by_name: dict[str, list[int]] = {}
    for i, ident in enumerate(idents):
        if ident["name"] and (ident["region"] or ident["masked_mobile"]):
            by_name.setdefault(ident["name"], []).append(i)
    if not by_name:
        return
    spellings = sorted(set(by_name))
    for entity, t in (("lead", Lead), ("customer", Customer)):
        for part in _chunks(spellings):
            where = [t.tenant_id == ctx.tenant_id, t.name.is_in(part), t.deleted_at.is_null()]
            if t is Lead:
                where.append(Lead.merged_into_id.is_null())
            rows = await t.select(t.id, t.name, t.region, t.masked).where(*where).output(
                load_json=True).run()
            for r in rows:
                masked = (r["masked"] or {}).get("mobile")
                for i in by_name.get(normalise_name(r["name"]), ()):
                    ident = idents[i]
                    if (ident["region"] and ident["region"] == r["region"]) or \
                            (ident["masked_mobile"] and ident["masked_mobile"] == masked):
                        add(i, {"entity": entity, "id": str(r["id"]), "matched": "name",
                                "name": v.mask_name(r["name"])})


class DuplicateFinder:
    """Provider `duplicate_finder` (see docs/plugins.md)."""

    async def find_duplicates(self, ctx: Context, entity: str, rows: list[dict[str, Any]]
                              ) -> dict[int, list[dict[str, Any]]]:
        return await find_duplicates(ctx, entity, rows)

    async def blacklisted(self, ctx: Context, rows: list[dict[str, Any]]
                          ) -> dict[int, dict[str, Any]]:
        from plugins.crm.blacklist import check_many

        return await check_many(ctx, rows)

    async def capture(self, ctx: Context, data: dict[str, Any], on_duplicate: str = "flag"
                      ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Create one lead through the one write path, a duplicate stored flagged."""
        from plugins.crm.leads import capture

        return await capture(ctx, data, on_duplicate)


DUPLICATE_FINDER = DuplicateFinder()


# --- merge -----------------------------------------------------------------------------------

MERGE_FIELDS = ("name", "mobile", "resident_id", "credit_code", "region", "product_interest",
                "source", "channel")


async def merge(ctx: Context, keep_id: Any, drop_id: Any) -> dict[str, Any]:
    """Keep lead `keep_id`, fold `drop_id` into it: the kept lead's empty fields are filled
    from the other, the other gets `merged_into_id` (it stays, with its history, out of
    lists and duplicate checks), an audit entry names both, and `lead.merged` lets other
    plugins move their references (follow-ups, tasks) to the kept lead."""
    from core import records
    from core.kernel import kernel
    from plugins.crm.leads import decrypt_lead, set_system

    require(ctx, "lead.merge")
    if str(keep_id) == str(drop_id):
        raise XindaiError("lead_merge_self")
    async with tenant_scope(ctx):
        keep = await records.get(ctx, "lead", keep_id)  # both must be visible to the user
        drop = await records.get(ctx, "lead", drop_id)
        keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
        rows = {r["id"]: r for r in await Lead.select().where(
            Lead.tenant_id == ctx.tenant_id,
            Lead.id.is_in([uuid.UUID(keep["id"]), uuid.UUID(drop["id"])])).output(
            load_json=True).run()}
        keep_row, drop_row = rows[uuid.UUID(keep["id"])], rows[uuid.UUID(drop["id"])]
        for r in (keep_row, drop_row):
            if r["merged_into_id"] is not None:
                raise Conflict("lead_merged_already")
        kept, dropped = decrypt_lead(keys, keep_row), decrypt_lead(keys, drop_row)
        fill = {k: dropped[k] for k in MERGE_FIELDS
                if kept.get(k) in (None, "") and dropped.get(k) not in (None, "")}
        if fill:
            await records.update(ctx, "lead", keep["id"], fill)
        await set_system(ctx, drop["id"], {"merged_into_id": uuid.UUID(keep["id"])},
                         "lead.merged_away")
        if keep_row["suspected_duplicate"]:
            await set_system(ctx, keep["id"], {"suspected_duplicate": False},
                             "lead.duplicate_cleared")
        await audit.append(ctx, "lead.merge", "lead", keep["id"],
                           {"kept": keep["id"], "merged": drop["id"], "filled": sorted(fill)})
        await emit(ctx, "lead.merged", {"id": keep["id"], "merged_id": drop["id"]})
        return await records.get(ctx, "lead", keep["id"])


async def duplicates_of_lead(ctx: Context, lead_id: Any) -> list[dict[str, Any]]:
    """The live leads and customers a stored lead duplicates (itself excluded)."""
    from core.kernel import kernel
    from plugins.crm.leads import decrypt_lead

    async with tenant_scope(ctx, write=False):
        rows = await Lead.select().where(Lead.tenant_id == ctx.tenant_id,
                                         Lead.id == uuid.UUID(str(lead_id))).output(
            load_json=True).run()
    if not rows:
        raise NotFound()
    keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
    found = await find_duplicates(ctx, "lead", [decrypt_lead(keys, rows[0])])
    return [m for m in found.get(0, []) if m.get("id") != str(rows[0]["id"])]
