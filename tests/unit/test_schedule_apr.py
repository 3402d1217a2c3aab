"""The APR (年化利率, IRR including fees) of plugins/servicing/apr.py."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from plugins.servicing import apr
from plugins.servicing.apr import AprError, annualise, irr

D = Decimal
PROPERTY = hsettings(max_examples=200, deadline=None, database=None)


def test_regulator_example_is_12_80_percent() -> None:
    # PBOC 2021 No. 3: 100,000 lent, 1,000 fee up front, 12 payments of 8,833.3
    assert annualise(D("99000"), [D("8833.3")] * 12, Fraction(12)) == D("12.80")
    monthly = irr(D("99000"), [D("8833.3")] * 12)
    assert D("0.010669") < monthly < D("0.010670")


def test_no_interest_is_zero_and_losses_are_negative() -> None:
    assert annualise(D("300"), [D("100")] * 3, Fraction(12)) == D("0.00")
    assert annualise(D("300"), [D("99")] * 3, Fraction(12)) < 0


def test_single_flow_is_simple_interest_for_its_period() -> None:
    # a bullet's IRR period is its term: 1,800 on 100,000 over 90/360 of a year
    assert annualise(D("100000"), [D("101800")], Fraction(360, 90)) == D("7.20")


def test_exact_tie_on_the_rounding_boundary_rounds_half_up() -> None:
    # (1 + 0.12345/12)^2 = 1.02068083265625 exactly: the APR is exactly 12.345%
    assert annualise(D("1"), [D("0"), D("1.02068083265625")], Fraction(12)) == D("12.35")
    assert annualise(D("1"), [D("0"), D("1.02068083265624")], Fraction(12)) == D("12.34")


def test_broken_first_period_time() -> None:
    with localcontext() as ctx:
        ctx.prec = 40
        flow = D("100") * D("1.01") ** D("1.5")
    assert abs(irr(D("100"), [flow], Fraction(3, 2)) - D("0.01")) < D("1e-16")
    flows = [D("50") * D("1.01") ** D("0.5"), D("50") * D("1.01") ** D("1.5")]
    assert annualise(D("100"), flows, Fraction(12), Fraction(1, 2)) == D("12.00")


def test_bad_flows_are_refused() -> None:
    with pytest.raises(AprError):
        irr(D("0"), [D("1")])
    with pytest.raises(AprError):
        irr(D("100"), [D("101"), D("-1")])
    with pytest.raises(AprError):
        irr(D("100"), [])


def test_high_rates_converge() -> None:
    # 1000% a year, monthly: Newton starts far from the root and stays in its bracket
    flows = [D("100")] * 12
    rate = irr(D("200"), flows, guess=D("0"))
    pv = sum(f / (1 + rate) ** (k + 1) for k, f in enumerate(flows))
    assert abs(pv - D("200")) < D("1e-12")  # v is solved to about 1e-16


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 10 ** 7), st.integers(1, 40)), min_size=1,
                max_size=8),
       st.integers(1, 999_999))
def test_runs_and_plain_horner_agree(runs: list[tuple[int, int]], v_millionths: int) -> None:
    flows = [D(amount) / 100 for amount, count in runs for _ in range(count)]
    v = D(v_millionths) / 10 ** 6
    with localcontext() as ctx:
        ctx.prec = 40
        plain = apr._horner(list(reversed(flows)), v)
        grouped = apr._horner_runs(apr._runs(flows), v)
    for a, b in zip(plain, grouped, strict=True):
        assert abs(a - b) <= abs(a) * D("1e-30") + D("1e-30")


@PROPERTY
@given(st.lists(st.integers(0, 10 ** 8), min_size=1, max_size=60), st.integers(1, 10 ** 8),
       st.sampled_from([1, 4, 12, 52, 365]))
def test_apr_brackets_the_exact_root(cents: list[int], net_cents: int, per_year: int) -> None:
    flows = [D(c) / 100 for c in cents]
    if sum(cents) == 0:
        return
    net = D(net_cents) / 100
    got = annualise(net, flows, Fraction(per_year))

    def npv(rate_percent: Fraction) -> Fraction:
        rate = rate_percent / 100 / per_year
        return sum((Fraction(f) / (1 + rate) ** (k + 1) for k, f in enumerate(flows)),
                   -Fraction(net))

    low, high = Fraction(got) - Fraction(1, 200), Fraction(got) + Fraction(1, 200)
    if low / 100 / per_year > -1:
        assert npv(low) >= 0
    assert npv(high) <= 0 or high / 100 / per_year <= -1
