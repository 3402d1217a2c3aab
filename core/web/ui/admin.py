"""Administration pages: users, roles, field policies, organisation units.

Each page names its permission (admin.users, admin.roles, admin.org_units) for the route
guard, and the changes go through core.admin (which checks the permission again) and
core.identity.create_user, so the pages, the API and packs share one set of rules.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from core import admin, identity
from core.access import POLICIES, SCOPES, combine, field_policy
from core.errors import NotFound, XindaiError
from core.tenancy import Context
from core.web.context import CurrentContext
from core.web.ui.i18n import N_, gettext_for
from core.web.ui.render import render

UI = {"include_in_schema": False}
USERS = {"permission": "admin.users"}
ROLES = {"permission": "admin.roles"}
UNITS = {"permission": "admin.org_units"}

SCOPE_LABELS = {
    "own": N_("Own records (assigned to the user)"),
    "branch": N_("The user's branch and the units below it"),
    "all": N_("All records of the company"),
}
POLICY_LABELS = {
    "hidden": N_("Hidden"),
    "masked": N_("Masked"),
    "read": N_("Read"),
    "write": N_("Write"),
}
USER_ERROR_FIELDS = {
    "bad_username": "username", "user_exists": "username",
    "bad_display_name": "display_name",
    "password_length": "password", "password_common": "password",
    "unknown_role": "roles", "unknown_org_unit": "unit",
}
ROLE_ERROR_FIELDS = {"bad_code": "name", "bad_scope": "scope",
                     "unknown_permissions": "permissions"}
UNIT_ERROR_FIELDS = {"bad_code": "code", "org_unit_exists": "code",
                     "bad_display_name": "name", "unknown_org_unit": "parent"}


def _role_label(role: dict[str, Any], lang: str) -> str:
    return role["label_en"] if lang == "en" else role["label_zh"]


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound() from None


def _field_error(exc: XindaiError, mapping: dict[str, str], lang: str
                 ) -> tuple[dict[str, str], str]:
    key = mapping.get(exc.code)
    return ({key: exc.message(lang)}, "") if key else ({}, exc.message(lang))


class SelfDisable(XindaiError):
    """An administrator tried to disable their own account (they would lock themselves out)."""

    status = 409

    def __init__(self, text: str) -> None:
        super().__init__("conflict")
        self.text = text

    def message(self, locale: str | None = None) -> str:
        return self.text


# --- users -------------------------------------------------------------------------------

async def _user_choices(ctx: Context) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    roles = [{"name": r["name"], "label": _role_label(r, ctx.locale)}
             for r in await admin.list_roles(ctx)]
    units = await admin.list_org_units(ctx)
    return roles, units


@get("/admin/users", opt=USERS, **UI)
async def users_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    from core.identity import now

    roles, units = await _user_choices(ctx)
    role_names = {r["name"]: r["label"] for r in roles}
    unit_names = {u["id"]: u["name"] for u in units}
    users = [{**u, "role_labels": [role_names.get(r, r) for r in u["roles"] or ()],
              "unit": unit_names.get(u["org_unit_id"] or "", ""),
              "locked": bool(u["locked_until"] and u["locked_until"] > now())}
             for u in await admin.list_users(ctx)]
    return render(request, "admin/users.html", users=users)


def _user_form(request: Request[Any, Any, Any], *, roles: list[dict[str, Any]],
               units: list[dict[str, Any]], values: dict[str, Any], errors: dict[str, str],
               general: str = "", target: dict[str, Any] | None = None,
               status: int = 200) -> Response[Any]:
    return render(request, "admin/user_form.html", status=status, roles=roles, units=units,
                  values=values, errors=errors, general=general, target=target)


@get("/admin/users/new", opt=USERS, **UI)
async def user_new(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    roles, units = await _user_choices(ctx)
    return _user_form(request, roles=roles, units=units, errors={},
                      values={"username": "", "display_name": "", "email": "", "roles": [],
                              "unit": ""})


@post("/admin/users/new", opt=USERS, status_code=303, **UI)
async def user_create(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    lang = ctx.locale
    _ = gettext_for(lang)
    roles, units = await _user_choices(ctx)
    form = await request.form()
    values = {"username": str(form.get("username") or "").strip()[:200],
              "display_name": str(form.get("display_name") or "").strip()[:200],
              "email": str(form.get("email") or "").strip()[:254],
              "roles": [r for r in form.getall("roles", []) if isinstance(r, str)],
              "unit": str(form.get("unit") or "")}
    password = str(form.get("password") or "")
    errors: dict[str, str] = {}
    general = ""
    known = {r["name"] for r in roles}
    if not values["roles"]:
        errors["roles"] = _("Choose at least one role.")
    elif set(values["roles"]) - known:
        errors["roles"] = _("Unknown role.")
    unit = next((u for u in units if u["code"] == values["unit"]), None)
    if values["unit"] and unit is None:
        errors["unit"] = _("Unknown organisation unit.")
    if len(password) > 128:
        errors["password"] = _("A password has 8 to 128 characters.")
    if not errors:
        try:
            await identity.create_user(ctx, values["username"], values["display_name"],
                                       password, values["roles"],
                                       uuid.UUID(unit["id"]) if unit else None,
                                       values["email"] or None)
        except XindaiError as exc:
            errors, general = _field_error(exc, USER_ERROR_FIELDS, lang)
    if errors or general:
        return _user_form(request, roles=roles, units=units, values=values, errors=errors,
                          general=general, status=422)
    return Redirect("/admin/users", status_code=303)


async def _target_user(ctx: Context, user_id: str) -> dict[str, Any]:
    wanted = str(_uuid(user_id))
    for u in await admin.list_users(ctx):
        if u["id"] == wanted:
            return u
    raise NotFound()


@get("/admin/users/{user_id:str}", opt=USERS, **UI)
async def user_edit(request: Request[Any, Any, Any], ctx: CurrentContext, user_id: FromPath[str]
                    ) -> Response[Any]:
    target = await _target_user(ctx, user_id)
    roles, units = await _user_choices(ctx)
    unit = next((u["code"] for u in units if u["id"] == target["org_unit_id"]), "")
    return _user_form(request, roles=roles, units=units, errors={}, target=target,
                      values={"username": target["username"],
                              "display_name": target["display_name"],
                              "email": target["email"] or "", "roles": target["roles"] or [],
                              "unit": unit})


@post("/admin/users/{user_id:str}", opt=USERS, status_code=303, **UI)
async def user_update(request: Request[Any, Any, Any], ctx: CurrentContext, user_id: FromPath[str]
                      ) -> Response[Any]:
    lang = ctx.locale
    _ = gettext_for(lang)
    target = await _target_user(ctx, user_id)
    roles, units = await _user_choices(ctx)
    form = await request.form()
    values = {"username": target["username"], "email": target["email"] or "",
              "display_name": str(form.get("display_name") or "").strip()[:200],
              "roles": [r for r in form.getall("roles", []) if isinstance(r, str)],
              "unit": str(form.get("unit") or "")}
    errors: dict[str, str] = {}
    general = ""
    if not values["roles"]:
        errors["roles"] = _("Choose at least one role.")
    if not errors:
        try:
            await admin.update_user(ctx, target["id"], roles=values["roles"],
                                    org_unit_code=values["unit"],
                                    display_name=values["display_name"])
        except XindaiError as exc:
            errors, general = _field_error(exc, USER_ERROR_FIELDS, lang)
    if errors or general:
        return _user_form(request, roles=roles, units=units, values=values, errors=errors,
                          general=general, target=target, status=422)
    return Redirect("/admin/users", status_code=303)


@post("/admin/users/{user_id:str}/active", opt=USERS, status_code=303, **UI)
async def user_active(request: Request[Any, Any, Any], ctx: CurrentContext, user_id: FromPath[str]
                      ) -> Response[Any]:
    """Disable (ends every session and token of the user) or enable an account."""
    target = await _target_user(ctx, user_id)
    active = (await request.form()).get("active") == "true"
    if not active and target["id"] == ctx.user_id:
        _ = gettext_for(ctx.locale)
        raise SelfDisable(_("You cannot disable your own account."))
    await admin.update_user(ctx, target["id"], active=active)
    return Redirect("/admin/users", status_code=303)


@post("/admin/users/{user_id:str}/reset-mfa", opt=USERS, status_code=303, **UI)
async def user_reset_mfa(request: Request[Any, Any, Any], ctx: CurrentContext,
                         user_id: FromPath[str]) -> Response[Any]:
    """Clear a user's second factor (lost phone); they enrol again at the next sign-in."""
    target = await _target_user(ctx, user_id)
    await identity.reset_totp(ctx, target["id"])
    return Redirect("/admin/users", status_code=303)


