"""Who a user is: passwords, lockout, TOTP, bearer tokens, and the Context a user acts in.

- Passwords: argon2id (m=19 MiB, t=2, p=1), 8-128 characters, no composition rules,
  refused when among the 30,000 most common passwords (zxcvbn's list). Hashing runs in a
  thread, never on the event loop nor inside a write transaction.
- Lockout: after `MAX_FAILURES` failures in a row a user is locked for `LOCK_MINUTES`;
  every failure is recorded as an auth event.
- TOTP (pyotp): the secret is sealed with the tenant's data key; a code is accepted once
  (its time step must be later than the last one used); ten single-use recovery codes.
- Bearer tokens `xd_<tenant id hex>_<secret>`: the tenant id in clear lets the server enter
  the tenant's RLS scope before it looks up the token's SHA-256 digest. Integration tokens
  carry scopes that narrow the user's permissions.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.access import combine
from core.errors import Conflict, Forbidden, NotFound, Unauthenticated, XindaiError
from core.tables import ApiToken, AuthEvent, FieldPolicy, OrgUnit, Role, User, WebSession
from core.tenancy import Context, TenantInfo, get_tenant, get_tenant_by_id, tenant_scope

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY = _hasher.hash("xindai-timing-equaliser")
TOKEN_PREFIX = "xd_"
USERNAME_RE = re.compile(r"[A-Za-z0-9_.@-]{2,63}")
MAX_FAILURES = 5
LOCK_MINUTES = 15
LOGIN_TOKEN_TTL = timedelta(hours=12)
MAX_TOKEN_DAYS = 365
RECOVERY_CODES = 10


def now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The most common passwords long enough to pass the length rule, lower-cased."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"] if len(p) >= 8)


def check_password_rules(password: str) -> None:
    if not 8 <= len(password) <= 128:
        raise XindaiError("password_length")
    if password.lower() in common_passwords():
        raise XindaiError("password_common")


def hash_password(password: str) -> str:
    check_password_rules(password)
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


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- users -------------------------------------------------------------------------------

async def create_user(
    ctx: Context, username: str, display_name: str, password: str, roles: list[str],
    org_unit_id: uuid.UUID | None = None, email: str | None = None,
) -> uuid.UUID:
    if not USERNAME_RE.fullmatch(username):
        raise XindaiError("bad_username")
    if not 1 <= len(display_name) <= 100:
        raise XindaiError("bad_display_name")
    from core.admin import check_may_grant

    await check_may_grant(ctx, roles)
    password_hash = await asyncio.to_thread(hash_password, password)
    async with tenant_scope(ctx):
        if await User.exists().where(User.tenant_id == ctx.tenant_id,
                                     User.username == username).run():
            raise Conflict("user_exists", username=username)
        user = User(tenant_id=ctx.tenant_id, username=username, display_name=display_name,
                    password_hash=password_hash, roles=roles, org_unit_id=org_unit_id,
                    email=email)
        await user.save().run()
        from core import audit

        await audit.append(ctx, "user.create", "user", user.id,
                           {"username": [None, username], "roles": [None, roles]})
        return user.id


async def revoke_credentials(ctx: Context, user_id: Any) -> None:
    """End every session and token of a user (disabled, password changed, second factor
    reset)."""
    async with tenant_scope(ctx):
        await WebSession.update({WebSession.revoked_at: now()}).where(
            WebSession.tenant_id == ctx.tenant_id, WebSession.user_id == user_id,
            WebSession.revoked_at.is_null()).run()
        await ApiToken.update({ApiToken.revoked_at: now()}).where(
            ApiToken.tenant_id == ctx.tenant_id, ApiToken.user_id == user_id,
            ApiToken.revoked_at.is_null()).run()


async def change_password(ctx: Context, current: str, new: str) -> None:
    """The user changes their own password; all their other sessions and tokens end."""
    user = await get_user(ctx, ctx.user_id)
    if not await _verify(user["password_hash"], current):
        await record(ctx, "password_change_failed", user)
        raise Forbidden("bad_current_password")
    new_hash = await asyncio.to_thread(hash_password, new)
    await revoke_credentials(ctx, user["id"])
    async with tenant_scope(ctx):
        await User.update({User.password_hash: new_hash, User.password_changed_at: now()}) \
            .where(User.tenant_id == ctx.tenant_id, User.id == user["id"]).run()
    await record(ctx, "password_changed", user)


async def set_user_active(ctx: Context, user_id: Any, active: bool) -> bool:
    """Enable or disable a user (disabling ends their sessions); returns the status the
    user had, for the audit entry."""
    async with tenant_scope(ctx):
        this = (User.tenant_id == ctx.tenant_id, User.id == user_id)
        query = User.select(User.active).where(*this)
        if User._meta.db.engine_type == "postgres":
            query = query.lock_rows("UPDATE")
        before = await query.run()
        if not before:
            raise NotFound()
        await User.update({User.active: active}).where(*this).run()
    if not active:
        await revoke_credentials(ctx, user_id)
    return bool(before[0]["active"])


async def user_names(ctx: Context, ids: Iterable[Any] = (),
                     usernames: Iterable[str] = ()) -> dict[str, str]:
    """Display names of the tenant's users, keyed by id and by username as asked (pages
    show people by name, records keep ids or usernames). Unknown keys are left out."""
    wanted_ids = []
    for i in {str(i) for i in ids if i}:
        try:
            wanted_ids.append(uuid.UUID(i))
        except ValueError:
            continue
    wanted_names = sorted({u for u in usernames if u})
    out: dict[str, str] = {}
    if not wanted_ids and not wanted_names:
        return out
    async with tenant_scope(ctx, write=False):
        if wanted_ids:
            for r in await User.select(User.id, User.display_name).where(
                    User.tenant_id == ctx.tenant_id, User.id.is_in(wanted_ids)).run():
                out[str(r["id"])] = r["display_name"]
        if wanted_names:
            for r in await User.select(User.username, User.display_name).where(
                    User.tenant_id == ctx.tenant_id, User.username.is_in(wanted_names)).run():
                out[r["username"]] = r["display_name"]
    return out


async def get_user(ctx: Context, user_id: Any) -> dict[str, Any]:
    async with tenant_scope(ctx, write=False):
        rows = await User.select().where(User.tenant_id == ctx.tenant_id, User.id == user_id) \
            .output(load_json=True).run()
    if not rows:
        raise NotFound()
    return rows[0]


async def record(ctx: Context, kind: str, user: dict[str, Any] | None = None,
                 username: str | None = None, **detail: Any) -> None:
    """Append an auth event (sign-in, failure, lockout, reveal, ...) and its audit entry."""
    from core import audit

    async with tenant_scope(ctx):
        actor = ctx if ctx.username else Context(
            tenant=ctx.tenant, user_id=str(user["id"]) if user else None,
            username=(user["username"] if user else username), roles=ctx.roles,
            ip=ctx.ip, user_agent=ctx.user_agent, access=ctx.access)
        await audit.append(actor, kind, detail.get("entity"),
                           detail.get("record") or (user["id"] if user else None),
                           {k: v for k, v in detail.items() if k not in ("entity", "record")})
        await AuthEvent.insert(AuthEvent(
            tenant_id=ctx.tenant_id, user_id=user["id"] if user else None,
            username=(user["username"] if user else username or ctx.username or "")[:63],
            kind=kind, ip=ctx.ip, user_agent=(ctx.user_agent or "")[:300] or None,
            detail=detail,
        )).run()


async def _count_failure(ctx: Context, user: dict[str, Any], kind: str) -> bool:
    """One more failed password or second-factor code; locks the account at MAX_FAILURES.
    Returns whether it is now locked. Sessions already open stay (else a stranger guessing
    passwords could sign everyone out); new sign-ins wait for the lock to expire."""
    async with tenant_scope(Context.system(ctx.tenant)):  # atomic: parallel guesses all count
        rows = await User.update({User.failed_logins: User.failed_logins + 1}).where(
            User.tenant_id == ctx.tenant_id, User.id == user["id"]
        ).returning(User.failed_logins).run()
        failures = rows[0]["failed_logins"] if rows else MAX_FAILURES
        locked = now() + timedelta(minutes=LOCK_MINUTES) if failures >= MAX_FAILURES else None
        if locked:
            await User.update({User.failed_logins: 0, User.locked_until: locked}).where(
                User.tenant_id == ctx.tenant_id, User.id == user["id"]).run()
    await record(ctx, "account_locked" if locked else kind, user, failures=failures)
    return locked is not None


# --- the context a user acts in ----------------------------------------------------------

async def user_context(tenant: TenantInfo, user: dict[str, Any], locale: str,
                       scopes: list[str] | None = None, ip: str | None = None,
                       user_agent: str | None = None) -> Context:
    """Load the user's roles, field policies and organisation unit into a Context."""
    probe = Context.system(tenant)
    roles = list(user["roles"] or ())
    async with tenant_scope(probe, write=False):
        role_rows = await Role.select().where(Role.tenant_id == tenant.id,
                                              Role.name.is_in(roles or [""])) \
            .output(load_json=True).run()
        policies = await FieldPolicy.select().where(FieldPolicy.tenant_id == tenant.id,
                                                    FieldPolicy.role.is_in(roles or [""])).run()
        unit = None
        if user.get("org_unit_id"):
            units = await OrgUnit.select().where(OrgUnit.tenant_id == tenant.id,
                                                 OrgUnit.id == user["org_unit_id"]).run()
            unit = units[0] if units else None
    access = combine(role_rows, policies, str(unit["id"]) if unit else None,
                     unit["path"] if unit else None, scopes)
    return Context(tenant=tenant, user_id=str(user["id"]), username=user["username"],
                   roles=tuple(roles), locale=locale, access=access, ip=ip,
                   user_agent=user_agent)


