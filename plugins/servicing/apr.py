"""The annualised rate including all fees (年化利率, PBOC announcement 2021 No. 3).

APR = the periodic internal rate of return of every cash flow × periods per year.
The lender's flows: the net amount lent at time 0 (principal minus fees taken at
disbursement), then each installment's total. The IRR is found on v = 1/(1+r) by a
Newton step then secant steps, kept inside a bracket (bisection when a step leaves it),
in Decimal; a result within a hair of a rounding boundary is settled with exact integer
arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from fractions import Fraction
from itertools import groupby

_CTX = Context(prec=40)
_HORNER = Context(prec=19)
_ZERO = Decimal(0)
_ONE = Decimal(1)
_TWO = Decimal(2)
_HUNDRED = Decimal(100)
_CENT = Decimal("0.01")
_TOLERANCE = Decimal("1e-16")  # default error of the periodic rate at the end
# How close annualise solves the APR, in percentage points: 1e-6 where an APR within
# _NEAR of a rounding boundary is then settled exactly (whole-period flows), 1e-9 where it
# cannot be (a broken first period: fractional powers).
_APR_ERROR = Decimal("1e-6")
_APR_ERROR_FRACTIONAL = Decimal("1e-9")
_NEAR = Decimal("1e-5")


class AprError(ValueError):
    """The cash flows have no internal rate of return (e.g. nothing is lent)."""


def _frac_dec(x: Fraction) -> Decimal:
    return Decimal(x.numerator) / Decimal(x.denominator)


def _runs(flows: Sequence[Decimal]) -> list[tuple[Decimal, int]]:
    """Consecutive equal flows as (amount, count), last run first (Horner order)."""
    return [(f, len(list(group))) for f, group in groupby(reversed(flows))]


def _horner(flows: list[Decimal], v: Decimal) -> tuple[Decimal, Decimal]:
    """S(v) = Σ f_k v^k (k from 0) and S'(v); `flows` in reverse order."""
    s = d = _ZERO
    for f in flows:
        d = d * v + s
        s = s * v + f
    return s, d


def _horner_value(flows: list[Decimal], v: Decimal) -> Decimal:
    """S(v) alone; `flows` in reverse order."""
    s = _ZERO
    for f in flows:
        s = s * v + f
    return s


