"""Parsing and validating the JSON request of `xindai schedule` (docs/servicing.md)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from plugins.servicing.request import DEFAULTS, parse_json, parse_request
from plugins.servicing.response import dumps, to_contract
from plugins.servicing.schedule import Fee, Grace, Rounding, Terms, TermsError, build_schedule

FULL = {
    "principal": "5000", "annual_rate": "12", "method": "equal_principal", "periods": 18,
    "frequency": "week", "every": 2, "disbursed_on": "2022-11-01",
    "first_due_on": "2022-11-20", "interest_basis": "daily", "day_count": "actual/365",
    "rounding": {"digits": 2, "installment_multiple": "1"},
    "grace": {"principal_periods": 1, "interest_periods": 2, "interest_free_periods": 3},
    "fees": [{"name": "service fee", "amount": "100", "when": "disbursement"},
             {"name": "account fee", "percent": "0.5", "when": "each_period"}],
}


def test_full_request() -> None:
    terms = parse_request(json.loads(json.dumps(FULL)))
    assert terms == Terms(
        principal=Decimal("5000"), annual_rate=Decimal("12"), method="equal_principal",
        periods=18, frequency="week", every=2, disbursed_on=date(2022, 11, 1),
        first_due_on=date(2022, 11, 20), interest_basis="daily", day_count="actual/365",
        rounding=Rounding(2, Decimal("1")), grace=Grace(1, 2, 3),
        fees=(Fee("service fee", "disbursement", amount=Decimal("100")),
              Fee("account fee", "each_period", percent=Decimal("0.5"))))


def test_omitted_keys_take_the_contract_defaults() -> None:
    terms = parse_json("{}")
    assert terms == parse_request(json.loads(json.dumps(DEFAULTS)))
    assert (terms.principal, terms.annual_rate, terms.periods) == (Decimal(5000), Decimal(12), 18)
    assert terms.method == "equal_installment" and terms.day_count == "actual/360"
    assert terms.rounding == Rounding() and terms.grace == Grace() and terms.fees == ()
    partial = parse_json('{"rounding": {"digits": 0, "installment_multiple": "1"},'
                         ' "grace": {"interest_periods": 1}}')
    assert partial.rounding == Rounding(0, Decimal(1)) and partial.grace == Grace(0, 1, 0)


def test_json_numbers_become_decimals_never_floats() -> None:
    terms = parse_json('{"principal": 1234.56, "annual_rate": 4.35}')
    assert terms.principal == Decimal("1234.56") and type(terms.principal) is Decimal
    assert terms.annual_rate == Decimal("4.35")


def field_of(text: str) -> TermsError:
    with pytest.raises(TermsError) as info:
        parse_json(text)
    return info.value


@pytest.mark.parametrize("request_,field,hint", [
    ({"principal": "-5000"}, "principal", "-5000"),
    ({"principal": "abc"}, "principal", "abc"),
    ({"principal": "1e3"}, "principal", "1e3"),
    ({"principal": " 100"}, "principal", "100"),
    ({"principal": "100.005"}, "principal", "100.005"),
    ({"principal": True}, "principal", "true"),
    ({"principal": None}, "principal", "null"),
    ({"annual_rate": "1000.01"}, "annual_rate", "1000.01"),
    ({"annual_rate": "-1"}, "annual_rate", "-1"),
    ({"method": "balloon"}, "method", "balloon"),
    ({"method": 3}, "method", "3"),
    ({"periods": 0}, "periods", "0"),
    ({"periods": 1201}, "periods", "1201"),
    ({"periods": "12"}, "periods", "12"),
    ({"periods": 12.0}, "periods", "12.0"),
    ({"frequency": "fortnight"}, "frequency", "fortnight"),
    ({"every": 0}, "every", "0"),
    ({"disbursed_on": "2023-02-30"}, "disbursed_on", "2023-02-30"),
    ({"disbursed_on": "2023/01/01"}, "disbursed_on", "2023/01/01"),
    ({"disbursed_on": "20230101"}, "disbursed_on", "20230101"),
    ({"first_due_on": "2022-10-01"}, "first_due_on", "2022-10-01"),
    ({"interest_basis": "yearly"}, "interest_basis", "yearly"),
    ({"day_count": "30E/360"}, "day_count", "30E/360"),
    ({"rounding": {"digits": 9}}, "rounding.digits", "9"),
    ({"rounding": {"installment_multiple": "0.001"}}, "rounding.installment_multiple",
     "0.001"),
    ({"rounding": {"step": 1}}, "rounding.step", "known keys"),
    ({"rounding": []}, "rounding", "[]"),
    ({"grace": {"principal_periods": -1}}, "grace.principal_periods", "-1"),
    ({"grace": {"holiday": 1}}, "grace.holiday", "known keys"),
    ({"fees": {}}, "fees", "{}"),
    ({"fees": [{"amount": "1", "percent": "1"}]}, "fees[0]", "exactly one"),
    ({"fees": [{"amount": "1", "when": "monthly"}]}, "fees[0].when", "monthly"),
    ({"fees": [{"amount": "x"}]}, "fees[0].amount", "x"),
    ({"fees": [{"amount": "1", "colour": "red"}]}, "fees[0].colour", "known keys"),
    ({"fees": [{"name": "", "amount": "1"}]}, "fees[0].name", "1 to 100"),
    ({"fees": [{"percent": "100"}]}, "fees", "less than the principal"),
    ({"principal_amount": "1"}, "principal_amount", "known keys"),
])
def test_bad_input_names_the_field(request_: dict[str, Any], field: str, hint: str) -> None:
    error = field_of(json.dumps(request_))
    assert error.field == field
    assert error.zh.startswith(field) and error.en.startswith(field)
    assert hint in error.en
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error.zh)  # a Chinese message too
    assert "\n" not in str(error)


@pytest.mark.parametrize("text,field", [
    ("", "request"), ("[1]", "request"), ('{"principal": NaN}', "request"),
    ('{"principal": "1", "principal": "2"}', "principal"), ("{'a': 1}", "request"),
])
def test_bad_json(text: str, field: str) -> None:
    assert field_of(text).field == field


def test_response_contract() -> None:
    schedule = build_schedule(parse_request(json.loads(json.dumps(FULL))))
    body = to_contract(schedule)
    assert set(body) == {"installments", "total_principal", "total_interest", "total_fees",
                         "disbursement_fees", "apr"}
    first = body["installments"][0]
    assert set(first) == {"n", "due_on", "principal", "interest", "fees", "total", "balance"}
    assert first["n"] == 1 and first["due_on"] == "2022-11-20"
    assert all(isinstance(v, str) for k, v in first.items() if k != "n")
    assert body["total_principal"] == "5000.00" and body["disbursement_fees"] == "100.00"
    assert body["total_fees"] == "550.00"  # 100 + 18 × 25.00
    text = dumps(schedule)
    keys: list[list[str]] = []
    json.loads(text, object_pairs_hook=lambda pairs: keys.append([k for k, _ in pairs]) or {})
    assert all(k == sorted(k) for k in keys)
    assert json.loads(text) == body
