"""The JSON API under /api/v1: sign-in, and generic CRUD for every registry entity.

Each entity gets `/api/v1/<api_path>` (list, create) and `/api/v1/<api_path>/{id}` (get,
patch, delete), plus `/api/v1/<api_path>/fields` (the fields as this tenant sees them).
All of them go through core.records, the one write path.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Router, delete, get, patch, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from core import records
from core.customfields import add_custom_field, remove_custom_field
from core.errors import XindaiError
from core.identity import login
from core.registry import EntityType
from core.web.context import CurrentContext, provide_ctx, request_locale

RESERVED_QUERY = {"page", "per_page", "sort", "q", "lang", "reveal"}


class LoginRequest(msgspec.Struct):
    tenant: str
    username: str
    password: str


class LoginResponse(msgspec.Struct):
    token: str
    token_type: str
    tenant: str
    username: str
    roles: list[str]


class PageResponse(msgspec.Struct):
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int


@post("/auth/login", summary="Sign in and get a bearer token", tags=["auth"], status_code=200)
async def login_handler(request: Request[Any, Any, Any], data: JSONBody[LoginRequest]) -> LoginResponse:
    token, ctx = await login(data.tenant, data.username, data.password, request_locale(request))
    return LoginResponse(token=token, token_type="Bearer", tenant=ctx.tenant.slug,
                         username=ctx.username or "", roles=list(ctx.roles))


@get("/me", summary="The signed-in user and tenant", tags=["auth"])
async def me(ctx: CurrentContext) -> dict[str, Any]:
    return {"username": ctx.username, "roles": list(ctx.roles), "locale": ctx.locale,
            "tenant": {"slug": ctx.tenant.slug, "name": ctx.tenant.name,
                       "business_date": ctx.tenant.business_date.isoformat(),
                       "plugins": list(ctx.tenant.plugins)}}


@get("/health", summary="Liveness", tags=["system"])
async def health() -> dict[str, str]:
    return {"status": "ok"}


def _version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise XindaiError("bad_if_match")
    return int(text)


def _field_json(f: Any, locale: str) -> dict[str, Any]:
    d = f.describe()
    d["label"] = f.label(locale)
    return d


def entity_router(entity: EntityType) -> Router:
    """CRUD routes for one entity; the handlers are closures over its name."""
    name, tag = entity.name, entity.label_en

    @get("/", summary=f"List {tag}", tags=[tag], operation_id=f"list_{name}")
    async def list_records(
        request: Request[Any, Any, Any], ctx: CurrentContext,
        page: Annotated[int, QueryParameter(ge=1)] = 1,
        per_page: Annotated[int, QueryParameter(ge=1, le=records.MAX_PER_PAGE)] = 20,
        sort: FromQuery[str | None] = None, q: FromQuery[str | None] = None,
    ) -> PageResponse:
        filters = {k: v for k, v in request.query_params.items() if k not in RESERVED_QUERY}
        result = await records.list_records(ctx, name, filters, sort, page, per_page, q)
        return PageResponse(**result.as_dict())

    @post("/", summary=f"Create a {tag}", tags=[tag], operation_id=f"create_{name}")
    async def create(ctx: CurrentContext, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        return await records.create(ctx, name, data)

    @get("/{record_id:uuid}", summary=f"Get a {tag}", tags=[tag], operation_id=f"get_{name}")
    async def read(ctx: CurrentContext, record_id: FromPath[UUID]) -> dict[str, Any]:
        return await records.get(ctx, name, record_id)

    @patch("/{record_id:uuid}", summary=f"Change a {tag}", tags=[tag],
           operation_id=f"update_{name}")
    async def change(ctx: CurrentContext, record_id: FromPath[UUID], data: JSONBody[dict[str, Any]],
                     if_match: Annotated[str | None, HeaderParameter(name="If-Match")] = None
                     ) -> dict[str, Any]:
        """`If-Match: "3"` (the record's version) makes a concurrent edit fail with 409."""
        return await records.update(ctx, name, record_id, data, _version(if_match))

    @delete("/{record_id:uuid}", summary=f"Delete a {tag}", tags=[tag],
            operation_id=f"delete_{name}")
    async def remove(ctx: CurrentContext, record_id: FromPath[UUID]) -> None:
        await records.delete(ctx, name, record_id)

    @get("/fields", summary=f"Fields of {tag}", tags=[tag], operation_id=f"fields_{name}")
    async def fields(ctx: CurrentContext) -> list[dict[str, Any]]:
        current = await records.entity_for(ctx, name)
        return [_field_json(f, ctx.locale) for f in current.fields]

    @post("/fields", summary=f"Add a custom field to {tag}", tags=[tag],
          operation_id=f"add_field_{name}")
    async def add_field(ctx: CurrentContext, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        f = await add_custom_field(ctx, name, data)
        return _field_json(f, ctx.locale)

    @delete("/fields/{key:str}", summary=f"Remove a custom field of {tag}", tags=[tag],
            operation_id=f"remove_field_{name}")
    async def drop_field(ctx: CurrentContext, key: FromPath[str]) -> None:
        await remove_custom_field(ctx, name, key)

    return Router(path=f"/{entity.api_path}", route_handlers=[
        list_records, create, read, change, remove, fields, add_field, drop_field,
    ])


def api_router(entities: list[EntityType], plugin_routes: list[Any]) -> Router:
    handlers: list[Any] = [login_handler, me, health]
    handlers.extend(entity_router(e) for e in entities)
    handlers.extend(plugin_routes)
    return Router(path="/api/v1", route_handlers=handlers,
                  dependencies={"ctx": Provide(provide_ctx)})