def _horner_runs(runs: list[tuple[Decimal, int]], v: Decimal) -> tuple[Decimal, Decimal]:
    """The same sums over runs of equal flows, a run of L flows in one step:
    s ← s·v^L + f·G, G = 1 + v + … + v^(L−1) = (1 − v^L)/(1 − v)."""
    s = d = _ZERO
    one_minus = _ONE - v
    for f, count in runs:
        if count == 1:
            d = d * v + s
            s = s * v + f
            continue
        w = v ** count
        if one_minus == 0:
            geo, dgeo = Decimal(count), Decimal(count * (count - 1) // 2)
        else:
            geo = (_ONE - w) / one_minus
            dgeo = (geo - count * w / v) / one_minus
        d = d * w + s * count * w / v + f * dgeo
        s = s * w + f * geo
    return s, d


def irr(net: Decimal, flows: Sequence[Decimal], first_time: Fraction = Fraction(1),
        guess: Decimal = _ZERO, tolerance: Decimal = _TOLERANCE) -> Decimal:
    """The periodic rate r with net = Σ flows[k] / (1+r)^(first_time + k).

    `first_time` is when the first flow falls, in periods (1 for a regular first period);
    each later flow falls one period after the one before. Flows must be ≥ 0 and net > 0:
    the net present value then falls as r rises, so there is exactly one root. Newton on
    g(v) = v^t1·S(v) − net starts at `guess` (the nominal rate: the root itself when there
    are no fees) and stops once the step is so small that, converging quadratically, the
    remaining error of r is below `tolerance`.
    """
    if net <= 0:
        raise AprError("net amount lent must be positive")
    if not flows or min(flows) < 0:
        raise AprError("installment flows must be non-negative")
    with localcontext(_CTX):
        n = len(flows)
        if n > 8 and flows.count(flows[n // 2]) * 2 > n:  # mostly one level amount
            runs = _runs(flows)

            def series(v: Decimal) -> tuple[Decimal, Decimal]:
                return _horner_runs(runs, v)

            def series_value(v: Decimal) -> Decimal:
                return _horner_runs(runs, v)[0]
        else:
            reverse = list(reversed(flows))

            # Horner with non-negative terms loses at most ~2n units of the last digit:
            # 19 digits (one machine word, the fastest) leave r good to ~1e-16.
            def series(v: Decimal) -> tuple[Decimal, Decimal]:
                with localcontext(_HORNER):
                    return _horner(reverse, v)

            def series_value(v: Decimal) -> Decimal:
                with localcontext(_HORNER):
                    return _horner_value(reverse, v)
        a = _frac_dec(first_time) if first_time != 1 else None

        def npv(v: Decimal) -> tuple[Decimal, Decimal]:
            s, d = series(v)
            if a is None:
                return v * s - net, s + v * d
            va = v ** a
            return va * s - net, a * va / v * s + va * d

        def npv_value(v: Decimal) -> Decimal:
            return (v if a is None else v ** a) * series_value(v) - net

        lo, hi = _ZERO, _ONE  # g(0+) = −net < 0
        g_hi = sum(flows, _ZERO) - net  # g(1): every discount factor is 1
        if g_hi == 0:
            return _ZERO
        while g_hi < 0:  # a negative rate (repaid less than lent): v > 1
            lo, hi = hi, hi * _TWO
            g_hi, _ = npv(hi)
        v = _ONE / (_ONE + guess) if guess > -1 else hi
        if not lo < v < hi:
            v = (lo + hi) / _TWO
        # The first step is Newton's (value and derivative); later steps are secant steps
        # through the last two points, which need the value only (half the work). Errors
        # in v after a step h: Newton about c·h², secant about c·|h·h_before|, with
        # c = g''/2g' ≤ n/v; an error e in v is e/v² in r. Stop when that is ≤ tolerance.
        enough = tolerance / (n + 1 + (a or 0))
        previous: tuple[Decimal, Decimal] | None = None
        before: Decimal | None = None
        for _ in range(400):
            if previous is None:
                g, dg = npv(v)
            else:
                g = npv_value(v)
                dg = (g - previous[1]) / (v - previous[0]) if v != previous[0] else _ZERO
            if g == 0:
                break
            if g > 0:
                hi = v
            else:
                lo = v
            nxt = v - g / dg if dg > 0 else lo
            fast = lo < nxt < hi
            if not fast:
                nxt = (lo + hi) / _TWO
            h = nxt - v
            error = h * h if before is None else abs(h * before)
            previous, before, v = (v, g), h, nxt
            if (fast and error <= enough * v * v * v) or hi - lo <= tolerance * lo * lo:
                break
        return _ONE / v - _ONE


def _exact_sign(net: Decimal, flows: Sequence[Decimal], rate: Fraction) -> int:
    """Sign of the NPV at periodic `rate` (whole-period flows), computed exactly.

    With x = 1 + rate = p/q: NPV·x^n·q^n = q·Σ F_k p^(n−k) q^(k−1) − N·p^n, all integers.
    """
    x = 1 + rate
    p, q = x.numerator, x.denominator
    scale = max(-min(Decimal(f).as_tuple().exponent for f in (*flows, net)), 0)  # type: ignore[operator]
    ints = [int(f.scaleb(scale)) for f in flows]
    n = len(ints)
    h, qk = 0, 1
    for f in ints:
        h = h * p + f * qk
        qk *= q
    value = h * q - int(net.scaleb(scale)) * p ** n
    return (value > 0) - (value < 0)


def annualise(net: Decimal, flows: Sequence[Decimal], periods_per_year: Fraction,
              first_time: Fraction = Fraction(1), guess: Decimal = _ZERO) -> Decimal:
    """APR in percent, half-up to two decimals: IRR × periods per year × 100."""
    with localcontext(_CTX):
        factor = _frac_dec(periods_per_year) * _HUNDRED
        error = _APR_ERROR if first_time == 1 else _APR_ERROR_FRACTIONAL
        rate = irr(net, flows, first_time, guess, error / factor)
        exact = rate * factor
    # Absurd terms (a fee many times the loan, due a day later) can give an APR with more
    # digits than the context holds; show it whole rather than fail.
    with localcontext(Context(prec=max(_CTX.prec, exact.adjusted() + 8))):
        rounded = exact.quantize(_CENT, ROUND_HALF_UP)
        boundary = rounded + (_CENT / 2 if exact > rounded else -_CENT / 2)
        if first_time == 1 and abs(exact - boundary) < _NEAR:
            # Decide which side of the boundary the true root lies: NPV falls with r.
            b_rate = Fraction(boundary) / 100 / periods_per_year
            sign = _exact_sign(net, flows, b_rate)
            if sign >= 0:  # NPV(boundary) ≥ 0: the root is at or above the boundary
                rounded = (boundary + _CENT / 2).quantize(_CENT, ROUND_HALF_UP)
            else:
                rounded = (boundary - _CENT / 2).quantize(_CENT, ROUND_HALF_UP)
        return rounded
