"""Access control: permissions, field policies and object rules, decided in one place.

- Permissions: one per action (`customer.read`, `loan.disburse`); a role grants a set, `*`
  grants all. An API token may narrow its user's permissions to its scopes.
- Field policies per role and field: hidden < masked < read < write. Unset fields follow
  the role's permissions on the entity (update/create -> write, read -> read).
- Object rules per role: `own` (records the user owns), `branch` (records of the user's
  organisation unit and the units below it), `all`. A user's widest role wins.

The write path (core.records) asks `require`, `field_policy` and `object_clause`; the
route guard asks `route_guard`. Nothing else decides access.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.errors import Forbidden

if TYPE_CHECKING:
    from core.fields import FieldDef
    from core.registry import EntityType
    from core.tenancy import Context

POLICIES = ("hidden", "masked", "read", "write")
SCOPES = ("own", "branch", "all")
ALL = "*"


@dataclass(frozen=True)
class Access:
    """What one signed-in user (or system job) may do, loaded once per request."""

    permissions: frozenset[str] = frozenset()  # all roles together, narrowed by token scopes
    scope: str = "own"
    org_unit_id: str | None = None
    org_path: str | None = None  # materialised path of the user's unit, e.g. "/a/b/"
    roles: tuple[RoleAccess, ...] = ()  # each role's own permissions and field policies

    def can(self, permission: str) -> bool:
        return ALL in self.permissions or permission in self.permissions


@dataclass(frozen=True)
class RoleAccess:
    """One role's permissions and its explicit field policies {(entity, field): policy}."""

    permissions: frozenset[str]
    policies: dict[tuple[str, str], str] = field(default_factory=dict)


SYSTEM = Access(permissions=frozenset({ALL}), scope="all")

# The lending lifecycle's roles (DOMAIN.md); plugins grant them permissions through the
# `register_role_grants` hook. name, zh-CN, en, object-rule scope.
BUILTIN_ROLES: tuple[tuple[str, str, str, str], ...] = (
    ("loan_officer", "客户经理", "Loan officer", "own"),
    ("risk_reviewer", "风控专员", "Risk reviewer", "all"),
    ("branch_manager", "部门经理", "Branch manager", "branch"),
    ("finance", "财务", "Finance", "all"),
    ("collector", "催收员", "Collector", "branch"),
    ("general_manager", "总经理", "General manager", "all"),
    ("compliance", "合规", "Compliance officer", "all"),
    ("tenant_admin", "租户管理员", "Tenant admin", "all"),
)
KERNEL_GRANTS: dict[str, tuple[str, ...]] = {
    "tenant_admin": (ALL,),  # every permission, webhooks.manage and jobs.manage included
    "loan_officer": ("tokens.manage", "records.import"),
    "branch_manager": ("records.import", "records.export"),
    "general_manager": ("auth.events", "audit.read", "records.export"),
    "compliance": ("auth.events", "audit.read", "audit.export"),
}

# Permissions of the kernel itself (plugins declare theirs through register_permissions).
KERNEL_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    ("admin.users", "管理用户", "Manage users"),
    ("admin.roles", "管理角色与字段权限", "Manage roles and field policies"),
    ("admin.org_units", "管理组织机构", "Manage organisation units"),
    ("admin.fields", "管理自定义字段", "Manage custom fields"),
    ("auth.events", "查看登录与访问记录", "View sign-in and access events"),
    ("tokens.manage", "管理自己的集成令牌", "Manage own integration tokens"),
    ("platform.tenants", "平台运营：管理所有租户", "Platform operator: manage all tenants"),
    ("admin.keys", "密钥管理（轮换、粉碎）", "Key management (rotate, shred)"),
    ("audit.read", "查看审计日志", "View the audit log"),
    ("audit.export", "导出审计日志", "Export the audit log"),
    ("webhooks.manage", "管理 Webhook（事件推送）", "Manage webhooks (event delivery)"),
    ("jobs.manage", "查看与重试后台作业", "View and retry background jobs"),
    ("records.import", "Excel 批量导入（另需该对象的新建权限）",
     "Import from Excel (with the entity's create permission)"),
    ("records.export", "导出为 Excel（另需该对象的查看权限）",
     "Export to Excel (with the entity's read permission)"),
)
NONE = Access()


def widest(a: str, b: str, order: tuple[str, ...]) -> str:
    return a if order.index(a) >= order.index(b) else b


def combine(roles: list[dict[str, Any]], policies: list[dict[str, Any]],
            org_unit_id: str | None, org_path: str | None,
            scopes: list[str] | None = None) -> Access:
    """The union of a user's roles; token scopes (if any) narrow the permissions."""
    perms: set[str] = set()
    scope = "own"
    per_role = []
    for role in roles:
        own = frozenset(role.get("permissions") or ())
        perms.update(own)
        scope = widest(role.get("scope") or "own", scope, SCOPES)
        per_role.append(RoleAccess(own, {(p["entity"], p["field"]): p["policy"]
                                         for p in policies if p["role"] == role["name"]}))
    if scopes is not None:
        perms = set(scopes) if ALL in perms else perms & set(scopes)
    return Access(frozenset(perms), scope, org_unit_id, org_path, tuple(per_role))


def allows(ctx: Context, permission: str) -> bool:
    """May ctx do `permission`? `platform.*` permissions count only in the platform tenant,
    so a lender's administrator (`*`) never manages other lenders."""
    if permission.startswith("platform."):
        from core.kernel import kernel

        if ctx.tenant.slug != kernel().settings.platform_tenant:
            return False
    return ctx.access.can(permission)


def require(ctx: Context, permission: str) -> None:
    """Raise 403 unless ctx may `permission`."""
    if not allows(ctx, permission):
        raise Forbidden("forbidden_action", permission=permission)


def _role_policy(can: Any, entity: str, explicit: str | None) -> str:
    """One role's policy for a field: its explicit policy, else what its entity permissions
    give; never more than those permissions (write needs update or create, any view read)."""
    may_write = can(f"{entity}.update") or can(f"{entity}.create")
    may_read = can(f"{entity}.read") or may_write
    policy = explicit or ("write" if may_write else "read" if may_read else "hidden")
    if policy == "write" and not may_write:
        policy = "read"
    return policy if may_read else "hidden"


def field_policy(ctx: Context, entity: EntityType, f: FieldDef) -> str:
    """hidden / masked / read / write for this user, field and entity: the widest of the
    user's roles, each role judged on its own (a policy in one role does not narrow what
    another role grants)."""
    a = ctx.access
    key = (entity.name, f.key)
    if not a.roles:  # the system, or a context built without roles
        return _role_policy(a.can, entity.name, None)
    best = "hidden"
    for role in a.roles:
        def can(permission: str, role: RoleAccess = role) -> bool:
            granted = ALL in role.permissions or permission in role.permissions
            return granted and a.can(permission)  # a token's scopes narrow every role
        best = widest(_role_policy(can, entity.name, role.policies.get(key)), best, POLICIES)
    return best


def object_clause(ctx: Context, table: Any) -> Any | None:
    """A where-clause limiting `table` to the records ctx may see, or None for all."""
    a = ctx.access
    if a.scope == "all":
        return None
    if a.scope == "branch" and a.org_unit_id:
        from core.tables import OrgUnit

        units = OrgUnit.select(OrgUnit.id).where(
            OrgUnit.tenant_id == ctx.tenant_id, OrgUnit.path.like(f"{a.org_path}%")
        )
        return table.org_unit_id.is_in(units)
    return table.owner_id == ctx.user_id
