"""The schedule as the JSON contract shows it: money and rates as decimal strings."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from plugins.servicing.schedule import Schedule


def _money(value: Decimal) -> str:
    return format(value, "f")


def to_contract(schedule: Schedule) -> dict[str, Any]:
    """The response object: installments, totals (sum of the rounded schedule) and APR."""
    return {
        "installments": [
            {"n": row.n, "due_on": row.due_on.isoformat(), "principal": _money(row.principal),
             "interest": _money(row.interest), "fees": _money(row.fees),
             "total": _money(row.total), "balance": _money(row.balance)}
            for row in schedule.installments
        ],
        "total_principal": _money(schedule.total_principal),
        "total_interest": _money(schedule.total_interest),
        "total_fees": _money(schedule.total_fees),
        "disbursement_fees": _money(schedule.disbursement_fees),
        "apr": _money(schedule.apr),
    }


def dumps(schedule: Schedule) -> str:
    """Stable JSON text: sorted keys, two-space indent, UTF-8 characters as is."""
    return json.dumps(to_contract(schedule), ensure_ascii=False, sort_keys=True, indent=2)
