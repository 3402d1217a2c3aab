"""Parse and validate a schedule request (the JSON contract of `xindai schedule`).

Strict on purpose: unknown or duplicate keys, floats-looking-like-money in exponent form,
booleans for numbers and NaN are refused with a message naming the field. Ranges and
precision are checked by `Terms` itself, so the engine refuses the same things when it
is called from code.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from typing import Any

from plugins.servicing.schedule import Fee, Grace, Rounding, Terms, TermsError

# The contract's defaults: an omitted key takes the value of the documented example.
DEFAULTS: dict[str, Any] = {
    "principal": "5000", "annual_rate": "12", "method": "equal_installment", "periods": 18,
    "frequency": "month", "every": 1, "disbursed_on": "2022-11-01", "first_due_on": None,
    "interest_basis": "per_period", "day_count": "actual/360",
    "rounding": {"digits": 2, "installment_multiple": "0.01"},
    "grace": {"principal_periods": 0, "interest_periods": 0, "interest_free_periods": 0},
    "fees": [],
}
FEE_KEYS = ("name", "amount", "percent", "when")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _refuse_constant(name: str) -> Any:
    raise TermsError("request", f"不支持 {name}", f"{name} is not a number", None)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise TermsError(key, "字段重复", "duplicate key")
        out[key] = value
    return out


def loads(text: str) -> dict[str, Any]:
    """Decode the request JSON: JSON numbers become Decimal (never float)."""
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant,
                          object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise TermsError("request", f"不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列）",
                         f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
                         ) from exc
    if not isinstance(data, dict):
        raise TermsError("request", "须为一个 JSON 对象", "must be a JSON object")
    return data


def _keys(where: str, data: Any, known: tuple[str, ...] | list[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TermsError(where, "须为 JSON 对象", "must be a JSON object", _show(data))
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        name = f"{where}.{unknown[0]}" if where != "request" else unknown[0]
        raise TermsError(name, f"未知字段；可用字段：{', '.join(known)}",
                         f"unknown key; known keys: {', '.join(known)}")
    return data


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _decimal(field: str, value: Any) -> Decimal:
    """A decimal number given as a string ("12.5") or a JSON number, never a boolean."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TermsError(field, "须为数字或数字字符串", "must be a number or a numeric string",
                         _show(value))
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value):
            raise TermsError(field, "不是有效的数字（如 \"5000\" 或 \"12.5\"）",
                             "is not a number (like \"5000\" or \"12.5\")", _show(value))
        return Decimal(value)
    return Decimal(value)


def _integer(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TermsError(field, "须为整数", "must be a whole number", _show(value))
    return value


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TermsError(field, "须为字符串", "must be a string", _show(value))
    return value


def _date(field: str, value: Any) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise TermsError(field, "须为 YYYY-MM-DD 格式的日期", "must be a date as YYYY-MM-DD",
                         _show(value))
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise TermsError(field, "不是有效的日期", "is not a valid date", _show(value)) from exc


def _fee(i: int, data: Any) -> Fee:
    where = f"fees[{i}]"
    data = _keys(where, data, FEE_KEYS)
    name = _text(f"{where}.name", data.get("name", "service fee"))
    if not 0 < len(name.strip()) <= 100:
        raise TermsError(f"{where}.name", "名称须为 1 到 100 个字符", "must be 1 to 100 characters")
    amount = data.get("amount")
    percent = data.get("percent")
    return Fee(
        name=name,
        when=_text(f"{where}.when", data.get("when", "disbursement")),
        amount=None if amount is None else _decimal(f"{where}.amount", amount),
        percent=None if percent is None else _decimal(f"{where}.percent", percent),
    )


def parse_request(data: dict[str, Any]) -> Terms:
    """Terms from a decoded request; raises TermsError naming the first bad field."""
    data = _keys("request", data, list(DEFAULTS))
    value = {**DEFAULTS, **data}
    rounding = _keys("rounding", value["rounding"], list(DEFAULTS["rounding"]))
    grace = _keys("grace", value["grace"], list(DEFAULTS["grace"]))
    rounding = {**DEFAULTS["rounding"], **rounding}
    grace = {**DEFAULTS["grace"], **grace}
    fees = value["fees"]
    if not isinstance(fees, list):
        raise TermsError("fees", "须为列表", "must be a list", _show(fees))
    if len(fees) > 20:
        raise TermsError("fees", "最多 20 项费用", "at most 20 fees", len(fees))
    first_due = value["first_due_on"]
    return Terms(
        principal=_decimal("principal", value["principal"]),
        annual_rate=_decimal("annual_rate", value["annual_rate"]),
        method=_text("method", value["method"]),
        periods=_integer("periods", value["periods"]),
        frequency=_text("frequency", value["frequency"]),
        every=_integer("every", value["every"]),
        disbursed_on=_date("disbursed_on", value["disbursed_on"]),
        first_due_on=None if first_due is None else _date("first_due_on", first_due),
        interest_basis=_text("interest_basis", value["interest_basis"]),
        day_count=_text("day_count", value["day_count"]),
        rounding=Rounding(
            digits=_integer("rounding.digits", rounding["digits"]),
            installment_multiple=_decimal("rounding.installment_multiple",
                                          rounding["installment_multiple"]),
        ),
        grace=Grace(**{k: _integer(f"grace.{k}", v) for k, v in grace.items()}),
        fees=tuple(_fee(i, fee) for i, fee in enumerate(fees)),
    )


def parse_json(text: str) -> Terms:
    return parse_request(loads(text))
