"""OIDC sign-in against a bank's own identity provider, configured per tenant.

The tenant setting `oidc` holds the relying-party configuration::

    {"issuer": "https://idp.bank.example/realms/staff",
     "client_id": "xindai",
     "client_secret_env": "XINDAI_OIDC_SECRET_BANK",   # the NAME of an environment variable
     "username_claim": "preferred_username",           # default
     "scopes": "openid profile email",                  # default
     "mfa_trusted": true,                               # default
     "redirect_uri": "https://xindai.bank.example/auth/oidc/callback",  # optional
     "token_auth_method": "client_secret_post"}         # optional; default from discovery

The secret itself never sits in tenant settings (they are readable by tenant admins and
travel in packs and backups); only the name of the variable the process reads it from.

The flow is the authorization-code flow with PKCE (S256), `state` and `nonce`:

1. `begin_login` discovers the provider (`<issuer>/.well-known/openid-configuration`,
   cached) and builds the authorization URL; the caller keeps the returned `Pending`
   (state, nonce, PKCE verifier, tenant, redirect URI) somewhere the browser cannot forge
   (core.web.oidc seals it into a short-lived AES-GCM cookie).
2. `finish_login` checks the returned `state`, exchanges the code at the token endpoint
   (client_secret_basic, or client_secret_post when that is all the provider offers),
   validates the ID token (signature against the provider's JWKS, `iss`, `aud`, `azp`,
   `exp`, `iat`, `nonce`, `at_hash`) and finds the user.

User matching: first by `User.oidc_subject == sub`; else by `username == <username claim>`
among users not yet bound to a subject, and the subject is then stored on the user, so a
later rename at the provider does not lose the account and another provider account with
the same username cannot take it over (the binding is recorded as `oidc_linked`; an
administrator clears `oidc_subject` to re-link a user). There is **no auto-provisioning**: an unknown user
is refused and recorded (`login_failed`, reason `oidc_unknown_user`). A bank decides who
may use the lending system and with which role and branch; creating users from whoever
the provider vouches for would bypass that decision (docs/operator-guide.md, "OIDC
sign-in").

MFA: the bank's IdP enforces its own second factor, so by default (`mfa_trusted: true`)
an OIDC sign-in counts as MFA passed. With `mfa_trusted: false` the session starts with
`mfa_passed = False`, and a user with TOTP enabled must still pass xindai's TOTP step.
The password lockout does not apply to OIDC sign-in (the password is not involved);
a disabled user (`active = false`) or an inactive tenant is refused.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
import structlog
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from core.access import SYSTEM
from core.errors import XindaiError
from core.identity import record, user_context
from core.tables import User
from core.tenancy import Context, TenantInfo, get_tenant, get_tenant_by_id, tenant_scope

log = structlog.get_logger("xindai.oidc")

DISCOVERY_TTL_S = 3600
JWKS_TTL_S = 3600
HTTP_TIMEOUT_S = 10.0
CLOCK_LEEWAY_S = 60
PENDING_TTL_S = 600  # a sign-in must come back from the provider within ten minutes
DEFAULT_SCOPES = "openid profile email"
DEFAULT_USERNAME_CLAIM = "preferred_username"
# Asymmetric signatures only: "none" and the HMAC family (keyed with the client secret) are
# never accepted for ID tokens.
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                       "ES256", "ES384", "ES512", "EdDSA")

# Messages of this module, by code: rendered in the request's language by core.web.oidc.
MESSAGES: dict[str, dict[str, str]] = {
    "oidc_not_configured": {
        "zh-CN": "该机构未启用统一身份认证（OIDC）登录。",
        "en": "Single sign-on (OIDC) is not enabled for this organisation.",
    },
    "oidc_misconfigured": {
        "zh-CN": "该机构的统一身份认证（OIDC）配置不完整，请联系系统管理员。",
        "en": "Single sign-on (OIDC) is not set up correctly for this organisation; "
              "please contact your administrator.",
    },
    "oidc_state": {
        "zh-CN": "登录请求无效或已过期，请重新登录。",
        "en": "The sign-in request is invalid or has expired; please sign in again.",
    },
    "oidc_provider_error": {
        "zh-CN": "身份认证服务拒绝了本次登录，请重新登录或联系系统管理员。",
        "en": "The identity provider refused the sign-in; please try again or contact "
              "your administrator.",
    },
    "oidc_provider_unreachable": {
        "zh-CN": "暂时无法连接身份认证服务，请稍后再试。",
        "en": "The identity provider cannot be reached at the moment; please try again later.",
    },
    "oidc_token_invalid": {
        "zh-CN": "身份认证服务返回的凭证无效，登录已被拒绝。",
        "en": "The identity provider's token is not valid; the sign-in was refused.",
    },
    "oidc_unknown_user": {
        "zh-CN": "您的账号尚未在本系统开通，请联系系统管理员。",
        "en": "Your account has not been set up in this system; please contact your "
              "administrator.",
    },
    "oidc_user_inactive": {
        "zh-CN": "该账号已停用或所属机构已停用，无法登录。",
        "en": "This account or its organisation is disabled; you cannot sign in.",
    },
}


class OidcError(XindaiError):
    """An OIDC sign-in that cannot go on; `code` is a key of MESSAGES."""

    def __init__(self, code: str, status: int = 400, **params: Any) -> None:
        Exception.__init__(self, MESSAGES.get(code, {}).get("en", code))
        self.code = code
        self.status = status
        self.params = params

    def message(self, locale: str | None = None) -> str:
        texts = MESSAGES.get(self.code, {})
        return texts.get("en" if (locale or "").startswith("en") else "zh-CN", self.code)


@dataclass(frozen=True)
class OidcConfig:
    """One tenant's relying-party configuration (tenant setting `oidc`)."""

    issuer: str
    client_id: str
    client_secret_env: str
    username_claim: str = DEFAULT_USERNAME_CLAIM
    scopes: str = DEFAULT_SCOPES
    mfa_trusted: bool = True
    redirect_uri: str | None = None
    token_auth_method: str | None = None  # client_secret_basic | client_secret_post

    def client_secret(self) -> str:
        secret = os.environ.get(self.client_secret_env) if self.client_secret_env else None
        if not secret:
            log.error("oidc_secret_missing", env=self.client_secret_env)
            raise OidcError("oidc_misconfigured")
        return secret


