"""Assignment rules (分配规则): business users order rules; the first that matches a new
lead chooses its owner.

A rule's conditions are all optional (empty = any): `region_prefix` (the lead's region code
starts with it: "14" Shanxi, "1401" Taiyuan, "140105" one district), `product_interest` and
`source` (equal). Its action:
- `officer`: the first of `officers` (usernames);
- `round_robin`: the next of `officers`, or of the loan officers of `org_unit`, in turn
  (the rule's cursor advances in one UPDATE, so parallel captures take different turns);
- `least_loaded`: among the same candidates, the one with the fewest open leads (not
  converted, invalid or merged), ties by username.
Inactive users are never chosen; a rule without a usable candidate is skipped. No match:
the lead stays with whoever captured it, or goes to the public pool (公海).
Rules are edited as a whole list (UI page, API, pack section `assignment_rules:`).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from core import audit
from core.access import require
from core.errors import FieldError, ValidationFailed
from core.i18n import register_messages
from core.tables import OrgUnit, User
from core.tenancy import Context, tenant_scope
from plugins.crm.lead_tables import AssignmentRule, Lead

ACTIONS = ("officer", "round_robin", "least_loaded")
CLOSED_STAGES = ("converted", "invalid")
REGION_PREFIX_RE = re.compile(r"\d{2}(\d{2}){0,2}")
MAX_RULES = 100

register_messages({
    "rule_action": {"zh-CN": "规则 {n}：动作须为指定人员、轮流分配或最少线索优先",
                    "en": "rule {n}: the action must be officer, round_robin or least_loaded"},
    "rule_region": {"zh-CN": "规则 {n}：地区前缀应为 2、4 或 6 位数字",
                    "en": "rule {n}: the region prefix must be 2, 4 or 6 digits"},
    "rule_officers": {"zh-CN": "规则 {n}：未知或停用的用户 {users}",
                      "en": "rule {n}: unknown or inactive users {users}"},
    "rule_no_candidates": {"zh-CN": "规则 {n}：请指定人员或机构",
                           "en": "rule {n}: name officers or an organisation unit"},
    "rule_unit": {"zh-CN": "规则 {n}：未知机构 {unit}", "en": "rule {n}: unknown unit {unit}"},
    "rule_name": {"zh-CN": "规则 {n}：名称须为 1 到 100 个字符",
                  "en": "rule {n}: the name must be 1 to 100 characters"},
    "rule_too_many": {"zh-CN": "最多 100 条规则", "en": "at most 100 rules"},
})


def _err(n: int, code: str, **params: Any) -> FieldError:
    return FieldError(f"rules[{n}]", code, {"n": n, **params})


def _text(value: Any, limit: int) -> str | None:
    text = str(value).strip() if value not in (None, "") else ""
    return text[:limit] or None


def _describe(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(r["id"]), "position": r["position"], "name": r["name"],
            "active": r["active"], "region_prefix": r["region_prefix"],
            "product_interest": r["product_interest"], "source": r["source"],
            "action": r["action"], "officers": list(r["officers"] or []),
            "org_unit": r["org_unit"]}


async def list_rules(ctx: Context) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        rows = await AssignmentRule.select().where(
            AssignmentRule.tenant_id == ctx.tenant_id).order_by(AssignmentRule.position).output(
            load_json=True).run()
    return [_describe(r) for r in rows]


async def save_rules(ctx: Context, rules: Any) -> list[dict[str, Any]]:
    """Replace the tenant's rules with `rules` (in order); all or nothing, audited."""
    require(ctx, "lead.configure")
    if not isinstance(rules, list):
        raise ValidationFailed([FieldError("rules", "type_list", {"label": "rules"})])
    if len(rules) > MAX_RULES:
        raise ValidationFailed([FieldError("rules", "rule_too_many")])
    async with tenant_scope(ctx):
        users = {u["username"]: u for u in await User.select(
            User.username, User.active).where(User.tenant_id == ctx.tenant_id).run()}
        units = {u["code"] for u in await OrgUnit.select(OrgUnit.code).where(
            OrgUnit.tenant_id == ctx.tenant_id).run()}
        errors: list[FieldError] = []
        clean: list[dict[str, Any]] = []
        for n, spec in enumerate(rules, start=1):
            if not isinstance(spec, dict):
                errors.append(_err(n, "rule_action"))
                continue
            rule = {
                "name": _text(spec.get("name"), 100) or "", "active": spec.get("active", True)
                is not False, "region_prefix": _text(spec.get("region_prefix"), 6),
                "product_interest": _text(spec.get("product_interest"), 40),
                "source": _text(spec.get("source"), 20), "action": spec.get("action"),
                "officers": [str(u).strip() for u in spec.get("officers") or [] if str(u).strip()],
                "org_unit": _text(spec.get("org_unit"), 40),
            }
            if not rule["name"]:
                errors.append(_err(n, "rule_name"))
            if rule["action"] not in ACTIONS:
                errors.append(_err(n, "rule_action"))
            if rule["region_prefix"] and not REGION_PREFIX_RE.fullmatch(rule["region_prefix"]):
                errors.append(_err(n, "rule_region"))
            unknown = [u for u in rule["officers"] if u not in users or not users[u]["active"]]
            if unknown:
                errors.append(_err(n, "rule_officers", users="、".join(unknown)))
            if rule["org_unit"] and rule["org_unit"] not in units:
                errors.append(_err(n, "rule_unit", unit=rule["org_unit"]))
            if not rule["officers"] and not (rule["org_unit"] and rule["action"] != "officer"):
                errors.append(_err(n, "rule_no_candidates"))
            clean.append(rule)
        if errors:
            raise ValidationFailed(errors)
        before = await list_rules(ctx)
        await AssignmentRule.delete().where(AssignmentRule.tenant_id == ctx.tenant_id).run()
        now = datetime.now(UTC)
        if clean:
            await AssignmentRule.insert(*[AssignmentRule(
                tenant_id=ctx.tenant_id, position=i, updated_at=now, **r)
                for i, r in enumerate(clean)]).run()
        await audit.append(ctx, "assignment_rules.save", "assignment_rule", None, {
            "before": [b["name"] for b in before], "after": [r["name"] for r in clean]})
        return await list_rules(ctx)


