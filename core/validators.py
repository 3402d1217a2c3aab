"""Checks for Chinese identifiers (DOMAIN.md): resident ID, credit code, mobile, region.

Each `check_*` returns the normalised value or raises `InvalidValue(code)`; the code is a
message code from core.i18n so the caller can name the field in the user's language.
"""

from __future__ import annotations

import re
from datetime import date

from core.regions import PROVINCES


class InvalidValue(ValueError):
    """The value breaks a rule; `code` is a message code in core.i18n."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_ID_CHECK = "10X98765432"
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_RESIDENT_ID_RE = re.compile(r"[0-9]{17}[0-9X]")
_MOBILE_RE = re.compile(r"1[3-9][0-9]{9}")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_REGION_RE = re.compile(r"[0-9]{6}")


def resident_id_check_char(first17: str) -> str:
    """GB 11643 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, RESIDENT_ID_WEIGHTS, strict=True))
    return RESIDENT_ID_CHECK[total % 11]


def check_resident_id(value: str, today: date | None = None) -> str:
    """Validate an 18-character resident ID: format, a real birth date not in the future, checksum.

    The area code is not checked against the birth year: codes are reassigned and a holder
    keeps their number, so a newer code with an older birth date is legitimate.
    """
    v = value.strip().upper()
    if not _RESIDENT_ID_RE.fullmatch(v):
        raise InvalidValue("resident_id_format")
    try:
        born = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise InvalidValue("resident_id_birth") from None
    if born.year < 1900 or born > (today or date.today()):
        raise InvalidValue("resident_id_birth")
    if resident_id_check_char(v[:17]) != v[17]:
        raise InvalidValue("resident_id_checksum")
    return v


def resident_id_birth_date(value: str) -> date:
    """The birth date encoded in a (valid) resident ID."""
    return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def credit_code_check_char(first17: str) -> str:
    """GB 32100 check character for the first 17 characters of a unified social credit code."""
    total = sum(
        CREDIT_CODE_ALPHABET.index(c) * w for c, w in zip(first17, CREDIT_CODE_WEIGHTS, strict=True)
    )
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def check_credit_code(value: str) -> str:
    """Validate a unified social credit code (统一社会信用代码): alphabet, length, checksum."""
    v = value.strip().upper()
    if len(v) != 18 or any(c not in CREDIT_CODE_ALPHABET for c in v):
        raise InvalidValue("credit_code_format")
    if credit_code_check_char(v[:17]) != v[17]:
        raise InvalidValue("credit_code_checksum")
    return v


def normalise_mobile(value: str) -> str:
    """Strip spaces, dashes and a +86 / 0086 prefix."""
    v = re.sub(r"[\s\-()]", "", value)  # ASCII digits only: full-width digits are refused
    for prefix in ("+86", "0086"):
        if v.startswith(prefix):
            v = v[len(prefix):]
    return v


def check_mobile(value: str) -> str:
    """Validate a mainland mobile number (`^1[3-9]\\d{9}$` after stripping +86/0086)."""
    v = normalise_mobile(value)
    if not _MOBILE_RE.fullmatch(v):
        raise InvalidValue("mobile")
    return v


def check_email(value: str) -> str:
    v = value.strip()
    if len(v) > 254 or not _EMAIL_RE.fullmatch(v):
        raise InvalidValue("email")
    return v.lower()


def check_region(value: str) -> str:
    """A six-digit GB/T 2260 code whose province exists; city and county digits are free."""
    v = value.strip()
    if not _REGION_RE.fullmatch(v) or v[:2] not in PROVINCES:
        raise InvalidValue("region")
    return v


def mask_resident_id(value: str) -> str:
    """`11010519491231002X` -> `110***********002X` (first three, last four)."""
    return value[:3] + "*" * (len(value) - 7) + value[-4:] if len(value) > 7 else "*" * len(value)


def mask_mobile(value: str) -> str:
    """`13800138000` -> `138****8000`."""
    return value[:3] + "****" + value[-4:] if len(value) >= 8 else "*" * len(value)


def mask_name(value: str) -> str:
    """`张三` -> `张*`, `欧阳娜娜` -> `欧***`: keep the first character."""
    return value[:1] + "*" * (len(value) - 1) if value else value


def mask_generic(value: str) -> str:
    """Keep the last four characters of anything else secret (bank cards, credit codes)."""
    return "*" * max(len(value) - 4, 0) + value[-4:] if len(value) > 4 else "*" * len(value)
