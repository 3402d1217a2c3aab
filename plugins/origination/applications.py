"""Applications (进件): create and edit drafts, submit with a credit check and a score, and
the status machine the approval workflow and the contract and disbursement events drive.

    draft ──submit──▶ submitted ──(workflow)──▶ in_approval ──▶ approved ──contract.signed──▶
      │                   │                         │              ready_to_disburse
      │                   └────────decided──────────┴──▶ rejected      │ loan.disbursed
      │                                             └──▶ returned      ▼
      └──withdraw (also from submitted, in_approval, returned)──▶ withdrawn   disbursed
                                          returned ──resubmit──▶ submitted

Every check that the registry cannot do happens here, before anything is written: the
product's ranges (through the `loan_products` provider of servicing), the blacklist
(`party_screen`, when a plugin offers it), the required documents and custom fields of the
product. Writes go through core.records (audit diff, `application.updated`), plus a status
history row and the domain event of the transition, in one transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core import audit, documents, records
from core.access import require
from core.errors import Conflict, FieldError, NotFound, ValidationFailed
from core.events import emit
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.origination import credit, requirements, scorecards
from plugins.origination import scorecard as sc
from plugins.origination.entities import APPLICATION, INPUT_FIELDS
from plugins.origination.tables import Application, ApplicationHistory, ApplicationScore

register_messages({
    "application_status": {
        "zh-CN": "进件当前状态为“{status}”，不能{action}",
        "en": "the application is {status}: it cannot be {action}"},
    "customer_blacklisted": {
        "zh-CN": "客户在黑名单中，不能办理进件：{reason}",
        "en": "the customer is on the blacklist and cannot apply: {reason}"},
    "documents_missing": {
        "zh-CN": "缺少必需的资料：{missing}，请先上传后再提交",
        "en": "required documents are missing: {missing}; upload them before submitting"},
    "custom_required": {"zh-CN": "{label}为该产品的必填项",
                        "en": "{label} is required for this product"},
    "products_unavailable": {
        "zh-CN": "贷款产品服务不可用（请为租户启用 servicing 插件）",
        "en": "loan products are not available (enable the servicing plugin)"},
    "product_unknown": {"zh-CN": "没有代码为 {got} 的贷款产品",
                        "en": "there is no loan product {got}"},
    "product_not_offered": {"zh-CN": "贷款产品 {got} 已停用",
                            "en": "loan product {got} is not offered any more"},
    "maker_checker": {
        "zh-CN": "提交人不能审批自己的进件（审贷分离）",
        "en": "the person who submitted an application cannot approve it (maker-checker)"},
    "outcome_invalid": {"zh-CN": "审批结论应为 approved、rejected 或 returned，收到 {got}",
                        "en": "the outcome must be approved, rejected or returned, got {got}"},
    "customer_unknown_app": {"zh-CN": "找不到该客户（或无权查看）",
                             "en": "no such customer (or not one you may see)"},
})

ACTIONS = {  # action -> (allowed from, to, zh, en)
    "submit": (("draft",), "submitted", "提交", "submitted"),
    "resubmit": (("returned",), "submitted", "重新提交", "resubmitted"),
    "edit": (("draft", "returned"), "", "修改", "edited"),
    "start_approval": (("submitted",), "in_approval", "进入审批", "put into approval"),
    "approved": (("submitted", "in_approval"), "approved", "批准", "approved"),
    "rejected": (("submitted", "in_approval"), "rejected", "拒绝", "rejected"),
    "returned": (("submitted", "in_approval"), "returned", "退回", "returned"),
    # in approval, the approvers decide (a reject ends it); withdrawing is for the officer's
    # own drafts and returned applications, so no approver is left holding a dead task
    "withdraw": (("draft", "returned"), "withdrawn", "撤回",
                 "withdrawn"),
    "contract_signed": (("approved",), "ready_to_disburse", "标记待放款",
                        "marked ready to disburse"),
    "disbursed": (("approved", "ready_to_disburse"), "disbursed", "标记已放款",
                  "marked disbursed"),
}
BUREAU_VARIABLES = {"bureau_score", "overdue_accounts", "max_days_overdue_24m", "total_debt",
                    "queries_3m", "open_accounts", "debt_to_income"}


def _label(key: str) -> dict[str, str]:
    f = APPLICATION.field(key)
    return {"zh-CN": f.label_zh, "en": f.label_en} if f else {}


def _error(key: str, code: str, **params: Any) -> FieldError:
    return FieldError(key, code, {"field": key, **params}, _label(key))


class StatusConflict(Conflict):
    """A transition the application's status does not allow (409), in the reader's words."""

    def __init__(self, status: str, action: str) -> None:
        from plugins.origination.entities import STATUSES

        choice = next((c for c in STATUSES if c.value == status), None)
        _, _, zh, en = ACTIONS[action]
        self.words = {"zh-CN": {"status": choice.zh if choice else status, "action": zh},
                      "en": {"status": choice.en if choice else status, "action": en}}
        super().__init__("application_status", **self.words["en"])

    def message(self, locale: str | None = None) -> str:
        from core.i18n import normalise_locale, t

        lang = normalise_locale(locale)
        return t(self.code, lang, **self.words.get(lang, self.words["en"]))


@dataclass
class WordedFieldError(FieldError):
    """A field error whose parameters are words of the reader's language."""

    by_locale: dict[str, dict[str, Any]] = field(default_factory=dict)

    def message(self, locale: str | None = None) -> str:
        from core.i18n import normalise_locale, t

        lang = normalise_locale(locale)
        return t(self.code, lang, **self.by_locale.get(lang, self.params))