def matches(rule: dict[str, Any], lead: dict[str, Any]) -> bool:
    """Does `lead` (its field values) meet every condition the rule sets?"""
    if not rule["active"]:
        return False
    if rule["region_prefix"] and not str(lead.get("region") or "").startswith(
            rule["region_prefix"]):
        return False
    for key in ("product_interest", "source"):
        if rule[key] and rule[key] != lead.get(key):
            return False
    return True


async def _candidates(ctx: Context, rule: dict[str, Any]) -> list[dict[str, Any]]:
    """Active users the rule may hand a lead to, by username."""
    users = await User.select(User.id, User.username, User.org_unit_id, User.roles,
                              User.active).where(User.tenant_id == ctx.tenant_id).output(
        load_json=True).run()
    if rule["officers"]:
        by_name = {u["username"]: u for u in users if u["active"]}
        return [by_name[n] for n in rule["officers"] if n in by_name]
    if rule["org_unit"]:
        unit = await OrgUnit.select(OrgUnit.id).where(OrgUnit.tenant_id == ctx.tenant_id,
                                                      OrgUnit.code == rule["org_unit"]).run()
        if not unit:
            return []
        return sorted((u for u in users if u["active"] and u["org_unit_id"] == unit[0]["id"]
                       and "loan_officer" in (u["roles"] or [])), key=lambda u: u["username"])
    return []


async def open_lead_counts(ctx: Context, user_ids: list[Any]) -> dict[Any, int]:
    if not user_ids:
        return {}
    from piccolo.query.functions.aggregate import Count

    rows = await Lead.select(Lead.owner_id, Count(alias="n")).where(
        Lead.tenant_id == ctx.tenant_id, Lead.owner_id.is_in(list(user_ids)),
        Lead.deleted_at.is_null(), Lead.merged_into_id.is_null(),
        Lead.stage.not_in(list(CLOSED_STAGES))).group_by(Lead.owner_id).run()
    counts = {str(r["owner_id"]): r["n"] for r in rows if r["owner_id"] is not None}
    return {u: counts.get(str(u), 0) for u in user_ids}


