"""servicing: loan products, repayment schedules (还款计划) with the APR shown on every
quote, disbursement with the schedule frozen, repayments allocated by the product's order,
the nightly close of business (accrual, penalty, days past due, classification), and the
double-entry ledger.

A built-in plugin registered like any external one. The schedule engine
(`plugins.servicing.schedule`) is pure: no database, no I/O.
"""

from __future__ import annotations

from core.plugins import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_commands(cli):  # type: ignore[no-untyped-def]
    from plugins.servicing.cli import bench, cob, schedule

    cli.add_command(schedule)
    cli.add_command(cob)
    cli.add_command(bench)


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
        ("cob.run", "执行日终", "Run the close of business"),
        ("loan.classify", "调整五级分类", "Override loan classification"),
        ("loan.reschedule", "展期与变更利率", "Reschedule loans"),
        ("loan.write_off", "核销贷款", "Write loans off"),
    ):
        register(Permission(code, zh, en))


@hookimpl
def register_role_grants(register):  # type: ignore[no-untyped-def]
    from core.declarations import RoleGrant

    read = ("product.read", "loan.read")
    for role, perms in (
        ("loan_officer", read),
        ("risk_reviewer", (*read, "loan.classify")),
        ("branch_manager", read),
        ("finance", (*read, "loan.disburse", "loan.repay", "ledger.read", "cob.run",
                     "loan.reschedule")),
        ("collector", ("loan.read",)),
        ("general_manager", (*read, "ledger.read", "product.manage", "cob.run",
                             "loan.classify", "loan.reschedule", "loan.write_off")),
        ("compliance", (*read, "ledger.read")),
    ):
        register(RoleGrant(role, perms))


@hookimpl
def register_jobs(register):  # type: ignore[no-untyped-def]
    from core.declarations import Job
    from plugins.servicing.cob import cob_job

    register(Job("servicing.cob", cob_job, time_limit_s=4 * 3600, max_retries=5,
                 transactional=False))


@hookimpl
def register_periodic_jobs(register):  # type: ignore[no-untyped-def]
    from core.declarations import PeriodicJob

    # five past midnight in the tenant's time zone: yesterday's business date is closed
    register(PeriodicJob("servicing.cob", "5 0 * * *", "servicing.cob"))


@hookimpl
def register_settings(register):  # type: ignore[no-untyped-def]
    from core.declarations import PluginSetting
    from plugins.servicing.cob import DEFAULT_BUCKET_EDGES, DEFAULT_FLOORS, DEFAULT_REMINDER_DAYS

    register(PluginSetting("servicing.bucket_edges", "逾期分档（M1..M3 上限天数）",
                           "Overdue bucket edges (days, M1..M3)", list(DEFAULT_BUCKET_EDGES)))
    register(PluginSetting("servicing.classification", "五级分类逾期天数下限",
                           "Days past due flooring each classification", DEFAULT_FLOORS))
    register(PluginSetting("servicing.reminder_days", "到期提醒提前天数",
                           "Days before a due date to remind", list(DEFAULT_REMINDER_DAYS)))


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
    from plugins.servicing.pack import (
        export_ledger,
        export_loans,
        export_products,
        load_ledger,
        load_loans,
        load_products,
    )

    register(PackSection("ledger", load_ledger, export_ledger, order=190))
    register(PackSection("products", load_products, export_products, order=200))
    register(PackSection("loans", load_loans, export_loans, order=210, after_records=True))


@hookimpl
def register_pages(register):  # type: ignore[no-untyped-def]
    from plugins.servicing.pages import PAGES
    from plugins.servicing.pages_cob import COB_PAGES
    from plugins.servicing.pages_ledger import LEDGER_PAGES
    from plugins.servicing.pages_loan import LOAN_PAGES
    from plugins.servicing.pages_loan_actions import LOAN_ACTION_PAGES
    from plugins.servicing.pages_products import PRODUCT_PAGES

    for page in (*PAGES, *PRODUCT_PAGES, *LOAN_PAGES, *LOAN_ACTION_PAGES, *COB_PAGES,
                 *LEDGER_PAGES):
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
    register(MenuItem("servicing_cob", "日终", "Close of business", "/servicing/cob",
                      "cob.run", 43))
    register(MenuItem("servicing_ledger", "总账", "Ledger", "/servicing/ledger", "ledger.read",
                      44))


@hookimpl
def choose_provider(kind, tenant):  # type: ignore[no-untyped-def]
    """Other plugins reach servicing's products and quotes through `loan_products`."""
    if kind == "loan_products":
        from plugins.servicing.offers import PROVIDER

        return PROVIDER
    return None


@hookimpl
def record_panels(ctx, entity, record_id):  # type: ignore[no-untyped-def]
    """The customer's loans and latest repayments on the customer 360 view."""
    if entity != "customer":
        return None
    from plugins.servicing.panels import customer_panels

    return customer_panels(ctx, record_id)
