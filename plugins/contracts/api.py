"""The contracts API under /api/v1: contracts, their PDFs and signing, templates, the
e-signature settings, and the provider's callback (public: it proves itself with the
HMAC signature and is refused and audited otherwise)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Stream

from core.web.context import CurrentContext, client_ip
from plugins.contracts import callbacks, esign, library, service
from plugins.contracts.templates import check_template

TAG = "Contracts"


def callback_base(request: Request[Any, Any, Any]) -> str:
    """Where the provider reaches xindai: the address this request came to."""
    return str(request.base_url).rstrip("/")


@get("/contracts", tags=[TAG], summary="List contracts", opt={"permission": "contract.read"})
async def list_contracts(ctx: CurrentContext, status: FromQuery[str | None] = None,
                         page: FromQuery[int] = 1) -> dict[str, Any]:
    items, total = await service.list_contracts(ctx, status, page)
    return {"items": items, "total": total, "page": page}


@post("/contracts", tags=[TAG], summary="Generate a contract for an approved application",
      opt={"permission": "contract.generate"}, status_code=201)
async def generate(ctx: CurrentContext, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"application_id": ...}`: an application seen approved (`application.approved`);
    an open contract of the same application is cancelled and replaced."""
    return await service.generate(ctx, data.get("application_id"))


@get("/contracts/{contract_id:uuid}", tags=[TAG], summary="Get a contract",
     opt={"permission": "contract.read"})
async def get_contract(ctx: CurrentContext, contract_id: FromPath[UUID]) -> dict[str, Any]:
    out = await service.get_contract(ctx, contract_id)
    out["history"] = await service.contract_history(ctx, contract_id)
    return out


@get("/contracts/{contract_id:uuid}/pdf/{which:str}", tags=[TAG],
     summary="Download a contract PDF (unsigned, partial, signed)",
     opt={"permission": "contract.read"})
async def pdf(ctx: CurrentContext, contract_id: FromPath[UUID], which: FromPath[str],
              inline: FromQuery[bool] = False) -> Stream:
    """Decrypted as it is sent; every download is in the audit log."""
    opened = await service.open_pdf(ctx, contract_id, which, inline)
    return Stream(opened.chunks, media_type=opened.content_type, headers=opened.headers())


@post("/contracts/{contract_id:uuid}/verify", tags=[TAG], summary="Verify the signatures",
      opt={"permission": "contract.read"}, status_code=200)
async def verify(ctx: CurrentContext, contract_id: FromPath[UUID]) -> dict[str, Any]:
    return await service.verify(ctx, contract_id)


@post("/contracts/{contract_id:uuid}/send", tags=[TAG], summary="Send for signing",
      opt={"permission": "contract.sign"}, status_code=200)
async def send(ctx: CurrentContext, request: Request[Any, Any, Any],
               contract_id: FromPath[UUID]) -> dict[str, Any]:
    """Local signing: a one-time code (returned as `shown_code` when no SMS provider is
    configured). Remote: the flow is created and `signer_url` is the borrower's link."""
    return await esign.start_signing(ctx, contract_id, callback_base(request))


@post("/contracts/{contract_id:uuid}/borrower-confirm", tags=[TAG],
      summary="The borrower confirms in person (local signing)",
      opt={"permission": "contract.sign"}, status_code=200)
async def borrower_confirm(ctx: CurrentContext, contract_id: FromPath[UUID],
                           data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"borrower_name", "code", "agreed": true}`."""
    return await esign.borrower_confirm(ctx, contract_id, str(data.get("borrower_name") or ""),
                                        str(data.get("code") or ""), data.get("agreed") is True)


@post("/contracts/{contract_id:uuid}/lender-sign", tags=[TAG],
      summary="The lender signs (local signing)", opt={"permission": "contract.sign"},
      status_code=200)
async def lender_sign(ctx: CurrentContext, contract_id: FromPath[UUID]) -> dict[str, Any]:
    return await esign.lender_sign(ctx, contract_id)


@post("/contracts/{contract_id:uuid}/cancel", tags=[TAG], summary="Cancel a contract",
      opt={"permission": "contract.generate"}, status_code=200)
async def cancel(ctx: CurrentContext, contract_id: FromPath[UUID],
                 data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return await service.cancel(ctx, contract_id, str(data.get("reason") or ""))


@get("/contract-templates", tags=[TAG], summary="Contract templates (newest per product)",
     opt={"permission": "contract.template.manage"})
async def list_templates(ctx: CurrentContext) -> list[dict[str, Any]]:
    return await library.list_templates(ctx)


@put("/contract-templates/{product:str}", tags=[TAG],
     summary="Save the next version of a product's template (* for the default)",
     opt={"permission": "contract.template.manage"})
async def save_template(ctx: CurrentContext, product: FromPath[str],
                        data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"body": "...", "name": "..."}`; 422 with each problem's line otherwise."""
    return await library.save_template(ctx, product, data.get("body"), data.get("name"))


@post("/contract-templates/check", tags=[TAG], summary="Check a template without saving",
      opt={"permission": "contract.template.manage"}, status_code=200)
async def check(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    check_template(str(data.get("body") or ""))
    return {"ok": True}


@get("/contract-esign", tags=[TAG], summary="E-signature settings",
     opt={"permission": "contract.template.manage"})
async def get_esign(ctx: CurrentContext) -> dict[str, Any]:
    return await esign.get_config(ctx)


@put("/contract-esign", tags=[TAG], summary="Choose local or remote signing",
     opt={"permission": "contract.template.manage"})
async def put_esign(ctx: CurrentContext, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"provider": "local"|"remote", "base_url", "app_id", "secret"}`."""
    return await esign.save_config(ctx, str(data.get("provider") or "local"),
                                   str(data.get("base_url") or ""),
                                   str(data.get("app_id") or ""), data.get("secret") or None)


@post("/contracts/esign/callback/{tenant:str}", tags=[TAG],
      summary="E-signature service callback (HMAC-signed)", opt={"public": True},
      status_code=200)
async def esign_callback(request: Request[Any, Any, Any], tenant: FromPath[str]
                         ) -> Response[dict[str, Any]]:
    body = await request.body()
    out = await callbacks.handle_callback(
        tenant, request.headers.get("x-esign-signature", ""), body, client_ip(request))
    return Response(out)


ROUTES = [list_contracts, generate, get_contract, pdf, verify, send, borrower_confirm,
          lender_sign, cancel, list_templates, save_template, check, get_esign, put_esign,
          esign_callback]
