"""The pure part of spreadsheet import and export: which fields a column can be, how a
header finds its field, and how a cell becomes the raw input `FieldDef.coerce` expects
(and a stored value becomes a cell). No I/O here, so it is unit-tested on its own.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from core.errors import FieldError
from core.fields import FieldDef, FieldType
from core.i18n import register_messages

# Messages of imports and exports (core.imports uses them too).
register_messages({
    "import_column_missing": {"zh-CN": "缺少必填列“{label}”",
                              "en": "the required column '{label}' is missing"},
    "import_column_twice": {"zh-CN": "字段“{label}”对应了多列",
                            "en": "'{label}' is mapped to more than one column"},
    "import_column_unknown": {"zh-CN": "列 {column} 对应的字段“{field}”不存在或不可导入",
                              "en": "column {column} is mapped to '{field}', which does not "
                                    "exist or cannot be imported"},
    "import_duplicate_in_file": {"zh-CN": "{label}与文件第 {first_row} 行重复",
                                 "en": "{label} repeats row {first_row} of the file"},
    "import_duplicate_existing": {"zh-CN": "{label}已存在（与系统中已有记录重复）",
                                  "en": "{label} already exists (matches an existing record)"},
    "import_blacklisted": {"zh-CN": "{label}命中黑名单，拒绝导入",
                           "en": "{label} is on the blacklist: refused"},
    "import_possible_duplicate": {"zh-CN": "疑似重复：{reason}",
                                  "en": "possible duplicate: {reason}"},
    "import_file_unreadable": {"zh-CN": "文件不是可读取的 Excel（.xlsx）工作簿",
                               "en": "the file is not a readable Excel (.xlsx) workbook"},
    "import_file_empty": {"zh-CN": "文件第一行没有表头", "en": "the file has no header row"},
    "import_file_too_large": {"zh-CN": "文件超过 {max} MB 上限",
                              "en": "the file is larger than {max} MB"},
    "import_too_many_rows": {"zh-CN": "一次最多导入 {max} 行",
                             "en": "at most {max} rows can be imported at once"},
    "import_no_rows": {"zh-CN": "文件中没有数据行", "en": "the file has no data rows"},
    "import_busy": {"zh-CN": "该导入正在运行或已经提交",
                    "en": "this import is running or has been committed"},
    "import_expired": {"zh-CN": "该导入已过期，上传的文件已删除，请重新上传",
                       "en": "this import has expired and its file was deleted: upload it "
                             "again"},
    "export_too_many": {"zh-CN": "一次最多导出 {max} 行，请缩小筛选范围",
                        "en": "at most {max} rows can be exported at once: narrow the filter"},
    "import_report_row": {"zh-CN": "行号", "en": "Row"},
    "import_report_column": {"zh-CN": "列", "en": "Column"},
    "import_report_level": {"zh-CN": "级别", "en": "Level"},
    "import_report_reason": {"zh-CN": "原因", "en": "Reason"},
    "import_report_error": {"zh-CN": "错误", "en": "Error"},
    "import_report_warning": {"zh-CN": "提示", "en": "Warning"},
    "import_report_title": {"zh-CN": "导入错误报告", "en": "Import errors"},
    "import_report_more": {"zh-CN": "另有 {more} 条错误未列出",
                           "en": "{more} more errors are not listed"},
    "import_guide_title": {"zh-CN": "填写说明", "en": "Guide"},
    "import_guide_column": {"zh-CN": "列名", "en": "Column"},
    "import_guide_key": {"zh-CN": "字段键", "en": "Field key"},
    "import_guide_type": {"zh-CN": "类型与格式", "en": "Type and format"},
    "import_guide_required": {"zh-CN": "必填", "en": "Required"},
    "import_guide_choices": {"zh-CN": "可选值", "en": "Choices"},
    "import_guide_yes": {"zh-CN": "是", "en": "Yes"},
    "import_guide_note": {"zh-CN": "从第 2 行起每行一条记录；带 * 的列必填；请勿修改表头。",
                          "en": "One record per row from row 2; columns marked * are "
                                "required; keep the header row as it is."},
})

# Types a spreadsheet cell cannot carry (an uploaded file) are not importable.
NOT_IMPORTABLE = (FieldType.attachment,)
# Identifiers checked for duplicates (in the file, and in the database where they can be
# looked up exactly: a searchable secret's blind index, or a column of its own).
IDENTITY_TYPES = (FieldType.resident_id, FieldType.phone, FieldType.credit_code)
_SPLIT = re.compile(r"[,，、;；]")
_SPACES = re.compile(r"\s+")
_BRACKETS = str.maketrans({"（": "(", "）": ")", "：": ":"})


def normalise_header(text: Any) -> str:
    """A header as compared: lower case, no spaces, half-width brackets, no `*` marks."""
    value = "" if text is None else str(text)
    return _SPACES.sub("", value.translate(_BRACKETS)).strip("*").lower()


def header_text(f: FieldDef, locale: str) -> str:
    """The template's header of a field: its label, `*` after it when required."""
    return f.label(locale) + (" *" if f.required else "")


def auto_map(fields: list[FieldDef], headers: list[str]) -> dict[str, str]:
    """{column index (as text): field key} for every header that names a field by its zh-CN
    or en label, or by its key; each field at most once (the first column wins)."""
    names: dict[str, str] = {}
    for f in fields:
        for name in (f.key, f.label_zh, f.label_en):
            names.setdefault(normalise_header(name), f.key)
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for index, header in enumerate(headers):
        key = names.get(normalise_header(header))
        if key and key not in taken:
            mapping[str(index)] = key
            taken.add(key)
    return mapping


