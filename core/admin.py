"""Tenant administration: organisation units, roles, field policies, users.

Each function checks its admin permission, so the web pages, the API and packs (which act
as the system) share one set of rules.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from core import audit
from core.access import POLICIES, SCOPES, require
from core.errors import Conflict, Forbidden, NotFound, XindaiError
from core.tables import FieldPolicy, OrgUnit, Role, User
from core.tenancy import Context, tenant_scope

CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")


async def list_org_units(ctx: Context) -> list[dict[str, Any]]:
    """All units of the tenant in tree order (by materialised path)."""
    async with tenant_scope(ctx, write=False):
        rows = await OrgUnit.select().where(OrgUnit.tenant_id == ctx.tenant_id) \
            .order_by(OrgUnit.path).run()
    return [{**r, "id": str(r["id"]), "depth": r["path"].count("/") - 2,
             "parent_id": None if r["parent_id"] is None else str(r["parent_id"])} for r in rows]


async def unit_by_code(ctx: Context, code: str) -> dict[str, Any]:
    async with tenant_scope(ctx, write=False):
        rows = await OrgUnit.select().where(OrgUnit.tenant_id == ctx.tenant_id,
                                            OrgUnit.code == code).run()
    if not rows:
        raise NotFound("unknown_org_unit", unit=code)
    return rows[0]


async def create_org_unit(ctx: Context, code: str, name: str,
                          parent_code: str | None = None) -> dict[str, Any]:
    """A unit under `parent_code` (or a root); its path is the parent's path plus its id."""
    require(ctx, "admin.org_units")
    if not CODE_RE.fullmatch(code or ""):
        raise XindaiError("bad_code")
    if not 1 <= len(name or "") <= 100:
        raise XindaiError("bad_display_name")
    async with tenant_scope(ctx):
        if await OrgUnit.exists().where(OrgUnit.tenant_id == ctx.tenant_id,
                                        OrgUnit.code == code).run():
            raise Conflict("org_unit_exists", unit=code)
        parent = await unit_by_code(ctx, parent_code) if parent_code else None
        unit_id = uuid.uuid4()
        path = f"{parent['path'] if parent else '/'}{unit_id}/"
        await OrgUnit.insert(OrgUnit(id=unit_id, tenant_id=ctx.tenant_id, code=code, name=name,
                                     parent_id=parent["id"] if parent else None,
                                     path=path)).run()
        await audit.append(ctx, "org_unit.create", "org_unit", unit_id,
                           {"code": [None, code], "name": [None, name],
                            "parent": [None, parent_code]})
    return await unit_by_code(ctx, code)


def covers(ctx: Context, permissions: set[str] | list[str]) -> bool:
    """Does the actor hold every one of `permissions`? Nobody hands out more than they have."""
    from core.access import ALL

    if ALL in ctx.access.permissions:
        return True
    return ALL not in permissions and set(permissions) <= set(ctx.access.permissions)


async def role_permissions(ctx: Context, names: list[str]) -> set[str]:
    rows = {r["name"]: r for r in await list_roles(ctx)}
    bad = [n for n in names if n not in rows]
    if bad:
        raise NotFound("unknown_role", role=", ".join(bad))
    return {p for n in names for p in rows[n]["permissions"]}


async def check_may_grant(ctx: Context, roles: list[str]) -> None:
    """Refuse roles that would give a user more than the acting administrator holds."""
    if not covers(ctx, await role_permissions(ctx, roles)):
        raise Forbidden("grant_beyond_own")


async def _check_may_manage(ctx: Context, user_id: Any) -> dict[str, Any]:
    """The target user, if the actor may manage them: not themselves, not someone whose
    roles hold more than the actor."""
    from core.identity import get_user

    target = await get_user(ctx, user_id)
    if str(target["id"]) == str(ctx.user_id):
        raise Forbidden("self_change")
    if not covers(ctx, await role_permissions(ctx, list(target["roles"] or ()))):
        raise Forbidden("grant_beyond_own")
    return target


async def list_roles(ctx: Context) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        return await Role.select().where(Role.tenant_id == ctx.tenant_id) \
            .order_by(Role.name).output(load_json=True).run()


def _check_permissions(perms: list[str]) -> None:
    from core.kernel import kernel

    known = {p.code for p in kernel().permissions} | {"*"}
    unknown = [p for p in perms if p not in known]
    if unknown:
        raise XindaiError("unknown_permissions", permissions=", ".join(unknown))


async def save_role(ctx: Context, name: str, label_zh: str, label_en: str,
                    permissions: list[str], scope: str = "own") -> None:
    """Create or replace a role (its permissions and its object-rule scope)."""
    require(ctx, "admin.roles")
    if not CODE_RE.fullmatch(name or ""):
        raise XindaiError("bad_code")
    if scope not in SCOPES:
        raise XindaiError("bad_scope", scope=scope)
    _check_permissions(permissions)
    if not covers(ctx, permissions):
        raise Forbidden("grant_beyond_own")
    async with tenant_scope(ctx):
        exists = await Role.exists().where(Role.tenant_id == ctx.tenant_id,
                                           Role.name == name).run()
        values = {"label_zh": label_zh or name, "label_en": label_en or name,
                  "permissions": sorted(set(permissions)), "scope": scope}
        if exists and not covers(ctx, await role_permissions(ctx, [name])):
            raise Forbidden("grant_beyond_own")  # a role stronger than the actor stays as is
        before = (await Role.select().where(Role.tenant_id == ctx.tenant_id,
                                            Role.name == name).output(load_json=True).run()
                  or [{}])[0]
        if exists:
            await Role.update({getattr(Role, k): v for k, v in values.items()}).where(
                Role.tenant_id == ctx.tenant_id, Role.name == name).run()
        else:
            await Role.insert(Role(tenant_id=ctx.tenant_id, name=name, **values)).run()
        await audit.append(ctx, "role.save", "role", name,
                           {k: [before.get(k), v] for k, v in values.items()
                            if before.get(k) != v})


