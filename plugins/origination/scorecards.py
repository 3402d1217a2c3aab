"""Scorecards stored as versioned data: saving a definition adds a version; an application
keeps the code and version it was scored with (orig_application_score)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from core import audit
from core.access import require
from core.errors import NotFound
from core.events import emit
from core.tenancy import Context, tenant_scope
from plugins.origination import scorecard as sc
from plugins.origination.tables import Scorecard


async def save(ctx: Context, definition: Any) -> dict[str, Any]:
    """Validate and store a new version of the scorecard (`scorecard.manage`)."""
    require(ctx, "scorecard.manage")
    card = sc.validate(definition)
    data = sc.as_data(card)
    async with tenant_scope(ctx):
        rows = await Scorecard.select(Scorecard.version).where(
            Scorecard.tenant_id == ctx.tenant_id, Scorecard.code == card.code,
        ).order_by(Scorecard.version, ascending=False).limit(1).run()
        version = rows[0]["version"] + 1 if rows else 1
        row_id = uuid.uuid4()
        await Scorecard.insert(Scorecard(
            id=row_id, tenant_id=ctx.tenant_id, code=card.code, version=version,
            definition=data, created_at=datetime.now(UTC), created_by=ctx.user_id)).run()
        await audit.append(ctx, "scorecard.save", "scorecard", row_id, {
            "code": [None, card.code], "version": [None, version]})
        await emit(ctx, "scorecard.saved", {"code": card.code, "version": version})
    return {"code": card.code, "version": version, "definition": data}


async def _rows(ctx: Context, code: str | None = None) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        query = Scorecard.select().where(Scorecard.tenant_id == ctx.tenant_id)
        if code is not None:
            query = query.where(Scorecard.code == code)
        return await query.order_by(Scorecard.code).order_by(
            Scorecard.version, ascending=False).output(load_json=True).run()


async def latest(ctx: Context) -> list[dict[str, Any]]:
    """The newest version of each scorecard."""
    out: dict[str, dict[str, Any]] = {}
    for r in await _rows(ctx):
        out.setdefault(r["code"], {"code": r["code"], "version": r["version"],
                                   "definition": r["definition"],
                                   "created_at": r["created_at"], "created_by": r["created_by"]})
    return list(out.values())


async def get(ctx: Context, code: str, version: int | None = None) -> dict[str, Any]:
    for r in await _rows(ctx, code):
        if version is None or r["version"] == version:
            return {"code": r["code"], "version": r["version"], "definition": r["definition"]}
    raise NotFound()


async def versions(ctx: Context, code: str) -> list[dict[str, Any]]:
    return [{"version": r["version"], "created_at": r["created_at"],
             "created_by": r["created_by"]} for r in await _rows(ctx, code)]


async def card_for(ctx: Context, product: str) -> tuple[sc.Card, int] | None:
    """The scorecard an application of `product` is scored with: the newest version of a
    card naming the product, else of a card for every product (first by code)."""
    general = None
    for item in await latest(ctx):
        card = sc.validate(item["definition"])
        if product in card.products:
            return card, item["version"]
        if not card.products and general is None:
            general = (card, item["version"])
    return general
