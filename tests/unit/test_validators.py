"""Unit tests for core.validators (DOMAIN.md "Identity and personal data")."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from core import validators as v
from core.i18n import MESSAGES
from core.regions import PROVINCES
from core.validators import (
    CREDIT_CODE_ALPHABET,
    InvalidValue,
    check_credit_code,
    check_email,
    check_mobile,
    check_region,
    check_resident_id,
    credit_code_check_char,
    mask_generic,
    mask_mobile,
    mask_name,
    mask_resident_id,
    normalise_mobile,
    resident_id_birth_date,
    resident_id_check_char,
)

PROPERTY = hsettings(max_examples=200, deadline=None, database=None)

VALID_ID = "11010519491231002X"  # DOMAIN.md
VALID_CREDIT_CODE = "91110000600037341L"  # DOMAIN.md


def make_id(area: str, birth: str, seq: str = "123") -> str:
    """An 18-character resident ID with a correct check character."""
    first17 = area + birth + seq
    assert len(first17) == 17
    return first17 + resident_id_check_char(first17)


def code_of(fn, *args, **kwargs) -> str:
    with pytest.raises(InvalidValue) as info:
        fn(*args, **kwargs)
    return info.value.code


# --------------------------------------------------------------------------- resident ID


class TestResidentId:
    def test_domain_example_is_valid(self):
        assert check_resident_id(VALID_ID) == VALID_ID

    def test_check_char_of_domain_example_is_x(self):
        assert resident_id_check_char(VALID_ID[:17]) == "X"

    def test_lowercase_x_is_accepted_and_normalised(self):
        assert check_resident_id("11010519491231002x") == VALID_ID

    def test_surrounding_whitespace_is_stripped(self):
        assert check_resident_id(f"  {VALID_ID}\t") == VALID_ID

    @pytest.mark.parametrize("check", [c for c in "0123456789X" if c != "X"])
    def test_wrong_check_char_is_checksum_error(self, check):
        assert code_of(check_resident_id, VALID_ID[:17] + check) == "resident_id_checksum"

    def test_digit_check_char_valid_when_computed(self):
        value = make_id("140105", "19850615", "001")
        assert check_resident_id(value) == value

    @pytest.mark.parametrize(
        "birth",
        [
            "19900230",  # 30 February
            "19900231",
            "19901301",  # month 13
            "19900001",  # month 0
            "19900100",  # day 0
            "19900431",  # 31 April
            "19000229",  # 1900 is not a leap year
            "18991231",  # before 1900
            "00000101",
        ],
    )
    def test_invalid_birth_dates(self, birth):
        # The check character is correct, so only the date can be the reason.
        assert code_of(check_resident_id, make_id("110105", birth)) == "resident_id_birth"

    def test_leap_day_in_leap_year_is_valid(self):
        value = make_id("110105", "20000229")
        assert check_resident_id(value) == value

    def test_future_birth_date_is_rejected(self):
        today = date(2020, 6, 1)
        tomorrow = make_id("110105", "20200602")
        assert code_of(check_resident_id, tomorrow, today=today) == "resident_id_birth"

    def test_birth_date_today_is_accepted(self):
        today = date(2020, 6, 1)
        value = make_id("110105", "20200601")
        assert check_resident_id(value, today=today) == value

    def test_future_relative_to_real_today_is_rejected(self):
        future = date.today() + timedelta(days=400)
        value = make_id("110105", future.strftime("%Y%m%d"))
        assert code_of(check_resident_id, value) == "resident_id_birth"

    @pytest.mark.parametrize(
        "value",
        [
            VALID_ID[:17],  # 17 characters
            VALID_ID + "0",  # 19 characters
            "1101051949123100AX",  # letters
            "11010519491231002A",  # wrong final letter
            "X10105194912310021",  # X not at the end
            "110105-19491231-002X",
            "",
            "                  ",
        ],
    )
    def test_bad_format(self, value):
        assert code_of(check_resident_id, value) == "resident_id_format"

    @pytest.mark.parametrize(
        "area, birth",
        [
            ("500101", "19500101"),  # Chongqing (50) became a province in 1997
            ("460100", "19480505"),  # Hainan (46) became a province in 1988
            ("710000", "19300101"),
        ],
    )
    def test_area_code_newer_than_birth_year_is_not_rejected(self, area, birth):
        value = make_id(area, birth)
        assert check_resident_id(value) == value

    def test_birth_date_extraction(self):
        assert resident_id_birth_date(VALID_ID) == date(1949, 12, 31)

    def test_check_char_needs_exactly_17_digits(self):
        with pytest.raises(ValueError):
            resident_id_check_char("1234")

    def test_fullwidth_digits_are_rejected_or_normalised(self):
        fullwidth = VALID_ID[:17].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        try:
            out = check_resident_id(fullwidth + "X")
        except InvalidValue:
            return
        assert out == VALID_ID


_first17_strategy = st.builds(
    lambda area, born, seq: area + born.strftime("%Y%m%d") + seq,
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31)),
    st.text(alphabet="0123456789", min_size=3, max_size=3),
)


@PROPERTY
@given(_first17_strategy)
def test_property_resident_id_with_computed_check_char_is_valid(first17):
    value = first17 + resident_id_check_char(first17)
    assert check_resident_id(value, today=date(2021, 1, 1)) == value


@PROPERTY
@given(_first17_strategy, st.integers(min_value=0, max_value=17), st.integers(1, 10))
def test_property_single_character_change_is_detected(first17, pos, shift):
    value = first17 + resident_id_check_char(first17)
    alphabet = "0123456789X" if pos == 17 else "0123456789"
    old = value[pos]
    new = alphabet[(alphabet.index(old) + shift) % len(alphabet)]
    if new == old:  # shift == len(alphabet) on a 10-digit alphabet
        new = alphabet[(alphabet.index(old) + 1) % len(alphabet)]
    changed = value[:pos] + new + value[pos + 1:]
    assert changed != value
    with pytest.raises(InvalidValue) as info:
        check_resident_id(changed, today=date(2021, 1, 1))
    assert info.value.code in {"resident_id_checksum", "resident_id_birth"}


# --------------------------------------------------------------------------- credit code


class TestCreditCode:
    def test_domain_example_is_valid(self):
        assert check_credit_code(VALID_CREDIT_CODE) == VALID_CREDIT_CODE

    def test_check_char_of_domain_example(self):
        assert credit_code_check_char(VALID_CREDIT_CODE[:17]) == "L"

    def test_lowercase_is_normalised(self):
        assert check_credit_code(" " + VALID_CREDIT_CODE.lower() + " ") == VALID_CREDIT_CODE

    def test_alphabet_has_31_characters_without_forbidden_letters(self):
        assert len(CREDIT_CODE_ALPHABET) == 31
        assert not set("IOSVZ") & set(CREDIT_CODE_ALPHABET)

    @pytest.mark.parametrize("letter", list("IOSVZ"))
    @pytest.mark.parametrize("pos", [0, 8, 17])
    def test_forbidden_letters_are_format_errors(self, letter, pos):
        value = VALID_CREDIT_CODE[:pos] + letter + VALID_CREDIT_CODE[pos + 1:]
        assert code_of(check_credit_code, value) == "credit_code_format"

    @pytest.mark.parametrize(
        "value",
        [VALID_CREDIT_CODE[:17], VALID_CREDIT_CODE + "0", "", "9111000060003734-L"],
    )
    def test_wrong_length_or_characters_are_format_errors(self, value):
        assert code_of(check_credit_code, value) == "credit_code_format"

    def test_wrong_check_char_is_checksum_error(self):
        assert code_of(check_credit_code, VALID_CREDIT_CODE[:17] + "M") == "credit_code_checksum"


_credit17 = st.text(alphabet=CREDIT_CODE_ALPHABET, min_size=17, max_size=17)


@PROPERTY
@given(_credit17)
def test_property_credit_code_with_computed_check_char_is_valid(first17):
    check = credit_code_check_char(first17)
    assert check in CREDIT_CODE_ALPHABET
    assert check_credit_code(first17 + check) == first17 + check


@PROPERTY
@given(_credit17, st.integers(0, 17), st.integers(1, 30))
def test_property_credit_code_single_substitution_is_detected(first17, pos, shift):
    value = first17 + credit_code_check_char(first17)
    old = value[pos]
    new = CREDIT_CODE_ALPHABET[(CREDIT_CODE_ALPHABET.index(old) + shift) % 31]
    changed = value[:pos] + new + value[pos + 1:]
    assert changed != value
    with pytest.raises(InvalidValue) as info:
        check_credit_code(changed)
    assert info.value.code == "credit_code_checksum"


# --------------------------------------------------------------------------- mobile


class TestMobile:
    @pytest.mark.parametrize(
        "raw",
        [
            "13800138000",
            "+86 138-0013-8000",
            "0086 13800138000",
            "+8613800138000",
            "(+86) 138 0013 8000",
            " 138 0013 8000 ",
        ],
    )
    def test_normalised_forms(self, raw):
        assert check_mobile(raw) == "13800138000"

    @pytest.mark.parametrize("prefix", ["3", "4", "5", "6", "7", "8", "9"])
    def test_second_digit_three_to_nine(self, prefix):
        assert check_mobile(f"1{prefix}012345678") == f"1{prefix}012345678"

    @pytest.mark.parametrize(
        "raw",
        [
            "12800138000",  # second digit 2
            "11800138000",
            "1380013800",  # 10 digits
            "138001380001",  # 12 digits
            "23800138000",
            "1380013800a",
            "8613800138000",  # 86 without + or 00
            "+85213800138000",
            "",
        ],
    )
    def test_rejected(self, raw):
        assert code_of(check_mobile, raw) == "mobile"

    def test_normalise_mobile_only_strips(self):
        assert normalise_mobile("+86 (138) 0013-8000") == "13800138000"
        assert normalise_mobile("12345") == "12345"

    def test_fullwidth_digits_are_rejected_or_normalised(self):
        try:
            out = check_mobile("138００１３８０００")
        except InvalidValue:
            return
        assert out == "13800138000"


# --------------------------------------------------------------------------- email, region


class TestEmail:
    def test_lowercased_and_stripped(self):
        assert check_email("  Li.Lei@Example.COM ") == "li.lei@example.com"

    @pytest.mark.parametrize(
        "raw", ["nope", "a@b", "a b@c.cn", "@c.cn", "a@@c.cn", "a@" + "b" * 250 + ".cn"]
    )
    def test_rejected(self, raw):
        assert code_of(check_email, raw) == "email"


class TestRegion:
    def test_taiyuan_xiaodian(self):
        assert check_region("140105") == "140105"

    def test_stripped(self):
        assert check_region(" 140105 ") == "140105"

    @pytest.mark.parametrize("province", sorted(PROVINCES))
    def test_every_province_prefix_accepted(self, province):
        assert check_region(province + "0000") == province + "0000"

    @pytest.mark.parametrize("raw", ["990000", "000000", "100000", "14010", "1401050", "14010a"])
    def test_rejected(self, raw):
        assert code_of(check_region, raw) == "region"


def test_every_validator_code_has_messages():
    bad = [
        (check_resident_id, "x"),
        (check_resident_id, make_id("110105", "19900230")),
        (check_resident_id, VALID_ID[:17] + "0"),
        (check_credit_code, "x"),
        (check_credit_code, VALID_CREDIT_CODE[:17] + "M"),
        (check_mobile, "x"),
        (check_email, "x"),
        (check_region, "x"),
    ]
    codes = {code_of(fn, raw) for fn, raw in bad}
    assert len(codes) == 8
    for code in codes:
        assert set(MESSAGES[code]) == {"zh-CN", "en"}


# --------------------------------------------------------------------------- masking


class TestMasking:
    def test_resident_id(self):
        assert mask_resident_id(VALID_ID) == "110***********002X"

    def test_mobile(self):
        assert mask_mobile("13800138000") == "138****8000"

    def test_name_two_characters(self):
        assert mask_name("张三") == "张*"

    def test_name_four_characters(self):
        assert mask_name("欧阳娜娜") == "欧***"

    def test_name_single_character_and_empty(self):
        assert mask_name("张") == "张"
        assert mask_name("") == ""

    def test_generic_keeps_last_four(self):
        assert mask_generic("6222021234567890") == "************7890"
        assert mask_generic(VALID_CREDIT_CODE) == "*" * 14 + "341L"

    @pytest.mark.parametrize("fn", [mask_resident_id, mask_mobile, mask_generic])
    def test_short_values_are_fully_masked(self, fn):
        assert fn("1234") == "****"
        assert fn("") == ""

    def test_masks_never_reveal_middle(self):
        masked = mask_resident_id(VALID_ID)
        assert len(masked) == len(VALID_ID)
        assert "19491231" not in masked


def test_invalid_value_is_value_error_with_code():
    err = InvalidValue("mobile")
    assert isinstance(err, ValueError)
    assert err.code == "mobile"
    assert v.InvalidValue is InvalidValue
