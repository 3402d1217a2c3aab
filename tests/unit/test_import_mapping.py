"""Column mapping and cell conversion of spreadsheet imports (core.import_fields)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from core.fields import Choice, FieldDef, FieldType
from core.import_fields import (
    auto_map,
    cell_to_raw,
    header_text,
    mapping_errors,
    normalise_header,
    value_to_cell,
)

KIND = FieldDef("kind", FieldType.single_select, "客户类型", "Customer type", required=True,
                options=(Choice("individual", "个人", "Individual"),
                         Choice("company", "企业", "Company")))
NAME = FieldDef("name", FieldType.text, "名称", "Name", required=True)
MOBILE = FieldDef("mobile", FieldType.phone, "手机号", "Mobile")
INCOME = FieldDef("annual_income", FieldType.money, "年收入（元）", "Annual income (CNY)")
TAGS = FieldDef("tags", FieldType.multi_select, "标签", "Tags",
                options=(Choice("vip", "重要", "VIP"), Choice("new", "新客", "New")))
BORN = FieldDef("born", FieldType.date, "出生日期", "Date of birth")
AGREED = FieldDef("agreed", FieldType.boolean, "已同意", "Agreed")
FIELDS = [KIND, NAME, MOBILE, INCOME, TAGS, BORN, AGREED]


def test_headers_match_by_chinese_or_english_label_or_key() -> None:
    headers = ["客户类型 *", "Name", "mobile", "年收入(元)", "备注", " 标 签 "]
    assert auto_map(FIELDS, headers) == {"0": "kind", "1": "name", "2": "mobile",
                                         "3": "annual_income", "5": "tags"}


def test_english_headers_and_case() -> None:
    headers = ["CUSTOMER TYPE", "annual income (cny)", "Date of birth *"]
    assert auto_map(FIELDS, headers) == {"0": "kind", "1": "annual_income", "2": "born"}


def test_a_field_is_matched_once_first_column_wins() -> None:
    assert auto_map(FIELDS, ["名称", "Name", "name"]) == {"0": "name"}


def test_template_headers_match_back() -> None:
    for locale in ("zh-CN", "en"):
        headers = [header_text(f, locale) for f in FIELDS]
        assert auto_map(FIELDS, headers) == {str(i): f.key for i, f in enumerate(FIELDS)}
    assert header_text(KIND, "zh-CN") == "客户类型 *"
    assert normalise_header("年收入（元） *") == normalise_header("年收入(元)")


def test_mapping_errors_name_missing_required_twice_and_unknown() -> None:
    headers = ["名称", "名称2", "x"]
    errors = mapping_errors(FIELDS, headers, {"0": "name", "1": "name", "2": "nope",
                                              "9": "mobile"})
    codes = sorted((e.code, e.field) for e in errors)
    assert codes == [("import_column_missing", "kind"), ("import_column_twice", "name"),
                     ("import_column_unknown", "mobile"), ("import_column_unknown", "nope")]
    missing = next(e for e in errors if e.code == "import_column_missing")
    assert missing.message("zh-CN") == "缺少必填列“客户类型”"
    assert missing.message("en") == "the required column 'Customer type' is missing"
    assert mapping_errors(FIELDS, ["a", "b"], {"0": "kind", "1": "name"}) == []


def test_numbers_excel_stored_as_floats_become_exact_text() -> None:
    assert cell_to_raw(MOBILE, 13800138000.0) == "13800138000"
    assert cell_to_raw(MOBILE, 13800138000) == "13800138000"
    assert cell_to_raw(INCOME, 120000.5) == "120000.5"
    assert cell_to_raw(INCOME, 0.1 + 0.2) == "0.30000000000000004"  # refused later: 2 digits
    assert INCOME.coerce(cell_to_raw(INCOME, 50000.0)) == Decimal("50000.00")
    assert cell_to_raw(NAME, 42.0) == "42"


def test_choices_by_label_or_value_and_lists() -> None:
    assert cell_to_raw(KIND, "个人") == "individual"
    assert cell_to_raw(KIND, " company ") == "company"
    assert cell_to_raw(KIND, "Individual") == "individual"
    assert cell_to_raw(KIND, "其他") == "其他"  # left for coerce to refuse, naming the value
    assert cell_to_raw(TAGS, "重要，New、vip") == ["vip", "new", "vip"]
    assert TAGS.coerce(cell_to_raw(TAGS, "重要，New、vip")) == ("vip", "new")


def test_dates_booleans_and_blanks() -> None:
    assert cell_to_raw(BORN, datetime(1990, 5, 1)) == date(1990, 5, 1)
    assert cell_to_raw(BORN, "1990-05-01") == "1990-05-01"
    assert cell_to_raw(NAME, datetime(2026, 1, 2)) == "2026-01-02"
    assert AGREED.coerce(cell_to_raw(AGREED, "是")) is True
    assert AGREED.coerce(cell_to_raw(AGREED, True)) is True
    assert AGREED.coerce(cell_to_raw(AGREED, 0.0)) is False
    assert cell_to_raw(NAME, "   ") is None and cell_to_raw(NAME, None) is None


def test_exported_cells_import_back() -> None:
    for f, value in ((KIND, "company"), (TAGS, ["vip", "new"]), (AGREED, False),
                     (INCOME, "1234.50"), (BORN, "1990-05-01"), (MOBILE, "13800138000")):
        for locale in ("zh-CN", "en"):
            cell = value_to_cell(f, value, locale)
            back = f.coerce(cell_to_raw(f, float(cell) if isinstance(cell, Decimal) else cell))
            assert f.to_json(back) == value, (f.key, locale, cell)
    assert value_to_cell(KIND, "company", "zh-CN") == "企业"
    assert value_to_cell(AGREED, True, "en") == "Yes"
