"""servicing: repayment schedules (还款计划) and the APR shown on every quote; later
disbursement, repayments and allocation, accrual and close of business.

A built-in plugin registered like any external one. The schedule engine
(`plugins.servicing.schedule`) is pure: no database, no I/O.
"""

from __future__ import annotations

from core.plugins import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_commands(cli):  # type: ignore[no-untyped-def]
    from plugins.servicing.cli import schedule

    cli.add_command(schedule)
