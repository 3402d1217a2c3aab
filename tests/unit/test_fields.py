"""Unit tests for core.fields: FieldDef.coerce per type, column round trips, field_from_dict."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from core.fields import (
    Choice,
    FieldDef,
    FieldProblem,
    FieldType,
    Sensitivity,
    field_from_dict,
    from_column,
    mask,
    to_column,
)
from core.i18n import MESSAGES

PROPERTY = hsettings(max_examples=200, deadline=None, database=None)

OPTIONS = (Choice("a", "甲", "A"), Choice("b", "乙", "B"), Choice("c", "丙", "C"))
VALID_ID = "11010519491231002X"
VALID_CREDIT_CODE = "91110000600037341L"


def fd(ftype: FieldType | str, **kw) -> FieldDef:
    ftype = FieldType(ftype)
    if ftype in (FieldType.single_select, FieldType.multi_select):
        kw.setdefault("options", OPTIONS)
    return FieldDef(key="f", type=ftype, label_zh="字段", label_en="Field", **kw)


def problem(f: FieldDef, raw) -> FieldProblem:
    with pytest.raises(FieldProblem) as info:
        f.coerce(raw)
    return info.value


# --------------------------------------------------------------------------- empty values


@pytest.mark.parametrize("ftype", list(FieldType))
@pytest.mark.parametrize("raw", [None, "", []])
def test_empty_values_coerce_to_none(ftype, raw):
    assert fd(ftype).coerce(raw) is None


# --------------------------------------------------------------------------- text


class TestText:
    def test_strips(self):
        assert fd("text").coerce("  王小明 \n") == "王小明"

    def test_default_max_length_200(self):
        f = fd("text")
        assert f.coerce("字" * 200) == "字" * 200
        p = problem(f, "字" * 201)
        assert p.code == "too_long"
        assert p.params == {"max": 200}

    def test_custom_max_length_counts_after_strip(self):
        f = fd("text", max_length=3)
        assert f.coerce("  abc  ") == "abc"
        p = problem(f, "abcd")
        assert (p.code, p.params) == ("too_long", {"max": 3})

    def test_pattern_must_match_whole_value(self):
        f = fd("text", pattern=r"[A-Z]{3}")
        assert f.coerce(" ABC ") == "ABC"
        assert problem(f, "ABCD").code == "pattern"
        assert problem(f, "xABC").code == "pattern"
        assert problem(f, "abc").code == "pattern"

    @pytest.mark.parametrize("raw", [5, 1.5, True, ["a"], {"a": 1}, b"abc"])
    def test_non_string_refused(self, raw):
        assert problem(fd("text"), raw).code == "type_text"


class TestLongText:
    def test_not_stripped(self):
        assert fd("long_text").coerce("  段落\n\n") == "  段落\n\n"

    def test_default_max_length_10000(self):
        f = fd("long_text")
        assert f.coerce("x" * 10000) == "x" * 10000
        p = problem(f, "x" * 10001)
        assert (p.code, p.params) == ("too_long", {"max": 10000})

    def test_non_string_refused(self):
        assert problem(fd("long_text"), 42).code == "type_text"


# --------------------------------------------------------------------------- integer


class TestInteger:
    @pytest.mark.parametrize(
        "raw, expected", [("42", 42), (" -7 ", -7), ("+3", 3), (42, 42), (0, 0), ("0", 0)]
    )
    def test_accepts(self, raw, expected):
        out = fd("integer").coerce(raw)
        assert out == expected
        assert type(out) is int

    @pytest.mark.parametrize(
        "raw",
        ["1.5", "1.0", 1.5, 2.0, True, False, "abc", "1e3", "9" * 19, "4 2", "0x10", [1], {}],
    )
    def test_refuses(self, raw):
        assert problem(fd("integer"), raw).code == "type_integer"

    def test_bounds(self):
        f = fd("integer", min_value=Decimal(1), max_value=Decimal(10))
        assert f.coerce("1") == 1
        assert f.coerce("10") == 10
        low = problem(f, "0")
        assert (low.code, low.params) == ("min_value", {"min": Decimal(1)})
        high = problem(f, 11)
        assert (high.code, high.params) == ("max_value", {"max": Decimal(10)})

    def test_fractional_decimal_refused(self):
        assert problem(fd("integer"), Decimal("1.5")).code == "type_integer"


# --------------------------------------------------------------------------- decimal / money / percent


class TestDecimal:
    @pytest.mark.parametrize(
        "raw, expected",
        [
            ("3.14", Decimal("3.14")),
            ("1.23456", Decimal("1.23456")),
            (" -2 ", Decimal("-2")),
            (7, Decimal(7)),
            (Decimal("0.5"), Decimal("0.5")),
            ("1,000.5", Decimal("1000.5")),
        ],
    )
    def test_accepts(self, raw, expected):
        out = fd("decimal").coerce(raw)
        assert isinstance(out, Decimal)
        assert out == expected

    def test_float_refused(self):
        assert problem(fd("decimal"), 0.5).code == "float_refused"

    @pytest.mark.parametrize(
        "raw", [True, "abc", "NaN", "Infinity", "-inf", "1e15", "-1000000000000000", [1], {}]
    )
    def test_refuses(self, raw):
        assert problem(fd("decimal"), raw).code == "type_decimal"

    def test_bounds(self):
        f = fd("decimal", min_value=Decimal("0"), max_value=Decimal("1"))
        assert problem(f, "-0.001").code == "min_value"
        assert problem(f, "1.001").code == "max_value"
        assert f.coerce("0.999") == Decimal("0.999")


class TestMoney:
    @pytest.mark.parametrize("raw", [0.1, 1.0, 100.25])
    def test_float_refused(self, raw):
        assert problem(fd("money"), raw).code == "float_refused"

    @pytest.mark.parametrize("raw", ["1.005", "0.001", "12.345", Decimal("0.125")])
    def test_more_than_two_decimals_refused(self, raw):
        assert problem(fd("money"), raw).code == "money_digits"

    def test_thousands_separator(self):
        out = fd("money").coerce("1,234.50")
        assert out == Decimal("1234.50")
        assert str(out) == "1234.50"

    @pytest.mark.parametrize(
        "raw, text", [("5", "5.00"), (5, "5.00"), ("0.1", "0.10"), ("-3.5", "-3.50")]
    )
    def test_quantized_to_fen(self, raw, text):
        out = fd("money").coerce(raw)
        assert out == Decimal(text)
        assert str(out) == text
        assert out.as_tuple().exponent == -2

    def test_upper_limit(self):
        f = fd("money")
        assert f.coerce("999999999999999.99") == Decimal("999999999999999.99")
        assert problem(f, "1000000000000000").code == "type_decimal"

    def test_not_a_number(self):
        assert problem(fd("money"), "十元").code == "type_decimal"

    def test_min_value(self):
        f = fd("money", min_value=Decimal("0"))
        p = problem(f, "-0.01")
        assert (p.code, p.params) == ("min_value", {"min": Decimal("0")})


class TestPercent:
    def test_accepts_string(self):
        assert fd("percent").coerce("12.5") == Decimal("12.5")

    def test_not_quantized_like_money(self):
        assert str(fd("percent").coerce("0.125")) == "0.125"

    def test_float_refused(self):
        assert problem(fd("percent"), 12.5).code == "float_refused"


# --------------------------------------------------------------------------- dates


class TestDate:
    def test_leap_day_2024_valid(self):
        assert fd("date").coerce("2024-02-29") == date(2024, 2, 29)

    @pytest.mark.parametrize(
        "raw", ["2026-02-29", "2024-13-01", "2024-00-10", "2024-04-31", "abc", "2024/01/01"]
    )
    def test_invalid(self, raw):
        assert problem(fd("date"), raw).code == "type_date"

    def test_date_object_passes(self):
        d = date(2025, 1, 2)
        assert fd("date").coerce(d) == d

    def test_datetime_object_refused(self):
        assert problem(fd("date"), datetime(2025, 1, 2, tzinfo=UTC)).code == "type_date"

    def test_stripped(self):
        assert fd("date").coerce(" 2025-01-02 ") == date(2025, 1, 2)


class TestDatetime:
    def test_with_offset(self):
        out = fd("datetime").coerce("2026-01-01T08:00:00+08:00")
        assert out.utcoffset() == timedelta(hours=8)
        assert out == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)

    def test_z_suffix_is_utc(self):
        out = fd("datetime").coerce("2026-01-01T00:00:00Z")
        assert out.utcoffset() == timedelta(0)

    @pytest.mark.parametrize("raw", ["2026-01-01T08:00:00", "2026-01-01", "garbage"])
    def test_needs_timezone(self, raw):
        assert problem(fd("datetime"), raw).code == "type_datetime"

    def test_naive_object_refused(self):
        assert problem(fd("datetime"), datetime(2026, 1, 1)).code == "type_datetime"

    def test_aware_object_passes(self):
        value = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8)))
        assert fd("datetime").coerce(value) is value


# --------------------------------------------------------------------------- boolean


class TestBoolean:
    @pytest.mark.parametrize("raw", [True, "true", "TRUE", " yes ", "1", 1, "是"])
    def test_true(self, raw):
        assert fd("boolean").coerce(raw) is True

    @pytest.mark.parametrize("raw", [False, "false", "False", "no", "0", 0, "否"])
    def test_false(self, raw):
        assert fd("boolean").coerce(raw) is False

    @pytest.mark.parametrize("raw", ["maybe", "对", 2, -1, 1.0, 0.0, "t"])
    def test_refused(self, raw):
        assert problem(fd("boolean"), raw).code == "type_boolean"

    @pytest.mark.parametrize("raw", [["true"], {"v": True}])
    def test_unhashable_refused_with_field_problem(self, raw):
        assert problem(fd("boolean"), raw).code == "type_boolean"


# --------------------------------------------------------------------------- selects


class TestSingleSelect:
    def test_known_option(self):
        assert fd("single_select").coerce("b") == "b"

    def test_unknown_option(self):
        p = problem(fd("single_select"), "z")
        assert (p.code, p.params) == ("choice", {"value": "z"})

    def test_label_is_not_a_value(self):
        assert problem(fd("single_select"), "甲").code == "choice"

    def test_non_string(self):
        assert problem(fd("single_select"), 1).code == "choice"

    def test_no_options_refuses_everything(self):
        f = FieldDef(key="f", type=FieldType.single_select, label_zh="x", label_en="x")
        assert problem(f, "a").code == "choice"

    def test_choice_label(self):
        assert OPTIONS[0].label("en") == "A"
        assert OPTIONS[0].label("zh-CN") == "甲"


class TestMultiSelect:
    def test_list(self):
        assert fd("multi_select").coerce(["a", "c"]) == ("a", "c")

    def test_tuple(self):
        assert fd("multi_select").coerce(("b",)) == ("b",)

    def test_comma_separated_string(self):
        assert fd("multi_select").coerce(" a, c ,, ") == ("a", "c")

    def test_duplicates_removed_in_order(self):
        assert fd("multi_select").coerce(["c", "a", "c", "a"]) == ("c", "a")

    def test_unknown_option(self):
        p = problem(fd("multi_select"), ["a", "z"])
        assert (p.code, p.params) == ("choice", {"value": "z"})

    @pytest.mark.parametrize("raw", [5, {"a": 1}, True])
    def test_not_a_list(self, raw):
        assert problem(fd("multi_select"), raw).code == "type_list"

    def test_unhashable_item_refused_with_field_problem(self):
        assert problem(fd("multi_select"), [["a"]]).code == "choice"


# --------------------------------------------------------------------------- identifier types


class TestIdentifierTypes:
    def test_phone_normalised(self):
        assert fd("phone").coerce("+86 138-0013-8000") == "13800138000"
        assert fd("phone").coerce("0086 13800138000") == "13800138000"

    @pytest.mark.parametrize("raw", ["12800138000", "1380013800"])
    def test_phone_rejected(self, raw):
        assert problem(fd("phone"), raw).code == "mobile"

    def test_phone_number_type_refused(self):
        assert problem(fd("phone"), 13800138000).code == "type_text"

    def test_email(self):
        assert fd("email").coerce(" Wang@Example.CN ") == "wang@example.cn"
        assert problem(fd("email"), "wang@").code == "email"

    def test_resident_id(self):
        assert fd("resident_id").coerce("11010519491231002x") == VALID_ID
        assert problem(fd("resident_id"), VALID_ID[:17] + "1").code == "resident_id_checksum"
        assert problem(fd("resident_id"), VALID_ID[:17]).code == "resident_id_format"

    def test_credit_code(self):
        assert fd("credit_code").coerce(VALID_CREDIT_CODE.lower()) == VALID_CREDIT_CODE
        assert problem(fd("credit_code"), VALID_CREDIT_CODE[:17] + "I").code == (
            "credit_code_format"
        )
        assert problem(fd("credit_code"), VALID_CREDIT_CODE[:17] + "M").code == (
            "credit_code_checksum"
        )

    def test_region(self):
        assert fd("region").coerce("140105") == "140105"
        assert problem(fd("region"), "990000").code == "region"
        assert problem(fd("region"), 140105).code == "type_text"


class TestAttachment:
    """An attachment is a document id (a UUID); that the document exists, in the same
    tenant and record, is checked by the write path (tests/integration/test_documents.py)."""

    DOC = "7d1f7c0e-1234-4000-8000-00000000abcd"

    @pytest.mark.parametrize("raw", [DOC, DOC.upper(), f" {DOC} ", UUID(DOC)])
    def test_accepted_in_canonical_form(self, raw):
        assert fd("attachment").coerce(raw) == self.DOC

    @pytest.mark.parametrize("raw", ["abc", "att_0123456789", "x" * 36, "../../etc/pw", 12345678,
                                     DOC + "0", ["a"]])
    def test_refused(self, raw):
        assert problem(fd("attachment"), raw).code == "attachment"


class TestReference:
    def test_uuid_string(self):
        u = uuid4()
        out = fd("reference").coerce(str(u))
        assert isinstance(out, UUID)
        assert out == u

    def test_uuid_object(self):
        u = uuid4()
        assert fd("reference").coerce(u) is u

    @pytest.mark.parametrize("raw", ["not-a-uuid", "1234", 5, {"id": 1}])
    def test_refused(self, raw):
        assert problem(fd("reference"), raw).code == "reference"


# --------------------------------------------------------------------------- masking, json


def test_mask_uses_domain_forms():
    assert mask(fd("resident_id"), VALID_ID) == "110***********002X"
    assert mask(fd("phone"), "13800138000") == "138****8000"
    card = FieldDef("card", FieldType.text, "卡号", "Card", sensitivity=Sensitivity.secret)
    assert mask(card, "6222021234567890") == "************7890"  # secret: last four
    assert mask(fd("text"), "张三丰") == "张**"  # a masked name (field policy "masked")
    assert mask(fd("money"), "120000.00") == "***"


class TestJson:
    def test_money_round_trip(self):
        f = fd("money")
        value = f.coerce("1234.5")
        assert f.to_json(value) == "1234.50"
        assert f.from_json(f.to_json(value)) == value

    def test_date_and_reference_and_multi(self):
        assert fd("date").to_json(date(2024, 2, 29)) == "2024-02-29"
        u = uuid4()
        assert fd("reference").to_json(u) == str(u)
        assert fd("multi_select").to_json(("a", "b")) == ["a", "b"]
        assert fd("multi_select").from_json(["a", "b"]) == ("a", "b")

    def test_none(self):
        assert fd("money").to_json(None) is None
        assert fd("money").from_json(None) is None


# --------------------------------------------------------------------------- columns


class TestColumns:
    @pytest.mark.parametrize(
        "value, fen",
        [
            (Decimal("0.01"), 1),
            (Decimal("0.10"), 10),
            (Decimal("123456789012.34"), 12345678901234),
            (Decimal("999999999999999.99"), 99999999999999999),
            (Decimal("-5.00"), -500),
            (Decimal("0.00"), 0),
        ],
    )
    def test_money_as_integer_fen(self, value, fen):
        f = fd("money")
        col = to_column(f, value)
        assert type(col) is int
        assert col == fen
        back = from_column(f, col)
        assert back == value
        assert back.as_tuple().exponent == -2

    def test_decimal_as_text(self):
        f = fd("decimal")
        assert to_column(f, Decimal("3.140")) == "3.140"
        assert from_column(f, "3.140") == Decimal("3.140")

    def test_percent_as_text(self):
        assert to_column(fd("percent"), Decimal("1E+2")) == "100"

    def test_multi_select(self):
        f = fd("multi_select")
        assert to_column(f, ("a", "b")) == ["a", "b"]
        assert from_column(f, ["a", "b"]) == ("a", "b")

    @pytest.mark.parametrize("ftype", list(FieldType))
    def test_none_passes(self, ftype):
        assert to_column(fd(ftype), None) is None
        assert from_column(fd(ftype), None) is None

    def test_other_types_unchanged(self):
        d = date(2024, 1, 1)
        assert to_column(fd("date"), d) is d
        assert from_column(fd("text"), "x") == "x"


@PROPERTY
@given(
    st.decimals(
        min_value=Decimal(0),
        max_value=Decimal("999999999999.99"),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_property_money_column_round_trip(value):
    f = fd("money")
    col = to_column(f, value)
    assert type(col) is int
    assert Decimal(col) == value * 100
    assert from_column(f, col) == value
    # and through the input path
    assert from_column(f, to_column(f, f.coerce(format(value, "f")))) == value


# --------------------------------------------------------------------------- field_from_dict


class TestFieldFromDict:
    def test_label_dict_with_locales(self):
        f = field_from_dict({"key": "age", "type": "integer", "label": {"zh-CN": "年龄", "en": "Age"}})
        assert (f.label_zh, f.label_en) == ("年龄", "Age")
        assert f.label("en") == "Age"
        assert f.label("zh-CN") == "年龄"
        assert f.label() == "年龄"

    def test_label_dict_with_zh(self):
        f = field_from_dict({"key": "age", "type": "integer", "label": {"zh": "年龄"}})
        assert (f.label_zh, f.label_en) == ("年龄", "age")

    def test_flat_labels_win(self):
        f = field_from_dict(
            {
                "key": "age",
                "type": "integer",
                "label_zh": "岁数",
                "label_en": "Years",
                "label": {"zh-CN": "年龄", "en": "Age"},
            }
        )
        assert (f.label_zh, f.label_en) == ("岁数", "Years")

    def test_no_label_uses_key(self):
        f = field_from_dict({"key": "age", "type": "integer"})
        assert (f.label_zh, f.label_en) == ("age", "age")

    def test_type_and_custom_flags(self):
        f = field_from_dict({"key": "income", "type": "money", "required": True})
        assert f.type is FieldType.money
        assert f.required is True
        assert f.custom is True and f.column is False
        builtin = field_from_dict({"key": "income", "type": "money"}, custom=False)
        assert builtin.custom is False and builtin.column is True

    @pytest.mark.parametrize(
        "key", ["Bad-Key", "Bad", "1abc", "_a", "", "a-b", "a b", "名字", "a" * 64]
    )
    def test_bad_key(self, key):
        with pytest.raises(FieldProblem) as info:
            field_from_dict({"key": key, "type": "text"})
        assert info.value.code == "custom_field_key"

    def test_missing_key(self):
        with pytest.raises(FieldProblem) as info:
            field_from_dict({"type": "text"})
        assert info.value.code == "custom_field_key"

    def test_longest_key(self):
        assert field_from_dict({"key": "a" * 63, "type": "text"}).key == "a" * 63

    @pytest.mark.parametrize("ftype", ["blob", "Text", None, ""])
    def test_unknown_type(self, ftype):
        with pytest.raises(FieldProblem) as info:
            field_from_dict({"key": "k", "type": ftype})
        assert info.value.code == "unknown_field_type"
        assert info.value.params == {"type": ftype}

    def test_options_dicts_and_strings(self):
        f = field_from_dict(
            {
                "key": "grade",
                "type": "single_select",
                "options": [{"value": "a", "zh": "优", "en": "Good"}, {"value": "b"}, "c"],
            }
        )
        assert f.options == (
            Choice("a", "优", "Good"),
            Choice("b", "b", "b"),
            Choice("c", "c", "c"),
        )
        assert f.coerce("c") == "c"
        assert problem(f, "d").code == "choice"

    def test_rules_applied(self):
        f = field_from_dict(
            {
                "key": "amount",
                "type": "money",
                "rules": {"min_value": "0.01", "max_value": 1000},
            }
        )
        assert f.min_value == Decimal("0.01")
        assert f.max_value == Decimal("1000")
        assert problem(f, "0").code == "min_value"
        assert problem(f, "1000.01").code == "max_value"

    def test_top_level_rule_overrides_rules(self):
        f = field_from_dict(
            {"key": "nick", "type": "text", "max_length": 2, "rules": {"max_length": 50}}
        )
        assert f.max_length == 2
        assert problem(f, "abc").code == "too_long"

    def test_pattern_rule(self):
        f = field_from_dict({"key": "code", "type": "text", "rules": {"pattern": r"\d{4}"}})
        assert f.coerce("1234") == "1234"
        assert problem(f, "12a4").code == "pattern"

    @pytest.mark.parametrize(
        "ftype, sens",
        [("resident_id", "secret"), ("phone", "secret"), ("text", "public"), ("email", "public")],
    )
    def test_default_sensitivity(self, ftype, sens):
        f = field_from_dict({"key": "k", "type": ftype})
        assert f.sensitivity is Sensitivity(sens)
        assert f.is_secret is (sens == "secret")

    def test_explicit_sensitivity(self):
        f = field_from_dict({"key": "k", "type": "text", "sensitivity": "personal"})
        assert f.sensitivity is Sensitivity.personal

    def test_describe_round_trips(self):
        data = {
            "key": "amount",
            "type": "money",
            "label": {"zh-CN": "金额", "en": "Amount"},
            "required": True,
            "min_value": "0.01",
        }
        f = field_from_dict(data)
        d = f.describe()
        assert d["type"] == "money"
        assert d["min_value"] == "0.01"
        assert "max_value" not in d
        assert field_from_dict(d) == f

    def test_key_with_trailing_newline_refused(self):
        with pytest.raises(FieldProblem) as info:
            field_from_dict({"key": "amount\n", "type": "text"})
        assert info.value.code == "custom_field_key"

    @pytest.mark.parametrize(
        "extra",
        [{"min_value": "abc"}, {"sensitivity": "bogus"}, {"label": ["金额"]},
         {"pattern": "(unclosed"}, {"max_length": 0}],
        ids=["min_value", "sensitivity", "label-list", "pattern", "max_length"],
    )
    def test_bad_definition_raises_field_problem(self, extra):
        with pytest.raises(FieldProblem):
            field_from_dict({"key": "amount", "type": "money", **extra})

    def test_plain_string_label_serves_both_languages(self):
        f = field_from_dict({"key": "amount", "type": "money", "label": "金额"})
        assert (f.label("zh-CN"), f.label("en")) == ("金额", "金额")


# --------------------------------------------------------------------------- message codes

BAD_INPUTS = [
    "garbage",
    "x" * 20000,
    "1.005",
    "1e99",
    "NaN",
    "-5",
    "2026-02-29",
    "2026-01-01T00:00:00",
    "maybe",
    "z",
    "a,z",
    "12800138000",
    "no-at-sign",
    VALID_ID[:17],
    VALID_ID[:17] + "1",
    "11010519490230002X",
    VALID_CREDIT_CODE[:17] + "I",
    VALID_CREDIT_CODE[:17] + "M",
    "990000",
    "!!",
    0.1,
    1.5,
    True,
    2,
    -1,
    10**30,
    Decimal("1.5"),
    datetime(2026, 1, 1),
    date(2026, 1, 1),
    b"bytes",
    ("z",),
    object(),
]


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_field_problem_code_has_messages_in_both_locales():
    seen: set[str] = set()
    for ftype in FieldType:
        f = fd(
            ftype,
            min_value=Decimal(0),
            max_value=Decimal(100),
            pattern=r"[a-z]+" if ftype is FieldType.text else None,
        )
        for raw in BAD_INPUTS:
            try:
                f.coerce(raw)
            except FieldProblem as exc:
                seen.add(exc.code)
                assert exc.code in MESSAGES, (ftype, raw, exc.code)
                texts = MESSAGES[exc.code]
                assert texts.get("zh-CN") and texts.get("en"), exc.code
                for locale in ("zh-CN", "en"):
                    # every placeholder can be filled from the label and the problem's params
                    assert _placeholders(texts[locale]) <= {"label", *exc.params}, (
                        exc.code,
                        exc.params,
                    )
    for data in ({"key": "Bad-Key", "type": "text"}, {"key": "ok", "type": "blob"}):
        with pytest.raises(FieldProblem) as info:
            field_from_dict(data)
        seen.add(info.value.code)
        assert info.value.code in MESSAGES
        assert MESSAGES[info.value.code]["zh-CN"] and MESSAGES[info.value.code]["en"]
    expected = {
        "type_text", "too_long", "pattern", "min_value", "max_value", "type_integer",
        "type_decimal", "money_digits", "float_refused", "type_date", "type_datetime",
        "type_boolean", "choice", "type_list", "mobile", "email", "resident_id_format",
        "resident_id_checksum", "resident_id_birth", "credit_code_format",
        "credit_code_checksum", "region", "attachment", "reference", "custom_field_key",
        "unknown_field_type",
    }  # fmt: skip
    assert expected <= seen, expected - seen
