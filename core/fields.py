"""Field definitions and their types: how a raw input value becomes a stored value.

One `FieldDef` describes a built-in field (declared by a plugin) or a tenant's custom field
(declared at run time); both are validated by the same `coerce`, so custom fields get the
same checks and the same zh-CN / en messages as built-in ones.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from uuid import UUID

import regex

from core import validators as v
from core.validators import InvalidValue


class FieldType(StrEnum):
    text = "text"
    long_text = "long_text"
    integer = "integer"
    decimal = "decimal"
    money = "money"
    percent = "percent"
    date = "date"
    datetime = "datetime"
    boolean = "boolean"
    single_select = "single_select"
    multi_select = "multi_select"
    phone = "phone"
    email = "email"
    resident_id = "resident_id"
    credit_code = "credit_code"
    region = "region"
    attachment = "attachment"
    reference = "reference"


class Sensitivity(StrEnum):
    public = "public"  # shown to anyone allowed to see the record
    personal = "personal"  # personal information: subject to field policies (PIPL)
    secret = "secret"  # encrypted at rest, masked by default, searchable by blind index


@dataclass(frozen=True)
class Choice:
    value: str
    zh: str
    en: str

    def label(self, locale: str) -> str:
        return self.en if locale == "en" else self.zh


class FieldProblem(Exception):
    """A value failed a rule; `code` and `params` render the message."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


DEFAULT_MAX_LENGTH = {FieldType.text: 200, FieldType.long_text: 10000}
PATTERN_TIMEOUT_S = 0.05
MAX_PATTERN = 200
MAX_LABEL = 100
KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")
_MONEY_MAX = Decimal("1e15")


@dataclass(frozen=True)
class FieldDef:
    """A field of an entity: its type, labels, and the rules a value must follow."""

    key: str
    type: FieldType
    label_zh: str
    label_en: str
    required: bool = False
    sensitivity: Sensitivity = Sensitivity.public
    searchable: bool = False
    options: tuple[Choice, ...] = ()
    max_length: int | None = None
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    pattern: str | None = None
    reference: str | None = None  # entity name, for type reference
    custom: bool = False  # added by a tenant at run time
    column: bool = True  # stored in its own column (built-ins); else in `custom`/`sealed`
    readonly: bool = False
    sortable: bool = False
    position: int = 0

    def label(self, locale: str | None = None) -> str:
        return self.label_en if locale == "en" else self.label_zh

    @property
    def is_secret(self) -> bool:
        return self.sensitivity == Sensitivity.secret

    def coerce(self, raw: Any) -> Any:
        """Turn an input value into the stored Python value, or raise FieldProblem."""
        if raw is None or raw == "" or raw == []:
            return None
        try:
            return _COERCERS[self.type](self, raw)
        except InvalidValue as exc:
            raise FieldProblem(exc.code) from None

    def to_json(self, value: Any) -> Any:
        """The JSON form of a stored value: money and decimals as strings, dates ISO."""
        if value is None:
            return None
        if isinstance(value, Decimal):
            return format(value, "f")
        if isinstance(value, date | datetime):
            return value.isoformat()
        if isinstance(value, UUID):
            return str(value)
        if isinstance(value, tuple):
            return list(value)
        return value

    def from_json(self, value: Any) -> Any:
        """Inverse of to_json for values kept in JSON columns."""
        if value is None:
            return None
        return self.coerce(value)

    def describe(self) -> dict[str, Any]:
        """A plain dict for packs, the API and the custom-field table."""
        d = asdict(self)
        d["type"] = str(self.type)
        d["sensitivity"] = str(self.sensitivity)
        d["options"] = [asdict(c) for c in self.options]
        for k in ("min_value", "max_value"):
            d[k] = None if d[k] is None else format(d[k], "f")
        return {k: val for k, val in d.items() if val not in (None, (), [], False) or k in (
            "key", "type", "required")}


def _text(f: FieldDef, raw: Any) -> str:
    if not isinstance(raw, str):
        raise FieldProblem("type_text")
    value = raw.strip() if f.type != FieldType.long_text else raw
    limit = f.max_length or DEFAULT_MAX_LENGTH.get(f.type, 200)
    if len(value) > limit:
        raise FieldProblem("too_long", max=limit)
    if f.pattern:
        try:  # a tenant's pattern runs on a shared server: bounded in time
            matched = regex.fullmatch(f.pattern, value, timeout=PATTERN_TIMEOUT_S)
        except TimeoutError:
            matched = None
        if not matched:
            raise FieldProblem("pattern")
    return value


