from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T01:38:19:000000"
VERSION = "1.38.0"
DESCRIPTION = "idempotency keys: one per tenant, caller and key; expiry lookups for the purge"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(raw_step(
        "CREATE UNIQUE INDEX IF NOT EXISTS idempotency_key_unique "
        "ON idempotency_key (tenant_id, principal, key)"
    ))
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS idempotency_key_expiry ON idempotency_key (tenant_id, expires_at)"
    ))
    return manager
