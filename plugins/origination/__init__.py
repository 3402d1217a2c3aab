"""origination: applications (进件) and their approval workflows.

The approval workflow engine (`plugins.origination.workflow`) is pure: no database, no I/O.
Workflows are data that the lender's business staff edit; every action returns a new
instance state and the events it caused, so storing them is the caller's only job.
"""

from __future__ import annotations

from core.plugins import hookimpl

__version__ = "0.1.0"

# --- applications (进件), credit checks and scorecards -------------------------------------
# (plugins.origination.applications, credit, bureau_client, scorecard(s), requirements,
# pack, api_applications, pages_applications, pages_scorecards). The approval workflow's
# hook implementations follow in their own block below.


@hookimpl
def piccolo_apps() -> list[str]:
    return ["plugins.origination.piccolo_app"]


@hookimpl
def register_entities(register):  # type: ignore[no-untyped-def]
    import plugins.origination.application_approval  # noqa: F401 - registers its outcome
    from plugins.origination.entities import APPLICATION

    register(APPLICATION)


@hookimpl
def register_permissions(register):  # type: ignore[no-untyped-def]
    from core.declarations import Permission

    for code, zh, en in (
        ("application.read", "查看进件", "View applications"),
        ("application.create", "新建进件", "Create applications"),
        ("application.update", "修改进件草稿与上传资料", "Edit draft applications and their documents"),
        ("application.submit", "提交与撤回进件", "Submit and withdraw applications"),
        ("credit.query", "查询征信", "Query the credit bureau"),
        ("scorecard.manage", "维护评分卡与进件要求", "Manage scorecards and application requirements"),
    ):
        register(Permission(code, zh, en))


@hookimpl
def register_role_grants(register):  # type: ignore[no-untyped-def]
    from core.declarations import RoleGrant

    officer = ("application.read", "application.create", "application.update",
               "application.submit", "credit.query")
    for role, perms in (
        ("loan_officer", officer),
        ("risk_reviewer", ("application.read", "credit.query", "scorecard.manage")),
        ("branch_manager", officer),
        ("finance", ("application.read",)),
        ("general_manager", ("application.read", "scorecard.manage")),
        ("compliance", ("application.read",)),
    ):
        register(RoleGrant(role, perms))


@hookimpl
def register_menu_items(register):  # type: ignore[no-untyped-def]
    from core.declarations import MenuItem

    register(MenuItem("applications", "进件", "Applications", "/applications",
                      "application.read", 30))
    register(MenuItem("scorecards", "评分卡", "Scorecards", "/scorecards",
                      "scorecard.manage", 36))


@hookimpl
def register_settings(register):  # type: ignore[no-untyped-def]
    from core.declarations import PluginSetting

    register(PluginSetting("origination.bureau_url", "征信服务地址（空：本地模拟征信）",
                           "Credit bureau URL (empty: the local bureau)", ""))
    register(PluginSetting("origination.bureau_app_key", "征信服务 AppKey",
                           "Credit bureau app key", ""))
    register(PluginSetting("origination.bureau_secret", "征信服务签名密钥",
                           "Credit bureau signing secret", "", secret=True))


@hookimpl
def choose_provider(kind, tenant):  # type: ignore[no-untyped-def]
    if kind == "credit_bureau":
        from plugins.origination.bureau_client import provider_for

        return provider_for(tenant)
    return None


@hookimpl
def register_event_handlers(register):  # type: ignore[no-untyped-def]
    from core.declarations import Subscription
    from plugins.origination.applications import on_contract_signed, on_loan_disbursed

    register(Subscription("contract.signed", on_contract_signed,
                          "origination: application ready to disburse"))
    register(Subscription("loan.disbursed", on_loan_disbursed,
                          "origination: application disbursed"))


@hookimpl
def register_pack_sections(register):  # type: ignore[no-untyped-def]
    from core.declarations import PackSection
    from plugins.origination import pack

    register(PackSection("application_requirements", pack.load_requirements,
                         pack.export_requirements, order=220))
    register(PackSection("scorecards", pack.load_scorecards, pack.export_scorecards,
                         order=221))
    register(PackSection("applications", pack.load_applications, pack.export_applications,
                         order=230, after_records=True))


@hookimpl
def register_routes(register):  # type: ignore[no-untyped-def]
    from plugins.origination.api_applications import ROUTES

    for route in ROUTES:
        register(route)


@hookimpl
def register_pages(register):  # type: ignore[no-untyped-def]
    from plugins.origination.pages_applications import APPLICATION_PAGES
    from plugins.origination.pages_scorecards import SCORECARD_PAGES

    for page in (*APPLICATION_PAGES, *SCORECARD_PAGES):
        register(page)


@hookimpl
def template_dirs() -> list[str]:
    from pathlib import Path

    return [str(Path(__file__).resolve().parent / "templates")]


# --- end of the applications block ----------------------------------------------------------

# Approvals (审批): the engine wired to the database, API and UI (hooks_approvals.py).
from plugins.origination.hooks_approvals import *  # noqa: E402,F401,F403
