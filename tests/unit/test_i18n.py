"""Unit tests for core.i18n: message catalogue consistency, locale choice, rendering."""

from __future__ import annotations

import re
import string

import pytest

from core.i18n import DEFAULT_LOCALE, LOCALES, MESSAGES, normalise_locale, pick_locale, t

CJK = re.compile(r"[\u4e00-\u9fff]")


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_default_locale_is_chinese_and_supported():
    assert DEFAULT_LOCALE == "zh-CN"
    assert set(LOCALES) == {"zh-CN", "en"}


def test_catalogue_is_not_empty():
    assert len(MESSAGES) >= 30


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_every_message_has_both_locales(code):
    texts = MESSAGES[code]
    assert set(texts) == set(LOCALES)
    for locale in LOCALES:
        assert isinstance(texts[locale], str) and texts[locale].strip()


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_placeholders_match_between_locales(code):
    zh, en = MESSAGES[code]["zh-CN"], MESSAGES[code]["en"]
    assert placeholders(zh) == placeholders(en), code


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_placeholders_are_named(code):
    for text in MESSAGES[code].values():
        for name in placeholders(text):
            assert name.isidentifier(), (code, name)  # no positional {} or {0}


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_chinese_text_is_chinese_and_english_is_not(code):
    assert CJK.search(MESSAGES[code]["zh-CN"]), code
    assert not CJK.search(MESSAGES[code]["en"]), code


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_every_message_renders_with_its_placeholders(code):
    for locale in LOCALES:
        params = {name: f"<{name}>" for name in placeholders(MESSAGES[code][locale])}
        out = t(code, locale, **params)
        assert "{" not in out and "}" not in out, out
        for value in params.values():
            assert value in out


# --------------------------------------------------------------------------- pick_locale


@pytest.mark.parametrize(
    "header, expected",
    [
        ("en-US,en;q=0.9", "en"),
        ("zh-CN", "zh-CN"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("EN-gb", "en"),
        ("en", "en"),
        ("zh-TW", "zh-CN"),
        ("zh_CN", "zh-CN"),
        ("fr-FR, en;q=0.5", "en"),  # first *supported* tag wins
        ("de, zh;q=0.5, en;q=0.4", "zh-CN"),
        (" en-US ; q=1 ", "en"),
    ],
)
def test_pick_locale(header, expected):
    assert pick_locale(header) == expected


@pytest.mark.parametrize("header", [None, "", "fr-FR", "*", "ja,ko;q=0.5"])
def test_pick_locale_falls_back_to_default(header):
    assert pick_locale(header) == "zh-CN"


@pytest.mark.parametrize("header", [None, "", "fr-FR"])
def test_pick_locale_uses_given_default(header):
    assert pick_locale(header, default="en") == "en"


def test_pick_locale_header_beats_default():
    assert pick_locale("zh-CN", default="en") == "zh-CN"


@pytest.mark.parametrize(
    "locale, expected",
    [
        (None, "zh-CN"),
        ("", "zh-CN"),
        ("en", "en"),
        ("en_US", "en"),
        ("EN-us", "en"),
        ("zh", "zh-CN"),
        ("zh_CN", "zh-CN"),
        ("fr", "zh-CN"),
    ],
)
def test_normalise_locale(locale, expected):
    assert normalise_locale(locale) == expected


# --------------------------------------------------------------------------- t()


def test_t_renders_each_language():
    assert t("required", "en", label="Name") == "Name is required"
    assert t("required", "zh-CN", label="姓名") == "姓名为必填项"


def test_t_defaults_to_chinese():
    assert t("too_long", label="备注", max=5) == "备注最多 5 个字符"


def test_t_normalises_locale():
    assert t("not_found", "en-US") == "record not found"


def test_t_unknown_code_renders_code():
    assert t("no_such_code", "en") == "no_such_code"


def test_t_missing_param_returns_template_instead_of_raising():
    assert t("required", "en") == "{label} is required"
