"""The product editor (permission product.manage; mounted by `register_pages` beside PAGES):

    GET  /servicing/products/new            a new product's form, with a live preview
    POST /servicing/products/new            create it (or, with `op`, add or remove a fee
                                            row, move an allocation component: no saving)
    GET  /servicing/products/{code}/edit    a product's settings in the same form
    POST /servicing/products/{code}/edit    save them: the version goes up; loans keep the
                                            terms frozen at their disbursement
    POST /servicing/product-editor/preview  htmx: the schedule and APR of the unsaved form

The form covers every setting of a product's configuration (plugins.servicing.products):
ranges, the rate's unit (`rate_quote`), the schedule conventions, fees, penalty, allocation,
prepayment, overpayment and the classification floors. The form's fields are turned into a
configuration here; whether it is valid is for `products.validate_config` to say (its
refusals are shown next to their field, in the person's language), and the preview is
`products.quote` of what the form holds, so the editor shows exactly what saving would
keep. Rows are added, removed and moved by the server (htmx swaps the settings in place;
without JavaScript the page comes back whole): the pages run no script of their own.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath
from litestar.response import Redirect

from core.errors import FieldError, ValidationFailed
from core.i18n import register_messages
from core.tenancy import Context
from core.web.context import CurrentContext
from core.web.ui.i18n import N_, gettext_for
from core.web.ui.render import render
from plugins.servicing import products
from plugins.servicing.pages import METHODS, UI, _defaults, _errors, _quote, money
from plugins.servicing.request import DEFAULTS

MANAGE = {"permission": "product.manage"}
CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
RESERVED = {"new"}  # /servicing/products/new is the editor
MAX_FEES = 20

TEXT_FIELDS = (
    "name", "amount_min", "amount_max", "term_min", "term_max", "rate_quote", "rate_min",
    "rate_max", "rate_default", "method", "frequency", "every", "interest_basis", "day_count",
    "rounding_digits", "rounding_multiple", "grace_principal", "grace_interest", "grace_free",
    "penalty_kind", "penalty_value", "penalty_grace_days", "alloc_mode", "prepay_after",
    "prepay_fee", "prepay_mode", "overpayment", "class_attention", "class_substandard",
    "class_doubtful", "class_loss", "sample_amount", "sample_periods", "sample_rate")
CHECKBOXES = ("active", "penalty_compound")
FEE_KEYS = ("name", "kind", "value", "when")
FEE_RE = re.compile(r"fee-(\d{1,2})-(name|kind|value|when)")

RATE_QUOTES = {"annual": N_("Percent a year (annual rate)"),
               "daily_wan": N_("Per ten thousand a day (daily rate, 万分之)")}
FREQUENCIES = {"month": N_("Month"), "week": N_("Week"), "day": N_("Day")}
BASES = {"per_period": N_("By period"), "daily": N_("By day")}
DAY_COUNTS = {"30/360": "30/360", "actual/360": "actual/360", "actual/365": "actual/365",
              "actual/364": "actual/364", "actual/actual": "actual/actual"}
FEE_KINDS = {"amount": N_("Flat (CNY)"), "percent": N_("Percent of principal")}
FEE_WHEN = {"disbursement": N_("At disbursement"), "each_period": N_("Each period")}
PENALTY_KINDS = {"multiplier": N_("Multiple of the contract rate"),
                 "annual_rate": N_("Fixed annual rate (%)")}
COMPONENTS = {"fees": N_("Fees"), "penalty": N_("Penalty interest"),
              "compound": N_("Compound interest"), "interest": N_("Interest"),
              "principal": N_("Principal")}
ALLOC_MODES = {"period_first": N_("Period first"), "item_first": N_("Component first")}
PREPAY_MODES = {"reduce_term": N_("Shorten the term"),
                "reduce_installment": N_("Lower the instalment")}
OVERPAYMENTS = {"credit": N_("Keep as the customer's credit"), "refuse": N_("Refuse")}
CLASS_FIELDS = {"attention": "class_attention", "substandard": "class_substandard",
                "doubtful": "class_doubtful", "loss": "class_loss"}
CLASS_LABELS = {"attention": N_("Special mention (关注) from day"),
                "substandard": N_("Substandard (次级) from day"),
                "doubtful": N_("Doubtful (可疑) from day"), "loss": N_("Loss (损失) from day")}

register_messages({
    "product_code_invalid": {
        "zh-CN": "产品代码须以字母或数字开头，只含字母、数字、- 和 _，最多 32 个字符（不能是 new）",
        "en": "the product code must start with a letter or digit and hold only letters, "
              "digits, - and _, at most 32 characters (and not new)"},
    "product_code_taken": {"zh-CN": "已有代码为 {product} 的产品；请换一个代码，或编辑该产品",
                           "en": "a product with code {product} exists; choose another code or "
                                 "edit that product"},
    "product_changed": {"zh-CN": "该产品已被他人修改（现为第 {version} 版）；请重新打开后再改",
                        "en": "someone changed this product meanwhile (now version {version}); "
                              "open it again and redo the change"},
    "product_fee_value": {"zh-CN": "{label}应为不小于 0 的数字，收到 {got}",
                          "en": "{label} must be a number of at least 0, got {got}"},
    "product_name_length": {"zh-CN": "产品名称须为 1 到 100 个字符",
                            "en": "the product name must be 1 to 100 characters"},
})

# the form's fields by name: (zh-CN, en) labels for the refusals made here
LABELS = {
    "code": ("产品代码", "product code"), "name": ("产品名称", "product name"),
    "every": ("间隔", "every"), "rounding_digits": ("小数位数", "decimal places"),
    "rounding_multiple": ("月供取整单位", "instalment multiple"),
    "grace_principal": ("本金宽限期数", "principal grace periods"),
    "grace_interest": ("利息宽限期数", "interest grace periods"),
    "grace_free": ("免息期数", "interest-free periods"),
    "penalty_value": ("罚息利率", "penalty rate"),
    "penalty_grace_days": ("罚息宽限天数", "penalty grace days"),
    "prepay_after": ("可提前还款的期数", "periods before prepayment"),
    "prepay_fee": ("提前还款手续费（%）", "prepayment fee (%)"),
    "class_attention": ("关注", "special mention"), "class_substandard": ("次级", "substandard"),
    "class_doubtful": ("可疑", "doubtful"), "class_loss": ("损失", "loss"),
    "fee_name": ("费用名称", "fee name"), "fee_value": ("费用金额或比例", "fee amount or percent"),
    "sample_amount": ("试算金额", "sample amount"), "sample_periods": ("试算期数", "sample term"),
}
# validate_config's and the engine's field names -> the form's
FIELD_OF = {
    "config": "form", "request": "form", "allocation": "allocation", "penalty": "penalty",
    "classification": "classification", "overpayment": "overpayment", "fees": "fees",
    "rounding.digits": "rounding_digits", "rounding.installment_multiple": "rounding_multiple",
    "rounding": "rounding_digits", "grace.principal_periods": "grace_principal",
    "grace.interest_periods": "grace_interest", "grace.interest_free_periods": "grace_free",
    "grace": "grace_principal", "annual_rate": "rate_default", "principal": "amount_min",
    "periods": "term_min", "prepayment": "prepayment",
}


def _err(field: str, message: str, /, **params: Any) -> FieldError:
    key = re.sub(r"fee-\d+-", "fee_", field)
    zh, en = LABELS.get(key, (field, field))
    return FieldError(field, message, params, {"zh-CN": zh, "en": en})


def _form_field(field: str) -> str:
    """The form's field for a refusal of validate_config or the engine."""
    fee = re.fullmatch(r"fees\[(\d+)\]\.(\w+)", field)
    if fee:
        return f"fee-{fee.group(1)}-" + ("value" if fee.group(2) in ("amount", "percent")
                                         else fee.group(2))
    return FIELD_OF.get(field, field)