async def ensure_builtin_roles(ctx: Context, plugins: set[str] | None = None) -> None:
    """Create the built-in roles a tenant lacks, or add the grants of newly enabled
    `plugins` to the built-in roles it has (a role a pack redefined keeps its own list)."""
    from core.access import BUILTIN_ROLES
    from core.kernel import kernel

    existing = {r["name"]: r for r in await list_roles(ctx)}
    for name, zh, en, scope in BUILTIN_ROLES:
        grants = kernel().builtin_role_permissions(ctx.tenant, name, plugins)
        if name not in existing:
            await save_role(ctx, name, zh, en, sorted(grants), scope)
        elif plugins is not None and grants:
            role = existing[name]
            await save_role(ctx, name, role["label_zh"], role["label_en"],
                            sorted(set(role["permissions"]) | grants), role["scope"])


async def list_field_policies(ctx: Context) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        return await FieldPolicy.select(FieldPolicy.role, FieldPolicy.entity, FieldPolicy.field,
                                        FieldPolicy.policy) \
            .where(FieldPolicy.tenant_id == ctx.tenant_id) \
            .order_by(FieldPolicy.role).order_by(FieldPolicy.entity) \
            .order_by(FieldPolicy.field).run()


async def set_field_policy(ctx: Context, role: str, entity: str, field: str,
                           policy: str | None) -> None:
    """Set a role's policy for one field (None: back to the default from permissions)."""
    from core.records import entity_for

    require(ctx, "admin.roles")
    if policy is not None and policy not in POLICIES:
        raise XindaiError("bad_policy", policy=policy)
    current = await entity_for(ctx, entity)
    if current.field(field) is None:
        raise NotFound("unknown_field_of", field=field, entity=entity)
    async with tenant_scope(ctx):
        if not await Role.exists().where(Role.tenant_id == ctx.tenant_id,
                                         Role.name == role).run():
            raise NotFound("unknown_role", role=role)
        this = (FieldPolicy.tenant_id == ctx.tenant_id, FieldPolicy.role == role,
                FieldPolicy.entity == entity, FieldPolicy.field == field)
        before = await _locked(FieldPolicy.select(FieldPolicy.policy).where(*this)).run()
        await FieldPolicy.delete().where(*this).run()
        if policy is not None:
            await FieldPolicy.insert(FieldPolicy(tenant_id=ctx.tenant_id, role=role,
                                                 entity=entity, field=field,
                                                 policy=policy)).run()
        old = before[0]["policy"] if before else None  # None: the default from permissions
        await audit.append(ctx, "field_policy.set", "role", role,
                           {f"{entity}.{field}": [old, policy]})


async def list_users(ctx: Context) -> list[dict[str, Any]]:
    require(ctx, "admin.users")
    async with tenant_scope(ctx, write=False):
        rows = await User.select(User.id, User.username, User.display_name, User.roles,
                                 User.active, User.org_unit_id, User.email, User.totp_enabled,
                                 User.locked_until, User.created_at) \
            .where(User.tenant_id == ctx.tenant_id).order_by(User.username) \
            .output(load_json=True).run()
    return [{**r, "id": str(r["id"]),
             "org_unit_id": None if r["org_unit_id"] is None else str(r["org_unit_id"])}
            for r in rows]


async def update_user(ctx: Context, user_id: Any, roles: list[str] | None = None,
                      org_unit_code: str | None = None, display_name: str | None = None,
                      active: bool | None = None) -> None:
    """Change a user's roles, unit, name or status; disabling ends their sessions."""
    from core.identity import set_user_active

    require(ctx, "admin.users")
    await _check_may_manage(ctx, user_id)
    values: dict[Any, Any] = {}
    if roles is not None:
        await check_may_grant(ctx, roles)
        values[User.roles] = roles
    if org_unit_code is not None:
        values[User.org_unit_id] = (await unit_by_code(ctx, org_unit_code))["id"] \
            if org_unit_code else None
    if display_name is not None:
        if not 1 <= len(display_name) <= 100:
            raise XindaiError("bad_display_name")
        values[User.display_name] = display_name
    if values:
        async with tenant_scope(ctx):
            this = (User.tenant_id == ctx.tenant_id, User.id == user_id)
            before = await _locked(User.select(*values).where(*this)).output(
                load_json=True).run()
            if not before:
                raise NotFound()
            await User.update(values).where(*this).run()
            changes = {c._meta.name: [_audited(before[0][c._meta.name]), _audited(v)]
                       for c, v in values.items()}
            await audit.append(ctx, "user.update", "user", user_id,
                               {k: change for k, change in changes.items()
                                if change[0] != change[1]})
    if active is not None:
        was = await set_user_active(ctx, user_id, active)
        await audit.append(ctx, "user.enable" if active else "user.disable", "user", user_id,
                           {"active": [was, active]})


def _locked(query: Any) -> Any:
    """`query` locking the rows it reads until the transaction ends (PostgreSQL; SQLite's
    write transaction already excludes other writers), so the old value the audit entry
    records is the one the change replaced."""
    return query.lock_rows("UPDATE") if query.table._meta.db.engine_type == "postgres" \
        else query


def _audited(value: Any) -> Any:
    """A column value as a diff holds it: ids as text, lists (roles) as lists."""
    return str(value) if isinstance(value, uuid.UUID) else value
