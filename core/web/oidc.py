"""OIDC sign-in routes: `/auth/oidc/<tenant>/login` and `/auth/oidc/callback`.

The pending sign-in (tenant, state, nonce, PKCE verifier, redirect URI, expiry) travels in
a short-lived cookie `xd_oidc`, sealed with AES-256-GCM under a key derived from the
master key through HKDF: the browser can neither read the verifier nor forge or alter any
of it. The cookie is HttpOnly, SameSite=Lax (the provider sends the browser back with a
top-level GET, which Lax allows), Secure over TLS, limited to `/auth/oidc` and ten minutes,
and deleted by the callback whatever its outcome.

Refusals answer 400 (bad or expired request, tenant without OIDC), 401 (the provider or
the ID token refused, unknown or disabled user) or 502 (provider unreachable), with a
message in the caller's language: an HTML page for browsers, problem details otherwise.
"""

from __future__ import annotations

import base64
import html
import json
import os
from functools import lru_cache
from typing import Any

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from litestar import Request, Response, Router, get
from litestar.params import FromPath
from litestar.response import Redirect

from core.oidc import PENDING_TTL_S, OidcError, Pending, begin_login, finish_login
from core.ratelimit import hit
from core.web import sessions
from core.web.context import access_guard, client_ip, request_locale, user_agent

log = structlog.get_logger("xindai.oidc")

STATE_COOKIE = "xd_oidc"
COOKIE_PATH = "/auth/oidc"
CALLBACK_PATH = "/auth/oidc/callback"
OIDC_LIMIT_PER_MINUTE = 60  # per IP; one sign-in makes two requests
_AAD = b"xindai|oidc-pending|v1"


# --- the sealed cookie --------------------------------------------------------------------

@lru_cache(maxsize=4)
def _cookie_cipher(master_key: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"xindai|oidc-pending-cookie").derive(master_key)
    return AESGCM(key)


def _cipher() -> AESGCM:
    from core.kernel import kernel

    return _cookie_cipher(kernel().master_key)


def seal(pending: Pending) -> str:
    nonce = os.urandom(12)
    data = json.dumps(pending.as_dict(), separators=(",", ":")).encode()
    sealed = nonce + _cipher().encrypt(nonce, data, _AAD)
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def unseal(value: str) -> Pending | None:
    """The pending sign-in in the cookie, or None when it is forged, altered or garbage."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        if len(raw) < 12 + 16:
            return None
        data = _cipher().decrypt(raw[:12], raw[12:], _AAD)
        return Pending.from_dict(json.loads(data))
    except (InvalidTag, ValueError, TypeError, KeyError):
        return None


# --- answers ------------------------------------------------------------------------------

def _wants_html(request: Request[Any, Any, Any]) -> bool:
    return "text/html" in (request.headers.get("accept") or "")


def refusal(request: Request[Any, Any, Any], exc: OidcError) -> Response[Any]:
    """A clear message in the caller's language; the pending-sign-in cookie is dropped."""
    locale = request_locale(request)
    message = exc.message(locale)
    response: Response[Any]
    if _wants_html(request):
        lang = "en" if locale.startswith("en") else "zh-CN"
        again = "Back to sign-in" if lang == "en" else "返回登录"
        page = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{html.escape(message)}</title></head><body>"
                f"<p>{html.escape(message)}</p><p><a href=\"/\">{again}</a></p></body></html>")
        response = Response(page, status_code=exc.status, media_type="text/html")
    else:
        body = {"type": f"https://xindai.invalid/problems/{exc.code}", "title": message,
                "status": exc.status, "code": exc.code}
        response = Response(body, status_code=exc.status,
                            media_type="application/problem+json")
    response.delete_cookie(STATE_COOKIE, path=COOKIE_PATH)
    return response


def _redirect_uri(request: Request[Any, Any, Any]) -> str:
    """This app's callback URL as the browser sees it (a TLS proxy sets X-Forwarded-Proto);
    the tenant setting `oidc.redirect_uri` overrides it."""
    scheme = "https" if request.headers.get("x-forwarded-proto") == "https" \
        else request.url.scheme
    host = request.headers.get("host") or request.url.netloc
    return f"{scheme}://{host}{CALLBACK_PATH}"


# --- routes -------------------------------------------------------------------------------

@get("/auth/oidc/{slug:str}/login", summary="Sign in through the tenant's OIDC provider",
     tags=["auth"], opt={"public": True}, status_code=302)
async def oidc_login(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    hit("oidc", client_ip(request) or "-", OIDC_LIMIT_PER_MINUTE)
    try:
        url, pending = await begin_login(slug, _redirect_uri(request))
    except OidcError as exc:
        return refusal(request, exc)
    response = Redirect(url, status_code=302)
    kwargs = {**sessions.cookie_kwargs(request), "path": COOKIE_PATH}
    response.set_cookie(STATE_COOKIE, seal(pending), max_age=PENDING_TTL_S, **kwargs)
    response.headers["Cache-Control"] = "no-store"
    return response


@get(CALLBACK_PATH, summary="Return from the OIDC provider", tags=["auth"],
     opt={"public": True}, status_code=302)
async def oidc_callback(request: Request[Any, Any, Any]) -> Response[Any]:
    hit("oidc", client_ip(request) or "-", OIDC_LIMIT_PER_MINUTE)
    raw = request.cookies.get(STATE_COOKIE)
    pending = unseal(raw) if raw else None
    if pending is None:
        log.warning("oidc_bad_state_cookie", ip=client_ip(request), present=bool(raw))
        return refusal(request, OidcError("oidc_state"))
    query = {key: str(request.query_params.get(key)) for key in request.query_params}
    try:
        done = await finish_login(pending, query, request_locale(request),
                                  client_ip(request), user_agent(request))
    except OidcError as exc:
        return refusal(request, exc)
    old = request.cookies.get(sessions.COOKIE)
    if old:
        await sessions.end_session(old)  # a new sign-in replaces the browser's session
    token = await sessions.start_session(done.ctx, done.user, mfa_passed=done.mfa_passed)
    response = Redirect("/", status_code=302)
    response.set_cookie(sessions.COOKIE, token, **sessions.cookie_kwargs(request))
    response.delete_cookie(STATE_COOKIE, path=COOKIE_PATH)
    response.headers["Cache-Control"] = "no-store"
    return response


oidc_router = Router(path="/", route_handlers=[oidc_login, oidc_callback],
                     guards=[access_guard])
"""Mounted by core.web.app.create_app."""
