"""Users, passwords (argon2id) and bearer tokens: the minimum the kernel's API needs.

The identity issue adds sessions, TOTP, OIDC, lockout and the web login on top of this.
A token looks like `xd_<tenant id hex>_<secret>`: the tenant id in clear lets the server
enter that tenant's RLS scope before looking up the token's SHA-256 digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import Conflict, Unauthenticated, XindaiError
from core.tables import ApiToken, User
from core.tenancy import Context, TenantInfo, get_tenant, get_tenant_by_id, tenant_scope

# argon2id, m = 19 MiB, t = 2, p = 1 (OWASP minimum); about 18 ms a hash on this hardware.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY = _hasher.hash("xindai-timing-equaliser")
TOKEN_PREFIX = "xd_"


def hash_password(password: str) -> str:
    if not 8 <= len(password) <= 128:
        raise XindaiError("password_length")
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def _verify(stored: str, password: str) -> bool:
    return await asyncio.to_thread(verify_password, stored, password)


def generate_password() -> str:
    """A readable random password for demo and first-admin accounts."""
    return secrets.token_urlsafe(12)


USERNAME_RE = re.compile(r"[A-Za-z0-9_.@-]{2,63}")


async def create_user(
    ctx: Context, username: str, display_name: str, password: str, roles: list[str]
) -> uuid.UUID:
    if not USERNAME_RE.fullmatch(username):
        raise XindaiError("bad_username")
    if not 1 <= len(display_name) <= 100:
        raise XindaiError("bad_display_name")
    password_hash = await asyncio.to_thread(hash_password, password)
    async with tenant_scope(ctx):
        if await User.exists().where(User.tenant_id == ctx.tenant_id,
                                     User.username == username).run():
            raise Conflict("user_exists", username=username)
        user = User(tenant_id=ctx.tenant_id, username=username, display_name=display_name,
                    password_hash=password_hash, roles=roles)
        await user.save().run()
        return user.id


async def login(tenant_slug: str, username: str, password: str, locale: str,
                ttl: timedelta = timedelta(hours=12)) -> tuple[str, Context]:
    """Check a password and issue a bearer token; the same error for every kind of failure."""
    try:
        tenant = await get_tenant(tenant_slug)
    except XindaiError:
        await _verify(_DUMMY, password)  # same cost as a real check
        raise Unauthenticated("bad_credentials") from None
    ctx = Context(tenant=tenant, locale=locale)
    async with tenant_scope(ctx, write=False):
        rows = await User.select().where(
            User.tenant_id == tenant.id, User.username == username, User.active.eq(True)
        ).output(load_json=True).run()
    user = rows[0] if rows and tenant.status == "active" else None
    # argon2 (~18 ms) runs in a thread and outside any transaction: it must not stall the
    # event loop nor hold SQLite's write lock
    if not await _verify(user["password_hash"] if user else _DUMMY, password) or user is None:
        raise Unauthenticated("bad_credentials")
    async with tenant_scope(ctx):
        secret = secrets.token_urlsafe(32)
        token = f"{TOKEN_PREFIX}{tenant.id.hex}_{secret}"
        await ApiToken.insert(ApiToken(
            tenant_id=tenant.id, user_id=user["id"], digest=_digest(token), name="login",
            expires_at=datetime.now(UTC) + ttl,
        )).run()
    return token, _user_context(tenant, user, locale)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user_context(tenant: TenantInfo, user: dict, locale: str) -> Context:
    return Context(tenant=tenant, user_id=str(user["id"]), username=user["username"],
                   roles=tuple(user["roles"] or ()), locale=locale)


async def authenticate(token: str, locale: str) -> Context:
    """The context of a valid, unexpired, unrevoked token of an active user and tenant."""
    if not token.startswith(TOKEN_PREFIX) or token.count("_") < 2:
        raise Unauthenticated()
    tenant_hex = token[len(TOKEN_PREFIX):].split("_", 1)[0]
    try:
        tenant = await get_tenant_by_id(uuid.UUID(hex=tenant_hex))
    except (ValueError, XindaiError):
        raise Unauthenticated() from None
    if tenant.status != "active":
        raise Unauthenticated()
    ctx = Context(tenant=tenant, locale=locale)
    async with tenant_scope(ctx, write=False):
        rows = await ApiToken.select().where(
            ApiToken.tenant_id == tenant.id, ApiToken.digest == _digest(token),
            ApiToken.revoked_at.is_null(), ApiToken.expires_at > datetime.now(UTC),
        ).run()
        if not rows:
            raise Unauthenticated()
        users = await User.select().where(
            User.tenant_id == tenant.id, User.id == rows[0]["user_id"], User.active.eq(True)
        ).output(load_json=True).run()
        if not users:
            raise Unauthenticated()
    return _user_context(tenant, users[0], locale)