# --- password sign-in with lockout -------------------------------------------------------

async def check_password_login(tenant_slug: str, username: str, password: str,
                               ip: str | None = None, user_agent: str | None = None
                               ) -> tuple[TenantInfo, dict[str, Any]]:
    """The tenant and user for a correct password; one error for every kind of failure.

    Failures count towards the lockout and are recorded; a locked account answers the
    same error without checking the password, so a locked account cannot be probed.
    """
    try:
        tenant = await get_tenant(tenant_slug)
    except XindaiError:
        await _verify(_DUMMY, password)  # same cost as a real check
        raise Unauthenticated("bad_credentials") from None
    probe = Context(tenant=tenant, access=Context.system(tenant).access, ip=ip,
                    user_agent=user_agent)
    async with tenant_scope(probe, write=False):
        rows = await User.select().where(User.tenant_id == tenant.id,
                                         User.username == username) \
            .output(load_json=True).run()
    user = rows[0] if rows else None
    if tenant.status != "active" or user is None or not user["active"]:
        await _verify(_DUMMY, password)
        await record(probe, "login_failed", user, username=username, reason="unknown_or_inactive")
        # an unknown name "locks" like a real one, so lockout cannot tell which names exist
        from core.ratelimit import RateLimited, hit

        try:
            hit("unknown_user", f"{tenant.id}:{username}", MAX_FAILURES - 1, LOCK_MINUTES * 60)
        except RateLimited:
            raise Unauthenticated("account_locked") from None
        raise Unauthenticated("bad_credentials")
    if user["locked_until"] and user["locked_until"] > now():
        await _verify(_DUMMY, password)  # the same time as any other answer
        await record(probe, "login_locked", user)
        raise Unauthenticated("account_locked")
    if not await _verify(user["password_hash"], password):
        locked = await _count_failure(probe, user, "login_failed")
        raise Unauthenticated("account_locked" if locked else "bad_credentials")
    if user["failed_logins"] or user["locked_until"]:
        async with tenant_scope(probe):
            await User.update({User.failed_logins: 0, User.locked_until: None}) \
                .where(User.tenant_id == tenant.id, User.id == user["id"]).run()
    return tenant, user


