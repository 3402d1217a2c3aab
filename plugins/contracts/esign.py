"""E-signature: one provider interface, two built-in providers.

`kernel().provider("esign", tenant)` answers an object with `async open(ctx)` that returns
the tenant's `ESignProvider`. A partner plugin (a real e签宝 or 法大大 connector) answers
`choose_provider("esign")` first with its own object of the same shape.

- `LocalSigner` (default): the borrower signs in person, attended by the loan officer. A
  one-time code is sent to the borrower (an `sms` provider) or, without one, shown to the
  officer to hand over; the borrower confirms with their name and the code, and the
  borrower's field is signed with the tenant's certificate, the signature's reason naming the
  borrower, the method and the officer. The lender's signature follows. See
  docs/decisions.md: this records the lender's system taking the borrower's consent, not
  the borrower's own reliable electronic signature.
- `RemoteSigner`: an e签宝 / 法大大 style service speaking the protocol in
  docs/contracts.md (`plugins.contracts.esign_client`): the flow is created, the PDF
  uploaded, the borrower gets a signing URL, the service calls back (HMAC-SHA256 over
  timestamp and body, a nonce per callback), and the signed PDF is downloaded, verified
  against the service's CA and stored encrypted.
"""

from __future__ import annotations

import hmac
import secrets
import unicodedata
import uuid
from datetime import timedelta
from typing import Any, Protocol

from core import audit, records
from core.access import require
from core.crypto import tenant_keys
from core.errors import FieldError, ValidationFailed, XindaiError
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.contracts import certs, esign_client, render, service, signing
from plugins.contracts.tables import Contract, ContractSigningConfig

OTP_MINUTES = 10
OTP_MAX_ATTEMPTS = 5
PROVIDERS = ("local", "remote")
CONFIG_LABELS = {"zh-CN": "电子签名配置", "en": "E-signature settings"}

register_messages({
    "contract_otp_refused": {
        "zh-CN": "验证码错误或已过期，请重新获取",
        "en": "the one-time code is wrong or has expired; request a new one"},
    "contract_borrower_name": {
        "zh-CN": "借款人姓名与客户资料不一致",
        "en": "the borrower's name does not match the customer record"},
    "contract_consent_required": {
        "zh-CN": "借款人须确认已阅读并同意合同全部条款",
        "en": "the borrower must confirm having read and agreed to the contract"},
    "contract_esign_not_configured": {
        "zh-CN": "尚未配置电子签名服务（地址、应用 ID 与密钥）",
        "en": "the e-signature service is not configured (address, app id and secret)"},
    "contract_esign_failed": {
        "zh-CN": "电子签名服务调用失败：{error}", "en": "the e-signature service failed: {error}"},
    "contract_signature_invalid": {
        "zh-CN": "签署后的合同验签未通过：{error}",
        "en": "the signed contract does not verify: {error}"},
    "contract_no_products": {
        "zh-CN": "未启用贷款产品（servicing 插件），无法生成还款计划",
        "en": "no loan products provider (servicing plugin): the schedule cannot be made"},
    "contract_config_field": {
        "zh-CN": "{label}无效：{name}", "en": "{label} is invalid: {name}"},
})


class ESignFailed(XindaiError):
    status = 502
    code = "contract_esign_failed"


class ESignProvider(Protocol):
    """What the contracts plugin asks of an e-signature provider."""

    name: str

    async def start(self, ctx: Context, row: dict[str, Any], pdf: bytes,
                    borrower: dict[str, Any], callback_url: str) -> dict[str, Any]:
        """Open signing for the contract; returns {"flow_id", "signer_url", "code"?}."""

    async def trust_roots(self, ctx: Context) -> list[bytes]:
        """PEM certificates the provider's signatures chain to."""


def _field_error(field: str, code: str, **params: Any) -> ValidationFailed:
    return ValidationFailed([FieldError(field, code, params, CONFIG_LABELS)])


# --- configuration ------------------------------------------------------------------------

def _master() -> bytes:
    from core.kernel import kernel

    return kernel().master_key


async def get_config(ctx: Context) -> dict[str, Any]:
    """The tenant's signing settings; the secret is never returned (only whether it is set)."""
    async with tenant_scope(ctx, write=False):
        rows = await ContractSigningConfig.select().where(
            ContractSigningConfig.tenant_id == ctx.tenant_id).run()
    if not rows:
        return {"provider": "local", "base_url": "", "app_id": "", "secret_set": False}
    r = rows[0]
    return {"provider": r["provider"], "base_url": r["base_url"], "app_id": r["app_id"],
            "secret_set": bool(r["secret_sealed"])}