def mapping_errors(fields: list[FieldDef], headers: list[str], mapping: dict[str, str]
                   ) -> list[FieldError]:
    """What is wrong with a mapping: a column that does not exist, a field that is not
    importable or is mapped twice, a required field without a column."""
    by_key = {f.key: f for f in fields}
    errors: list[FieldError] = []
    seen: set[str] = set()
    for column, key in mapping.items():
        if not key:
            continue
        f = by_key.get(key)
        if not column.isdigit() or int(column) >= len(headers) or f is None:
            errors.append(FieldError(key, "import_column_unknown", {"field": key,
                                                                    "column": column}))
            continue
        if key in seen:
            errors.append(FieldError(key, "import_column_twice", {},
                                     {"zh-CN": f.label_zh, "en": f.label_en}))
        seen.add(key)
    for f in fields:
        if f.required and f.key not in seen:
            errors.append(FieldError(f.key, "import_column_missing", {},
                                     {"zh-CN": f.label_zh, "en": f.label_en}))
    return errors


def _choice(f: FieldDef, text: str) -> str:
    """An option given by its value or its zh-CN / en label (case-insensitive)."""
    low = text.strip().lower()
    for c in f.options:
        if low in (c.value.lower(), c.zh.lower(), c.en.lower()):
            return c.value
    return text.strip()


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def cell_to_raw(f: FieldDef, value: Any, tz: str = "Asia/Shanghai") -> Any:
    """The raw input of one cell for `f.coerce`: None for an empty cell; numbers Excel
    stored as floats become exact text or integers (never a float, which money refuses);
    dates stay dates; options may be given by label."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    t = f.type
    if isinstance(value, bool):
        return value if t == FieldType.boolean else str(value).lower()
    if isinstance(value, datetime):
        if t == FieldType.date:
            return value.date()
        if t == FieldType.datetime:
            return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(tz))
        return value.date().isoformat() if value.time() == datetime.min.time() \
            else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value if t in (FieldType.date,) else value.isoformat()
    if isinstance(value, float):
        text = _number_text(value)
        if t == FieldType.integer and value.is_integer():
            return int(value)
        return text
    if isinstance(value, int | Decimal):
        if t in (FieldType.integer, FieldType.decimal, FieldType.money, FieldType.percent):
            return value if isinstance(value, int) else str(value)
        if t == FieldType.boolean:
            return int(value)
        return str(value)
    text = str(value)
    if t == FieldType.single_select:
        return _choice(f, text)
    if t == FieldType.multi_select:
        return [_choice(f, part) for part in _SPLIT.split(text) if part.strip()]
    return text


def value_to_cell(f: FieldDef, value: Any, locale: str) -> Any:
    """A record's value (its JSON form, as the read path gives it) as a spreadsheet cell
    the importer reads back: options by label, yes/no in words, money as a number."""
    if value is None or value == "":
        return None
    t = f.type
    if t == FieldType.single_select:
        return next((c.label(locale) for c in f.options if c.value == value), value)
    if t == FieldType.multi_select:
        labels = {c.value: c.label(locale) for c in f.options}
        return ", ".join(labels.get(v, v) for v in value)
    if t == FieldType.boolean:
        return ("Yes" if value else "No") if locale == "en" else ("是" if value else "否")
    if t in (FieldType.money, FieldType.decimal, FieldType.percent):
        try:
            return Decimal(str(value))
        except ArithmeticError:
            return str(value)
    if t == FieldType.integer and isinstance(value, int):
        return value
    if t == FieldType.date:
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            return str(value)
    return str(value)


TYPE_HINTS = {
    FieldType.text: ("文本", "Text"),
    FieldType.long_text: ("长文本", "Long text"),
    FieldType.integer: ("整数", "Whole number"),
    FieldType.decimal: ("数字", "Number"),
    FieldType.money: ("金额（元，最多两位小数）", "Amount (CNY, up to 2 decimals)"),
    FieldType.percent: ("百分比数值", "Percentage"),
    FieldType.date: ("日期 YYYY-MM-DD", "Date YYYY-MM-DD"),
    FieldType.datetime: ("日期时间 YYYY-MM-DD HH:MM", "Date and time YYYY-MM-DD HH:MM"),
    FieldType.boolean: ("是 / 否", "Yes / No"),
    FieldType.single_select: ("单选，填写可选值之一", "One of the choices"),
    FieldType.multi_select: ("多选，用逗号分隔", "Choices separated by commas"),
    FieldType.phone: ("中国大陆手机号（11 位）", "Mainland China mobile (11 digits)"),
    FieldType.email: ("电子邮箱", "Email address"),
    FieldType.resident_id: ("18 位居民身份证号", "18-character resident ID"),
    FieldType.credit_code: ("18 位统一社会信用代码", "18-character unified credit code"),
    FieldType.region: ("6 位行政区划代码", "6-digit region code"),
    FieldType.reference: ("关联记录编号（UUID）", "Id of the linked record (UUID)"),
}

TEXT_TYPES = (FieldType.text, FieldType.long_text, FieldType.phone, FieldType.resident_id,
              FieldType.credit_code, FieldType.region, FieldType.email, FieldType.reference)


def type_hint(f: FieldDef, locale: str) -> str:
    zh, en = TYPE_HINTS.get(f.type, (str(f.type), str(f.type)))
    return en if locale == "en" else zh
