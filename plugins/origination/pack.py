"""Pack sections of the applications side of origination:

- `application_requirements:` product code (or `*`) -> document kinds, or
  {documents: [...], fields: [custom field keys]} (plugins.origination.requirements);
- `scorecards:` a list of scorecard definitions (plugins.origination.scorecard);
- `applications:` demo and test applications after the records, each
  `{customer: {resident_id: ...}, officer: username, product, amount, periods, purpose?,
  consent_ref?, status: draft | submitted | approved | rejected | returned, decided_by:
  username, comment?}`: created and moved through the same services a user's clicks go
  through (so a submitted one has its credit check and score).
"""

from __future__ import annotations

from typing import Any

from core.declarations import PackSource
from core.errors import XindaiError
from core.packs import PackError
from core.tenancy import Context


def _fail(source: PackSource, key: str, line: Any, exc: Exception) -> PackError:
    text = exc.message("zh-CN") if isinstance(exc, XindaiError) else str(exc)
    detail = "; ".join(e.message("zh-CN") for e in getattr(exc, "errors", [])) or text
    return PackError(source.path, line or source.lines.get(key), f"{key}: {detail}")


async def load_requirements(ctx: Context, data: Any, source: PackSource) -> None:
    from plugins.origination import requirements

    if not isinstance(data, dict):
        raise PackError(source.path, source.lines.get("application_requirements"),
                        "application_requirements 应为映射 / must be a mapping")
    for product, value in data.items():
        try:
            await requirements.set_for_product(ctx, str(product), value)
        except XindaiError as exc:
            raise _fail(source, "application_requirements", None, exc) from None


async def export_requirements(ctx: Context) -> Any:
    from plugins.origination import requirements

    return await requirements.all_products(ctx)


async def load_scorecards(ctx: Context, data: Any, source: PackSource) -> None:
    from plugins.origination import scorecards

    if not isinstance(data, list):
        raise PackError(source.path, source.lines.get("scorecards"),
                        "scorecards 应为列表 / scorecards must be a list")
    for spec in data:
        try:
            await scorecards.save(ctx, dict(spec) if isinstance(spec, dict) else spec)
        except XindaiError as exc:
            raise _fail(source, "scorecards", getattr(spec, "line", None), exc) from None


async def export_scorecards(ctx: Context) -> Any:
    from plugins.origination import scorecards

    return [item["definition"] for item in await scorecards.latest(ctx)]


async def _as_user(ctx: Context, username: str | None) -> Context:
    """The context of the pack's user `username` (the system when none is named)."""
    if not username:
        return ctx
    from core.identity import user_context
    from core.tables import User

    rows = await User.select().where(User.tenant_id == ctx.tenant_id,
                                     User.username == username).output(load_json=True).run()
    if not rows:
        raise XindaiError("not_found")
    return await user_context(ctx.tenant, rows[0], ctx.locale)


async def load_applications(ctx: Context, data: Any, source: PackSource) -> None:
    """Each entry is created and submitted by its `officer` (a pack user) and decided by
    its `decided_by` user in the approval workflow, through the services a user's clicks
    use (a decision the workflow does not end, e.g. a first step of two, stays in
    approval)."""
    from core import records
    from plugins.origination import applications

    if not isinstance(data, list):
        raise PackError(source.path, source.lines.get("applications"),
                        "applications 应为列表 / applications must be a list")
    for spec in data:
        line = getattr(spec, "line", None)
        try:
            who = dict(spec.get("customer") or {})
            found = await records.find_ids(ctx, "customer", "resident_id",
                                           str(who.get("resident_id") or ""))
            if len(found) != 1:
                raise PackError(source.path, line, f"找不到客户 / no customer {who}")
            officer = await _as_user(ctx, spec.get("officer"))
            app = await applications.create(officer, {
                "customer_id": found[0], "product": spec.get("product"),
                "amount": str(spec.get("amount")), "periods": spec.get("periods"),
                "purpose": spec.get("purpose"), "consent_ref": spec.get("consent_ref")})
            status = spec.get("status", "draft")
            if status != "draft":
                await applications.submit(officer, app["id"])
            if status in ("approved", "rejected", "returned"):  # in the reviewer's inbox
                from core.tenancy import tenant_scope
                from plugins.origination import approval_store, approvals

                checker = await _as_user(ctx, spec.get("decided_by"))
                async with tenant_scope(checker, write=False):
                    row = await approval_store.open_instance(checker, "application",
                                                             str(app["id"]))
                if row is None:
                    raise PackError(source.path, line, "进件未进入审批 / the application "
                                    "is not in approval")
                action = {"approved": "approve", "rejected": "reject",
                          "returned": "return"}[status]
                await approvals.act(checker, row["id"], action, str(spec.get("comment") or ""))
        except XindaiError as exc:
            raise _fail(source, "applications", line, exc) from None


async def export_applications(ctx: Context) -> Any:
    return None  # transactional data: not part of an exported configuration
