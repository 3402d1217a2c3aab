"""Signing in and out, the second factor, the password, and the language switch.

- /login: tenant (机构), username, password -> core.identity.check_password_login. Every
  failure shows one message (wrong username or password / locked / too many attempts) so
  the page never tells whether a user exists. Rate limited per IP like the API.
- A user with TOTP gets a half-signed-in session and goes to /mfa; the code (or a recovery
  code) rotates the session into a full one (sessions.mark_mfa_passed).
- When the tenant requires TOTP for one of the user's roles and the user has none, every
  page sends them to /account/mfa until they enrol (see security.ui_guard).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import segno
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath
from litestar.response import Redirect

from core import identity
from core.errors import Forbidden, Unauthenticated, XindaiError
from core.i18n import t
from core.ratelimit import RateLimited, hit
from core.tenancy import Context
from core.web import sessions
from core.web.context import CurrentContext, client_ip, current_context, user_agent
from core.web.ui.i18n import LANG_COOKIE, gettext_for
from core.web.ui.render import (
    LOGIN_CSRF_COOKIE,
    YEAR,
    page_lang,
    render,
    request_user,
    safe_next,
)
from core.web.ui.security import new_login_csrf

LOGIN_LIMIT_PER_MINUTE = 20  # the API's limit (core.web.api), per IP
MFA_LIMIT_PER_MINUTE = 10
PASSWORD_LIMIT_PER_MINUTE = 10
TENANT_COOKIE = "xd_tenant"
MAX_PASSWORD_INPUT = 1024  # longer input is refused before hashing (argon2 costs time)
BASE32_RE = re.compile(r"[A-Z2-7]{16,64}")
UI = {"include_in_schema": False}


def _cookie(request: Request[Any, Any, Any], key: str, value: str, **extra: Any) -> Cookie:
    return Cookie(key=key, value=value, **{**sessions.cookie_kwargs(request), **extra})


async def _single_sign_on(slug: str) -> str:
    """The OIDC sign-in link of a tenant that configured its identity provider, else ""."""
    from core.tenancy import SLUG_RE, get_tenant

    if not SLUG_RE.match(slug):
        return ""
    try:
        tenant = await get_tenant(slug)
    except XindaiError:
        return ""
    if tenant.status != "active" or not tenant.settings.get("oidc"):
        return ""
    return f"/auth/oidc/{slug}/login"


async def _login_form(request: Request[Any, Any, Any], status: int = 200, error: str = "",
                      values: dict[str, str] | None = None) -> Response[Any]:
    token = new_login_csrf(request)
    values = values or {}
    tenant = (values.get("tenant") or request.query_params.get("tenant")
              or request.cookies.get(TENANT_COOKIE) or "")[:63]
    return render(request, "auth/login.html", status=status, error=error,
                  tenant=tenant, username=values.get("username", ""),
                  next=safe_next(request.query_params.get("next"), ""),
                  sso=await _single_sign_on(tenant) if tenant else "",
                  cookies=[_cookie(request, LOGIN_CSRF_COOKIE, token, samesite="strict")])


@get("/login", opt={"public": True}, **UI)
async def login_page(request: Request[Any, Any, Any]) -> Response[Any]:
    """The sign-in form; a signed-in user goes home, a half-signed-in one to /mfa."""
    try:
        await current_context(request)
        return Redirect(safe_next(request.query_params.get("next")), status_code=303)
    except Unauthenticated:
        pass
    if request.cookies.get(sessions.COOKIE):
        try:
            await sessions.context_from_session(request, need_mfa=False)
            return Redirect("/mfa", status_code=303)
        except Unauthenticated:
            pass
    return await _login_form(request)


@post("/login", opt={"public": True, "csrf": "login"}, status_code=303, **UI)
async def login_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    lang = page_lang(request)
    tenant = str(form.get("tenant") or "").strip()[:63]
    username = str(form.get("username") or "").strip()[:63]
    password = str(form.get("password") or "")
    values = {"tenant": tenant, "username": username}
    ip, ua = client_ip(request), user_agent(request)
    try:
        hit("login", ip or "-", LOGIN_LIMIT_PER_MINUTE)
    except RateLimited as exc:
        return await _login_form(request, 429, exc.message(lang), values)
    if not (tenant and username and password) or len(password) > MAX_PASSWORD_INPUT:
        return await _login_form(request, 401, t("bad_credentials", lang), values)
    try:
        info, user = await identity.check_password_login(tenant, username, password, ip, ua)
    except Unauthenticated as exc:
        return await _login_form(request, 401, exc.message(lang), values)
    ctx = await identity.user_context(info, user, lang, ip=ip, user_agent=ua)
    old = request.cookies.get(sessions.COOKIE)
    if old:
        await sessions.end_session(old)
    next_path = safe_next(str(form.get("next") or ""), "")
    if user["totp_enabled"]:
        token = await sessions.start_session(ctx, user, mfa_passed=False)
        target = "/mfa" + (f"?next={quote(next_path, safe='/')}" if next_path else "")
    else:
        token = await sessions.start_session(ctx, user, mfa_passed=True)
        await identity.record(ctx, "login_ok", user, channel="web")
        target = "/account/mfa" if identity.mfa_required(ctx) else (next_path or "/")
    response = Redirect(target, status_code=303)
    response.set_cookie(_cookie(request, sessions.COOKIE, token))
    response.set_cookie(_cookie(request, TENANT_COOKIE, info.slug, max_age=YEAR))
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


async def _half_signed_in(request: Request[Any, Any, Any]) -> Context:
    return await sessions.context_from_session(request, need_mfa=False)


@get("/mfa", opt={"public": True}, **UI)
async def mfa_page(request: Request[Any, Any, Any]) -> Response[Any]:
    """The second step of signing in: a code from the authenticator app."""
    try:
        await _half_signed_in(request)
    except Unauthenticated:
        return Redirect("/login", status_code=303)
    row = request.scope["state"]["xindai_session"]
    if row["mfa_passed"]:
        return Redirect("/", status_code=303)
    return render(request, "auth/mfa.html", error="",
                  next=safe_next(request.query_params.get("next"), ""))


@post("/mfa", opt={"public": True}, status_code=303, **UI)
async def mfa_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    lang = page_lang(request)
    ctx = await _half_signed_in(request)  # the guard has checked the session's CSRF token
    row = request.scope["state"]["xindai_session"]
    form = await request.form()
    next_path = safe_next(str(form.get("next") or ""), "/")
    if row["mfa_passed"]:
        return Redirect(next_path, status_code=303)
    code = str(form.get("code") or "").strip()[:64]
    try:
        hit("mfa", client_ip(request) or "-", MFA_LIMIT_PER_MINUTE)
    except RateLimited as exc:
        return render(request, "auth/mfa.html", status=429, error=exc.message(lang),
                      next=next_path)
    if not code or not await identity.verify_second_factor(ctx, code):
        return render(request, "auth/mfa.html", status=401, error=t("mfa_bad_code", lang),
                      next=next_path)
    user = await identity.get_user(ctx, ctx.user_id)
    token = await sessions.mark_mfa_passed(ctx.tenant, row, ctx, user)
    await identity.record(ctx, "login_ok", user, channel="web", mfa=True)
    response = Redirect(next_path, status_code=303)
    response.set_cookie(_cookie(request, sessions.COOKIE, token))
    return response


@post("/logout", opt={"public": True}, status_code=303, **UI)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    """End this browser's session (the guard checked its CSRF token first)."""
    token = request.cookies.get(sessions.COOKIE)
    if token:
        try:
            ctx = await _half_signed_in(request)
            await identity.record(ctx, "logout", None, username=ctx.username)
        except Unauthenticated:
            pass
        await sessions.end_session(token)
    response = Redirect("/login", status_code=303)
    response.delete_cookie(sessions.COOKIE)
    return response


