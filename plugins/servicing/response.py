"""The schedule as the JSON contract shows it: money and rates as decimal strings."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from plugins.servicing.schedule import Schedule


def _money(value: Decimal) -> str:
    """Plain notation with the schedule's decimals ("1000.00", never "1E+3")."""
    text = str(value)  # the engine quantizes every amount, so this is already plain
    return text if "E" not in text else format(value, "f")


def to_contract(schedule: Schedule) -> dict[str, Any]:
    """The response object: installments, totals (sum of the rounded schedule), fees and
    the APR (computed here if it was not yet)."""
    money = _money
    return {
        "installments": [
            {"n": n, "due_on": due.isoformat(), "principal": money(principal),
             "interest": money(interest), "fees": money(fees), "total": money(total),
             "balance": money(balance)}
            for n, due, principal, interest, fees, total, balance in schedule.rows
        ],
        "total_principal": _money(schedule.total_principal),
        "total_interest": _money(schedule.total_interest),
        "total_fees": _money(schedule.total_fees),
        "disbursement_fees": _money(schedule.disbursement_fees),
        "apr": _money(schedule.apr),
    }


def dumps(schedule: Schedule, indent: int | None = None) -> str:
    """Stable JSON text: sorted keys, UTF-8 characters as is; compact unless `indent`."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(to_contract(schedule), ensure_ascii=False, sort_keys=True, indent=indent,
                      separators=separators)
