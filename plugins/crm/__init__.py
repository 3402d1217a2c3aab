"""crm: customers (individual and company), and later leads, follow-ups and KYC.

A built-in plugin: the kernel registers this module with pluggy like any external one.
"""

from __future__ import annotations

from core.plugins import hookimpl

__version__ = "0.1.0"


@hookimpl
def piccolo_apps() -> list[str]:
    return ["plugins.crm.piccolo_app"]


@hookimpl
def register_entities(register):  # type: ignore[no-untyped-def]
    from plugins.crm.entities import CUSTOMER
    from plugins.crm.leads import LEAD

    register(CUSTOMER)
    register(LEAD)


@hookimpl
def register_permissions(register):  # type: ignore[no-untyped-def]
    from core.declarations import Permission

    for action, zh, en in (
        ("read", "查看客户", "View customers"),
        ("create", "新建客户", "Create customers"),
        ("update", "修改客户", "Edit customers"),
        ("delete", "删除客户", "Delete customers"),
        ("reveal", "查看客户敏感信息明文", "Reveal customers' masked data"),
        ("assign", "分配客户", "Assign customers to officers"),
    ):
        register(Permission(f"customer.{action}", zh, en))
    for code, zh, en in LEAD_PERMISSIONS:
        register(Permission(code, zh, en))


@hookimpl
def register_role_grants(register):  # type: ignore[no-untyped-def]
    from core.declarations import RoleGrant

    crud = ("customer.read", "customer.create", "customer.update")
    for role, perms in (
        ("loan_officer", crud),
        ("risk_reviewer", ("customer.read", "customer.reveal")),
        ("branch_manager", (*crud, "customer.delete", "customer.reveal", "customer.assign")),
        ("finance", ("customer.read",)),
        ("collector", ("customer.read",)),
        ("general_manager", ("customer.read", "customer.reveal")),
        ("compliance", ("customer.read", "customer.reveal")),
    ):
        register(RoleGrant(role, perms))
    for role, perms in LEAD_GRANTS:
        register(RoleGrant(role, perms))


@hookimpl
def register_menu_items(register):  # type: ignore[no-untyped-def]
    from core.declarations import MenuItem

    register(MenuItem("customers", "客户", "Customers", "/e/customer", "customer.read", 20))
    register(MenuItem("crm_leads", "线索", "Leads", "/crm/leads", "lead.read", 21))
    register(MenuItem("crm_pool", "公海", "Lead pool", "/crm/pool", "lead.read", 22))
    register(MenuItem("crm_blacklist", "黑名单", "Blacklist", "/crm/blacklist",
                      "blacklist.manage", 23))
    register(MenuItem("crm_rules", "分配规则", "Assignment rules", "/crm/assignment-rules",
                      "lead.configure", 24))
    register(MenuItem("crm_lead_settings", "线索设置", "Lead settings", "/crm/settings",
                      "lead.configure", 25))


# --- leads, blacklist, assignment rules and the public pool (docs/crm.md) -----------------------

LEAD_PERMISSIONS = (
    ("lead.read", "查看线索", "View leads"),
    ("lead.create", "新建线索", "Create leads"),
    ("lead.update", "修改线索与阶段", "Edit leads and their stage"),
    ("lead.delete", "删除线索", "Delete leads"),
    ("lead.reveal", "查看线索敏感信息明文", "Reveal leads' masked data"),
    ("lead.assign", "分配线索", "Assign leads to officers"),
    ("lead.merge", "合并重复线索", "Merge duplicate leads"),
    ("lead.convert", "线索转客户", "Convert leads to customers"),
    ("lead.claim", "从公海领取线索", "Claim leads from the pool"),
    ("lead.configure", "配置分配规则与线索设置", "Configure assignment rules and lead settings"),
    ("blacklist.manage", "管理黑名单", "Manage the blacklist"),
)
_LEAD_WORK = ("lead.read", "lead.create", "lead.update", "lead.convert", "lead.claim")
LEAD_GRANTS = (
    ("loan_officer", _LEAD_WORK),
    ("branch_manager", (*_LEAD_WORK, "lead.delete", "lead.reveal", "lead.assign", "lead.merge",
                        "lead.configure")),
    ("risk_reviewer", ("lead.read", "blacklist.manage")),
    ("general_manager", ("lead.read", "lead.reveal", "lead.assign", "lead.merge",
                         "lead.configure")),
    ("compliance", ("lead.read", "lead.reveal", "blacklist.manage")),
)