async def login(tenant_slug: str, username: str, password: str, locale: str,
                ip: str | None = None, user_agent: str | None = None) -> tuple[str, Context]:
    """API sign-in: a password (and no second factor) gives a 12-hour bearer token.

    Users with TOTP enabled must use the web sign-in or an integration token.
    """
    tenant, user = await check_password_login(tenant_slug, username, password, ip, user_agent)
    ctx = await user_context(tenant, user, locale, ip=ip, user_agent=user_agent)
    if user["totp_enabled"] or mfa_required(ctx):  # a second factor happens on the web
        await record(ctx, "login_failed", user, reason="mfa_required_for_api")
        raise Unauthenticated("mfa_use_web")
    token = await _issue_token(ctx, user["id"], "login", LOGIN_TOKEN_TTL, None)
    await record(ctx, "login_ok", user, channel="api")
    return token, ctx


# --- bearer tokens -----------------------------------------------------------------------

async def _issue_token(ctx: Context, user_id: Any, name: str, ttl: timedelta,
                       scopes: list[str] | None) -> str:
    token = f"{TOKEN_PREFIX}{ctx.tenant_id.hex}_{secrets.token_urlsafe(32)}"
    async with tenant_scope(ctx):
        await ApiToken.insert(ApiToken(
            tenant_id=ctx.tenant_id, user_id=user_id, digest=digest(token), name=name[:100],
            expires_at=now() + ttl, scopes=scopes,
        )).run()
    return token


