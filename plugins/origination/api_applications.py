"""The JSON API of applications, credit checks and scorecards (under /api/v1/origination).

The generic entity routes give `GET /api/v1/applications` (list, filters) and
`GET /api/v1/applications/{id}` and the documents; everything that writes an application
goes through these routes, which call plugins.origination.applications."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import get, post, put
from litestar.params import FromPath, JSONBody

from core.access import require
from core.web.context import CurrentContext
from plugins.origination import applications, credit, requirements, scorecards
from plugins.origination import scorecard as sc

TAG = "Applications"
P = "/origination"


@post(f"{P}/applications", tags=[TAG], summary="Create a draft application",
      opt={"permission": "application.create"}, status_code=201)
async def create_application(ctx: CurrentContext, data: JSONBody[dict[str, Any]]
                             ) -> dict[str, Any]:
    """`customer_id`, `product`, `amount`, `periods`, optional `annual_rate`, `purpose`,
    `consent_ref` and custom fields. Outside the product's ranges: 422 naming the field."""
    return await applications.create(ctx, data)


@put(f"{P}/applications/{{application_id:uuid}}", tags=[TAG],
     summary="Change a draft or returned application", opt={"permission": "application.update"})
async def update_application(ctx: CurrentContext, application_id: FromPath[UUID],
                             data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return await applications.update(ctx, application_id, data)


@get(f"{P}/applications/{{application_id:uuid}}/detail", tags=[TAG],
     summary="An application with its checklist, credit check, score and history",
     opt={"permission": "application.read"})
async def application_detail(ctx: CurrentContext, application_id: FromPath[UUID]
                             ) -> dict[str, Any]:
    return await applications.detail(ctx, application_id)


@post(f"{P}/applications/{{application_id:uuid}}/submit", tags=[TAG],
      summary="Submit an application (credit check and score)",
      opt={"permission": "application.submit"}, status_code=200)
async def submit_application(ctx: CurrentContext, application_id: FromPath[UUID]
                             ) -> dict[str, Any]:
    return await applications.submit(ctx, application_id)


@post(f"{P}/applications/{{application_id:uuid}}/resubmit", tags=[TAG],
      summary="Submit a returned application again", opt={"permission": "application.submit"},
      status_code=200)
async def resubmit_application(ctx: CurrentContext, application_id: FromPath[UUID]
                               ) -> dict[str, Any]:
    return await applications.resubmit(ctx, application_id)


@post(f"{P}/applications/{{application_id:uuid}}/withdraw", tags=[TAG],
      summary="Withdraw an application", opt={"permission": "application.submit"},
      status_code=200)
async def withdraw_application(ctx: CurrentContext, application_id: FromPath[UUID]
                               ) -> dict[str, Any]:
    return await applications.withdraw(ctx, application_id)


@post(f"{P}/applications/{{application_id:uuid}}/credit-check", tags=[TAG],
      summary="Query the credit bureau for the application's customer",
      opt={"permission": "credit.query"}, status_code=201)
async def credit_check(ctx: CurrentContext, application_id: FromPath[UUID]) -> dict[str, Any]:
    """Needs the customer's consent reference on the application; audited."""
    return await credit.check(ctx, application_id)


@post(f"{P}/quote", tags=[TAG], summary="The schedule and APR an application would get",
      opt={"permission": "application.read"}, status_code=200)
async def quote(ctx: CurrentContext, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return await applications.quote(ctx, data)


@get(f"{P}/scorecards", tags=[TAG], summary="The newest version of each scorecard",
     opt={"permission": "scorecard.manage"})
async def list_scorecards(ctx: CurrentContext) -> list[dict[str, Any]]:
    return [{**s, "created_at": str(s["created_at"])} for s in await scorecards.latest(ctx)]


@post(f"{P}/scorecards", tags=[TAG], summary="Save a new version of a scorecard",
      opt={"permission": "scorecard.manage"}, status_code=201)
async def save_scorecard(ctx: CurrentContext, data: JSONBody[dict[str, Any]]
                         ) -> dict[str, Any]:
    return await scorecards.save(ctx, data)


@post(f"{P}/scorecards/preview", tags=[TAG], summary="Score a sample with a definition",
      opt={"permission": "scorecard.manage"}, status_code=200)
async def preview_scorecard(ctx: CurrentContext, data: JSONBody[dict[str, Any]]
                            ) -> dict[str, Any]:
    """`{"definition": {...}, "sample": {"bureau_score": 700, ...}}` -> score, grade,
    breakdown. Nothing is stored."""
    require(ctx, "scorecard.manage")
    card = sc.validate(data.get("definition"))
    result = sc.score(card, dict(data.get("sample") or {}))
    return {"score": result.score, "grade": result.grade, "breakdown": result.breakdown}


@put(f"{P}/requirements/{{product:str}}", tags=[TAG],
     summary="Set the documents and custom fields a product's applications need",
     opt={"permission": "scorecard.manage"})
async def set_requirements(ctx: CurrentContext, product: FromPath[str],
                           data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return await requirements.set_for_product(ctx, product, data)


ROUTES = [create_application, update_application, application_detail, submit_application,
          resubmit_application, withdraw_application, credit_check, quote, list_scorecards,
          save_scorecard, preview_scorecard, set_requirements]
