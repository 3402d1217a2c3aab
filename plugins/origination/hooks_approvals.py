"""The hook implementations of origination's approvals (审批): tables, permissions, the
deadline job, the `workflows:` pack section, the inbox and editor pages, the API, and the
`approvals` provider through which other plugins start approvals and hear outcomes.

Re-exported by `plugins/origination/__init__.py`, so pluggy finds them on the plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.plugins import hookimpl

__all__ = [
    "approvals_choose_provider", "approvals_menu_items", "approvals_pack_sections",
    "approvals_pages", "approvals_periodic_jobs", "approvals_permissions",
    "approvals_piccolo_apps", "approvals_role_grants", "approvals_routes",
    "approvals_template_dirs", "approvals_jobs",
]


@hookimpl(specname="piccolo_apps")
def approvals_piccolo_apps() -> list[str]:
    return ["plugins.origination.approvals_app.piccolo_app"]


@hookimpl(specname="register_permissions")
def approvals_permissions(register: Any) -> None:
    from core.declarations import Permission

    register(Permission("workflow.read", "查看审批流程与全部审批", "View approval workflows and "
                                                         "all approvals"))
    register(Permission("workflow.manage", "维护审批流程", "Manage approval workflows"))
    register(Permission("approval.reassign", "重新分配他人的审批任务",
                        "Reassign other people's approval tasks"))


@hookimpl(specname="register_role_grants")
def approvals_role_grants(register: Any) -> None:
    from core.declarations import RoleGrant

    for role in ("risk_reviewer", "branch_manager", "compliance"):
        register(RoleGrant(role, ("workflow.read",)))
    register(RoleGrant("branch_manager", ("approval.reassign",)))
    register(RoleGrant("general_manager", ("workflow.read", "workflow.manage",
                                           "approval.reassign")))


@hookimpl(specname="register_jobs")
def approvals_jobs(register: Any) -> None:
    from core.declarations import Job
    from plugins.origination.approvals import deadlines_job

    register(Job("origination.approval_deadlines", deadlines_job, time_limit_s=300,
                 max_retries=3))


@hookimpl(specname="register_periodic_jobs")
def approvals_periodic_jobs(register: Any) -> None:
    from core.declarations import PeriodicJob

    register(PeriodicJob("origination.approval_deadlines", "*/5 * * * *",
                         "origination.approval_deadlines"))


@hookimpl(specname="register_pack_sections")
def approvals_pack_sections(register: Any) -> None:
    from core.declarations import PackSection
    from plugins.origination.approvals_pack import export, load

    register(PackSection("workflows", load, export, order=150))


@hookimpl(specname="register_pages")
def approvals_pages(register: Any) -> None:
    from plugins.origination.pages_approvals import APPROVAL_PAGES
    from plugins.origination.pages_workflows import WORKFLOW_PAGES

    for page in (*APPROVAL_PAGES, *WORKFLOW_PAGES):
        register(page)


@hookimpl(specname="register_routes")
def approvals_routes(register: Any) -> None:
    from plugins.origination.approvals_api import ROUTES

    for route in ROUTES:
        register(route)


@hookimpl(specname="template_dirs")
def approvals_template_dirs() -> list[str]:
    return [str(Path(__file__).resolve().parent / "templates")]


@hookimpl(specname="register_menu_items")
def approvals_menu_items(register: Any) -> None:
    from core.declarations import MenuItem

    register(MenuItem("approvals_inbox", "审批待办", "Approvals", "/approvals", None, 20,
                      badge="/approvals/badge"))
    register(MenuItem("approvals_workflows", "审批流程", "Approval workflows", "/workflows",
                      "workflow.read", 21))


@hookimpl(specname="choose_provider")
def approvals_choose_provider(kind: str, tenant: Any) -> Any:
    """`kernel().provider("approvals", tenant)`: start, act, timeline, on_outcome."""
    if kind == "approvals":
        from plugins.origination import approvals

        return approvals
    return None
