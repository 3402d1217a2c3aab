"""Contracts: generated from an approved application, stored encrypted, moved through their
signing states, verified.

States: generated -> sent -> borrower_signed -> signed, and cancelled / expired from any
state before signed. Every move is one tenant transaction with its history row
(`contract_event`), its audit entry and, where others care, its event.

The PDFs go through the kernel's document store (core.documents), attached to the
borrower's customer record with the document kind "contract": encrypted per chunk with the
tenant's data key, listed in the customer's documents, every download audited, and
readable only by users who may read that customer (object rules included). The contract
row keeps their ids and SHA-256 digests."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core import audit, documents, records
from core.access import object_clause, require
from core.errors import Conflict, FieldError, NotFound, ValidationFailed, XindaiError
from core.events import emit
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.contracts import library, render, signing
from plugins.contracts.tables import Contract, ContractApproval, ContractEvent
from plugins.contracts.templates import ContractData

STATUSES = ("generated", "sent", "borrower_signed", "signed", "cancelled", "expired")
OPEN = ("generated", "sent", "borrower_signed")
STATUS_LABELS = {
    "generated": ("已生成", "Generated"), "sent": ("签署中", "Out for signing"),
    "borrower_signed": ("借款人已签", "Borrower signed"), "signed": ("已签署", "Signed"),
    "cancelled": ("已作废", "Cancelled"), "expired": ("已过期", "Expired"),
}
TERM_UNITS = {"month": "个月", "week": "周", "quarter": "个季度", "year": "年", "day": "天",
              "biweek": "个双周", "half_year": "个半年"}
NOTIFY_SIGNED = {"roles": ["finance"],
                 "title": {"zh-CN": "合同已签署，待放款", "en": "Contract signed, ready to disburse"}}
APPROVAL_LABELS = {"zh-CN": "审批通过的申请", "en": "Approved application"}

register_messages({
    "contract_status": {
        "zh-CN": "合同当前状态为“{status}”，不能{action}",
        "en": "the contract is '{status}' and cannot be {action}"},
    "contract_no_approval": {
        "zh-CN": "{label}不存在：只能为审批通过的申请生成合同",
        "en": "{label} not found: contracts are generated for approved applications only"},
    "contract_approval_payload": {
        "zh-CN": "审批通过事件缺少或有误的字段：{name}",
        "en": "the approval event lacks or has a bad field: {name}"},
    "contract_unreadable_pdf": {
        "zh-CN": "合同文件无法读取", "en": "the contract file cannot be read"},
})


class StatusRefused(Conflict):
    """The status and the action in the reader's own language."""

    code = "contract_status"

    def __init__(self, status: str, action_zh: str, action_en: str) -> None:
        zh, en = STATUS_LABELS.get(status, (status, status))
        self.words = {"zh-CN": {"status": zh, "action": action_zh},
                      "en": {"status": en, "action": action_en}}
        super().__init__(self.code, **self.words["en"])

    def message(self, locale: str | None = None) -> str:
        from core.i18n import normalise_locale, t

        lang = normalise_locale(locale)
        return t(self.code, lang, **self.words.get(lang, self.words["en"]))


def _status_error(status: str, zh: str, en: str) -> StatusRefused:
    return StatusRefused(status, zh, en)


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_fen(value: Any) -> int:
    return int((Decimal(str(value)) * 100).quantize(Decimal(1)))


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime | date) else value


def describe(row: dict[str, Any]) -> dict[str, Any]:
    """A contract as the API shows it (no personal data: that is in the PDF)."""
    out = {k: (str(v) if isinstance(v, uuid.UUID) else _iso(v)) for k, v in row.items()
           if k not in ("tenant_id", "otp_digest", "otp_attempts")}
    out["amount"] = yuan(row["amount"])
    out["signing_open"] = row["otp_expires_at"] is not None and row["status"] == "sent"
    out.pop("otp_expires_at", None)
    return out


async def _uuid(value: Any) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFound() from None


# --- approvals ----------------------------------------------------------------------------