@hookimpl
def register_settings(register):  # type: ignore[no-untyped-def]
    from core.declarations import PluginSetting
    from plugins.crm.leads import DEFAULT_STAGES

    register(PluginSetting("crm.webform_enabled", "启用线索网页表单", "Public lead form enabled",
                           False))
    register(PluginSetting("crm.lead_stages", "线索漏斗阶段", "Lead funnel stages",
                           DEFAULT_STAGES))
    register(PluginSetting("crm.pool_days", "无跟进退回公海天数",
                           "Days without activity before a lead returns to the pool", 15))
    register(PluginSetting("crm.pool_claim_limit", "公海领取上限（持有未结线索数）",
                           "Pool claim limit (open leads held)", 50))


@hookimpl
def register_jobs(register):  # type: ignore[no-untyped-def]
    from core.declarations import Job
    from plugins.crm.pool import sweep_job

    register(Job("crm.pool_sweep", sweep_job, time_limit_s=600))


@hookimpl
def register_periodic_jobs(register):  # type: ignore[no-untyped-def]
    from core.declarations import PeriodicJob

    register(PeriodicJob("crm.pool_sweep", "30 1 * * *", "crm.pool_sweep"))


@hookimpl
def register_pack_sections(register):  # type: ignore[no-untyped-def]
    from core.declarations import PackSection
    from plugins.crm.assignment import export_rules, load_rules
    from plugins.crm.blacklist_pack import export_blacklist, load_blacklist

    register(PackSection("assignment_rules", load_rules, export_rules, order=150))
    register(PackSection("blacklist", load_blacklist, export_blacklist, order=151))


@hookimpl
def register_routes(register):  # type: ignore[no-untyped-def]
    from plugins.crm.lead_api import ROUTES

    for route in ROUTES:
        register(route)


@hookimpl
def register_pages(register):  # type: ignore[no-untyped-def]
    from plugins.crm.pages_leads import LEAD_PAGES
    from plugins.crm.webform import WEBFORM_PAGES

    for page in (*LEAD_PAGES, *WEBFORM_PAGES):
        register(page)


@hookimpl
def template_dirs() -> list[str]:
    from pathlib import Path

    return [str(Path(__file__).resolve().parent / "templates")]


@hookimpl
def choose_provider(kind, tenant):  # type: ignore[no-untyped-def]
    """`party_screen` (blacklist), `duplicate_finder` (bulk duplicates and blacklist for
    importers) and `leads` (touch a lead on a follow-up): see docs/plugins.md."""
    if kind == "party_screen":
        from plugins.crm.blacklist import PARTY_SCREEN

        return PARTY_SCREEN
    if kind == "duplicate_finder":
        from plugins.crm.dedupe import DUPLICATE_FINDER

        return DUPLICATE_FINDER
    if kind == "leads":
        from plugins.crm.leads import LEADS_PROVIDER

        return LEADS_PROVIDER
    return None



# Follow-ups, tasks and the customer 360 view (plugins.crm.activity_hooks): implementations
# named with `specname`, so they sit beside the ones above.
from plugins.crm.activity_hooks import (  # noqa: E402
    activity_jobs,
    activity_menu_items,
    activity_pack_sections,
    activity_pages,
    activity_panels,
    activity_periodic_jobs,
    activity_permissions,
    activity_role_grants,
    activity_routes,
    activity_template_dirs,
    activity_timeline_items,
)

__all__ = ["activity_jobs", "activity_menu_items", "activity_pack_sections", "activity_pages",
           "activity_panels", "activity_periodic_jobs", "activity_permissions",
           "activity_role_grants", "activity_routes", "activity_template_dirs",
           "activity_timeline_items"]
