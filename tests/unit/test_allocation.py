"""Allocation of a payment over what is due: the product's order, period-first or
item-first, only what is due, the rest left over; never more than outstanding."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins.servicing.allocation import COMPONENTS, Due, allocate

D1, D2, D3 = date(2026, 1, 20), date(2026, 2, 20), date(2026, 3, 20)


def inst(n: int, due_on: date, principal: int = 800, interest: int = 100, penalty: int = 0,
         paid: dict[str, int] | None = None) -> Due:
    return Due(n, due_on, {"principal": principal, "interest": interest, "fees": 0,
                           "penalty": penalty, "compound": 0}, paid or {})


def test_period_first_settles_the_oldest_installment_before_the_next() -> None:
    result = allocate(1000, [inst(2, D2), inst(1, D1, penalty=50)], D2)
    assert result.parts == {(1, "penalty"): 50, (1, "interest"): 100, (1, "principal"): 800,
                            (2, "interest"): 50}
    assert result.left == 0


def test_item_first_takes_one_component_across_installments_first() -> None:
    result = allocate(1000, [inst(1, D1, penalty=50), inst(2, D2)], D2, mode="item_first")
    assert result.parts == {(1, "penalty"): 50, (1, "interest"): 100, (2, "interest"): 100,
                            (1, "principal"): 750}


def test_the_legal_default_order_interest_before_principal_is_data() -> None:
    order = ("principal", "interest", "fees", "penalty", "compound")
    result = allocate(850, [inst(1, D1, penalty=50)], D1, order=order)
    assert result.parts == {(1, "principal"): 800, (1, "interest"): 50}


def test_only_what_is_due_is_paid_and_the_rest_is_left() -> None:
    result = allocate(2000, [inst(1, D1, paid={"interest": 100}), inst(2, D2), inst(3, D3)], D2)
    assert result.by_component() == {"principal": 1600, "interest": 100}
    assert result.left == 300


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        allocate(0, [inst(1, D1)], D1)
    with pytest.raises(ValueError):
        allocate(10, [inst(1, D1)], D1, order=("interest", "principal"))


@given(amount=st.integers(1, 10_000), mode=st.sampled_from(["period_first", "item_first"]),
       charges=st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 500),
                                  st.integers(0, 200)), min_size=1, max_size=6),
       order=st.permutations(COMPONENTS))
def test_allocation_never_loses_or_overpays(amount: int, mode: str,
                                            charges: list[tuple[int, int, int]],
                                            order: list[str]) -> None:
    due = [inst(n + 1, D1, p, i, pen) for n, (p, i, pen) in enumerate(charges)]
    result = allocate(amount, due, D1, order, mode)
    assert result.applied + result.left == amount
    assert all(v > 0 for v in result.parts.values())
    for d in due:
        for c in COMPONENTS:
            assert result.parts.get((d.n, c), 0) <= d.outstanding(c)
    owed = sum(d.outstanding(c) for d in due for c in COMPONENTS)
    assert result.left == max(amount - owed, 0)
