"""Errors the kernel raises on purpose; the web layer renders them as problem details."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.i18n import t


@dataclass
class FieldError:
    """One problem with one field, renderable in any supported language."""

    field: str
    code: str
    params: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # locale -> the field's label

    def message(self, locale: str | None = None) -> str:
        from core.i18n import normalise_locale

        params = dict(self.params)
        label = self.labels.get(normalise_locale(locale))
        if label:
            params["label"] = label
        params.setdefault("label", self.field)
        return t(self.code, locale, **params)

    def as_dict(self, locale: str | None = None) -> dict[str, str]:
        return {
            "field": self.field,
            "code": self.code,
            "message": self.message(locale),
            "message_zh": self.message("zh-CN"),
            "message_en": self.message("en"),
        }


class XindaiError(Exception):
    """Base of expected failures: carries a message code and an HTTP status."""

    status = 400
    code = "error"

    def __init__(self, code: str | None = None, **params: Any) -> None:
        self.code = code or self.code
        self.params = params
        super().__init__(t(self.code, "en", **params))

    def message(self, locale: str | None = None) -> str:
        return t(self.code, locale, **self.params)


class ValidationFailed(XindaiError):
    """Input was rejected; nothing was written."""

    status = 422
    code = "validation_failed"

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__()
        self.args = ("; ".join(f"{e.field}: {e.message('en')}" for e in errors),)


class FieldsForbidden(ValidationFailed):
    """The request sets fields the user's role may not write: refused whole (403)."""

    status = 403
    code = "fields_forbidden"


class NotFound(XindaiError):
    status = 404
    code = "not_found"


class Conflict(XindaiError):
    status = 409
    code = "conflict"


class Unauthenticated(XindaiError):
    status = 401
    code = "unauthenticated"


class Forbidden(XindaiError):
    status = 403
    code = "forbidden"
