"""The JSON API under /api/v1: sign-in, and generic CRUD for every registry entity.

Each entity gets `/api/v1/<api_path>` (list, create) and `/api/v1/<api_path>/{id}` (get,
patch, delete), plus `/api/v1/<api_path>/fields` (the fields as this tenant sees them) and
`/api/v1/<api_path>/{id}/documents` (the record's uploaded files: list, upload, download,
delete). All of them go through core.records, the one write path (documents through
core.documents, which checks the record through the same read path).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.response import Stream

from core import documents, identity, platform, records
from core.access import field_policy
from core.customfields import add_custom_field, remove_custom_field
from core.errors import XindaiError
from core.identity import login
from core.ratelimit import hit
from core.registry import EntityType
from core.web.context import (
    CurrentContext,
    access_guard,
    client_ip,
    provide_ctx,
    request_locale,
    user_agent,
)
from core.web.idempotency import IdempotencyMiddleware, documented
from core.web.uploads import body_limit, download_response, upload_from_request

LOGIN_LIMIT_PER_MINUTE = 20
TOKEN_LIMIT_PER_MINUTE = 10

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


@post("/auth/login", summary="Sign in and get a bearer token", tags=["auth"], status_code=200,
      opt={"public": True})
async def login_handler(request: Request[Any, Any, Any], data: JSONBody[LoginRequest]
                        ) -> LoginResponse:
    ip = client_ip(request)
    hit("login", ip or "-", LOGIN_LIMIT_PER_MINUTE)
    token, ctx = await login(data.tenant, data.username, data.password, request_locale(request),
                             ip, user_agent(request))
    return LoginResponse(token=token, token_type="Bearer", tenant=ctx.tenant.slug,
                         username=ctx.username or "", roles=list(ctx.roles))


@get("/me", summary="The signed-in user and tenant", tags=["auth"], opt={"authenticated": True})
async def me(ctx: CurrentContext) -> dict[str, Any]:
    return {"username": ctx.username, "roles": list(ctx.roles), "locale": ctx.locale,
            "permissions": sorted(ctx.access.permissions), "scope": ctx.access.scope,
            "tenant": {"slug": ctx.tenant.slug, "name": ctx.tenant.name,
                       "business_date": ctx.tenant.business_date.isoformat(),
                       "plugins": list(ctx.tenant.plugins)}}


@get("/health", summary="Liveness", tags=["system"], opt={"public": True})
async def health() -> dict[str, str]:
    return {"status": "ok"}


class TokenRequest(msgspec.Struct):
    name: str
    scopes: list[str]
    days: int = 90


@post("/tokens", summary="Create an integration token (shown once)", tags=["auth"],
      opt={"permission": "tokens.manage"})
async def create_token(request: Request[Any, Any, Any], ctx: CurrentContext,
                       data: JSONBody[TokenRequest]) -> dict[str, Any]:
    hit("token", client_ip(request) or "-", TOKEN_LIMIT_PER_MINUTE)
    token, info = await identity.create_integration_token(ctx, data.name, data.scopes, data.days)
    return {**info, "token": token}


@get("/tokens", summary="My integration tokens (without their secrets)", tags=["auth"],
     opt={"permission": "tokens.manage"})
async def list_tokens(ctx: CurrentContext) -> list[dict[str, Any]]:
    return await identity.list_tokens(ctx)


@delete("/tokens/{token_id:uuid}", summary="Revoke an integration token", tags=["auth"],
        opt={"permission": "tokens.manage"})
async def revoke_token(ctx: CurrentContext, token_id: FromPath[UUID]) -> None:
    await identity.revoke_token(ctx, token_id)


class SignupRequest(msgspec.Struct):
    pack: str
    slug: str


class StatusRequest(msgspec.Struct):
    status: str


@get("/platform/tenants", summary="All tenants (platform operators)", tags=["platform"],
     opt={"permission": "platform.tenants"})
async def platform_tenants(ctx: CurrentContext) -> list[dict[str, Any]]:
    return await platform.tenants(ctx)


@post("/platform/tenants", summary="Create a tenant from a pack (platform operators)",
      tags=["platform"], opt={"permission": "platform.tenants"})
async def platform_create(ctx: CurrentContext, data: JSONBody[SignupRequest]
                          ) -> dict[str, Any]:
    tenant, passwords = await platform.create_from_pack(ctx, data.pack, data.slug)
    return {**platform.describe(tenant), "initial_passwords": passwords}


@patch("/platform/tenants/{slug:str}", summary="Suspend or reactivate a tenant",
       tags=["platform"], opt={"permission": "platform.tenants"})
async def platform_status(ctx: CurrentContext, slug: FromPath[str],
                          data: JSONBody[StatusRequest]) -> dict[str, Any]:
    return await platform.set_status(ctx, slug, data.status)


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

    def need(action: str) -> dict[str, str]:
        return {"permission": f"{name}.{action}"}

    @get("/", summary=f"List {tag}", tags=[tag], operation_id=f"list_{name}", opt=need("read"))
    async def list_records(
        request: Request[Any, Any, Any], ctx: CurrentContext,
        page: Annotated[int, QueryParameter(ge=1)] = 1,
        per_page: Annotated[int, QueryParameter(ge=1, le=records.MAX_PER_PAGE)] = 20,
        sort: FromQuery[str | None] = None, q: FromQuery[str | None] = None,
    ) -> PageResponse:
        filters = {k: v for k, v in request.query_params.items() if k not in RESERVED_QUERY}
        result = await records.list_records(ctx, name, filters, sort, page, per_page, q)
        return PageResponse(**result.as_dict())

    create_opt: dict[str, Any] = need("create")
    if entity.idempotent:
        create_opt["idempotent"] = entity.idempotent

    @post("/", summary=f"Create a {tag}", tags=[tag], operation_id=f"create_{name}",
          opt=create_opt)
    async def create(ctx: CurrentContext, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        """With `Idempotency-Key` (where the entity declares it) a retry returns the first
        answer instead of creating a second record."""
        return await records.create(ctx, name, data)

    @get("/{record_id:uuid}", summary=f"Get a {tag}", tags=[tag], operation_id=f"get_{name}",
         opt=need("read"))
    async def read(ctx: CurrentContext, record_id: FromPath[UUID]) -> dict[str, Any]:
        return await records.get(ctx, name, record_id)

    @patch("/{record_id:uuid}", summary=f"Change a {tag}", tags=[tag],
           operation_id=f"update_{name}", opt=need("update"))
    async def change(ctx: CurrentContext, record_id: FromPath[UUID], data: JSONBody[dict[str, Any]],
                     if_match: Annotated[str | None, HeaderParameter(name="If-Match")] = None
                     ) -> dict[str, Any]:
        """`If-Match: "3"` (the record's version) makes a concurrent edit fail with 409."""
        return await records.update(ctx, name, record_id, data, _version(if_match))

    @delete("/{record_id:uuid}", summary=f"Delete a {tag}", tags=[tag],
            operation_id=f"delete_{name}", opt=need("delete"))
    async def remove(ctx: CurrentContext, record_id: FromPath[UUID]) -> None:
        await records.delete(ctx, name, record_id)

    @post("/{record_id:uuid}/reveal/{field_key:str}", summary=f"Reveal a masked field of a {tag}",
          tags=[tag], operation_id=f"reveal_{name}", opt=need("reveal"), status_code=200)
    async def reveal(ctx: CurrentContext, record_id: FromPath[UUID],
                     field_key: FromPath[str]) -> dict[str, Any]:
        """The clear value of one field; every reveal is recorded."""
        return {"field": field_key,
                "value": await records.reveal_field(ctx, name, record_id, field_key)}

    @get("/fields", summary=f"Fields of {tag}", tags=[tag], operation_id=f"fields_{name}",
         opt=need("read"))
    async def fields(ctx: CurrentContext) -> list[dict[str, Any]]:
        current = await records.entity_for(ctx, name)
        return [{**_field_json(f, ctx.locale), "policy": field_policy(ctx, current, f)}
                for f in current.fields if field_policy(ctx, current, f) != "hidden"]

    @post("/fields", summary=f"Add a custom field to {tag}", tags=[tag],
          operation_id=f"add_field_{name}", opt={"permission": "admin.fields"})
    async def add_field(ctx: CurrentContext, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        f = await add_custom_field(ctx, name, data)
        return _field_json(f, ctx.locale)

    @delete("/fields/{key:str}", summary=f"Remove a custom field of {tag}", tags=[tag],
            operation_id=f"remove_field_{name}", opt={"permission": "admin.fields"})
    async def drop_field(ctx: CurrentContext, key: FromPath[str]) -> None:
        await remove_custom_field(ctx, name, key)

    @get("/{record_id:uuid}/documents", summary=f"Documents of a {tag}", tags=[tag],
         operation_id=f"list_documents_{name}", opt=need("read"))
    async def list_documents(ctx: CurrentContext, record_id: FromPath[UUID]
                             ) -> list[dict[str, Any]]:
        """The record's documents, newest first; file names masked."""
        return await documents.list_documents(ctx, name, record_id)

    @post("/{record_id:uuid}/documents", summary=f"Upload a document to a {tag}", tags=[tag],
          operation_id=f"upload_document_{name}", opt=need("update"), status_code=201,
          request_max_body_size=body_limit())
    async def upload_document(request: Request[Any, Any, Any], ctx: CurrentContext,
                              record_id: FromPath[UUID]) -> dict[str, Any]:
        """`multipart/form-data` with `kind` (id_front, id_back, credit_report,
        bank_statement, property_certificate, contract, other), optionally `expires_on`
        (YYYY-MM-DD, before the file) and `file` (PDF, JPEG, PNG or
        WEBP, judged by its content; larger than XINDAI_DOCUMENT_MAX_BYTES: 413). The file
        is encrypted as it arrives; the upload is recorded in the audit log."""
        return await upload_from_request(request, ctx, name, record_id)

    @get("/{record_id:uuid}/documents/{document_id:uuid}",
         summary=f"Download a document of a {tag}", tags=[tag],
         operation_id=f"download_document_{name}", opt=need("read"))
    async def download_document(ctx: CurrentContext, record_id: FromPath[UUID],
                                document_id: FromPath[UUID], inline: FromQuery[bool] = False
                                ) -> Stream:
        """The file, decrypted as it is sent; `?inline=true` to preview it in a browser.
        Every download is recorded in the audit log."""
        return await download_response(ctx, name, record_id, document_id, inline)

    @patch("/{record_id:uuid}/documents/{document_id:uuid}",
           summary=f"Set a document's expiry date ({tag})", tags=[tag],
           operation_id=f"update_document_{name}", opt=need("update"))
    async def update_document(ctx: CurrentContext, record_id: FromPath[UUID],
                              document_id: FromPath[UUID], data: JSONBody[dict[str, Any]]
                              ) -> dict[str, Any]:
        """`{"expires_on": "YYYY-MM-DD"}` (or null to clear): the last day the document
        (an ID card, a licence) is valid; expiring ones are flagged and their record's
        owner notified. Audited."""
        return await documents.set_expiry(ctx, name, record_id, document_id,
                                          data.get("expires_on"))

    @delete("/{record_id:uuid}/documents/{document_id:uuid}",
            summary=f"Delete a document of a {tag}", tags=[tag],
            operation_id=f"delete_document_{name}", opt=need("update"))
    async def delete_document(ctx: CurrentContext, record_id: FromPath[UUID],
                              document_id: FromPath[UUID]) -> None:
        await documents.delete_document(ctx, name, record_id, document_id)

    @get("/export", summary=f"Export {tag} (xlsx)", tags=[tag], operation_id=f"export_{name}",
         opt={"permission": (f"{name}.read", "records.export")})
    async def export(
        request: Request[Any, Any, Any], ctx: CurrentContext,
        sort: FromQuery[str | None] = None, q: FromQuery[str | None] = None,
        reveal: FromQuery[bool] = False,
    ) -> Response[bytes]:
        """The filtered list (the list's filters, `q` and `sort`) with the import
        template's columns, masked per field policy; `reveal=true` gives secret fields in
        clear (needs `<entity>.reveal`). Audited."""
        from core.imports import export_bytes
        from core.web.api_imports import xlsx_response

        filters = {k: v for k, v in request.query_params.items() if k not in RESERVED_QUERY}
        data = await export_bytes(ctx, name, filters, q, sort, reveal)
        return xlsx_response(data, f"{entity.api_path}.xlsx")

    writes = [create, change, remove] if entity.generic_writes else []
    return Router(path=f"/{entity.api_path}", route_handlers=documented([
        export,
        list_records, *writes, read, reveal, fields, add_field, drop_field,
        list_documents, upload_document, download_document, update_document,
        delete_document,
    ]))


def api_router(entities: list[EntityType], plugin_routes: list[Any]) -> Router:
    from core.web.api_background import BACKGROUND_HANDLERS
    from core.web.api_imports import IMPORT_HANDLERS
    from core.web.ui.notifications import NOTIFICATION_API

    handlers: list[Any] = [login_handler, me, health, create_token, list_tokens, revoke_token,
                           platform_tenants, platform_create, platform_status,
                           *BACKGROUND_HANDLERS, *NOTIFICATION_API, *IMPORT_HANDLERS]
    handlers.extend(entity_router(e) for e in entities)
    handlers.extend(plugin_routes)
    return Router(path="/api/v1", route_handlers=handlers,
                  dependencies={"ctx": Provide(provide_ctx)}, guards=[access_guard],
                  middleware=[IdempotencyMiddleware])
