"""Routing conditions of plugins/origination/conditions.py: every operator on every kind of
field, the combinators, money as Decimal (never float), and the refusals with their paths."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from plugins.origination.conditions import (
    APPLICATION_FIELDS,
    AllOf,
    BadValue,
    Leaf,
    coerce,
    describe,
    evaluate,
    parse_condition,
    to_data,
)

PROPERTY = hsettings(max_examples=300, deadline=None, database=None)
CJK = re.compile(r"[\u4e00-\u9fff]")
FIELDS = {**APPLICATION_FIELDS, "signed_on": "date", "checked_at": "datetime",
          "has_collateral": "boolean", "tags": "multi_select", "id_front": "attachment",
          "rate": "percent", "income": "decimal"}


def cond(data: object):
    parsed, problems = parse_condition(data, FIELDS)
    assert not problems, [p.en for p in problems]
    return parsed


def check(data: object, facts: dict) -> bool:
    return evaluate(cond(data), facts)


def refused(data: object) -> list:
    parsed, problems = parse_condition(data, FIELDS)
    assert parsed is None and problems
    for p in problems:
        assert CJK.search(p.zh) and not CJK.search(p.en)
    return problems


# -- every operator on money, compared as Decimal -------------------------------------------

@pytest.mark.parametrize(("op", "value", "amount", "expected"), [
    ("eq", "100000", "100000.00", True),
    ("eq", "100000", "100000.01", False),
    ("ne", "100000", "100000.01", True),
    ("ne", "100000.00", "100000", False),
    ("in", ["50000", "100000"], "100000.0", True),
    ("in", ["50000", "100000"], "99999.99", False),
    ("not_in", ["50000", "100000"], "99999.99", True),
    ("not_in", ["50000", "100000"], "50000", False),
    ("lt", "100000", "99999.99", True),
    ("lt", "100000", "100000", False),
    ("le", "100000", "100000", True),
    ("le", "100000", "100000.01", False),
    ("gt", "500000", "500000.01", True),
    ("gt", "500000", "500000", False),
    ("ge", "500000", "500000", True),
    ("ge", "500000", "499999.99", False),
    ("between", ["100000", "500000"], "100000", True),   # both ends included
    ("between", ["100000", "500000"], "500000", True),
    ("between", ["100000", "500000"], "500000.01", False),
    ("between", ["100000", "500000"], "99999.99", False),
])
def test_money_operators(op: str, value: object, amount: str, expected: bool) -> None:
    assert check({"field": "amount", "op": op, "value": value}, {"amount": amount}) is expected


def test_integers_and_decimals_are_accepted_as_money() -> None:
    assert check({"field": "amount", "op": "ge", "value": 100000}, {"amount": 100000})
    assert check({"field": "amount", "op": "lt", "value": "100000"},
                 {"amount": Decimal("99999.99")})


def test_exists_and_missing_fields() -> None:
    exists = {"field": "grade", "op": "exists"}
    assert check(exists, {"grade": "A"})
    for missing in ({}, {"grade": None}, {"grade": ""}):
        assert not check(exists, missing)
        # a missing field makes every other operator false, including ne and not_in ...
        assert not check({"field": "grade", "op": "ne", "value": "A"}, missing)
        assert not check({"field": "grade", "op": "not_in", "value": ["A"]}, missing)
        # ... so "not set" is written with not
        assert check({"not": exists}, missing)
    assert not check({"field": "tags", "op": "exists"}, {"tags": []})


# -- other field types ----------------------------------------------------------------------

def test_text_and_select_fields() -> None:
    assert check({"field": "product", "op": "eq", "value": "JY01"}, {"product": "JY01"})
    assert check({"field": "product", "op": "ne", "value": "JY01"}, {"product": "XF02"})
    assert check({"field": "grade", "op": "in", "value": ["A", "B"]}, {"grade": "B"})
    assert check({"field": "grade", "op": "not_in", "value": ["D", "E"]}, {"grade": "B"})
    assert not check({"field": "grade", "op": "in", "value": ["A", "B"]}, {"grade": "C"})


def test_region_in_means_within_a_province_or_city() -> None:
    in_shanxi = {"field": "region", "op": "in", "value": ["140000"]}
    assert check(in_shanxi, {"region": "140105"})   # Taiyuan Xiaodian district
    assert check(in_shanxi, {"region": "140800"})   # Yuncheng
    assert not check(in_shanxi, {"region": "110101"})
    in_taiyuan = {"field": "region", "op": "in", "value": ["140100"]}
    assert check(in_taiyuan, {"region": "140105"})
    assert not check(in_taiyuan, {"region": "140802"})
    assert check({"field": "region", "op": "not_in", "value": ["140100"]}, {"region": "140802"})
    # eq stays exact, and an unquoted YAML code (an int) is read as text
    assert not check({"field": "region", "op": "eq", "value": "140000"}, {"region": "140105"})
    assert check({"field": "region", "op": "eq", "value": 140105}, {"region": "140105"})


def test_multi_select_in_means_any_overlap() -> None:
    risky = {"field": "tags", "op": "in", "value": ["overdue_history", "lawsuit"]}
    assert check(risky, {"tags": ["vip", "lawsuit"]})
    assert not check(risky, {"tags": ["vip"]})
    assert check({"field": "tags", "op": "not_in", "value": ["lawsuit"]}, {"tags": ["vip"]})


def test_dates_datetimes_booleans_attachments_and_integers() -> None:
    assert check({"field": "signed_on", "op": "lt", "value": "2026-01-01"},
                 {"signed_on": "2025-12-31"})
    assert check({"field": "signed_on", "op": "between", "value": ["2026-01-01", "2026-12-31"]},
                 {"signed_on": date(2026, 6, 1)})
    tz = timezone(timedelta(hours=8))
    assert check({"field": "checked_at", "op": "ge", "value": "2026-11-20T00:00:00+08:00"},
                 {"checked_at": datetime(2026, 11, 20, 9, tzinfo=tz)})
    # the same instant in UTC compares equal
    assert check({"field": "checked_at", "op": "eq", "value": "2026-11-20T01:00:00+00:00"},
                 {"checked_at": "2026-11-20T09:00:00+08:00"})
    assert check({"field": "has_collateral", "op": "eq", "value": True},
                 {"has_collateral": True})
    assert check({"field": "has_collateral", "op": "ne", "value": True},
                 {"has_collateral": False})
    assert check({"field": "id_front", "op": "exists"}, {"id_front": "doc-1"})
    assert check({"field": "term", "op": "ge", "value": 24}, {"term": 36})
    assert check({"field": "score", "op": "between", "value": [600, 700]}, {"score": "650"})
    assert check({"field": "rate", "op": "le", "value": "24"}, {"rate": "23.9999"})


# -- combinators -----------------------------------------------------------------------------

BIG = {"field": "amount", "op": "gt", "value": "500000"}
GOOD = {"field": "grade", "op": "in", "value": ["A", "B"]}


@pytest.mark.parametrize(("amount", "grade", "all_", "any_"), [
    ("600000", "A", True, True), ("600000", "C", False, True),
    ("400000", "A", False, True), ("400000", "C", False, False),
])
def test_all_any_not(amount: str, grade: str, all_: bool, any_: bool) -> None:
    facts = {"amount": amount, "grade": grade}
    assert check({"all": [BIG, GOOD]}, facts) is all_
    assert check({"any": [BIG, GOOD]}, facts) is any_
    assert check({"not": {"all": [BIG, GOOD]}}, facts) is not all_
    assert check({"not": {"not": BIG}}, facts) is (amount == "600000")


def test_nested_combinators() -> None:
    # (Shanxi and grade A/B) or amount under 50,000, but never a lawsuit
    data = {"all": [{"any": [{"all": [{"field": "region", "op": "in", "value": ["140000"]},
                                      GOOD]},
                             {"field": "amount", "op": "lt", "value": "50000"}]},
                    {"not": {"field": "tags", "op": "in", "value": ["lawsuit"]}}]}
    assert check(data, {"region": "140105", "grade": "A", "amount": "900000", "tags": []})
    assert check(data, {"region": "110101", "grade": "E", "amount": "49999.99"})
    assert not check(data, {"region": "140105", "grade": "A", "tags": ["lawsuit"]})
    assert not check(data, {"region": "110101", "grade": "A", "amount": "50000"})


# -- refusals --------------------------------------------------------------------------------

def test_unknown_field_names_the_field_and_the_path() -> None:
    [p] = refused({"all": [GOOD, {"field": "scor", "op": "gt", "value": 600}]})
    assert p.code == "unknown_field" and p.field == "when.all[1].field"
    assert "scor" in p.zh and "scor" in p.en


@pytest.mark.parametrize("op", ["like", "GT", "==", None, "contains"])
def test_bad_operators(op: object) -> None:
    [p] = refused({"field": "amount", "op": op, "value": "1"})
    assert p.code == "bad_operator" and p.field == "when.op"


@pytest.mark.parametrize(("field", "op"), [
    ("product", "lt"), ("grade", "between"), ("tags", "eq"), ("has_collateral", "gt"),
    ("id_front", "eq"),
])
def test_operator_not_for_type(field: str, op: str) -> None:
    [p] = refused({"field": field, "op": op, "value": "x"})
    assert p.code == "operator_not_for_type" and field in p.en


@pytest.mark.parametrize(("data", "reason"), [
    ({"field": "amount", "op": "lt", "value": 100000.0}, "float"),
    ({"field": "amount", "op": "lt", "value": "1e5"}, "not a number"),
    ({"field": "amount", "op": "lt", "value": "100000.001"}, "two decimal places"),
    ({"field": "amount", "op": "lt", "value": True}, "not a number"),
    ({"field": "amount", "op": "lt", "value": "NaN"}, "not a number"),
    ({"field": "amount", "op": "lt"}, "needs a value"),
    ({"field": "amount", "op": "exists", "value": True}, "takes no value"),
    ({"field": "amount", "op": "in", "value": "100000"}, "non-empty list"),
    ({"field": "amount", "op": "in", "value": []}, "non-empty list"),
    ({"field": "amount", "op": "between", "value": ["1", "2", "3"]}, "[low, high]"),
    ({"field": "amount", "op": "between", "value": ["500000", "100000"]}, "above the high"),
    ({"field": "amount", "op": "between", "value": ["100000", 500000.5]}, "float"),
    ({"field": "term", "op": "gt", "value": "12.5"}, "whole number"),
    ({"field": "signed_on", "op": "lt", "value": "2026-13-01"}, "not a date"),
    ({"field": "checked_at", "op": "lt", "value": "2026-11-20T09:00:00"}, "time zone"),
    ({"field": "has_collateral", "op": "eq", "value": "yes"}, "true or false"),
    ({"field": "grade", "op": "eq", "value": ["A"]}, "not text"),
])
def test_bad_values(data: dict, reason: str) -> None:
    [p] = refused(data)
    assert p.code == "bad_value" and p.field == "when.value" and reason in p.en


@pytest.mark.parametrize(("data", "code"), [
    ({"all": []}, "empty_combinator"),
    ({"any": "x"}, "empty_combinator"),
    ({"field": "amount", "all": [GOOD]}, "bad_condition"),
    ({}, "bad_condition"),
    ("amount > 5", "bad_condition"),
    ({"field": "amount", "op": "gt", "value": "1", "vaule": "2"}, "unknown_key"),
    ({"not": GOOD, "note": "x"}, "unknown_key"),
])
def test_malformed_conditions(data: object, code: str) -> None:
    assert refused(data)[0].code == code


def test_every_problem_is_reported_with_the_step() -> None:
    parsed, problems = parse_condition(
        {"any": [{"field": "nope", "op": "eq", "value": "1"},
                 {"field": "amount", "op": "zz", "value": "1"}]}, FIELDS,
        path="next[0].when", step="risk_review")
    assert parsed is None
    assert [(p.code, p.field, p.step) for p in problems] == [
        ("unknown_field", "next[0].when.any[0].field", "risk_review"),
        ("bad_operator", "next[0].when.any[1].op", "risk_review")]
    assert problems[0].zh.startswith("步骤“risk_review”的 next[0].when.any[0].field：")
    assert problems[0].en.startswith("step 'risk_review', next[0].when.any[0].field: ")


def test_unknown_field_types_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown field types"):
        parse_condition({"field": "x", "op": "exists"}, {"x": "float"})


def test_facts_are_never_floats() -> None:
    with pytest.raises(BadValue, match="float"):
        coerce(99999.99, "money")
    with pytest.raises(BadValue):
        coerce(float("nan"), "decimal")


# -- reading and writing back ------------------------------------------------------------------

def test_round_trip_to_data() -> None:
    data = {"all": [{"field": "amount", "op": "between", "value": ["100000", "500000.50"]},
                    {"not": {"field": "signed_on", "op": "exists"}},
                    {"any": [GOOD, {"field": "has_collateral", "op": "eq", "value": True}]}]}
    parsed = cond(data)
    assert to_data(parsed) == data
    assert cond(to_data(parsed)) == parsed
    assert isinstance(parsed, AllOf) and isinstance(parsed.items[0], Leaf)
    assert parsed.items[0].value == (Decimal("100000"), Decimal("500000.50"))


def test_describe_in_both_languages() -> None:
    labels = {"amount": {"zh-CN": "金额", "en": "Amount"}}
    c = cond({"all": [{"field": "amount", "op": "between", "value": ["100000", "500000"]},
                      {"not": {"field": "grade", "op": "in", "value": ["D", "E"]}}]})
    assert describe(c, "zh-CN", labels) == "100,000 ≤ 金额 ≤ 500,000 且 (非（grade属于 [D, E]）)"
    assert describe(c, "en", labels) == "100,000 ≤ Amount ≤ 500,000 and (not (grade in [D, E]))"
    assert describe(cond({"field": "amount", "op": "lt", "value": "100000"}), "en") == \
        "amount < 100,000"
    assert describe(cond({"any": [{"field": "id_front", "op": "exists"}, BIG]})) == \
        "id_front已填写 或 amount > 500,000"


# -- properties --------------------------------------------------------------------------------

fen = st.integers(min_value=0, max_value=10**11)


def yuan(n: int) -> str:
    return f"{n // 100}.{n % 100:02d}"


@PROPERTY
@given(fen, fen, st.sampled_from(["lt", "le", "gt", "ge", "eq", "ne"]))
def test_money_comparisons_agree_with_decimal(a: int, b: int, op: str) -> None:
    x, y = Decimal(yuan(a)), Decimal(yuan(b))
    expected = {"lt": x < y, "le": x <= y, "gt": x > y, "ge": x >= y, "eq": x == y,
                "ne": x != y}[op]
    assert check({"field": "amount", "op": op, "value": yuan(b)}, {"amount": yuan(a)}) \
        is expected
    # fewer decimals, or an integer, never change the answer
    short = yuan(a).rstrip("0").rstrip(".") or "0"
    value: object = b // 100 if b % 100 == 0 else yuan(b)
    assert check({"field": "amount", "op": op, "value": value}, {"amount": short}) is expected


@PROPERTY
@given(fen, fen, fen)
def test_between_is_inclusive_and_not_negates(a: int, lo: int, hi: int) -> None:
    lo, hi = min(lo, hi), max(lo, hi)
    leaf = {"field": "amount", "op": "between", "value": [yuan(lo), yuan(hi)]}
    inside = check(leaf, {"amount": yuan(a)})
    assert inside is (lo <= a <= hi)
    assert check({"not": leaf}, {"amount": yuan(a)}) is not inside
