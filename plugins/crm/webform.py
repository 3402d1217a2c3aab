"""The public lead form of a tenant (no sign-in): GET/POST /f/{tenant slug}/lead, and
/f/{slug}/lead/thanks. Off unless the tenant's setting `crm.webform_enabled` is on.

Anti-spam, cheapest check first (every refusal writes nothing; each is audited as
`webform.refused` with its reason and the client's address):
- the kernel's rate limiter, per IP (WEBFORM_PER_MINUTE submissions a minute: 429);
- a honeypot field (`website`) that people never see and bots fill in;
- a signed timestamp token: `<unix time>.<nonce>.<HMAC>` keyed with the tenant's
  blind-index key (purpose "webform"). A submission sooner than MIN_SECONDS after the form
  was served, later than MAX_SECONDS, with a bad signature, or replaying a token already
  used (its nonce is remembered in the rate limiter's store, Redis when configured) is
  refused with a fresh form;
- the double-submit CSRF cookie the sign-in form uses (opt csrf "login").
Then the capture rules of every lead (core.records' before_create): a blacklisted party
is refused with a neutral message (and audited); a duplicate is captured and flagged for
the officers; malformed mobile or ID numbers are shown next to their field.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import replace
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from core import audit
from core.errors import NotFound, ValidationFailed, XindaiError
from core.ratelimit import RateLimited, hit
from core.regions import PROVINCES, SHANXI
from core.tenancy import SLUG_RE, Context, TenantInfo, get_tenant, tenant_scope
from core.web.context import client_ip, user_agent
from core.web.ui.render import LOGIN_CSRF_COOKIE, page_lang, render
from core.web.ui.security import new_login_csrf
from plugins.crm.blacklist import Blacklisted

PUBLIC = {"public": True}
UI = {"include_in_schema": False}
MIN_SECONDS = 3
MAX_SECONDS = 4 * 3600
WEBFORM_PER_MINUTE = 10
FIELDS = ("name", "mobile", "resident_id", "region", "product_interest")
HONEYPOT = "website"


async def _tenant(slug: str) -> TenantInfo:
    """The tenant whose form this is; 404 when unknown, inactive, without crm or with the
    form switched off."""
    from core.kernel import kernel

    if not SLUG_RE.match(slug):
        raise NotFound()
    try:
        tenant = await get_tenant(slug)
    except XindaiError:
        raise NotFound() from None
    if tenant.status != "active" or not tenant.enabled("crm") or \
            not kernel().setting(tenant, "crm.webform_enabled"):
        raise NotFound()
    return tenant


def _ctx(request: Request[Any, Any, Any], tenant: TenantInfo) -> Context:
    """The form acts as the system for its tenant, named `webform`, with the client's IP."""
    return replace(Context.system(tenant, page_lang(request)), username="webform",
                   roles=("webform",), ip=client_ip(request), user_agent=user_agent(request),
                   request_id=request.scope.get("state", {}).get("request_id"))


async def _mac(tenant: TenantInfo, text: str) -> str:
    from core.crypto import tenant_keys
    from core.kernel import kernel

    keys = await tenant_keys(kernel().master_key, tenant.id)
    return keys.blind_index("webform", "token", text)


async def new_token(tenant: TenantInfo, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    body = f"{issued}.{secrets.token_urlsafe(12)}"
    return f"{body}.{await _mac(tenant, body)}"


async def token_problem(tenant: TenantInfo, token: str, now: float | None = None) -> str | None:
    """None when the token is good (and now used), else why it is refused."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or not parts[0].isdigit():
        return "bad_token"
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(parts[2], await _mac(tenant, body)):
        return "bad_token"
    age = (now if now is not None else time.time()) - int(parts[0])
    if age < MIN_SECONDS:
        return "too_fast"
    if age > MAX_SECONDS:
        return "expired"
    try:
        hit("webform_token", f"{tenant.id}:{parts[1]}", 1, window_s=MAX_SECONDS + 60)
    except RateLimited:
        return "replay"
    return None


def _regions(lang: str) -> list[tuple[str, str]]:
    cities = [(code, name) for code, name in SHANXI.items()
              if code.endswith("00") and not code.endswith("0000")]
    return cities + [(code + "0000", name) for code, name in PROVINCES.items() if code != "14"]


async def _form(request: Request[Any, Any, Any], tenant: TenantInfo, status: int = 200,
                values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                notice: str = "") -> Response[Any]:
    lang = page_lang(request)
    csrf = new_login_csrf(request)  # the sign-in form's double-submit cookie
    from litestar.datastructures import Cookie

    from core.web.sessions import cookie_kwargs

    return render(request, "crm/webform.html", status=status, tenant_name=tenant.name,
                  slug=tenant.slug, values=values or {}, errors=errors or {}, notice=notice,
                  token=await new_token(tenant), regions=_regions(lang),
                  channel=(values or {}).get("channel")
                  or str(request.query_params.get("ch") or "")[:60],
                  cookies=[Cookie(key=LOGIN_CSRF_COOKIE, value=csrf, samesite="strict",
                                  **{k: v for k, v in cookie_kwargs(request).items()
                                     if k != "samesite"})])


@get("/f/{slug:str}/lead", opt=PUBLIC, **UI)
async def form_page(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    return await _form(request, await _tenant(slug))


async def _refused(request: Request[Any, Any, Any], tenant: TenantInfo, reason: str,
                   values: dict[str, str]) -> Response[Any]:
    ctx = _ctx(request, tenant)
    async with tenant_scope(ctx):
        await audit.append(ctx, "webform.refused", "lead", None, {"reason": reason})
    return await _form(request, tenant, 400, values, notice="refused")


@post("/f/{slug:str}/lead", opt={**PUBLIC, "csrf": "login"}, **UI)
async def form_submit(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    from plugins.crm.leads import capture

    tenant = await _tenant(slug)
    lang = page_lang(request)
    form = await request.form()
    values = {k: str(form.get(k) or "").strip()[:200] for k in (*FIELDS, "channel")}
    try:
        hit("webform", client_ip(request) or "-", WEBFORM_PER_MINUTE)
    except RateLimited as exc:
        return await _form(request, tenant, 429, values, notice=exc.message(lang))
    if str(form.get(HONEYPOT) or ""):
        return await _refused(request, tenant, "honeypot", values)
    problem = await token_problem(tenant, str(form.get("token") or ""))
    if problem:
        return await _refused(request, tenant, problem, values)
    data: dict[str, Any] = {"kind": "individual", "source": "web_form"}
    data.update({k: v for k, v in values.items() if v})
    if not values["name"]:
        data["name"] = ""
    ctx = _ctx(request, tenant)
    try:
        await capture(ctx, data, on_duplicate="flag")
    except ValidationFailed as exc:
        errors = {e.field: e.message(lang) for e in exc.errors}
        return await _form(request, tenant, 422, values, errors)
    except Blacklisted:
        return await _form(request, tenant, 422, values, notice="blacklisted")
    return Redirect(f"/f/{tenant.slug}/lead/thanks", status_code=303)


@get("/f/{slug:str}/lead/thanks", opt=PUBLIC, **UI)
async def thanks(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    tenant = await _tenant(slug)
    return render(request, "crm/webform_thanks.html", tenant_name=tenant.name, slug=tenant.slug)


WEBFORM_PAGES = [form_page, form_submit, thanks]