async def _secret(ctx: Context) -> tuple[dict[str, Any], str]:
    async with tenant_scope(ctx, write=False):
        rows = await ContractSigningConfig.select().where(
            ContractSigningConfig.tenant_id == ctx.tenant_id).run()
        if not rows or not rows[0]["secret_sealed"] or not rows[0]["base_url"]:
            raise XindaiError("contract_esign_not_configured")
        keys = await tenant_keys(_master(), ctx.tenant_id)
        row = rows[0]
        return row, keys.decrypt("contract_signing_config", "secret", row["id"],
                                 row["secret_sealed"])


async def save_config(ctx: Context, provider: str, base_url: str = "", app_id: str = "",
                      secret: str | None = None) -> dict[str, Any]:
    """Choose local or remote signing; a remote service needs its base URL, app id and
    secret (kept sealed; an empty secret keeps the stored one)."""
    require(ctx, "contract.template.manage")
    if provider not in PROVIDERS:
        raise _field_error("provider", "contract_config_field", name="provider")
    base_url = (base_url or "").strip().rstrip("/")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise _field_error("base_url", "contract_config_field", name="base_url")
    async with tenant_scope(ctx):
        rows = await ContractSigningConfig.select().where(
            ContractSigningConfig.tenant_id == ctx.tenant_id).run()
        row_id = rows[0]["id"] if rows else uuid.uuid4()
        sealed = rows[0]["secret_sealed"] if rows else ""
        if secret:
            keys = await tenant_keys(_master(), ctx.tenant_id)
            sealed = keys.encrypt("contract_signing_config", "secret", row_id, secret)
        if provider == "remote" and not (base_url and app_id and sealed):
            raise XindaiError("contract_esign_not_configured")
        values = {"provider": provider, "base_url": base_url, "app_id": app_id.strip()[:100],
                  "secret_sealed": sealed, "updated_at": service.utcnow()}
        if rows:
            await ContractSigningConfig.update({getattr(ContractSigningConfig, k): v
                                                for k, v in values.items()}).where(
                ContractSigningConfig.tenant_id == ctx.tenant_id,
                ContractSigningConfig.id == row_id).run()
        else:
            await ContractSigningConfig.insert(ContractSigningConfig(
                id=row_id, tenant_id=ctx.tenant_id, **values)).run()
        await audit.append(ctx, "contract.esign.configure", "contract_signing_config", row_id, {
            "provider": [None, provider], "base_url": [None, base_url],
            "app_id": [None, values["app_id"]], "secret_changed": [None, bool(secret)]})
    return await get_config(ctx)


async def remote_client(ctx: Context) -> esign_client.ESignClient:
    row, secret = await _secret(ctx)
    return esign_client.ESignClient(row["base_url"], row["app_id"], secret)


async def trust_roots(ctx: Context) -> list[bytes]:
    """The tenant CA, and the remote service's CA when one is configured and reachable."""
    roots = [await certs.trust_root(ctx)]
    config = await get_config(ctx)
    if config["base_url"] and config["secret_set"]:
        try:
            roots.append(await (await remote_client(ctx)).ca_pem())
        except esign_client.ClientError:
            pass  # unreachable: its signatures then show as untrusted, which is the truth
    return roots


# --- the providers ------------------------------------------------------------------------

class LocalSigner:
    """In-person signing with the tenant's certificate (see the module docstring)."""

    name = "local"

    async def start(self, ctx: Context, row: dict[str, Any], pdf: bytes,
                    borrower: dict[str, Any], callback_url: str) -> dict[str, Any]:
        from core.kernel import kernel

        code = f"{secrets.randbelow(10**6):06d}"
        sms = kernel().provider("sms", ctx.tenant)
        shown = None
        if sms is not None and borrower.get("mobile"):
            await sms.send(ctx, borrower["mobile"], f"您的借款合同 {row['number']} 签署验证码："
                                                    f"{code}，{OTP_MINUTES} 分钟内有效。")
        else:
            shown = code  # no SMS provider: the officer hands the code to the borrower
        return {"flow_id": str(row["id"]), "signer_url": f"/contracts/{row['id']}/sign",
                "code": code, "shown_code": shown,
                "channel": "sms" if shown is None else "screen"}

    async def trust_roots(self, ctx: Context) -> list[bytes]:
        return [await certs.trust_root(ctx)]


