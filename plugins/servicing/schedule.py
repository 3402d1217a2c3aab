"""The repayment schedule engine (还款计划): pure, Decimal only, no I/O.

`build_schedule(terms)` turns loan terms into installments (due date, principal, interest,
fees, total, balance) and the APR. Conventions (documented in docs/servicing.md):
- interest of a period = balance × annual rate × the period's year fraction, rounded
  half-up to `digits` (one division last, so exact half-cent ties round up);
- the level amount of a method (equal installment: the installment; equal principal: the
  principal part; flat: the installment) is rounded half-up to `installment_multiple`;
- the last installment pays the remaining balance, absorbing every rounding residue;
- grace: principal grace = interest-only periods then amortise over the rest; interest
  grace = the interest of the first N periods is moved (not compounded) to period N+1;
  interest-free = the interest of the first N periods is waived (principal unchanged);
- fees: flat or percent of the principal, at disbursement (a flow at time 0) or with
  every installment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from fractions import Fraction
from functools import cached_property

from plugins.servicing import apr as aprmod
from plugins.servicing.daycount import (
    BASES,
    DAY_COUNTS,
    FREQUENCIES,
    accrual_spans,
    due_dates,
    nominal_fraction,
    step,
)

METHODS: tuple[str, ...] = ("equal_installment", "equal_principal", "interest_only",
                            "bullet", "flat")
FEE_WHEN: tuple[str, ...] = ("disbursement", "each_period")
MAX_PERIODS = 1200
MAX_RATE = Decimal(1000)  # percent a year
MAX_PRINCIPAL = Decimal(10) ** 12
MAX_DIGITS = 4
RATE_DECIMALS = 6  # of the percent figure
MAX_EVERY = {"month": 12, "week": 52, "day": 366}
FIRST_DATE, LAST_DATE = date(1900, 1, 1), date(2200, 12, 31)

# 50 digits: products of a balance and a rate are exact, and the one division per period
# is precise enough that rounding it to the cent never differs from exact arithmetic.
_CTX = Context(prec=50, rounding=ROUND_HALF_UP)
_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)


class TermsError(ValueError):
    """Loan terms the engine refuses, naming the field and the limit in zh-CN and en."""

    def __init__(self, field: str, zh: str, en: str, got: object = None) -> None:
        self.field = field
        shown = "" if got is None else f"{got}"[:60]
        self.zh = f"{field}：{zh}" + (f"（收到 {shown}）" if shown else "")
        self.en = f"{field}: {en}" + (f" (got {shown})" if shown else "")
        super().__init__(f"{self.zh} / {self.en}")


@dataclass(frozen=True)
class Rounding:
    digits: int = 2
    installment_multiple: Decimal = Decimal("0.01")


@dataclass(frozen=True)
class Grace:
    principal_periods: int = 0
    interest_periods: int = 0
    interest_free_periods: int = 0


@dataclass(frozen=True)
class Fee:
    """A fee: `amount` (money) or `percent` (of the principal), once at disbursement or
    with each installment."""

    name: str
    when: str = "disbursement"
    amount: Decimal | None = None
    percent: Decimal | None = None

    def value(self, principal: Decimal, quantum: Decimal) -> Decimal:
        if self.amount is not None:
            return self.amount.quantize(quantum)
        assert self.percent is not None
        return (principal * self.percent / _HUNDRED).quantize(quantum, ROUND_HALF_UP)


def _decimals(x: Decimal) -> int:
    exponent = x.as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


@dataclass(frozen=True)
class Terms:
    """What a schedule is built from; `annual_rate` is in percent (12 means 12% a year)."""

    principal: Decimal
    annual_rate: Decimal
    method: str
    periods: int
    disbursed_on: date
    frequency: str = "month"
    every: int = 1
    first_due_on: date | None = None
    interest_basis: str = "per_period"
    day_count: str = "actual/360"
    rounding: Rounding = field(default_factory=Rounding)
    grace: Grace = field(default_factory=Grace)
    fees: tuple[Fee, ...] = ()

    def __post_init__(self) -> None:
        _check_terms(self)


def _check_terms(t: Terms) -> None:
    """Every limit of the engine, in one place; request.py relies on it for ranges."""
    r = t.rounding
    for name, value in (("principal", t.principal), ("annual_rate", t.annual_rate),
                        ("rounding.installment_multiple", r.installment_multiple),
                        *((f"fees[{i}].{k}", v) for i, f in enumerate(t.fees)
                          for k, v in (("amount", f.amount), ("percent", f.percent))
                          if v is not None)):
        if not isinstance(value, Decimal) or not value.is_finite():
            raise TermsError(name, "须为有限的十进制数", "must be a finite decimal number")
    if not 0 <= r.digits <= MAX_DIGITS:
        raise TermsError("rounding.digits", f"小数位数须在 0 到 {MAX_DIGITS} 之间",
                         f"must be between 0 and {MAX_DIGITS}", r.digits)
    if r.installment_multiple <= 0 or _decimals(r.installment_multiple) > r.digits:
        raise TermsError("rounding.installment_multiple",
                         f"还款额取整单位须为正数，且不超过 {r.digits} 位小数",
                         f"must be positive with at most {r.digits} decimals",
                         r.installment_multiple)
    if t.principal <= 0 or t.principal > MAX_PRINCIPAL or _decimals(t.principal) > r.digits:
        raise TermsError("principal", f"本金须大于 0、不超过 {MAX_PRINCIPAL:,}，且最多 {r.digits} 位小数",
                         f"must be > 0, at most {MAX_PRINCIPAL:,} and have at most "
                         f"{r.digits} decimals", t.principal)
    if not 0 <= t.annual_rate <= MAX_RATE or _decimals(t.annual_rate) > RATE_DECIMALS:
        raise TermsError("annual_rate", f"年利率（百分比）须在 0 到 {MAX_RATE} 之间，最多 "
                         f"{RATE_DECIMALS} 位小数",
                         f"must be a percentage between 0 and {MAX_RATE} with at most "
                         f"{RATE_DECIMALS} decimals", t.annual_rate)
    if t.method not in METHODS:
        raise TermsError("method", f"未知的还款方式，可选：{'、'.join(METHODS)}",
                         f"unknown repayment method; one of {', '.join(METHODS)}", t.method)
    if not 1 <= t.periods <= MAX_PERIODS:
        raise TermsError("periods", f"期数须在 1 到 {MAX_PERIODS} 之间",
                         f"must be between 1 and {MAX_PERIODS}", t.periods)
    if t.frequency not in FREQUENCIES:
        raise TermsError("frequency", f"未知的还款频率，可选：{'、'.join(FREQUENCIES)}",
                         f"unknown frequency; one of {', '.join(FREQUENCIES)}", t.frequency)
    limit = MAX_EVERY[t.frequency]
    if not 1 <= t.every <= limit:
        raise TermsError("every", f"间隔须在 1 到 {limit} 之间", f"must be between 1 and {limit}",
                         t.every)
    if t.interest_basis not in BASES:
        raise TermsError("interest_basis", f"未知的计息方式，可选：{'、'.join(BASES)}",
                         f"unknown interest basis; one of {', '.join(BASES)}", t.interest_basis)
    if t.day_count not in DAY_COUNTS:
        raise TermsError("day_count", f"未知的计息天数规则，可选：{'、'.join(DAY_COUNTS)}",
                         f"unknown day count; one of {', '.join(DAY_COUNTS)}", t.day_count)
    if not FIRST_DATE <= t.disbursed_on <= LAST_DATE:
        raise TermsError("disbursed_on", f"放款日须在 {FIRST_DATE} 到 {LAST_DATE} 之间",
                         f"must be between {FIRST_DATE} and {LAST_DATE}", t.disbursed_on)
    if t.first_due_on is not None:
        latest = step(t.disbursed_on, t.frequency, t.every, 2)
        if not t.disbursed_on < t.first_due_on <= latest:
            raise TermsError("first_due_on", f"首期还款日须晚于放款日，且不晚于两个还款周期后（{latest}）",
                             f"must be after disbursed_on and no later than two periods "
                             f"after it ({latest})", t.first_due_on)
    g = t.grace
    n = t.periods
    for name, value, top in (("principal_periods", g.principal_periods, n - 1),
                             ("interest_periods", g.interest_periods, n - 1),
                             ("interest_free_periods", g.interest_free_periods, n)):
        if not 0 <= value <= max(top, 0):
            raise TermsError(f"grace.{name}", f"宽限期数须在 0 到 {max(top, 0)} 之间",
                             f"must be between 0 and {max(top, 0)}", value)
    if g.principal_periods and t.method in ("interest_only", "bullet"):
        raise TermsError("grace.principal_periods", "先息后本和一次性还本付息不适用本金宽限期",
                         "principal grace does not apply to interest_only or bullet")
    if g.interest_periods and t.method == "bullet":
        raise TermsError("grace.interest_periods", "一次性还本付息不适用利息宽限期",
                         "interest grace does not apply to bullet")
    upfront = _ZERO
    quantum = Decimal(1).scaleb(-r.digits)
    for i, fee in enumerate(t.fees):
        where = f"fees[{i}]"
        if fee.when not in FEE_WHEN:
            raise TermsError(f"{where}.when", "收费时点须为 disbursement 或 each_period",
                             "must be disbursement or each_period", fee.when)
        if (fee.amount is None) == (fee.percent is None):
            raise TermsError(where, "须给出 amount（金额）或 percent（本金百分比）之一",
                             "give exactly one of amount or percent")
        if fee.amount is not None and (fee.amount < 0 or _decimals(fee.amount) > r.digits):
            raise TermsError(f"{where}.amount", f"费用金额须不小于 0，且最多 {r.digits} 位小数",
                             f"must be ≥ 0 with at most {r.digits} decimals", fee.amount)
        if fee.percent is not None and (not 0 <= fee.percent <= 100
                                        or _decimals(fee.percent) > RATE_DECIMALS):
            raise TermsError(f"{where}.percent", f"费率须在 0 到 100 之间，最多 {RATE_DECIMALS} 位小数",
                             f"must be between 0 and 100 with at most {RATE_DECIMALS} decimals",
                             fee.percent)
        if fee.when == "disbursement":
            upfront += fee.value(t.principal, quantum)
    if upfront >= t.principal:
        raise TermsError("fees", "放款时收取的费用须小于本金",
                         "fees taken at disbursement must be less than the principal")


@dataclass(frozen=True, init=False)
class Installment:
    """One row of the schedule; `balance` is the principal still owed after it."""

    n: int
    due_on: date
    principal: Decimal
    interest: Decimal
    fees: Decimal
    total: Decimal
    balance: Decimal

    def __init__(self, n: int, due_on: date, principal: Decimal, interest: Decimal,
                 fees: Decimal, total: Decimal, balance: Decimal) -> None:
        # The generated frozen __init__ sets each field through object.__setattr__, which
        # costs more than the arithmetic of the row; filling __dict__ is the same, faster.
        d = self.__dict__
        d["n"] = n
        d["due_on"] = due_on
        d["principal"] = principal
        d["interest"] = interest
        d["fees"] = fees
        d["total"] = total
        d["balance"] = balance


# An installment as a plain tuple, the schedule's compact form: the hot loops build these
# (a tuple costs a tenth of an object), and `Schedule.installments` turns them into
# Installment objects on first use.
Row = tuple[int, date, Decimal, Decimal, Decimal, Decimal, Decimal]
ROW_FIELDS = ("n", "due_on", "principal", "interest", "fees", "total", "balance")


def _row(n: int, due_on: date, principal: Decimal, interest: Decimal, fees: Decimal,
         balance: Decimal) -> Row:
    """An installment whose total is principal + interest + fees."""
    return (n, due_on, principal, interest, fees, principal + interest + fees, balance)


@dataclass(frozen=True)
class AprBasis:
    """What the APR's IRR needs besides the installments' totals."""

    net: Decimal  # principal minus the fees taken at disbursement
    periods_per_year: Fraction  # of the IRR's period: the nominal period, a bullet's term
    first_time: Fraction  # when the first installment falls, in those periods
    guess: Decimal  # the nominal periodic rate, where Newton starts


@dataclass(frozen=True)
class Schedule:
    """Installments plus totals; `total_interest` is the sum of the rounded schedule.

    `rows` holds the installments as tuples in `ROW_FIELDS` order; `installments` gives
    them as frozen Installment objects, built on first use. `apr` is computed on first
    use too: an IRR costs about as much as the schedule itself, and bulk regeneration
    (close of business, reschedules) does not show it.
    """

    terms: Terms
    rows: tuple[Row, ...]
    total_principal: Decimal
    total_interest: Decimal
    total_fees: Decimal  # including those taken at disbursement
    disbursement_fees: Decimal
    apr_basis: AprBasis = field(repr=False, compare=False)

    @cached_property
    def installments(self) -> tuple[Installment, ...]:
        return tuple(Installment(*row) for row in self.rows)

    @cached_property
    def apr(self) -> Decimal:
        """The annualised IRR of all cash flows including fees, percent, two decimals."""
        b = self.apr_basis
        return aprmod.annualise(b.net, [row[5] for row in self.rows], b.periods_per_year,
                                b.first_time, b.guess)


def _to_multiple(x: Decimal, multiple: Decimal, quantum: Decimal) -> Decimal:
    if multiple == quantum:
        return x.quantize(quantum, ROUND_HALF_UP)
    return ((x / multiple).quantize(_ONE, ROUND_HALF_UP) * multiple).quantize(quantum)


def level_payment(principal: Decimal, rate: Decimal, periods: int) -> Decimal:
    """A = P·i·(1+i)^n / ((1+i)^n − 1), unrounded (P/n at a zero rate)."""
    if rate == 0:
        return principal / periods
    growth = (_ONE + rate) ** periods
    return principal * rate * growth / (growth - _ONE)


def build_schedule(terms: Terms) -> Schedule:
    """The full schedule for `terms` (validated on construction); `.apr` on first use."""
    with localcontext(_CTX):
        return _build(terms)


def _build(t: Terms) -> Schedule:
    n = t.periods
    q = Decimal(1).scaleb(-t.rounding.digits)
    multiple = t.rounding.installment_multiple
    principal = t.principal.quantize(q)
    zero = _ZERO.quantize(q)
    rate = t.annual_rate / _HUNDRED
    dates = due_dates(t.disbursed_on, n, t.frequency, t.every, t.first_due_on)
    broken = t.first_due_on is not None
    spans = accrual_spans(dates, t.disbursed_on, t.frequency, t.every, t.interest_basis,
                          t.day_count, broken)
    upfront = each = zero
    for fee in t.fees:
        if fee.when == "disbursement":
            upfront += fee.value(principal, q)
        else:
            each += fee.value(principal, q)

    if t.method == "bullet":
        return _bullet(t, principal, rate, q, dates, spans, upfront, each)

    nominal = nominal_fraction(t.frequency, t.every, t.interest_basis, t.day_count)
    nominal_rate = rate * nominal.numerator / nominal.denominator
    acc = _factors(spans, rate, t.interest_basis == "per_period")

    grace = t.grace
    g = grace.principal_periods
    amortising = n - g
    method = t.method
    annuity = method == "equal_installment"
    on_principal = method == "flat"  # flat interest is charged on the original principal
    level = part = zero
    if annuity:
        level = _to_multiple(level_payment(principal, nominal_rate, amortising), multiple, q)
    elif method == "equal_principal":
        part = _to_multiple(principal / amortising, multiple, q)
    elif method == "flat":
        if multiple == q:
            part = (principal / amortising).quantize(q, ROUND_HALF_UP)
        else:  # round the level installment to the multiple, keep the interest exact
            flat = (principal * rate * nominal.numerator / nominal.denominator).quantize(
                q, ROUND_HALF_UP)
            part = max(_to_multiple(principal / amortising + flat, multiple, q) - flat, zero)
    regular_num, regular_den = rate * nominal.numerator, Decimal(nominal.denominator)

    # Tight loops per phase: this is the hot path of bulk regeneration.
    rows: list[Row] = []
    append = rows.append
    balance = principal
    last = n - 1
    for k in range(g):  # principal grace: interest only
        num, den = acc[k]
        interest = ((principal if on_principal else balance) * num / den).quantize(q)
        append(_row(k + 1, dates[k], zero, interest, each, balance))
    start = g
    if annuity and broken and g == 0 and n > 1:
        # A broken first period keeps a regular first period's principal part; only its
        # interest differs, so later installments are as if it were regular.
        num, den = acc[0]
        interest = (balance * num / den).quantize(q)
        pay = level - (balance * regular_num / regular_den).quantize(q)
        pay = zero if pay < zero else balance if pay > balance else pay
        balance -= pay
        append(_row(1, dates[0], pay, interest, each, balance))
        start = 1
    if annuity:
        for k in range(start, last):
            num, den = acc[k]
            interest = (balance * num / den).quantize(q)
            pay = level - interest
            total = level
            if pay < zero or pay > balance:
                pay = zero if pay < zero else balance
                total = pay + interest
            balance -= pay
            if each:
                total += each
            append((k + 1, dates[k], pay, interest, each, total, balance))
    else:  # a level principal part (none for interest_only), interest on the balance
        for k in range(start, last):
            num, den = acc[k]
            interest = ((principal if on_principal else balance) * num / den).quantize(q)
            pay = part if part <= balance else balance
            balance -= pay
            total = pay + interest
            if each:
                total += each
            append((k + 1, dates[k], pay, interest, each, total, balance))
    if len(rows) < n:  # the last installment pays what is left
        num, den = acc[last]
        interest = ((principal if on_principal else balance) * num / den).quantize(q)
        append(_row(n, dates[last], balance, interest, each, zero))

    _interest_grace(rows, grace, each, zero)
    total_interest = sum([row[3] for row in rows], zero)

    first = Fraction(*_clock(t, dates[:1])[0]) / nominal if broken else Fraction(1)
    return Schedule(terms=t, rows=tuple(rows), total_principal=principal,
                    total_interest=total_interest, total_fees=upfront + each * n,
                    disbursement_fees=upfront,
                    apr_basis=AprBasis(principal - upfront, 1 / nominal, first, nominal_rate))


def _clock(t: Terms, dates: list[date],
           spans: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """The periods' lengths for the APR's time axis: the accrual spans, except that 30/360
    counts actual days (its day rule can give a real day zero length: Jan 30 → Jan 31)."""
    day_count = "actual/360" if t.day_count == "30/360" else t.day_count
    if spans is not None and day_count == t.day_count:
        return spans
    return accrual_spans(dates, t.disbursed_on, t.frequency, t.every, t.interest_basis,
                         day_count, t.first_due_on is not None)


def _factors(spans: list[tuple[int, int]], rate: Decimal,
             uniform: bool) -> list[tuple[Decimal, Decimal]]:
    """(rate × numerator, denominator) of each period's year fraction, one object per
    distinct span: interest = balance × numerator / denominator, one division, rounded.
    `uniform`: every span but the first is the same (the per_period basis)."""
    if uniform:
        rest = (rate * spans[-1][0], Decimal(spans[-1][1]))
        acc = [rest] * len(spans)
        acc[0] = (rate * spans[0][0], Decimal(spans[0][1]))
        return acc
    shared = {span: (rate * span[0], Decimal(span[1])) for span in set(spans)}
    return [shared[span] for span in spans]


def _interest_grace(rows: list[Row], grace: Grace, each: Decimal, zero: Decimal) -> None:
    """Waive the interest of the interest-free periods, then move the interest of the
    deferred periods (without interest on it) to the period after them, in place."""
    free, deferred = grace.interest_free_periods, grace.interest_periods
    if not (free or deferred):
        return
    interests = [row[3] for row in rows]
    for k in range(free):
        interests[k] = zero
    if deferred:
        interests[deferred] += sum(interests[:deferred], zero)
        interests[:deferred] = [zero] * deferred
    for k in range(max(free, deferred + 1 if deferred else 0)):
        number, due, pay, _, _, _, left = rows[k]
        rows[k] = _row(number, due, pay, interests[k], each, left)


def _bullet(t: Terms, principal: Decimal, rate: Decimal, q: Decimal, dates: list[date],
            spans: list[tuple[int, int]], upfront: Decimal, each: Decimal) -> Schedule:
    """One installment at maturity: principal plus interest over the whole term (minus any
    interest-free periods), rounded once. Its APR period is the whole term."""
    term = sum((Fraction(*s) for s in _clock(t, dates, spans)), Fraction(0))
    charged = sum((Fraction(*s) for s in spans[t.grace.interest_free_periods:]), Fraction(0))
    interest = (principal * rate * charged.numerator / charged.denominator).quantize(
        q, ROUND_HALF_UP)
    total = principal + interest + each
    row = (1, dates[-1], principal, interest, each, total, _ZERO.quantize(q))
    basis = AprBasis(principal - upfront, 1 / term, Fraction(1),
                     rate * term.numerator / term.denominator)
    return Schedule(terms=t, rows=(row,), total_principal=principal,
                    total_interest=interest, total_fees=upfront + each,
                    disbursement_fees=upfront, apr_basis=basis)
