from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T01:38:14:000000"
VERSION = "1.38.0"
DESCRIPTION = "documents: listed per record, re-encrypted by key version"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS document_by_record "
        "ON document (tenant_id, entity, record_id)"))
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS document_by_key_version ON document (tenant_id, key_version)"))
    return manager