async def choose_owner(ctx: Context, lead: dict[str, Any]) -> dict[str, Any] | None:
    """The owner the first matching rule gives `lead` ({"id", "org_unit_id", "username",
    "rule"}), or None."""
    async with tenant_scope(ctx):
        rules = await list_rules(ctx)
        for rule in rules:
            if not matches(rule, lead):
                continue
            people = await _candidates(ctx, rule)
            if not people:
                continue
            if rule["action"] == "officer":
                chosen = people[0]
            elif rule["action"] == "round_robin":
                turn = await AssignmentRule.update(
                    {AssignmentRule.cursor: AssignmentRule.cursor + 1}).where(
                    AssignmentRule.tenant_id == ctx.tenant_id,
                    AssignmentRule.id == rule["id"]).returning(AssignmentRule.cursor).run()
                chosen = people[(turn[0]["cursor"] - 1) % len(people)]
            else:
                counts = await open_lead_counts(ctx, [p["id"] for p in people])
                chosen = min(people, key=lambda p: (counts[p["id"]], p["username"]))
            return {"id": chosen["id"], "org_unit_id": chosen["org_unit_id"],
                    "username": chosen["username"], "rule": rule["name"]}
    return None


class BulkPlacer:
    """`choose_owner` for an import of many leads: the rules, their people and the open
    lead counts are read once, then every row is placed in memory (round robin goes on
    from the rule's cursor, least-loaded counts the leads placed so far), and `finish`
    moves the cursors on in the import's transaction. Stage and activity as on capture."""

    def __init__(self, rules: list[tuple[dict[str, Any], list[dict[str, Any]]]],
                 counts: dict[str, int], cursors: dict[str, int], pooled: bool) -> None:
        self.rules, self.counts, self.cursors, self.pooled = rules, counts, cursors, pooled
        self.turns: dict[Any, int] = {}
        self.now = datetime.now(UTC)

    def place(self, values: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        system: dict[str, Any] = {"stage": "new", "suspected_duplicate": False,
                                  "last_activity_at": self.now,
                                  "source": values.get("source") or "import"}
        lead = {**values, "source": system["source"]}
        for rule, people in self.rules:
            if not people or not matches(rule, lead):
                continue
            if rule["action"] == "officer":
                chosen = people[0]
            elif rule["action"] == "round_robin":
                turn = self.turns.get(rule["id"], 0)
                self.turns[rule["id"]] = turn + 1
                chosen = people[(self.cursors.get(rule["id"], 0) + turn) % len(people)]
            else:
                chosen = min(people, key=lambda p: (self.counts.get(str(p["id"]), 0),
                                                    p["username"]))
            self.counts[str(chosen["id"])] = self.counts.get(str(chosen["id"]), 0) + 1
            return {"id": chosen["id"], "org_unit_id": chosen["org_unit_id"]}, system
        if self.pooled:
            system["pooled_at"] = self.now  # nobody's: straight into the public pool
        return None, system

    async def finish(self, ctx: Context) -> None:
        for rule_id, turns in self.turns.items():
            await AssignmentRule.update({AssignmentRule.cursor: AssignmentRule.cursor + turns}
                                        ).where(AssignmentRule.tenant_id == ctx.tenant_id,
                                                AssignmentRule.id == uuid.UUID(rule_id)).run()


async def bulk_placer(ctx: Context) -> BulkPlacer:
    """The lead entity's `bulk_placer` (core.records_bulk, used by Excel imports)."""
    async with tenant_scope(ctx, write=False):
        rules = [(r, await _candidates(ctx, r)) for r in await list_rules(ctx)]
        people = [p["id"] for _, ps in rules for p in ps]
        counts = {str(k): v for k, v in (await open_lead_counts(ctx, people)).items()}
        cursors = {str(r["id"]): r["cursor"] for r in await AssignmentRule.select(
            AssignmentRule.id, AssignmentRule.cursor).where(
            AssignmentRule.tenant_id == ctx.tenant_id).run()}
    return BulkPlacer(rules, counts, cursors, pooled=ctx.user_id is None)


# --- the pack section -------------------------------------------------------------------------

async def load_rules(ctx: Context, data: Any, source: Any) -> None:
    """`assignment_rules: [{name, region_prefix?, product_interest?, source?, action,
    officers?: [usernames], org_unit?: code}]`."""
    from core.packs import PackError

    try:
        await save_rules(ctx, data)
    except ValidationFailed as exc:
        raise PackError(source.path, source.lines.get("assignment_rules"), "；".join(
            e.message("zh-CN") for e in exc.errors) + " / " + "; ".join(
            e.message("en") for e in exc.errors)) from None


async def export_rules(ctx: Context) -> Any:
    rules = await list_rules(ctx)
    return [{k: v for k, v in r.items() if k not in ("id", "position") and v not in (None, [])}
            for r in rules] or None
