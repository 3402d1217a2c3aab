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

    register(CUSTOMER)


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


@hookimpl
def register_menu_items(register):  # type: ignore[no-untyped-def]
    from core.declarations import MenuItem

    register(MenuItem("customers", "客户", "Customers", "/e/customer", "customer.read", 20))


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
