"""Loan products quoting a daily rate (日利率，万分之N, plugins.servicing.products): the
conversion to the engine's annual percent is exact and follows the day count's year, the
range checks are made in the quoted unit and say so, and the ranges of a configuration are
refused next to the field that is wrong."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from core.errors import ValidationFailed
from plugins.servicing import products

BASE: dict[str, Any] = {
    "method": "equal_installment", "amount_min": "1000", "amount_max": "500000",
    "term_min": 3, "term_max": 36, "rate_min": "6", "rate_max": "24", "rate_default": "12",
}
DAILY = {**BASE, "rate_quote": "daily_wan", "rate_min": "3", "rate_max": "6",
         "rate_default": "5"}


@pytest.mark.parametrize(("day_count", "wan", "annual"), [
    ("30/360", "5", "18"), ("actual/360", "5", "18"), ("actual/365", "5", "18.25"),
    ("actual/364", "5", "18.2"), ("actual/actual", "5", "18.25"),
    ("actual/360", "4.5", "16.2"), ("actual/365", "3.33", "12.1545"),
    ("actual/364", "0.01", "0.0364"),
])
def test_a_daily_rate_becomes_its_annual_percent_exactly(day_count: str, wan: str,
                                                         annual: str) -> None:
    config = products.validate_config({**DAILY, "day_count": day_count, "rate_min": "0"})
    got = products.to_annual(config, Decimal(wan))
    assert got == Decimal(annual) and str(got.normalize()) == str(Decimal(annual).normalize())
    assert products.from_annual(config, got) == Decimal(wan)  # and back, exactly
    terms = products.terms_for(config, Decimal("10000"), 12, Decimal(wan), date(2026, 1, 5))
    assert terms.annual_rate == Decimal(annual)


def test_an_annual_product_is_unchanged_and_the_default_is_annual() -> None:
    config = products.validate_config(BASE)
    assert "rate_quote" not in config  # stored configurations stay as they were
    assert products.to_annual(config, Decimal("12")) == Decimal("12")
    terms = products.terms_for(config, Decimal("10000"), 12, None, date(2026, 1, 5))
    assert terms.annual_rate == Decimal("12")
    assert products.rate_view(config, terms.annual_rate) == {
        "rate_quote": "annual", "quoted_rate": "12", "annual_percent": "12.00"}


def test_the_default_daily_rate_is_quoted_with_its_annual_equivalent() -> None:
    config = products.validate_config({**DAILY, "day_count": "actual/365"})
    terms = products.terms_for(config, Decimal("10000"), 12, None, date(2026, 1, 5))
    assert terms.annual_rate == Decimal("18.25")
    assert products.rate_view(config, terms.annual_rate) == {
        "rate_quote": "daily_wan", "quoted_rate": "5", "annual_percent": "18.25"}
    view = products.rate_view(config, products.to_annual(config, Decimal("3.33")))
    assert view["quoted_rate"] == "3.33" and view["annual_percent"] == "12.1545"


def test_the_applicants_daily_rate_is_checked_in_wan_and_the_message_says_so() -> None:
    config = products.validate_config(DAILY)
    with pytest.raises(ValidationFailed) as info:
        products.terms_for(config, Decimal("10000"), 12, Decimal("7"), date(2026, 1, 5))
    [error] = info.value.errors
    assert error.field == "annual_rate"
    assert error.message("zh-CN") == "日利率应在万分之 3 至万分之 6 之间"
    assert error.message("en") == "daily rate must be between 3 and 6 per ten thousand a day"
    # 18 would be a fine annual rate, but it is 18 per ten thousand a day here
    with pytest.raises(ValidationFailed):
        products.terms_for(config, Decimal("10000"), 12, Decimal("18"), date(2026, 1, 5))
    # the edges are inside
    for wan in ("3", "6"):
        products.terms_for(config, Decimal("10000"), 12, Decimal(wan), date(2026, 1, 5))


def test_an_annual_rate_for_a_daily_product_is_held_to_the_annual_equivalents() -> None:
    """A reschedule gives a new annual percent: 万分之 3–6 a day on 360 is 10.8–21.6%."""
    config = products.validate_config(DAILY)
    assert products.range_errors(config, rate=Decimal("21.6")) == []
    assert products.range_errors(config, rate=Decimal("10.8")) == []
    [error] = products.range_errors(config, rate=Decimal("5"))
    assert error.message("zh-CN") == "年利率应在 10.8 至 21.6 之间"
    annual = products.validate_config(BASE)
    [error] = products.range_errors(annual, rate=Decimal("30"))
    assert error.message("zh-CN") == "年利率应在 6 至 24 之间"


@pytest.mark.parametrize(("change", "field", "zh"), [
    ({"rate_min": "30"}, "rate_min", "最低利率不能大于上限 24"),
    ({"amount_min": "600000"}, "amount_min", "最低金额不能大于上限 500000"),
    ({"term_min": 40}, "term_min", "最短期数不能大于上限 36"),
    ({"amount_min": "0"}, "amount_min", "最低金额应大于 0"),
    ({"rate_min": "-1"}, "rate_min", "最低利率不能为负数"),
    ({"rate_default": "25"}, "rate_default", "默认利率应在 6 至 24 之间"),
    ({"term_max": "abc"}, "term_max", "最长期数应为整数"),
    ({"rate_quote": "monthly"}, "rate_quote", "利率报价方式只能是 annual"),
    ({**DAILY, "rate_default": "7"}, "rate_default", "默认利率应在万分之 3 至万分之 6 之间"),
])
def test_bad_ranges_are_refused_next_to_their_field(change: dict[str, Any], field: str,
                                                    zh: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        products.validate_config({**BASE, **change})
    assert [e.field for e in info.value.errors] == [field]
    assert zh in info.value.errors[0].message("zh-CN")
    assert info.value.errors[0].message("en") != info.value.errors[0].message("zh-CN")