def _approval_values(payload: dict[str, Any]) -> dict[str, Any]:
    def bad(name: str) -> ValidationFailed:
        return ValidationFailed([FieldError(name, "contract_approval_payload", {"name": name},
                                            APPROVAL_LABELS)])

    out: dict[str, Any] = {}
    for key in ("application_id", "customer_id"):
        try:
            out[key] = uuid.UUID(str(payload.get(key)))
        except ValueError:
            raise bad(key) from None
    out["product"] = str(payload.get("product") or "")
    if not out["product"]:
        raise bad("product")
    try:
        amount = Decimal(str(payload.get("amount")))
        out["periods"] = int(payload.get("periods"))  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        raise bad("amount/periods") from None
    if amount <= 0 or out["periods"] <= 0:
        raise bad("amount/periods")
    out["amount"] = str(amount)
    rate = payload.get("annual_rate")
    out["annual_rate"] = None if rate in (None, "") else str(rate)
    out["number"] = str(payload.get("number") or "")[:60]
    return out


async def record_approval(ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
    """Remember an `application.approved` payload (the terms a contract may carry)."""
    values = _approval_values(payload)
    async with tenant_scope(ctx):
        rows = await ContractApproval.select().where(
            ContractApproval.tenant_id == ctx.tenant_id,
            ContractApproval.application_id == values["application_id"]).run()
        if rows:
            await ContractApproval.update({getattr(ContractApproval, k): v
                                           for k, v in values.items()}).where(
                ContractApproval.tenant_id == ctx.tenant_id,
                ContractApproval.id == rows[0]["id"]).run()
        else:
            await ContractApproval.insert(ContractApproval(tenant_id=ctx.tenant_id,
                                                           **values)).run()
    return values


async def on_application_approved(ctx: Context, payload: dict[str, Any]) -> None:
    """Event handler: record the approval and generate the contract (once per approval:
    the outbox delivers it once in effect)."""
    values = await record_approval(ctx, payload)
    await generate(ctx, values["application_id"])


async def approval(ctx: Context, application_id: Any) -> dict[str, Any]:
    app_id = await _uuid(application_id)
    async with tenant_scope(ctx, write=False):
        rows = await ContractApproval.select().where(
            ContractApproval.tenant_id == ctx.tenant_id,
            ContractApproval.application_id == app_id).run()
    if not rows:
        raise ValidationFailed([FieldError("application_id", "contract_no_approval", {},
                                           APPROVAL_LABELS)])
    return rows[0]


# --- generation ---------------------------------------------------------------------------

def _term(periods: int, frequency: str | None) -> str:
    return f"{periods}{TERM_UNITS.get(frequency or '', '期')}"


def _contract_data(ctx: Context, number: str, customer: dict[str, Any],
                   quote: dict[str, Any], periods: int) -> ContractData:
    rows = quote["installments"]
    product = quote["product"]
    custom = customer.get("custom") or {}
    account = str(customer.get("repayment_account") or custom.get("repayment_account")
                  or customer.get("bank_account") or custom.get("bank_account") or "")
    return ContractData(
        lender_name=ctx.tenant.name, contract_number=number,
        borrower_name=str(customer.get("name") or ""),
        borrower_id=str(customer.get("resident_id") or customer.get("credit_code") or ""),
        product_name=product["name"], amount=Decimal(quote["total_principal"]),
        annual_rate=Decimal(quote["annual_rate"]),
        apr=Decimal(quote["apr"]) if quote.get("apr") not in (None, "") else None,
        periods=periods, term=_term(periods, product.get("frequency")),
        method=product.get("method") or "", disbursed_on=ctx.tenant.business_date,
        maturity_on=date.fromisoformat(rows[-1]["due_on"]),
        repayment_account=account or "以借款人书面指定的账户为准",
        signed_on=ctx.tenant.business_date,
        schedule=[{k: r[k] for k in ("n", "due_on", "principal", "interest", "fees", "total",
                                     "balance")} for r in rows])


async def _next_number(ctx: Context) -> str:
    year = ctx.tenant.business_date.year
    prefix = f"HT{year}"
    rows = await Contract.select(Contract.number).where(
        Contract.tenant_id == ctx.tenant_id, Contract.number.like(f"{prefix}%"),
    ).order_by(Contract.number, ascending=False).limit(1).run()
    last = int(rows[0]["number"][len(prefix):]) if rows else 0
    return f"{prefix}{last + 1:06d}"


async def generate(ctx: Context, application_id: Any) -> dict[str, Any]:
    """A new contract for an approved application: the customer's facts, the product's
    schedule and APR (servicing's `loan_products` provider), the product's template; the PDF
    stored encrypted; `contract.generated` emitted. An open contract of the same
    application is cancelled first (a regenerated contract replaces it)."""
    from core.kernel import kernel
    from core.tenancy import Context as Ctx

    require(ctx, "contract.generate")
    appr = await approval(ctx, application_id)
    await records.get(ctx, "customer", appr["customer_id"])  # the caller may see the borrower
    clear = await records.get(Ctx.system(ctx.tenant), "customer", appr["customer_id"],
                              reveal=True)
    products = kernel().provider("loan_products", ctx.tenant)
    if products is None:
        raise XindaiError("contract_no_products")
    quote = await products.quote(ctx, appr["product"], appr["amount"], appr["periods"],
                                 appr["annual_rate"])
    template = await library.template_for(ctx, appr["product"])
    async with tenant_scope(ctx):
        number = await _next_number(ctx)
        data = _contract_data(ctx, number, clear, quote, appr["periods"])
        pdf = await asyncio.to_thread(render.render_pdf, template["body"], data)
        contract_id = uuid.uuid4()
        for old in await Contract.select().where(
                Contract.tenant_id == ctx.tenant_id,
                Contract.application_id == appr["application_id"],
                Contract.status.is_in(list(OPEN))).run():
            await _move(ctx, old, "cancelled", "cancel", {"replaced_by": number})
        owner = clear.get("owner_id")
        row = {
            "id": contract_id, "tenant_id": ctx.tenant_id, "number": number,
            "application_id": appr["application_id"], "application_number": appr["number"],
            "customer_id": appr["customer_id"], "product": appr["product"],
            "amount": to_fen(quote["total_principal"]), "periods": appr["periods"],
            "annual_rate": quote["annual_rate"], "apr": quote.get("apr") or "",
            "template_id": uuid.UUID(template["id"]) if template["id"] else None,
            "template_version": template["version"], "status": "generated",
            "provider": "", "unsigned_sha256": hashlib.sha256(pdf).hexdigest(),
            "owner_id": uuid.UUID(owner) if owner else None,
            "org_unit_id": uuid.UUID(clear["org_unit_id"]) if clear.get("org_unit_id")
            else None,
            "created_by": ctx.user_id,
        }
        await Contract.insert(Contract(**row)).run()
        doc = await store_pdf(ctx, row, pdf, "unsigned")
        await Contract.update({Contract.unsigned_document_id: uuid.UUID(doc["id"])}).where(
            Contract.tenant_id == ctx.tenant_id, Contract.id == contract_id).run()
        await _history(ctx, contract_id, "generate", "", "generated", {
            "template_version": template["version"], "product": appr["product"]})
        await audit.append(ctx, "contract.generate", "contract", contract_id, {
            "number": [None, number], "application_id": [None, str(appr["application_id"])],
            "amount": [None, yuan(row["amount"])], "template_version":
                [None, template["version"]], "sha256": [None, row["unsigned_sha256"]]})
        await emit(ctx, "contract.generated", {
            "contract_id": str(contract_id), "application_id": str(appr["application_id"]),
            "number": number, "customer_id": str(appr["customer_id"])})
    return await get_contract(ctx, contract_id)


# --- reading ------------------------------------------------------------------------------

def _visible(ctx: Context) -> list[Any]:
    where = [Contract.tenant_id == ctx.tenant_id]
    clause = object_clause(ctx, Contract)
    return where + ([clause] if clause is not None else [])


async def _row(ctx: Context, contract_id: Any, lock: bool = False) -> dict[str, Any]:
    cid = await _uuid(contract_id)
    query = Contract.select().where(*_visible(ctx), Contract.id == cid)
    if lock and Contract._meta.db.engine_type == "postgres":
        query = query.lock_rows("UPDATE")
    rows = await query.output(load_json=True).run()
    if not rows:
        raise NotFound()
    return rows[0]


async def get_contract(ctx: Context, contract_id: Any) -> dict[str, Any]:
    require(ctx, "contract.read")
    async with tenant_scope(ctx, write=False):
        return describe(await _row(ctx, contract_id))


async def list_contracts(ctx: Context, status: str | None = None, page: int = 1,
                         per_page: int = 50) -> tuple[list[dict[str, Any]], int]:
    """The contracts ctx may see, newest first; `status` filters."""
    require(ctx, "contract.read")
    where = _visible(ctx)
    if status:
        if status not in STATUSES:
            raise ValidationFailed([FieldError("status", "choice",
                                               {"field": "status", "value": status})])
        where.append(Contract.status == status)
    async with tenant_scope(ctx, write=False):
        total = await Contract.count().where(*where).run()
        rows = await Contract.select().where(*where).order_by(
            Contract.created_at, ascending=False).limit(per_page).offset(
            (max(page, 1) - 1) * per_page).output(load_json=True).run()
    return [describe(r) for r in rows], total


async def contract_history(ctx: Context, contract_id: Any) -> list[dict[str, Any]]:
    require(ctx, "contract.read")
    async with tenant_scope(ctx, write=False):
        row = await _row(ctx, contract_id)
        events = await ContractEvent.select().where(
            ContractEvent.tenant_id == ctx.tenant_id,
            ContractEvent.contract_id == row["id"]).order_by(ContractEvent.at).output(
            load_json=True).run()
    return [{"at": _iso(e["at"]), "action": e["action"], "from": e["status_from"],
             "to": e["status_to"], "actor": e["actor"], "detail": e["detail"]}
            for e in events]


# --- moves --------------------------------------------------------------------------------

async def _history(ctx: Context, contract_id: uuid.UUID, action: str, status_from: str,
                   status_to: str, detail: dict[str, Any] | None = None) -> None:
    await ContractEvent.insert(ContractEvent(
        tenant_id=ctx.tenant_id, contract_id=contract_id, action=action[:40],
        status_from=status_from, status_to=status_to,
        actor=ctx.username or ctx.user_id, detail=detail or {})).run()


async def _move(ctx: Context, row: dict[str, Any], to: str, action: str,
                detail: dict[str, Any] | None = None, **values: Any) -> dict[str, Any]:
    """Change status (inside the caller's tenant transaction) with history and audit."""
    changes = {Contract.status: to, Contract.updated_at: utcnow(),
               Contract.version: row["version"] + 1,
               **{getattr(Contract, k): v for k, v in values.items()}}
    done = await Contract.update(changes).where(
        Contract.tenant_id == ctx.tenant_id, Contract.id == row["id"],
        Contract.version == row["version"]).returning(Contract.id).run()
    if not done:
        raise Conflict("version_conflict")
    await _history(ctx, row["id"], action, row["status"], to, detail)
    await audit.append(ctx, f"contract.{action}", "contract", row["id"],
                       {"status": [row["status"], to],
                        **{k: [None, str(v)] for k, v in (detail or {}).items()}})
    return {**row, **values, "status": to, "version": row["version"] + 1}


async def note(ctx: Context, contract_id: uuid.UUID, action: str,
               detail: dict[str, Any]) -> None:
    """A history row without a status change (a callback, a code sent)."""
    async with tenant_scope(ctx):
        row = await _row(ctx, contract_id)
        await _history(ctx, row["id"], action, row["status"], row["status"], detail)


async def cancel(ctx: Context, contract_id: Any, reason: str = "") -> dict[str, Any]:
    require(ctx, "contract.generate")
    async with tenant_scope(ctx):
        row = await _row(ctx, contract_id, lock=True)
        if row["status"] not in OPEN:
            raise _status_error(row["status"], "作废", "cancelled")
        await _move(ctx, row, "cancelled", "cancel", {"reason": reason[:200]})
    return await get_contract(ctx, contract_id)


async def finish_signed(ctx: Context, row: dict[str, Any], pdf: bytes,
                        verification: dict[str, Any], detail: dict[str, Any]) -> None:
    """The fully signed PDF: stored, status `signed`, `contract.signed` for finance and
    origination (inside the caller's tenant transaction)."""
    doc = await store_pdf(ctx, row, pdf, "signed")
    await _move(ctx, row, "signed", "sign", detail,
                signed_document_id=uuid.UUID(doc["id"]),
                signed_sha256=hashlib.sha256(pdf).hexdigest(), signed_at=utcnow(),
                verification=verification, otp_digest=None, otp_expires_at=None)
    await emit(ctx, "contract.signed", {
        "contract_id": str(row["id"]), "application_id": str(row["application_id"]),
        "number": row["number"], "customer_id": str(row["customer_id"]),
        "notify": {**NOTIFY_SIGNED, "link": f"/contracts/{row['id']}"}})


# --- PDFs ---------------------------------------------------------------------------------

async def store_pdf(ctx: Context, row: dict[str, Any], pdf: bytes, which: str
                    ) -> dict[str, Any]:
    """Store a PDF of the contract encrypted, attached to the borrower's record. The store
    checks `customer.update`: the system (events, callbacks) and the officer who owns the
    customer have it."""
    name = f"{row['number']}-{which}.pdf"
    doc_ctx = ctx if ctx.access.can("customer.update") else _as_system(ctx)
    return await documents.upload(doc_ctx, "customer", row["customer_id"], "contract", name,
                                  pdf)


def _as_system(ctx: Context) -> Context:
    """The kernel storing a file on behalf of a user who may sign contracts but not edit
    the customer (e.g. a finance clerk countersigning): the audit keeps the user's name."""
    from core.access import SYSTEM

    return replace(ctx, access=SYSTEM)


DOCUMENT_FIELDS = {"unsigned": "unsigned_document_id", "partial": "partial_document_id",
                   "signed": "signed_document_id"}


async def open_pdf(ctx: Context, contract_id: Any, which: str, inline: bool = False
                   ) -> documents.Download:
    """Open one of the contract's PDFs (download audited by the document store)."""
    require(ctx, "contract.read")
    if which not in DOCUMENT_FIELDS:
        raise NotFound()
    async with tenant_scope(ctx, write=False):
        row = await _row(ctx, contract_id)
    doc_id = row[DOCUMENT_FIELDS[which]]
    if doc_id is None:
        raise NotFound()
    return await documents.open_document(ctx, "customer", row["customer_id"], doc_id, inline)


async def read_pdf(ctx: Context, row: dict[str, Any], which: str) -> bytes:
    doc_id = row[DOCUMENT_FIELDS[which]]
    if doc_id is None:
        raise NotFound()
    opened = await documents.open_document(_as_system(ctx), "customer", row["customer_id"],
                                           doc_id)
    return b"".join([piece async for piece in opened.chunks])


async def verify(ctx: Context, contract_id: Any) -> dict[str, Any]:
    """Validate the signatures of the newest signed PDF against the tenant's and the
    provider's trust roots; the result is kept on the contract and audited."""
    from plugins.contracts.esign import trust_roots

    require(ctx, "contract.read")
    async with tenant_scope(ctx, write=False):
        row = await _row(ctx, contract_id)
    which = "signed" if row["signed_document_id"] else "partial" \
        if row["partial_document_id"] else "unsigned"
    pdf = await read_pdf(ctx, row, which)
    roots = await trust_roots(ctx)
    result = await signing.async_verify_pdf(pdf, roots)
    out = {**result.as_dict(), "document": which,
           "sha256_matches": (hashlib.sha256(pdf).hexdigest() == row["signed_sha256"])
           if which == "signed" else None}
    async with tenant_scope(ctx):
        await Contract.update({Contract.verification: out}).where(
            Contract.tenant_id == ctx.tenant_id, Contract.id == row["id"]).run()
        await audit.append(ctx, "contract.verify", "contract", row["id"], {
            "ok": [None, result.ok], "document": [None, which]})
    return out
