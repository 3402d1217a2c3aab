"""The schedule engine against DOMAIN.md's published figures, the documented conventions
(docs/servicing.md) and hypothesis properties."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, replace
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from plugins.servicing.daycount import accrual_spans, due_dates, nominal_fraction
from plugins.servicing.schedule import (
    ROW_FIELDS,
    Fee,
    Grace,
    Installment,
    Rounding,
    Schedule,
    Terms,
    TermsError,
    build_schedule,
)

PROPERTY = hsettings(max_examples=150, deadline=None, database=None)
D = Decimal
START = date(2022, 11, 1)


def build(principal: str, rate: str, method: str, periods: int, **extra: Any) -> Schedule:
    extra.setdefault("disbursed_on", START)
    return build_schedule(Terms(principal=D(principal), annual_rate=D(rate), method=method,
                                periods=periods, **extra))


def half_up(x: Fraction, digits: int = 2) -> Fraction:
    """Exact half-up rounding of a non-negative rational to `digits` decimals."""
    scale = 10 ** digits
    return Fraction(math.floor(x * scale + Fraction(1, 2)), scale)


def money(rows: tuple[Installment, ...], attr: str) -> list[str]:
    return [str(getattr(r, attr)) for r in rows]


# -- DOMAIN.md published figures, to the cent ------------------------------------------

def test_equal_installment_1m_at_4_9_over_360_months() -> None:
    s = build("1000000", "4.9", "equal_installment", 360)
    rows = s.installments
    assert len(rows) == 360
    assert rows[0].total == D("5307.27")
    assert (rows[0].interest, rows[0].principal) == (D("4083.33"), D("1223.94"))
    assert (rows[1].interest, rows[1].principal) == (D("4078.34"), D("1228.93"))
    assert {r.total for r in rows[:-1]} == {D("5307.27")}
    assert rows[-1].total == D("5305.19")
    assert s.apr == D("4.90")


def test_equal_installment_100k_at_4_9_over_120_months() -> None:
    rows = build("100000", "4.9", "equal_installment", 120).installments
    assert rows[0].total == D("1055.77")
    assert (rows[0].interest, rows[0].principal) == (D("408.33"), D("647.44"))


def test_equal_installment_10k_at_12_over_12_months() -> None:
    rows = build("10000", "12", "equal_installment", 12).installments
    assert money(rows[:-1], "total") == ["888.49"] * 11
    assert rows[-1].total == D("888.47")


def test_equal_principal_1m_at_4_9_over_360_months() -> None:
    s = build("1000000", "4.9", "equal_principal", 360)
    rows = s.installments
    assert {r.principal for r in rows[:-1]} == {D("2777.78")}
    assert rows[0].total == D("6861.11")
    assert rows[0].total - rows[1].total == D("11.34")
    assert s.total_interest == D("737041.08")  # the rounded schedule, not P·i·(n+1)/2
    assert rows[-1].total == D("2788.32")


def test_interest_only_100k_at_12_over_12_months() -> None:
    s = build("100000", "12", "interest_only", 12)
    assert money(s.installments[:-1], "total") == ["1000.00"] * 11
    assert s.installments[-1].total == D("101000.00")
    assert s.total_interest == D("12000.00") and s.apr == D("12.00")


@pytest.mark.parametrize("day_count,interest", [("actual/360", "1800.00"),
                                                ("actual/365", "1775.34")])
@pytest.mark.parametrize("periods,every", [(90, 1), (1, 90)])
def test_bullet_100k_at_7_2_for_90_days(day_count: str, interest: str, periods: int,
                                        every: int) -> None:
    for basis in ("per_period", "daily"):
        s = build("100000", "7.2", "bullet", periods, frequency="day", every=every,
                  day_count=day_count, interest_basis=basis)
        (row,) = s.installments
        assert row.due_on == date(2023, 1, 30)
        assert (row.principal, row.interest) == (D("100000.00"), D(interest))
        assert row.total == D("100000") + D(interest) and row.balance == 0
        assert s.apr == D("7.20")  # a bullet's IRR period is its whole term


def test_flat_12k_over_12_months_at_1_percent_a_month() -> None:
    s = build("12000", "12", "flat", 12)
    assert money(s.installments, "total") == ["1120.00"] * 12
    assert s.total_interest == D("1440.00")
    assert s.apr > D("20")  # far above the 12% flat rate
    assert s.apr == D("21.46")


# -- dates and frequencies ---------------------------------------------------------------

def test_monthly_due_dates_clamp_to_month_end() -> None:
    rows = build("1200", "12", "equal_principal", 4, disbursed_on=date(2024, 1, 31)).installments
    assert [r.due_on for r in rows] == [date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30),
                                        date(2024, 5, 31)]
    # per_period: every month accrues 1/12 whatever its length
    assert money(rows, "interest") == ["12.00", "9.00", "6.00", "3.00"]


def test_weekly_per_period_is_annual_over_52() -> None:
    rows = build("5200", "52", "equal_principal", 4, frequency="week").installments
    assert [r.due_on for r in rows] == [date(2022, 11, 8), date(2022, 11, 15),
                                        date(2022, 11, 22), date(2022, 11, 29)]
    assert money(rows, "interest") == ["52.00", "39.00", "26.00", "13.00"]


def test_weekly_daily_basis_uses_the_day_count() -> None:
    rows = build("3650", "10", "interest_only", 2, frequency="week", interest_basis="daily",
                 day_count="actual/365").installments
    assert money(rows, "interest") == ["7.00", "7.00"]


def test_daily_frequency_equal_installment() -> None:
    s = build("360000", "36", "equal_installment", 30, frequency="day", day_count="actual/360")
    rows = s.installments
    assert rows[0].due_on == date(2022, 11, 2) and rows[-1].due_on == date(2022, 12, 1)
    assert rows[0].interest == D("360.00")  # 360,000 × 36% / 360
    assert s.apr == D("36.00")


def test_daily_basis_months_accrue_actual_days() -> None:
    rows = build("36000", "12", "interest_only", 3, disbursed_on=date(2023, 1, 31),
                 interest_basis="daily", day_count="actual/360").installments
    assert money(rows, "interest") == ["336.00", "372.00", "360.00"]  # 28, 31, 30 days


def test_first_due_on_long_first_period() -> None:
    regular = build("100000", "12", "equal_installment", 12, disbursed_on=date(2022, 11, 20))
    broken = build("100000", "12", "equal_installment", 12, first_due_on=date(2022, 12, 20))
    first = broken.installments[0]
    # per_period: one whole month plus 19 odd days (actual/360) on 100,000 at 12%
    assert first.interest == D("1000.00") + D("633.33")
    assert first.principal == regular.installments[0].principal  # a regular principal part
    for a, b in zip(regular.installments[1:], broken.installments[1:], strict=True):
        assert (a.principal, a.interest, a.due_on) == (b.principal, b.interest, b.due_on)
    assert broken.apr > D("11.9")


def test_first_due_on_short_first_period_daily() -> None:
    s = build("36500", "10", "interest_only", 3, disbursed_on=date(2023, 3, 10),
              first_due_on=date(2023, 3, 20), interest_basis="daily", day_count="actual/365")
    assert [r.due_on for r in s.installments] == [date(2023, 3, 20), date(2023, 4, 20),
                                                  date(2023, 5, 20)]
    assert money(s.installments, "interest") == ["100.00", "310.00", "300.00"]


# -- rounding -----------------------------------------------------------------------------

def test_installment_multiple_of_whole_yuan() -> None:
    s = build("1000000", "4.9", "equal_installment", 360,
              rounding=Rounding(2, D("1")))
    rows = s.installments
    assert {r.total for r in rows[:-1]} == {D("5307")}  # 5307.27 half-up to whole yuan
    assert rows[-1].total != D("5307") and rows[-1].balance == 0
    assert sum(r.principal for r in rows) == D("1000000")
    assert s.installments[0].interest == D("4083.33")  # interest still to the fen


def test_multiple_rounds_half_up_not_up() -> None:
    rows = build("10000", "12", "equal_installment", 12, rounding=Rounding(2, D("1"))).installments
    assert rows[0].total == D("888")  # 888.49 -> 888
    rows = build("10000", "12", "equal_installment", 12, rounding=Rounding(2, D("0.5"))).installments
    assert rows[0].total == D("888.50")


def test_equal_principal_and_flat_multiples() -> None:
    ep = build("10000", "12", "equal_principal", 12, rounding=Rounding(2, D("10")))
    assert {r.principal for r in ep.installments[:-1]} == {D("830")}
    assert ep.installments[-1].principal == D("870")
    flat = build("10000", "12", "flat", 12, rounding=Rounding(2, D("1")))
    assert {r.total for r in flat.installments[:-1]} == {D("933")}  # 833.33 + 100 -> 933
    assert {r.interest for r in flat.installments} == {D("100.00")}


def test_zero_digits() -> None:
    s = build("10000", "12", "equal_installment", 12, rounding=Rounding(0, D("1")))
    assert all(r.total == r.total.to_integral_value() for r in s.installments)
    assert str(s.installments[0].interest) == "100"


def test_exact_half_cent_interest_rounds_up() -> None:
    # 1234.50 × 12% / 12 = 12.345 and 60.00 × 4.9% / 12 = 0.245 exactly: half-up
    assert build("1234.50", "12", "interest_only", 2).installments[0].interest == D("12.35")
    assert build("60", "4.9", "interest_only", 2).installments[0].interest == D("0.25")
    assert build("61", "4.9", "interest_only", 2).installments[0].interest == D("0.25")  # .249
    # 1.50 × 12% × 10 / 360 = 0.005 exactly -> 0.01
    rows = build("1.50", "12", "bullet", 10, frequency="day").installments
    assert rows[0].interest == D("0.01")


def test_zero_rate() -> None:
    s = build("1000", "0", "equal_installment", 3)
    assert money(s.installments, "total") == ["333.33", "333.33", "333.34"]
    assert s.total_interest == 0 and s.apr == D("0.00")


# -- grace -------------------------------------------------------------------------------

def test_principal_grace_interest_only_then_amortise_over_the_rest() -> None:
    s = build("12000", "12", "equal_installment", 12, grace=Grace(principal_periods=3))
    rows = s.installments
    assert money(rows[:3], "principal") == ["0.00"] * 3
    assert money(rows[:3], "interest") == ["120.00"] * 3
    rest = build("12000", "12", "equal_installment", 9)
    assert [r.total for r in rows[3:]] == [r.total for r in rest.installments]
    ep = build("12000", "12", "equal_principal", 12, grace=Grace(principal_periods=2))
    assert {r.principal for r in ep.installments[2:]} == {D("1200.00")}


def test_interest_grace_defers_interest_to_the_next_period() -> None:
    plain = build("12000", "12", "equal_installment", 12).installments
    s = build("12000", "12", "equal_installment", 12, grace=Grace(interest_periods=3))
    rows = s.installments
    assert money(rows[:3], "interest") == ["0.00"] * 3
    assert rows[3].interest == sum(r.interest for r in plain[:4])
    assert [r.principal for r in rows] == [r.principal for r in plain]
    assert [r.interest for r in rows[4:]] == [r.interest for r in plain[4:]]
    assert s.total_interest == sum(r.interest for r in plain)
    assert s.apr < D("12.00")  # the deferred interest earns nothing


def test_interest_free_periods_waive_interest() -> None:
    plain = build("12000", "12", "equal_principal", 12).installments
    s = build("12000", "12", "equal_principal", 12, grace=Grace(interest_free_periods=2))
    assert money(s.installments[:2], "interest") == ["0.00", "0.00"]
    assert [r.interest for r in s.installments[2:]] == [r.interest for r in plain[2:]]
    assert [r.principal for r in s.installments] == [r.principal for r in plain]
    bullet = build("100000", "7.2", "bullet", 90, frequency="day",
                   grace=Grace(interest_free_periods=30))
    assert bullet.installments[0].interest == D("1200.00")  # 60 of 90 days charged


def test_grace_combinations_keep_totals() -> None:
    s = build("50000", "9", "flat", 10, grace=Grace(2, 1, 1))
    rows = s.installments
    assert rows[0].interest == 0 and rows[1].interest == D("375.00") * 1  # 1 free + 1 moved
    assert sum(r.principal for r in rows) == D("50000")


@pytest.mark.parametrize("method,grace,field", [
    ("interest_only", Grace(principal_periods=1), "grace.principal_periods"),
    ("bullet", Grace(principal_periods=1), "grace.principal_periods"),
    ("bullet", Grace(interest_periods=1), "grace.interest_periods"),
    ("equal_installment", Grace(principal_periods=12), "grace.principal_periods"),
    ("equal_installment", Grace(interest_periods=12), "grace.interest_periods"),
    ("equal_installment", Grace(interest_free_periods=13), "grace.interest_free_periods"),
])
def test_grace_limits(method: str, grace: Grace, field: str) -> None:
    with pytest.raises(TermsError) as info:
        build("1000", "12", method, 12, grace=grace)
    assert info.value.field == field


# -- fees and APR --------------------------------------------------------------------------

def test_fees_at_disbursement_and_each_period() -> None:
    fees = (Fee("service fee", "disbursement", amount=D("1000")),
            Fee("account fee", "each_period", percent=D("0.1")))
    s = build("100000", "12", "equal_installment", 12, fees=fees)
    assert {r.fees for r in s.installments} == {D("100.00")}
    assert all(r.total == r.principal + r.interest + r.fees for r in s.installments)
    assert s.disbursement_fees == D("1000.00")
    assert s.total_fees == D("1000.00") + 12 * D("100.00")
    plain = build("100000", "12", "equal_installment", 12)
    assert s.apr > plain.apr == D("12.00")
    assert [r.interest for r in s.installments] == [r.interest for r in plain.installments]


def test_fee_percent_rounds_half_up() -> None:
    s = build("1234.50", "12", "equal_installment", 2,
              fees=(Fee("x", "each_period", percent=D("1")),))
    assert s.installments[0].fees == D("12.35")


def test_fees_taken_at_disbursement_must_leave_something_lent() -> None:
    with pytest.raises(TermsError) as info:
        build("1000", "12", "bullet", 1, fees=(Fee("all", "disbursement", percent=D("100")),))
    assert info.value.field == "fees"


# -- the dataclasses ---------------------------------------------------------------------

def test_installments_are_frozen_and_equal_by_value() -> None:
    s = build("1000", "12", "equal_installment", 3)
    row = s.installments[0]
    with pytest.raises(FrozenInstanceError):
        row.interest = D("0")  # type: ignore[misc]
    same = Installment(row.n, row.due_on, row.principal, row.interest, row.fees, row.total,
                       row.balance)
    assert same == row and hash(same) == hash(row) and repr(same) == repr(row)
    assert replace(row, interest=D("1")).interest == D("1")
    assert build("1000", "12", "equal_installment", 3) == s
    with pytest.raises(FrozenInstanceError):
        s.terms.principal = D("1")  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        s.rows = ()  # type: ignore[misc]


def test_rows_and_installments_agree() -> None:
    s = build("100000", "7.5", "equal_principal", 24, grace=Grace(1, 2, 1),
              fees=(Fee("f", "each_period", amount=D("5")),))
    assert [tuple(getattr(i, f) for f in ROW_FIELDS) for i in s.installments] == list(s.rows)
    assert s.installments is s.installments  # built once


@pytest.mark.parametrize("changes,field", [
    ({"principal": D("-1")}, "principal"),
    ({"principal": D("0")}, "principal"),
    ({"principal": D("1.001")}, "principal"),
    ({"principal": D("1e13")}, "principal"),
    ({"principal": D("NaN")}, "principal"),
    ({"annual_rate": D("-0.1")}, "annual_rate"),
    ({"annual_rate": D("1000.1")}, "annual_rate"),
    ({"annual_rate": D("1.0000001")}, "annual_rate"),
    ({"method": "balloon"}, "method"),
    ({"periods": 0}, "periods"),
    ({"periods": 1201}, "periods"),
    ({"frequency": "year"}, "frequency"),
    ({"every": 0}, "every"),
    ({"every": 13}, "every"),
    ({"interest_basis": "hourly"}, "interest_basis"),
    ({"day_count": "actual/366"}, "day_count"),
    ({"disbursed_on": date(1899, 12, 31)}, "disbursed_on"),
    ({"first_due_on": date(2022, 11, 1)}, "first_due_on"),
    ({"first_due_on": date(2023, 1, 2)}, "first_due_on"),
    ({"rounding": Rounding(5, D("0.01"))}, "rounding.digits"),
    ({"rounding": Rounding(2, D("0.001"))}, "rounding.installment_multiple"),
    ({"rounding": Rounding(2, D("0"))}, "rounding.installment_multiple"),
    ({"fees": (Fee("x", "monthly", amount=D(1)),)}, "fees[0].when"),
    ({"fees": (Fee("x", amount=D(1), percent=D(1)),)}, "fees[0]"),
    ({"fees": (Fee("x"),)}, "fees[0]"),
    ({"fees": (Fee("x", amount=D("-1")),)}, "fees[0].amount"),
    ({"fees": (Fee("x", amount=D("0.001")),)}, "fees[0].amount"),
    ({"fees": (Fee("x", percent=D("101")),)}, "fees[0].percent"),
])
def test_terms_refuse_out_of_range(changes: dict[str, Any], field: str) -> None:
    base = {"principal": D("1000"), "annual_rate": D("12"), "method": "equal_installment",
            "periods": 12, "disbursed_on": START}
    with pytest.raises(TermsError) as info:
        Terms(**{**base, **changes})
    assert info.value.field == field
    assert info.value.zh.startswith(field) and info.value.en.startswith(field)


# -- properties ----------------------------------------------------------------------------

METHODS = ("equal_installment", "equal_principal", "interest_only", "bullet", "flat")


@st.composite
def terms(draw: st.DrawFn, fee_free: bool = False) -> Terms:
    digits = draw(st.integers(0, 4))
    quantum = Fraction(1, 10 ** digits)
    multiple = draw(st.sampled_from([1, 1, 1, 5, 10, 100, 10 ** digits])) * quantum
    principal = Fraction(draw(st.integers(10 ** digits, 10 ** (7 + digits)))) * quantum
    method = draw(st.sampled_from(METHODS))
    periods = draw(st.integers(1, 120))
    frequency = draw(st.sampled_from(["month", "week", "day"]))
    every = draw(st.integers(1, {"month": 3, "week": 2, "day": 30}[frequency]))
    disbursed = draw(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 1, 1)))
    first_due = None
    if draw(st.booleans()):
        regular = due_dates(disbursed, 2, frequency, every)
        span = (regular[1] - disbursed).days
        first_due = date.fromordinal(disbursed.toordinal() + draw(st.integers(1, span)))
    principal_grace = interest_grace = free = 0
    if periods > 1 and method not in ("interest_only", "bullet"):
        principal_grace = draw(st.integers(0, min(periods - 1, 6)))
    if periods > 1 and method != "bullet":
        interest_grace = draw(st.integers(0, min(periods - 1, 6)))
    free = draw(st.integers(0, min(periods, 6)))
    fees: list[Fee] = []
    if not fee_free:
        for _ in range(draw(st.integers(0, 2))):
            when = draw(st.sampled_from(["disbursement", "each_period"]))
            if draw(st.booleans()):
                fees.append(Fee("f", when, percent=D(draw(st.integers(0, 300))) / 100))
            else:
                amount = Fraction(draw(st.integers(0, 10 ** (2 + digits)))) * quantum
                fees.append(Fee("f", when, amount=D(amount.numerator) / amount.denominator))
    rate = D(draw(st.integers(0, 60_000))) / 1000
    try:
        return Terms(
            principal=D(principal.numerator) / principal.denominator, annual_rate=rate,
            method=method, periods=periods, disbursed_on=disbursed, frequency=frequency,
            every=every, first_due_on=first_due,
            interest_basis=draw(st.sampled_from(["per_period", "daily"])),
            day_count=draw(st.sampled_from(["30/360", "actual/360", "actual/365",
                                            "actual/364", "actual/actual"])),
            rounding=Rounding(digits, D(multiple.numerator) / multiple.denominator),
            grace=Grace(principal_grace, interest_grace, free), fees=tuple(fees))
    except TermsError:
        assume(False)
        raise


def decimals(x: Decimal) -> int:
    exponent = x.as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent


@PROPERTY
@given(terms())
def test_schedule_invariants(t: Terms) -> None:
    s = build_schedule(t)
    rows = s.installments
    digits = t.rounding.digits
    assert len(rows) == (1 if t.method == "bullet" else t.periods)
    assert [r.n for r in rows] == list(range(1, len(rows) + 1))
    assert all(a.due_on < b.due_on for a, b in zip(rows, rows[1:], strict=False))
    assert sum(r.principal for r in rows) == t.principal  # exactly
    assert rows[-1].balance == 0
    previous = t.principal
    for r in rows:
        assert r.balance >= 0 and r.principal >= 0 and r.interest >= 0 and r.fees >= 0
        assert r.balance == previous - r.principal
        assert r.total == r.principal + r.interest + r.fees
        for value in (r.principal, r.interest, r.fees, r.total, r.balance):
            assert decimals(value) == digits  # every amount shown with `digits` decimals
        previous = r.balance
    assert s.total_principal == t.principal
    assert s.total_interest == sum(r.interest for r in rows)
    assert s.total_fees == s.disbursement_fees + sum(r.fees for r in rows)
    assert decimals(s.apr) == 2


@PROPERTY
@given(terms(fee_free=True))
def test_interest_is_the_exact_rational_rounded_half_up(t: Terms) -> None:
    """Each period's interest (before grace moves it) is balance × rate × the period's
    year fraction, computed here with Fractions and rounded half-up."""
    assume(t.method != "bullet" and t.grace == Grace())
    rows = build_schedule(t).installments
    dates = [r.due_on for r in rows]
    spans = accrual_spans(dates, t.disbursed_on, t.frequency, t.every, t.interest_basis,
                          t.day_count, t.first_due_on is not None)
    rate = Fraction(t.annual_rate) / 100
    balance = Fraction(t.principal)
    for r, span in zip(rows, spans, strict=True):
        base = Fraction(t.principal) if t.method == "flat" else balance
        assert Fraction(r.interest) == half_up(base * rate * Fraction(*span),
                                               t.rounding.digits), r
        balance -= Fraction(r.principal)


def npv(net: Fraction, flows: list[Fraction], rate: Fraction) -> Fraction:
    return sum((f / (1 + rate) ** (k + 1) for k, f in enumerate(flows)), -net)


@PROPERTY
@given(terms())
def test_apr_brackets_the_true_irr(t: Terms) -> None:
    """The exact NPV changes sign between APR − 0.005% and APR + 0.005% (periodic rates)."""
    assume(t.first_due_on is None and t.periods <= 60)
    s = build_schedule(t)
    basis = s.apr_basis
    flows = [Fraction(r.total) for r in s.installments]
    per_year = basis.periods_per_year
    low = (Fraction(s.apr) - Fraction(1, 200)) / 100 / per_year
    high = (Fraction(s.apr) + Fraction(1, 200)) / 100 / per_year
    net = Fraction(basis.net)
    assert npv(net, flows, low) >= 0 >= npv(net, flows, high) or low <= -1


@PROPERTY
@given(terms(fee_free=True), st.integers(1, 5000))
def test_fees_never_lower_the_apr(t: Terms, fee: int) -> None:
    try:
        charged = build_schedule(replace(t, fees=(Fee("f", "disbursement",
                                                      amount=D(fee) / 100),)))
    except TermsError:  # too precise for the digits, or not less than the principal
        return
    plain = build_schedule(t)
    assert charged.apr >= plain.apr
    regular = (t.interest_basis == "per_period" and t.first_due_on is None
               and t.grace == Grace() and t.method != "flat")
    if regular and t.rounding.digits >= 2 and t.principal >= 1000:
        # a plain regular schedule's APR is its nominal rate, so fees only raise it
        assert abs(plain.apr - t.annual_rate) <= D("0.01")
        assert charged.apr >= t.annual_rate - D("0.01")


def test_nominal_fraction_drives_the_apr_period() -> None:
    s = build("10000", "12", "equal_installment", 26, frequency="week", every=2)
    assert s.apr_basis.periods_per_year == 1 / nominal_fraction("week", 2, "per_period",
                                                                "actual/360")
    assert s.apr == D("12.00")


def test_30_360_zero_length_day_keeps_real_time_for_the_apr() -> None:
    # 30/360 counts Jan 30 -> Jan 31 as zero days: no interest, yet one real day passes
    s = build("1000", "12", "equal_installment", 1, disbursed_on=date(2000, 1, 30),
              first_due_on=date(2000, 1, 31), day_count="30/360",
              fees=(Fee("f", "disbursement", amount=D("1")),))
    assert s.installments[0].interest == 0
    assert s.apr_basis.first_time == Fraction(1, 30)  # one actual day of a 30-day month
    assert s.apr > D("1")
    bullet = build("1000", "12", "bullet", 1, frequency="day", disbursed_on=date(2000, 1, 30),
                   day_count="30/360", interest_basis="daily")
    assert bullet.installments[0].interest == 0 and bullet.apr == D("0.00")


def test_absurd_fees_give_a_huge_apr_not_an_error() -> None:
    s = build("1", "0", "equal_installment", 2, disbursed_on=date(2000, 1, 1),
              first_due_on=date(2000, 1, 2), rounding=Rounding(1, D("0.1")),
              fees=(Fee("f", "each_period", amount=D("14.1")),))
    assert s.apr > D("1e30") and decimals(s.apr) == 2