def config_of(tenant: TenantInfo) -> OidcConfig:
    """The tenant's OIDC configuration; `oidc_not_configured` when it has none."""
    raw = tenant.settings.get("oidc")
    if not isinstance(raw, dict) or not raw.get("issuer") or not raw.get("client_id"):
        raise OidcError("oidc_not_configured")
    scopes = str(raw.get("scopes") or DEFAULT_SCOPES)
    if "openid" not in scopes.split():
        scopes = f"openid {scopes}"
    mfa_trusted = raw.get("mfa_trusted", True)
    return OidcConfig(
        issuer=str(raw["issuer"]), client_id=str(raw["client_id"]),
        client_secret_env=str(raw.get("client_secret_env") or ""),
        username_claim=str(raw.get("username_claim") or DEFAULT_USERNAME_CLAIM),
        scopes=scopes, mfa_trusted=mfa_trusted is not False,
        redirect_uri=raw.get("redirect_uri") or None,
        token_auth_method=raw.get("token_auth_method") or None,
    )


# --- talking to the provider -----------------------------------------------------------

_discovery: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks: dict[str, tuple[float, KeySet]] = {}


def forget_cached_providers() -> None:
    _discovery.clear()
    _jwks.clear()


def _http() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, follow_redirects=False,
                             headers={"Accept": "application/json"})


async def _get_json(url: str) -> dict[str, Any]:
    try:
        async with _http() as http:
            r = await http.get(url)
        r.raise_for_status()
        body = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("oidc_provider_unreachable", url=url, error=str(exc))
        raise OidcError("oidc_provider_unreachable", 502) from None
    if not isinstance(body, dict):
        raise OidcError("oidc_provider_unreachable", 502)
    return body


async def discover(issuer: str) -> dict[str, Any]:
    """The provider's metadata (cached for an hour); its `issuer` must match exactly."""
    cached = _discovery.get(issuer)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    doc = await _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    if doc.get("issuer") != issuer or not all(isinstance(doc.get(k), str) for k in needed):
        log.error("oidc_discovery_mismatch", issuer=issuer, found=doc.get("issuer"))
        raise OidcError("oidc_misconfigured")
    _discovery[issuer] = (time.monotonic() + DISCOVERY_TTL_S, doc)
    return doc


async def provider_keys(jwks_uri: str, refresh: bool = False) -> KeySet:
    """The provider's signing keys (cached; `refresh` after a key rotation)."""
    cached = _jwks.get(jwks_uri)
    if cached and cached[0] > time.monotonic() and not refresh:
        return cached[1]
    body = await _get_json(jwks_uri)
    try:
        keys = KeySet.import_key_set(body)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        log.warning("oidc_bad_jwks", url=jwks_uri, error=str(exc))
        raise OidcError("oidc_provider_unreachable", 502) from None
    _jwks[jwks_uri] = (time.monotonic() + JWKS_TTL_S, keys)
    return keys


