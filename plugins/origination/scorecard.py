"""Scorecards as data, and the pure function that scores an application with one.

A scorecard is what risk staff configure (pack section `scorecards:` or the editor page):

    code: retail
    name: {zh-CN: 个人经营贷评分卡, en: Retail scorecard}
    products: [JY01, XF01]          # empty or absent: every product
    base_points: 600
    variables:
      - variable: bureau_score       # one of VARIABLES
        bins:
          - {max: 550, points: -60}            # numeric: min inclusive, max exclusive
          - {min: 550, max: 650, points: 0}
          - {min: 650, points: 40}
          - {missing: true, points: -20}       # the value is unknown
      - variable: industry
        bins:
          - {values: [coal, construction], points: -15}   # categories
          - {other: true, points: 5}                      # any other known value
    grades:                                    # highest first; the last may omit min
      - {grade: A, min: 680}
      - {grade: B, min: 620}
      - {grade: C, min: 560}
      - {grade: D}

No database and no I/O here: `validate` refuses a bad definition with every problem named
(path, code), `score` turns a dict of variable values into a score, a grade and the
breakdown (variable, value, bin, points) that is stored on the application.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import FieldError, ValidationFailed
from core.i18n import register_messages

NUMBER, CATEGORY = "number", "category"

# variable -> (kind, zh-CN, en). Where each value comes from: plugins.origination.scoring.
VARIABLES: dict[str, tuple[str, str, str]] = {
    "amount": (NUMBER, "申请金额（元）", "Amount applied for (CNY)"),
    "periods": (NUMBER, "期数", "Periods"),
    "annual_rate": (NUMBER, "利率", "Interest rate"),
    "product": (CATEGORY, "贷款产品", "Loan product"),
    "customer_kind": (CATEGORY, "客户类型", "Customer type"),
    "industry": (CATEGORY, "行业", "Industry"),
    "gender": (CATEGORY, "性别", "Gender"),
    "province": (CATEGORY, "省份（行政区划前两位）", "Province (first two region digits)"),
    "region": (CATEGORY, "所在地区", "Region"),
    "age": (NUMBER, "年龄", "Age"),
    "annual_income": (NUMBER, "年收入（元）", "Annual income (CNY)"),
    "bureau_score": (NUMBER, "征信评分", "Bureau score"),
    "overdue_accounts": (NUMBER, "当前逾期账户数", "Accounts overdue now"),
    "max_days_overdue_24m": (NUMBER, "近24个月最长逾期天数", "Longest overdue in 24 months (days)"),
    "total_debt": (NUMBER, "负债总额（元）", "Total debt (CNY)"),
    "queries_3m": (NUMBER, "近3个月查询次数", "Bureau queries in 3 months"),
    "open_accounts": (NUMBER, "未结清账户数", "Open accounts"),
    "debt_to_income": (NUMBER, "负债收入比", "Debt to income"),
    "amount_to_income": (NUMBER, "申请金额收入比", "Amount to income"),
}

register_messages({
    "sc_required": {"zh-CN": "{label}：必填", "en": "{label}: required"},
    "sc_not_list": {"zh-CN": "{label}：应为列表", "en": "{label}: must be a list"},
    "sc_not_mapping": {"zh-CN": "{label}：应为映射（键: 值）",
                       "en": "{label}: must be a mapping (key: value)"},
    "sc_not_integer": {"zh-CN": "{label}：应为整数，收到 {got}",
                       "en": "{label}: must be a whole number, got {got}"},
    "sc_not_number": {"zh-CN": "{label}：应为数字，收到 {got}",
                      "en": "{label}: must be a number, got {got}"},
    "sc_code_invalid": {"zh-CN": "{label}：评分卡代码只能由字母、数字、下划线和连字符组成（1–40 个字符）",
                        "en": "{label}: a scorecard code is 1–40 letters, digits, _ or -"},
    "sc_unknown_variable": {
        "zh-CN": "{label}：未知变量 {got}（可用：{known}）",
        "en": "{label}: unknown variable {got} (known: {known})"},
    "sc_variable_twice": {"zh-CN": "{label}：变量 {got} 重复出现",
                          "en": "{label}: variable {got} appears twice"},
    "sc_bin_kind": {
        "zh-CN": "{label}：分箱须且只能是一种：min/max（数值）、values（类别）、missing: true 或 other: true",
        "en": "{label}: a bin is exactly one of min/max (numeric), values (categories), "
              "missing: true or other: true"},
    "sc_bin_not_numeric": {
        "zh-CN": "{label}：变量 {got} 是类别变量，应使用 values 分箱而不是 min/max",
        "en": "{label}: {got} is a category variable: use values bins, not min/max"},
    "sc_bin_not_category": {
        "zh-CN": "{label}：变量 {got} 是数值变量，应使用 min/max 分箱而不是 values",
        "en": "{label}: {got} is a numeric variable: use min/max bins, not values"},
    "sc_bin_empty": {"zh-CN": "{label}：分箱下限 {min} 不小于上限 {max}",
                     "en": "{label}: the bin's min {min} is not below its max {max}"},
    "sc_bins_unsorted": {
        "zh-CN": "{label}：数值分箱须按从小到大排列（{got} 排在 {before} 之后）",
        "en": "{label}: numeric bins must be sorted ascending ({got} comes after {before})"},
    "sc_bins_overlap": {
        "zh-CN": "{label}：分箱与前一个重叠（前一个上限 {before}，此分箱下限 {got}）",
        "en": "{label}: the bin overlaps the previous one (its max {before}, this min {got})"},
    "sc_bin_open_middle": {
        "zh-CN": "{label}：只有第一个分箱可以省略 min，只有最后一个可以省略 max",
        "en": "{label}: only the first bin may omit min and only the last may omit max"},
    "sc_category_twice": {"zh-CN": "{label}：类别 {got} 出现在多个分箱中",
                          "en": "{label}: category {got} is in more than one bin"},
    "sc_special_twice": {"zh-CN": "{label}：missing 或 other 分箱只能有一个",
                         "en": "{label}: at most one missing bin and one other bin"},
    "sc_no_bins": {"zh-CN": "{label}：至少需要一个分箱", "en": "{label}: needs at least one bin"},
    "sc_grades_unsorted": {
        "zh-CN": "{label}：评级须按分数下限从高到低排列（{got} 不低于前一个的 {before}）",
        "en": "{label}: grades must be sorted by min score, highest first ({got} is not below "
              "the previous {before})"},
    "sc_grade_open_middle": {"zh-CN": "{label}：只有最后一个评级可以省略 min",
                             "en": "{label}: only the last grade may omit min"},
    "sc_grade_twice": {"zh-CN": "{label}：评级 {got} 重复", "en": "{label}: grade {got} twice"},
    "sc_no_grades": {"zh-CN": "{label}：至少需要一个评级", "en": "{label}: needs at least one grade"},
})


@dataclass(frozen=True)
class Bin:
    """One bin: numeric [min, max), a set of categories, the missing value, or any other."""

    points: int
    min: Decimal | None = None
    max: Decimal | None = None
    values: tuple[str, ...] = ()
    missing: bool = False
    other: bool = False

    @property
    def label(self) -> str:
        """Language-neutral text of the bin, as stored in the breakdown."""
        if self.missing:
            return "missing"
        if self.other:
            return "other"
        if self.values:
            return ", ".join(self.values)
        if self.min is None:
            return f"< {self.max}"
        if self.max is None:
            return f">= {self.min}"
        return f"[{self.min}, {self.max})"


@dataclass(frozen=True)
class Variable:
    key: str
    bins: tuple[Bin, ...]

    @property
    def kind(self) -> str:
        return VARIABLES[self.key][0]


@dataclass(frozen=True)
class Grade:
    grade: str
    min: int | None


@dataclass(frozen=True)
class Card:
    """A validated scorecard."""

    code: str
    name: dict[str, str]
    products: tuple[str, ...]
    base_points: int
    variables: tuple[Variable, ...]
    grades: tuple[Grade, ...]

    def applies_to(self, product: str) -> bool:
        return not self.products or product in self.products


@dataclass
class Result:
    score: int
    grade: str
    breakdown: list[dict[str, Any]] = field(default_factory=list)


# --- validation ----------------------------------------------------------------------------

class _Problems:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, path: str, code: str, **params: Any) -> None:
        self.errors.append(FieldError(path, code, {k: str(v) for k, v in params.items()},
                                      {"zh-CN": path, "en": path}))


def _int(raw: Any, path: str, p: _Problems) -> int | None:
    if isinstance(raw, bool) or raw is None:
        p.add(path, "sc_required" if raw is None else "sc_not_integer", got=repr(raw))
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        p.add(path, "sc_not_integer", got=repr(raw))
        return None
    if value != value.to_integral_value():
        p.add(path, "sc_not_integer", got=repr(raw))
        return None
    return int(value)


def _number(raw: Any, path: str, p: _Problems) -> Decimal | None:
    if isinstance(raw, bool) or isinstance(raw, float) and raw != raw:
        p.add(path, "sc_not_number", got=repr(raw))
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        p.add(path, "sc_not_number", got=repr(raw))
        return None
    if not value.is_finite():
        p.add(path, "sc_not_number", got=repr(raw))
        return None
    return value


def _bin(raw: Any, path: str, kind: str, key: str, p: _Problems) -> Bin | None:
    if not isinstance(raw, dict):
        p.add(path, "sc_not_mapping")
        return None
    points = _int(raw.get("points"), f"{path}.points", p)
    shapes = [("min" in raw or "max" in raw), "values" in raw, raw.get("missing") is True,
              raw.get("other") is True]
    if sum(shapes) != 1:
        p.add(path, "sc_bin_kind")
        return None
    if points is None:
        return None
    if raw.get("missing") is True:
        return Bin(points, missing=True)
    if raw.get("other") is True:
        return Bin(points, other=True)
    wanted = NUMBER if shapes[0] else CATEGORY
    if wanted != kind:
        p.add(path, "sc_bin_not_numeric" if kind == CATEGORY else "sc_bin_not_category",
              got=key)
        return None
    if shapes[1]:
        values = raw["values"]
        if not isinstance(values, list) or not values:
            p.add(f"{path}.values", "sc_not_list")
            return None
        return Bin(points, values=tuple(str(v) for v in values))
    low = None if raw.get("min") is None else _number(raw["min"], f"{path}.min", p)
    high = None if raw.get("max") is None else _number(raw["max"], f"{path}.max", p)
    if low is not None and high is not None and low >= high:
        p.add(path, "sc_bin_empty", min=low, max=high)
        return None
    return Bin(points, min=low, max=high)


def _check_numeric(bins: list[Bin], path: str, p: _Problems) -> None:
    ranges = [(i, b) for i, b in enumerate(bins) if not (b.missing or b.other)]
    for n, (i, b) in enumerate(ranges):
        where = f"{path}.bins[{i}]"
        if (b.min is None and n > 0) or (b.max is None and n < len(ranges) - 1):
            p.add(where, "sc_bin_open_middle")
            continue
        if n == 0:
            continue
        prev = ranges[n - 1][1]
        if b.min is not None and prev.min is not None and b.min < prev.min:
            p.add(where, "sc_bins_unsorted", got=b.min, before=prev.min)
        elif b.min is not None and prev.max is not None and b.min < prev.max:
            p.add(where, "sc_bins_overlap", got=b.min, before=prev.max)


def _check_categories(bins: list[Bin], path: str, p: _Problems) -> None:
    seen: set[str] = set()
    for i, b in enumerate(bins):
        for v in b.values:
            if v in seen:
                p.add(f"{path}.bins[{i}]", "sc_category_twice", got=v)
            seen.add(v)


def _variable(raw: Any, path: str, p: _Problems) -> Variable | None:
    if not isinstance(raw, dict):
        p.add(path, "sc_not_mapping")
        return None
    key = raw.get("variable")
    if key not in VARIABLES:
        p.add(f"{path}.variable", "sc_required" if key in (None, "") else
              "sc_unknown_variable", got=key, known=", ".join(VARIABLES))
        return None
    kind = VARIABLES[key][0]
    raw_bins = raw.get("bins")
    if not isinstance(raw_bins, list):
        p.add(f"{path}.bins", "sc_not_list")
        return None
    if not raw_bins:
        p.add(f"{path}.bins", "sc_no_bins")
        return None
    before = len(p.errors)
    bins = [_bin(b, f"{path}.bins[{i}]", kind, key, p) for i, b in enumerate(raw_bins)]
    if len(p.errors) > before:
        return None
    good = [b for b in bins if b is not None]
    if sum(b.missing for b in good) > 1 or sum(b.other for b in good) > 1:
        p.add(f"{path}.bins", "sc_special_twice")
    if kind == NUMBER:
        _check_numeric(good, path, p)
    else:
        _check_categories(good, path, p)
    return Variable(key, tuple(good))


def _grades(raw: Any, p: _Problems) -> tuple[Grade, ...]:
    if not isinstance(raw, list):
        p.add("grades", "sc_not_list")
        return ()
    if not raw:
        p.add("grades", "sc_no_grades")
        return ()
    out: list[Grade] = []
    for i, g in enumerate(raw):
        path = f"grades[{i}]"
        if not isinstance(g, dict):
            p.add(path, "sc_not_mapping")
            continue
        name = str(g.get("grade") or "").strip()
        if not name:
            p.add(f"{path}.grade", "sc_required")
            continue
        if any(o.grade == name for o in out):
            p.add(f"{path}.grade", "sc_grade_twice", got=name)
        low = None if g.get("min") is None else _int(g["min"], f"{path}.min", p)
        if low is None and g.get("min") is not None:
            continue
        if low is None and i < len(raw) - 1:
            p.add(path, "sc_grade_open_middle")
        elif out and out[-1].min is not None and low is not None and low >= out[-1].min:
            p.add(f"{path}.min", "sc_grades_unsorted", got=low, before=out[-1].min)
        out.append(Grade(name, low))
    return tuple(out)


def validate(definition: Any) -> Card:
    """The scorecard as data, checked; ValidationFailed lists every problem by path."""
    import re

    p = _Problems()
    if not isinstance(definition, dict):
        raise ValidationFailed([FieldError("", "sc_not_mapping", {}, {"zh-CN": "评分卡",
                                                                       "en": "scorecard"})])
    code = str(definition.get("code") or "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", code):
        p.add("code", "sc_code_invalid")
    raw_name = definition.get("name") or code
    name = ({str(k): str(v) for k, v in raw_name.items()} if isinstance(raw_name, dict)
            else {"zh-CN": str(raw_name), "en": str(raw_name)})
    products = definition.get("products") or []
    if not isinstance(products, list):
        p.add("products", "sc_not_list")
        products = []
    base = _int(definition.get("base_points", 0), "base_points", p)
    raw_vars = definition.get("variables")
    variables: list[Variable] = []
    if not isinstance(raw_vars, list):
        p.add("variables", "sc_not_list")
    else:
        for i, v in enumerate(raw_vars):
            var = _variable(v, f"variables[{i}]", p)
            if var is None:
                continue
            if any(o.key == var.key for o in variables):
                p.add(f"variables[{i}].variable", "sc_variable_twice", got=var.key)
            variables.append(var)
    grades = _grades(definition.get("grades"), p)
    if p.errors:
        raise ValidationFailed(p.errors)
    return Card(code, name, tuple(str(x) for x in products), base or 0, tuple(variables),
                grades)


def _plain(value: Decimal) -> int | str:
    """A whole number as an int, a fraction as exact text (JSON and YAML friendly)."""
    return int(value) if value == value.to_integral_value() else format(value, "f")


def as_data(card: Card) -> dict[str, Any]:
    """The definition again, normalised (what is stored and exported)."""
    def bin_data(b: Bin) -> dict[str, Any]:
        if b.missing:
            return {"missing": True, "points": b.points}
        if b.other:
            return {"other": True, "points": b.points}
        if b.values:
            return {"values": list(b.values), "points": b.points}
        out: dict[str, Any] = {}
        if b.min is not None:
            out["min"] = _plain(b.min)
        if b.max is not None:
            out["max"] = _plain(b.max)
        return {**out, "points": b.points}

    return {
        "code": card.code, "name": dict(card.name), "products": list(card.products),
        "base_points": card.base_points,
        "variables": [{"variable": v.key, "bins": [bin_data(b) for b in v.bins]}
                      for v in card.variables],
        "grades": [{"grade": g.grade, **({"min": g.min} if g.min is not None else {})}
                   for g in card.grades],
    }


# --- scoring -------------------------------------------------------------------------------

def _as_number(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _pick(variable: Variable, value: Any) -> Bin | None:
    """The bin a value falls in; None when no bin takes it (it then scores 0)."""
    missing = next((b for b in variable.bins if b.missing), None)
    other = next((b for b in variable.bins if b.other), None)
    if variable.kind == NUMBER:
        number = _as_number(value)
        if number is None:
            return missing
        for b in variable.bins:
            if b.missing or b.other:
                continue
            if (b.min is None or number >= b.min) and (b.max is None or number < b.max):
                return b
        return other
    if value is None or value == "":
        return missing
    text = str(value)
    for b in variable.bins:
        if text in b.values:
            return b
    return other


def grade_for(card: Card, score: int) -> str:
    """The first grade (highest first) whose min the score reaches; the open last grade
    otherwise; the lowest grade if every grade has a min and none is reached."""
    for g in card.grades:
        if g.min is None or score >= g.min:
            return g.grade
    return card.grades[-1].grade


def score(card: Card, values: dict[str, Any]) -> Result:
    """Base points plus each variable's bin points; the breakdown names every variable."""
    total = card.base_points
    breakdown = []
    for v in card.variables:
        raw = values.get(v.key)
        chosen = _pick(v, raw)
        points = chosen.points if chosen else 0
        total += points
        shown = None if raw is None or raw == "" else (
            format(raw, "f") if isinstance(raw, Decimal) else raw)
        breakdown.append({"variable": v.key, "value": shown,
                          "bin": chosen.label if chosen else "none", "points": points})
    return Result(total, grade_for(card, total), breakdown)
