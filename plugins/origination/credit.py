"""Credit checks (征信查询): the bureau interface, and the check an application runs.

A credit bureau is a provider: `kernel().provider("credit_bureau", tenant)` answers an
object with

    async def query(ctx, *, name, resident_id, consent_ref) -> CreditReport

The built-in provider is an HTTP client (plugins.origination.bureau_client) that talks to
the URL in the tenant's `origination.bureau_url`, or to the local bureau of the
`bureau_local` plugin when that is empty. A partner's plugin for a real bureau answers
`choose_provider("credit_bureau")` itself and is asked first.

`check(ctx, application_id)` needs `credit.query` and the customer's consent reference on
the application (refused and audited without). The report is stored encrypted as a
document of kind `credit_report` on the application, its summary in `orig_credit_check`,
and the query is audited (`credit.query`) with the bureau's report number.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from core import audit, documents, records
from core.access import SYSTEM, require
from core.errors import FieldError, ValidationFailed, XindaiError
from core.events import emit
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.origination.tables import CreditCheck

SUMMARY_KEYS = ("bureau_score", "overdue_accounts", "max_days_overdue_24m", "total_debt",
                "queries_3m", "open_accounts")

register_messages({
    "consent_required": {
        "zh-CN": "查询征信需要客户签署的征信授权书编号，请先在进件中填写“{label}”",
        "en": "a credit check needs the customer's signed consent: fill in \"{label}\" first"},
    "bureau_unavailable": {
        "zh-CN": "未配置征信服务（设置 origination.bureau_url，或启用 bureau_local 插件）",
        "en": "no credit bureau is configured (set origination.bureau_url or enable the "
              "bureau_local plugin)"},
    "bureau_refused": {
        "zh-CN": "征信机构拒绝了查询：{reason}（错误码 {bureau_code}）",
        "en": "the credit bureau refused the query: {reason} (error {bureau_code})"},
    "bureau_failed": {
        "zh-CN": "征信服务暂时无法访问：{reason}，请稍后再试",
        "en": "the credit bureau cannot be reached: {reason}; try again later"},
    "resident_id_missing": {
        "zh-CN": "客户没有身份证号，无法查询个人征信",
        "en": "the customer has no resident ID, so no personal credit report can be queried"},
})


@dataclass(frozen=True)
class CreditReport:
    """What a bureau answers: its report number, the summary figures and the document."""

    bureau: str
    report_ref: str
    summary: dict[str, Any]
    document: bytes
    content_type: str = "application/pdf"
    filename: str = "credit-report.pdf"
    raw: dict[str, Any] = field(default_factory=dict)


class CreditBureau(Protocol):
    name: str

    async def query(self, ctx: Context, *, name: str, resident_id: str,
                    consent_ref: str) -> CreditReport: ...


class BureauError(XindaiError):
    """The bureau refused the query (4xx: our request was wrong) or failed (5xx, network)."""

    status = 502
    code = "bureau_failed"


def service(ctx: Context) -> Context:
    """The same user with the service's own rights: used after the service has checked the
    user's permission, so the audit trail still names the user."""
    return replace(ctx, access=SYSTEM)


def bureau_for(ctx: Context) -> CreditBureau:
    from core.kernel import kernel

    provider = kernel().provider("credit_bureau", ctx.tenant)
    if provider is None:
        raise BureauError("bureau_unavailable")
    return provider  # type: ignore[no-any-return]


async def _refuse(ctx: Context, application_id: Any, reason: str) -> None:
    """Record a refused query in its own transaction (it must survive the error)."""
    async with tenant_scope(ctx):
        await audit.append(ctx, "credit.query_refused", "application", application_id,
                           {"reason": [None, reason]})


async def check(ctx: Context, application_id: Any) -> dict[str, Any]:
    """Query the bureau for the application's customer; returns the stored check."""
    from plugins.origination.entities import APPLICATION

    require(ctx, "credit.query")
    app = await records.get(ctx, "application", application_id)  # 404 unless visible
    if not app.get("consent_ref"):
        await _refuse(ctx, app["id"], "consent_missing")
        f = APPLICATION.field("consent_ref")
        assert f is not None
        raise ValidationFailed([FieldError("consent_ref", "consent_required", {},
                                           {"zh-CN": f.label_zh, "en": f.label_en})])
    svc = service(ctx)
    customer = await records.get(svc, "customer", app["customer_id"])
    resident_id = await records.reveal_field(svc, "customer", app["customer_id"],
                                             "resident_id")
    if not resident_id:
        raise ValidationFailed([FieldError("customer_id", "resident_id_missing")])
    bureau = bureau_for(ctx)
    try:
        report = await bureau.query(ctx, name=str(customer.get("name") or ""),
                                    resident_id=str(resident_id),
                                    consent_ref=str(app["consent_ref"]))
    except BureauError as exc:
        await _refuse(ctx, app["id"], f"bureau:{exc.params.get('bureau_code', exc.code)}")
        raise
    stored = await documents.upload(svc, "application", app["id"], "credit_report",
                                    report.filename, report.document)
    check_id = uuid.uuid4()
    summary = {k: report.summary.get(k) for k in SUMMARY_KEYS if k in report.summary}
    row = {"id": check_id, "tenant_id": ctx.tenant_id, "application_id": uuid.UUID(app["id"]),
           "customer_id": uuid.UUID(app["customer_id"]), "bureau": bureau.name,
           "report_ref": report.report_ref, "document_id": uuid.UUID(stored["id"]),
           "consent_ref": str(app["consent_ref"]), "summary": summary,
           "queried_at": datetime.now(UTC), "queried_by": ctx.user_id}
    async with tenant_scope(ctx):
        await CreditCheck.insert(CreditCheck(**row)).run()
        await records.update(svc, "application", app["id"], {"credit_report": str(check_id)})
        await audit.append(ctx, "credit.query", "application", app["id"], {
            "bureau": [None, bureau.name], "report": [None, report.report_ref],
            "document": [None, stored["id"]], "consent_ref": [None, str(app["consent_ref"])]})
        await emit(ctx, "application.credit_checked", {
            "application_id": app["id"], "credit_check_id": str(check_id),
            "bureau": bureau.name})
    return describe(row)


def describe(row: dict[str, Any]) -> dict[str, Any]:
    at = row["queried_at"]
    return {"id": str(row["id"]), "application_id": str(row["application_id"]),
            "bureau": row["bureau"], "report_ref": row["report_ref"],
            "document_id": str(row["document_id"]) if row["document_id"] else None,
            "consent_ref": row["consent_ref"], "summary": row["summary"] or {},
            "queried_at": at.isoformat() if isinstance(at, datetime) else str(at),
            "queried_by": row["queried_by"]}


async def latest(ctx: Context, application_id: Any) -> dict[str, Any] | None:
    """The application's most recent credit check (caller has checked visibility)."""
    async with tenant_scope(ctx, write=False):
        rows = await CreditCheck.select().where(
            CreditCheck.tenant_id == ctx.tenant_id,
            CreditCheck.application_id == uuid.UUID(str(application_id)),
        ).order_by(CreditCheck.queried_at, ascending=False).limit(1).output(
            load_json=True).run()
    return describe(rows[0]) if rows else None