# --- the form's values ---------------------------------------------------------------------

def _text(value: Any) -> str:
    return "" if value is None else str(value)


def values_of(product: dict[str, Any] | None) -> dict[str, Any]:
    """The form's values for a product (or a new one: the usual settings, empty ranges)."""
    c: dict[str, Any] = {**products.DEFAULT_RULES, **{k: DEFAULTS[k] for k in
                                                      products.SCHEDULE_KEYS}}
    if product:
        c.update(product["config"])
    rounding = {**DEFAULTS["rounding"], **(c.get("rounding") or {})}
    grace = {**DEFAULTS["grace"], **(c.get("grace") or {})}
    penalty, alloc = c.get("penalty") or {}, c.get("allocation") or {}
    prepay = {**products.DEFAULT_RULES["prepayment"], **(c.get("prepayment") or {})}
    classes = c.get("classification") or {}
    fixed = penalty.get("annual_rate") not in (None, "")
    out: dict[str, Any] = {
        "code": product["code"] if product else "", "name": product["name"] if product else "",
        "active": product["active"] if product else True,
        **{k: _text(c.get(k)) for k in ("amount_min", "amount_max", "term_min", "term_max",
                                        "rate_min", "rate_max", "rate_default")},
        "rate_quote": c.get("rate_quote") or "annual", "method": c["method"],
        "frequency": c["frequency"], "every": _text(c["every"]),
        "interest_basis": c["interest_basis"], "day_count": c["day_count"],
        "rounding_digits": _text(rounding["digits"]),
        "rounding_multiple": _text(rounding["installment_multiple"]),
        "grace_principal": _text(grace["principal_periods"]),
        "grace_interest": _text(grace["interest_periods"]),
        "grace_free": _text(grace["interest_free_periods"]),
        "penalty_kind": "annual_rate" if fixed else "multiplier",
        "penalty_value": _text(penalty.get("annual_rate") if fixed
                               else penalty.get("multiplier", "1.5")),
        "penalty_compound": bool(penalty.get("compound", True)),
        "penalty_grace_days": _text(penalty.get("grace_days", 0)),
        "alloc": list(alloc.get("order") or products.COMPONENTS),
        "alloc_mode": alloc.get("mode", "period_first"),
        "prepay_after": _text(prepay.get("after_periods", 0)),
        "prepay_fee": _text(prepay.get("fee_percent", "0")),
        "prepay_mode": prepay.get("mode", "reduce_term"),
        "overpayment": c.get("overpayment", "credit"),
        **{field: _text(classes.get(cls)) for cls, field in CLASS_FIELDS.items()},
        "fees": [{"name": _text(f.get("name")),
                  "kind": "percent" if f.get("percent") not in (None, "") else "amount",
                  "value": _text(f.get("percent") if f.get("percent") not in (None, "")
                                 else f.get("amount")),
                  "when": f.get("when", "disbursement")} for f in c.get("fees") or []],
        "sample_amount": "", "sample_periods": "", "sample_rate": "",
    }
    return out