# --- step 1: to the provider -----------------------------------------------------------

@dataclass(frozen=True)
class Pending:
    """What the browser carries (sealed) between the two legs of one sign-in."""

    tenant_id: str
    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    expires: int

    def as_dict(self) -> dict[str, Any]:
        return {"t": self.tenant_id, "s": self.state, "n": self.nonce, "v": self.verifier,
                "r": self.redirect_uri, "e": self.expires}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Pending:
        return cls(tenant_id=str(d["t"]), state=str(d["s"]), nonce=str(d["n"]),
                   verifier=str(d["v"]), redirect_uri=str(d["r"]), expires=int(d["e"]))


async def begin_login(tenant_slug: str, redirect_uri: str) -> tuple[str, Pending]:
    """The provider's authorization URL and the pending sign-in to keep for the callback.

    An unknown tenant answers like a tenant without OIDC, so slugs cannot be probed.
    """
    try:
        tenant = await get_tenant(tenant_slug)
    except XindaiError:
        raise OidcError("oidc_not_configured") from None
    if tenant.status != "active":
        raise OidcError("oidc_not_configured")
    cfg = config_of(tenant)
    cfg.client_secret()  # a missing secret is reported now, not after the provider round trip
    meta = await discover(cfg.issuer)
    redirect_uri = cfg.redirect_uri or redirect_uri
    pending = Pending(
        tenant_id=str(tenant.id), state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24), verifier=secrets.token_urlsafe(48),
        redirect_uri=redirect_uri, expires=int(time.time()) + PENDING_TTL_S,
    )
    params = {
        "response_type": "code", "client_id": cfg.client_id, "redirect_uri": redirect_uri,
        "scope": cfg.scopes, "state": pending.state, "nonce": pending.nonce,
        "code_challenge": create_s256_code_challenge(pending.verifier),
        "code_challenge_method": "S256",
    }
    endpoint = meta["authorization_endpoint"]
    url = endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)
    return url, pending


# --- step 2: back from the provider ----------------------------------------------------

@dataclass(frozen=True)
class SignedIn:
    ctx: Context
    user: dict[str, Any]
    mfa_passed: bool


async def finish_login(pending: Pending, query: dict[str, str], locale: str,
                       ip: str | None = None, user_agent: str | None = None) -> SignedIn:
    """Check the provider's answer, exchange the code, validate the ID token, find the user.

    Every refusal after the tenant is known is recorded as `login_failed` with a reason.
    """
    if pending.expires < time.time():
        raise OidcError("oidc_state")
    try:
        tenant = await get_tenant_by_id(uuid.UUID(pending.tenant_id))
    except (XindaiError, ValueError):
        raise OidcError("oidc_state") from None
    probe = Context(tenant=tenant, access=SYSTEM, username="oidc", ip=ip,
                    user_agent=user_agent)

    async def refuse(code: str, status: int, reason: str, username: str | None = None,
                     user: dict[str, Any] | None = None, **detail: Any) -> OidcError:
        await record(probe, "login_failed", user, username=username or "oidc",
                     reason=reason, channel="oidc", **detail)
        return OidcError(code, status)

    returned = str(query.get("state") or "").encode()
    if not secrets.compare_digest(returned, pending.state.encode()):
        raise await refuse("oidc_state", 400, "oidc_state_mismatch")
    if tenant.status != "active":
        raise await refuse("oidc_user_inactive", 401, "tenant_inactive")
    cfg = config_of(tenant)
    if query.get("error"):
        raise await refuse("oidc_provider_error", 401, "oidc_provider_error",
                           error=str(query["error"])[:100],
                           description=str(query.get("error_description") or "")[:200])
    code = query.get("code")
    if not code:
        raise await refuse("oidc_provider_error", 401, "oidc_no_code")

    try:
        meta = await discover(cfg.issuer)
        tokens = await _exchange_code(cfg, meta, code, pending)
        claims = await _validate_id_token(cfg, meta, tokens, pending.nonce)
    except OidcError as exc:  # reasons: oidc_provider_error / _unreachable / _token_invalid ...
        raise await refuse(exc.code, exc.status, exc.code) from None

    user = await _match_user(probe, cfg, claims)
    if user is None:
        raise await refuse("oidc_unknown_user", 401, "oidc_unknown_user",
                           username=_claimed_username(cfg, claims) or str(claims["sub"]),
                           sub=str(claims["sub"])[:255])
    if not user["active"]:
        raise await refuse("oidc_user_inactive", 401, "unknown_or_inactive", user=user)
    ctx = await user_context(tenant, user, locale, ip=ip, user_agent=user_agent)
    await record(ctx, "login_ok", user, channel="oidc", mfa_trusted=cfg.mfa_trusted)
    return SignedIn(ctx=ctx, user=user, mfa_passed=cfg.mfa_trusted)


