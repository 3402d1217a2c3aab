"""Day-count conventions, due dates and the accrual fraction of each period (pure).

Fractions of a year are kept as exact integer pairs `(numerator, denominator)` so that
interest is computed with a single division (`balance × rate × num / den`): an exact
half-cent tie stays a tie and rounds half-up, as a calculator on paper would.
Conventions are described in docs/servicing.md ("Day count and periods").
"""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

DAY_COUNTS: tuple[str, ...] = ("30/360", "actual/360", "actual/365", "actual/364", "actual/actual")
FREQUENCIES: tuple[str, ...] = ("month", "week", "day")
BASES: tuple[str, ...] = ("per_period", "daily")

# Days in the year each convention divides by (actual/actual: 365 for a nominal period;
# its real year fractions are split by calendar year).
YEAR_DAYS: dict[str, int] = {"30/360": 360, "actual/360": 360, "actual/365": 365,
                             "actual/364": 364, "actual/actual": 365}
_AA_DEN = 365 * 366  # a common denominator for days of normal and leap years
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

Span = tuple[int, int]  # (numerator, denominator) of a year fraction


def is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def month_days(year: int, month: int) -> int:
    if month == 2 and is_leap(year):
        return 29
    return _MONTH_DAYS[month - 1]


def add_months(start: date, months: int, day: int | None = None) -> date:
    """`start` moved by `months` calendar months on day `day` (default: start's day),
    clamped to the month's end: Jan 31 + 1 month = Feb 28 (Feb 29 in a leap year)."""
    y, m = divmod(start.year * 12 + start.month - 1 + months, 12)
    d = start.day if day is None else day
    if d > 28:
        d = min(d, month_days(y, m + 1))
    return date(y, m + 1, d)


def step(start: date, frequency: str, every: int, k: int) -> date:
    """The date `k` periods (of `every` units of `frequency`) after `start`; k may be < 0.

    Months keep `start`'s day of month (clamped per month, never drifting: Jan 31,
    Feb 28, Mar 31, ...); weeks and days are exact day counts.
    """
    if frequency == "month":
        return add_months(start, every * k)
    if frequency == "week":
        return start + timedelta(days=7 * every * k)
    return start + timedelta(days=every * k)


def due_dates(disbursed_on: date, periods: int, frequency: str, every: int,
              first_due_on: date | None = None) -> list[date]:
    """Due dates of periods 1..n: from the disbursement date, or from `first_due_on`
    (which then anchors all later dates: same day of month, or whole weeks/days after)."""
    anchor, offset = (disbursed_on, 1) if first_due_on is None else (first_due_on, 0)
    if frequency == "month":
        day = anchor.day
        y, m = divmod(anchor.year * 12 + anchor.month - 1 + every * offset, 12)
        m += 1  # 1..12; `every` is at most 12, so one carry per step
        out = []
        append = out.append
        for _ in range(periods):
            if day <= 28:
                append(date(y, m, day))
            else:
                last = _MONTH_DAYS[m - 1] if m != 2 else (29 if is_leap(y) else 28)
                append(date(y, m, day if day <= last else last))
            m += every
            if m > 12:
                m -= 12
                y += 1
        return out
    days = 7 * every if frequency == "week" else every
    base = anchor.toordinal()
    return [date.fromordinal(base + days * k) for k in range(offset, periods + offset)]


def days360(start: date, end: date) -> int:
    """30/360 days: 30E/360 (ISDA) without the maturity exception: a date on the last day
    of its month counts as the 30th, so every whole calendar month has 30 days."""
    d1 = 30 if start.day == month_days(start.year, start.month) or start.day > 30 else start.day
    d2 = 30 if end.day == month_days(end.year, end.month) or end.day > 30 else end.day
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + d2 - d1


def year_fraction(start: date, end: date, day_count: str) -> Span:
    """The year fraction from `start` to `end` (end > start) as an exact (num, den) pair.

    actual/actual is ISDA: the days falling in each calendar year over that year's length.
    """
    if day_count == "30/360":
        return days360(start, end), 360
    if day_count == "actual/actual":
        num = 0
        cursor = start
        while cursor < end:
            year_end = date(cursor.year + 1, 1, 1)
            part_end = min(end, year_end)
            days = (part_end - cursor).days
            num += days * (365 if is_leap(cursor.year) else 366)
            cursor = part_end
        return num, _AA_DEN
    return (end - start).days, YEAR_DAYS[day_count]


def nominal_fraction(frequency: str, every: int, basis: str, day_count: str) -> Fraction:
    """The year fraction of one regular period: the per-period rate is annual × this.

    month: every/12 (both bases); week: every/52 per period, or 7·every/year-days on the
    daily basis; day: every/year-days (360, 365 or 364; 365 for actual/actual).
    """
    if frequency == "month":
        return Fraction(every, 12)
    if frequency == "week":
        return Fraction(every, 52) if basis == "per_period" else Fraction(7 * every,
                                                                          YEAR_DAYS[day_count])
    return Fraction(every, YEAR_DAYS[day_count])


def whole_periods_back(first_due_on: date, disbursed_on: date, frequency: str,
                       every: int) -> tuple[int, date]:
    """How many whole regular periods fit between the disbursement and the first due date,
    counted back from the due date, and the date where those whole periods start."""
    j = 0
    while True:
        earlier = step(first_due_on, frequency, every, -(j + 1))
        if earlier < disbursed_on:
            return j, step(first_due_on, frequency, every, -j)
        j += 1


def accrual_spans(dates: list[date], disbursed_on: date, frequency: str, every: int,
                  basis: str, day_count: str, broken_first: bool) -> list[Span]:
    """The year fraction of each period's interest.

    per_period: every regular period accrues exactly the nominal fraction. A broken first
    period (set by `first_due_on`) accrues the whole regular periods it contains plus the
    odd days before them by the day count.
    daily: every period accrues its actual span by the day count; under 30/360 a regular
    monthly period is 30 × every days.
    """
    nominal = nominal_fraction(frequency, every, basis, day_count)
    regular: Span = (nominal.numerator, nominal.denominator)
    n = len(dates)
    if basis == "per_period":
        spans = [regular] * n
        if broken_first:
            whole, stub_end = whole_periods_back(dates[0], disbursed_on, frequency, every)
            odd = Fraction(*year_fraction(disbursed_on, stub_end, day_count)) \
                if stub_end > disbursed_on else Fraction(0)
            first = nominal * whole + odd
            spans[0] = (first.numerator, first.denominator)
        return spans
    if day_count == "30/360" and frequency == "month":
        spans = [regular] * n
        if broken_first:
            spans[0] = year_fraction(disbursed_on, dates[0], day_count)
        return spans
    starts = [disbursed_on, *dates[:-1]]
    if day_count in ("actual/360", "actual/365", "actual/364"):
        year = YEAR_DAYS[day_count]
        return [((end - start).days, year) for start, end in zip(starts, dates, strict=True)]
    return [year_fraction(start, end, day_count) for start, end in zip(starts, dates,
                                                                          strict=True)]
