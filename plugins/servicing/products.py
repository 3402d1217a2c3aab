"""Loan products (贷款产品): what a lender offers, as data.

A product's `config` holds the schedule conventions in the same shape as the `xindai
schedule` request (method, frequency, every, interest_basis, day_count, rounding, grace,
fees) plus its ranges and rules: amount, term and rate ranges, penalty, allocation order,
prepayment and overpayment. `terms_for` turns a product and an applicant's choices into the
engine's `Terms`, refusing anything outside the product's ranges with a message that
names the field and the limit.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from core import audit
from core.errors import Conflict, FieldError, NotFound, ValidationFailed
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.servicing.daycount import YEAR_DAYS
from plugins.servicing.request import parse_request
from plugins.servicing.schedule import Schedule, Terms, TermsError, build_schedule
from plugins.servicing.tables import LoanProduct

SCHEDULE_KEYS = ("method", "frequency", "every", "interest_basis", "day_count", "rounding",
                 "grace", "fees")
COMPONENTS = ("fees", "penalty", "compound", "interest", "principal")
DEFAULT_RULES: dict[str, Any] = {
    "penalty": {"multiplier": "1.5", "compound": True, "grace_days": 3},
    "allocation": {"order": list(COMPONENTS), "mode": "period_first"},
    "prepayment": {"after_periods": 0, "fee_percent": "0", "mode": "reduce_term"},
    "overpayment": "credit",
}
RULE_KEYS = ("amount_min", "amount_max", "term_min", "term_max", "rate_min", "rate_max",
             "rate_default", "rate_quote", "classification", *DEFAULT_RULES)
CLASSES = ("attention", "substandard", "doubtful", "loss")
# How the product quotes its rates: percent a year, or 万分之N a day (日利率).
RATE_QUOTES = ("annual", "daily_wan")

register_messages({
    "product_not_object": {"zh-CN": "产品配置应为对象（键值映射）",
                           "en": "the product configuration must be an object"},
    "product_unknown_keys": {"zh-CN": "产品配置包含未知的键：{keys}",
                             "en": "unknown keys in the product configuration: {keys}"},
    "product_number": {"zh-CN": "{label}应为数字，收到 {got}",
                       "en": "{label} must be a number, got {got}"},
    "product_integer": {"zh-CN": "{label}应为整数，收到 {got}",
                        "en": "{label} must be a whole number, got {got}"},
    "product_positive": {"zh-CN": "{label}应大于 0", "en": "{label} must be above 0"},
    "product_negative": {"zh-CN": "{label}不能为负数", "en": "{label} cannot be negative"},
    "product_min_max": {"zh-CN": "{label}不能大于上限 {max}",
                        "en": "{label} cannot exceed the maximum, {max}"},
    "product_rate_quote": {"zh-CN": "利率报价方式只能是 annual（年利率，%）或 daily_wan（日利率，万分之）",
                           "en": "the rate quote must be annual (percent a year) or daily_wan "
                                 "(per ten thousand a day)"},
    "out_of_range_wan": {"zh-CN": "{label}应在万分之 {min} 至万分之 {max} 之间",
                         "en": "{label} must be between {min} and {max} per ten thousand a day"},
    "product_allocation": {"zh-CN": "冲账顺序须恰好包含 {components} 各一次，方式为 "
                                    "period_first 或 item_first",
                           "en": "the allocation order must list {components} once each, "
                                 "with mode period_first or item_first"},
    "product_classification": {
        "zh-CN": "五级分类下限应为递增的逾期天数：attention < substandard < doubtful < loss",
        "en": "classification floors must be increasing days past due: attention < "
              "substandard < doubtful < loss"},
    "product_penalty": {
        "zh-CN": "罚息设置无效：multiplier 或 annual_rate 应为非负数，grace_days 为 0–30 的整数",
        "en": "invalid penalty: multiplier or annual_rate must be a non-negative number and "
              "grace_days a whole number from 0 to 30"},
    "product_overpayment": {"zh-CN": "多缴款处理只能是 credit（挂账）或 refuse（拒收）",
                            "en": "overpayment must be credit or refuse"},
    "terms_invalid": {"zh-CN": "还款计划条款无效：{label}", "en": "invalid schedule terms: {label}"},
    "out_of_range": {"zh-CN": "{label}应在 {min} 至 {max} 之间",
                     "en": "{label} must be between {min} and {max}"},
    "product_not_found": {"zh-CN": "没有代码为 {product} 的贷款产品",
                          "en": "no loan product with code {product}"},
    "product_inactive": {"zh-CN": "贷款产品 {product} 已停用",
                         "en": "loan product {product} is inactive"},
})

LABELS = {
    "amount": ("贷款金额", "amount"), "periods": ("期数", "term"),
    "annual_rate": ("年利率", "annual rate"), "code": ("产品代码", "product code"),
    "config": ("产品配置", "product configuration"),
    "amount_min": ("最低金额", "minimum amount"), "amount_max": ("最高金额", "maximum amount"),
    "term_min": ("最短期数", "minimum term"), "term_max": ("最长期数", "maximum term"),
    "rate_min": ("最低利率", "minimum rate"), "rate_max": ("最高利率", "maximum rate"),
    "rate_default": ("默认利率", "default rate"), "rate_quote": ("利率报价方式", "rate quote"),
}
DAILY_LABEL = {"zh-CN": "日利率", "en": "daily rate"}


def _error(field: str, code: str, **params: Any) -> FieldError:
    zh, en = LABELS.get(field, (field, field))
    return FieldError(field, code, params, {"zh-CN": zh, "en": en})


def _dec(field: str, value: Any) -> Decimal:
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationFailed([_error(field, "product_number", got=repr(value))]) from None
    if not out.is_finite():
        raise ValidationFailed([_error(field, "product_number", got=repr(value))])
    return out


def _int(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(
            value).strip().isdigit():
        raise ValidationFailed([_error(field, "product_integer", got=repr(value))])
    return int(value)


def is_daily(config: dict[str, Any]) -> bool:
    return config.get("rate_quote") == "daily_wan"


def to_annual(config: dict[str, Any], rate: Decimal) -> Decimal:
    """The engine's annual percent for a rate in the product's quoted unit: 万分之N a day is
    N × the day count's year (360 for 30/360 and actual/360, 365, 364, 365 for
    actual/actual) / 100, exactly; an annual rate is itself."""
    if not is_daily(config):
        return rate
    return rate * _year(config) / 100


def from_annual(config: dict[str, Any], annual: Decimal) -> Decimal:
    """The product's quoted rate for an annual percent (the inverse of `to_annual`)."""
    if not is_daily(config):
        return annual
    return annual * 100 / _year(config)