async def _exchange_code(cfg: OidcConfig, meta: dict[str, Any], code: str,
                         pending: Pending) -> dict[str, Any]:
    secret = cfg.client_secret()
    data = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": pending.redirect_uri, "code_verifier": pending.verifier}
    methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    method = cfg.token_auth_method or (
        "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post")
    auth: httpx.BasicAuth | None = None
    if method == "client_secret_basic":
        # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        auth = httpx.BasicAuth(quote_plus(cfg.client_id), quote_plus(secret))
    else:
        data.update(client_id=cfg.client_id, client_secret=secret)
    try:
        async with _http() as http:
            r = await http.post(meta["token_endpoint"], data=data, auth=auth)
        body = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("oidc_token_endpoint_failed", error=str(exc))
        raise OidcError("oidc_provider_unreachable", 502) from None
    if r.status_code != 200 or not isinstance(body, dict) or "error" in body:
        log.warning("oidc_token_refused", status=r.status_code,
                    error=body.get("error") if isinstance(body, dict) else None)
        raise OidcError("oidc_provider_error", 401)
    if not isinstance(body.get("id_token"), str):
        raise OidcError("oidc_token_invalid", 401)
    return body


async def _validate_id_token(cfg: OidcConfig, meta: dict[str, Any], tokens: dict[str, Any],
                             nonce: str) -> dict[str, Any]:
    """The ID token's claims, after checking signature, iss, aud/azp, exp, iat, nonce."""
    offered = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [a for a in ID_TOKEN_ALGORITHMS if a in offered] or ["RS256"]
    keys = await provider_keys(meta["jwks_uri"])
    try:
        try:
            token = jwt.decode(tokens["id_token"], keys, algorithms=algorithms)
        except JoseError:
            # The provider may have rotated its keys since we cached them: fetch once more.
            keys = await provider_keys(meta["jwks_uri"], refresh=True)
            token = jwt.decode(tokens["id_token"], keys, algorithms=algorithms)
        claims = CodeIDToken(
            token.claims, token.header,
            options={"iss": {"essential": True, "value": cfg.issuer},
                     "aud": {"essential": True, "value": cfg.client_id},
                     "sub": {"essential": True},
                     "exp": {"essential": True},
                     "iat": {"essential": True},
                     "nonce": {"essential": True, "value": nonce}},
            params={"nonce": nonce, "client_id": cfg.client_id,
                    "access_token": tokens.get("access_token")},
        )
        claims.validate(now=int(time.time()), leeway=CLOCK_LEEWAY_S)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        log.warning("oidc_id_token_invalid", issuer=cfg.issuer,
                    error=f"{type(exc).__name__}: {exc}")
        raise OidcError("oidc_token_invalid", 401) from None
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise OidcError("oidc_token_invalid", 401)
    return dict(claims)


def _claimed_username(cfg: OidcConfig, claims: dict[str, Any]) -> str | None:
    value = claims.get(cfg.username_claim)
    if not isinstance(value, str) or not value:
        return None
    if cfg.username_claim == "email" and claims.get("email_verified") is False:
        return None  # an unverified address names nobody
    return value


async def _match_user(probe: Context, cfg: OidcConfig,
                      claims: dict[str, Any]) -> dict[str, Any] | None:
    """By subject first; else by username among users not yet bound, then bind the subject."""
    sub = str(claims["sub"])
    tenant_id = probe.tenant_id
    async with tenant_scope(probe, write=False):
        rows = await User.select().where(User.tenant_id == tenant_id,
                                         User.oidc_subject == sub) \
            .output(load_json=True).run()
    if rows:
        return rows[0]
    username = _claimed_username(cfg, claims)
    if username is None or len(sub) > 255:
        return None
    async with tenant_scope(probe):
        bound = await User.update({User.oidc_subject: sub}).where(
            User.tenant_id == tenant_id, User.username == username,
            User.oidc_subject.is_null(),
        ).returning(User.id).run()
        if not bound:
            return None
        rows = await User.select().where(User.tenant_id == tenant_id,
                                         User.id == bound[0]["id"]) \
            .output(load_json=True).run()
    if not rows:
        return None
    await record(probe, "oidc_linked", rows[0], sub=sub[:255])
    return rows[0]
