"""The home page: a greeting and cards that depend on what the user may do."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from core import records
from core.admin import list_roles
from core.tables import AuthEvent
from core.tenancy import Context, tenant_scope
from core.web.context import CurrentContext
from core.web.ui.forms import display, is_masked
from core.web.ui.i18n import N_, gettext_for
from core.web.ui.render import local_time, render, request_user

EVENT_KINDS = {
    "login_ok": N_("Signed in"),
    "login_failed": N_("Sign-in failed"),
    "login_locked": N_("Sign-in refused: account locked"),
    "account_locked": N_("Account locked after failed sign-ins"),
    "logout": N_("Signed out"),
    "password_changed": N_("Password changed"),
    "password_change_failed": N_("Password change failed"),
    "mfa_enrolled": N_("Two-factor authentication set up"),
    "mfa_failed": N_("Wrong two-factor code"),
    "mfa_recovery_code_used": N_("Recovery code used"),
    "token_created": N_("Integration token created"),
    "token_revoked": N_("Integration token revoked"),
    "reveal": N_("Masked value revealed"),
}


async def entity_cards(ctx: Context, lang: str) -> list[dict[str, Any]]:
    """For each entity the user may read: how many records they can see, the 5 newest."""
    from core.kernel import kernel

    cards = []
    for entity in kernel().registry.entities.values():
        if not ctx.tenant.enabled(entity.plugin) or not ctx.access.can(f"{entity.name}.read"):
            continue
        current = await records.entity_for(ctx, entity.name)
        result = await records.list_records(ctx, entity.name, per_page=5)
        title = current.field(current.title_field)
        recent = []
        for item in result.items:
            text = ""
            if title is not None and title.key in item:
                text = display(title, item[title.key], lang, ctx.tenant.timezone,
                               is_masked(ctx, current, title))
            recent.append({"id": item["id"], "title": text or item["id"][:8],
                           "created": local_time(item["created_at"], ctx.tenant.timezone)})
        cards.append({"name": entity.name, "label": current.label(lang), "total": result.total,
                      "recent": recent, "can_create": ctx.access.can(f"{entity.name}.create")})
    return cards


async def recent_events(ctx: Context, lang: str, limit: int = 10) -> list[dict[str, Any]]:
    _ = gettext_for(lang)
    async with tenant_scope(ctx, write=False):
        rows = await AuthEvent.select(AuthEvent.created_at, AuthEvent.username, AuthEvent.kind,
                                      AuthEvent.ip) \
            .where(AuthEvent.tenant_id == ctx.tenant_id) \
            .order_by(AuthEvent.created_at, ascending=False).limit(limit).run()
    out = []
    for r in rows:
        label = EVENT_KINDS.get(r["kind"])
        out.append({"when": local_time(r["created_at"], ctx.tenant.timezone),
                    "username": r["username"], "kind": _(label) if label else r["kind"],
                    "failed": "fail" in r["kind"] or "lock" in r["kind"],
                    "ip": r["ip"] or ""})
    return out


@get("/", opt={"authenticated": True}, include_in_schema=False)
async def home(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    lang = ctx.locale
    user = request_user(request) or {}
    admin = [(path, label) for key, label, path, perm in (
        ("users", N_("Manage users"), "/admin/users", "admin.users"),
        ("roles", N_("Roles and field policies"), "/admin/roles", "admin.roles"),
        ("units", N_("Organisation units"), "/admin/org-units", "admin.org_units"),
        ("jobs", N_("Background jobs"), "/admin/jobs", "jobs.manage"),
        ("webhooks", N_("Webhooks"), "/admin/webhooks", "webhooks.manage"),
    ) if ctx.access.can(perm)]
    _ = gettext_for(lang)
    return render(
        request, "home.html",
        cards=await entity_cards(ctx, lang),
        events=await recent_events(ctx, lang) if ctx.access.can("auth.events") else None,
        admin_links=[(path, _(label)) for path, label in admin],
        roles=[r["label_en"] if lang == "en" else r["label_zh"]
               for r in await list_roles(ctx) if r["name"] in ctx.roles],
        mfa_on=bool(user.get("totp_enabled")),
    )
