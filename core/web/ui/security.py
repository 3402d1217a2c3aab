"""The web shell's guards and error pages: sign-in, CSRF, forced MFA enrolment, headers.

Every UI handler declares `opt` like the API's: `public`, `authenticated` or a
`permission`; `core.web.context.access_guard` refuses a handler that declares none.
`ui_guard` runs after it and adds what only browsers need:

- the page language, and the signed-in user's row for the layout;
- MFA enrolment: when the tenant requires TOTP for one of the user's roles and the user has
  not enrolled, every page but the enrolment page (opt `enrolment`) sends them there;
- CSRF on every POST/PUT/PATCH/DELETE: the session's own secret, echoed in the `_csrf`
  form field or the `X-CSRF-Token` header (htmx); the login form, which has no session yet,
  uses a double-submit cookie (opt `csrf: "login"`). A missing or wrong token answers 403
  before the handler runs, so nothing is written. File uploads (opt `csrf: "stream"`) are
  the one exception: their body is read as a stream by the handler, which checks the
  `_csrf` field before storing any byte of the file (core.web.uploads); a header token is
  still checked here.

The API under /api/v1 takes bearer tokens only and has no CSRF check (a browser never sends
a bearer token on its own).
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import structlog
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import Forbidden, Unauthenticated, XindaiError
from core.web.ui.i18n import N_, gettext_for
from core.web.ui.render import CTX_KEY, LOGIN_CSRF_COOKIE, USER_KEY, page_lang, render

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"


class CsrfRefused(Forbidden):
    code = "csrf_failed"


class EnrolmentRequired(XindaiError):
    status = 303
    code = "mfa_enrolment_required"


async def ui_guard(connection: ASGIConnection[Any, Any, Any, Any],
                   handler: BaseRouteHandler) -> None:
    """Runs after access_guard on every UI route (see the module docstring)."""
    from core.identity import get_user, mfa_required

    opt = handler.opt
    state = connection.scope.setdefault("state", {})
    ctx = state.get(CTX_KEY)
    if ctx is not None:
        from core.web.ui.i18n import ui_locale

        ctx = replace(ctx, locale=ui_locale(connection, ctx.tenant.locale))
        state[CTX_KEY] = ctx
        user = await get_user(ctx, ctx.user_id)
        state[USER_KEY] = {"id": str(user["id"]), "username": user["username"],
                           "display_name": user["display_name"],
                           "totp_enabled": user["totp_enabled"]}
        if mfa_required(ctx) and not user["totp_enabled"] and not opt.get("enrolment"):
            raise EnrolmentRequired()
    if connection.scope["method"] in UNSAFE:
        await check_csrf(connection, opt)


async def check_csrf(connection: ASGIConnection[Any, Any, Any, Any], opt: dict[str, Any]
                     ) -> None:
    from core.web.sessions import context_from_session, csrf_of

    sent = connection.headers.get(CSRF_HEADER)
    if not sent and opt.get("csrf") == "stream":
        return  # checked by the handler as the multipart body streams in, before storing
    if not sent and isinstance(connection, Request):
        sent = (await connection.form()).get(CSRF_FIELD)
    if opt.get("csrf") == "login":
        expected = connection.cookies.get(LOGIN_CSRF_COOKIE)
    else:
        expected = csrf_of(connection)
        if expected is None:  # a public handler of a (half) signed-in session: /mfa, /logout
            await context_from_session(connection, need_mfa=False)  # Unauthenticated: login
            expected = csrf_of(connection)
    if not expected or not isinstance(sent, str) or not secrets.compare_digest(
        sent.encode(), expected.encode()
    ):
        structlog.get_logger("xindai.auth").warning(
            "csrf_refused", path=connection.url.path,
            ip=connection.client.host if connection.client else None)
        raise CsrfRefused()


def new_login_csrf(request: Request[Any, Any, Any]) -> str:
    """The double-submit token of the sign-in form (kept in the request for the template)."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    request.scope.setdefault("state", {})["xindai_login_csrf"] = token
    return token


