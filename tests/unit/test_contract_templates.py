"""Contract templates: the documented variables, refusals before saving (unknown variable or
row field named with its line, syntax errors, unsafe constructs), and the capital-numeral
converter (大写金额) on the PBOC rules' examples, edge cases and a round-trip property."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from core.errors import ValidationFailed
from plugins.contracts.numerals import NumeralError, amount_in_words
from plugins.contracts.templates import (
    MAX_LENGTH,
    METHOD_LABELS,
    ROW_FIELDS,
    VARIABLES,
    TemplateRefused,
    check_template,
    contract_variables,
    money,
    percent,
    render_text,
    sample_data,
    sample_template,
    zh_date,
)

D = Decimal
DOCS = Path(__file__).resolve().parents[2] / "docs"


def refusal(text: str) -> TemplateRefused:
    with pytest.raises(TemplateRefused) as caught:
        check_template(text)
    return caught.value


# --- capital numerals -----------------------------------------------------------------------

@pytest.mark.parametrize("figures, words", [
    ("100000.00", "壹拾万元整"),
    ("1234.56", "壹仟贰佰叁拾肆元伍角陆分"),
    ("1000.05", "壹仟元零伍分"),
    ("0.01", "壹分"),
    ("0.05", "伍分"),
    ("0.10", "壹角整"),
    ("0.56", "伍角陆分"),
    ("0", "零元整"),
    ("1", "壹元整"),
    ("10", "壹拾元整"),
    ("10.5", "壹拾元零伍角整"),
    ("11", "壹拾壹元整"),
    ("15.50", "壹拾伍元伍角整"),
    ("100", "壹佰元整"),
    ("101", "壹佰零壹元整"),
    ("110", "壹佰壹拾元整"),
    ("1001", "壹仟零壹元整"),
    ("1010", "壹仟零壹拾元整"),
    ("10010", "壹万零壹拾元整"),
    ("20000.10", "贰万元零壹角整"),
    ("110000", "壹拾壹万元整"),
    ("100000000", "壹亿元整"),
    ("100000001", "壹亿零壹元整"),
    ("10007000", "壹仟万零柒仟元整"),
    ("100010000", "壹亿零壹万元整"),
    ("1000000000000", "壹万亿元整"),
    ("1000100000000", "壹万零壹亿元整"),
    ("1234567890123.45", "壹万贰仟叁佰肆拾伍亿陆仟柒佰捌拾玖万零壹佰贰拾叁元肆角伍分"),
    ("9999999999999999.99",
     "玖仟玖佰玖拾玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
    # the examples of the PBOC rules (where they allow two spellings, ours is the one
    # with 零 between two non-zero digits, and 整 after 角)
    ("1409.50", "壹仟肆佰零玖元伍角整"),
    ("6007.14", "陆仟零柒元壹角肆分"),
    ("1680.32", "壹仟陆佰捌拾元零叁角贰分"),
    ("107000.53", "壹拾万零柒仟元零伍角叁分"),
    ("16409.02", "壹万陆仟肆佰零玖元零贰分"),
    ("325.04", "叁佰贰拾伍元零肆分"),
])
def test_capitals(figures: str, words: str) -> None:
    assert amount_in_words(D(figures)) == words
    assert amount_in_words(figures) == words


def test_capitals_accept_int_and_trailing_zeros() -> None:
    assert amount_in_words(300000) == "叁拾万元整"
    assert amount_in_words(D("1.000")) == "壹元整"  # more zeros, same cent amount
    assert amount_in_words(" 12.30 ") == "壹拾贰元叁角整"
    assert amount_in_words(D("-0")) == "零元整"


@pytest.mark.parametrize("bad, why", [
    (D("-0.01"), "negative"), ("-5", "negative"),
    (D("1.005"), "past the cent"), ("0.001", "past the cent"), (D("1E-3"), "past the cent"),
    (D(10) ** 16, "10^16"), ("abc", "not a number"), ("", "not a number"),
    (D("NaN"), "finite"), (D("Infinity"), "finite"), ("1,000", "not a number"),
])
def test_capitals_refused(bad: object, why: str) -> None:
    with pytest.raises(NumeralError) as caught:
        amount_in_words(bad)  # type: ignore[arg-type]
    assert why in caught.value.en and caught.value.zh


@pytest.mark.parametrize("bad", [1.5, 0.1, True, None, [1]])
def test_capitals_refuse_floats_and_other_types(bad: object) -> None:
    with pytest.raises(NumeralError) as caught:
        amount_in_words(bad)  # type: ignore[arg-type]
    assert "浮点" in caught.value.zh


_DIGIT = {c: i for i, c in enumerate("零壹贰叁肆伍陆柒捌玖")}


def _parse_group(s: str) -> int:
    """Capitals under 10,000, read independently of the converter."""
    total, digit = 0, 0
    for ch in s:
        if ch in _DIGIT:
            digit = _DIGIT[ch]
        else:
            total += digit * {"拾": 10, "佰": 100, "仟": 1000}[ch]
            digit = 0
    return total + digit


def _parse_int(s: str) -> int:
    if "亿" in s:
        high, low = s.rsplit("亿", 1)
        return _parse_int(high) * 10**8 + _parse_int(low)
    if "万" in s:
        high, low = s.split("万", 1)
        return _parse_group(high) * 10**4 + _parse_group(low)
    return _parse_group(s)


def parse_capitals(words: str) -> Decimal:
    body = words.removesuffix("整")
    yuan, _, rest = body.rpartition("元") if "元" in body else ("", "", body)
    jiao = re.search("(.)角", rest)
    fen = re.search("(.)分", rest)
    cents = (_parse_int(yuan) * 100 + (_DIGIT[jiao.group(1)] * 10 if jiao else 0)
             + (_DIGIT[fen.group(1)] if fen else 0))
    return D(cents) / 100


@hsettings(max_examples=400, deadline=None, database=None)
@given(st.one_of(st.integers(0, 10**18 - 1), st.integers(0, 10**7),
                 st.sampled_from([10**k * m for k in range(16) for m in (1, 10, 101)])))
def test_capitals_round_trip_and_form(cents: int) -> None:
    value = D(cents) / 100
    words = amount_in_words(value)
    assert parse_capitals(words) == value
    assert set(words) <= set("零壹贰叁肆伍陆柒捌玖拾佰仟万亿元角分整")
    assert "零零" not in words
    assert not re.search("零[元万亿角分整]", words) or words == "零元整"
    assert words.endswith("整") == (cents % 10 == 0)
    assert not words.startswith("零") or words == "零元整"
    assert not words.startswith("拾")


# --- variables ------------------------------------------------------------------------------

def test_variables_are_the_documented_set() -> None:
    variables = contract_variables(sample_data())
    assert set(variables) == set(VARIABLES)
    assert set(variables["schedule"][0]) == set(ROW_FIELDS)
    for doc in ("contracts.md", "contracts.zh-CN.md"):
        text = (DOCS / doc).read_text(encoding="utf-8")
        missing = [v for v in [*VARIABLES, *ROW_FIELDS] if f"`{v}`" not in text]
        assert not missing, f"{doc} does not document {missing}"


def test_variables_print_money_rates_dates_and_mask() -> None:
    v = contract_variables(sample_data())
    assert v["amount"] == "100,000.00"
    assert v["amount_in_words"] == "壹拾万元整"
    assert v["borrower_id_masked"] == "110***********002X"
    assert v["repayment_account"] == "***************4567"
    assert v["annual_rate"] == "7.20" and v["apr"] == "7.21"
    assert v["disbursed_on"] == "2025年1月15日" and v["signed_on"] == "2025年1月14日"
    assert v["repayment_method"] == "等额本息"
    assert v["schedule"][0] == {"n": 1, "due_on": "2025-02-15", "principal": "33,165.19",
                                "interest": "600.00", "fees": "0.00",
                                "total": "33,765.19", "balance": "66,834.81"}
    assert v["total_interest"] == "1,201.83" and v["total_repayment"] == "101,201.83"


def test_already_masked_values_stay_masked_and_apr_unknown() -> None:
    data = replace(sample_data(), borrower_id="110***********002X",
                   repayment_account="6222 0202 0000 1234", apr=None, method="custom")
    v = contract_variables(data)
    assert v["borrower_id_masked"] == "110***********002X"
    assert v["repayment_account"] == "************1234"
    assert v["apr"] == "—" and v["repayment_method"] == "custom"


def test_rows_as_mappings_and_money_never_float() -> None:
    data = sample_data()
    as_maps = [dict(zip(ROW_FIELDS, r, strict=True)) for r in data.schedule]
    as_maps[0]["due_on"] = "2025-02-15"
    assert (contract_variables(replace(data, schedule=as_maps))
            == contract_variables(data))
    with pytest.raises(TypeError):
        contract_variables(replace(data, schedule=[(1, date(2025, 2, 15), 1.5, D(0), D(0),
                                                    D("1.5"), D(0))]))
    with pytest.raises(ValueError):
        contract_variables(replace(data, schedule=[(1, date(2025, 2, 15))]))
    with pytest.raises(TypeError):
        money(1.5)  # type: ignore[arg-type]


def test_formatting_helpers() -> None:
    assert percent(D("7.2")) == "7.20" and percent(D("7.125")) == "7.125"
    assert percent(D("18")) == "18.00" and percent(D("7.20000")) == "7.20"
    assert money(D("1234567.5")) == "1,234,567.50" and money(0) == "0.00"
    assert money(D("1234.5678")) == "1,234.5678" and money(D("1.2300")) == "1.23"
    assert money("-5") == "-5.00" and money(D("1E+5")) == "100,000.00"
    assert zh_date(date(2025, 10, 5)) == "2025年10月5日"


def test_method_labels_cover_the_servicing_methods() -> None:
    from plugins.servicing.schedule import METHODS

    assert set(METHODS) <= set(METHOD_LABELS)


def test_totals_from_a_real_schedule() -> None:
    from plugins.servicing.schedule import Terms, build_schedule

    s = build_schedule(Terms(principal=D("300000"), annual_rate=D("6"),
                             method="equal_principal", periods=12,
                             disbursed_on=date(2025, 1, 15)))
    v = contract_variables(replace(sample_data(), amount=D("300000"), schedule=s.rows))
    assert v["total_interest"] == money(s.total_interest)
    assert len(v["schedule"]) == 12 and v["schedule"][-1]["balance"] == "0.00"
    assert v["amount_in_words"] == "叁拾万元整"


# --- the sample template and rendering ------------------------------------------------------

def test_sample_template_checks_and_renders() -> None:
    check_template(sample_template())
    text = render_text(sample_template(), contract_variables(sample_data()))
    assert text.startswith("# 个人借款合同")
    assert "110***********002X" in text and "11010519491231002X" not in text
    assert "人民币（大写）壹拾万元整" in text
    assert "首期应还日为2025-02-15" in text
    assert "{{" not in text and "{%" not in text


def test_plain_text_is_not_escaped() -> None:
    data = replace(sample_data(), borrower_name="<b>张&三</b>")
    assert render_text("{{ borrower_name }}", contract_variables(data)) == "<b>张&三</b>"


def test_loops_over_the_schedule() -> None:
    text = "{% for r in schedule %}{{ r.n }}:{{ r.due_on }}:{{ r.total }};{% endfor %}"
    check_template(text)
    out = render_text(text, contract_variables(sample_data()))
    assert out == "1:2025-02-15:33,765.19;2:2025-03-15:33,765.19;3:2025-04-15:33,671.45;"


# --- refusals -------------------------------------------------------------------------------

def test_unknown_variable_refused_naming_it_and_its_line() -> None:
    e = refusal("# 合同\n借款人：{{ borrower_name }}\n担保人：{{ guarantor_name }}\n")
    assert isinstance(e, ValidationFailed) and e.status == 422
    [err] = e.errors
    assert err.params == {"name": "guarantor_name", "line": 3}
    assert "guarantor_name" in err.message("zh-CN") and "第 3 行" in err.message("zh-CN")
    assert "unknown variable 'guarantor_name' (line 3)" in err.message("en")
    assert "guarantor_name" in str(e)


def test_every_unknown_variable_is_named() -> None:
    e = refusal("{{ foo }}{% if bar %}{{ amount }}{% endif %}{{ baz|upper }}")
    assert [x.params["name"] for x in e.errors] == ["bar", "baz", "foo"]


def test_misspelt_variable_refused() -> None:
    e = refusal("{{ amount_in_word }}")
    assert e.errors[0].params["name"] == "amount_in_word"


def test_variables_set_in_the_template_are_not_unknown() -> None:
    check_template("{% set who = borrower_name %}{{ who }}{% for r in schedule %}"
                   "{{ loop.index }}{% endfor %}")


@pytest.mark.parametrize("text, field", [
    ("{% for r in schedule %}{{ r.due_date }}{% endfor %}", "due_date"),
    ("{{ schedule[0].amount }}", "amount"),
    ("{{ schedule[-1]['principle'] }}", "principle"),
])
def test_unknown_row_field_refused(text: str, field: str) -> None:
    [err] = refusal(text).errors
    assert err.code == "contract_template_unknown_row_field"
    assert err.params["name"] == field and "due_on" in err.message("en")


@pytest.mark.parametrize("text, line", [
    ("第一条\n{{ amount ", 2),
    ("{% if amount %}\n开\n", 2),  # the end of the text, where endif is missing
    ("{% for r in schedule %}{{ r.n }}{% endfro %}", 1),
    ("a\nb\n{{ amount }}}}{% %}", 3),
])
def test_syntax_error_refused_with_its_line(text: str, line: int) -> None:
    [err] = refusal(text).errors
    assert err.code == "contract_template_syntax" and err.params["line"] == line
    assert f"第 {line} 行有语法错误" in err.message("zh-CN")


def test_unknown_filter_refused() -> None:
    [err] = refusal("{{ amount|shout }}").errors
    assert err.code == "contract_template_syntax" and "shout" in err.message("en")


@pytest.mark.parametrize("text, name", [
    ("{{ amount.__class__ }}", "__class__"),
    ("{{ schedule._x }}", "_x"),
    ("{{ borrower_name['__len__'] }}", "__len__"),
    ('{% include "other.j2" %}', "include"),
    ('{% import "m.j2" as m %}', "import"),
    ('{% extends "base.j2" %}', "extends"),
    ("{% for a in schedule %}{% for b in schedule %}{% for c in schedule %}"
     "{% endfor %}{% endfor %}{% endfor %}", "for (3+)"),
])
def test_unsafe_constructs_refused(text: str, name: str) -> None:
    errors = refusal(text).errors
    assert any(e.code == "contract_template_unsafe" and e.params["name"] == name
               for e in errors)


@pytest.mark.parametrize("text", [
    "{{ borrower_name * 100000 }}",
    "{{ schedule * 100000 }}",
    "{{ ((10 ** 64) ** 64) ** 64 }}",
    "{% set ns = namespace(x=3) %}{% for r in schedule %}{% for c in r.total %}"
    "{% set ns.x = ns.x * ns.x %}{% endfor %}{% endfor %}",
])
def test_runaway_arithmetic_refused(text: str) -> None:
    [err] = refusal(text).errors
    assert err.code == "contract_template_render"


@pytest.mark.parametrize("text", ["{{ range(3) }}", "{{ lipsum() }}", "{{ dict() }}"])
def test_globals_other_than_namespace_are_unknown(text: str) -> None:
    [err] = refusal(text).errors
    assert err.code == "contract_template_unknown_variable"


def test_failure_on_sample_data_refused() -> None:
    [err] = refusal("{{ amount + 1 }}").errors
    assert err.code == "contract_template_render"
    assert "示例数据" in err.message("zh-CN")
    [err] = refusal("{{ schedule[99].n }}").errors
    assert err.code == "contract_template_render"


def test_too_long_refused() -> None:
    [err] = refusal("字" * (MAX_LENGTH + 1)).errors
    assert err.code == "contract_template_too_long"


def test_render_refuses_a_missing_variable() -> None:
    variables = contract_variables(sample_data())
    del variables["signed_on"]
    with pytest.raises(TemplateRefused) as caught:
        render_text(sample_template(), variables)
    assert "signed_on" in caught.value.errors[0].message("en")