@get("/lang/{code:str}", opt={"public": True}, **UI)
async def switch_language(request: Request[Any, Any, Any], code: FromPath[str]) -> Response[Any]:
    """Remember the chosen language (cookie `xd_lang`) and go back to the page."""
    from core.i18n import normalise_locale

    response = Redirect(safe_next(request.query_params.get("next")), status_code=303)
    response.set_cookie(_cookie(request, LANG_COOKIE, normalise_locale(code), max_age=YEAR))
    return response


# --- the signed-in user's own account ----------------------------------------------------

@get("/account/password", opt={"authenticated": True, "enrolment": True}, **UI)
async def password_page(request: Request[Any, Any, Any]) -> Response[Any]:
    return render(request, "auth/password.html", errors={}, general="",
                  changed=request.query_params.get("changed") == "1")


@post("/account/password", opt={"authenticated": True, "enrolment": True}, status_code=303,
      **UI)
async def password_submit(request: Request[Any, Any, Any], ctx: CurrentContext
                          ) -> Response[Any]:
    """Change the password; every session and token of the user ends, this browser gets a
    new session."""
    lang = ctx.locale
    _ = gettext_for(lang)
    form = await request.form()
    current = str(form.get("current") or "")
    new = str(form.get("new") or "")
    repeat = str(form.get("repeat") or "")
    errors: dict[str, str] = {}
    general = ""
    if not current:
        errors["current"] = _("Enter your current password.")
    if new != repeat:
        errors["repeat"] = _("The two new passwords are not the same.")
    if len(current) > MAX_PASSWORD_INPUT:
        errors["current"] = t("bad_current_password", lang)
    if not errors:
        try:
            hit("password", client_ip(request) or "-", PASSWORD_LIMIT_PER_MINUTE)
            identity.check_password_rules(new)
            await identity.change_password(ctx, current, new)
        except RateLimited as exc:
            general = exc.message(lang)
        except Forbidden as exc:
            errors["current"] = exc.message(lang)
        except XindaiError as exc:
            errors["new"] = exc.message(lang)
    if errors or general:
        return render(request, "auth/password.html", status=429 if general else 422,
                      errors=errors, general=general, changed=False)
    user = await identity.get_user(ctx, ctx.user_id)
    token = await sessions.start_session(ctx, user, mfa_passed=True)
    response = Redirect("/account/password?changed=1", status_code=303)
    response.set_cookie(_cookie(request, sessions.COOKIE, token))
    return response