async def create_integration_token(ctx: Context, name: str, scopes: list[str],
                                   days: int) -> tuple[str, dict[str, Any]]:
    """A scoped, expiring token for an integration; the secret is shown only now."""
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise XindaiError("token_days", max=MAX_TOKEN_DAYS)
    if not name.strip() or len(name) > 100:
        raise XindaiError("token_name")
    excess = [s for s in scopes if not ctx.access.can(s)]
    if not scopes or excess:
        raise Forbidden("token_scopes", scopes=", ".join(excess) or "-")
    token = await _issue_token(ctx, ctx.user_id, name, timedelta(days=days), sorted(scopes))
    await record(ctx, "token_created", None, username=ctx.username, name=name, scopes=scopes)
    listed = [t for t in await list_tokens(ctx) if t["name"] == name]
    return token, listed[-1]


async def list_tokens(ctx: Context) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        rows = await ApiToken.select(
            ApiToken.id, ApiToken.name, ApiToken.scopes, ApiToken.expires_at,
            ApiToken.created_at, ApiToken.last_used_at, ApiToken.revoked_at,
        ).where(ApiToken.tenant_id == ctx.tenant_id, ApiToken.user_id == ctx.user_id,
                ApiToken.name != "login").order_by(ApiToken.created_at) \
            .output(load_json=True).run()
    return [{**r, "id": str(r["id"])} for r in rows]


async def revoke_token(ctx: Context, token_id: Any) -> None:
    async with tenant_scope(ctx):
        done = await ApiToken.update({ApiToken.revoked_at: now()}).where(
            ApiToken.tenant_id == ctx.tenant_id, ApiToken.user_id == ctx.user_id,
            ApiToken.id == token_id, ApiToken.revoked_at.is_null(),
        ).returning(ApiToken.id).run()
    if not done:
        raise NotFound()
    await record(ctx, "token_revoked", None, username=ctx.username, token=str(token_id))


def tenant_of_token(token: str) -> uuid.UUID | None:
    if not token.startswith(TOKEN_PREFIX) or token.count("_") < 2:
        return None
    try:
        return uuid.UUID(hex=token[len(TOKEN_PREFIX):].split("_", 1)[0])
    except ValueError:
        return None


async def authenticate(token: str, locale: str, ip: str | None = None,
                       user_agent: str | None = None) -> Context:
    """The context of a valid, unexpired, unrevoked token of an active user and tenant."""
    tenant_id = tenant_of_token(token)
    if tenant_id is None:
        raise Unauthenticated()
    try:
        tenant = await get_tenant_by_id(tenant_id)
    except XindaiError:
        raise Unauthenticated() from None
    if tenant.status != "active":
        raise Unauthenticated()
    probe = Context.system(tenant)
    async with tenant_scope(probe, write=False):
        rows = await ApiToken.select().where(
            ApiToken.tenant_id == tenant.id, ApiToken.digest == digest(token),
            ApiToken.revoked_at.is_null(), ApiToken.expires_at > now(),
        ).output(load_json=True).run()
        users = await User.select().where(
            User.tenant_id == tenant.id, User.id == rows[0]["user_id"], User.active.eq(True)
        ).output(load_json=True).run() if rows else []
    if not users:
        raise Unauthenticated()
    last = rows[0]["last_used_at"]
    if last is None or last < now() - timedelta(minutes=5):  # at most one write per 5 min
        async with tenant_scope(probe):
            await ApiToken.update({ApiToken.last_used_at: now()}).where(
                ApiToken.tenant_id == tenant.id, ApiToken.id == rows[0]["id"]).run()
    return await user_context(tenant, users[0], locale, rows[0]["scopes"], ip, user_agent)


# --- TOTP ---------------------------------------------------------------------------------

def _seal_totp(keys: Any, user_id: Any, secret: str) -> str:
    return keys.encrypt("user", "totp_secret", user_id, secret)


async def _tenant_keys(ctx: Context) -> Any:
    from core.crypto import tenant_keys
    from core.kernel import kernel

    return await tenant_keys(kernel().master_key, ctx.tenant_id)


