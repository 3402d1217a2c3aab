"""Callbacks from the e-signature service: verified, applied once, or refused and audited.

A callback is accepted only if its signature is the tenant's app secret over `<t>.<body>`,
`t` is within five minutes, its nonce was never seen for the tenant, and its flow is one of
the tenant's contracts. Anything else answers 401 (signature) or 400 (replay, unknown flow,
bad body), changes nothing, and appends `security.esign_callback_refused` to the tenant's
audit chain. On `flow.completed` the signed PDF is downloaded, verified against the trust
roots before anything is written, stored encrypted, and the contract becomes `signed`."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from core import audit
from core.errors import NotFound, XindaiError
from core.i18n import register_messages
from core.tenancy import Context, get_tenant, tenant_scope
from plugins.contracts import esign, esign_client, service, signing
from plugins.contracts.tables import Contract, ContractCallback

EVENTS = ("signer.signed", "flow.completed", "flow.declined", "flow.expired")

register_messages({
    "esign_callback_signature": {
        "zh-CN": "电子签名回调签名无效或已过期", "en": "the e-signature callback's signature "
                                                  "is invalid or too old"},
    "esign_callback_refused": {
        "zh-CN": "电子签名回调被拒绝：{reason}", "en": "the e-signature callback was refused: "
                                                  "{reason}"},
})


class CallbackUnauthorized(XindaiError):
    status = 401
    code = "esign_callback_signature"


class CallbackRefused(XindaiError):
    status = 400
    code = "esign_callback_refused"


async def _refuse(ctx: Context, reason: str, flow_id: str = "", ip: str | None = None,
                  unauthorized: bool = False) -> XindaiError:
    """Record the refusal in the audit chain (its own transaction) and return the error."""
    async with tenant_scope(ctx):
        await audit.append(replace(ctx, ip=ip), "security.esign_callback_refused",
                           "contract", None, {"reason": [None, reason],
                                              "flow_id": [None, flow_id[:100]]})
    return CallbackUnauthorized() if unauthorized else CallbackRefused(reason=reason)


async def handle_callback(slug: str, signature_header: str, body: bytes,
                          ip: str | None = None) -> dict[str, Any]:
    """Apply one callback for tenant `slug` (see the module docstring)."""
    try:
        tenant = await get_tenant(slug)
    except NotFound:
        raise NotFound() from None
    if tenant.status != "active" or not tenant.enabled("contracts"):
        raise NotFound()
    ctx = replace(Context.system(tenant), username="esign-callback", ip=ip)
    try:
        config, secret = await esign._secret(ctx)
    except XindaiError:
        raise await _refuse(ctx, "not configured", ip=ip, unauthorized=True) from None
    if not esign_client.verify_callback(secret, signature_header, body):
        raise await _refuse(ctx, "bad signature", ip=ip, unauthorized=True)
    try:
        message = json.loads(body)
        event, flow_id, nonce = (str(message["event"]), str(message["flow_id"]),
                                 str(message["nonce"]))
    except (ValueError, KeyError, TypeError):
        raise await _refuse(ctx, "bad body", ip=ip) from None
    if event not in EVENTS or not nonce or len(nonce) > 100:
        raise await _refuse(ctx, "bad event", flow_id, ip)
    async with tenant_scope(ctx, write=False):
        rows = await Contract.select().where(
            Contract.tenant_id == ctx.tenant_id, Contract.provider == "remote",
            Contract.flow_id == flow_id).output(load_json=True).run()
        seen = await ContractCallback.exists().where(ContractCallback.tenant_id == ctx.tenant_id,
                                                     ContractCallback.nonce == nonce).run()
    if not rows:
        raise await _refuse(ctx, "unknown flow", flow_id, ip)
    if seen:
        raise await _refuse(ctx, "replayed", flow_id, ip)
    row = rows[0]
    signed = None
    if event == "flow.completed" and row["status"] in ("sent", "borrower_signed"):
        signed = await _download_verified(ctx, flow_id)
    async with tenant_scope(ctx):
        try:
            await ContractCallback.insert(ContractCallback(
                tenant_id=ctx.tenant_id, nonce=nonce, flow_id=flow_id)).run()
        except Exception:  # the unique index: a concurrent replay got here first
            raise CallbackRefused(reason="replayed") from None
        row = await service._row(ctx, row["id"], lock=True)
        await _apply(ctx, row, event, message, signed)
    return {"ok": True, "contract_id": str(row["id"])}


async def _download_verified(ctx: Context, flow_id: str) -> tuple[bytes, dict[str, Any]]:
    client = await esign.remote_client(ctx)
    try:
        pdf = await client.download(flow_id)
    except esign_client.ClientError as exc:
        raise esign.ESignFailed(error=str(exc)[:200]) from None
    result = await signing.async_verify_pdf(pdf, await esign.trust_roots(ctx))
    if not result.ok:
        raise XindaiError("contract_signature_invalid", error=result.error or "not ok")
    return pdf, result.as_dict()


async def _apply(ctx: Context, row: dict[str, Any], event: str, message: dict[str, Any],
                 signed: tuple[bytes, dict[str, Any]] | None) -> None:
    detail = {"event": event, "role": str(message.get("role") or "")[:20]}
    status = row["status"]
    if event == "signer.signed" and message.get("role") == "borrower" and status == "sent":
        await service._move(ctx, row, "borrower_signed", "callback", detail)
    elif event == "flow.completed" and signed is not None:
        pdf, verification = signed
        await service.finish_signed(ctx, row, pdf, verification,
                                    {**detail, "provider": "remote",
                                     "signer": verification.get("signer_cn") or ""})
    elif event == "flow.declined" and status in service.OPEN:
        await service._move(ctx, row, "cancelled", "callback", detail)
    elif event == "flow.expired" and status in service.OPEN:
        await service._move(ctx, row, "expired", "callback", detail)
    else:  # nothing to change (e.g. a late borrower callback after completion)
        await service._history(ctx, row["id"], "callback", status, status, detail)