def _bounded(f: FieldDef, value: Decimal | int) -> None:
    if f.min_value is not None and value < f.min_value:
        raise FieldProblem("min_value", min=f.min_value)
    if f.max_value is not None and value > f.max_value:
        raise FieldProblem("max_value", max=f.max_value)


def _integer(f: FieldDef, raw: Any) -> int:
    if not isinstance(raw, int | str) or isinstance(raw, bool):  # no float, Decimal, bool
        raise FieldProblem("type_integer")
    if isinstance(raw, str) and not re.fullmatch(r"[+-]?[0-9]{1,18}", raw.strip()):
        raise FieldProblem("type_integer")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise FieldProblem("type_integer") from None
    _bounded(f, value)
    return value


def _decimal(f: FieldDef, raw: Any) -> Decimal:
    """Decimals come as strings or integers; a float is refused so money never passes one."""
    if isinstance(raw, float):
        raise FieldProblem("float_refused")
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise FieldProblem("type_decimal")
    text = raw.strip().replace(",", "") if isinstance(raw, str) else raw
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise FieldProblem("type_decimal") from None
    if not value.is_finite() or abs(value) >= _MONEY_MAX:
        raise FieldProblem("type_decimal")
    if f.type == FieldType.money:
        if value.as_tuple().exponent < -2:  # type: ignore[operator]
            raise FieldProblem("money_digits")
        value = value.quantize(Decimal("0.01"))
    _bounded(f, value)
    return value


def _date(f: FieldDef, raw: Any) -> date:
    if isinstance(raw, datetime):
        raise FieldProblem("type_date")
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        raise FieldProblem("type_date") from None


def _datetime(f: FieldDef, raw: Any) -> datetime:
    if isinstance(raw, datetime):
        value = raw
    else:
        try:
            value = datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00"))
        except ValueError:
            raise FieldProblem("type_datetime") from None
    if value.tzinfo is None:
        raise FieldProblem("type_datetime")
    return value


_TRUE = {True, "true", "1", "yes", "是"}
_FALSE = {False, "false", "0", "no", "否"}


def _boolean(f: FieldDef, raw: Any) -> bool:
    if not isinstance(raw, str | int):  # bool is an int
        raise FieldProblem("type_boolean")
    key = raw.strip().lower() if isinstance(raw, str) else raw
    if key in _TRUE and not isinstance(key, float):
        return True
    if key in _FALSE and not isinstance(key, float):
        return False
    raise FieldProblem("type_boolean")


def _single(f: FieldDef, raw: Any) -> str:
    values = {c.value for c in f.options}
    if not isinstance(raw, str) or raw not in values:
        raise FieldProblem("choice", value=raw)
    return raw