class RemoteSigner:
    """An e签宝 / 法大大 style service reached over HTTP (esign_client)."""

    name = "remote"

    async def start(self, ctx: Context, row: dict[str, Any], pdf: bytes,
                    borrower: dict[str, Any], callback_url: str) -> dict[str, Any]:
        client = await remote_client(ctx)
        try:
            flow = await client.create_flow(
                title=f"借款合同 {row['number']}", callback_url=callback_url,
                signers=[{"role": "borrower", "field": render.BORROWER_FIELD,
                          "name": borrower["name"], "id_number": borrower["id_number"],
                          "mobile": borrower["mobile"]},
                         {"role": "lender", "field": render.LENDER_FIELD,
                          "name": ctx.tenant.name, "auto": True}])
            await client.upload(flow, pdf, f"{row['number']}.pdf")
            await client.start(flow)
            url = await client.signer_url(flow, "borrower")
        except esign_client.ClientError as exc:
            raise ESignFailed(error=str(exc)[:200]) from None
        return {"flow_id": flow, "signer_url": url, "code": None, "channel": "provider"}

    async def trust_roots(self, ctx: Context) -> list[bytes]:
        return await trust_roots(ctx)


LOCAL, REMOTE = LocalSigner(), RemoteSigner()


class ESignProviders:
    """What `choose_provider("esign")` answers: the tenant's configured provider."""

    async def open(self, ctx: Context) -> ESignProvider:
        return REMOTE if (await get_config(ctx))["provider"] == "remote" else LOCAL


PROVIDER = ESignProviders()


async def provider_for(ctx: Context) -> ESignProvider:
    from core.kernel import kernel

    chooser = kernel().provider("esign", ctx.tenant) or PROVIDER
    return await chooser.open(ctx)


# --- starting -----------------------------------------------------------------------------

async def _borrower(ctx: Context, customer_id: Any) -> dict[str, Any]:
    from core.tenancy import Context as Ctx

    await records.get(ctx, "customer", customer_id)  # the caller may see the borrower
    clear = await records.get(Ctx.system(ctx.tenant), "customer", customer_id, reveal=True)
    return {"name": str(clear.get("name") or ""),
            "id_number": str(clear.get("resident_id") or clear.get("credit_code") or ""),
            "mobile": str(clear.get("mobile") or "")}


def _otp_digest(keys: Any, contract_id: uuid.UUID, code: str) -> str:
    return keys.blind_index("contract", "otp", f"{contract_id}|{code}")


async def start_signing(ctx: Context, contract_id: Any, callback_base: str = ""
                        ) -> dict[str, Any]:
    """Send the contract for signing through the tenant's provider: generated -> sent (a
    local contract already sent gets a fresh code). Returns the contract plus the signer's
    URL and, for local signing without SMS, the code to hand over."""
    require(ctx, "contract.sign")
    async with tenant_scope(ctx, write=False):
        row = await service._row(ctx, contract_id)
    provider = await provider_for(ctx)
    local = provider.name == "local"
    if not (row["status"] == "generated" or (local and row["status"] == "sent"
                                             and row["provider"] == "local")):
        raise service._status_error(row["status"], "发起签署", "sent for signing")
    borrower = await _borrower(ctx, row["customer_id"])
    pdf = b"" if local else await service.read_pdf(ctx, row, "unsigned")
    callback = (f"{callback_base.rstrip('/')}/api/v1/contracts/esign/callback/"
                f"{ctx.tenant.slug}")
    started = await provider.start(ctx, row, pdf, borrower, callback)
    async with tenant_scope(ctx):
        row = await service._row(ctx, row["id"], lock=True)
        values: dict[str, Any] = {"provider": provider.name, "flow_id": started["flow_id"]}
        if started.get("code"):
            keys = await tenant_keys(_master(), ctx.tenant_id)
            values.update(otp_digest=_otp_digest(keys, row["id"], started["code"]),
                          otp_expires_at=service.utcnow() + timedelta(minutes=OTP_MINUTES),
                          otp_attempts=0)
        detail = {"provider": provider.name, "channel": started.get("channel", "")}
        if row["status"] == "sent":
            await Contract.update({getattr(Contract, k): v for k, v in values.items()}).where(
                Contract.tenant_id == ctx.tenant_id, Contract.id == row["id"]).run()
            await service._history(ctx, row["id"], "code_sent", "sent", "sent", detail)
        else:
            await service._move(ctx, row, "sent", "send", detail, **values)
    out = await service.get_contract(ctx, row["id"])
    out["signer_url"] = started["signer_url"]
    out["shown_code"] = started.get("shown_code")
    return out


# --- local signing ------------------------------------------------------------------------

