"""Conditions that route an application: parsed from data, evaluated against its fields.

A condition is a leaf `{field, op, value}` or a combinator `{all: [...]}`, `{any: [...]}`,
`{not: {...}}`. Conditions are written by business staff and stored as JSON or YAML, so
parsing is strict and names the offending path: an unknown field or operator, or a value
that does not suit the field's type, is refused when the workflow is saved rather than
discovered when an application is routed the wrong way.

Numbers (money above all) are compared as `Decimal` built from strings or integers; a float
is refused wherever it appears, in a definition or in an application's facts, because
100000.1 as a float is not 100000.10 and a boundary decided by binary rounding is a bug.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from plugins.origination.errors import Problem, problem

OPERATORS = ("eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "between", "exists")
COMBINATORS = ("all", "any", "not")

NUMERIC = frozenset({"integer", "decimal", "money", "percent"})
TEXT = frozenset({"text", "long_text", "single_select", "phone", "email", "region",
                  "resident_id", "credit_code", "reference"})
_OPS_BY_TYPE: dict[str, frozenset[str]] = {
    **{t: frozenset(OPERATORS) for t in (*NUMERIC, "date", "datetime")},
    **{t: frozenset({"eq", "ne", "in", "not_in", "exists"}) for t in TEXT},
    "multi_select": frozenset({"in", "not_in", "exists"}),
    "boolean": frozenset({"eq", "ne", "exists"}),
    "attachment": frozenset({"exists"}),
}
FIELD_TYPES = frozenset(_OPS_BY_TYPE)

# The application's built-in fields that routing most often uses; custom fields are added
# by the caller (`{**APPLICATION_FIELDS, **custom}`) when a definition is parsed.
APPLICATION_FIELDS: dict[str, str] = {
    "amount": "money", "term": "integer", "product": "text", "grade": "single_select",
    "score": "integer", "region": "region", "purpose": "text", "customer_type": "single_select",
}

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Leaf:
    """`field op value`; `value` is normalised (Decimal, date, str, tuple...), None for exists."""

    field: str
    op: str
    value: Any
    type: str


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Leaf | AllOf | AnyOf | Not


class BadValue(ValueError):
    """A value does not suit a field's type; carries the zh-CN and en reason."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


def coerce(value: Any, ftype: str) -> Any:
    """Normalise one value for a field type, or raise `BadValue` saying why not."""
    if isinstance(value, float):
        raise BadValue(f"不接受浮点数 {value!r}，数值请写成字符串（如 \"100000.00\"）",
                       f"a float ({value!r}) is not accepted; write numbers as strings "
                       "(e.g. \"100000.00\")")
    if ftype in NUMERIC:
        return _number(value, ftype)
    if ftype == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str) and _DATE.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise BadValue(f"“{value}”不是日期（YYYY-MM-DD）", f"'{value}' is not a date (YYYY-MM-DD)")
    if ftype == "datetime":
        parsed = value
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
        if isinstance(parsed, datetime) and parsed.tzinfo is not None:
            return parsed
        raise BadValue(f"“{value}”不是带时区的时间（ISO 8601）",
                       f"'{value}' is not a date and time with a time zone (ISO 8601)")
    if ftype == "boolean":
        if isinstance(value, bool):
            return value
        raise BadValue(f"“{value}”不是 true 或 false", f"'{value}' is not true or false")
    if ftype == "multi_select":
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise BadValue("应为文本列表", "must be a list of texts")
    # text-like: YAML reads an unquoted region code (140100) as an integer; accept it.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    raise BadValue(f"“{value}”不是文本", f"'{value}' is not text")


def _number(value: Any, ftype: str) -> Decimal:
    if isinstance(value, bool):
        raise BadValue(f"“{value}”不是数字", f"'{value}' is not a number")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal) and value.is_finite():
        number = value
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = Decimal(value.strip())
    else:
        raise BadValue(f"“{value}”不是数字（请写成如 \"100000.00\" 的字符串）",
                       f"'{value}' is not a number (write it as a string like \"100000.00\")")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if ftype == "money" and exponent < -2:
        raise BadValue(f"金额“{value}”最多两位小数（精确到分）",
                       f"the amount '{value}' may have at most two decimal places (fen)")
    if ftype == "integer" and number != number.to_integral_value():
        raise BadValue(f"“{value}”不是整数", f"'{value}' is not a whole number")
    return number


def present(value: Any) -> bool:
    """Whether a fact counts as given: None, "" and an empty list do not."""
    return value is not None and value != "" and value != [] and value != ()