def _multi(f: FieldDef, raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [p.strip() for p in raw.split(",") if p.strip()]
    if not isinstance(raw, list | tuple):
        raise FieldProblem("type_list")
    values = {c.value for c in f.options}
    for item in raw:
        if not isinstance(item, str) or item not in values:
            raise FieldProblem("choice", value=item)
    return tuple(dict.fromkeys(raw))


def _string_check(check: Any) -> Any:
    def coerce(f: FieldDef, raw: Any) -> str:
        if not isinstance(raw, str):
            raise FieldProblem("type_text")
        return check(raw)

    return coerce


def _attachment(f: FieldDef, raw: Any) -> str:
    """The id of an uploaded document (core.documents); the write path checks that it is a
    live document of the same tenant, and of the same record when the record exists."""
    try:
        return str(raw if isinstance(raw, UUID) else UUID(str(raw).strip()))
    except (ValueError, AttributeError):
        raise FieldProblem("attachment") from None


def _reference(f: FieldDef, raw: Any) -> UUID:
    try:
        return raw if isinstance(raw, UUID) else UUID(str(raw))
    except ValueError:
        raise FieldProblem("reference") from None


_COERCERS = {
    FieldType.text: _text,
    FieldType.long_text: _text,
    FieldType.integer: _integer,
    FieldType.decimal: _decimal,
    FieldType.money: _decimal,
    FieldType.percent: _decimal,
    FieldType.date: _date,
    FieldType.datetime: _datetime,
    FieldType.boolean: _boolean,
    FieldType.single_select: _single,
    FieldType.multi_select: _multi,
    FieldType.phone: _string_check(v.check_mobile),
    FieldType.email: _string_check(v.check_email),
    FieldType.resident_id: _string_check(v.check_resident_id),
    FieldType.credit_code: _string_check(v.check_credit_code),
    FieldType.region: _string_check(v.check_region),
    FieldType.attachment: _attachment,
    FieldType.reference: _reference,
}

MASKERS = {
    FieldType.resident_id: v.mask_resident_id,
    FieldType.phone: v.mask_mobile,
}


def mask(f: FieldDef, value: str) -> str:
    """The masked display form of a value (DOMAIN.md: ID, mobile, name `张*`)."""
    if f.type in MASKERS:
        return MASKERS[f.type](str(value))
    if f.is_secret:  # bank cards and the like: the last four stay
        return v.mask_generic(str(value))
    if f.type in (FieldType.text, FieldType.long_text):  # names: `张*`
        return v.mask_name(str(value))
    return "***"


def field_from_dict(data: dict[str, Any], custom: bool = True) -> FieldDef:
    """Build a FieldDef from a pack entry or a custom-field row; raises FieldProblem."""
    try:
        return _field_from_dict(data, custom)
    except FieldProblem:
        raise
    except (ValueError, TypeError, AttributeError, ArithmeticError, re.error,
            regex.error) as exc:
        raise FieldProblem("bad_field_spec", detail=str(exc)) from None


def _field_from_dict(data: dict[str, Any], custom: bool) -> FieldDef:
    if not isinstance(data, dict):
        raise FieldProblem("bad_field_spec", detail="not a mapping")
    key = str(data.get("key", ""))
    if not KEY_RE.fullmatch(key):
        raise FieldProblem("custom_field_key")
    try:
        ftype = FieldType(data.get("type"))
    except ValueError:
        raise FieldProblem("unknown_field_type", type=data.get("type")) from None
    label = data.get("label") or {}
    if isinstance(label, str):
        label = {"zh-CN": label, "en": label}
    if not isinstance(label, dict):
        raise FieldProblem("bad_field_spec", detail="label")
    label_zh = data.get("label_zh") or label.get("zh-CN") or label.get("zh") or key
    label_en = data.get("label_en") or label.get("en") or key
    options = tuple(
        Choice(str(o["value"]), str(o.get("zh", o["value"])), str(o.get("en", o["value"])))
        if isinstance(o, dict) else Choice(str(o), str(o), str(o))
        for o in data.get("options") or ()
    )
    rules = data.get("rules") or {}
    get = lambda k: data.get(k, rules.get(k))  # noqa: E731
    sens = data.get("sensitivity") or (
        "secret" if ftype in (FieldType.resident_id, FieldType.phone) else "public")
    if sens not in Sensitivity.__members__:
        raise FieldProblem("bad_sensitivity", value=sens)
    pattern = get("pattern")
    if pattern is not None:
        if len(str(pattern)) > MAX_PATTERN:
            raise FieldProblem("bad_field_spec", detail=f"pattern > {MAX_PATTERN}")
        regex.compile(str(pattern))
    if len(str(label_zh)) > MAX_LABEL or len(str(label_en)) > MAX_LABEL:
        raise FieldProblem("bad_field_spec", detail=f"label > {MAX_LABEL}")
    max_length = get("max_length")
    if max_length is not None and (isinstance(max_length, bool) or int(max_length) < 1):
        raise FieldProblem("bad_field_spec", detail="max_length")
    return FieldDef(
        key=key,
        type=ftype,
        label_zh=str(label_zh),
        label_en=str(label_en),
        required=bool(data.get("required", False)),
        sensitivity=Sensitivity(sens),
        searchable=bool(data.get("searchable", False)),
        options=options,
        max_length=None if max_length is None else int(max_length),
        min_value=None if get("min_value") is None else Decimal(str(get("min_value"))),
        max_value=None if get("max_value") is None else Decimal(str(get("max_value"))),
        pattern=pattern,
        reference=get("reference"),
        custom=custom,
        column=not custom,
        position=int(data.get("position", 0)),
    )


def to_column(f: FieldDef, value: Any) -> Any:
    """The value as stored in its own column: money as integer fen (exact on SQLite too),
    other decimals as text, multi-selects as lists."""
    if value is None:
        return None
    if f.type == FieldType.money:
        return int(value * 100)
    if f.type in (FieldType.decimal, FieldType.percent):
        return format(value, "f")
    if f.type == FieldType.multi_select:
        return list(value)
    return value


def from_column(f: FieldDef, raw: Any) -> Any:
    """Inverse of to_column."""
    if raw is None:
        return None
    if f.type == FieldType.money:
        return (Decimal(int(raw)) / 100).quantize(Decimal("0.01"))
    if f.type in (FieldType.decimal, FieldType.percent):
        return Decimal(raw)
    if f.type == FieldType.multi_select:
        return tuple(raw)
    return raw
