from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-22T23:45:02:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique org unit codes and field policies per role"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(
        raw_step(
            "CREATE UNIQUE INDEX IF NOT EXISTS org_unit_unique_code ON org_unit (tenant_id, code)"
        )
    )
    manager.add_raw(
        raw_step(
            "CREATE UNIQUE INDEX IF NOT EXISTS field_policy_unique "
            "ON field_policy (tenant_id, role, entity, field)"
        )
    )
    manager.add_raw(
        raw_step(
            "CREATE INDEX IF NOT EXISTS auth_event_recent ON auth_event (tenant_id, created_at)"
        )
    )
    return manager
