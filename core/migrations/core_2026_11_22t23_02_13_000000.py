from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-22T23:02:13:000000"
VERSION = "1.38.0"
DESCRIPTION = "composite unique indexes (raw SQL: SQLite cannot ADD CONSTRAINT)"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(
        raw_step(
            "CREATE UNIQUE INDEX IF NOT EXISTS role_unique_name ON role (tenant_id, name)"
        )
    )
    manager.add_raw(
        raw_step(
            "CREATE UNIQUE INDEX IF NOT EXISTS app_user_unique_username ON app_user (tenant_id, username)"
        )
    )
    manager.add_raw(
        raw_step(
            "CREATE UNIQUE INDEX IF NOT EXISTS custom_field_unique_key ON custom_field (tenant_id, entity, key)"
        )
    )
    manager.add_raw(
        raw_step(
            "CREATE UNIQUE INDEX IF NOT EXISTS tenant_key_unique_version ON tenant_key (tenant_id, version)"
        )
    )
    return manager