def _year(config: dict[str, Any]) -> int:
    """The day count's year (an unknown day count is refused by the engine, not here)."""
    return YEAR_DAYS.get(config.get("day_count") or "actual/360", 360)


def _plain(value: Decimal) -> str:
    """A rate without trailing zeros or exponent: 5, 4.5, 10."""
    return format(value.normalize(), "f")


def rate_view(config: dict[str, Any], annual: Decimal) -> dict[str, str]:
    """How a quote names its rate: the product's unit, the quoted figure (万分之N a day for
    a daily rate) and the annual percent with at least two decimals (18.00)."""
    cents = annual.quantize(Decimal("0.01"))
    return {"rate_quote": "daily_wan" if is_daily(config) else "annual",
            "quoted_rate": _plain(from_annual(config, annual)),
            "annual_percent": format(cents if cents == annual else annual.normalize(), "f")}


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check a product configuration and return it complete (defaults filled in)."""
    if not isinstance(config, dict):
        raise ValidationFailed([_error("config", "product_not_object")])
    unknown = sorted(set(config) - set(SCHEDULE_KEYS) - set(RULE_KEYS))
    if unknown:
        raise ValidationFailed([_error("config", "product_unknown_keys", keys=", ".join(unknown))])
    out = {**DEFAULT_RULES, **config}
    for key in ("amount_min", "amount_max", "term_min", "term_max", "rate_min", "rate_max"):
        if key not in out:
            raise ValidationFailed([_error(key, "required")])
    amount_min, amount_max = _dec("amount_min", out["amount_min"]), _dec("amount_max",
                                                                         out["amount_max"])
    rate_min, rate_max = _dec("rate_min", out["rate_min"]), _dec("rate_max", out["rate_max"])
    rate_default = _dec("rate_default", out.get("rate_default", out["rate_min"]))
    term_min, term_max = _int("term_min", out["term_min"]), _int("term_max", out["term_max"])
    if out.get("rate_quote", "annual") not in RATE_QUOTES:
        raise ValidationFailed([_error("rate_quote", "product_rate_quote")])
    errors = [_error(key, "product_positive") for key, value in (
        ("amount_min", amount_min), ("term_min", term_min)) if value <= 0]
    errors += [_error("rate_min", "product_negative")] if rate_min < 0 else []
    errors += [_error(low, "product_min_max", max=str(high)) for low, value, high in (
        ("amount_min", amount_min, amount_max), ("term_min", term_min, term_max),
        ("rate_min", rate_min, rate_max)) if value > high]
    if not errors and not rate_min <= rate_default <= rate_max:
        errors.append(_error("rate_default", "out_of_range_wan" if is_daily(out)
                             else "out_of_range", min=str(rate_min),
                             max=str(rate_max)))
    if errors:
        raise ValidationFailed(errors)
    order = list(out["allocation"].get("order", COMPONENTS))
    if sorted(order) != sorted(COMPONENTS) or out["allocation"].get(
            "mode", "period_first") not in ("period_first", "item_first"):
        raise ValidationFailed([_error("allocation", "product_allocation",
                                       components=", ".join(COMPONENTS))])
    _check_penalty(out["penalty"])
    if "classification" in out:
        floors = out["classification"]
        try:
            days = [int(floors[c]) for c in CLASSES]
        except (KeyError, TypeError, ValueError):
            days = []
        if len(days) != 4 or days != sorted(set(days)) or days[0] < 1 or set(floors) - set(
                CLASSES):
            raise ValidationFailed([_error("classification", "product_classification")])
        out["classification"] = dict(zip(CLASSES, days, strict=True))
    if out["overpayment"] not in ("credit", "refuse"):
        raise ValidationFailed([_error("overpayment", "product_overpayment")])
    out.update(amount_min=str(amount_min), amount_max=str(amount_max), term_min=term_min,
               term_max=term_max, rate_min=str(rate_min), rate_max=str(rate_max),
               rate_default=str(rate_default))
    terms_for(out, amount_min, term_min, rate_default, date(2026, 1, 31))  # the engine agrees
    return out


def _check_penalty(penalty: Any) -> None:
    ok = isinstance(penalty, dict) and not set(penalty) - {"multiplier", "annual_rate",
                                                           "compound", "grace_days"}
    if ok:
        try:
            for key in ("multiplier", "annual_rate"):
                if penalty.get(key) not in (None, "") and Decimal(str(penalty[key])) < 0:
                    ok = False
            grace = penalty.get("grace_days", 0)
            ok = ok and not isinstance(grace, bool) and 0 <= int(grace) <= 30
        except (InvalidOperation, TypeError, ValueError):
            ok = False
    if not ok:
        raise ValidationFailed([_error("penalty", "product_penalty")])


def range_errors(config: dict[str, Any], principal: Decimal | None = None,
                 periods: int | None = None, rate: Decimal | None = None,
                 quoted_rate: Decimal | None = None) -> list[FieldError]:
    """The product's range checks for whichever of amount, term and rate are given, so a
    later change of a loan (a reschedule) is held to the same limits and messages as its
    disbursement. `quoted_rate` is in the product's own unit (an applicant's rate: percent
    a year, or 万分之N a day) and is checked and named in it; `rate` is an annual percent
    (a reschedule's), checked against the range's annual equivalents."""
    errors = []
    if principal is not None and not (
            Decimal(config["amount_min"]) <= principal <= Decimal(config["amount_max"])):
        errors.append(_error("amount", "out_of_range", min=config["amount_min"],
                             max=config["amount_max"]))
    if periods is not None and not int(config["term_min"]) <= periods <= int(config["term_max"]):
        errors.append(_error("periods", "out_of_range", min=config["term_min"],
                             max=config["term_max"]))
    low, high = Decimal(config["rate_min"]), Decimal(config["rate_max"])
    if quoted_rate is not None and not low <= quoted_rate <= high:
        errors.append(FieldError("annual_rate", "out_of_range_wan", {"min": _plain(low),
                                 "max": _plain(high)}, DAILY_LABEL) if is_daily(config)
                      else _error("annual_rate", "out_of_range", min=config["rate_min"],
                                  max=config["rate_max"]))
    low, high = to_annual(config, low), to_annual(config, high)
    if rate is not None and not low <= rate <= high:
        errors.append(_error("annual_rate", "out_of_range", min=str(low), max=str(high)))
    return errors


def terms_for(config: dict[str, Any], principal: Decimal, periods: int,
              annual_rate: Decimal | None, disbursed_on: date,
              first_due_on: date | None = None) -> Terms:
    """The engine's terms for one loan of this product; out-of-range choices are refused
    naming the field and the limits. `annual_rate` is the applicant's rate in the product's
    quoted unit (`rate_quote`; a daily 万分之N becomes the engine's annual percent here)."""
    rate = Decimal(config["rate_default"]) if annual_rate is None else annual_rate
    errors = range_errors(config, principal, periods, quoted_rate=rate)
    if errors:
        raise ValidationFailed(errors)
    request = {key: config[key] for key in SCHEDULE_KEYS if key in config}
    request.update(principal=str(principal), annual_rate=str(to_annual(config, rate)),
                   periods=periods, disbursed_on=disbursed_on.isoformat(),
                   first_due_on=first_due_on.isoformat() if first_due_on else None)
    try:
        return parse_request(request)
    except TermsError as exc:
        raise ValidationFailed([FieldError(exc.field, "terms_invalid", {},
                                           {"zh-CN": exc.zh, "en": exc.en})]) from None


def quote(config: dict[str, Any], principal: Decimal, periods: int,
          annual_rate: Decimal | None, disbursed_on: date) -> Schedule:
    """The schedule (with its APR) a customer would get: shown before anything is signed."""
    return build_schedule(terms_for(config, principal, periods, annual_rate, disbursed_on))


async def save_product(ctx: Context, code: str, name: str, config: dict[str, Any],
                       active: bool = True) -> dict[str, Any]:
    """Create a product, or change one (its version goes up; loans keep their own terms)."""
    from core.access import require

    require(ctx, "product.manage")
    clean = validate_config(config)
    async with tenant_scope(ctx):
        rows = await LoanProduct.select().where(LoanProduct.tenant_id == ctx.tenant_id,
                                                LoanProduct.code == code).run()
        if rows:
            await LoanProduct.update({LoanProduct.name: name, LoanProduct.config: clean,
                                      LoanProduct.active: active,
                                      LoanProduct.version: rows[0]["version"] + 1}).where(
                LoanProduct.id == rows[0]["id"], LoanProduct.tenant_id == ctx.tenant_id).run()
            action, product_id = "product.update", rows[0]["id"]
        else:
            row = LoanProduct(tenant_id=ctx.tenant_id, code=code, name=name, config=clean,
                              active=active)
            await LoanProduct.insert(row).run()
            action, product_id = "product.create", row.id
        await audit.append(ctx, action, "loan_product", product_id,
                           {"code": code, "name": name, "active": active, "config": clean})
    return await get_product(ctx, code)


async def get_product(ctx: Context, code: str) -> dict[str, Any]:
    async with tenant_scope(ctx, write=False):
        rows = await LoanProduct.select().where(LoanProduct.tenant_id == ctx.tenant_id,
                                                LoanProduct.code == code).output(
            load_json=True).run()
    if not rows:
        raise NotFound("product_not_found", product=code)
    return rows[0]


async def list_products(ctx: Context) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        return await LoanProduct.select().where(LoanProduct.tenant_id == ctx.tenant_id) \
            .order_by(LoanProduct.code).output(load_json=True).run()


async def product_by_id(ctx: Context, product_id: uuid.UUID) -> dict[str, Any]:
    async with tenant_scope(ctx, write=False):
        rows = await LoanProduct.select().where(LoanProduct.tenant_id == ctx.tenant_id,
                                                LoanProduct.id == product_id).output(
            load_json=True).run()
    if not rows:
        raise NotFound()
    return rows[0]


__all__ = ["Conflict", "get_product", "list_products", "quote", "save_product", "terms_for",
           "validate_config"]
