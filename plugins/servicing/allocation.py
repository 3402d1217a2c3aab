"""Repayment allocation (冲账): how a payment is split over what is due. Pure: no database.

The order of components is product data (default fees -> penalty -> compound -> interest
-> principal); `period_first` settles the oldest installment completely before the next,
`item_first` takes one component across all due installments (oldest first) before the
next component. Only what is due on the value date is paid; what remains is returned
(kept as the customer's credit or refused, as the product says). Amounts are integer 分.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

COMPONENTS = ("fees", "penalty", "compound", "interest", "principal")


@dataclass(frozen=True)
class Due:
    """One installment as allocation sees it: what it charges and what is paid of it."""

    n: int
    due_on: date
    charged: dict[str, int]
    paid: dict[str, int]

    def outstanding(self, component: str) -> int:
        return self.charged.get(component, 0) - self.paid.get(component, 0)


@dataclass
class Allocation:
    """Where a payment went: (installment n, component) -> 分, and what was left over."""

    parts: dict[tuple[int, str], int] = field(default_factory=dict)
    left: int = 0

    def by_component(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (_, component), amount in self.parts.items():
            out[component] = out.get(component, 0) + amount
        return out

    @property
    def applied(self) -> int:
        return sum(self.parts.values())


def allocate(amount: int, installments: Sequence[Due], value_date: date,
             order: Sequence[str] = COMPONENTS, mode: str = "period_first") -> Allocation:
    """Split `amount` over the installments due on `value_date`, oldest first."""
    if amount <= 0:
        raise ValueError("amount must be positive")
    if sorted(order) != sorted(COMPONENTS) or mode not in ("period_first", "item_first"):
        raise ValueError("bad allocation order or mode")
    due = sorted((i for i in installments if i.due_on <= value_date), key=lambda i: i.n)
    result = Allocation(left=amount)
    if mode == "period_first":
        steps = [(i, c) for i in due for c in order]
    else:
        steps = [(i, c) for c in order for i in due]
    for installment, component in steps:
        if not result.left:
            break
        take = min(installment.outstanding(component), result.left)
        if take > 0:
            key = (installment.n, component)
            result.parts[key] = result.parts.get(key, 0) + take
            result.left -= take
    return result