# --- roles -------------------------------------------------------------------------------

KERNEL_GROUPS = {
    "admin": N_("Administration"),
    "auth": N_("Sign-in and access"),
    "tokens": N_("Integration tokens"),
    "platform": N_("Platform operation"),
    "webhooks": N_("Webhooks"),
    "jobs": N_("Background jobs"),
}


def _permission_groups(lang: str) -> list[dict[str, Any]]:
    """The permissions of the kernel and the loaded plugins, grouped by their prefix (an
    entity's name gives its label from the registry)."""
    from core.kernel import kernel

    _ = gettext_for(lang)
    groups: dict[str, list[dict[str, str]]] = {}
    for p in kernel().permissions:
        groups.setdefault(p.code.split(".", 1)[0], []).append(
            {"code": p.code, "label": p.label_en if lang == "en" else p.label_zh})
    out = []
    for name, perms in groups.items():
        entity = kernel().registry.get(name)
        known = KERNEL_GROUPS.get(name)
        label = entity.label(lang) if entity else _(known) if known else name
        out.append({"name": name, "label": label, "permissions": perms})
    return out


@get("/admin/roles", opt=ROLES, **UI)
async def roles_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    _ = gettext_for(ctx.locale)
    rows = [{**r, "label": _role_label(r, ctx.locale), "scope_label": _(SCOPE_LABELS.get(
        r["scope"], r["scope"])), "count": len(r["permissions"] or ()),
        "all": "*" in (r["permissions"] or ())} for r in await admin.list_roles(ctx)]
    return render(request, "admin/roles.html", roles=rows)


