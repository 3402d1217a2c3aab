"""Secret tenant settings (a credit bureau's signing secret), sealed at rest.

A plugin declares one with `PluginSetting(..., secret=True)`. In `tenant.settings` it is
stored as `{"sealed": <AES-256-GCM token>}` under the tenant's data key, so a database
dump or backup holds no usable secret and the value never appears in a page or a log.

Where a secret comes from:
- a pack (`tenant.settings` in pack.yaml, plain text) is sealed when the tenant is created;
- `xindai tenant set-secret SLUG KEY` (the value read from standard input, so it stays out
  of shell history) seals a new value into a running tenant, audited without the value.

`reveal` gives a plugin the plain value when it needs it (inside an async call with a
context); a tenant export (packs.export_pack) reveals it again so the pack round-trips,
like the personal data an export already holds in clear.
"""

from __future__ import annotations

from typing import Any

from core.crypto import tenant_keys
from core.errors import NotFound, XindaiError
from core.i18n import register_messages
from core.tenancy import Context

ENTITY = "tenant_setting"
SEALED = "sealed"

register_messages({
    "setting_not_secret": {
        "zh-CN": "“{key}”不是已声明的保密配置项（可用：{known}）",
        "en": "'{key}' is not a declared secret setting (known: {known})"},
    "setting_secret_empty": {"zh-CN": "密钥不能为空", "en": "the secret must not be empty"},
})


def secret_keys() -> set[str]:
    """The settings any loaded plugin declared secret."""
    from core.kernel import kernel

    return {s.key for s in kernel().plugin_settings if s.secret}


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get(SEALED), str)


async def seal(ctx: Context, settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` with every secret given in plain text sealed (the others unchanged)."""
    wanted = secret_keys()
    plain = {k: v for k, v in settings.items() if k in wanted and isinstance(v, str) and v}
    if not plain:
        return dict(settings)
    from core.kernel import kernel

    keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
    return {**settings, **{k: {SEALED: keys.encrypt(ENTITY, k, ctx.tenant_id, v)}
                           for k, v in plain.items()}}


async def reveal(ctx: Context, key: str) -> str:
    """The plain value of a secret setting of ctx's tenant; "" when it is not set."""
    value = (ctx.tenant.settings or {}).get(key)
    if not is_sealed(value):
        return value if isinstance(value, str) else ""
    from core.kernel import kernel

    keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
    return keys.decrypt(ENTITY, key, ctx.tenant_id, value[SEALED])


async def revealed(ctx: Context) -> dict[str, Any]:
    """The tenant's settings with the secrets in plain text (for a pack export only)."""
    settings = dict(ctx.tenant.settings or {})
    for key, value in settings.items():
        if is_sealed(value):
            settings[key] = await reveal(ctx, key)
    return settings


async def set_secret(slug: str, key: str, value: str) -> None:
    """Seal a new value for a declared secret setting of the tenant; audited (the key and
    that it changed, never the value)."""
    from core import audit
    from core.tables import Tenant
    from core.tenancy import get_tenant, tenant_scope

    known = secret_keys()
    if key not in known:
        raise NotFound("setting_not_secret", key=key, known=", ".join(sorted(known)) or "—")
    if not value.strip():
        raise XindaiError("setting_secret_empty")
    tenant = await get_tenant(slug)
    ctx = Context.system(tenant)
    async with tenant_scope(ctx):
        settings = await seal(ctx, {**tenant.settings, key: value.strip()})
        await Tenant.update({Tenant.settings: settings}).where(Tenant.id == tenant.id).run()
        await audit.append(ctx, "tenant.setting.secret", "tenant_setting", key,
                           {"secret_changed": [None, True]})
