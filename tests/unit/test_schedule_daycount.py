"""Day counts, due dates and accrual fractions of the schedule engine (docs/servicing.md)."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from plugins.servicing.daycount import (
    accrual_spans,
    add_months,
    days360,
    due_dates,
    nominal_fraction,
    whole_periods_back,
    year_fraction,
)

PROPERTY = hsettings(max_examples=200, deadline=None, database=None)
dates = st.dates(min_value=date(1950, 1, 1), max_value=date(2150, 12, 31))


def test_month_end_clamping_from_jan_31_never_drifts() -> None:
    got = due_dates(date(2023, 1, 31), 5, "month", 1)
    assert got == [date(2023, 2, 28), date(2023, 3, 31), date(2023, 4, 30),
                   date(2023, 5, 31), date(2023, 6, 30)]
    leap = due_dates(date(2024, 1, 31), 2, "month", 1)
    assert leap == [date(2024, 2, 29), date(2024, 3, 31)]
    assert due_dates(date(2023, 1, 30), 2, "month", 1) == [date(2023, 2, 28), date(2023, 3, 30)]
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)


def test_quarterly_weekly_and_daily_dates() -> None:
    assert due_dates(date(2023, 11, 30), 3, "month", 3) == [
        date(2024, 2, 29), date(2024, 5, 30), date(2024, 8, 30)]
    assert due_dates(date(2023, 12, 25), 3, "week", 1) == [
        date(2024, 1, 1), date(2024, 1, 8), date(2024, 1, 15)]
    assert due_dates(date(2023, 12, 25), 2, "week", 2) == [date(2024, 1, 8), date(2024, 1, 22)]
    assert due_dates(date(2024, 2, 27), 3, "day", 1) == [
        date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)]
    assert due_dates(date(2024, 1, 1), 2, "day", 90) == [date(2024, 3, 31), date(2024, 6, 29)]


def test_first_due_on_anchors_later_dates() -> None:
    got = due_dates(date(2023, 1, 15), 3, "month", 1, first_due_on=date(2023, 2, 28))
    assert got == [date(2023, 2, 28), date(2023, 3, 28), date(2023, 4, 28)]
    got = due_dates(date(2023, 1, 10), 3, "week", 1, first_due_on=date(2023, 1, 20))
    assert got == [date(2023, 1, 20), date(2023, 1, 27), date(2023, 2, 3)]


@PROPERTY
@given(dates, st.integers(1, 12), st.integers(1, 120))
def test_monthly_dates_match_add_months(start: date, every: int, periods: int) -> None:
    got = due_dates(start, periods, "month", every)
    assert got == [add_months(start, every * k) for k in range(1, periods + 1)]
    for d in got:  # same day of month, or the month's last day when it is shorter
        assert d.day == start.day or (d + timedelta(days=1)).day == 1 and d.day < start.day


def test_days360_counts_month_ends_as_the_30th() -> None:
    assert days360(date(2023, 1, 31), date(2023, 2, 28)) == 30
    assert days360(date(2023, 2, 28), date(2023, 3, 31)) == 30
    assert days360(date(2023, 1, 15), date(2023, 2, 15)) == 30
    assert days360(date(2023, 1, 1), date(2024, 1, 1)) == 360
    assert days360(date(2023, 11, 1), date(2023, 11, 20)) == 19


def test_year_fractions() -> None:
    assert year_fraction(date(2023, 1, 1), date(2023, 4, 1), "actual/360") == (90, 360)
    assert year_fraction(date(2023, 1, 1), date(2023, 4, 1), "actual/365") == (90, 365)
    assert year_fraction(date(2023, 1, 1), date(2023, 1, 8), "actual/364") == (7, 364)
    # actual/actual (ISDA): 17 days of 2023 over 365 plus 14 days of 2024 over 366
    num, den = year_fraction(date(2023, 12, 15), date(2024, 1, 15), "actual/actual")
    assert Fraction(num, den) == Fraction(17, 365) + Fraction(14, 366)
    num, den = year_fraction(date(2024, 1, 1), date(2025, 1, 1), "actual/actual")
    assert Fraction(num, den) == 1


@PROPERTY
@given(dates, dates, dates)
def test_actual_actual_is_additive(a: date, b: date, c: date) -> None:
    a, b, c = sorted((a, b, c))
    if a == b or b == c:
        return
    whole = Fraction(*year_fraction(a, c, "actual/actual"))
    assert whole == Fraction(*year_fraction(a, b, "actual/actual")) + Fraction(
        *year_fraction(b, c, "actual/actual"))


def test_nominal_fractions() -> None:
    assert nominal_fraction("month", 1, "per_period", "actual/365") == Fraction(1, 12)
    assert nominal_fraction("month", 3, "daily", "actual/360") == Fraction(1, 4)
    assert nominal_fraction("week", 1, "per_period", "actual/365") == Fraction(1, 52)
    assert nominal_fraction("week", 2, "daily", "actual/365") == Fraction(14, 365)
    assert nominal_fraction("week", 1, "daily", "actual/364") == Fraction(1, 52)
    assert nominal_fraction("day", 1, "per_period", "actual/360") == Fraction(1, 360)
    assert nominal_fraction("day", 7, "daily", "actual/actual") == Fraction(7, 365)


def test_broken_first_period_counts_whole_periods_back_then_odd_days() -> None:
    whole, start = whole_periods_back(date(2022, 12, 20), date(2022, 11, 1), "month", 1)
    assert (whole, start) == (1, date(2022, 11, 20))
    whole, start = whole_periods_back(date(2022, 11, 20), date(2022, 11, 1), "month", 1)
    assert (whole, start) == (0, date(2022, 11, 20))
    dates_ = [date(2022, 12, 20), date(2023, 1, 20)]
    spans = accrual_spans(dates_, date(2022, 11, 1), "month", 1, "per_period", "actual/360",
                          True)
    assert Fraction(*spans[0]) == Fraction(1, 12) + Fraction(19, 360)
    assert Fraction(*spans[1]) == Fraction(1, 12)
    daily = accrual_spans(dates_, date(2022, 11, 1), "month", 1, "daily", "actual/365", True)
    assert [Fraction(*s) for s in daily] == [Fraction(49, 365), Fraction(31, 365)]


def test_daily_30_360_months_are_30_days_each() -> None:
    dates_ = due_dates(date(2023, 1, 31), 3, "month", 1)
    spans = accrual_spans(dates_, date(2023, 1, 31), "month", 1, "daily", "30/360", False)
    assert [Fraction(*s) for s in spans] == [Fraction(1, 12)] * 3


def test_daily_actual_spans_follow_the_calendar() -> None:
    dates_ = due_dates(date(2023, 1, 31), 3, "month", 1)
    spans = accrual_spans(dates_, date(2023, 1, 31), "month", 1, "daily", "actual/360", False)
    assert spans == [(28, 360), (31, 360), (30, 360)]


@pytest.mark.parametrize("frequency,every", [("month", 1), ("month", 3), ("week", 1),
                                             ("day", 7)])
def test_per_period_regular_spans_are_the_nominal_fraction(frequency: str, every: int) -> None:
    dates_ = due_dates(date(2023, 5, 31), 6, frequency, every)
    spans = accrual_spans(dates_, date(2023, 5, 31), frequency, every, "per_period",
                          "actual/365", False)
    nominal = nominal_fraction(frequency, every, "per_period", "actual/365")
    assert {Fraction(*s) for s in spans} == {nominal}