def _role_form(request: Request[Any, Any, Any], ctx: Context, values: dict[str, Any],
               errors: dict[str, str], general: str = "", is_new: bool = False,
               status: int = 200) -> Response[Any]:
    _ = gettext_for(ctx.locale)
    return render(request, "admin/role_form.html", status=status, values=values,
                  errors=errors, general=general, is_new=is_new,
                  groups=_permission_groups(ctx.locale),
                  scopes=[(s, _(SCOPE_LABELS[s])) for s in SCOPES])


@get("/admin/roles/new", opt=ROLES, **UI)
async def role_new(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    return _role_form(request, ctx, {"name": "", "label_zh": "", "label_en": "",
                                     "permissions": [], "scope": "own"}, {}, is_new=True)


@get("/admin/roles/{role_name:str}/edit", opt=ROLES, **UI)
async def role_edit(request: Request[Any, Any, Any], ctx: CurrentContext, role_name: FromPath[str]
                    ) -> Response[Any]:
    role = next((r for r in await admin.list_roles(ctx) if r["name"] == role_name), None)
    if role is None:
        raise NotFound()
    return _role_form(request, ctx, {**role, "permissions": role["permissions"] or []}, {})


@post("/admin/roles/new", opt=ROLES, status_code=303, **UI)
async def role_create(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    return await _save_role(request, ctx, None)


@post("/admin/roles/{role_name:str}/edit", opt=ROLES, status_code=303, **UI)
async def role_save(request: Request[Any, Any, Any], ctx: CurrentContext, role_name: FromPath[str]
                    ) -> Response[Any]:
    return await _save_role(request, ctx, role_name)


async def _save_role(request: Request[Any, Any, Any], ctx: Context, role_name: str | None
                     ) -> Response[Any]:
    """Create a role (`role_name` None) or change a role's labels, permissions and scope."""
    form = await request.form()
    is_new = role_name is None
    existing = {r["name"] for r in await admin.list_roles(ctx)}
    name = str(form.get("name") or "").strip()[:63] if role_name is None else role_name
    if not is_new and name not in existing:
        raise NotFound()
    values = {"name": name, "label_zh": str(form.get("label_zh") or "").strip()[:100],
              "label_en": str(form.get("label_en") or "").strip()[:100],
              "permissions": [p for p in form.getall("permissions", []) if isinstance(p, str)],
              "scope": str(form.get("scope") or "own")}
    errors: dict[str, str] = {}
    general = ""
    if is_new and name in existing:
        _ = gettext_for(ctx.locale)
        errors["name"] = _("A role with this name already exists.")
    else:
        try:
            await admin.save_role(ctx, name, values["label_zh"], values["label_en"],
                                  values["permissions"], values["scope"])
        except XindaiError as exc:
            errors, general = _field_error(exc, ROLE_ERROR_FIELDS, ctx.locale)
    if errors or general:
        return _role_form(request, ctx, values, errors, general, is_new, 422)
    return Redirect("/admin/roles", status_code=303)


# --- field policies ----------------------------------------------------------------------

async def _entities(ctx: Context) -> list[tuple[str, str]]:
    from core.kernel import kernel

    return [(e.name, e.label(ctx.locale)) for e in kernel().registry.entities.values()
            if ctx.tenant.enabled(e.plugin)]


@get("/admin/field-policies", opt=ROLES, **UI)
async def policies_page(request: Request[Any, Any, Any], ctx: CurrentContext
                        ) -> Response[Any]:
    return await _policies(request, ctx, request.query_params.get("entity"),
                           saved=request.query_params.get("saved") == "1")


async def _policies(request: Request[Any, Any, Any], ctx: Context, wanted: str | None,
                    status: int = 200, general: str = "", saved: bool = False
                    ) -> Response[Any]:
    from core.records import entity_for

    _ = gettext_for(ctx.locale)
    entities = await _entities(ctx)
    if not entities:
        raise NotFound()
    name = wanted if wanted in {e for e, _label in entities} else entities[0][0]
    entity = await entity_for(ctx, name)
    roles = await admin.list_roles(ctx)
    explicit = {(p["role"], p["field"]): p["policy"]
                for p in await admin.list_field_policies(ctx) if p["entity"] == name}
    rows = []
    for f in entity.fields:
        cells = []
        for role in roles:
            # What the role gets without an explicit policy, from the same rule the read
            # and write paths use (core.access.field_policy).
            probe = replace(ctx, access=combine([role], [], None, None))  # the role's default
            default = field_policy(probe, entity, f)
            cells.append({"name": f"p:{role['name']}:{f.key}",
                          "value": explicit.get((role["name"], f.key), ""),
                          "default": _(POLICY_LABELS[default])})
        rows.append({"key": f.key, "label": f.label(ctx.locale), "custom": f.custom,
                     "secret": f.is_secret, "cells": cells})
    return render(request, "admin/field_policies.html", status=status, entities=entities,
                  entity=name, roles=[{"name": r["name"], "label": _role_label(r, ctx.locale)}
                                      for r in roles],
                  rows=rows, policies=[(p, _(POLICY_LABELS[p])) for p in POLICIES],
                  general=general, saved=saved)


@post("/admin/field-policies", opt=ROLES, status_code=303, **UI)
async def policies_save(request: Request[Any, Any, Any], ctx: CurrentContext
                        ) -> Response[Any]:
    from core.records import entity_for

    form = await request.form()
    name = str(form.get("entity") or "")
    if name not in {e for e, _label in await _entities(ctx)}:
        raise NotFound()
    entity = await entity_for(ctx, name)
    roles = [r["name"] for r in await admin.list_roles(ctx)]
    explicit = {(p["role"], p["field"]): p["policy"]
                for p in await admin.list_field_policies(ctx) if p["entity"] == name}
    try:
        for role in roles:
            for f in entity.fields:
                key = f"p:{role}:{f.key}"
                if key not in form:
                    continue
                wanted = str(form.get(key) or "")
                if wanted != explicit.get((role, f.key), ""):
                    await admin.set_field_policy(ctx, role, name, f.key, wanted or None)
    except XindaiError as exc:
        return await _policies(request, ctx, name, 422, exc.message(ctx.locale))
    return Redirect(f"/admin/field-policies?entity={name}&saved=1", status_code=303)


# --- organisation units ------------------------------------------------------------------

async def _units_page(request: Request[Any, Any, Any], ctx: Context, values: dict[str, str],
                      errors: dict[str, str], general: str = "", status: int = 200
                      ) -> Response[Any]:
    from core.tables import User
    from core.tenancy import tenant_scope

    units = await admin.list_org_units(ctx)
    async with tenant_scope(ctx, write=False):
        rows = await User.select(User.org_unit_id).where(User.tenant_id == ctx.tenant_id).run()
    counts: dict[str, int] = {}
    for r in rows:
        if r["org_unit_id"]:
            counts[str(r["org_unit_id"])] = counts.get(str(r["org_unit_id"]), 0) + 1
    by_id = {u["id"]: u for u in units}
    tree = [{**u, "users": counts.get(u["id"], 0),
             "parent": by_id[u["parent_id"]]["name"] if u["parent_id"] in by_id else ""}
            for u in units]
    return render(request, "admin/org_units.html", status=status, units=tree, values=values,
                  errors=errors, general=general)


@get("/admin/org-units", opt=UNITS, **UI)
async def units_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    parent = request.query_params.get("parent") or ""
    return await _units_page(request, ctx, {"code": "", "name": "", "parent": parent}, {})


@post("/admin/org-units", opt=UNITS, status_code=303, **UI)
async def unit_create(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    form = await request.form()
    values = {"code": str(form.get("code") or "").strip()[:40],
              "name": str(form.get("name") or "").strip()[:200],
              "parent": str(form.get("parent") or "")}
    try:
        await admin.create_org_unit(ctx, values["code"], values["name"],
                                    values["parent"] or None)
    except XindaiError as exc:
        errors, general = _field_error(exc, UNIT_ERROR_FIELDS, ctx.locale)
        return await _units_page(request, ctx, values, errors, general, exc.status
                                 if exc.status != 400 else 422)
    return Redirect("/admin/org-units", status_code=303)


ADMIN_HANDLERS = [
    users_page, user_new, user_create, user_edit, user_update, user_active, user_reset_mfa,
    roles_page, role_new, role_create, role_edit, role_save,
    policies_page, policies_save,
    units_page, unit_create,
]