def _within_region(code: str, parent: str) -> bool:
    """GB/T 2260: 140000 is a province (prefix 14), 140100 a city (1401), else exact."""
    if len(parent) == 6 and parent.endswith("0000"):
        return code[:2] == parent[:2]
    if len(parent) == 6 and parent.endswith("00"):
        return code[:4] == parent[:4]
    return code == parent


def _member(fact: Any, values: tuple[Any, ...], ftype: str) -> bool:
    if ftype == "multi_select":
        return any(v in values for v in fact)
    if ftype == "region":
        return any(_within_region(fact, v) for v in values)
    return fact in values


def evaluate(cond: Condition, facts: Mapping[str, Any]) -> bool:
    """Whether the facts satisfy the condition.

    A missing (or empty) field makes every operator false except `exists`; facts are checked
    by `check_facts` when an instance starts, so a malformed fact here is a caller's bug.
    """
    if isinstance(cond, AllOf):
        return all(evaluate(c, facts) for c in cond.items)
    if isinstance(cond, AnyOf):
        return any(evaluate(c, facts) for c in cond.items)
    if isinstance(cond, Not):
        return not evaluate(cond.item, facts)
    raw = facts.get(cond.field)
    if cond.op == "exists":
        return present(raw)
    if not present(raw):
        return False
    fact, value = coerce(raw, cond.type), cond.value
    match cond.op:
        case "eq":
            return bool(fact == value)
        case "ne":
            return bool(fact != value)
        case "in":
            return _member(fact, value, cond.type)
        case "not_in":
            return not _member(fact, value, cond.type)
        case "lt":
            return bool(fact < value)
        case "le":
            return bool(fact <= value)
        case "gt":
            return bool(fact > value)
        case "ge":
            return bool(fact >= value)
        case "between":
            return bool(value[0] <= fact <= value[1])
    raise AssertionError(cond.op)  # pragma: no cover (parse refuses other operators)


class _Parser:
    """Collects every problem of one condition tree instead of stopping at the first."""

    def __init__(self, fields: Mapping[str, str], step: str | None) -> None:
        self.fields, self.step = fields, step
        self.problems: list[Problem] = []

    def bad(self, code: str, path: str, zh: str, en: str) -> None:
        self.problems.append(problem(code, zh, en, step=self.step, field=path))

    def parse(self, data: Any, path: str) -> Condition | None:
        if not isinstance(data, Mapping):
            self.bad("bad_condition", path, "条件应为一个对象（field/op/value 或 all/any/not）",
                     "a condition must be an object (field/op/value or all/any/not)")
            return None
        heads = [k for k in ("field", *COMBINATORS) if k in data]
        if len(heads) != 1:
            self.bad("bad_condition", path,
                     "条件须且只能有 field、all、any、not 其中之一",
                     "a condition needs exactly one of field, all, any, not")
            return None
        head = heads[0]
        allowed = {"field", "op", "value"} if head == "field" else {head}
        for key in data:
            if key not in allowed:
                self.bad("unknown_key", f"{path}.{key}", f"未知的键“{key}”",
                         f"unknown key '{key}'")
        if head == "field":
            return self.leaf(data, path)
        if head == "not":
            inner = self.parse(data["not"], f"{path}.not")
            return None if inner is None else Not(inner)
        items = data[head]
        if not isinstance(items, Sequence) or isinstance(items, str) or not items:
            self.bad("empty_combinator", f"{path}.{head}", f"“{head}”须为非空的条件列表",
                     f"'{head}' must be a non-empty list of conditions")
            return None
        parsed = [self.parse(c, f"{path}.{head}[{i}]") for i, c in enumerate(items)]
        if any(c is None for c in parsed):
            return None
        cls = AllOf if head == "all" else AnyOf
        return cls(tuple(c for c in parsed if c is not None))

    def leaf(self, data: Mapping[str, Any], path: str) -> Leaf | None:
        name, op = data.get("field"), data.get("op")
        if not isinstance(name, str) or name not in self.fields:
            known = "、".join(sorted(self.fields))
            self.bad("unknown_field", f"{path}.field",
                     f"条件引用了未知字段“{name}”（可用字段：{known}）",
                     f"the condition uses an unknown field '{name}' (known: "
                     f"{', '.join(sorted(self.fields))})")
            return None
        ftype = self.fields[name]
        if op not in OPERATORS:
            self.bad("bad_operator", f"{path}.op",
                     f"未知的运算符“{op}”（可用：{'、'.join(OPERATORS)}）",
                     f"unknown operator '{op}' (known: {', '.join(OPERATORS)})")
            return None
        if op not in _OPS_BY_TYPE[ftype]:
            self.bad("operator_not_for_type", f"{path}.op",
                     f"字段“{name}”（{ftype}）不能使用运算符“{op}”",
                     f"the operator '{op}' cannot be used on the field '{name}' ({ftype})")
            return None
        try:
            value = self.value(op, data, ftype)
        except BadValue as exc:
            self.bad("bad_value", f"{path}.value", exc.zh, exc.en)
            return None
        return Leaf(name, op, value, ftype)

    def value(self, op: str, data: Mapping[str, Any], ftype: str) -> Any:
        if op == "exists":
            if "value" in data:
                raise BadValue("exists 不需要 value（用 not 表示“未填写”）",
                               "exists takes no value (use not for 'is not set')")
            return None
        if "value" not in data:
            raise BadValue(f"运算符“{op}”需要 value", f"the operator '{op}' needs a value")
        raw = data["value"]
        if op in ("in", "not_in", "between"):
            if not isinstance(raw, (list, tuple)) or not raw:
                raise BadValue(f"运算符“{op}”的 value 须为非空列表",
                               f"the value of '{op}' must be a non-empty list")
            item_type = "text" if ftype == "multi_select" else ftype
            values = tuple(coerce(v, item_type) for v in raw)
            if op == "between":
                if len(values) != 2:
                    raise BadValue("between 的 value 须为 [下限, 上限] 两个值",
                                   "the value of between must be [low, high]")
                if values[0] > values[1]:
                    raise BadValue(f"between 的下限 {raw[0]} 大于上限 {raw[1]}",
                                   f"the low end {raw[0]} of between is above the high end "
                                   f"{raw[1]}")
            return values
        return coerce(raw, ftype)