def _same_name(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return "".join(unicodedata.normalize("NFKC", s).split())

    return bool(a.strip()) and norm(a) == norm(b)


async def _refuse_local(ctx: Context, row: dict[str, Any], reason: str) -> None:
    """A failed borrower confirmation: counted and audited in its own transaction (a
    security event: guessing codes), then refused."""
    async with tenant_scope(ctx):
        await Contract.update({Contract.otp_attempts: row["otp_attempts"] + 1}).where(
            Contract.tenant_id == ctx.tenant_id, Contract.id == row["id"]).run()
        await audit.append(ctx, "security.contract_sign_refused", "contract", row["id"],
                           {"reason": [None, reason], "attempt": [None, row["otp_attempts"] + 1]})
    code = {"name": "contract_borrower_name", "consent": "contract_consent_required"}.get(
        reason, "contract_otp_refused")
    field = {"name": "borrower_name", "consent": "agreed"}.get(reason, "code")
    raise ValidationFailed([FieldError(field, code, {}, {})])


async def borrower_confirm(ctx: Context, contract_id: Any, name: str, code: str,
                           agreed: bool) -> dict[str, Any]:
    """The borrower, in front of the officer, confirms: name, one-time code, consent. The
    borrower's field is signed (sent -> borrower_signed)."""
    require(ctx, "contract.sign")
    async with tenant_scope(ctx, write=False):
        row = await service._row(ctx, contract_id)
        keys = await tenant_keys(_master(), ctx.tenant_id)
    if row["status"] != "sent" or row["provider"] != "local":
        raise service._status_error(row["status"], "由借款人确认", "confirmed by the borrower")
    borrower = await _borrower(ctx, row["customer_id"])
    expired = row["otp_expires_at"] is None or row["otp_expires_at"] < service.utcnow()
    if row["otp_attempts"] >= OTP_MAX_ATTEMPTS or expired or not hmac.compare_digest(
            row["otp_digest"] or "", _otp_digest(keys, row["id"], (code or "").strip())):
        await _refuse_local(ctx, row, "code")
    if not _same_name(name, borrower["name"]):
        await _refuse_local(ctx, row, "name")
    if not agreed:
        await _refuse_local(ctx, row, "consent")
    unsigned = await service.read_pdf(ctx, row, "unsigned")
    tc = await certs.tenant_certificates(ctx)
    at = service.utcnow().astimezone().strftime("%Y-%m-%d %H:%M")
    officer = ctx.username or "-"
    pdf = await signing.async_sign_pdf(
        unsigned, tc.signer_key_pem, tc.signer_cert_pem, tc.ca_cert_pem,
        render.BORROWER_FIELD,
        reason=f"借款人{borrower['name']}本人现场确认签署（一次性验证码核验，经办人{officer}，{at}）",
        location="现场签署")
    doc = await service.store_pdf(ctx, row, pdf, "borrower-signed")
    async with tenant_scope(ctx):
        row = await service._row(ctx, row["id"], lock=True)
        if row["status"] != "sent":
            raise service._status_error(row["status"], "由借款人确认", "confirmed by the borrower")
        await service._move(ctx, row, "borrower_signed", "borrower_sign",
                            {"method": "otp", "officer": officer},
                            partial_document_id=uuid.UUID(doc["id"]), otp_digest=None,
                            otp_expires_at=None)
    return await service.get_contract(ctx, row["id"])


async def lender_sign(ctx: Context, contract_id: Any) -> dict[str, Any]:
    """The lender's signature after the borrower's (borrower_signed -> signed), checked with
    verify_pdf before it is stored."""
    require(ctx, "contract.sign")
    async with tenant_scope(ctx, write=False):
        row = await service._row(ctx, contract_id)
    if row["status"] != "borrower_signed" or row["provider"] != "local":
        raise service._status_error(row["status"], "由贷款人签章", "signed by the lender")
    partial = await service.read_pdf(ctx, row, "partial")
    tc = await certs.tenant_certificates(ctx)
    pdf = await signing.async_sign_pdf(partial, tc.signer_key_pem, tc.signer_cert_pem,
                                       tc.ca_cert_pem, render.LENDER_FIELD,
                                       reason=f"贷款人{ctx.tenant.name}签章", location="")
    result = await signing.async_verify_pdf(pdf, [tc.ca_cert_pem])
    if not result.ok:
        raise XindaiError("contract_signature_invalid", error=result.error or "not ok")
    async with tenant_scope(ctx):
        row = await service._row(ctx, row["id"], lock=True)
        if row["status"] != "borrower_signed":
            raise service._status_error(row["status"], "由贷款人签章", "signed by the lender")
        await service.finish_signed(ctx, row, pdf, result.as_dict(),
                                    {"provider": "local", "signer": result.signer_cn or ""})
    return await service.get_contract(ctx, row["id"])