async def start_totp_enrolment(ctx: Context) -> tuple[str, str]:
    """A new secret for the signed-in user (not active until confirmed): (secret, otpauth URI).
    """
    user = await get_user(ctx, ctx.user_id)
    if user["totp_enabled"]:
        raise Conflict("mfa_already_enabled")
    secret = pyotp.random_base32()
    async with tenant_scope(ctx):
        keys = await _tenant_keys(ctx)
        await User.update({User.totp_secret: _seal_totp(keys, user["id"], secret),
                           User.totp_enabled: False}) \
            .where(User.tenant_id == ctx.tenant_id, User.id == user["id"]).run()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user["username"],
                                             issuer_name=f"xindai {ctx.tenant.slug}")
    return secret, uri


async def confirm_totp_enrolment(ctx: Context, code: str) -> list[str]:
    """Activate TOTP with a first valid code; returns the recovery codes (shown once)."""
    user = await get_user(ctx, ctx.user_id)
    if not user["totp_secret"] or not await _accept_code(ctx, user, code):
        raise XindaiError("mfa_bad_code")
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
    async with tenant_scope(ctx):
        await User.update({User.totp_enabled: True,
                           User.recovery_codes: [digest(c) for c in codes]}) \
            .where(User.tenant_id == ctx.tenant_id, User.id == user["id"]).run()
    await record(ctx, "mfa_enrolled", user)
    return codes


async def _accept_code(ctx: Context, user: dict[str, Any], code: str) -> bool:
    """Check a TOTP code (±1 step) that is later than the last accepted one; consume it."""
    keys = await _tenant_keys(ctx)
    secret = keys.decrypt("user", "totp_secret", user["id"], user["totp_secret"])
    totp = pyotp.TOTP(secret)
    code = re.sub(r"\s", "", code)
    step_now = int(now().timestamp()) // totp.interval
    for step in (step_now - 1, step_now, step_now + 1):
        if step > user["totp_last_step"] and secrets.compare_digest(
            totp.generate_otp(step), code
        ):
            async with tenant_scope(ctx):
                used = await User.update({User.totp_last_step: step}).where(
                    User.tenant_id == ctx.tenant_id, User.id == user["id"],
                    User.totp_last_step < step,  # single use, even under a race
                ).returning(User.id).run()
            return bool(used)
    return False


async def verify_second_factor(ctx: Context, code: str) -> bool:
    """A TOTP code or an unused recovery code of the signed-in user (each usable once)."""
    user = await get_user(ctx, ctx.user_id)
    if not user["totp_enabled"] or (user["locked_until"] and user["locked_until"] > now()):
        return False
    if await _accept_code(ctx, user, code):
        return True
    wanted = digest(code.strip().lower())
    async with tenant_scope(ctx):  # read and consume in one transaction, row locked
        query = User.select(User.recovery_codes).where(
            User.tenant_id == ctx.tenant_id, User.id == user["id"]).output(load_json=True)
        if User._meta.db.engine_type == "postgres":
            query = query.lock_rows("UPDATE")
        remaining = list((await query.run())[0]["recovery_codes"] or ())
        used = wanted in remaining
        if used:
            remaining.remove(wanted)
            await User.update({User.recovery_codes: remaining}).where(
                User.tenant_id == ctx.tenant_id, User.id == user["id"]).run()
    if used:
        await record(ctx, "mfa_recovery_code_used", user, left=len(remaining))
        return True
    await _count_failure(ctx, user, "mfa_failed")  # guessing codes counts like passwords
    return False


async def reset_totp(ctx: Context, user_id: Any) -> None:
    """An administrator clears a user's second factor (a lost phone without recovery codes);
    the user's sessions and tokens end, and they enrol again at the next sign-in."""
    from core.access import require

    require(ctx, "admin.users")
    from core.admin import _check_may_manage

    user = await _check_may_manage(ctx, user_id)
    async with tenant_scope(ctx):
        await User.update({User.totp_enabled: False, User.totp_secret: None,
                           User.recovery_codes: []}).where(
            User.tenant_id == ctx.tenant_id, User.id == user["id"]).run()
    await revoke_credentials(ctx, user["id"])
    await record(ctx, "mfa_reset", user, by=ctx.username)


def mfa_required(ctx: Context) -> bool:
    """The tenant setting `mfa_required_roles` makes TOTP mandatory for those roles."""
    required = set(ctx.tenant.settings.get("mfa_required_roles") or ())
    return bool(required & set(ctx.roles))