def values_from(form: FormMultiDict) -> dict[str, Any]:
    """The form's values as sent (strings, trimmed and cut to a sane length)."""
    out: dict[str, Any] = {k: str(form.get(k) or "").strip()[:100] for k in TEXT_FIELDS}
    out["code"] = str(form.get("code") or "").strip()[:40]
    out.update({k: form.get(k) in ("on", "true", "1") for k in CHECKBOXES})
    rows: dict[int, dict[str, str]] = {}
    for key in form:
        m = FEE_RE.fullmatch(key)
        if m and int(m.group(1)) < MAX_FEES:
            rows.setdefault(int(m.group(1)), {k: "" for k in FEE_KEYS})[m.group(2)] = str(
                form.get(key) or "").strip()[:100]
    out["fees"] = [rows[i] for i in sorted(rows)]
    out["alloc"] = [str(form.get(f"alloc-{i}") or "") for i in range(len(products.COMPONENTS))]
    return out


def apply_op(values: dict[str, Any], op: str) -> None:
    """Add or remove a fee row, move an allocation component up or down; any other op
    (`refresh`: the rate's unit changed) only renders the form again."""
    kind, _, arg = op.partition(":")
    index = int(arg) if arg.isdigit() else -1
    fees, alloc = values["fees"], values["alloc"]
    if kind == "add_fee" and len(fees) < MAX_FEES:
        fees.append({"name": "", "kind": "percent", "value": "", "when": "disbursement"})
    elif kind == "remove_fee" and 0 <= index < len(fees):
        del fees[index]
    elif kind == "up" and 0 < index < len(alloc):
        alloc[index - 1], alloc[index] = alloc[index], alloc[index - 1]
    elif kind == "down" and 0 <= index < len(alloc) - 1:
        alloc[index], alloc[index + 1] = alloc[index + 1], alloc[index]


def _integer(v: dict[str, Any], key: str, errors: list[FieldError]) -> int | None:
    raw = v[key]
    if not raw.isdigit() or len(raw) > 6:
        errors.append(_err(key, "required") if raw == "" else _err(
            key, "integer_invalid", got=repr(raw)))
        return None
    return int(raw)


def _number(v: dict[str, Any], key: str, errors: list[FieldError]) -> str | None:
    raw = v[key]
    try:
        ok = raw != "" and Decimal(raw).is_finite() and Decimal(raw) >= 0
    except InvalidOperation:
        ok = False
    if not ok:
        errors.append(_err(key, "required") if raw == "" else _err(
            key, "product_fee_value", got=repr(raw)))
        return None
    return raw


