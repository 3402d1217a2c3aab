"""The leads API under /api/v1/crm (the generic `/api/v1/leads` CRUD comes from the
registry and runs the same capture rules):

    POST /crm/leads/capture          {"lead": {...}, "on_duplicate": "refuse"|"flag"}
    POST /crm/leads/{id}/stage       {"stage": "contacted"}
    POST /crm/leads/{id}/convert     -> {"lead", "customer"}
    POST /crm/leads/{id}/merge       {"merge_id": "<the lead folded into this one>"}
    GET  /crm/leads/{id}/duplicates  the live leads and customers it duplicates
    POST /crm/leads/{id}/claim | /release | /assign {"username"}
    GET  /crm/pool                   the public pool
    POST /crm/duplicates             {"entity": "lead", "rows": [...]} -> {"<i>": [match]}
    GET/POST /crm/blacklist, DELETE /crm/blacklist/{id}
    GET/PUT  /crm/assignment-rules
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import delete, get, post, put
from litestar.params import FromPath, JSONBody

from core.errors import XindaiError
from core.web.context import CurrentContext
from plugins.crm import assignment, blacklist, dedupe, leads, pool

TAG = "Leads"


@post("/crm/leads/capture", tags=[TAG], summary="Capture a lead (duplicates refused or flagged)",
      opt={"permission": "lead.create", "idempotent": "optional"}, status_code=201)
async def capture(ctx: CurrentContext, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`on_duplicate` "refuse" (default: 409 `lead_duplicate` with `duplicates`) or "flag"
    (stored with `suspected_duplicate` true). Blacklisted identifiers: 422 `blacklisted`."""
    mode = data.get("on_duplicate", "refuse")
    if mode not in ("refuse", "flag"):
        raise XindaiError("bad_request")
    lead, matches = await leads.capture(ctx, data.get("lead"), mode)
    return {"lead": lead, "duplicates": matches}


@post("/crm/leads/{lead_id:uuid}/stage", tags=[TAG], summary="Move a lead to a funnel stage",
      opt={"permission": "lead.update"}, status_code=200)
async def stage(ctx: CurrentContext, lead_id: FromPath[UUID],
                data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return await leads.set_stage(ctx, lead_id, str(data.get("stage") or ""))


@post("/crm/leads/{lead_id:uuid}/convert", tags=[TAG], summary="Convert a lead to a customer",
      opt={"permission": "lead.convert"}, status_code=200)
async def convert(ctx: CurrentContext, lead_id: FromPath[UUID]) -> dict[str, Any]:
    return await leads.convert(ctx, lead_id)


@post("/crm/leads/{lead_id:uuid}/merge", tags=[TAG], summary="Merge another lead into this one",
      opt={"permission": "lead.merge"}, status_code=200)
async def merge(ctx: CurrentContext, lead_id: FromPath[UUID],
                data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return await dedupe.merge(ctx, lead_id, data.get("merge_id"))


@get("/crm/leads/{lead_id:uuid}/duplicates", tags=[TAG],
     summary="Leads and customers this lead duplicates", opt={"permission": "lead.read"})
async def duplicates(ctx: CurrentContext, lead_id: FromPath[UUID]) -> list[dict[str, Any]]:
    from core import records

    await records.get(ctx, "lead", lead_id)
    return await dedupe.duplicates_of_lead(ctx, lead_id)


@post("/crm/leads/{lead_id:uuid}/claim", tags=[TAG], summary="Claim a lead from the pool",
      opt={"permission": "lead.claim"}, status_code=204)
async def claim(ctx: CurrentContext, lead_id: FromPath[UUID]) -> None:
    await pool.claim(ctx, lead_id)


@post("/crm/leads/{lead_id:uuid}/release", tags=[TAG], summary="Return a lead to the pool",
      opt={"permission": "lead.update"}, status_code=204)
async def release(ctx: CurrentContext, lead_id: FromPath[UUID]) -> None:
    await pool.release(ctx, lead_id)


@post("/crm/leads/{lead_id:uuid}/assign", tags=[TAG], summary="Assign a lead to an officer",
      opt={"permission": "lead.assign"}, status_code=204)
async def assign(ctx: CurrentContext, lead_id: FromPath[UUID],
                 data: JSONBody[dict[str, Any]]) -> None:
    await pool.assign(ctx, lead_id, str(data.get("username") or ""))


@get("/crm/pool", tags=[TAG], summary="The public pool (公海)", opt={"permission": "lead.read"})
async def list_pool(ctx: CurrentContext) -> list[dict[str, Any]]:
    return await pool.list_pool(ctx)


@post("/crm/duplicates", tags=[TAG], summary="Find duplicates of rows (bulk)",
      opt={"permission": "lead.read"}, status_code=200)
async def find_duplicates(ctx: CurrentContext, data: JSONBody[dict[str, Any]]
                          ) -> dict[str, Any]:
    rows = data.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows) \
            or len(rows) > 10000:
        raise XindaiError("bad_request")
    found = await dedupe.find_duplicates(ctx, str(data.get("entity") or "lead"), rows)
    return {str(i): m for i, m in found.items()}


@get("/crm/blacklist", tags=[TAG], summary="Blacklist entries (masked)",
     opt={"permission": "blacklist.manage"})
async def list_blacklist(ctx: CurrentContext) -> list[dict[str, Any]]:
    return await blacklist.list_entries(ctx)


@post("/crm/blacklist", tags=[TAG], summary="Blacklist an identifier",
      opt={"permission": "blacklist.manage"}, status_code=201)
async def add_blacklist(ctx: CurrentContext, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"kind": "resident_id"|"mobile"|"credit_code", "value": ..., "reason": ...}`."""
    return await blacklist.add(ctx, str(data.get("kind") or ""), data.get("value"),
                               data.get("reason"))


@delete("/crm/blacklist/{entry_id:uuid}", tags=[TAG], summary="Lift a blacklist entry",
        opt={"permission": "blacklist.manage"})
async def remove_blacklist(ctx: CurrentContext, entry_id: FromPath[UUID]) -> None:
    await blacklist.remove(ctx, entry_id)


@get("/crm/assignment-rules", tags=[TAG], summary="Assignment rules, in order",
     opt={"permission": "lead.read"})
async def list_rules(ctx: CurrentContext) -> list[dict[str, Any]]:
    return await assignment.list_rules(ctx)


@put("/crm/assignment-rules", tags=[TAG], summary="Replace the assignment rules",
     opt={"permission": "lead.configure"})
async def put_rules(ctx: CurrentContext, data: JSONBody[list[dict[str, Any]]]
                    ) -> list[dict[str, Any]]:
    return await assignment.save_rules(ctx, data)


ROUTES = [capture, stage, convert, merge, duplicates, claim, release, assign, list_pool,
          find_duplicates, list_blacklist, add_blacklist, remove_blacklist, list_rules, put_rules]