def _qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code (made here, no image service)."""
    return segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#111827")


def _enrolment_page(request: Request[Any, Any, Any], ctx: Context, secret: str,
                    status: int = 200, error: str = "") -> Response[Any]:
    import pyotp

    user = request_user(request) or {}
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.get("username", ""),
                                             issuer_name=f"xindai {ctx.tenant.slug}")
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render(request, "auth/mfa_enrol.html", status=status, qr=_qr_svg(uri),
                  secret=secret, secret_grouped=grouped, error=error)


@get("/account/mfa", opt={"authenticated": True, "enrolment": True}, **UI)
async def mfa_settings(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    user = request_user(request) or {}
    return render(request, "auth/mfa_settings.html", enabled=bool(user.get("totp_enabled")),
                  required=identity.mfa_required(ctx))


@post("/account/mfa/start", opt={"authenticated": True, "enrolment": True}, status_code=200,
      **UI)
async def mfa_start(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    """A new TOTP secret (not active until a first code confirms it)."""
    if (request_user(request) or {}).get("totp_enabled"):
        return Redirect("/account/mfa", status_code=303)
    secret, _uri = await identity.start_totp_enrolment(ctx)
    return _enrolment_page(request, ctx, secret)


@post("/account/mfa/confirm", opt={"authenticated": True, "enrolment": True},
      status_code=200, **UI)
async def mfa_confirm(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    """Activate TOTP with a first code and show the ten recovery codes, once."""
    if (request_user(request) or {}).get("totp_enabled"):
        return Redirect("/account/mfa", status_code=303)
    form = await request.form()
    code = str(form.get("code") or "").strip()[:64]
    secret = str(form.get("secret") or "")
    try:
        codes = await identity.confirm_totp_enrolment(ctx, code)
    except XindaiError as exc:
        if not BASE32_RE.fullmatch(secret):
            return Redirect("/account/mfa", status_code=303)
        return _enrolment_page(request, ctx, secret, 422, exc.message(ctx.locale))
    return render(request, "auth/mfa_codes.html", codes=codes)
