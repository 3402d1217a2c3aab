"""Registry fields as HTML: display values, form inputs, list filters, and form parsing.

Which fields appear and how (hidden / masked / read / write) comes from
`core.access.field_policy`, the same decision the write path enforces; this module only
turns that decision and the registry's field types into widgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.access import field_policy
from core.errors import FieldError
from core.fields import FieldDef, FieldProblem, FieldType
from core.registry import EntityType
from core.tenancy import Context
from core.web.ui.i18n import gettext_for

RANGE_TYPES = (FieldType.money, FieldType.integer, FieldType.decimal, FieldType.percent,
               FieldType.date)
EXACT_TYPES = (FieldType.region, FieldType.credit_code, FieldType.email, FieldType.text)
SELECT_TYPES = (FieldType.single_select, FieldType.boolean)
NUMERIC = (FieldType.money, FieldType.integer, FieldType.decimal, FieldType.percent)
INPUTMODE = {FieldType.integer: "numeric", FieldType.decimal: "decimal",
             FieldType.money: "decimal", FieldType.percent: "decimal",
             FieldType.phone: "tel", FieldType.email: "email", FieldType.region: "numeric"}


@dataclass
class Widget:
    """One field as a form input (or a read-only line of a detail page)."""

    key: str
    label: str
    kind: str  # text | textarea | select | checkboxes | date | datetime | bool
    required: bool = False
    value: Any = ""  # str, or list[str] for checkboxes
    options: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""
    placeholder: str = ""
    help: str = ""
    max_length: int | None = None
    inputmode: str = ""
    input_type: str = "text"


def choice_label(f: FieldDef, value: Any, lang: str) -> str:
    for c in f.options:
        if c.value == value:
            return c.label(lang)
    return str(value)


def display(f: FieldDef, value: Any, lang: str, tz: str, masked: bool = False) -> str:
    """A stored (JSON-form) value as a person reads it; masked values stay as they are."""
    if value is None or value == "" or value == []:
        return ""
    if masked:
        return str(value)
    _ = gettext_for(lang)
    if f.type == FieldType.single_select:
        return choice_label(f, value, lang)
    if f.type == FieldType.multi_select:
        sep = ", " if lang == "en" else "、"
        return sep.join(choice_label(f, v, lang) for v in value)
    if f.type == FieldType.boolean:
        return _("Yes") if value else _("No")
    if f.type == FieldType.money:
        from core.web.ui.render import money

        return money(value)
    if f.type == FieldType.percent:
        return f"{value}%"
    if f.type == FieldType.region:
        from core.regions import region_label

        return region_label(str(value))
    if f.type == FieldType.datetime:
        from core.web.ui.render import local_time

        return local_time(value, tz)
    return str(value)


def is_masked(ctx: Context, entity: EntityType, f: FieldDef) -> bool:
    """Whether this user sees the field's value masked (secret fields always are until
    revealed; other fields when their policy says `masked`)."""
    return f.is_secret or field_policy(ctx, entity, f) == "masked"


def visible_fields(ctx: Context, entity: EntityType) -> list[FieldDef]:
    return [f for f in entity.fields if field_policy(ctx, entity, f) != "hidden"]


def writable_fields(ctx: Context, entity: EntityType) -> list[FieldDef]:
    return [f for f in entity.fields
            if not f.readonly and field_policy(ctx, entity, f) == "write"]


MAX_COLUMNS = 8
FREE_TEXT = (FieldType.text, FieldType.long_text, FieldType.email, FieldType.attachment,
             FieldType.reference)


def list_columns(ctx: Context, entity: EntityType) -> list[FieldDef]:
    """Columns of the list view: the visible fields that fit a table row. The title comes
    first, then sortable fields, then searchable ones (ID, mobile, codes), then the rest in
    declaration order; free text (addresses, notes) stays on the detail page."""
    fields = [f for f in visible_fields(ctx, entity)
              if f.key == entity.title_field or f.type not in FREE_TEXT]
    order = {f.key: i for i, f in enumerate(fields)}
    fields.sort(key=lambda f: (f.key != entity.title_field, not f.sortable,
                               not f.searchable, order[f.key]))
    return fields[:MAX_COLUMNS]


def sortable(ctx: Context, entity: EntityType, f: FieldDef) -> bool:
    """The same rule core.records.list_records applies to `sort`."""
    return f.sortable and f.column and not f.is_secret and \
        field_policy(ctx, entity, f) in ("read", "write")


@dataclass
class Filter:
    key: str
    label: str
    kind: str  # select | exact | range
    options: list[tuple[str, str]] = field(default_factory=list)
    value: str = ""
    low: str = ""
    high: str = ""
    input_type: str = "text"
    inputmode: str = ""


def filters_for(ctx: Context, entity: EntityType, params: dict[str, str],
                lang: str) -> list[Filter]:
    """Filters rendered from the registry: equality for selects, booleans, regions and
    codes; `__gte`/`__lte` for money, numbers and dates (built-in columns); nothing for
    secret fields (the search box finds them by exact value) or masked ones."""
    _ = gettext_for(lang)
    out: list[Filter] = []
    for f in entity.fields:
        if f.is_secret or field_policy(ctx, entity, f) not in ("read", "write"):
            continue
        label = f.label(lang)
        if f.type in SELECT_TYPES:
            options = [(c.value, c.label(lang)) for c in f.options] \
                if f.type == FieldType.single_select else [("true", _("Yes")), ("false", _("No"))]
            out.append(Filter(f.key, label, "select", options, params.get(f.key, "")))
        elif f.type in RANGE_TYPES and f.column:
            out.append(Filter(f.key, label, "range", low=params.get(f"{f.key}__gte", ""),
                              high=params.get(f"{f.key}__lte", ""),
                              input_type="date" if f.type == FieldType.date else "text",
                              inputmode=INPUTMODE.get(f.type, "")))
        elif f.type in EXACT_TYPES and f.type != FieldType.text:
            out.append(Filter(f.key, label, "exact", value=params.get(f.key, ""),
                              inputmode=INPUTMODE.get(f.type, "")))
    return out


def filter_params(filters: list[Filter], params: dict[str, str]) -> dict[str, str]:
    """The non-empty filter values of a query string that a rendered filter offers."""
    allowed: set[str] = set()
    for flt in filters:
        if flt.kind == "range":
            allowed |= {f"{flt.key}__gte", f"{flt.key}__lte"}
        else:
            allowed.add(flt.key)
    return {k: v.strip() for k, v in params.items() if k in allowed and v.strip()}


# --- forms -------------------------------------------------------------------------------

def widget(f: FieldDef, lang: str, value: Any = "", error: str = "",
           placeholder: str = "", help_text: str = "") -> Widget:
    _ = gettext_for(lang)
    w = Widget(f.key, f.label(lang), "text", f.required, value, error=error,
               placeholder=placeholder, help=help_text, max_length=f.max_length,
               inputmode=INPUTMODE.get(f.type, ""))
    if f.type == FieldType.long_text:
        w.kind = "textarea"
    elif f.type == FieldType.single_select:
        w.kind, w.options = "select", [(c.value, c.label(lang)) for c in f.options]
    elif f.type == FieldType.multi_select:
        w.kind, w.options = "checkboxes", [(c.value, c.label(lang)) for c in f.options]
        w.value = list(value or [])
    elif f.type == FieldType.boolean:
        w.kind, w.options = "select", [("true", _("Yes")), ("false", _("No"))]
    elif f.type == FieldType.date:
        w.kind, w.input_type = "date", "date"
    elif f.type == FieldType.datetime:
        w.kind, w.input_type = "datetime", "datetime-local"
    elif f.type == FieldType.email:
        w.input_type = "email"
    elif f.type == FieldType.phone:
        w.input_type = "tel"
    if f.type == FieldType.money and not w.help:
        w.help = _("Amount in yuan, up to two decimals, e.g. 12000.50")
    elif f.type == FieldType.region and not w.help:
        w.help = _("Six-digit region code, e.g. 140105")
    return w


def form_value(f: FieldDef, value: Any, tz: str) -> Any:
    """A record's JSON value as an input's value (datetimes in the tenant's time zone)."""
    if value is None:
        return [] if f.type == FieldType.multi_select else ""
    if f.type == FieldType.boolean:
        return "true" if value else "false"
    if f.type == FieldType.multi_select:
        return list(value)
    if f.type == FieldType.datetime:
        try:
            return datetime.fromisoformat(str(value)).astimezone(ZoneInfo(tz)) \
                .strftime("%Y-%m-%dT%H:%M")
        except ValueError:
            return str(value)
    return str(value)


def read_form(fields: list[FieldDef], form: Any, tz: str) -> dict[str, Any]:
    """The raw submitted value of each field (lists for multi-selects). A naive
    `datetime-local` value is taken in the tenant's time zone."""
    out: dict[str, Any] = {}
    for f in fields:
        if f.type == FieldType.multi_select:
            out[f.key] = [v for v in form.getall(f.key, []) if isinstance(v, str) and v]
            continue
        raw = form.get(f.key, "")
        raw = raw if isinstance(raw, str) else ""
        if f.type == FieldType.datetime and raw:
            try:
                parsed = datetime.fromisoformat(raw)
                if parsed.tzinfo is None:
                    raw = parsed.replace(tzinfo=ZoneInfo(tz)).isoformat()
            except ValueError:
                pass
        out[f.key] = raw
    return out


def changes(fields: list[FieldDef], raw: dict[str, Any], current: dict[str, Any]
            ) -> dict[str, Any]:
    """What an edit form changes: fields whose value differs from the record's.

    A secret field's input starts empty (the record only shows its masked form), so an
    empty secret input means "keep". Any other emptied input clears the field.
    """
    data: dict[str, Any] = {}
    for f in fields:
        value = raw.get(f.key)
        empty = value in (None, "", [])
        if f.is_secret:
            if not empty:
                data[f.key] = value
            continue
        before = current.get(f.key)
        if empty:
            if before not in (None, "", []):
                data[f.key] = None
            continue
        try:
            same = f.to_json(f.coerce(value)) == before
        except FieldProblem:
            same = False  # let the write path report the problem with its message
        if not same:
            data[f.key] = value
    return data


def new_record(raw: dict[str, Any]) -> dict[str, Any]:
    """A create form's data: the inputs that were filled in."""
    return {k: v for k, v in raw.items() if v not in (None, "", [])}


def errors_by_field(errors: list[FieldError], keys: set[str], lang: str
                    ) -> tuple[dict[str, str], list[str]]:
    """Each error next to its field when the form shows it, else in the form's summary."""
    by_field: dict[str, str] = {}
    general: list[str] = []
    for e in errors:
        message = e.message(lang)
        if e.field in keys:
            by_field[e.field] = f"{by_field[e.field]}; {message}" if e.field in by_field \
                else message
        else:
            general.append(message)
    return by_field, general