def config_from(v: dict[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """The product configuration the form describes, and what the form itself refuses
    (missing or non-numeric figures); everything else is validate_config's to judge."""
    errors: list[FieldError] = []
    config: dict[str, Any] = {}
    for key in ("amount_min", "amount_max", "rate_min", "rate_max"):
        config[key] = v[key]
        if v[key] == "":
            errors.append(FieldError(key, "required", {}, {
                "zh-CN": products.LABELS[key][0], "en": products.LABELS[key][1]}))
    if v["rate_default"]:
        config["rate_default"] = v["rate_default"]
    for key in ("term_min", "term_max"):
        config[key] = v[key] if v[key] else None
        if v[key] == "":
            errors.append(FieldError(key, "required", {}, {
                "zh-CN": products.LABELS[key][0], "en": products.LABELS[key][1]}))
    if v["rate_quote"] != "annual":
        config["rate_quote"] = v["rate_quote"]
    config.update(method=v["method"], frequency=v["frequency"],
                  every=_integer(v, "every", errors), interest_basis=v["interest_basis"],
                  day_count=v["day_count"])
    config["rounding"] = {"digits": _integer(v, "rounding_digits", errors),
                          "installment_multiple": _number(v, "rounding_multiple", errors)}
    config["grace"] = {"principal_periods": _integer(v, "grace_principal", errors),
                       "interest_periods": _integer(v, "grace_interest", errors),
                       "interest_free_periods": _integer(v, "grace_free", errors)}
    fees = []
    for i, fee in enumerate(v["fees"]):
        if not (fee["name"] or fee["value"]):
            continue  # an empty row is no fee
        key = f"fee-{i}-value"
        value = _number({key: fee["value"]}, key, errors)
        fees.append({"name": fee["name"] or "", fee["kind"] if fee["kind"] in FEE_KINDS
                     else "amount": value, "when": fee["when"]})
    config["fees"] = fees
    penalty_kind = v["penalty_kind"] if v["penalty_kind"] in PENALTY_KINDS else "multiplier"
    config["penalty"] = {penalty_kind: _number(v, "penalty_value", errors),
                         "compound": v["penalty_compound"],
                         "grace_days": _integer(v, "penalty_grace_days", errors)}
    config["allocation"] = {"order": v["alloc"], "mode": v["alloc_mode"]}
    config["prepayment"] = {"after_periods": _integer(v, "prepay_after", errors),
                            "fee_percent": _number(v, "prepay_fee", errors),
                            "mode": v["prepay_mode"]}
    config["overpayment"] = v["overpayment"]
    floors = {cls: v[field] for cls, field in CLASS_FIELDS.items()}
    if any(floors.values()):  # all four or none: validate_config says so
        config["classification"] = floors
    return config, errors


def _check_identity(v: dict[str, Any], new: bool, existing: set[str]) -> list[FieldError]:
    errors = []
    if new:
        if not v["code"]:
            errors.append(_err("code", "required"))
        elif not CODE_RE.fullmatch(v["code"]) or v["code"].lower() in RESERVED:
            errors.append(_err("code", "product_code_invalid"))
        elif v["code"] in existing:
            errors.append(_err("code", "product_code_taken", product=v["code"]))
    if not v["name"]:
        errors.append(_err("name", "required"))
    elif len(v["name"]) > 100:
        errors.append(_err("name", "product_name_length"))
    return errors


def checked(v: dict[str, Any]) -> dict[str, Any]:
    """The complete configuration (validate_config's), or ValidationFailed by form field."""
    config, errors = config_from(v)
    if errors:
        raise ValidationFailed(errors)
    try:
        return products.validate_config(config)
    except ValidationFailed as exc:
        raise ValidationFailed([FieldError(_form_field(e.field), e.code, e.params, e.labels)
                                for e in exc.errors]) from None


def preview(ctx: Context, v: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str],
                                                     dict[str, str]]:
    """The quote of the unsaved form: (quote, the figures used, refusals by field)."""
    try:
        config = checked(v)
    except ValidationFailed as exc:
        return None, {}, _errors(exc, ctx.locale)
    sample = _defaults({"config": config})
    figures = {"amount": v["sample_amount"] or sample["amount"],
               "periods": v["sample_periods"] or sample["periods"],
               "annual_rate": v["sample_rate"]}  # empty: the product's default rate
    try:
        quote = _quote({"config": config}, ctx, figures)
    except ValidationFailed as exc:
        errors = {{"amount": "sample_amount", "periods": "sample_periods",
                   "annual_rate": "sample_rate"}.get(k, k): m
                  for k, m in _errors(exc, ctx.locale).items()}
        return None, figures, errors
    return quote, figures, {}


# --- pages ----------------------------------------------------------------------------------

def _options(lang: str) -> dict[str, Any]:
    _ = gettext_for(lang)

    def tr(labels: dict[str, str]) -> list[tuple[str, str]]:
        return [(k, _(text)) for k, text in labels.items()]

    return {"methods": tr(METHODS), "rate_quotes": tr(RATE_QUOTES),
            "frequencies": tr(FREQUENCIES), "bases": tr(BASES),
            "day_counts": list(DAY_COUNTS.items()), "fee_kinds": tr(FEE_KINDS),
            "fee_when": tr(FEE_WHEN), "penalty_kinds": tr(PENALTY_KINDS),
            "components": dict(tr(COMPONENTS)), "alloc_modes": tr(ALLOC_MODES),
            "prepay_modes": tr(PREPAY_MODES), "overpayments": tr(OVERPAYMENTS),
            "class_labels": {f: _(CLASS_LABELS[c]) for c, f in CLASS_FIELDS.items()}}


def _editor(request: Request[Any, Any, Any], ctx: Context, values: dict[str, Any],
            product: dict[str, Any] | None, errors: dict[str, str] | None = None,
            status: int = 200) -> Response[Any]:
    quote, figures, preview_errors = preview(ctx, values)
    new = product is None
    return render(request, "servicing/product_edit.html", status=status, values=values,
                  errors=errors or {}, product=product, new=new,
                  action="/servicing/products/new" if new
                  else f"/servicing/products/{product['code']}/edit",  # type: ignore[index]
                  quote=quote, figures=figures, preview_errors=preview_errors, money=money,
                  business_date=ctx.tenant.business_date.isoformat(), **_options(ctx.locale))


@get("/servicing/products/new", opt=MANAGE, **UI)
async def product_new(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    return _editor(request, ctx, values_of(None), None)


@get("/servicing/products/{code:str}/edit", opt=MANAGE, **UI)
async def product_edit(request: Request[Any, Any, Any], ctx: CurrentContext,
                       code: FromPath[str]) -> Response[Any]:
    product = await products.get_product(ctx, code)
    return _editor(request, ctx, {**values_of(product), "version": str(product["version"])},
                   product)


async def _submit(request: Request[Any, Any, Any], ctx: Context,
                  product: dict[str, Any] | None) -> Response[Any]:
    form = await request.form()
    values = values_from(form)
    if product:
        values.update(code=product["code"], version=str(form.get("version") or ""))
    op = str(form.get("op") or "save")
    if op != "save":  # a row added, removed or moved: the form comes back, nothing saved
        apply_op(values, op)
        return _editor(request, ctx, values, product)
    existing = {p["code"] for p in await products.list_products(ctx)}
    errors = _check_identity(values, product is None, existing)
    try:
        config = checked(values)
    except ValidationFailed as exc:
        errors += exc.errors
    if product and not errors:
        current = await products.get_product(ctx, product["code"])
        if values["version"] != str(current["version"]):
            errors.append(_err("form", "product_changed", version=current["version"]))
        elif (current["name"], current["config"], current["active"]) == (
                values["name"], config, values["active"]):
            return Redirect(f"/servicing/products/{product['code']}?saved=same",
                            status_code=303)
    if errors:
        return _editor(request, ctx, values, product,
                       _errors(ValidationFailed(errors), ctx.locale), status=422)
    saved = await products.save_product(ctx, values["code"], values["name"], config,
                                        values["active"])
    return Redirect(f"/servicing/products/{saved['code']}?saved={saved['version']}",
                    status_code=303)


@post("/servicing/products/new", opt=MANAGE, status_code=200, **UI)
async def product_create(request: Request[Any, Any, Any], ctx: CurrentContext
                         ) -> Response[Any]:
    return await _submit(request, ctx, None)


@post("/servicing/products/{code:str}/edit", opt=MANAGE, status_code=200, **UI)
async def product_update(request: Request[Any, Any, Any], ctx: CurrentContext,
                         code: FromPath[str]) -> Response[Any]:
    return await _submit(request, ctx, await products.get_product(ctx, code))


@post("/servicing/product-editor/preview", opt=MANAGE, status_code=200, **UI)
async def product_editor_preview(request: Request[Any, Any, Any], ctx: CurrentContext
                                 ) -> Response[Any]:
    """htmx: the preview of the form as it stands (nothing is saved)."""
    values = values_from(await request.form())
    quote, figures, errors = preview(ctx, values)
    return render(request, "servicing/_product_preview.html", values=values, quote=quote,
                  figures=figures, preview_errors=errors, money=money,
                  status=200 if quote else 422)


PRODUCT_PAGES = [product_new, product_edit, product_create, product_update,
                 product_editor_preview]
