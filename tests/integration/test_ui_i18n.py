"""Every user-facing string of the web shell is translated: the msgids extracted from the
templates, core/web/ui/*.py and the plugins' templates and pages*.py (Babel, as `make messages` does) must each have a non-empty
zh_CN translation with the same placeholders, and the catalogues hold nothing stale."""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _strings(value: object) -> list[str]:
    return [s for s in value if isinstance(s, str)] if isinstance(value, tuple | list) \
        else [value] if isinstance(value, str) else []


def test_every_message_has_a_chinese_translation() -> None:
    from core.web.ui.catalog import extracted, read_catalogue

    messages = extracted()
    assert len(messages) > 100  # the extraction itself works
    catalogue = {m.id: m.string for m in read_catalogue("zh-CN") if m.id}
    missing = [
        f"{msgid!r} ({places[0][0]}:{places[0][1]})" for msgid, places in messages.items()
        if not _strings(catalogue.get(msgid)) or not all(_strings(catalogue.get(msgid)))
    ]
    assert not missing, "untranslated (run `make messages`, then translate in " \
        "core/locale/zh_CN/LC_MESSAGES/messages.po):\n" + "\n".join(missing)


def test_translations_keep_the_placeholders() -> None:
    from core.web.ui.catalog import read_catalogue

    wrong = []
    for m in read_catalogue("zh-CN"):
        if not m.id:
            continue
        wanted = set(PLACEHOLDER.findall(" ".join(_strings(m.id))))
        for text in _strings(m.string):
            if set(PLACEHOLDER.findall(text)) != wanted:
                wrong.append(f"{m.id!r} -> {text!r}")
    assert not wrong, "\n".join(wrong)


def test_catalogues_hold_only_messages_in_use() -> None:
    from core.web.ui.catalog import extracted, read_catalogue

    used = set(extracted())
    for locale in ("zh-CN", "en"):
        stale = [m.id for m in read_catalogue(locale) if m.id and m.id not in used]
        assert not stale, f"{locale}: not used any more (run `make messages`): {stale}"


def test_catalogues_load_without_a_compile_step() -> None:
    from core.web.ui.i18n import gettext_for, translations

    assert translations("zh-CN").gettext("Customers") in ("客户", "Customers")
    zh, en = gettext_for("zh-CN"), gettext_for("en")
    assert zh("Sign in") == "登录" and en("Sign in") == "Sign in"
    assert zh("Hello, %(name)s", name="王建国") == "王建国，您好"
    assert translations("zh-CN").ngettext("%(num)d record", "%(num)d records", 5) == \
        "共 %(num)d 条"
    assert translations("en").ngettext("%(num)d record", "%(num)d records", 1) == \
        "%(num)d record"


def test_templates_have_no_untranslated_text() -> None:
    """Text outside `{{ }}` / `{% %}` and tags would bypass gettext (the logo glyph is art)."""
    from pathlib import Path

    from core.web.ui.catalog import ROOT, TEMPLATES

    found = {}
    paths = [*Path(TEMPLATES).rglob("*.html"), *(ROOT / "plugins").glob("*/templates/**/*.html")]
    for path in sorted(paths):
        text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", path.read_text("utf-8"),
                      flags=re.S)
        text = re.sub(r"<[^>]*>", " ", text, flags=re.S)
        words = [w for w in re.findall(r"[A-Za-z\u4e00-\u9fff][^\s<]*", text) if w != "贷"]
        if words:
            found[path.name] = words
    assert not found, found