def _allowed(app: dict[str, Any], action: str) -> None:
    if app.get("status") not in ACTIONS[action][0]:
        raise StatusConflict(str(app.get("status")), action)


# --- the product, the customer, the blacklist ---------------------------------------------

def _products(ctx: Context) -> Any:
    from core.kernel import kernel

    provider = kernel().provider("loan_products", ctx.tenant)
    if provider is None:
        raise ValidationFailed([_error("product", "products_unavailable")])
    return provider


async def quote(ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
    """The product's schedule and APR for the figures; refused figures raise
    ValidationFailed naming amount, periods or annual_rate with the product's limits."""
    provider = _products(ctx)
    code = str(values.get("product") or "")
    if not code:
        raise ValidationFailed([_error("product", "required")])
    try:
        product = await provider.get(ctx, code)
    except NotFound:
        raise ValidationFailed([_error("product", "product_unknown", got=code)]) from None
    if not product.get("active", True):
        raise ValidationFailed([_error("product", "product_not_offered", got=code)])

    def text(key: str) -> Any:
        raw = values.get(key)
        return raw if raw is None or isinstance(raw, int | str) else format(raw, "f") \
            if isinstance(raw, Decimal) else str(raw)

    return await provider.quote(ctx, code, text("amount"), text("periods"),
                                annual_rate=values.get("annual_rate") or None)


async def _customer(ctx: Context, customer_id: Any) -> dict[str, Any]:
    try:
        return await records.get(ctx, "customer", customer_id)
    except NotFound:
        raise ValidationFailed([_error("customer_id", "customer_unknown_app")]) from None


async def screen(ctx: Context, customer_id: Any, stage: str,
                 application_id: Any = None) -> None:
    """Refuse a blacklisted customer (when a plugin offers `party_screen`), audited as
    `application.blocked` in its own transaction so the record survives the refusal."""
    from core.kernel import kernel

    screener = kernel().provider("party_screen", ctx.tenant)
    if screener is None:
        return
    hit = await screener.check(ctx, customer_id=str(customer_id))
    if not hit:
        return
    async with tenant_scope(ctx):
        await audit.append(ctx, "application.blocked", "customer", customer_id, {
            "stage": [None, stage], "entry": [None, str(hit.get("entry_id") or "")],
            "application": [None, str(application_id) if application_id else None]})
    raise ValidationFailed([_error("customer_id", "customer_blacklisted",
                                   reason=str(hit.get("reason") or ""))])


# --- create and edit ------------------------------------------------------------------------

async def _input(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """The keys a user may give: the input fields and the tenant's custom fields."""
    entity = await records.entity_for(ctx, "application")
    custom = {f.key for f in entity.fields if f.custom}
    unknown = [k for k in data if k not in INPUT_FIELDS and k not in custom]
    if unknown:
        raise ValidationFailed([records.field_error(entity, k, "readonly_field"
                                                    if entity.field(k) else "unknown_field")
                                for k in unknown])
    return {k: v for k, v in data.items()}


async def _next_number(ctx: Context, on: date) -> str:
    prefix = f"SQ{on:%Y%m%d}-"
    count = await Application.count().where(Application.tenant_id == ctx.tenant_id,
                                            Application.number.like(f"{prefix}%"))
    return f"{prefix}{count + 1:04d}"


async def create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """A new draft application; refused (nothing written) outside the product's ranges,
    for an unknown or invisible customer, or a blacklisted one."""
    require(ctx, "application.create")
    values = await _input(ctx, data)
    if not values.get("customer_id"):
        raise ValidationFailed([_error("customer_id", "required")])
    customer = await _customer(ctx, values["customer_id"])
    await quote(ctx, values)
    await screen(ctx, customer["id"], "create")
    async with tenant_scope(ctx):
        number = await _next_number(ctx, ctx.tenant.business_date)
        app = await records.create(ctx, "application", {
            **values, "number": number, "status": "draft",
            "region": customer.get("region")})
        await _history(ctx, app["id"], None, "draft", None)
    return app


async def update(ctx: Context, application_id: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Change a draft (or a returned application): the same checks as `create`."""
    require(ctx, "application.update")
    app = await records.get(ctx, "application", application_id)
    _allowed(app, "edit")
    values = await _input(ctx, data)
    merged = {**app, **values}
    if "customer_id" in values:
        customer = await _customer(ctx, values["customer_id"])
        values["region"] = customer.get("region")
        await screen(ctx, customer["id"], "edit", app["id"])
    await quote(ctx, merged)
    return await records.update(ctx, "application", app["id"], values,
                                expected_version=app["version"])


# --- requirements ---------------------------------------------------------------------------

async def checklist(ctx: Context, app: dict[str, Any]) -> list[dict[str, Any]]:
    """Each required document kind, ticked when the customer or the application has one."""
    need = await requirements.for_product(ctx, str(app.get("product") or ""))
    have: dict[str, str] = {}
    for doc in await documents.list_documents(ctx, "application", app["id"]):
        have.setdefault(doc["kind"], "application")
    try:
        for doc in await documents.list_documents(ctx, "customer", app["customer_id"]):
            have.setdefault(doc["kind"], "customer")
    except NotFound:
        pass
    return [{"kind": k, "label_zh": documents.KINDS[k][0], "label_en": documents.KINDS[k][1],
             "present": k in have, "where": have.get(k)} for k in need["documents"]]


def _missing_custom(entity: Any, app: dict[str, Any], keys: list[str]) -> list[FieldError]:
    out = []
    for key in keys:
        f = entity.field(key)
        if f is not None and app.get(key) in (None, "", []):
            out.append(FieldError(key, "custom_required", {"field": key},
                                  {"zh-CN": f.label_zh, "en": f.label_en}))
    return out


# --- scoring -------------------------------------------------------------------------------

def _number(value: Any) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except InvalidOperation:
        return None


def _age(resident_id: str, on: date) -> int | None:
    from core.validators import InvalidValue, check_resident_id, resident_id_birth_date

    try:
        born = resident_id_birth_date(check_resident_id(resident_id))
    except InvalidValue:
        return None
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def score_values(app: dict[str, Any], customer: dict[str, Any],
                 summary: dict[str, Any] | None, quoted_rate: Any = None,
                 age: int | None = None) -> dict[str, Any]:
    """The scorecard's variables (scorecard.VARIABLES) for one application."""
    summary = summary or {}
    income = _number(customer.get("annual_income"))
    amount = _number(app.get("amount"))
    debt = _number(summary.get("total_debt"))
    region = str(customer.get("region") or app.get("region") or "")
    return {
        "amount": amount, "periods": app.get("periods"),
        "annual_rate": _number(app.get("annual_rate") or quoted_rate),
        "product": app.get("product"), "customer_kind": customer.get("kind"),
        "industry": customer.get("industry"), "gender": customer.get("gender"),
        "region": region or None, "province": region[:2] or None, "age": age,
        "annual_income": income,
        **{k: summary.get(k) for k in credit.SUMMARY_KEYS},
        "debt_to_income": (debt / income).quantize(Decimal("0.0001"))
        if debt is not None and income else None,
        "amount_to_income": (amount / income).quantize(Decimal("0.0001"))
        if amount is not None and income else None,
    }


async def _score(ctx: Context, app: dict[str, Any], summary: dict[str, Any] | None,
                 quoted_rate: Any) -> tuple[sc.Result, str, int] | None:
    chosen = await scorecards.card_for(ctx, str(app["product"]))
    if chosen is None:
        return None
    card, version = chosen
    svc = credit.service(ctx)
    customer = await records.get(svc, "customer", app["customer_id"])
    age = None
    if any(v.key == "age" for v in card.variables):
        rid = await records.reveal_field(svc, "customer", app["customer_id"], "resident_id")
        age = _age(str(rid or ""), ctx.tenant.business_date)
    result = sc.score(card, score_values(app, customer, summary, quoted_rate, age))
    return result, card.code, version


# --- transitions ----------------------------------------------------------------------------

async def _history(ctx: Context, application_id: Any, before: str | None, after: str,
                   comment: str | None) -> None:
    await ApplicationHistory.insert(ApplicationHistory(
        tenant_id=ctx.tenant_id, application_id=uuid.UUID(str(application_id)),
        at=datetime.now(UTC), actor=ctx.user_id, actor_name=(ctx.username or "")[:100] or None,
        from_status=before, to_status=after, comment=(comment or "")[:1000] or None)).run()


async def _move(ctx: Context, app: dict[str, Any], action: str,
                extra: dict[str, Any] | None = None, comment: str | None = None
                ) -> dict[str, Any]:
    """Change the status (and `extra` fields) in the caller's transaction, with history."""
    _allowed(app, action)
    to = ACTIONS[action][1]
    updated = await records.update(credit.service(ctx), "application", app["id"],
                                   {"status": to, **(extra or {})},
                                   expected_version=app["version"])
    await _history(ctx, app["id"], app["status"], to, comment)
    return updated


def payload(app: dict[str, Any], **more: Any) -> dict[str, Any]:
    """The common event payload: ids and figures, no personal data."""
    return {"application_id": app["id"], "number": app["number"],
            "customer_id": app["customer_id"], "product": app["product"],
            "amount": app["amount"], "periods": app["periods"],
            "annual_rate": app.get("annual_rate"), **more}


async def submit(ctx: Context, application_id: Any, resubmission: bool = False
                 ) -> dict[str, Any]:
    """Validate (status, ranges, blacklist, required fields and documents), run the credit
    check if none yet, score, set `submitted` and emit `application.submitted`."""
    action = "resubmit" if resubmission else "submit"
    require(ctx, "application.submit")
    app = await records.get(ctx, "application", application_id)
    _allowed(app, action)
    quoted = await quote(ctx, app)
    await screen(ctx, app["customer_id"], action, app["id"])
    need = await requirements.for_product(ctx, str(app["product"]))
    entity = await records.entity_for(ctx, "application")
    errors = _missing_custom(entity, app, need["fields"])
    if errors:
        raise ValidationFailed(errors)
    last = await credit.latest(ctx, app["id"])
    bureau = None
    if last is None:
        try:
            bureau = credit.bureau_for(ctx)
        except credit.BureauError:
            bureau = None
    missing = [c for c in await checklist(ctx, app) if not c["present"]
               and not (c["kind"] == "credit_report" and bureau is not None)]
    if missing:
        zh, en = "、".join(c["label_zh"] for c in missing), ", ".join(c["label_en"] for c in missing)
        raise ValidationFailed([WordedFieldError(
            "documents", "documents_missing", {"missing": en}, {},
            {"zh-CN": {"missing": zh}, "en": {"missing": en}})])
    if last is None and bureau is not None:
        last = await credit.check(ctx, app["id"])
        app = await records.get(ctx, "application", app["id"])
    scored = await _score(ctx, app, (last or {}).get("summary"), quoted.get("annual_rate"))
    async with tenant_scope(ctx):
        extra: dict[str, Any] = {"submitted_by": ctx.user_id,
                                 "submitted_at": datetime.now(UTC).isoformat(),
                                 "decided_by": None}
        if scored:
            result, code, version = scored
            extra.update(score=result.score, grade=result.grade)
            await ApplicationScore.insert(ApplicationScore(
                tenant_id=ctx.tenant_id, application_id=uuid.UUID(app["id"]),
                scorecard=code, scorecard_version=version, score=result.score,
                grade=result.grade, breakdown=result.breakdown,
                scored_at=datetime.now(UTC))).run()
        app = await _move(ctx, app, action, extra)
        from plugins.origination import application_approval  # it imports this module

        app = await application_approval.submitted(ctx, app, resubmission)
        await emit(ctx, "application.submitted", payload(
            app, grade=app.get("grade"), score=app.get("score"), region=app.get("region"),
            submitted_by=ctx.user_id, resubmitted=resubmission))
    return app


async def resubmit(ctx: Context, application_id: Any) -> dict[str, Any]:
    """Submit a returned application again (same checks; a new score)."""
    return await submit(ctx, application_id, resubmission=True)


async def start_approval(ctx: Context, application_id: Any) -> dict[str, Any]:
    """submitted -> in_approval (the approval workflow started)."""
    async with tenant_scope(ctx):
        app = await records.get(credit.service(ctx), "application", application_id)
        return await _move(ctx, app, "start_approval")


async def decided(ctx: Context, application_id: Any, outcome: str, comment: str,
                  decided_by: str) -> dict[str, Any]:
    """The approval's outcome: `approved`, `rejected` or `returned` (for more
    information). The submitter may not approve their own application."""
    if outcome not in ("approved", "rejected", "returned"):
        raise ValidationFailed([FieldError("outcome", "outcome_invalid", {"got": outcome})])
    async with tenant_scope(ctx):
        app = await records.get(credit.service(ctx), "application", application_id)
        if outcome == "approved" and decided_by and decided_by == app.get("submitted_by"):
            raise ValidationFailed([FieldError("decided_by", "maker_checker")])
        app = await _move(ctx, app, outcome, {"decided_by": decided_by}, comment)
        body = payload(app) if outcome == "approved" else payload(
            app, comment=comment, decided_by=decided_by)
        await emit(ctx, f"application.{outcome}", body)
    return app


async def withdraw(ctx: Context, application_id: Any, comment: str = "") -> dict[str, Any]:
    require(ctx, "application.submit")
    app = await records.get(ctx, "application", application_id)  # own/branch only
    async with tenant_scope(ctx):
        app = await _move(ctx, app, "withdraw", comment=comment)
        await emit(ctx, "application.withdrawn", payload(app))
    return app


async def on_contract_signed(ctx: Context, data: dict[str, Any]) -> None:
    """`contract.signed` {contract_id, application_id}: the loan may be disbursed; finance
    is told through the event's `notify` key."""
    if not data.get("application_id"):
        return
    async with tenant_scope(ctx):  # the worker runs handlers in one; direct calls too
        app = await records.get(ctx, "application", data["application_id"])
        if app["status"] == "ready_to_disburse":
            return  # delivered twice
        app = await _move(ctx, app, "contract_signed",
                          comment=f"contract {data.get('contract_id') or ''}".strip())
        await emit(ctx, "application.ready_to_disburse", {
            **payload(app, contract_id=data.get("contract_id")),
            "notify": {"roles": ["finance"],
                       "title": {"zh-CN": f"进件 {app['number']} 合同已签署，待放款",
                                 "en": f"Application {app['number']} ready to disburse"},
                       "link": f"/applications/{app['id']}"}})


async def on_loan_disbursed(ctx: Context, data: dict[str, Any]) -> None:
    """`loan.disbursed` carrying an application_id: the application is done."""
    if not data.get("application_id"):
        return
    async with tenant_scope(ctx):
        app = await records.get(ctx, "application", data["application_id"])
        if app["status"] == "disbursed":
            return
        app = await _move(ctx, app, "disbursed", {}, f"loan {data.get('loan_id') or ''}".strip())
        await emit(ctx, "application.disbursed", payload(app, loan_id=data.get("loan_id")))


# --- reading -------------------------------------------------------------------------------

async def history(ctx: Context, application_id: Any) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        rows = await ApplicationHistory.select().where(
            ApplicationHistory.tenant_id == ctx.tenant_id,
            ApplicationHistory.application_id == uuid.UUID(str(application_id)),
        ).order_by(ApplicationHistory.at).run()
    return [{**r, "id": str(r["id"]), "application_id": str(r["application_id"]),
             "at": r["at"].isoformat() if isinstance(r["at"], datetime) else str(r["at"])}
            for r in rows]


async def latest_score(ctx: Context, application_id: Any) -> dict[str, Any] | None:
    async with tenant_scope(ctx, write=False):
        rows = await ApplicationScore.select().where(
            ApplicationScore.tenant_id == ctx.tenant_id,
            ApplicationScore.application_id == uuid.UUID(str(application_id)),
        ).order_by(ApplicationScore.scored_at, ascending=False).limit(1).output(
            load_json=True).run()
    if not rows:
        return None
    r = rows[0]
    return {"scorecard": r["scorecard"], "version": r["scorecard_version"],
            "score": r["score"], "grade": r["grade"], "breakdown": r["breakdown"] or [],
            "scored_at": r["scored_at"].isoformat() if isinstance(r["scored_at"], datetime)
            else str(r["scored_at"])}


async def detail(ctx: Context, application_id: Any) -> dict[str, Any]:
    """Everything the application page and `GET .../detail` show, as ctx may see it."""
    require(ctx, "application.read")
    app = await records.get(ctx, "application", application_id)
    return {"application": app, "checklist": await checklist(ctx, app),
            "credit_check": await credit.latest(ctx, app["id"]),
            "score": await latest_score(ctx, app["id"]),
            "history": await history(ctx, app["id"])}
