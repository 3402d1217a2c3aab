"""servicing: loan products, repayment schedules (还款计划) with the APR shown on every
quote, disbursement with the schedule frozen, and the double-entry ledger; repayments,
allocation, accrual and close of business come next.

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


@hookimpl
def piccolo_apps() -> list[str]:
    return ["plugins.servicing.piccolo_app"]


@hookimpl
def register_permissions(register):  # type: ignore[no-untyped-def]
    from core.declarations import Permission

    for code, zh, en in (
        ("product.read", "查看贷款产品", "View loan products"),
        ("product.manage", "维护贷款产品", "Manage loan products"),
        ("loan.read", "查看贷款", "View loans"),
        ("loan.disburse", "放款", "Disburse loans"),
        ("loan.repay", "登记还款", "Post repayments"),
        ("ledger.read", "查看总账", "View the ledger"),
    ):
        register(Permission(code, zh, en))


@hookimpl
def register_role_grants(register):  # type: ignore[no-untyped-def]
    from core.declarations import RoleGrant

    read = ("product.read", "loan.read")
    for role, perms in (
        ("loan_officer", read),
        ("risk_reviewer", read),
        ("branch_manager", read),
        ("finance", (*read, "loan.disburse", "loan.repay", "ledger.read")),
        ("collector", ("loan.read",)),
        ("general_manager", (*read, "ledger.read", "product.manage")),
        ("compliance", (*read, "ledger.read")),
    ):
        register(RoleGrant(role, perms))


@hookimpl
def register_routes(register):  # type: ignore[no-untyped-def]
    from plugins.servicing.api import ROUTES

    for route in ROUTES:
        register(route)


@hookimpl
def tenant_onboarding(ctx):  # type: ignore[no-untyped-def]
    from plugins.servicing.ledger import seed_chart

    return seed_chart(ctx)


@hookimpl
def register_pack_sections(register):  # type: ignore[no-untyped-def]
    from core.declarations import PackSection
    from plugins.servicing.pack import export_loans, export_products, load_loans, load_products

    register(PackSection("products", load_products, export_products, order=200))
    register(PackSection("loans", load_loans, export_loans, order=210, after_records=True))


@hookimpl
def register_pages(register):  # type: ignore[no-untyped-def]
    from plugins.servicing.pages import PAGES
    from plugins.servicing.pages_loan import LOAN_PAGES

    for page in (*PAGES, *LOAN_PAGES):
        register(page)


@hookimpl
def template_dirs() -> list[str]:
    from pathlib import Path

    return [str(Path(__file__).resolve().parent / "templates")]


@hookimpl
def register_menu_items(register):  # type: ignore[no-untyped-def]
    from core.declarations import MenuItem

    register(MenuItem("servicing_products", "贷款产品", "Loan products", "/servicing/products",
                      "product.read", 40))
    register(MenuItem("servicing_loans", "贷款", "Loans", "/servicing/loans", "loan.read", 41))
    register(MenuItem("servicing_disburse", "放款", "Disburse", "/servicing/disburse",
                      "loan.disburse", 42))
