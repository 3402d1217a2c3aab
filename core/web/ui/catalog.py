"""Keep the gettext catalogues in step with the code: `python -m core.web.ui.catalog`
(or `make messages`).

It extracts the msgids of the templates (core/web/templates and plugins/*/templates,
jinja2.ext.i18n) and of core/web/ui/*.py and plugins/*/pages*.py with Babel, then rewrites core/locale/<lang>/LC_MESSAGES/messages.po: new msgids are added with
an empty translation, vanished ones are dropped, existing translations are kept. Fill in the
empty zh_CN entries afterwards; tests/integration/test_ui_i18n.py fails until they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract
from babel.messages.pofile import read_po, write_po

import core
from core.web.ui.i18n import FOLDERS, catalogue_path

ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = ROOT / "core" / "web" / "templates"
UI_CODE = ROOT / "core" / "web" / "ui"
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trimmed": "false"}
HEADER = """\
# xindai web shell messages ({folder}). The English msgids live in core/web/templates and
# core/web/ui/*.py; `make messages` refreshes this file from them. Read at start-up by
# core.web.ui.i18n (no compile step); tests/integration/test_ui_i18n.py checks zh_CN."""


def extracted() -> dict[Any, list[tuple[str, int]]]:
    """Every msgid (a str, or a (singular, plural) tuple) with the places it is used."""
    found: dict[Any, list[tuple[str, int]]] = {}

    def add(path: Path, method: str, options: dict[str, str] | None) -> None:
        with path.open("rb") as fh:
            for lineno, message, _comments, _context in extract(
                method, fh, keywords=DEFAULT_KEYWORDS, options=options or {}
            ):
                found.setdefault(message, []).append((str(path.relative_to(ROOT)), lineno))

    plugin_templates = sorted((ROOT / "plugins").glob("*/templates"))
    for folder in (TEMPLATES, *plugin_templates):
        for path in sorted(folder.rglob("*.html")):
            add(path, "jinja2.ext:babel_extract", JINJA_OPTIONS)
    for path in (*sorted(UI_CODE.glob("*.py")), *sorted((ROOT / "plugins").glob("*/pages*.py"))):
        add(path, "python", None)
    return found


def read_catalogue(locale: str) -> Catalog:
    with catalogue_path(locale).open("rb") as fh:
        return read_po(fh, locale=FOLDERS[locale])


def update() -> dict[str, int]:
    """Rewrite each catalogue from the extracted msgids; returns untranslated counts."""
    messages = extracted()
    missing: dict[str, int] = {}
    for locale, folder in FOLDERS.items():
        path = catalogue_path(locale)
        previous = read_catalogue(locale) if path.exists() else None
        old = {m.id: m.string for m in previous if m.id} if previous else {}
        dates = {"creation_date": previous.creation_date} if previous else {}
        catalog = Catalog(locale=folder, project="xindai", version=core.__version__, **dates,
                          header_comment=HEADER.format(folder=folder), fuzzy=False,
                          msgid_bugs_address="-", last_translator="xindai", language_team="-")
        for msgid, places in messages.items():
            empty: Any = ("", "") if isinstance(msgid, tuple) else ""
            catalog.add(msgid, old.get(msgid) or empty, locations=places)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, include_previous=False)
        missing[locale] = sum(1 for m in catalog if m.id and not _translated(m.string))
    return missing


def _translated(string: Any) -> bool:
    if isinstance(string, tuple | list):
        return bool(string) and all(string)
    return bool(string)


if __name__ == "__main__":
    for lang, count in update().items():
        print(f"{lang}: {count} untranslated")
