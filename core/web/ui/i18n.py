"""gettext catalogues of the web shell: English msgids, zh-CN (default) and en.

The `.po` files under core/locale are the source of truth and are read at start-up with
Babel (read_po -> write_mo into memory -> GNUTranslations), so no compile step and no `.mo`
files exist. Templates use `{{ _("Customers") }}` (jinja2.ext.i18n, new-style: variables
are passed as keywords and autoescaped); Python code in core/web/ui uses `_ = gettext_for(
locale)` and marks module-level strings with `N_`.

API error messages stay in core.i18n (codes with zh-CN/en texts); the UI shows those through
`FieldError.message(locale)` / `XindaiError.message(locale)`.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from litestar.connection import ASGIConnection

from core.i18n import DEFAULT_LOCALE, LOCALES, normalise_locale

LOCALE_DIR = Path(__file__).resolve().parent.parent.parent / "locale"
LANG_COOKIE = "xd_lang"
# Catalogue folder of each supported locale (gettext names use an underscore).
FOLDERS = {"zh-CN": "zh_CN", "en": "en"}


def N_(message: str) -> str:  # noqa: N802 - the conventional name babel extracts
    """Mark a string for extraction; translate it later with `_()`."""
    return message


def catalogue_path(locale: str) -> Path:
    return LOCALE_DIR / FOLDERS[locale] / "LC_MESSAGES" / "messages.po"


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> gettext.GNUTranslations:
    """The compiled catalogue of a supported locale (built once per process)."""
    locale = normalise_locale(locale)
    with catalogue_path(locale).open("rb") as fh:
        catalog = read_po(fh, locale=FOLDERS[locale])
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def load_all() -> None:
    """Read every catalogue now, so a broken `.po` file stops start-up, not a request."""
    for locale in LOCALES:
        translations(locale)


def gettext_for(locale: str | None) -> Callable[..., str]:
    """`_` for Python code: `_("Saved")`, `_("Hello, %(name)s", name=...)`."""
    tr = translations(normalise_locale(locale))

    def _(message: str, **variables: Any) -> str:
        text = tr.gettext(message)
        return text % variables if variables else text

    return _


def ui_locale(connection: ASGIConnection[Any, Any, Any, Any], default: str | None = None
              ) -> str:
    """The language of a page: `?lang=` (this request only), then the `xd_lang` cookie (set
    by the language switch, /lang/<code>), then the tenant's locale (when known), then zh-CN.

    Accept-Language is ignored on purpose: the product is Chinese first, and a browser set to
    English gets English by one click (a cookie)."""
    lang = connection.query_params.get("lang") or connection.cookies.get(LANG_COOKIE)
    if lang:
        return normalise_locale(lang)
    return normalise_locale(default or DEFAULT_LOCALE)
