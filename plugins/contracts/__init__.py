"""contracts: loan contract templates per product (Jinja2, zh-CN) rendered to PDF with the
repayment schedule attached, generated when an application is approved, stored encrypted,
and signed either in person with the tenant's certificate (PAdES, pyHanko) or through an
e签宝 / 法大大 style service (`choose_provider("esign")`); `contract.signed` tells finance
and origination that the loan may be disbursed.

The pure modules (numerals, templates, render, signing) need no database; the rest is the
plugin wiring (tables, service, esign, callbacks, api, pages, pack). docs/contracts.md.
"""

from __future__ import annotations

from pathlib import Path

from core.plugins import hookimpl

__version__ = "0.2.0"


@hookimpl
def piccolo_apps() -> list[str]:
    return ["plugins.contracts.piccolo_app"]


@hookimpl
def register_permissions(register):  # type: ignore[no-untyped-def]
    from core.declarations import Permission

    for code, zh, en in (
        ("contract.read", "查看合同", "View contracts"),
        ("contract.generate", "生成与作废合同", "Generate and cancel contracts"),
        ("contract.sign", "办理合同签署", "Conduct contract signing"),
        ("contract.template.manage", "维护合同模板与电子签名配置",
         "Manage contract templates and e-signature settings"),
    ):
        register(Permission(code, zh, en))


@hookimpl
def register_role_grants(register):  # type: ignore[no-untyped-def]
    from core.declarations import RoleGrant

    for role, perms in (
        ("loan_officer", ("contract.read", "contract.generate", "contract.sign")),
        ("risk_reviewer", ("contract.read",)),
        ("branch_manager", ("contract.read", "contract.generate", "contract.sign")),
        ("finance", ("contract.read",)),
        ("general_manager", ("contract.read", "contract.template.manage")),
        ("compliance", ("contract.read",)),
    ):
        register(RoleGrant(role, perms))


@hookimpl
def register_event_handlers(register):  # type: ignore[no-untyped-def]
    from core.declarations import Subscription
    from plugins.contracts.service import on_application_approved

    register(Subscription("application.approved", on_application_approved,
                          name="contracts.generate_on_approval"))


@hookimpl
def register_routes(register):  # type: ignore[no-untyped-def]
    from plugins.contracts.api import ROUTES

    for route in ROUTES:
        register(route)


@hookimpl
def register_pages(register):  # type: ignore[no-untyped-def]
    from plugins.contracts.pages import PAGES

    for page in PAGES:
        register(page)


@hookimpl
def template_dirs() -> list[str]:
    return [str(Path(__file__).resolve().parent / "templates")]


@hookimpl
def register_menu_items(register):  # type: ignore[no-untyped-def]
    from core.declarations import MenuItem

    register(MenuItem("contracts", "合同", "Contracts", "/contracts", "contract.read", 35))
    register(MenuItem("contract_templates", "合同模板", "Contract templates",
                      "/contracts/templates", "contract.template.manage", 36))


@hookimpl
def register_pack_sections(register):  # type: ignore[no-untyped-def]
    from core.declarations import PackSection
    from plugins.contracts.pack import export_templates, load_templates

    register(PackSection("contract_templates", load_templates, export_templates, order=220))


@hookimpl
def tenant_onboarding(ctx):  # type: ignore[no-untyped-def]
    from plugins.contracts.library import seed_default

    return seed_default(ctx)


@hookimpl
def choose_provider(kind, tenant):  # type: ignore[no-untyped-def]
    """The built-in e-signature providers (local signer, remote service client)."""
    if kind == "esign":
        from plugins.contracts.esign import PROVIDER

        return PROVIDER
    return None