# --- error pages -------------------------------------------------------------------------

MESSAGES = {
    "csrf_failed": N_("This form has expired or did not come from this site (security check "
                      "failed). Nothing was saved. Reload the page and try again."),
    "not_found": N_("This page or record does not exist, or you may not see it."),
    "forbidden": N_("You are not allowed to do this."),
    "internal": N_("Something went wrong on our side. It has been logged; please try "
                   "again later."),
}


def message(lang: str, key: str) -> str:
    """One of MESSAGES in `lang`."""
    text = MESSAGES[key]
    return gettext_for(lang)(text)


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def login_redirect(request: Request[Any, Any, Any]) -> Response[Any]:
    from core.web.ui.render import current_url

    target = "/login"
    if request.method == "GET" and request.url.path not in ("/", "/login"):
        target += "?next=" + quote(current_url(request, drop=()), safe="")
    if _is_htmx(request):
        return Response(b"", status_code=401, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def error_page(request: Request[Any, Any, Any], status: int, message: str,
               title: str | None = None) -> Response[Any]:
    _ = gettext_for(page_lang(request))
    titles = {403: _("Not allowed"), 404: _("Not found"), 409: _("Conflict"),
              429: _("Too many requests")}
    name = "error_fragment.html" if _is_htmx(request) else "error.html"
    return render(request, name, status=status, message=message,
                  title=title or titles.get(status, _("Error")), status_code=status)


def ui_xindai_error(request: Request[Any, Any, Any], exc: XindaiError) -> Response[Any]:
    lang = page_lang(request)
    _ = gettext_for(lang)
    if isinstance(exc, Unauthenticated):
        return login_redirect(request)
    if isinstance(exc, EnrolmentRequired):
        if _is_htmx(request):
            return Response(b"", status_code=403, headers={"HX-Redirect": "/account/mfa"})
        return Redirect("/account/mfa", status_code=303)
    if isinstance(exc, CsrfRefused):
        return error_page(request, 403, message(lang, "csrf_failed"),
                          _("Security check failed"))
    if exc.code == "not_found":
        return error_page(request, 404, message(lang, "not_found"))
    return error_page(request, exc.status, exc.message(lang))


def ui_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, NotFoundException):
        return error_page(request, 404, message(page_lang(request), "not_found"))
    from core.i18n import t

    if isinstance(exc, ValidationException):
        return error_page(request, 400, t("bad_request", page_lang(request)))
    if exc.status_code < 500:  # 405, 413 ...: Litestar's details are English-only
        return error_page(request, exc.status_code, t("bad_request", page_lang(request)))
    return error_page(request, exc.status_code, message(page_lang(request), "internal"))


def ui_internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    from asyncpg.exceptions import DataError

    if isinstance(exc, DataError):  # a value the database refused (e.g. too long)
        from core.i18n import t

        return error_page(request, 422, t("bad_value", page_lang(request)))
    structlog.get_logger().exception("unhandled error", path=request.url.path)
    return error_page(request, 500, message(page_lang(request), "internal"))


UI_EXCEPTION_HANDLERS: dict[Any, Any] = {
    XindaiError: ui_xindai_error,
    HTTPException: ui_http_error,
    Exception: ui_internal_error,
}


# --- security headers --------------------------------------------------------------------

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "object-src 'none'")


class SecurityHeaders:
    """Headers on every response; HTML pages also get a strict Content-Security-Policy (no
    inline script, no third-party origin) and `Cache-Control: no-store` (they show personal
    data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                names = {k.lower() for k, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"same-origin"),
                         (b"x-frame-options", b"DENY")]
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if ctype.startswith(b"text/html"):
                    extra.append((b"content-security-policy", CSP.encode()))
                    extra.append((b"cache-control", b"no-store"))
                    extra.append((b"vary", b"HX-Request, Cookie"))
                headers.extend((k, v) for k, v in extra if k not in names)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, add)