def parse_condition(data: Any, fields: Mapping[str, str], *, path: str = "when",
                    step: str | None = None) -> tuple[Condition | None, list[Problem]]:
    """Parse a condition; returns it (None if refused) and every problem found."""
    unknown = {t for t in fields.values() if t not in FIELD_TYPES}
    if unknown:
        raise ValueError(f"unknown field types {sorted(unknown)}; known: {sorted(FIELD_TYPES)}")
    parser = _Parser(fields, step)
    cond = parser.parse(data, path)
    return (None if parser.problems else cond), parser.problems


def leaves(cond: Condition) -> list[Leaf]:
    if isinstance(cond, Leaf):
        return [cond]
    if isinstance(cond, Not):
        return leaves(cond.item)
    return [leaf for c in cond.items for leaf in leaves(c)]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, (Decimal, date)):
        return value.isoformat() if isinstance(value, date) else str(value)
    return value


def to_data(cond: Condition) -> dict[str, Any]:
    """The JSON-able form that `parse_condition` reads back to an equal condition."""
    if isinstance(cond, AllOf):
        return {"all": [to_data(c) for c in cond.items]}
    if isinstance(cond, AnyOf):
        return {"any": [to_data(c) for c in cond.items]}
    if isinstance(cond, Not):
        return {"not": to_data(cond.item)}
    out: dict[str, Any] = {"field": cond.field, "op": cond.op}
    if cond.op != "exists":
        out["value"] = _plain(cond.value)
    return out


_SYMBOLS = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value:,}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return _plain(value) if not isinstance(value, bool) else str(value).lower()


def describe(cond: Condition, locale: str = "zh-CN",
             labels: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """A one-line reading of a condition for the diagram and the editor."""
    en = locale.lower().startswith("en")
    if isinstance(cond, (AllOf, AnyOf)):
        joiner = {(True, True): " and ", (True, False): " 且 ", (False, True): " or ",
                  (False, False): " 或 "}[(isinstance(cond, AllOf), en)]
        return joiner.join(f"({describe(c, locale, labels)})" if not isinstance(c, Leaf)
                           else describe(c, locale, labels) for c in cond.items)
    if isinstance(cond, Not):
        inner = describe(cond.item, locale, labels)
        return f"not ({inner})" if en else f"非（{inner}）"
    label = ((labels or {}).get(cond.field) or {}).get("en" if en else "zh-CN", cond.field)
    v = cond.value
    match cond.op:
        case "exists":
            return f"{label} is set" if en else f"{label}已填写"
        case "in":
            return f"{label} in {_show(v)}" if en else f"{label}属于 {_show(v)}"
        case "not_in":
            return f"{label} not in {_show(v)}" if en else f"{label}不属于 {_show(v)}"
        case "between":
            return f"{_show(v[0])} ≤ {label} ≤ {_show(v[1])}"
    return f"{label} {_SYMBOLS[cond.op]} {_show(v)}"
