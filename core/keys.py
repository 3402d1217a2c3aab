"""Key management: rotate a tenant's data key, re-encrypt old rows in the background
(resumable), report progress, re-wrap data keys under a new master key, and crypto-shred a
tenant that leaves.

Rotation creates a new data key version; new writes use it at once. `reencrypt` then walks
every sealed value still under an older version, in chunks, each chunk one transaction; a
value is rewritten only if the row is unchanged since it was read (optimistic check on the
sealed document), so concurrent writers never lose a change and a crashed run just resumes.
Blind indexes stay keyed by the first version, so searches work throughout. Uploaded
documents (core.documents) are re-encrypted file by file, streaming into a new file that
replaces the old one once its row is updated; shredding also deletes their files.
"""

from __future__ import annotations

import inspect
import json
import uuid
from dataclasses import dataclass
from typing import Any

from core import audit, documents
from core.access import require
from core.crypto import (
    create_tenant_key,
    forget_cached_keys,
    tenant_keys,
    token_version,
    unwrap_data_key,
    wrap_data_key,
)
from core.errors import XindaiError
from core.tables import TenantKey, User
from core.tenancy import Context, tenant_scope

CHUNK = 500


@dataclass(frozen=True)
class KeyStatus:
    versions: list[int]
    active: int
    stale: dict[str, int]  # entity -> rows with a value under an older version

    @property
    def done(self) -> bool:
        return not any(self.stale.values())


def _master() -> bytes:
    from core.kernel import kernel

    return kernel().master_key


async def rotate(ctx: Context) -> int:
    """A new data key version for the tenant; returns it. Old versions stay for reading."""
    require(ctx, "admin.keys")
    async with tenant_scope(ctx):
        version = await create_tenant_key(_master(), ctx.tenant_id)
        await audit.append(ctx, "keys.rotate", "tenant_key", version)
    return version


def _sealed_tables() -> list[tuple[str, Any]]:
    """(entity name, table) of every registry entity; users' TOTP secrets are handled apart."""
    from core.kernel import kernel

    return [(name, e.table) for name, e in kernel().registry.entities.items()]


def _stale(sealed: Any, active: int) -> bool:
    doc = json.loads(sealed) if isinstance(sealed, str) else (sealed or {})
    return any(token_version(token) < active for token in doc.values())


async def status(ctx: Context) -> KeyStatus:
    async with tenant_scope(ctx, write=False):
        keys = await tenant_keys(_master(), ctx.tenant_id)
        stale: dict[str, int] = {}
        for name, table in _sealed_tables():
            rows = await table.select(table.sealed).where(
                table.tenant_id == ctx.tenant_id).output(load_json=True).run()
            stale[name] = sum(1 for r in rows if _stale(r["sealed"], keys.active_version))
        users = await User.select(User.totp_secret).where(
            User.tenant_id == ctx.tenant_id, User.totp_secret.is_not_null()).run()
        stale["user"] = sum(1 for u in users
                            if token_version(u["totp_secret"]) < keys.active_version)
        stale["document"] = await documents.stale_count(ctx, keys.active_version)
    return KeyStatus(sorted(keys.keys), keys.active_version, stale)


async def reencrypt(ctx: Context, progress: Any = None, passes: int = 5) -> int:
    """Rewrite every value sealed under an older key version; returns how many rows changed.
    Safe to run again after a crash, and alongside normal writes: a row written meanwhile is
    skipped and picked up by the next pass."""
    require(ctx, "admin.keys")
    changed = 0
    for _ in range(passes):
        changed += await _reencrypt_pass(ctx, progress)
        if (await status(ctx)).done:
            break
    async with tenant_scope(ctx):
        await audit.append(ctx, "keys.reencrypt", "tenant_key", None, {"rows": [None, changed]})
    return changed


