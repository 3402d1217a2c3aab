"""The API of background work: webhooks (webhooks.manage) and jobs (jobs.manage).

    GET    /api/v1/webhooks                          the tenant's webhooks (never a secret)
    POST   /api/v1/webhooks                          create; the answer holds the secret, once
    GET    /api/v1/webhooks/{id}                     one webhook
    PATCH  /api/v1/webhooks/{id}                     change url, events, description, active
    DELETE /api/v1/webhooks/{id}                     delete it and its delivery log
    GET    /api/v1/webhooks/{id}/deliveries          its latest delivery attempts
    GET    /api/v1/jobs?status=dead|open&kind=job|event   latest jobs and events
    GET    /api/v1/jobs/{id}                         one, with its progress
    POST   /api/v1/jobs/{id}/retry                   bring a dead one back (audited)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from core import outbox, webhooks
from core.errors import Conflict, NotFound
from core.web.context import CurrentContext

HOOKS = {"permission": webhooks.PERMISSION}
JOBS = {"permission": "jobs.manage"}
TAG_HOOKS, TAG_JOBS = "webhooks", "jobs"


class WebhookCreate(msgspec.Struct):
    url: str
    events: list[str]
    description: str = ""
    active: bool = True


class WebhookChange(msgspec.Struct):
    """Only the fields given change."""

    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    active: bool | None = None


@get("/webhooks", summary="The tenant's webhooks", tags=[TAG_HOOKS], opt=HOOKS)
async def list_webhooks(ctx: CurrentContext) -> list[dict[str, Any]]:
    return await webhooks.list_webhooks(ctx)


@post("/webhooks", summary="Create a webhook (its signing secret is shown once)",
      tags=[TAG_HOOKS], opt=HOOKS)
async def create_webhook(ctx: CurrentContext, data: JSONBody[WebhookCreate]) -> dict[str, Any]:
    hook, secret = await webhooks.create_webhook(ctx, data.url, data.events, data.description,
                                                 data.active)
    return {**hook, "secret": secret}


@get("/webhooks/{webhook_id:uuid}", summary="One webhook", tags=[TAG_HOOKS], opt=HOOKS)
async def get_webhook(ctx: CurrentContext, webhook_id: FromPath[UUID]) -> dict[str, Any]:
    return await webhooks.get_webhook(ctx, webhook_id)


@patch("/webhooks/{webhook_id:uuid}", summary="Change a webhook", tags=[TAG_HOOKS], opt=HOOKS)
async def change_webhook(ctx: CurrentContext, webhook_id: FromPath[UUID],
                         data: JSONBody[WebhookChange]) -> dict[str, Any]:
    return await webhooks.update_webhook(ctx, webhook_id, url=data.url, events=data.events,
                                         description=data.description, active=data.active)


@delete("/webhooks/{webhook_id:uuid}", summary="Delete a webhook and its delivery log",
        tags=[TAG_HOOKS], opt=HOOKS)
async def delete_webhook(ctx: CurrentContext, webhook_id: FromPath[UUID]) -> None:
    await webhooks.delete_webhook(ctx, webhook_id)


@get("/webhooks/{webhook_id:uuid}/deliveries", summary="A webhook's latest delivery attempts",
     tags=[TAG_HOOKS], opt=HOOKS)
async def webhook_deliveries(ctx: CurrentContext, webhook_id: FromPath[UUID]
                             ) -> list[dict[str, Any]]:
    return await webhooks.deliveries(ctx, webhook_id)


def job_json(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("kind", "name", "payload", "status", "attempts", "max_attempts", "created_at",
            "created_by", "available_at", "started_at", "finished_at", "dead_at", "last_error",
            "progress_done", "progress_total", "progress_note")
    return {"id": str(row["id"]), **{k: row[k] for k in keys}}


@get("/jobs", summary="The tenant's latest jobs and events, newest first", tags=[TAG_JOBS],
     opt=JOBS)
async def list_jobs(
    ctx: CurrentContext,
    status: Annotated[Literal["dead", "open"] | None, QueryParameter()] = None,
    kind: Annotated[Literal["job", "event"] | None, QueryParameter()] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """`status=dead` is the dead-letter list; `status=open` what is not finished yet."""
    return [job_json(r) for r in await outbox.recent(ctx, status, kind, limit)]


@get("/jobs/{message_id:uuid}", summary="One job or event, with its progress", tags=[TAG_JOBS],
     opt=JOBS)
async def get_job(ctx: CurrentContext, message_id: FromPath[UUID]) -> dict[str, Any]:
    row = await outbox.get(ctx, message_id)
    if row is None:
        raise NotFound()
    return job_json(row)


@post("/jobs/{message_id:uuid}/retry", summary="Retry a dead job or event", tags=[TAG_JOBS],
      opt=JOBS, status_code=200)
async def retry_job(ctx: CurrentContext, message_id: FromPath[UUID]) -> dict[str, Any]:
    if await outbox.get(ctx, message_id) is None:
        raise NotFound()
    if not await outbox.retry(ctx, message_id):
        raise Conflict("job_not_dead")
    return job_json(await outbox.get(ctx, message_id) or {})


BACKGROUND_HANDLERS = [list_webhooks, create_webhook, get_webhook, change_webhook,
                       delete_webhook, webhook_deliveries, list_jobs, get_job, retry_job]