async def _reencrypt_pass(ctx: Context, progress: Any) -> int:
    changed = 0
    for name, table in _sealed_tables():
        last: uuid.UUID | None = None
        while True:
            async with tenant_scope(ctx):
                keys = await tenant_keys(_master(), ctx.tenant_id)
                where = [table.tenant_id == ctx.tenant_id]
                if last is not None:
                    where.append(table.id > last)
                rows = await table.select(table.id, table.sealed, table.version).where(*where) \
                    .order_by(table.id).limit(CHUNK).output(load_json=True).run()
                for row in rows:
                    sealed = row["sealed"] or {}
                    if not _stale(sealed, keys.active_version):
                        continue
                    fresh = {field: keys.encrypt(name, field, row["id"],
                                                 keys.decrypt(name, field, row["id"], token))
                             for field, token in sealed.items()}
                    done = await table.update({table.sealed: fresh}).where(
                        table.tenant_id == ctx.tenant_id, table.id == row["id"],
                        table.version == row["version"],  # changed meanwhile: next pass
                    ).returning(table.id).run()
                    changed += len(done)
            if progress:
                reported = progress(name, changed)
                if inspect.isawaitable(reported):
                    await reported
            if len(rows) < CHUNK:
                break
            last = rows[-1]["id"]
    changed += await _reencrypt_totp(ctx)
    return changed + await documents.reencrypt(ctx, progress)


async def _reencrypt_totp(ctx: Context) -> int:
    count = 0
    async with tenant_scope(ctx):
        keys = await tenant_keys(_master(), ctx.tenant_id)
        users = await User.select(User.id, User.totp_secret).where(
            User.tenant_id == ctx.tenant_id, User.totp_secret.is_not_null()).run()
        for u in users:
            if token_version(u["totp_secret"]) < keys.active_version:
                secret = keys.decrypt("user", "totp_secret", u["id"], u["totp_secret"])
                await User.update({User.totp_secret: keys.encrypt("user", "totp_secret",
                                                                   u["id"], secret)}).where(
                    User.tenant_id == ctx.tenant_id, User.id == u["id"],
                    User.totp_secret == u["totp_secret"]).run()
                count += 1
    return count


async def rewrap_all(old_master: bytes, new_master: bytes,
                     tenants: list[Any] | None = None) -> int:
    """Re-wrap every tenant's (or `tenants`') data keys under a new master key; the data is
    not touched. Returns how many data keys were re-wrapped."""
    from core.tenancy import list_tenants

    count = 0
    for tenant in tenants if tenants is not None else await list_tenants():
        ctx = Context.system(tenant)
        async with tenant_scope(ctx):
            rows = await TenantKey.select().where(TenantKey.tenant_id == tenant.id).run()
            for row in rows:
                plain = unwrap_data_key(old_master, tenant.id, row["version"], row["wrapped"])
                await TenantKey.update({TenantKey.wrapped: wrap_data_key(
                    new_master, tenant.id, row["version"], plain)}).where(
                    TenantKey.tenant_id == tenant.id, TenantKey.id == row["id"]).run()
                count += 1
            await audit.append(ctx, "keys.rewrap", "tenant_key", None,
                               {"keys": [None, len(rows)]})
    forget_cached_keys()
    return count


async def shred(ctx: Context, confirm: str) -> int:
    """Delete the tenant's data keys: every secret value and document becomes unreadable,
    for good (off-boarding); then delete the document files too. `confirm` must repeat the
    tenant's slug."""
    require(ctx, "admin.keys")
    if confirm != ctx.tenant.slug:
        raise XindaiError("shred_confirm", slug=ctx.tenant.slug)
    async with tenant_scope(ctx):
        files = await documents.count(ctx)
        await audit.append(ctx, "keys.shred", "tenant_key", None,
                           {"documents": [None, files]} if files else None)
        deleted = await TenantKey.delete().where(TenantKey.tenant_id == ctx.tenant_id) \
            .returning(TenantKey.id).run()
    forget_cached_keys()
    await documents.remove_files(ctx)  # unreadable already; the files go too
    return len(deleted)
